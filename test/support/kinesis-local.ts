// kinesis-local (the npm build of etspaceman/kinesis-mock) for the integration tests: the repo's
// launcher (scripts/local-kinesis.mjs) with the tests' defaults, plus a few unsigned-request
// helpers for driving it with plain fetch.
// Configuration variables: node_modules/kinesis-local/README.md, "Service Configuration".
import { randomUUID } from 'node:crypto';
import { DUMMY_AUTHORIZATION, startLocalKinesis, type LocalKinesis, type LocalKinesisOptions } from '../../scripts/local-kinesis.mjs';

export { DUMMY_AUTHORIZATION, kinesisLocalDir } from '../../scripts/local-kinesis.mjs';

/** Options for {@link startKinesisLocal}: `env` overrides {@link KINESIS_LOCAL_DEFAULT_ENV}. */
export type KinesisLocalOptions = Omit<LocalKinesisOptions, 'nodeArgs' | 'timeoutMs'>;

/** A running kinesis-local. */
export type KinesisLocal = LocalKinesis;

/** Durations and limits tuned for tests; each key is a kinesis-local configuration variable. */
export const KINESIS_LOCAL_DEFAULT_ENV: Readonly<Record<string, string>> = {
  CREATE_STREAM_DURATION: '50ms',
  DELETE_STREAM_DURATION: '50ms',
  REGISTER_STREAM_CONSUMER_DURATION: '100ms',
  DEREGISTER_STREAM_CONSUMER_DURATION: '100ms',
  START_STREAM_ENCRYPTION_DURATION: '100ms',
  STOP_STREAM_ENCRYPTION_DURATION: '100ms',
  MERGE_SHARDS_DURATION: '100ms',
  SPLIT_SHARD_DURATION: '100ms',
  UPDATE_SHARD_COUNT_DURATION: '100ms',
  UPDATE_STREAM_MODE_DURATION: '100ms',
  SHARD_LIMIT: '500',
  ON_DEMAND_STREAM_COUNT_LIMIT: '100',
  LOG_LEVEL: 'WARN',
  ROOT_LOG_LEVEL: 'ERROR',
  SHOULD_PERSIST_DATA: 'false',
  LOAD_DATA_IF_EXISTS: 'false',
};

/** The Kinesis JSON protocol's target prefix (`X-Amz-Target: Kinesis_20131202.PutRecords`). */
export const KINESIS_TARGET_PREFIX = 'Kinesis_20131202.';

/** `yyyymmddThhmmssZ`, the `X-Amz-Date` format. */
export function amzDate(date: Date = new Date()): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** Headers for an unsigned Kinesis JSON request that kinesis-local accepts. */
export function dummyKinesisHeaders(operation: string, date: Date = new Date()): Record<string, string> {
  return {
    'Content-Type': 'application/x-amz-json-1.1',
    'X-Amz-Target': KINESIS_TARGET_PREFIX + operation,
    'X-Amz-Date': amzDate(date),
    Authorization: DUMMY_AUTHORIZATION,
  };
}

/** What {@link callKinesis} returns: the raw status, headers and text, plus parsed JSON. */
export interface KinesisCallResult<T = any> {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON body, or `undefined` when the body is empty or not JSON. */
  body: T;
}

/**
 * Sends one unsigned Kinesis JSON request with plain fetch and never throws on HTTP errors.
 * @example
 * const { status, body } = await callKinesis(endpoint, 'ListStreams', {});
 */
export async function callKinesis<T = any>(
  endpoint: string,
  operation: string,
  input: unknown,
  init: { headers?: Record<string, string>; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<KinesisCallResult<T>> {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { ...dummyKinesisHeaders(operation), ...init.headers },
    body: JSON.stringify(input),
    signal: init.signal ?? AbortSignal.timeout(init.timeoutMs ?? 10_000),
  });
  const text = await response.text();
  let body: any;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, text, body };
}

/** Like {@link callKinesis} but throws unless the status is 200, and returns the parsed body. */
export async function callKinesisOk<T = any>(endpoint: string, operation: string, input: unknown): Promise<T> {
  const result = await callKinesis<T>(endpoint, operation, input);
  if (result.status !== 200) {
    throw new Error(`${operation} failed with ${result.status}: ${result.text}`);
  }
  return result.body;
}

/** A stream name that no other test uses: `<prefix>-<random>`. */
export function uniqueStreamName(prefix = 'it'): string {
  return `${prefix}-${randomUUID().slice(0, 12)}`;
}

/**
 * Creates a fresh provisioned stream and polls DescribeStreamSummary until it is ACTIVE.
 * Fresh streams matter: kinesis-local's PutRecords slows down as a stream grows.
 * @example
 * const streamName = await createTestStream(endpoint, { shardCount: 2 });
 */
export async function createTestStream(
  endpoint: string,
  options: { streamName?: string; shardCount?: number; timeoutMs?: number } = {},
): Promise<string> {
  const streamName = options.streamName ?? uniqueStreamName();
  await callKinesisOk(endpoint, 'CreateStream', { StreamName: streamName, ShardCount: options.shardCount ?? 1 });
  await waitForStreamActive(endpoint, streamName, options.timeoutMs);
  return streamName;
}

/** Polls DescribeStreamSummary every 25 ms until the stream is ACTIVE, or throws after the bound. */
export async function waitForStreamActive(endpoint: string, streamName: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const result = await callKinesis(endpoint, 'DescribeStreamSummary', { StreamName: streamName });
    last = result.text;
    if (result.status === 200 && result.body?.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`stream ${streamName} not ACTIVE after ${timeoutMs} ms; last answer: ${last}`);
}

/** A record as GetRecords returns it (wire shape, base64 `Data`). */
export interface StoredRecord {
  ShardId: string;
  SequenceNumber: string;
  PartitionKey: string;
  Data: string;
  ApproximateArrivalTimestamp: number;
}

/**
 * Reads every record of every shard from TRIM_HORIZON (ListShards, GetShardIterator, then
 * GetRecords until a page is empty and the reader is caught up). Bounded by `maxPages` per shard.
 */
export async function readAllRecords(
  endpoint: string,
  streamName: string,
  options: { maxPages?: number } = {},
): Promise<StoredRecord[]> {
  const maxPages = options.maxPages ?? 50;
  const shardIds: string[] = [];
  let nextToken: string | undefined;
  for (let page = 0; page < maxPages; page++) {
    const listed = await callKinesisOk(
      endpoint,
      'ListShards',
      nextToken === undefined ? { StreamName: streamName } : { NextToken: nextToken },
    );
    for (const shard of listed.Shards ?? []) shardIds.push(shard.ShardId);
    nextToken = listed.NextToken ?? undefined;
    if (nextToken === undefined) break;
  }
  const records: StoredRecord[] = [];
  for (const shardId of shardIds) {
    const { ShardIterator } = await callKinesisOk(endpoint, 'GetShardIterator', {
      StreamName: streamName,
      ShardId: shardId,
      ShardIteratorType: 'TRIM_HORIZON',
    });
    let iterator: string | null | undefined = ShardIterator;
    for (let page = 0; page < maxPages && iterator; page++) {
      const got = await callKinesisOk(endpoint, 'GetRecords', { ShardIterator: iterator });
      for (const record of got.Records ?? []) records.push({ ShardId: shardId, ...record });
      iterator = got.NextShardIterator;
      if ((got.Records ?? []).length === 0 && got.MillisBehindLatest === 0) break;
    }
  }
  return records;
}

/**
 * Starts kinesis-local on free loopback ports with the tests' defaults
 * ({@link KINESIS_LOCAL_DEFAULT_ENV}, a large heap) and waits until it answers ListStreams.
 * @example
 * const local = await startKinesisLocal();
 * try {
 *   await callKinesisOk(local.endpoint, 'ListStreams', {});
 * } finally {
 *   await local.stop();
 * }
 */
export function startKinesisLocal(options: KinesisLocalOptions = {}): Promise<KinesisLocal> {
  return startLocalKinesis({
    ...options,
    env: { ...KINESIS_LOCAL_DEFAULT_ENV, ...options.env },
    // All test files share one instance, and it keeps every record in memory: give it room.
    nodeArgs: ['--max-old-space-size=6144'],
  });
}

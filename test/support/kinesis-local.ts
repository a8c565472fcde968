// Starts kinesis-local (the npm build of etspaceman/kinesis-mock) as a child process for the
// integration tests, plus a few unsigned-request helpers for driving it with plain fetch.
// Configuration variables: node_modules/kinesis-local/README.md, "Service Configuration".
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { freePort } from '../../scripts/local-kinesis.mjs';

/** Options for {@link startKinesisLocal}. */
export interface KinesisLocalOptions {
  /**
   * Extra environment variables for kinesis-local; they override the defaults
   * ({@link KINESIS_LOCAL_DEFAULT_ENV}). The parent's environment is NOT inherited (apart from
   * `PATH`), so a developer's `AWS_REGION` cannot change the mock's default region.
   * @default {}
   */
  env?: Record<string, string>;
  /**
   * How long to wait for the HTTP port to answer before failing with the child's output.
   * @default 30_000
   */
  startTimeoutMs?: number;
  /**
   * How long `stop()` waits after SIGTERM before sending SIGKILL.
   * @default 1_000
   */
  stopTimeoutMs?: number;
  /**
   * How many times to retry with fresh ports when a port was taken between probing and binding.
   * @default 3
   */
  portAttempts?: number;
}

/** A running kinesis-local. */
export interface KinesisLocal {
  /** Plain-HTTP endpoint, e.g. `http://127.0.0.1:41234`. */
  endpoint: string;
  /** The plain-HTTP port. */
  port: number;
  /** The TLS port (self-signed certificate from kinesis-local/server.json). */
  tlsPort: number;
  /** The child's process id. */
  pid: number;
  /** The last 64 KiB of the child's stdout and stderr (it logs WARN lines to stdout). */
  output(): string;
  /** Stops the child: SIGTERM, then SIGKILL after `stopTimeoutMs`. Idempotent. */
  stop(): Promise<void>;
}

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

/**
 * kinesis-local answers `MissingAuthenticationTokenException` without an `Authorization` header
 * and `IncompleteSignatureException` without `X-Amz-Date` (or `Date`), but never verifies the
 * signature or the date, so this fixed header is enough. Shape: a SigV4 header as in the
 * "Authorization header" example of the AWS SigV4 docs.
 */
export const DUMMY_AUTHORIZATION =
  'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0';

/** The Kinesis JSON protocol's target prefix (`X-Amz-Target: Kinesis_20131202.PutRecords`). */
export const KINESIS_TARGET_PREFIX = 'Kinesis_20131202.';

const OUTPUT_LIMIT = 64 * 1024;

// Runs main.js inside a wrapper that kills the process when its stdin closes, i.e. when the
// test runner dies without running teardown (SIGKILL, crash), so no orphan keeps the port.
const WATCHDOG = [
  "process.stdin.on('end', () => process.kill(process.pid, 'SIGKILL'));",
  "process.stdin.on('error', () => process.kill(process.pid, 'SIGKILL'));",
  'process.stdin.resume();',
  'require(process.argv[1]);',
].join('\n');

/** Resolves kinesis-local's package directory (holding main.js and server.json). */
export function kinesisLocalDir(): string {
  return dirname(createRequire(import.meta.url).resolve('kinesis-local/main.js'));
}


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
 * Starts kinesis-local on free loopback ports and waits until it answers ListStreams.
 * @example
 * const local = await startKinesisLocal();
 * try {
 *   await callKinesisOk(local.endpoint, 'ListStreams', {});
 * } finally {
 *   await local.stop();
 * }
 */
export async function startKinesisLocal(options: KinesisLocalOptions = {}): Promise<KinesisLocal> {
  const attempts = Math.max(1, options.portAttempts ?? 3);
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      lastError = error;
      if (!(error instanceof PortInUseError)) throw error;
    }
  }
  throw lastError;
}

class PortInUseError extends Error {}

async function startOnce(options: KinesisLocalOptions): Promise<KinesisLocal> {
  const dir = kinesisLocalDir();
  const port = await freePort();
  let tlsPort = await freePort();
  for (let i = 0; i < 5 && tlsPort === port; i++) tlsPort = await freePort();
  const env: Record<string, string> = {
    ...(process.env.PATH === undefined ? {} : { PATH: process.env.PATH }),
    ...KINESIS_LOCAL_DEFAULT_ENV,
    ...options.env,
    KINESIS_MOCK_PLAIN_PORT: String(port),
    KINESIS_MOCK_TLS_PORT: String(tlsPort),
    // main.js resolves the certificate against the working directory and crashes without it.
    KINESIS_MOCK_CERT_PATH: options.env?.KINESIS_MOCK_CERT_PATH ?? join(dir, 'server.json'),
  };
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(
    process.execPath,
    // All test files share one instance, and it keeps every record in memory: give it room.
    ['--max-old-space-size=6144', '-e', WATCHDOG, join(dir, 'main.js')],
    { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'] },
  );

  let output = '';
  const append = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  child.stdin.on('error', () => {});

  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', (error) => {
      append(Buffer.from(`\n[spawn error] ${String(error)}\n`));
      exited = true;
      resolve();
    });
  });

  let stopping: Promise<void> | undefined;
  const stopTimeoutMs = options.stopTimeoutMs ?? 1_000;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
      await exit;
      clearTimeout(timer);
      child.stdin.destroy();
      child.stdout.destroy();
      child.stderr.destroy();
    })();
    return stopping;
  };

  const endpoint = `http://127.0.0.1:${port}`;
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const deadline = Date.now() + startTimeoutMs;
  try {
    for (;;) {
      if (exited) {
        const message = `kinesis-local exited during start-up (ports ${port}/${tlsPort}):\n${output}`;
        throw /EADDRINUSE/.test(output) ? new PortInUseError(message) : new Error(message);
      }
      if (await answersListStreams(port)) break;
      if (Date.now() > deadline) {
        throw new Error(`kinesis-local did not answer on ${endpoint} within ${startTimeoutMs} ms:\n${output}`);
      }
      await Promise.race([new Promise((resolve) => setTimeout(resolve, 100)), exit]);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, port, tlsPort, pid: child.pid ?? -1, output: () => output, stop };
}

// Uses node:http without keep-alive: an idle keep-alive socket would make kinesis-local's
// graceful SIGTERM shutdown wait for the client's idle timeout (about 4 s with undici).
function answersListStreams(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const body = '{}';
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/',
        agent: false,
        timeout: 2_000,
        headers: { ...dummyKinesisHeaders('ListStreams'), 'Content-Length': Buffer.byteLength(body), Connection: 'close' },
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode === 200));
        res.once('error', () => resolve(false));
      },
    );
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => resolve(false));
    req.end(body);
  });
}

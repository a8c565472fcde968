/**
 * Writing accepted events to Kinesis through the library's producer, one producer per request:
 * a Worker must not share I/O (fetches, timers) between requests
 * (https://developers.cloudflare.com/workers/runtime-apis/context/), and a per-request producer
 * settles every record before the response is sent.
 *
 * Subrequest budget (the free plan allows 50 per request:
 * https://developers.cloudflare.com/workers/platform/limits/#subrequests): the request carries at
 * most 500 events and 64 KiB, so the producer sends one PutRecords; a record takes part in at most
 * {@link MAX_PUT_ATTEMPTS} PutRecords requests, each tried at most {@link CLIENT_ATTEMPTS} times by
 * the client: 3 × 2 = 6 subrequests in the worst case. No ListShards (`predictShards: false`), so
 * the IAM policy needs only `kinesis:PutRecords` (and `kinesis:DescribeStreamSummary` for /health).
 */
import {
  createKinesisClient,
  createProducer,
  describeStreamSummary,
  isKinesisError,
  isKinesisProducerError,
  isKinesisServiceError,
  type KinesisClient,
} from '../../src/index.ts';

/** PutRecords requests one record may take part in. */
export const MAX_PUT_ATTEMPTS = 3;
/** Attempts of one PutRecords by the client's own retry ladder. */
export const CLIENT_ATTEMPTS = 2;
/** A record not stored this long after the request arrived is answered `retry`. */
export const RECORD_BUDGET_MS = 8_000;
/** Time limit of one Kinesis HTTP attempt. */
export const ATTEMPT_TIMEOUT_MS = 4_000;

/** Settings read from the Worker's environment. */
export interface KinesisSettings {
  region: string;
  streamName: string;
  endpoint: string | undefined;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string | undefined;
}

/** One record to write: the event id it answers for, its partition key and its JSON. */
export interface OutgoingRecord {
  id: string;
  partitionKey: string;
  data: string;
}

/** Ids by outcome; `retry` holds those not confirmed stored (throttled, faults, unknown outcome). */
export interface WriteResult {
  stored: string[];
  retry: string[];
  /** Ids Kinesis itself refused as invalid records (should not happen after validation). */
  invalid: string[];
}

let cached: { key: string; client: KinesisClient } | undefined;

/**
 * One client per isolate and configuration: its signing-key cache and retry quota are plain data,
 * safe to share between requests (only I/O objects are not).
 */
export function kinesisClient(settings: KinesisSettings): KinesisClient {
  const key = JSON.stringify([settings.region, settings.endpoint, settings.accessKeyId, settings.secretAccessKey, settings.sessionToken]);
  if (cached?.key !== key) {
    cached = {
      key,
      client: createKinesisClient({
        region: settings.region,
        ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
        credentials: {
          accessKeyId: settings.accessKeyId,
          secretAccessKey: settings.secretAccessKey,
          ...(settings.sessionToken === undefined ? {} : { sessionToken: settings.sessionToken }),
        },
        retry: { maxAttempts: CLIENT_ATTEMPTS, maxDelayMs: 1_000 },
        timeoutMs: ATTEMPT_TIMEOUT_MS,
      }),
    };
  }
  return cached.client;
}

/** Writes the records and reports each id's outcome once every record has settled. */
export async function writeRecords(settings: KinesisSettings, records: readonly OutgoingRecord[]): Promise<WriteResult> {
  const result: WriteResult = { stored: [], retry: [], invalid: [] };
  if (records.length === 0) return result;
  const producer = createProducer(kinesisClient(settings), {
    streamName: settings.streamName,
    lingerMs: 0,
    predictShards: false,
    maxAttempts: MAX_PUT_ATTEMPTS,
    recordTtlMs: RECORD_BUDGET_MS,
    backoff: { baseDelayMs: 50, throttlingBaseDelayMs: 200, maxDelayMs: 1_000 },
    onRetry: (event) => logEvent('warn', 'kinesis records requeued', { reason: event.reason, records: event.records, codes: event.codes }),
  });
  const outcomes = records.map((record) =>
    producer.put({ partitionKey: record.partitionKey, data: record.data }).then(
      () => result.stored.push(record.id),
      (error: unknown) => {
        if (isKinesisProducerError(error) && (error.reason === 'invalid' || error.reason === 'too-large')) {
          result.invalid.push(record.id);
        } else {
          result.retry.push(record.id);
        }
        logEvent('warn', 'kinesis record not stored', describeError(error));
      },
    ),
  );
  await producer.close();
  await Promise.all(outcomes);
  return result;
}

/** The stream's status for /health, or undefined when Kinesis cannot be asked. */
export async function streamStatus(settings: KinesisSettings): Promise<string | undefined> {
  try {
    const { StreamDescriptionSummary } = await describeStreamSummary(kinesisClient(settings), { StreamName: settings.streamName });
    return StreamDescriptionSummary.StreamStatus;
  } catch (error) {
    logEvent('warn', 'health check failed', describeError(error));
    return undefined;
  }
}

/**
 * What may be logged about an error: its class, fault name and status. Never its message: the
 * service's messages name the account id and the stream ("Rate exceeded for shard … under
 * account 123456789012"), and never the request (its Authorization header).
 */
export function describeError(error: unknown): Record<string, unknown> {
  if (isKinesisProducerError(error)) return { error: error.name, reason: error.reason, code: error.code, attempts: error.attempts };
  if (isKinesisServiceError(error)) return { error: error.name, code: error.code, status: error.status };
  if (isKinesisError(error)) return { error: error.name };
  return { error: error instanceof Error ? error.name : typeof error };
}

/** One JSON log line (Workers Logs indexes JSON fields). */
export function logEvent(level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}): void {
  console[level === 'info' ? 'log' : level](JSON.stringify({ level, message, ...fields }));
}

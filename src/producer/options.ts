/**
 * The producer's options, their defaults, and the checks that refuse impossible settings early.
 */
import type { KinesisClient } from '../client.ts';
import { MAX_RECORDS_PER_PUT_RECORDS, SHARD_WRITE_BYTES_PER_SECOND, SHARD_WRITE_RECORDS_PER_SECOND } from '../limits.ts';
import type { KinesisProducerError } from './errors.ts';
import type { Rate } from './rate-limiter.ts';
import type { ProducerRecord } from './record.ts';

/** What happens to a `put()` while the buffer is full. */
export type WhenFullPolicy = 'reject' | 'wait';

/** Delivery order. */
export type ProducerOrdering = 'none' | 'per-key';

/** Why records go back to the queue, for {@link ProducerOptions.onRetry}. */
export interface ProducerRetryEvent {
  /**
   * `partial-failure`: PutRecords answered 200 with failed entries (throttled or InternalFailure);
   * only those are sent again; so are the user records of an aggregated record stored, after a
   * reshard, on a shard not known to hold their hash keys (code `WrongShard`: the KCL would drop
   * them there). `request-failed`: the whole request failed after the client's own retries
   * (throttling, 5xx, network, timeout). `unknown-outcome`: the answer cannot be matched to
   * the records (its `Records` count differs from the request), so all are sent again.
   */
  reason: 'partial-failure' | 'request-failed' | 'unknown-outcome';
  /** User records going back to the queue. */
  records: number;
  /** How many records failed with each code (per-record `ErrorCode`, or the request's fault). */
  codes: Readonly<Record<string, number>>;
  /** The request's error, for `request-failed`. */
  error?: unknown;
}

/** Options of {@link createProducer}. */
export interface ProducerOptions {
  /** The stream, by name. One of `streamName` and `streamARN` is required. */
  streamName?: string;
  /** The stream, by ARN (needed for cross-account access). */
  streamARN?: string;
  /**
   * The partition key of a record that has none.
   * @default a random key per record (spreads records evenly over the shards)
   */
  partitionKey?: (record: ProducerRecord) => string;
  /**
   * How long a record may wait for more records to share its request, in ms. A full batch goes
   * at once; `flush()` and `close()` send without waiting.
   * @default 100
   */
  lingerMs?: number;
  /**
   * Kinesis records per PutRecords request (aggregated records count one each), at most 500.
   * @default 500
   */
  maxBatchRecords?: number;
  /**
   * Bytes per PutRecords request, partition keys + data before base64.
   * @default client.limits.maxRequestBytes (5 MiB)
   */
  maxBatchBytes?: number;
  /**
   * PutRecords requests in flight at once.
   * @default 4
   */
  maxInFlight?: number;
  /**
   * Records held (queued, waiting to be retried, or in flight) before the buffer counts as full.
   * @default 10000
   */
  maxBufferedRecords?: number;
  /**
   * Bytes (partition keys + data) held before the buffer counts as full.
   * @default 16777216 (16 MiB)
   */
  maxBufferedBytes?: number;
  /**
   * What `put()` does while the buffer is full: `'reject'` rejects the new record with reason
   * `buffer-full`; `'wait'` holds it, in put order, until there is room (its time to live runs).
   * @default 'reject'
   */
  whenFull?: WhenFullPolicy;
  /**
   * A record not stored within this many ms of its `put()` fails with reason `expired` (it may
   * still be in the stream if its last request's outcome was unknown). `Infinity` for no limit.
   * @default 30000
   */
  recordTtlMs?: number;
  /**
   * PutRecords requests one record may take part in; then it fails with `retries-exhausted`.
   * @default Infinity (the time to live bounds retries)
   */
  maxAttempts?: number;
  /**
   * `'per-key'`: a partition key never has two requests in flight and never two Kinesis records
   * in one request, so its records are stored in put order even across retries. This limits one
   * key to one record per round trip unless `aggregation` packs its records together.
   * `'none'`: records of a key keep their order within a request and retried records go before
   * newer ones, but a retried record can land after a newer one of the same key.
   * @default 'none'
   */
  ordering?: ProducerOrdering;
  /**
   * Pack small user records bound for one shard into KPL aggregated records (readable by the KCL
   * and the `aws-kinesis-agg` deaggregators). `true` uses the KPL's 51200-byte maximum. Consumers
   * must deaggregate.
   * @default false
   */
  aggregation?: boolean | { maxBytes?: number };
  /**
   * List the stream's shards (ListShards, which needs `kinesis:ListShards`) to predict each
   * record's shard, limit the rate per shard and aggregate per shard. The first records wait for
   * that listing (one request; at most 1 s). Without it, the rate is limited per stream and only
   * records with the same key are aggregated together; turn it off for a short-lived producer
   * (one per Worker request) to save the extra request. A refused listing turns it off by itself.
   * @default true
   */
  predictShards?: boolean;
  /**
   * The most one shard is sent per second; the limiter halves it on throttling and regains it
   * over quiet seconds. Raise it for streams with more throughput per shard.
   * @default { recordsPerSecond: 1000, bytesPerSecond: 1048576 } (the service's per-shard write limits)
   */
  shardRate?: Partial<Rate>;
  /** Backoff before records go out again after a failure (full jitter). */
  backoff?: {
    /** @default 100 */
    baseDelayMs?: number;
    /** Base after throttling. @default 500 */
    throttlingBaseDelayMs?: number;
    /** @default 5000 */
    maxDelayMs?: number;
  };
  /** Called when records go back to the queue. Errors thrown by hooks are ignored. */
  onRetry?: (event: ProducerRetryEvent) => void;
  /** Called for every record that fails, whether it came from `put()` or `send()`. */
  onFailure?: (error: KinesisProducerError) => void;
  /** Called when listing the shards fails; `disabled` tells whether prediction is now off for good. */
  onShardMapError?: (error: unknown, disabled: boolean) => void;
  /**
   * Random numbers in [0, 1), for jitter and random partition keys.
   * @default Math.random
   */
  random?: () => number;
  /**
   * The clock in epoch ms; it must advance with the timers (real or faked).
   * @default Date.now
   */
  now?: () => number;
}

/** Options with every default filled in. */
export interface ResolvedProducerOptions {
  lingerMs: number;
  maxBatchRecords: number;
  maxBatchBytes: number;
  maxRecordBytes: number;
  maxInFlight: number;
  maxBufferedRecords: number;
  maxBufferedBytes: number;
  whenFull: WhenFullPolicy;
  recordTtlMs: number;
  maxAttempts: number;
  perKey: boolean;
  aggregateMaxBytes: number | undefined;
  predictShards: boolean;
  shardRate: Rate;
  baseDelayMs: number;
  throttlingBaseDelayMs: number;
  maxDelayMs: number;
  random: () => number;
  now: () => number;
}

/** The KPL's `AggregationMaxSize` default. */
export const DEFAULT_AGGREGATION_MAX_BYTES = 51_200;

function positive(name: string, value: number, options: { integer?: boolean; allowInfinity?: boolean; allowZero?: boolean } = {}): number {
  const ok =
    typeof value === 'number' &&
    !Number.isNaN(value) &&
    (options.allowZero ? value >= 0 : value > 0) &&
    (Number.isFinite(value) ? !options.integer || Number.isInteger(value) : options.allowInfinity === true);
  if (!ok) {
    const what = options.integer ? 'an integer' : 'a number';
    throw new RangeError(`createProducer: ${name} must be ${what} ${options.allowZero ? '≥ 0' : '> 0'}${options.allowInfinity ? ' or Infinity' : ''}, got ${String(value)}`);
  }
  return value;
}

export function resolveProducerOptions(client: KinesisClient, options: ProducerOptions): ResolvedProducerOptions {
  const limits = client.limits;
  const maxBatchRecords = positive('maxBatchRecords', options.maxBatchRecords ?? MAX_RECORDS_PER_PUT_RECORDS, { integer: true });
  if (maxBatchRecords > MAX_RECORDS_PER_PUT_RECORDS) {
    throw new RangeError(`createProducer: maxBatchRecords must be at most ${MAX_RECORDS_PER_PUT_RECORDS}, got ${maxBatchRecords}`);
  }
  const maxBatchBytes = positive('maxBatchBytes', options.maxBatchBytes ?? limits.maxRequestBytes, { integer: true });
  if (maxBatchBytes > limits.maxRequestBytes) {
    throw new RangeError(`createProducer: maxBatchBytes must be at most the client's maxRequestBytes (${limits.maxRequestBytes}), got ${maxBatchBytes}`);
  }
  let aggregateMaxBytes: number | undefined;
  if (options.aggregation) {
    const requested = typeof options.aggregation === 'object' ? options.aggregation.maxBytes : undefined;
    aggregateMaxBytes = positive('aggregation.maxBytes', requested ?? Math.min(DEFAULT_AGGREGATION_MAX_BYTES, limits.maxRecordBytes), { integer: true });
    if (aggregateMaxBytes > limits.maxRecordBytes) {
      throw new RangeError(`createProducer: aggregation.maxBytes must be at most the record limit (${limits.maxRecordBytes}), got ${aggregateMaxBytes}`);
    }
  }
  const whenFull = options.whenFull ?? 'reject';
  if (whenFull !== 'reject' && whenFull !== 'wait') throw new RangeError(`createProducer: whenFull must be 'reject' or 'wait', got ${String(whenFull)}`);
  const ordering = options.ordering ?? 'none';
  if (ordering !== 'none' && ordering !== 'per-key') throw new RangeError(`createProducer: ordering must be 'none' or 'per-key', got ${String(ordering)}`);
  return {
    lingerMs: positive('lingerMs', options.lingerMs ?? 100, { allowZero: true }),
    maxBatchRecords,
    maxBatchBytes,
    maxRecordBytes: limits.maxRecordBytes,
    maxInFlight: positive('maxInFlight', options.maxInFlight ?? 4, { integer: true }),
    maxBufferedRecords: positive('maxBufferedRecords', options.maxBufferedRecords ?? 10_000, { integer: true, allowInfinity: true }),
    maxBufferedBytes: positive('maxBufferedBytes', options.maxBufferedBytes ?? 16 * 1024 * 1024, { integer: true, allowInfinity: true }),
    whenFull,
    recordTtlMs: positive('recordTtlMs', options.recordTtlMs ?? 30_000, { allowInfinity: true }),
    maxAttempts: positive('maxAttempts', options.maxAttempts ?? Number.POSITIVE_INFINITY, { integer: true, allowInfinity: true }),
    perKey: ordering === 'per-key',
    aggregateMaxBytes,
    predictShards: options.predictShards ?? true,
    shardRate: {
      recordsPerSecond: positive('shardRate.recordsPerSecond', options.shardRate?.recordsPerSecond ?? SHARD_WRITE_RECORDS_PER_SECOND, { allowInfinity: true }),
      bytesPerSecond: positive('shardRate.bytesPerSecond', options.shardRate?.bytesPerSecond ?? SHARD_WRITE_BYTES_PER_SECOND, { allowInfinity: true }),
    },
    baseDelayMs: positive('backoff.baseDelayMs', options.backoff?.baseDelayMs ?? 100, { allowZero: true }),
    throttlingBaseDelayMs: positive('backoff.throttlingBaseDelayMs', options.backoff?.throttlingBaseDelayMs ?? 500, { allowZero: true }),
    maxDelayMs: positive('backoff.maxDelayMs', options.backoff?.maxDelayMs ?? 5_000, { allowZero: true }),
    random: options.random ?? Math.random,
    now: options.now ?? Date.now,
  };
}

/**
 * Reading one shard through an enhanced fan-out consumer: subscriptions renewed back to back from
 * the last continuation point, so that a reader sees one unbroken sequence of records across the
 * service's 5-minute subscription limit, dropped connections and throttling, in the same shapes
 * as the polling reader (`readShardBatches`), which the stream reader takes either way.
 * https://docs.aws.amazon.com/streams/latest/dev/building-enhanced-consumers-api.html
 */
import { getClockOffset, type KinesisClient } from '../client.ts';
import { KinesisError, isKinesisError, isKinesisServiceError } from '../errors.ts';
import { createFailureBackoff, resolvePolling, unwrapRetryQuotaError, type ShardPollingOptions } from '../consumer/polling.ts';
import { checkStartPosition, type StartPosition, type StreamRef } from '../consumer/position.ts';
import { recordsOf, type ShardBatch, type ShardEnd } from '../consumer/read-shard.ts';
import { deaggregateRecord, plainRecord, type ConsumerRecord } from '../consumer/record.ts';
import { subscribeToShard, type StartingPosition } from './subscribe.ts';

export interface ReadShardEnhancedOptions extends StreamRef, ShardPollingOptions {
  /** The ACTIVE consumer to read through (see `ensureStreamConsumer`). */
  consumerARN: string;
  shardId: string;
  /** Where to start. */
  from: StartPosition;
  /** Stops reading: the subscription or wait is cancelled and the iterator throws the signal's reason. */
  signal?: AbortSignal;
  /**
   * Split KPL aggregated records into their user records.
   * @default true
   */
  deaggregate?: boolean;
  /**
   * Longest silence on a subscription before it is renewed (the service sends events even when
   * no records arrive).
   * @default 30000
   */
  idleTimeoutMs?: number;
}

/** How far before our clock a renewed LATEST subscription starts (AT_TIMESTAMP), for clock error. */
const LATEST_RENEWAL_MARGIN_MS = 5_000;

type FailureKind = 'throttling' | 'transient' | 'fatal';

function failureKind(error: unknown): FailureKind {
  const failure = unwrapRetryQuotaError(error);
  if (isKinesisServiceError(failure)) {
    // ResourceInUseException: the previous subscription to this shard is still held (AWS keeps it
    // for a few seconds after a dropped connection); LimitExceededException: more than one
    // subscribe call per second. Both pass with time.
    if (failure.code === 'ResourceInUseException' || failure.code === 'LimitExceededException' || failure.kind === 'throttling') return 'throttling';
    return failure.retryable ? 'transient' : 'fatal';
  }
  return isKinesisError(failure) && failure.retryable ? 'transient' : 'fatal';
}

/** The SubscribeToShard position for `from`; inside a KPL aggregate, start at it again. */
function startingPosition(from: StartPosition): StartingPosition {
  switch (from.type) {
    case 'TRIM_HORIZON':
    case 'LATEST':
      return { Type: from.type };
    case 'AT_SEQUENCE_NUMBER':
      return { Type: 'AT_SEQUENCE_NUMBER', SequenceNumber: from.sequenceNumber };
    case 'AFTER_SEQUENCE_NUMBER':
      return { Type: from.subSequenceNumber === undefined ? 'AFTER_SEQUENCE_NUMBER' : 'AT_SEQUENCE_NUMBER', SequenceNumber: from.sequenceNumber };
    case 'AT_TIMESTAMP':
      return { Type: 'AT_TIMESTAMP', Timestamp: from.timestamp };
  }
}

/**
 * Reads one shard through an enhanced fan-out consumer, as batches: one per event that carried
 * records, and a last one (possibly empty) with `isShardEnd` and `childShards` when the shard is
 * closed and fully read. The return value is the same {@link ShardEnd}.
 *
 * Each subscription is renewed when the service ends it (every 5 minutes), when the connection
 * drops or goes silent, or after throttling, from `AFTER_SEQUENCE_NUMBER` of the last event's
 * `ContinuationSequenceNumber`: no record is skipped and none delivered twice (an event cut off
 * in transit was never delivered, and is read again). Backoff and the give-up count are those of
 * the polling reader (`throttleDelayMs`, `maxThrottleDelayMs`, `maxConsecutiveErrors`); its pacing
 * options (`limit`, `pollIntervalMs`, …) do not apply, as the service pushes.
 *
 * One consumer may hold one subscription per shard: two readers of the same shard through the
 * same consumer take turns failing with ResourceInUseException.
 *
 * @example
 * ```ts
 * for await (const batch of readShardEnhancedBatches(client, { consumerARN, shardId: 'shardId-000000000000', from: { type: 'LATEST' } })) {
 *   await saveAll(batch.records);
 * }
 * ```
 */
export async function* readShardEnhancedBatches(
  client: KinesisClient,
  options: ReadShardEnhancedOptions,
): AsyncGenerator<ShardBatch, ShardEnd, undefined> {
  const caller = 'readShardEnhanced';
  if (typeof options.consumerARN !== 'string' || options.consumerARN === '') throw new TypeError(`${caller}: consumerARN is required`);
  if (typeof options.shardId !== 'string' || options.shardId === '') throw new TypeError(`${caller}: shardId is required`);
  checkStartPosition(options.from, caller);
  const polling = resolvePolling(options, caller);
  const { shardId, from, signal, consumerARN } = options;
  const deaggregate = options.deaggregate ?? true;
  const skip = from.type === 'AFTER_SEQUENCE_NUMBER' && from.subSequenceNumber !== undefined ? from : undefined;

  /** The last event's continuation point: where the next subscription starts. */
  let continuation: string | undefined;
  let latestAnchor: Date | undefined;
  const backoff = createFailureBackoff(polling, signal);

  const position = (): StartPosition => {
    if (continuation !== undefined) return { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: continuation };
    if (from.type === 'LATEST' && latestAnchor !== undefined) return { type: 'AT_TIMESTAMP', timestamp: latestAnchor };
    return from;
  };

  const backOff = (error: unknown): Promise<void> => backoff.recover(error, failureKind(error));

  for (;;) {
    if (signal?.aborted) throw signal.reason;
    const start = position();
    const requestedAt = Date.now();
    let events = 0;
    try {
      for await (const event of subscribeToShard(
        client,
        { ConsumerARN: consumerARN, ShardId: shardId, StartingPosition: startingPosition(start) },
        { signal, idleTimeoutMs: options.idleTimeoutMs },
      )) {
        events++;
        backoff.reset();
        const records: ConsumerRecord[] = [];
        for (const record of event.Records) {
          const converted = deaggregate ? deaggregateRecord(record, shardId) : [plainRecord(record, shardId)];
          for (const user of converted) {
            if (skip && user.sequenceNumber === skip.sequenceNumber && user.subSequenceNumber !== undefined && user.subSequenceNumber <= skip.subSequenceNumber!) {
              continue;
            }
            records.push(user);
          }
        }
        const isEnd = event.ContinuationSequenceNumber === undefined || (event.ChildShards?.length ?? 0) > 0;
        if (isEnd) {
          const childShards = event.ChildShards ?? [];
          yield { shardId, records, millisBehindLatest: event.MillisBehindLatest, isShardEnd: true, childShards };
          // Aborted while the caller held the last batch: the next call throws, as after any batch.
          if (signal?.aborted) throw signal.reason;
          return { childShards };
        }
        continuation = event.ContinuationSequenceNumber;
        if (records.length > 0) yield { shardId, records, millisBehindLatest: event.MillisBehindLatest, isShardEnd: false };
      }
    } catch (error) {
      if (start.type === 'LATEST' && latestAnchor === undefined && continuation === undefined) {
        latestAnchor = new Date(requestedAt + getClockOffset(client) - LATEST_RENEWAL_MARGIN_MS);
      }
      await backOff(error);
      continue;
    }
    // The service ended the subscription (its 5 minutes are up): renew at once. One that ended
    // without a single event is a fault, so that a server closing at once does not make us spin.
    if (events === 0) {
      if (start.type === 'LATEST' && latestAnchor === undefined) latestAnchor = new Date(requestedAt + getClockOffset(client) - LATEST_RENEWAL_MARGIN_MS);
      await backoff.countFailure(
        (count: number) => new KinesisError(`${caller}: ${count} subscriptions to ${shardId} in a row ended without an event`, { operation: 'SubscribeToShard' }),
      );
    }
  }
}

/**
 * Reads one shard through an enhanced fan-out consumer record by record (KPL aggregates split by
 * default). The iterator finishes when the shard is closed and fully read; its return value is a
 * {@link ShardEnd} with the child shards. Renewal and cancellation are those of
 * {@link readShardEnhancedBatches}.
 *
 * @example
 * ```ts
 * const { ConsumerARN } = await ensureStreamConsumer(client, { StreamName: 'clicks', ConsumerName: 'dashboard' });
 * for await (const record of readShardEnhanced(client, { consumerARN: ConsumerARN, shardId: 'shardId-000000000000', from: { type: 'LATEST' } })) {
 *   console.log(record.partitionKey, recordText(record));
 * }
 * ```
 */
export function readShardEnhanced(client: KinesisClient, options: ReadShardEnhancedOptions): AsyncGenerator<ConsumerRecord, ShardEnd, undefined> {
  // The signal too: once it aborted, the rest of a batch already received is not handed out.
  return recordsOf(readShardEnhancedBatches(client, options), options.signal);
}

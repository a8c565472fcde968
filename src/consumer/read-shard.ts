/**
 * Reading one shard with GetShardIterator + GetRecords, the way the KCL's polling fetcher does:
 * within the per-shard limits, backing off when idle or throttled, renewing an expired iterator
 * from the last record delivered, and ending when the shard is closed and read to its end.
 * https://docs.aws.amazon.com/streams/latest/dev/developing-consumers-with-sdk.html
 */
import { getClockOffset, type KinesisClient } from '../client.ts';
import { isKinesisError, isKinesisServiceError } from '../errors.ts';
import { sleep } from '../internal/sleep.ts';
import { getRecords } from '../operations/get-records.ts';
import { getShardIterator } from '../operations/get-shard-iterator.ts';
import type { ChildShard, KinesisRecord } from '../shapes.ts';
import { createFailureBackoff, idleDelay, nextCallTime, resolvePolling, unwrapRetryQuotaError, type ShardPollingOptions } from './polling.ts';
import { checkStartPosition, checkStreamRef, shardIteratorInput, type StartPosition, type StreamRef } from './position.ts';
import { deaggregateRecord, plainRecord, type ConsumerRecord } from './record.ts';

/** Options of {@link readShard} and {@link readShardBatches}. */
export interface ReadShardOptions extends StreamRef, ShardPollingOptions {
  /** The shard to read, e.g. `shardId-000000000000`. */
  shardId: string;
  /** Where to start. */
  from: StartPosition;
  /** Stops reading: the pending request or wait is cancelled and the iterator throws the signal's reason. */
  signal?: AbortSignal;
  /**
   * Split KPL aggregated records into their user records.
   * @default true
   */
  deaggregate?: boolean;
}

/** What one GetRecords call delivered. */
export interface ShardBatch {
  shardId: string;
  /** The records, in shard order (user records of an aggregate in their order). May be empty only when `isShardEnd`. */
  records: ConsumerRecord[];
  /** How far this shard's reader is behind its newest record, in ms (0: caught up). */
  millisBehindLatest: number | undefined;
  /** True on the last batch of a closed shard: nothing more will come from it. */
  isShardEnd: boolean;
  /** The shards that took over this shard's hash range; set on the last batch only. */
  childShards?: ChildShard[];
}

/** How a shard reader ended: the shard was closed (split or merged) and read to its end. */
export interface ShardEnd {
  /** The shards that took over its hash range (one or two after a split, one after a merge; none when unknown). */
  childShards: ChildShard[];
}

/** Consecutive expired iterators (without a successful read in between) before giving up. */
const MAX_CONSECUTIVE_EXPIRATIONS = 3;
/** How far before our clock a renewed LATEST iterator starts (AT_TIMESTAMP), for clock error. */
const LATEST_RENEWAL_MARGIN_MS = 5_000;

type FailureKind = 'expired' | 'throttling' | 'transient' | 'fatal';

/** How a shard reader (and the stream reader's listings) treat a failed call. */
export function failureKind(error: unknown): FailureKind {
  const failure = unwrapRetryQuotaError(error);
  if (isKinesisServiceError(failure)) {
    if (failure.code === 'ExpiredIteratorException') return 'expired';
    if (failure.kind === 'throttling') return 'throttling';
    return failure.retryable ? 'transient' : 'fatal';
  }
  return isKinesisError(failure) && failure.retryable ? 'transient' : 'fatal';
}

function recordBytes(records: readonly KinesisRecord[]): number {
  let bytes = 0;
  for (const record of records) bytes += record.Data.length + (record.PartitionKey?.length ?? 0);
  return bytes;
}

/**
 * Reads one shard as batches, one per GetRecords call that returned records, and a last one
 * (possibly empty) with `isShardEnd` and `childShards` when the shard is closed and fully read.
 * The generator's return value is the same {@link ShardEnd}.
 *
 * Nothing is fetched while the caller holds a batch: the next GetRecords call is made when the
 * caller asks for the next batch (and the pacing allows). Breaking out of `for await` or aborting
 * the signal leaves no timer or request behind.
 *
 * An expired iterator is renewed with `AFTER_SEQUENCE_NUMBER` of the last record delivered (or,
 * before any delivery, from the original position; a `LATEST` start becomes `AT_TIMESTAMP` of when
 * reading began, less a few seconds), so no record is skipped and none is delivered twice.
 *
 * @example
 * ```ts
 * for await (const batch of readShardBatches(client, { streamName: 'clicks', shardId: 'shardId-000000000000', from: { type: 'TRIM_HORIZON' } })) {
 *   await saveAll(batch.records);
 *   if (batch.isShardEnd) console.log('continue with', batch.childShards?.map((c) => c.ShardId));
 * }
 * ```
 */
export async function* readShardBatches(client: KinesisClient, options: ReadShardOptions): AsyncGenerator<ShardBatch, ShardEnd, undefined> {
  const caller = 'readShard';
  checkStreamRef(options, caller);
  if (typeof options.shardId !== 'string' || options.shardId === '') throw new TypeError(`${caller}: shardId is required`);
  checkStartPosition(options.from, caller);
  const polling = resolvePolling(options, caller);
  const { shardId, from, signal } = options;
  const deaggregate = options.deaggregate ?? true;
  // A resumed checkpoint inside an aggregate: skip its user records up to this one.
  const skip = from.type === 'AFTER_SEQUENCE_NUMBER' && from.subSequenceNumber !== undefined ? from : undefined;

  let iterator: string | undefined;
  let lastDelivered: string | undefined;
  let latestAnchor: Date | undefined;
  let nextCallAt = 0;
  let emptyResponses = 0;
  const backoff = createFailureBackoff(polling, signal);
  let expirations = 0;

  const wait = async (until: number): Promise<void> => {
    const ms = until - Date.now();
    if (ms > 0) await sleep(ms, signal);
  };

  // Backs off for a retryable failure, or throws it.
  const recover = (error: unknown): Promise<void> => backoff.recover(error, failureKind(error));

  // After the last batch: aborted while the caller held it, the next call throws the reason, as
  // after any other batch, instead of ending as if nothing happened (found by
  // test/unit/consumer-invariants.test.ts).
  const shardEnd = (childShards: ChildShard[]): ShardEnd => {
    if (signal?.aborted) throw signal.reason;
    return { childShards };
  };

  const restartPosition = (): StartPosition => {
    if (lastDelivered !== undefined) return { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: lastDelivered };
    if (from.type === 'LATEST' && latestAnchor !== undefined) return { type: 'AT_TIMESTAMP', timestamp: latestAnchor };
    return from;
  };

  for (;;) {
    if (signal?.aborted) throw signal.reason;
    if (iterator === undefined) {
      const position = restartPosition();
      const requestedAt = Date.now();
      let answer;
      try {
        answer = await getShardIterator(client, shardIteratorInput(options, shardId, position), { signal });
      } catch (error) {
        await recover(error);
        continue;
      }
      if (position.type === 'LATEST') {
        latestAnchor = new Date(requestedAt + getClockOffset(client) - LATEST_RENEWAL_MARGIN_MS);
      }
      if (!answer.ShardIterator) {
        // No iterator: the shard has nothing left to read (children are unknown here).
        yield { shardId, records: [], millisBehindLatest: undefined, isShardEnd: true, childShards: [] };
        return shardEnd([]);
      }
      iterator = answer.ShardIterator;
    }

    await wait(nextCallAt);
    const startedAt = Date.now();
    let page;
    try {
      page = await getRecords(
        client,
        { ShardIterator: iterator, Limit: polling.limit, ...(options.streamARN ? { StreamARN: options.streamARN } : {}) },
        { signal },
      );
    } catch (error) {
      if (failureKind(error) === 'expired' && !signal?.aborted) {
        expirations++;
        if (expirations > MAX_CONSECUTIVE_EXPIRATIONS) throw error;
        iterator = undefined;
        continue;
      }
      // The iterator of a throttled or failed call stays valid (for 5 minutes): retry with it.
      await recover(error);
      continue;
    }
    const respondedAt = Date.now();
    expirations = 0;
    backoff.reset();

    const raw = page.Records;
    nextCallAt = nextCallTime(startedAt, respondedAt, recordBytes(raw), polling);
    if (raw.length > 0) {
      emptyResponses = 0;
    } else if (page.NextShardIterator && !page.MillisBehindLatest) {
      // Caught up and nothing new: poll less often. (An empty page while behind is a gap: go on.)
      emptyResponses++;
      nextCallAt = Math.max(nextCallAt, respondedAt + idleDelay(emptyResponses, polling));
    }

    const records: ConsumerRecord[] = [];
    for (const record of raw) {
      const converted = deaggregate ? deaggregateRecord(record, shardId) : [plainRecord(record, shardId)];
      for (const user of converted) {
        if (skip && user.sequenceNumber === skip.sequenceNumber && user.subSequenceNumber !== undefined && user.subSequenceNumber <= skip.subSequenceNumber!) {
          continue;
        }
        records.push(user);
      }
    }
    if (raw.length > 0) lastDelivered = raw[raw.length - 1]!.SequenceNumber;
    iterator = page.NextShardIterator;

    if (iterator === undefined) {
      const childShards = page.ChildShards ?? [];
      yield { shardId, records, millisBehindLatest: page.MillisBehindLatest, isShardEnd: true, childShards };
      return shardEnd(childShards);
    }
    if (records.length > 0) yield { shardId, records, millisBehindLatest: page.MillisBehindLatest, isShardEnd: false };
  }
}

/**
 * Reads one shard record by record (KPL aggregates split into user records by default). The
 * iterator finishes when the shard is closed and fully read; its return value (seen by calling
 * `next()` yourself) is a {@link ShardEnd} with the child shards. Pacing, backoff, iterator
 * renewal and cancellation are those of {@link readShardBatches}.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * for await (const record of readShard(client, {
 *   streamName: 'clicks',
 *   shardId: 'shardId-000000000000',
 *   from: { type: 'LATEST' },
 *   signal: controller.signal,
 * })) {
 *   console.log(record.partitionKey, recordText(record));
 * }
 * ```
 */
export function readShard(client: KinesisClient, options: ReadShardOptions): AsyncGenerator<ConsumerRecord, ShardEnd, undefined> {
  return recordsOf(readShardBatches(client, options), options.signal);
}

/**
 * The records of a shard reader's batches, one by one; returns what the batches return. Leaving
 * early (break, abort) ends the batch reader too. Shared by the polling and enhanced readers.
 *
 * Once `signal` is aborted the next call throws its reason, as the batch reader does, instead of
 * giving the rest of a batch already fetched (up to `limit` records after the abort; found by
 * test/unit/consumer-invariants.test.ts).
 */
export async function* recordsOf(
  batches: AsyncGenerator<ShardBatch, ShardEnd, undefined>,
  signal?: AbortSignal,
): AsyncGenerator<ConsumerRecord, ShardEnd, undefined> {
  try {
    for (;;) {
      const step = await batches.next();
      if (step.done) return step.value;
      for (const record of step.value.records) {
        if (signal?.aborted) throw signal.reason;
        yield record;
      }
    }
  } finally {
    await batches.return({ childShards: [] });
  }
}

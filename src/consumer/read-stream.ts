/**
 * Reading a whole stream: every shard concurrently, children after their parents, new shards
 * picked up as they appear, with optional checkpoints. The KCL does this with leases in DynamoDB
 * and one worker per shard; here one async iterator merges the shard readers, for a single reader
 * process (one browser tab, one Durable Object, one script).
 * https://docs.aws.amazon.com/streams/latest/dev/shared-throughput-kcl-consumers.html
 */
import type { KinesisClient } from '../client.ts';
import { sleep } from '../internal/sleep.ts';
import { listAllShards } from '../paginate.ts';
import { SHARD_END, type CheckpointStore } from './checkpoints.ts';
import { createHandoff } from './handoff.ts';
import { childShardInfo, createLineage, shardInfo, type ShardInfo, type ShardNode } from './lineage.ts';
import { createFailureBackoff, resolvePolling, type ShardPollingOptions } from './polling.ts';
import { checkStartPosition, checkStreamRef, streamFields, type StreamRef, type StreamStartPosition } from './position.ts';
import { failureKind, readShardBatches, type ReadShardOptions, type ShardBatch, type ShardEnd } from './read-shard.ts';
import type { ConsumerRecord } from './record.ts';
import type { ChildShard } from '../shapes.ts';

/** Options of {@link readStream}; the polling options apply to each shard reader. */
export interface ReadStreamOptions extends StreamRef, ShardPollingOptions {
  /**
   * Where shards without a checkpoint start. `TRIM_HORIZON`: the oldest record of every shard,
   * oldest shards first. `LATEST`: new records only (shards already closed are skipped).
   * `AT_TIMESTAMP`: records that arrived at or after the time. A child of a shard that was read
   * (in this run or an earlier one) starts at its oldest record, under `AT_TIMESTAMP` at the time.
   */
  from: StreamStartPosition;
  /** Stops reading: pending requests and waits are cancelled and the iterator throws the signal's reason. */
  signal?: AbortSignal;
  /** Where progress is kept; reading resumes after the stored positions. */
  checkpoints?: CheckpointStore;
  /**
   * With `checkpoints`: `'batch'` stores a shard's position once every record of one GetRecords
   * batch has been processed (when you ask for the next record), `'manual'` stores nothing but
   * shard ends: call {@link checkpointRecord} yourself. In both modes a shard read to its end is
   * stored as `SHARD_END` once its last record is processed (in manual mode: once you checkpointed
   * it), so a resumed reader goes straight on with its children.
   * @default 'batch'
   */
  checkpointing?: 'batch' | 'manual';
  /**
   * Split KPL aggregated records into their user records.
   * @default true
   */
  deaggregate?: boolean;
  /**
   * How often to list the shards again to find new ones (children are found at once through
   * GetRecords' `ChildShards`; this catches the rest). `0` turns it off.
   * @default 30000
   */
  shardRefreshIntervalMs?: number;
  /**
   * How one shard is read. The enhanced fan-out reader (`readStreamEnhanced` in
   * src/event-stream/) passes its SubscribeToShard reader here; it yields the same batches.
   * @default readShardBatches (GetRecords polling)
   */
  readShardBatches?: (client: KinesisClient, options: ReadShardOptions) => AsyncGenerator<ShardBatch, ShardEnd, undefined>;
}

type Item =
  | { kind: 'record'; record: ConsumerRecord; endsBatch: boolean }
  | { kind: 'end'; shardId: string; childShards: ChildShard[] };

/**
 * Reads every shard of a stream concurrently and yields their records as one async iterator.
 *
 * - **Order**: records of one shard come in shard order, so records of one partition key keep
 *   their order; a child shard is read only after all its parents have been read to their end and
 *   their last record processed, so that order also holds across a split or a merge.
 * - **Backpressure**: a shard reader fetches again only after its records have been taken; memory
 *   is bounded by one GetRecords batch per shard being read (lower `limit` to bound it further).
 * - **Stopping**: `break` out of `for await`, or abort `signal`: every timer and request is
 *   cancelled before the iterator settles.
 * - **Delivery**: at least once across restarts (records after the last checkpoint are delivered
 *   again); exactly once within one run, also across expired iterators and throttling.
 * - **Failures**: throttling is waited out; other retryable faults (5xx, network) of GetRecords,
 *   GetShardIterator and ListShards, the first listing included, are waited out up to
 *   `maxConsecutiveErrors` in a row; anything else (no such stream, access denied) ends the
 *   iteration with the error.
 *
 * Concurrent readers of one stream are not coordinated: use one reader per stream and store.
 *
 * @example
 * ```ts
 * const checkpoints = createStorageCheckpointStore(localStorage, { prefix: 'clicks:' });
 * for await (const record of readStream(client, { streamName: 'clicks', from: { type: 'TRIM_HORIZON' }, checkpoints })) {
 *   const event = recordJson<{ page: string }>(record);
 *   console.log(record.shardId, record.partitionKey, event.page);
 * }
 * ```
 */
export async function* readStream(client: KinesisClient, options: ReadStreamOptions): AsyncGenerator<ConsumerRecord, void, undefined> {
  const caller = 'readStream';
  checkStreamRef(options, caller);
  checkStartPosition(options.from, caller);
  if (!['TRIM_HORIZON', 'LATEST', 'AT_TIMESTAMP'].includes(options.from.type)) {
    throw new TypeError(`${caller}: from.type must be TRIM_HORIZON, LATEST or AT_TIMESTAMP (sequence numbers belong to one shard)`);
  }
  const polling = resolvePolling(options, caller);
  const store = options.checkpoints;
  const checkpointing = options.checkpointing ?? 'batch';
  if (checkpointing !== 'batch' && checkpointing !== 'manual') throw new TypeError(`${caller}: checkpointing must be 'batch' or 'manual'`);
  const refreshEvery = options.shardRefreshIntervalMs ?? 30_000;
  if (!(refreshEvery >= 0)) throw new RangeError(`${caller}: shardRefreshIntervalMs must be ≥ 0`);

  const outer = options.signal;
  if (outer?.aborted) throw outer.reason;
  const controller = new AbortController();
  const relay = () => controller.abort(outer!.reason);
  outer?.addEventListener('abort', relay, { once: true });
  const { signal } = controller;

  const handoff = createHandoff<Item>(signal);
  const lineage = createLineage(options.from);
  const tasks = new Set<Promise<void>>();
  /** Per shard, the last record yielded in this run. */
  const delivered = new Map<string, ConsumerRecord>();
  const {
    checkpoints: _store,
    checkpointing: _mode,
    shardRefreshIntervalMs: _refresh,
    from: _from,
    signal: _signal,
    readShardBatches: readShard = readShardBatches,
    ...shardOptions
  } = options;

  const track = (task: Promise<void>) => {
    tasks.add(task);
    void task.then(() => tasks.delete(task));
  };
  // A failure outside the consumer's call (a shard reader, the periodic refresh) ends the iteration.
  const failInBackground = (error: unknown) => {
    if (!signal.aborted) handoff.fail(error);
  };

  const startReader = (node: ShardNode) => {
    const from = node.start!;
    track(
      (async () => {
        try {
          for await (const batch of readShard(client, { ...shardOptions, shardId: node.shardId, from, signal })) {
            const last = batch.records.length - 1;
            for (let i = 0; i <= last; i++) await handoff.put({ kind: 'record', record: batch.records[i]!, endsBatch: i === last });
            if (batch.isShardEnd) await handoff.put({ kind: 'end', shardId: node.shardId, childShards: batch.childShards ?? [] });
          }
        } catch (error) {
          failInBackground(error);
        }
      })(),
    );
  };

  const addShards = async (shards: readonly ShardInfo[], atStart: boolean) => {
    const added = lineage.add(shards, atStart);
    await Promise.all(added.map(async (node) => lineage.loaded(node, store ? await store.get(node.shardId) : undefined)));
    lineage.decide();
    for (const node of lineage.takeReady()) startReader(node);
  };

  const refresh = async (atStart: boolean) => {
    const shards: ShardInfo[] = [];
    for await (const shard of listAllShards(client, streamFields(options), { signal })) shards.push(shardInfo(shard));
    await addShards(shards, atStart);
  };

  // A listing the iteration waits for (the first one, a shard ended with children or a merge
  // partner not known yet, or every known shard is finished): a throttled or failed ListShards is
  // waited out as a shard reader waits out GetRecords' (same backoff, same limit on other failures
  // in a row), not thrown at the caller, which would end a long-running read over one
  // LimitExceededException (found by test/unit/consumer-invariants.test.ts) or fail a start that
  // a moment's patience would have made. A fault that waiting cannot mend (no such stream, access
  // denied) is still thrown at once.
  const listingBackoff = createFailureBackoff(polling, signal);
  const relist = async (atStart = false) => {
    for (;;) {
      try {
        await refresh(atStart);
        listingBackoff.reset();
        return;
      } catch (error) {
        await listingBackoff.recover(error, failureKind(error));
      }
    }
  };

  const finishShard = async (shardId: string, childShards: ChildShard[]) => {
    lineage.finish(shardId);
    const last = delivered.get(shardId);
    delivered.delete(shardId);
    if (store) {
      let isProcessed = checkpointing === 'batch' || last === undefined;
      if (!isProcessed) {
        const stored = await store.get(shardId);
        isProcessed = stored?.sequenceNumber === last!.sequenceNumber && stored.subSequenceNumber === last!.subSequenceNumber;
      }
      if (isProcessed) await store.set(shardId, SHARD_END);
    }
    const children = childShards.map(childShardInfo);
    // No children reported, or a child with a parent never listed (a merge partner that appeared
    // after the last listing): list again so every parent is known before a child starts.
    if (children.length === 0 || children.some((child) => lineage.hasUnknownParent(child))) await relist();
    await addShards(children, false);
  };

  try {
    await relist(true);
    if (refreshEvery > 0 && refreshEvery < Infinity) {
      track(
        (async () => {
          while (!signal.aborted) {
            try {
              await sleep(refreshEvery, signal);
              await refresh(false);
            } catch (error) {
              // Retryable failures wait for the next round; the client already retried them. Judged
              // as the listings a shard end waits for are: by its cause when the retry quota is
              // spent, where one ListShards 500 used to end the iteration (found by
              // test/unit/enhanced-invariants.test.ts).
              if (!signal.aborted && failureKind(error) === 'fatal') failInBackground(error);
            }
          }
        })(),
      );
    }

    let previous: { record: ConsumerRecord; endsBatch: boolean } | undefined;
    for (;;) {
      if (signal.aborted) throw signal.reason;
      // Asking for the next record means the previous one is processed.
      if (previous && store && checkpointing === 'batch' && previous.endsBatch) {
        const { record } = previous;
        await store.set(record.shardId, record.sequenceNumber, record.subSequenceNumber);
      }
      previous = undefined;
      if (lineage.isComplete()) {
        await relist();
        if (lineage.isComplete()) return;
      }
      const item = await handoff.take();
      if (item.kind === 'end') {
        await finishShard(item.shardId, item.childShards);
        continue;
      }
      previous = item;
      delivered.set(item.record.shardId, item.record);
      yield item.record;
    }
  } finally {
    outer?.removeEventListener('abort', relay);
    controller.abort();
    await Promise.allSettled([...tasks]);
  }
}

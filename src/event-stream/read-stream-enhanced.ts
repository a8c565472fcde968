/**
 * The stream reader in enhanced fan-out mode: `readStream`'s lineage, checkpoints, backpressure
 * and cancellation, with each shard read through SubscribeToShard instead of GetRecords.
 * https://docs.aws.amazon.com/streams/latest/dev/enhanced-consumers.html
 */
import type { KinesisClient } from '../client.ts';
import { readStream, type ReadStreamOptions } from '../consumer/read-stream.ts';
import type { ConsumerRecord } from '../consumer/record.ts';
import { readShardEnhancedBatches } from './read-shard-enhanced.ts';

export interface ReadStreamEnhancedOptions extends Omit<ReadStreamOptions, 'readShardBatches'> {
  /** The ACTIVE consumer to read through (see `ensureStreamConsumer`). */
  consumerARN: string;
  /**
   * Longest silence on a subscription before it is renewed.
   * @default 30000
   */
  idleTimeoutMs?: number;
}

/**
 * Reads every shard of a stream through an enhanced fan-out consumer: one subscription per shard
 * being read, renewed from its continuation point whenever the service ends it, children read
 * after their parents. Everything else (order, checkpoints, backpressure, `break` and `signal`)
 * is `readStream`'s: see there.
 *
 * Each consumer gets its own 2 MiB/s per shard, pushed with about 70 ms of latency, where polling
 * readers share 2 MiB/s and 5 calls per second per shard.
 *
 * @example
 * ```ts
 * const { ConsumerARN } = await ensureStreamConsumer(client, { StreamName: 'clicks', ConsumerName: 'dashboard' });
 * for await (const record of readStreamEnhanced(client, {
 *   streamName: 'clicks',
 *   consumerARN: ConsumerARN,
 *   from: { type: 'LATEST' },
 *   checkpoints: createStorageCheckpointStore(localStorage, { prefix: 'clicks:dashboard:' }),
 * })) {
 *   console.log(record.shardId, recordText(record));
 * }
 * ```
 */
export async function* readStreamEnhanced(client: KinesisClient, options: ReadStreamEnhancedOptions): AsyncGenerator<ConsumerRecord, void, undefined> {
  const { consumerARN, idleTimeoutMs } = options;
  if (typeof consumerARN !== 'string' || consumerARN === '') throw new TypeError('readStreamEnhanced: consumerARN is required');
  yield* readStream(client, {
    ...options,
    readShardBatches: (c, shardOptions) => readShardEnhancedBatches(c, { ...shardOptions, consumerARN, idleTimeoutMs }),
  });
}

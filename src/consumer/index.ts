/**
 * The consumer: shard readers, a stream reader that follows shard lineage, checkpoints and KPL
 * deaggregation. Re-exports only.
 */
export {
  SHARD_END,
  checkpointRecord,
  createMemoryCheckpointStore,
  createStorageCheckpointStore,
  parseCheckpoint,
  startPositionAfter,
} from './checkpoints.ts';
export type { Checkpoint, CheckpointStore, KeyValueStorage, MemoryCheckpointStore, StorageCheckpointStoreOptions } from './checkpoints.ts';
export type { ShardPollingOptions } from './polling.ts';
export type { StartPosition, StreamRef, StreamStartPosition } from './position.ts';
export { readShard, readShardBatches } from './read-shard.ts';
export type { ReadShardOptions, ShardBatch, ShardEnd } from './read-shard.ts';
export { readStream } from './read-stream.ts';
export type { ReadStreamOptions } from './read-stream.ts';
export { deaggregateRecord, recordJson, recordText } from './record.ts';
export type { ConsumerRecord } from './record.ts';

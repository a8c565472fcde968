/**
 * The producer's public API. `src/index.ts` re-exports from here.
 */
export { createProducer } from './producer.ts';
export type { FlushResult, Producer, ProducerStats } from './producer.ts';
export { DEFAULT_AGGREGATION_MAX_BYTES } from './options.ts';
export type { ProducerOptions, ProducerOrdering, ProducerRetryEvent, WhenFullPolicy } from './options.ts';
export { KinesisProducerError, isKinesisProducerError } from './errors.ts';
export type { ProducerFailureReason } from './errors.ts';
export type { ProducerRecord, PutResult } from './record.ts';
export type { Rate } from './rate-limiter.ts';
export { predictShard, recordHashKey } from './shard-map.ts';

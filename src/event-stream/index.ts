/**
 * Enhanced fan-out: the event stream codec, SubscribeToShard, consumer registration and the
 * readers that renew subscriptions. Re-exports only.
 */
export {
  DEFAULT_MAX_HEADERS_BYTES,
  DEFAULT_MAX_MESSAGE_BYTES,
  EVENT_STREAM_FRAMING_BYTES,
  KinesisEventStreamError,
  createEventStreamDecoder,
  decodeEventStream,
  encodeEventStreamMessage,
  isKinesisEventStreamError,
} from './decoder.ts';
export type {
  EventStreamDecoder,
  EventStreamDecoderOptions,
  EventStreamFault,
  EventStreamHeaderValue,
  EventStreamHeaders,
  EventStreamMessage,
} from './decoder.ts';
export { DEFAULT_IDLE_TIMEOUT_MS, subscribeToShard } from './subscribe.ts';
export type { StartingPosition, SubscribeToShardEvent, SubscribeToShardInput, SubscribeToShardOptions } from './subscribe.ts';
export { deregisterStreamConsumerAndWait, ensureStreamConsumer } from './consumers.ts';
export type { DeregisterConsumerRef, EnsureStreamConsumerInput, StreamConsumerRef } from './consumers.ts';
export { readShardEnhanced, readShardEnhancedBatches } from './read-shard-enhanced.ts';
export type { ReadShardEnhancedOptions } from './read-shard-enhanced.ts';
export { readStreamEnhanced } from './read-stream-enhanced.ts';
export type { ReadStreamEnhancedOptions } from './read-stream-enhanced.ts';

/**
 * Where a shard reader starts, and how that maps onto `GetShardIterator`.
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html
 */
import type { GetShardIteratorInput } from '../shapes.ts';

/**
 * A starting position in one shard.
 *
 * `AFTER_SEQUENCE_NUMBER` may carry the `subSequenceNumber` of a user record inside a KPL
 * aggregated record: reading then starts *at* that aggregated record and skips the user records
 * up to and including that sub-sequence number (the KCL does the same), so a checkpoint taken in
 * the middle of an aggregate resumes with the next user record.
 */
export type StartPosition =
  | { type: 'TRIM_HORIZON' }
  | { type: 'LATEST' }
  | { type: 'AT_SEQUENCE_NUMBER'; sequenceNumber: string }
  | { type: 'AFTER_SEQUENCE_NUMBER'; sequenceNumber: string; subSequenceNumber?: number }
  | { type: 'AT_TIMESTAMP'; timestamp: Date };

/** The positions that make sense for a whole stream (sequence numbers belong to one shard). */
export type StreamStartPosition = Extract<StartPosition, { type: 'TRIM_HORIZON' | 'LATEST' | 'AT_TIMESTAMP' }>;

/** Which stream to read: by name or by ARN (one of the two). */
export interface StreamRef {
  /** The stream's name. Give this or `streamARN`. */
  streamName?: string;
  /** The stream's ARN. Give this or `streamName`. */
  streamARN?: string;
}

/** @throws {TypeError} when neither or both of `streamName` and `streamARN` are given. */
export function checkStreamRef(ref: StreamRef, caller: string): void {
  const hasName = typeof ref.streamName === 'string' && ref.streamName !== '';
  const hasArn = typeof ref.streamARN === 'string' && ref.streamARN !== '';
  if (hasName === hasArn) throw new TypeError(`${caller}: give exactly one of streamName and streamARN`);
}

/** `{ StreamName }` or `{ StreamARN }` for a request. */
export function streamFields(ref: StreamRef): { StreamName?: string; StreamARN?: string } {
  return ref.streamARN ? { StreamARN: ref.streamARN } : { StreamName: ref.streamName! };
}

/** @throws {TypeError} when `from` is not one of the {@link StartPosition} shapes. */
export function checkStartPosition(from: StartPosition, caller: string): void {
  const type = (from as { type?: unknown } | undefined)?.type;
  switch (type) {
    case 'TRIM_HORIZON':
    case 'LATEST':
      return;
    case 'AT_SEQUENCE_NUMBER':
    case 'AFTER_SEQUENCE_NUMBER': {
      const { sequenceNumber } = from as { sequenceNumber?: unknown };
      if (typeof sequenceNumber !== 'string' || !/^\d+$/.test(sequenceNumber)) {
        throw new TypeError(`${caller}: from.sequenceNumber must be a string of digits`);
      }
      const sub = (from as { subSequenceNumber?: unknown }).subSequenceNumber;
      if (sub !== undefined && !(Number.isInteger(sub) && (sub as number) >= 0)) {
        throw new TypeError(`${caller}: from.subSequenceNumber must be a non-negative integer`);
      }
      return;
    }
    case 'AT_TIMESTAMP': {
      const { timestamp } = from as { timestamp?: unknown };
      if (!(timestamp instanceof Date) || Number.isNaN(timestamp.getTime())) {
        throw new TypeError(`${caller}: from.timestamp must be a valid Date`);
      }
      return;
    }
    default:
      throw new TypeError(
        `${caller}: from.type must be TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER or AT_TIMESTAMP`,
      );
  }
}

/** The `GetShardIterator` input for `from`. */
export function shardIteratorInput(ref: StreamRef, shardId: string, from: StartPosition): GetShardIteratorInput {
  const base = { ...streamFields(ref), ShardId: shardId };
  switch (from.type) {
    case 'TRIM_HORIZON':
    case 'LATEST':
      return { ...base, ShardIteratorType: from.type };
    case 'AT_SEQUENCE_NUMBER':
      return { ...base, ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: from.sequenceNumber };
    case 'AFTER_SEQUENCE_NUMBER':
      // Inside an aggregate: start at it again and let the reader skip the user records already seen.
      return {
        ...base,
        ShardIteratorType: from.subSequenceNumber === undefined ? 'AFTER_SEQUENCE_NUMBER' : 'AT_SEQUENCE_NUMBER',
        StartingSequenceNumber: from.sequenceNumber,
      };
    case 'AT_TIMESTAMP':
      return { ...base, ShardIteratorType: 'AT_TIMESTAMP', Timestamp: from.timestamp };
  }
}

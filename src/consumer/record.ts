/**
 * The record a consumer delivers, KPL deaggregation, and the text / JSON helpers.
 *
 * Helpers are free functions (`recordText(record)`), not methods, so records stay plain data
 * (structured-clone and `postMessage` safe) and an app that never reads JSON drops the helper.
 */
import { decodeAggregatedRecord } from '../internal/kpl.ts';
import { decodeUtf8 } from '../internal/utf8.ts';
import type { KinesisRecord } from '../shapes.ts';

/** One record as a consumer delivers it: a plain Kinesis record, or one user record of a KPL aggregate. */
export interface ConsumerRecord {
  /** The shard it was read from. */
  shardId: string;
  /** The Kinesis sequence number (of the aggregated record, for a user record). A decimal string. */
  sequenceNumber: string;
  /**
   * Index of the user record inside a KPL aggregated record; absent for a plain record. Together
   * with `sequenceNumber` it orders records and is what a checkpoint stores.
   */
  subSequenceNumber?: number;
  partitionKey: string;
  /** Decimal 128-bit hash key a KPL producer set for this user record; absent otherwise. */
  explicitHashKey?: string;
  /** `ApproximateArrivalTimestamp`: when Kinesis stored the (aggregated) record. */
  arrivalTime: Date;
  /** The payload. For a user record, a view into the aggregated record's bytes. */
  data: Uint8Array;
}

function arrivalTimeOf(record: KinesisRecord): Date {
  // Always present in practice; the epoch stands in if a service ever leaves it out.
  return record.ApproximateArrivalTimestamp ?? new Date(0);
}

/** The record as is, without looking for a KPL aggregate. */
export function plainRecord(record: KinesisRecord, shardId: string): ConsumerRecord {
  return {
    shardId,
    sequenceNumber: record.SequenceNumber,
    partitionKey: record.PartitionKey ?? '',
    arrivalTime: arrivalTimeOf(record),
    data: record.Data,
  };
}

/**
 * Splits a KPL aggregated record into its user records, numbered with `subSequenceNumber` from 0;
 * any other record (no magic bytes, MD5 mismatch, malformed protobuf) comes back as one plain
 * record, as the KCL does. User records are never filtered by hash key (the KCL drops those whose
 * hash key lies outside the shard; here nothing is dropped).
 * Format: https://github.com/awslabs/amazon-kinesis-producer/blob/master/aggregation-format.md
 *
 * @example
 * ```ts
 * // in an AWS Lambda handler fed by Kinesis, after decoding the event's base64 data
 * for (const user of deaggregateRecord(record, 'shardId-000000000000')) console.log(recordText(user));
 * ```
 */
export function deaggregateRecord(record: KinesisRecord, shardId: string): ConsumerRecord[] {
  const users = decodeAggregatedRecord(record.Data);
  if (users === undefined) return [plainRecord(record, shardId)];
  const arrivalTime = arrivalTimeOf(record);
  return users.map((user, index) => {
    const out: ConsumerRecord = {
      shardId,
      sequenceNumber: record.SequenceNumber,
      subSequenceNumber: index,
      partitionKey: user.partitionKey,
      arrivalTime,
      data: user.data,
    };
    if (user.explicitHashKey !== undefined) out.explicitHashKey = user.explicitHashKey;
    return out;
  });
}

/** The record's data decoded as UTF-8 (invalid bytes become U+FFFD). */
export function recordText(record: Pick<ConsumerRecord, 'data'>): string {
  return decodeUtf8(record.data);
}

/**
 * The record's data parsed as UTF-8 JSON.
 * @throws {SyntaxError} naming the shard and sequence number when the data is not JSON.
 */
export function recordJson<T = unknown>(record: ConsumerRecord): T {
  const text = recordText(record);
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    const where = `${record.shardId} ${record.sequenceNumber}${record.subSequenceNumber === undefined ? '' : `/${record.subSequenceNumber}`}`;
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new SyntaxError(`recordJson: record ${where} is not JSON (${reason})`, { cause });
  }
}

/**
 * Records as the producer's user gives them and gets them back, and the producer's bookkeeping for
 * one record while it is buffered.
 */
import type { DataChunk } from './data-copy.ts';
import type { Bucket } from './queue.ts';

/** One record for {@link createProducer}'s `put()` and `send()`. */
export interface ProducerRecord {
  /** The payload: bytes (copied at `put()`), or a string sent as its UTF-8 bytes. */
  data: Uint8Array | string;
  /**
   * Decides the shard (MD5 of its UTF-8 bytes) unless `explicitHashKey` is set; 1 to 256 characters.
   * @default the producer's `partitionKey` option, else a random key
   */
  partitionKey?: string;
  /** A decimal 128-bit hash key that overrides the partition key's hash for choosing the shard. */
  explicitHashKey?: string;
}

/** Where a record was stored. */
export interface PutResult {
  shardId: string;
  /** The Kinesis record's sequence number, a decimal string (compare as `BigInt`). */
  sequenceNumber: string;
  /**
   * Position of the record inside its KPL aggregated record (from 0), as the KCL reports it; only
   * set when aggregation packed this record with others.
   */
  subSequenceNumber?: number;
  /** PutRecords requests that carried this record, this one included. */
  attempts: number;
}

/** Where a buffered record is in its life. */
export type RecordState = 'waiting' | 'queued' | 'in-flight' | 'done';

/**
 * The producer's bookkeeping for one record, kept lean: up to `maxBufferedRecords` of these live
 * long enough to be copied by every young-generation GC, so each field and each object per record
 * costs CPU as well as memory (8 B per field in Node, which runs without pointer compression). What
 * can be derived is (the deadline, the data's length, the hash key's top bits: an MD5 again on the
 * rare paths that need them after `put()`), the data is an offset into a chunk rather than a
 * typed-array view per record (views are made when a request is built), and what only a record
 * with an explicit hash key or a retried failure needs sits in {@link RecordExtra}.
 */
export interface BufferedRecord {
  /** Put order; increases by one per accepted `put()`. */
  readonly seq: number;
  readonly source: ProducerRecord;
  readonly partitionKey: string;
  /**
   * Where the record's data is, at `offset` (`size - keyBytes` bytes): a chunk shared with other
   * records, or an array of the record's own (see data-copy.ts). Undefined once the record settled.
   */
  chunk: DataChunk | undefined;
  readonly offset: number;
  /** UTF-8 bytes of the partition key, and key + data as the service counts the record. */
  readonly keyBytes: number;
  readonly size: number;
  /**
   * When it was put, in ms after the producer's first record (small integers, not heap numbers,
   * with a millisecond clock). Its deadline is this plus `recordTtlMs`.
   */
  readonly putAt: number;
  state: RecordState;
  /** The bucket (of a shard, or the stream-wide one) whose queue holds the record; undefined before it is queued. */
  bucket: Bucket | undefined;
  attempts: number;
  /** The explicit hash key, and what a retryable fault left on the record; undefined while there is neither. */
  extra: RecordExtra | undefined;
  /**
   * The resolve function of the record's `put()` promise (undefined for `send()`, and once
   * settled); it also rejects (see `rejectThrough` in producer.ts).
   */
  resolve: PutResolve | undefined;
}

/** A `put()` promise's resolve function. */
export type PutResolve = (value: PutResult | PromiseLike<PutResult>) => void;

/** The rarely used part of a record's bookkeeping. */
export interface RecordExtra {
  /** Set at `put()` (most records have none, and so no `RecordExtra` until a fault). */
  readonly explicitHashKey: string | undefined;
  /** Last retryable fault, kept as the cause of an `expired` / `retries-exhausted` failure. */
  lastError: unknown;
  lastCode: string | undefined;
}

export function explicitHashKeyOf(record: BufferedRecord): string | undefined {
  return record.extra?.explicitHashKey;
}

/** The record's data, as a view made now (for a request); the record holds only an offset. */
export function recordData(record: BufferedRecord): Uint8Array {
  const chunk = record.chunk!;
  // An array of its own is exactly the data.
  if (!chunk.shared) return chunk.bytes;
  return chunk.bytes.subarray(record.offset, record.offset + record.size - record.keyBytes);
}

/** Counts the records one `flush()` waits for: those unsettled when it was called. */
export interface FlushTicket {
  /** The `seq` of the first record put after the flush: it waits for older records only. */
  readonly before: number;
  remaining: number;
  stored: number;
  failed: number;
  done: () => void;
}

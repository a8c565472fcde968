/**
 * Records as the producer's user gives them and gets them back, and the producer's bookkeeping for
 * one record while it is buffered.
 */
import type { DataChunk } from './data-copy.ts';

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

/** The producer's bookkeeping for one record. */
export interface BufferedRecord {
  /** Put order; increases by one per accepted `put()`. */
  readonly seq: number;
  readonly source: ProducerRecord;
  readonly partitionKey: string;
  readonly explicitHashKey: string | undefined;
  readonly data: Uint8Array;
  /** The shared chunk `data` was copied into (see data-copy.ts), until the record settles. */
  dataChunk: DataChunk | undefined;
  /** UTF-8 bytes of the partition key, and key + data as the service counts the record. */
  readonly keyBytes: number;
  readonly size: number;
  /**
   * The top 32 bits of the partition key's MD5 hash key (see `partitionKeyHashHigh`), computed
   * only when shards are predicted and there is no explicit hash key.
   */
  hashHigh: number | undefined;
  readonly putAt: number;
  readonly deadline: number;
  state: RecordState;
  /** The bucket (shard id, or the stream-wide bucket) whose queue holds the record. */
  bucket: string;
  attempts: number;
  /** Last retryable fault, kept as the cause of an `expired` / `retries-exhausted` failure. */
  lastError: unknown;
  lastCode: string | undefined;
  /** Flushes waiting for this record to settle. */
  flushes: FlushTicket[] | undefined;
  resolve: ((result: PutResult) => void) | undefined;
  reject: ((error: unknown) => void) | undefined;
}

/** Counts the records one `flush()` waits for. */
export interface FlushTicket {
  remaining: number;
  stored: number;
  failed: number;
  done: () => void;
}

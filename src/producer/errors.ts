/**
 * The one error a producer rejects a record with: {@link KinesisProducerError}, whose `reason` says
 * why the record was not stored, and whose `cause` is the fault behind it when there is one.
 */
import { KinesisError } from '../errors.ts';
import type { ProducerRecord } from './record.ts';

/**
 * Why a record was not stored.
 *
 * - `invalid`: the record breaks the PutRecords rules (partition key, explicit hash key, data type);
 *   refused by `put()` before anything is buffered.
 * - `too-large`: partition key + data exceed the record or batch limit; refused by `put()`.
 * - `buffer-full`: the buffer was full and `whenFull` is `'reject'`.
 * - `closed`: `put()` after `close()`.
 * - `expired`: the record was not stored within `recordTtlMs` of its `put()`.
 * - `rejected`: the service refused it with a fault that is not worth retrying; see `code`.
 * - `retries-exhausted`: it was sent `maxAttempts` times without being stored.
 */
export type ProducerFailureReason =
  | 'invalid'
  | 'too-large'
  | 'buffer-full'
  | 'closed'
  | 'expired'
  | 'rejected'
  | 'retries-exhausted';

const MESSAGES: Record<ProducerFailureReason, string> = {
  invalid: 'the record breaks the PutRecords rules',
  'too-large': 'the record is larger than the record or batch limit',
  'buffer-full': 'the producer buffer is full',
  closed: 'the producer is closed',
  expired: 'the record was not stored within its time to live',
  rejected: 'the service refused the record',
  'retries-exhausted': 'the record was not stored after the maximum number of attempts',
};

/** A record the producer could not store. */
export class KinesisProducerError extends KinesisError {
  override name = 'KinesisProducerError';
  readonly reason: ProducerFailureReason;
  /**
   * The fault name behind a `rejected` (or last retried) record: a per-record `ErrorCode` such as
   * `KMSAccessDeniedException`, or the request's fault such as `ResourceNotFoundException`.
   */
  readonly code: string | undefined;
  /** PutRecords requests that carried this record (0 when it was refused before sending). */
  readonly attempts: number;
  /** The record as given to `put()` / `send()`, for dead-lettering. */
  readonly record: ProducerRecord;

  constructor(init: {
    reason: ProducerFailureReason;
    record: ProducerRecord;
    code?: string;
    attempts?: number;
    detail?: string;
    cause?: unknown;
  }) {
    const code = init.code ? ` (${init.code})` : '';
    const detail = init.detail ? `: ${init.detail}` : '';
    super(`Producer: ${MESSAGES[init.reason]}${code}${detail}`, { operation: 'PutRecords', retryable: false, cause: init.cause });
    this.reason = init.reason;
    this.code = init.code;
    this.attempts = init.attempts ?? 0;
    this.record = init.record;
  }
}

/** True for a {@link KinesisProducerError}, also one from another copy of this package. */
export function isKinesisProducerError(error: unknown): error is KinesisProducerError {
  return (
    error instanceof KinesisProducerError ||
    (typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'KinesisProducerError')
  );
}

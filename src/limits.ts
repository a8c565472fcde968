/**
 * Service limits that are checked on the client before a request is sent.
 * https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html
 */

/** Records in one PutRecords request. https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html */
export const MAX_RECORDS_PER_PUT_RECORDS = 500;

/** Classic maximum size of one record (partition key + data, before base64): 1 MiB. */
export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024;

/**
 * Classic maximum size of one PutRecords request, counted the way the service counts it: the sum of
 * partition keys and data, before base64 (5 MiB).
 */
export const DEFAULT_MAX_REQUEST_BYTES = 5 * 1024 * 1024;

/**
 * The largest record any stream can take: `MaxRecordSizeInKiB` ranges 1024..10240.
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_UpdateMaxRecordSize.html
 */
export const MAX_CONFIGURABLE_RECORD_BYTES = 10 * 1024 * 1024;

/** Largest request body a stream with raised record size accepts (10 MiB records need a 10 MiB request). */
export const MAX_CONFIGURABLE_REQUEST_BYTES = 10 * 1024 * 1024;

/** GetRecords returns at most 10,000 records or 10 MiB per call. */
export const MAX_GET_RECORDS_LIMIT = 10_000;

/** Per-shard read limits for the polling consumer: 5 GetRecords calls and 2 MiB per second. */
export const SHARD_READ_CALLS_PER_SECOND = 5;
export const SHARD_READ_BYTES_PER_SECOND = 2 * 1024 * 1024;

/** Per-shard write limits: 1,000 records and 1 MiB per second. */
export const SHARD_WRITE_RECORDS_PER_SECOND = 1000;
export const SHARD_WRITE_BYTES_PER_SECOND = 1024 * 1024;

/** Limits a client checks records against. Raise them for streams with a larger `MaxRecordSizeInKiB`. */
export interface RecordLimits {
  /**
   * Largest record, partition key + data in bytes before base64.
   * @default 1048576 (1 MiB)
   */
  maxRecordBytes: number;
  /**
   * Largest PutRecords request, summed over partition keys + data before base64.
   * @default 5242880 (5 MiB)
   */
  maxRequestBytes: number;
}

export const DEFAULT_RECORD_LIMITS: RecordLimits = {
  maxRecordBytes: DEFAULT_MAX_RECORD_BYTES,
  maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
};

/** Fill in defaults and reject limits the service can never accept. */
export function resolveRecordLimits(limits: Partial<RecordLimits> | undefined): RecordLimits {
  const resolved = { ...DEFAULT_RECORD_LIMITS, ...limits };
  if (
    !Number.isInteger(resolved.maxRecordBytes) ||
    resolved.maxRecordBytes < 1 ||
    resolved.maxRecordBytes > MAX_CONFIGURABLE_RECORD_BYTES
  ) {
    throw new RangeError(`limits.maxRecordBytes must be an integer from 1 to ${MAX_CONFIGURABLE_RECORD_BYTES}`);
  }
  if (
    !Number.isInteger(resolved.maxRequestBytes) ||
    resolved.maxRequestBytes < 1 ||
    resolved.maxRequestBytes > MAX_CONFIGURABLE_REQUEST_BYTES
  ) {
    throw new RangeError(`limits.maxRequestBytes must be an integer from 1 to ${MAX_CONFIGURABLE_REQUEST_BYTES}`);
  }
  return resolved;
}

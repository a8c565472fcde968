/**
 * Size rules for PutRecord and PutRecords that depend on the client's limits (streams can raise
 * `MaxRecordSizeInKiB` up to 10 MiB), counted as the service counts them: UTF-8 bytes of the
 * partition key plus the data bytes, before base64.
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html
 */
import type { ValidationIssue } from './errors.ts';
import { utf8ByteLength } from './internal/utf8.ts';
import type { RecordLimits } from './limits.ts';

interface SizedEntry {
  PartitionKey?: string;
  /** As the caller gave it: bytes, or a string sent as UTF-8. */
  Data: Uint8Array | string;
}

/** Bytes the service counts for one record: partition key (UTF-8) + data (UTF-8 for a string). */
export function recordSize(entry: SizedEntry): number {
  const keyBytes = entry.PartitionKey === undefined ? 0 : utf8ByteLength(entry.PartitionKey);
  return keyBytes + (typeof entry.Data === 'string' ? utf8ByteLength(entry.Data) : entry.Data.length);
}

/**
 * The issue of a record over the client's record limit, or `undefined` when it fits. `path` names
 * its `Data` member (`Data`, or `Records[3].Data` inside PutRecords).
 */
export function recordSizeIssue(size: number, limits: RecordLimits, path = 'Data'): ValidationIssue | undefined {
  return size > limits.maxRecordBytes
    ? { path, rule: `partition key + data is ${size} bytes, more than the record limit of ${limits.maxRecordBytes}` }
    : undefined;
}

/** {@link recordSizeIssue} as a list, for a record whose size (partition key + data bytes) is known. */
export function checkRecordBytes(size: number, limits: RecordLimits): ValidationIssue[] {
  const issue = recordSizeIssue(size, limits);
  return issue ? [issue] : [];
}

/** The issue of a PutRecords request whose records total more than the request limit, or `undefined`. */
export function requestSizeIssue(total: number, limits: RecordLimits): ValidationIssue | undefined {
  return total > limits.maxRequestBytes
    ? { path: 'Records', rule: `records total ${total} bytes, more than the request limit of ${limits.maxRequestBytes}` }
    : undefined;
}

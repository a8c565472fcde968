/**
 * Cutting one PutRecords request out of the buffered records: at most `maxRecords` Kinesis records
 * and `maxBytes` bytes (partition keys + data, before base64, as the service counts them), each
 * Kinesis record within the record limit, each bucket within its rate limiter. With aggregation,
 * small user records bound for one shard are packed into KPL aggregated records.
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html
 * https://github.com/awslabs/amazon-kinesis-producer/blob/master/aggregation-format.md
 */
import { createAggregatedRecordSizer, encodeAggregatedRecord, type AggregatedRecordSizer, type KplUserRecord } from '../internal/kpl.ts';
import type { Bucket } from './queue.ts';
import { explicitHashKeyOf, recordData, type BufferedRecord } from './record.ts';

/**
 * One Kinesis record of a request with aggregation: several user records packed into a KPL
 * aggregated record, or one user record sent as it is (a lone record, or one too big to pack).
 */
export interface Aggregate {
  readonly bucket: Bucket;
  readonly records: BufferedRecord[];
  /** Whether `records` go out as one KPL aggregated record (always when there are several). */
  aggregated: boolean;
  /** The Kinesis record's partition key and explicit hash key: those of its first user record. */
  readonly partitionKey: string;
  readonly keyBytes: number;
  readonly explicitHashKey: string | undefined;
  /** Partition key + data bytes of the Kinesis record. */
  size: number;
  /**
   * `records` as KPL user records for the encoder (buffered records hold an offset into their
   * data, not a view, so these are made for the request only).
   */
  users: KplUserRecord[] | undefined;
}

/**
 * One PutRecords request.
 *
 * Without aggregation the request's Kinesis records are the buffered records themselves, in
 * `records`: a request of 500 records used to make an entry object and a one-element array per
 * record, garbage for the young-generation GC in the producer's hottest path.
 */
export interface Batch {
  /** Every user record of the request; without aggregation, also its Kinesis records in order. */
  readonly records: BufferedRecord[];
  /** With aggregation, the request's Kinesis records in order (each holds some of `records`); else undefined. */
  readonly aggregates: Aggregate[] | undefined;
  /** Partition key + data bytes of the request's Kinesis records. */
  bytes: number;
}

/** How many Kinesis records the request holds (the entries of its PutRecords call and answer). */
export function entryCount(batch: Batch): number {
  return batch.aggregates === undefined ? batch.records.length : batch.aggregates.length;
}

export interface BuildOptions {
  now: number;
  maxRecords: number;
  maxBytes: number;
  maxRecordBytes: number;
  /** Strict per-key ordering: one Kinesis record per partition key, none for keys in flight. */
  perKey: boolean;
  /** Partition keys with records in flight (per-key ordering only). */
  busyKeys: ReadonlyMap<string, number>;
  /** Size cap of one aggregated record's data, or undefined for no aggregation. */
  aggregateMaxBytes: number | undefined;
}

/** How many queued records of one bucket are scanned past records it cannot take (per-key ordering skips keys). */
const MAX_SCAN_PER_BUCKET = 5_000;

interface OpenAggregate {
  entry: Aggregate;
  sizer: AggregatedRecordSizer;
}

/**
 * Takes records from `buckets`, in that order, into one batch. The records taken are still
 * `queued`: the caller marks them in flight. Buckets whose limiter refuses are skipped.
 */
export function buildBatch(buckets: readonly Bucket[], options: BuildOptions): Batch {
  const aggregating = options.aggregateMaxBytes !== undefined;
  const batch: Batch = { records: [], aggregates: aggregating ? [] : undefined, bytes: 0 };
  const { now, perKey, busyKeys } = options;
  // Per-key ordering: keys that have a Kinesis record in this batch (with its aggregate, or
  // undefined for a plain record), and keys that must wait for the next batch because an earlier
  // record of theirs was left out.
  const keyEntry = new Map<string, Aggregate | undefined>();
  const blockedKeys = new Set<string>();

  for (const bucket of buckets) {
    if (entryCount(batch) >= options.maxRecords || batch.bytes >= options.maxBytes) break;
    if (bucket.queue.queued === 0 || !bucket.limiter.canTake(now)) continue;
    const open = new Map<string, OpenAggregate>();
    let scanned = 0;

    bucket.queue.scanQueued((record) => {
      if (++scanned > MAX_SCAN_PER_BUCKET) return false;
      const key = record.partitionKey;
      if (perKey && (blockedKeys.has(key) || busyKeys.has(key))) return true;

      const taken = aggregating ? takeAggregated(batch, bucket, record, options, open, keyEntry) : takePlain(batch, bucket, record, options, keyEntry);
      if (taken === 'taken') return true;
      if (taken === 'stop') return false;
      // 'skip': this record does not fit (now); with per-key ordering its key's later records wait too.
      if (!perKey) return false;
      blockedKeys.add(key);
      return true;
    });
  }

  if (batch.aggregates === undefined) {
    for (const record of batch.records) record.bucket!.limiter.chargeBytes(record.size);
    return batch;
  }
  // A one-record aggregate goes out as a plain record: same shard, no overhead.
  for (const entry of batch.aggregates) {
    if (entry.aggregated && entry.records.length === 1) {
      const only = entry.records[0]!;
      batch.bytes += only.size - entry.size;
      entry.size = only.size;
      entry.aggregated = false;
    }
    entry.bucket.limiter.chargeBytes(entry.size);
  }
  return batch;
}

type TakeResult = 'taken' | 'skip' | 'stop';

function takePlain(
  batch: Batch,
  bucket: Bucket,
  record: BufferedRecord,
  options: BuildOptions,
  keyEntry: Map<string, Aggregate | undefined>,
): TakeResult {
  if (batch.records.length >= options.maxRecords) return 'stop';
  if (options.perKey && keyEntry.has(record.partitionKey)) return 'skip';
  if (batch.bytes + record.size > options.maxBytes) return 'skip';
  if (!bucket.limiter.tryTake(options.now, 0)) return 'stop';
  batch.records.push(record);
  batch.bytes += record.size;
  if (options.perKey) keyEntry.set(record.partitionKey, undefined);
  return 'taken';
}

function takeAggregated(
  batch: Batch,
  bucket: Bucket,
  record: BufferedRecord,
  options: BuildOptions,
  open: Map<string, OpenAggregate>,
  keyEntry: Map<string, Aggregate | undefined>,
): TakeResult {
  const aggregates = batch.aggregates!;
  const maxAggregate = options.aggregateMaxBytes!;
  // In a shard's bucket every record may share an aggregate; while shards are unknown (or the
  // bucket's shard has closed) only records with the same hash key input are sure to share a shard
  // (the KCL drops user records whose hash key is outside the shard the aggregate landed on).
  const explicitHashKey = explicitHashKeyOf(record);
  const group = bucket.isShard && !bucket.stale ? '' : explicitHashKey !== undefined ? `h${explicitHashKey}` : `p${record.partitionKey}`;
  // Buffered records hold an offset, not a view: the view is made here, for the request only.
  const user: KplUserRecord = { partitionKey: record.partitionKey, explicitHashKey, data: recordData(record) };
  const current = open.get(group);

  if (options.perKey) {
    const existing = keyEntry.get(record.partitionKey);
    // The key already has a Kinesis record in this batch; more of its records may join only that one.
    if (existing !== undefined && existing !== current?.entry) return 'skip';
  }

  if (current !== undefined) {
    const { entry, sizer } = current;
    const grown = sizer.sizeWith(user);
    const outerKeyBytes = entry.size - sizer.size;
    const newSize = outerKeyBytes + grown;
    if (grown <= maxAggregate && newSize <= options.maxRecordBytes && batch.bytes - entry.size + newSize <= options.maxBytes) {
      sizer.add(user);
      entry.records.push(record);
      entry.users!.push(user);
      batch.records.push(record);
      batch.bytes += newSize - entry.size;
      entry.size = newSize;
      if (options.perKey) keyEntry.set(record.partitionKey, entry);
      return 'taken';
    }
    // Full: close it. Keys in it stay in this batch; with per-key ordering their later records wait.
    open.delete(group);
    if (options.perKey && keyEntry.get(record.partitionKey) === entry) return 'skip';
  }

  if (aggregates.length >= options.maxRecords) return open.size > 0 ? 'skip' : 'stop';
  const sizer = createAggregatedRecordSizer();
  const alone = sizer.sizeWith(user);
  // A record too big to aggregate goes out plain.
  const aggregated = alone <= maxAggregate && record.keyBytes + alone <= options.maxRecordBytes;
  const size = aggregated ? record.keyBytes + alone : record.size;
  if (batch.bytes + size > options.maxBytes) return 'skip';
  if (!bucket.limiter.tryTake(options.now, 0)) return 'stop';
  const entry: Aggregate = {
    bucket,
    records: [record],
    aggregated,
    partitionKey: record.partitionKey,
    keyBytes: record.keyBytes,
    explicitHashKey,
    size,
    users: aggregated ? [user] : undefined,
  };
  if (aggregated) {
    sizer.add(user);
    open.set(group, { entry, sizer });
  }
  aggregates.push(entry);
  batch.records.push(record);
  batch.bytes += size;
  if (options.perKey) keyEntry.set(record.partitionKey, entry);
  return 'taken';
}

/** The Data of an aggregate as it goes on the wire. */
export function aggregateData(entry: Aggregate): Uint8Array {
  if (!entry.aggregated) return recordData(entry.records[0]!);
  return encodeAggregatedRecord(entry.users!);
}

// The KPL aggregated record format: many user records packed into one Kinesis record, as the
// Kinesis Producer Library writes and the KCL reads it.
//
//   F3 89 9A C2 | protobuf AggregatedRecord (proto2) | MD5 of the protobuf bytes (16)
//
//   message AggregatedRecord { repeated string partition_key_table = 1;
//                              repeated string explicit_hash_key_table = 2;
//                              repeated Record records = 3; }
//   message Record { required uint64 partition_key_index = 1;
//                    optional uint64 explicit_hash_key_index = 2;
//                    required bytes data = 3; repeated Tag tags = 4; }
//
// The protobuf subset needed here is written by hand (varints and length-delimited fields) so
// the format costs no dependency.
// https://github.com/awslabs/amazon-kinesis-producer/blob/master/aggregation-format.md
// https://protobuf.dev/programming-guides/encoding/

import { md5 } from './md5.ts';
import { decodeUtf8, encodeUtf8, utf8ByteLength } from './utf8.ts';

/** One user record inside a KPL aggregated record. */
export interface KplUserRecord {
  partitionKey: string;
  /** Decimal 128-bit hash key; absent when the shard follows from `partitionKey`. */
  explicitHashKey?: string;
  data: Uint8Array;
}

const MAGIC_0 = 0xf3;
const MAGIC_1 = 0x89;
const MAGIC_2 = 0x9a;
const MAGIC_3 = 0xc2;
const MAGIC_SIZE = 4;
const DIGEST_SIZE = 16;

// Field tags, (field number << 3) | wire type, where wire type 0 is varint and 2 is
// length-delimited. KPL writes fields in field-number order: both tables, then the records.
const TAG_PARTITION_KEY_TABLE = 0x0a; // AggregatedRecord.partition_key_table = 1, bytes
const TAG_EXPLICIT_HASH_KEY_TABLE = 0x12; // AggregatedRecord.explicit_hash_key_table = 2, bytes
const TAG_RECORDS = 0x1a; // AggregatedRecord.records = 3, bytes
const TAG_PARTITION_KEY_INDEX = 0x08; // Record.partition_key_index = 1, varint
const TAG_EXPLICIT_HASH_KEY_INDEX = 0x10; // Record.explicit_hash_key_index = 2, varint
const TAG_DATA = 0x1a; // Record.data = 3, bytes

/** Tracks the exact encoded size of an aggregated record while user records are added. */
export interface AggregatedRecordSizer {
  /**
   * Bytes that {@link encodeAggregatedRecord} would produce for the records added so far,
   * magic and MD5 included (20 when none are added).
   */
  readonly size: number;
  /** How many user records were added. */
  readonly count: number;
  /** The {@link size} there would be after adding `record`, without adding it. */
  sizeWith(record: KplUserRecord): number;
  /** Adds `record` and returns the new {@link size}. */
  add(record: KplUserRecord): number;
}

/**
 * Creates a size tracker for one aggregated record, so a producer can stop adding user records
 * before a size limit. Sizes are exact: keys count their UTF-8 bytes (not `.length`), and table
 * indices are assigned in first-seen order, the same order {@link encodeAggregatedRecord} uses.
 *
 * @example
 * const sizer = createAggregatedRecordSizer();
 * for (const record of pending) {
 *   if (sizer.count > 0 && sizer.sizeWith(record) > 51_200) break;
 *   sizer.add(record);
 * }
 */
export function createAggregatedRecordSizer(): AggregatedRecordSizer {
  const partitionKeys = new Map<string, number>();
  const explicitHashKeys = new Map<string, number>();
  let protobufSize = 0;
  let count = 0;

  const growth = (record: KplUserRecord): number => {
    let grow = 0;
    let partitionKeyIndex = partitionKeys.get(record.partitionKey);
    if (partitionKeyIndex === undefined) {
      partitionKeyIndex = partitionKeys.size;
      grow += lengthDelimitedSize(utf8ByteLength(record.partitionKey));
    }
    let explicitHashKeyIndex: number | undefined;
    if (record.explicitHashKey !== undefined) {
      explicitHashKeyIndex = explicitHashKeys.get(record.explicitHashKey);
      if (explicitHashKeyIndex === undefined) {
        explicitHashKeyIndex = explicitHashKeys.size;
        grow += lengthDelimitedSize(utf8ByteLength(record.explicitHashKey));
      }
    }
    const body = recordBodySize(partitionKeyIndex, explicitHashKeyIndex, record.data.length);
    return grow + lengthDelimitedSize(body);
  };

  // A producer asks sizeWith(record) and then adds that same record: its growth is kept for add(),
  // checked against the fields it depends on (a caller may change the object in between).
  let lastRecord: KplUserRecord | undefined;
  let lastKey = '';
  let lastHashKey: string | undefined;
  let lastDataLength = 0;
  let lastGrowth = 0;
  const isLast = (record: KplUserRecord): boolean =>
    record === lastRecord && record.partitionKey === lastKey && record.explicitHashKey === lastHashKey && record.data.length === lastDataLength;

  return {
    get size() {
      return MAGIC_SIZE + protobufSize + DIGEST_SIZE;
    },
    get count() {
      return count;
    },
    sizeWith(record) {
      lastRecord = record;
      lastKey = record.partitionKey;
      lastHashKey = record.explicitHashKey;
      lastDataLength = record.data.length;
      lastGrowth = growth(record);
      return MAGIC_SIZE + protobufSize + lastGrowth + DIGEST_SIZE;
    },
    add(record) {
      protobufSize += isLast(record) ? lastGrowth : growth(record);
      lastRecord = undefined;
      count++;
      if (!partitionKeys.has(record.partitionKey)) {
        partitionKeys.set(record.partitionKey, partitionKeys.size);
      }
      const explicitHashKey = record.explicitHashKey;
      if (explicitHashKey !== undefined && !explicitHashKeys.has(explicitHashKey)) {
        explicitHashKeys.set(explicitHashKey, explicitHashKeys.size);
      }
      return MAGIC_SIZE + protobufSize + DIGEST_SIZE;
    },
  };
}

/**
 * The exact byte length of `encodeAggregatedRecord(records)`, computed without encoding.
 */
export function aggregatedRecordSize(records: readonly KplUserRecord[]): number {
  const sizer = createAggregatedRecordSizer();
  for (const record of records) sizer.add(record);
  return sizer.size;
}

/**
 * Packs user records into one KPL aggregated record: magic, protobuf, MD5. Partition keys and
 * explicit hash keys are deduplicated into the tables in first-seen order. Keys are not
 * validated here; a lone surrogate in a key is encoded as U+FFFD.
 *
 * Aggregate only records bound for one shard: the KCL drops user records whose hash key lies
 * outside the shard the aggregate landed on.
 *
 * @throws {RangeError} when `records` is empty (an aggregate with no records reads back as a
 *   plain record).
 *
 * @example
 * const data = encodeAggregatedRecord([
 *   { partitionKey: 'user-1', data: encodeUtf8('{"event":"click"}') },
 *   { partitionKey: 'user-1', data: encodeUtf8('{"event":"scroll"}') },
 * ]);
 */
export function encodeAggregatedRecord(records: readonly KplUserRecord[]): Uint8Array {
  if (records.length === 0) {
    throw new RangeError('encodeAggregatedRecord needs at least one user record');
  }

  const partitionKeyIndexes = new Map<string, number>();
  const explicitHashKeyIndexes = new Map<string, number>();
  // The tables' keys and their UTF-8 lengths, written straight into the output (encoding each key
  // into its own array first cost more than the rest of the encoding for short records).
  const partitionKeys: string[] = [];
  const partitionKeyLengths: number[] = [];
  const explicitHashKeys: string[] = [];
  const explicitHashKeyLengths: number[] = [];
  const recordPartitionKeyIndex = new Array<number>(records.length);
  const recordExplicitHashKeyIndex = new Array<number | undefined>(records.length);
  const recordBodySizes = new Array<number>(records.length);
  let protobufSize = 0;

  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    let partitionKeyIndex = partitionKeyIndexes.get(record.partitionKey);
    if (partitionKeyIndex === undefined) {
      partitionKeyIndex = partitionKeys.length;
      partitionKeyIndexes.set(record.partitionKey, partitionKeyIndex);
      const length = utf8ByteLength(record.partitionKey);
      partitionKeys.push(record.partitionKey);
      partitionKeyLengths.push(length);
      protobufSize += lengthDelimitedSize(length);
    }
    let explicitHashKeyIndex: number | undefined;
    if (record.explicitHashKey !== undefined) {
      explicitHashKeyIndex = explicitHashKeyIndexes.get(record.explicitHashKey);
      if (explicitHashKeyIndex === undefined) {
        explicitHashKeyIndex = explicitHashKeys.length;
        explicitHashKeyIndexes.set(record.explicitHashKey, explicitHashKeyIndex);
        const length = utf8ByteLength(record.explicitHashKey);
        explicitHashKeys.push(record.explicitHashKey);
        explicitHashKeyLengths.push(length);
        protobufSize += lengthDelimitedSize(length);
      }
    }
    const body = recordBodySize(partitionKeyIndex, explicitHashKeyIndex, record.data.length);
    recordPartitionKeyIndex[i] = partitionKeyIndex;
    recordExplicitHashKeyIndex[i] = explicitHashKeyIndex;
    recordBodySizes[i] = body;
    protobufSize += lengthDelimitedSize(body);
  }

  const out = new Uint8Array(MAGIC_SIZE + protobufSize + DIGEST_SIZE);
  out[0] = MAGIC_0;
  out[1] = MAGIC_1;
  out[2] = MAGIC_2;
  out[3] = MAGIC_3;
  let pos = MAGIC_SIZE;
  for (let i = 0; i < partitionKeys.length; i++) {
    pos = writeStringField(out, pos, TAG_PARTITION_KEY_TABLE, partitionKeys[i]!, partitionKeyLengths[i]!);
  }
  for (let i = 0; i < explicitHashKeys.length; i++) {
    pos = writeStringField(out, pos, TAG_EXPLICIT_HASH_KEY_TABLE, explicitHashKeys[i]!, explicitHashKeyLengths[i]!);
  }
  for (let i = 0; i < records.length; i++) {
    out[pos++] = TAG_RECORDS;
    pos = writeVarint(out, pos, recordBodySizes[i]!);
    out[pos++] = TAG_PARTITION_KEY_INDEX;
    pos = writeVarint(out, pos, recordPartitionKeyIndex[i]!);
    const explicitHashKeyIndex = recordExplicitHashKeyIndex[i];
    if (explicitHashKeyIndex !== undefined) {
      out[pos++] = TAG_EXPLICIT_HASH_KEY_INDEX;
      pos = writeVarint(out, pos, explicitHashKeyIndex);
    }
    pos = writeBytesField(out, pos, TAG_DATA, records[i]!.data);
  }
  out.set(md5(out.subarray(MAGIC_SIZE, pos)), pos);
  return out;
}

/**
 * Unpacks a KPL aggregated record into its user records, or returns `undefined` when `bytes`
 * is not one: the magic is absent, it is too short, the MD5 does not match, the protobuf is
 * malformed, a table index is out of range, or it holds no records. The caller then treats
 * `bytes` as one plain record, as the KCL does. Never throws.
 *
 * Each `data` is a view into `bytes`, not a copy. Unknown protobuf fields and record tags are
 * skipped.
 *
 * @example
 * const userRecords = decodeAggregatedRecord(record.Data) ?? [plainRecord];
 */
export function decodeAggregatedRecord(bytes: Uint8Array): KplUserRecord[] | undefined {
  const length = bytes.length;
  if (length <= MAGIC_SIZE + DIGEST_SIZE) return undefined;
  if (
    bytes[0] !== MAGIC_0 ||
    bytes[1] !== MAGIC_1 ||
    bytes[2] !== MAGIC_2 ||
    bytes[3] !== MAGIC_3
  ) {
    return undefined;
  }
  const protobufEnd = length - DIGEST_SIZE;
  const digest = md5(bytes.subarray(MAGIC_SIZE, protobufEnd));
  for (let i = 0; i < DIGEST_SIZE; i++) {
    if (digest[i] !== bytes[protobufEnd + i]) return undefined;
  }
  try {
    return parseAggregatedRecord(bytes, MAGIC_SIZE, protobufEnd);
  } catch {
    // The parser checks every bound itself; this only keeps the never-throws promise should a
    // case have been missed.
    return undefined;
  }
}

interface ParsedRecord {
  partitionKeyIndex: number;
  explicitHashKeyIndex: number | undefined;
  data: Uint8Array;
}

// A read position shared by the parse helpers; `pos` is -1 once the input is found malformed.
interface Cursor {
  bytes: Uint8Array;
  pos: number;
}

function parseAggregatedRecord(
  bytes: Uint8Array,
  start: number,
  end: number,
): KplUserRecord[] | undefined {
  const cursor: Cursor = { bytes, pos: start };
  const partitionKeys: string[] = [];
  const explicitHashKeys: string[] = [];
  const parsed: ParsedRecord[] = [];

  while (cursor.pos < end) {
    const tag = readVarint(cursor, end);
    if (tag === TAG_PARTITION_KEY_TABLE || tag === TAG_EXPLICIT_HASH_KEY_TABLE) {
      const value = readLengthDelimited(cursor, end);
      if (value === undefined) return undefined;
      (tag === TAG_PARTITION_KEY_TABLE ? partitionKeys : explicitHashKeys).push(decodeUtf8(value));
    } else if (tag === TAG_RECORDS) {
      const value = readLengthDelimited(cursor, end);
      if (value === undefined) return undefined;
      const record = parseRecord(bytes, cursor.pos - value.length, cursor.pos);
      if (record === undefined) return undefined;
      parsed.push(record);
    } else if (!skipField(cursor, end, tag)) {
      return undefined;
    }
  }

  if (parsed.length === 0) return undefined;
  const records: KplUserRecord[] = [];
  for (const { partitionKeyIndex, explicitHashKeyIndex, data } of parsed) {
    const partitionKey = partitionKeys[partitionKeyIndex];
    if (partitionKey === undefined) return undefined;
    if (explicitHashKeyIndex === undefined) {
      records.push({ partitionKey, data });
      continue;
    }
    const explicitHashKey = explicitHashKeys[explicitHashKeyIndex];
    if (explicitHashKey === undefined) return undefined;
    records.push({ partitionKey, explicitHashKey, data });
  }
  return records;
}

function parseRecord(bytes: Uint8Array, start: number, end: number): ParsedRecord | undefined {
  const cursor: Cursor = { bytes, pos: start };
  let partitionKeyIndex: number | undefined;
  let explicitHashKeyIndex: number | undefined;
  let data: Uint8Array | undefined;
  // A repeated non-repeated field keeps its last value, as protobuf parsers do.
  while (cursor.pos < end) {
    const tag = readVarint(cursor, end);
    if (tag === TAG_PARTITION_KEY_INDEX) {
      partitionKeyIndex = readVarint(cursor, end);
    } else if (tag === TAG_EXPLICIT_HASH_KEY_INDEX) {
      explicitHashKeyIndex = readVarint(cursor, end);
    } else if (tag === TAG_DATA) {
      data = readLengthDelimited(cursor, end);
    } else if (!skipField(cursor, end, tag)) {
      return undefined;
    }
    if (cursor.pos < 0) return undefined;
  }
  // partition_key_index and data are proto2 `required`.
  if (partitionKeyIndex === undefined || data === undefined) return undefined;
  return { partitionKeyIndex, explicitHashKeyIndex, data };
}

// Reads a varint of up to 10 bytes. Values above 2^53 lose precision, which is harmless: they
// are only compared with lengths and table sizes, which they exceed either way. Returns -1 and
// sets `pos` to -1 when the varint is truncated or too long.
function readVarint(cursor: Cursor, end: number): number {
  const bytes = cursor.bytes;
  let pos = cursor.pos;
  if (pos < 0) return -1;
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10 && pos < end; i++) {
    const byte = bytes[pos++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      cursor.pos = pos;
      return value;
    }
    scale *= 128;
  }
  cursor.pos = -1;
  return -1;
}

function readLengthDelimited(cursor: Cursor, end: number): Uint8Array | undefined {
  const length = readVarint(cursor, end);
  if (length < 0 || length > end - cursor.pos) {
    cursor.pos = -1;
    return undefined;
  }
  const start = cursor.pos;
  cursor.pos = start + length;
  return cursor.bytes.subarray(start, cursor.pos);
}

// Skips a field this parser does not read. Returns false for a malformed tag or value, and for
// the deprecated group wire types 3 and 4, which this format never uses.
function skipField(cursor: Cursor, end: number, tag: number): boolean {
  if (tag < 8 || cursor.pos < 0) return false; // -1 from readVarint, or field number 0
  switch (tag % 8) {
    case 0:
      return readVarint(cursor, end) >= 0;
    case 1:
      return skipBytes(cursor, end, 8);
    case 2:
      return readLengthDelimited(cursor, end) !== undefined;
    case 5:
      return skipBytes(cursor, end, 4);
    default:
      return false;
  }
}

function skipBytes(cursor: Cursor, end: number, count: number): boolean {
  if (count > end - cursor.pos) return false;
  cursor.pos += count;
  return true;
}

function varintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  return 5;
}

// Size of a length-delimited field with a one-byte tag and a `length`-byte payload.
function lengthDelimitedSize(length: number): number {
  return 1 + varintSize(length) + length;
}

function recordBodySize(
  partitionKeyIndex: number,
  explicitHashKeyIndex: number | undefined,
  dataLength: number,
): number {
  let size = 1 + varintSize(partitionKeyIndex) + lengthDelimitedSize(dataLength);
  if (explicitHashKeyIndex !== undefined) size += 1 + varintSize(explicitHashKeyIndex);
  return size;
}

// Writes a varint for a value below 2^32 (lengths and table indexes here always are).
function writeVarint(out: Uint8Array, pos: number, value: number): number {
  while (value > 0x7f) {
    out[pos++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  out[pos++] = value;
  return pos;
}

/**
 * Writes a string field whose UTF-8 length is `length`. When that equals the string's length
 * every character is ASCII (any other takes at least two bytes per UTF-16 unit), so the bytes are
 * its char codes; otherwise it is encoded (a lone surrogate as U+FFFD, as `encodeUtf8` does).
 */
function writeStringField(out: Uint8Array, pos: number, tag: number, text: string, length: number): number {
  if (length !== text.length) return writeBytesField(out, pos, tag, encodeUtf8(text));
  out[pos++] = tag;
  pos = writeVarint(out, pos, length);
  for (let i = 0; i < length; i++) out[pos + i] = text.charCodeAt(i);
  return pos + length;
}

function writeBytesField(out: Uint8Array, pos: number, tag: number, bytes: Uint8Array): number {
  out[pos++] = tag;
  pos = writeVarint(out, pos, bytes.length);
  out.set(bytes, pos);
  return pos + bytes.length;
}

/**
 * Validation of the write path, PutRecord and PutRecords (and the producer's records), in plain
 * code instead of zod.
 *
 * Why: these calls are the hot path (every producer batch, every clickstream request), and an app
 * that only writes records should not have to load a schema library. With the generated zod/mini
 * schemas, a put-only browser bundle carried ~7 KB gzip of zod, Node spent ~90 ms loading it at
 * import, and a 500-record request spent 0.4–0.8 ms in it (bench/RESULTS.md). Every other operation
 * still goes through the zod schemas in `shape-schemas.ts`, loaded on its first call.
 *
 * The rules are the API model's (codegen/kinesis-api-model.json, the same source `shape-schemas.ts` is
 * generated from), with zod/mini's semantics where they matter (string lengths in code points, an
 * oversized list reported without its elements, object-level rules only for an otherwise valid
 * object). test/unit/put-validation.test.ts gives this module and the zod schemas the same inputs,
 * every rule at its boundaries, and requires the same issues and the same wire body, so the two
 * cannot drift apart.
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecord.html
 */
import { KinesisValidationError, type ValidationIssue } from './errors.ts';
import { base64Length, BodyWriter } from './internal/body-writer.ts';
import { putRecordsEntryBytes, writePutRecordsEntry } from './internal/put-records-entry.ts';
import { encodeUtf8, isWellFormedUtf16, utf8ByteLength } from './internal/utf8.ts';
import { MAX_RECORDS_PER_PUT_RECORDS, type RecordLimits } from './limits.ts';
import { deleteNulls } from './client.ts';
import { recordSize, recordSizeIssue, requestSizeIssue } from './record-size.ts';
import type { PutRecordInput, PutRecordOutput, PutRecordsInput, PutRecordsOutput } from './shapes.ts';

// Patterns and lengths from the API model (shapes StreamName, StreamARN, StreamId, HashKey,
// SequenceNumber, PartitionKey). Each pattern is written once, as the model's text that an issue
// quotes (`must match …`): the stream members' are compiled when checked, once per call, and V8
// caches compiled patterns by their text.
const STREAM_NAME = { min: 1, max: 128, pattern: '^[a-zA-Z0-9_.-]+$' };
const STREAM_ARN = { min: 1, max: 2048, pattern: '^arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+$' };
const STREAM_ID = { min: 1, max: 24, pattern: '^[a-z0-9]{20}-[a-z0-9]{3}$' };
const HASH_KEY_PATTERN = /^(0|([1-9]\d{0,38}))$/;
/**
 * The largest hash key, 2^128 - 1: the model's pattern allows 39 digits, Kinesis rejects more. Not
 * imported from the producer's shard prediction (internal/hash-key.ts), which would bring its MD5
 * into the client's chunk and into every `kinesis-edge/client` import. (schema-helpers.ts holds its
 * own for the zod side, which must import nothing of the client's chunk.)
 */
const MAX_HASH_KEY = 0xffffffffffffffffffffffffffffffffn;
const SEQUENCE_NUMBER_PATTERN = /^(0|([1-9]\d{0,128}))$/;
/** Partition keys are counted in UTF-16 units, as the KPL and the service count them (see schema-helpers.ts). */
const PARTITION_KEY_MAX_UNITS = 256;

const UNKNOWN_MEMBER_RULE = 'is not a field of this operation';
const STREAM_IDENTITY_RULE = 'one of StreamName, StreamARN, StreamId is required';

/** Where issues go, and the path prefix of the value being checked. */
type Issues = ValidationIssue[];

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Code points, as zod counts string lengths (a surrogate pair is one). */
function codePointLength(text: string): number {
  let count = text.length;
  for (let i = 0; i < text.length - 1; i++) {
    if ((text.charCodeAt(i) & 0xfc00) === 0xd800 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      count--;
      i++;
    }
  }
  return count;
}

function typeIssue(value: unknown, path: string, expected: string, issues: Issues): void {
  issues.push({ path, rule: value === undefined ? 'is required' : `must be ${expected}` });
}

/** A model string with length limits and a pattern; every broken rule is reported, as zod does. */
function checkPatternString(value: unknown, path: string, rules: { min: number; max: number; pattern: string }, issues: Issues): void {
  if (typeof value !== 'string') return typeIssue(value, path, 'a string', issues);
  if (value.length < rules.min * 2 && codePointLength(value) < rules.min) issues.push({ path, rule: `length must be at least ${rules.min}` });
  if (value.length > rules.max && codePointLength(value) > rules.max) issues.push({ path, rule: `length must be at most ${rules.max}` });
  if (!new RegExp(rules.pattern).test(value)) issues.push({ path, rule: `must match ${rules.pattern}` });
}

function checkHashKey(value: unknown, path: string, issues: Issues): void {
  if (typeof value !== 'string') return typeIssue(value, path, 'a string', issues);
  if (!HASH_KEY_PATTERN.test(value)) issues.push({ path, rule: `must match ${HASH_KEY_PATTERN.source}` });
  if (/^\d+$/.test(value) && BigInt(value) > MAX_HASH_KEY) {
    issues.push({ path, rule: 'must be at most 2^128 - 1 (340282366920938463463374607431768211455)' });
  }
}

function checkPartitionKey(value: unknown, path: string, issues: Issues): void {
  if (typeof value !== 'string') return typeIssue(value, path, 'a string', issues);
  if (value.length === 0) issues.push({ path, rule: 'length must be at least 1' });
  if (value.length > PARTITION_KEY_MAX_UNITS) issues.push({ path, rule: `length must be at most ${PARTITION_KEY_MAX_UNITS}` });
  if (!isWellFormedUtf16(value)) issues.push({ path, rule: 'must be well-formed UTF-16 (no lone surrogates)' });
}

function isData(value: unknown): value is Uint8Array | string {
  return typeof value === 'string' || value instanceof Uint8Array;
}

function checkData(value: unknown, path: string, issues: Issues): void {
  if (!isData(value)) issues.push({ path, rule: 'must be a Uint8Array or a string' });
}

/** Unknown members are refused (a typo such as `Partitionkey` would otherwise be dropped silently). */
function checkKnownKeys(object: Record<string, unknown>, known: ReadonlySet<string>, prefix: string, issues: Issues): void {
  for (const key in object) {
    if (!known.has(key)) issues.push({ path: prefix ? `${prefix}.${key}` : key, rule: UNKNOWN_MEMBER_RULE });
  }
}

const ENTRY_KEYS: ReadonlySet<string> = new Set(['Data', 'ExplicitHashKey', 'PartitionKey']);

/**
 * Checks one PutRecords entry (`Data`, `PartitionKey`, `ExplicitHashKey`) and adds its issues under
 * `path` (`Records[3]`, or `''` for a record on its own, as the producer checks them).
 */
export function checkPutRecordsEntry(entry: unknown, path: string, issues: Issues): void {
  if (!isPlainObject(entry)) {
    issues.push({ path, rule: 'must be an object' });
    return;
  }
  const prefix = path ? `${path}.` : '';
  checkData(entry.Data, `${prefix}Data`, issues);
  if (entry.ExplicitHashKey !== undefined) checkHashKey(entry.ExplicitHashKey, `${prefix}ExplicitHashKey`, issues);
  if (entry.PartitionKey !== undefined) checkPartitionKey(entry.PartitionKey, `${prefix}PartitionKey`, issues);
  checkKnownKeys(entry, ENTRY_KEYS, path, issues);
}

/** How a call names its stream, in the order the model lists the members. */
const STREAM_MEMBERS = ['StreamARN', 'StreamId', 'StreamName'] as const;

/** Checks how a call names its stream (`StreamARN`, `StreamId`, `StreamName`), as PutRecord and PutRecords do. */
function checkStreamMembers(input: Record<string, unknown>, issues: Issues): void {
  const { StreamARN, StreamId, StreamName } = input;
  if (StreamARN !== undefined) checkPatternString(StreamARN, 'StreamARN', STREAM_ARN, issues);
  if (StreamId !== undefined) checkPatternString(StreamId, 'StreamId', STREAM_ID, issues);
  if (StreamName !== undefined) checkPatternString(StreamName, 'StreamName', STREAM_NAME, issues);
}

/**
 * The API reference requires one of StreamName, StreamARN or StreamId (the model marks each optional).
 * Like zod's object refinements, checked only when no member broke a rule (unknown members, here or
 * in an entry, do not count: zod reports them and goes on).
 */
function checkStreamIdentity(input: Record<string, unknown>, issues: Issues): void {
  if (issues.some((issue) => issue.rule !== UNKNOWN_MEMBER_RULE)) return;
  if (input.StreamName === undefined && input.StreamARN === undefined && input.StreamId === undefined) {
    issues.push({ path: '', rule: STREAM_IDENTITY_RULE });
  }
}

function checkDryRun(value: unknown, issues: Issues): void {
  if (value !== undefined && typeof value !== 'boolean') issues.push({ path: 'DryRun', rule: 'must be a boolean' });
}

/**
 * Checks how a producer names its stream: exactly the rules PutRecords applies to `StreamName` /
 * `StreamARN` / `StreamId`, reported with those field names.
 */
export function streamIdentityIssues(stream: Record<string, unknown>): ValidationIssue[] {
  const issues: Issues = [];
  checkStreamMembers(stream, issues);
  checkStreamIdentity(stream, issues);
  return issues;
}

const PUT_RECORDS_KEYS: ReadonlySet<string> = new Set(['DryRun', 'Records', 'StreamARN', 'StreamId', 'StreamName']);

/** Members of an entry in the request body, in the model's order, as JSON text. */
/** A valid entry, measured for the body: what {@link validatePutRecordsInput} writes. */
interface MeasuredEntry {
  data: Uint8Array;
  hashKey: string | undefined;
  key: string | undefined;
  keyBytes: number;
}

/**
 * The common case of an entry, checked without building any issue paths: an object with only known
 * members, each valid. Whatever this refuses, {@link checkPutRecordsEntry} examines and reports.
 */
function isValidEntry(entry: unknown): entry is { Data: Uint8Array | string; PartitionKey?: string; ExplicitHashKey?: string } {
  if (!isPlainObject(entry)) return false;
  for (const key in entry) if (key !== 'Data' && key !== 'PartitionKey' && key !== 'ExplicitHashKey') return false;
  const { Data, PartitionKey, ExplicitHashKey } = entry;
  return (
    isData(Data) &&
    (PartitionKey === undefined ||
      (typeof PartitionKey === 'string' && PartitionKey.length > 0 && PartitionKey.length <= PARTITION_KEY_MAX_UNITS && isWellFormedUtf16(PartitionKey))) &&
    (ExplicitHashKey === undefined || (typeof ExplicitHashKey === 'string' && HASH_KEY_PATTERN.test(ExplicitHashKey) && BigInt(ExplicitHashKey) <= MAX_HASH_KEY))
  );
}

/**
 * PutRecords input → the request body as UTF-8 bytes (`Data` as base64), or a
 * `KinesisValidationError` naming every bad field. Size limits (the client's `limits`) are checked
 * once the shape is valid. The body is written directly (internal/body-writer.ts), in the
 * members' model order: the same JSON as `JSON.stringify` of the zod schema's output, which the
 * tests check.
 */
export function validatePutRecordsInput(input: unknown, limits: RecordLimits): Uint8Array<ArrayBuffer> {
  const issues: Issues = [];
  if (!isPlainObject(input)) throw new KinesisValidationError('PutRecords', 'input', [{ path: '', rule: 'must be an object' }]);
  checkDryRun(input.DryRun, issues);
  const records = input.Records;
  const entries: MeasuredEntry[] = [];
  let totalBytes = 0;
  const sizeIssues: Issues = [];
  if (!Array.isArray(records)) {
    issues.push({ path: 'Records', rule: 'must be an array' });
  } else if (records.length > MAX_RECORDS_PER_PUT_RECORDS) {
    // zod/mini reports an oversized list without parsing its elements; so do we.
    issues.push({ path: 'Records', rule: `must have at most ${MAX_RECORDS_PER_PUT_RECORDS} items` });
  } else {
    for (let index = 0; index < records.length; index++) {
      const entry: unknown = records[index];
      if (!isValidEntry(entry)) {
        checkPutRecordsEntry(entry, `Records[${index}]`, issues);
        continue;
      }
      const { Data, ExplicitHashKey, PartitionKey } = entry;
      const data = typeof Data === 'string' ? encodeUtf8(Data) : Data;
      const keyBytes = PartitionKey === undefined ? 0 : utf8ByteLength(PartitionKey);
      const size = keyBytes + data.length;
      totalBytes += size;
      if (size > limits.maxRecordBytes) sizeIssues.push(recordSizeIssue(size, limits, `Records[${index}].Data`)!);
      if (issues.length || sizeIssues.length) continue; // no request will be sent
      entries.push({ data, hashKey: ExplicitHashKey, key: PartitionKey, keyBytes });
    }
    if (records.length === 0) issues.push({ path: 'Records', rule: 'must have at least 1 items' });
  }
  checkStreamMembers(input, issues);
  checkKnownKeys(input, PUT_RECORDS_KEYS, '', issues);
  checkStreamIdentity(input, issues);
  if (issues.length) throw new KinesisValidationError('PutRecords', 'input', issues);

  const requestIssue = requestSizeIssue(totalBytes, limits);
  if (requestIssue) sizeIssues.push(requestIssue);
  if (sizeIssues.length) throw new KinesisValidationError('PutRecords', 'input', sizeIssues);
  return writePutRecordsBody(input, entries);
}

function writePutRecordsBody(input: Record<string, unknown>, entries: readonly MeasuredEntry[]): Uint8Array<ArrayBuffer> {
  const head = `{${input.DryRun === undefined ? '' : `"DryRun":${input.DryRun},`}"Records":[`;
  let tail = ']';
  for (const key of STREAM_MEMBERS) if (input[key] !== undefined) tail += `,"${key}":${JSON.stringify(input[key])}`;
  tail += '}';
  const tailBytes = utf8ByteLength(tail);

  let length = head.length + tailBytes + Math.max(0, entries.length - 1);
  for (const { data, hashKey, key, keyBytes } of entries) length += putRecordsEntryBytes(key, keyBytes, hashKey, data.length);

  const body = new BodyWriter(length);
  body.ascii(head);
  for (let i = 0; i < entries.length; i++) {
    const { data, hashKey, key, keyBytes } = entries[i]!;
    if (i > 0) body.ascii(',');
    writePutRecordsEntry(body, key, keyBytes, hashKey, data, 0, data.length);
  }
  body.utf8(tail, tailBytes);
  return body.finish();
}

/** PutRecord's body starts with its data: `{"Data":"<base64>` and then the other members. */
const PUT_RECORD_DATA_OPEN = '{"Data":"';

const PUT_RECORD_KEYS: ReadonlySet<string> = new Set([
  'Data',
  'DryRun',
  'ExplicitHashKey',
  'PartitionKey',
  'SequenceNumberForOrdering',
  'StreamARN',
  'StreamId',
  'StreamName',
]);

/** PutRecord input → the request body as UTF-8 bytes, or a `KinesisValidationError`; see {@link validatePutRecordsInput}. */
export function validatePutRecordInput(input: unknown, limits: RecordLimits): Uint8Array<ArrayBuffer> {
  if (!isPlainObject(input)) throw new KinesisValidationError('PutRecord', 'input', [{ path: '', rule: 'must be an object' }]);
  const issues: Issues = [];
  const { Data, DryRun, ExplicitHashKey, PartitionKey, SequenceNumberForOrdering } = input;
  checkData(Data, 'Data', issues);
  checkDryRun(DryRun, issues);
  if (ExplicitHashKey !== undefined) checkHashKey(ExplicitHashKey, 'ExplicitHashKey', issues);
  if (PartitionKey !== undefined) checkPartitionKey(PartitionKey, 'PartitionKey', issues);
  if (SequenceNumberForOrdering !== undefined) {
    if (typeof SequenceNumberForOrdering !== 'string') typeIssue(SequenceNumberForOrdering, 'SequenceNumberForOrdering', 'a string', issues);
    else if (!SEQUENCE_NUMBER_PATTERN.test(SequenceNumberForOrdering)) {
      issues.push({ path: 'SequenceNumberForOrdering', rule: `must match ${SEQUENCE_NUMBER_PATTERN.source}` });
    }
  }
  checkStreamMembers(input, issues);
  checkKnownKeys(input, PUT_RECORD_KEYS, '', issues);
  checkStreamIdentity(input, issues);
  if (issues.length) throw new KinesisValidationError('PutRecord', 'input', issues);

  const size = recordSize({ Data: Data as Uint8Array | string, PartitionKey: PartitionKey as string | undefined });
  const sizeIssue = recordSizeIssue(size, limits);
  if (sizeIssue) throw new KinesisValidationError('PutRecord', 'input', [sizeIssue]);
  // The members after `Data`, in the model's order; `Data` is written as base64 in place before them.
  const rest: Record<string, unknown> = {};
  if (DryRun !== undefined) rest.DryRun = DryRun;
  if (ExplicitHashKey !== undefined) rest.ExplicitHashKey = ExplicitHashKey;
  if (PartitionKey !== undefined) rest.PartitionKey = PartitionKey;
  if (SequenceNumberForOrdering !== undefined) rest.SequenceNumberForOrdering = SequenceNumberForOrdering;
  for (const key of STREAM_MEMBERS) if (input[key] !== undefined) rest[key] = input[key];
  const restJson = JSON.stringify(rest);
  const tail = restJson === '{}' ? '"}' : `",${restJson.slice(1)}`;
  const tailBytes = utf8ByteLength(tail);
  const data = typeof Data === 'string' ? encodeUtf8(Data) : (Data as Uint8Array);
  const body = new BodyWriter(PUT_RECORD_DATA_OPEN.length + base64Length(data.length) + tailBytes);
  body.ascii(PUT_RECORD_DATA_OPEN);
  body.base64(data);
  body.utf8(tail, tailBytes);
  return body.finish();
}

// ---- responses: tolerant, like every output schema (unknown members kept, `null` already removed) ----

function checkOptional(object: Record<string, unknown>, key: string, type: 'string' | 'number', prefix: string, issues: Issues): void {
  const value = object[key];
  if (value !== undefined && typeof value !== type) issues.push({ path: `${prefix}${key}`, rule: `must be a ${type}` });
}

/** The members of a PutRecords answer entry, all optional strings, in the order issues name them. */
const OUTPUT_ENTRY_MEMBERS = ['ErrorCode', 'ErrorMessage', 'SequenceNumber', 'ShardId'] as const;

/** `null` members are absent (see `deleteNulls`); the common entry, only strings, needs no walk. */
function dropNulls(object: Record<string, unknown>): void {
  for (const key in object) {
    const value = object[key];
    if (value === null) delete object[key];
    else if (typeof value === 'object') deleteNulls(value);
  }
}

/** A PutRecords response, checked in place and returned as it is (it has no blobs or timestamps). */
export function parsePutRecordsOutput(json: unknown): PutRecordsOutput {
  const issues: Issues = [];
  if (!isPlainObject(json)) throw new KinesisValidationError('PutRecords', 'output', [{ path: '', rule: 'must be an object' }]);
  for (const key in json) {
    const value = json[key];
    if (value === null) delete json[key];
    else if (typeof value === 'object' && key !== 'Records') deleteNulls(value);
  }
  checkOptional(json, 'EncryptionType', 'string', '', issues);
  checkOptional(json, 'FailedRecordCount', 'number', '', issues);
  const records = json.Records;
  if (!Array.isArray(records)) {
    issues.push({ path: 'Records', rule: 'must be an array' });
  } else {
    for (let index = 0; index < records.length; index++) {
      const entry: unknown = records[index];
      if (!isPlainObject(entry)) {
        issues.push({ path: `Records[${index}]`, rule: 'must be an object' });
        continue;
      }
      dropNulls(entry);
      for (const key of OUTPUT_ENTRY_MEMBERS) {
        const value = entry[key];
        // The path is built only for a bad member: a string per entry would be garbage on the
        // producer's hot path (up to 500 entries per answer, nearly always valid).
        if (value !== undefined && typeof value !== 'string') issues.push({ path: `Records[${index}].${key}`, rule: 'must be a string' });
      }
    }
  }
  if (issues.length) throw new KinesisValidationError('PutRecords', 'output', issues);
  return json as unknown as PutRecordsOutput;
}

/** A PutRecord response, checked in place. */
export function parsePutRecordOutput(json: unknown): PutRecordOutput {
  const issues: Issues = [];
  if (!isPlainObject(json)) throw new KinesisValidationError('PutRecord', 'output', [{ path: '', rule: 'must be an object' }]);
  dropNulls(json);
  checkOptional(json, 'EncryptionType', 'string', '', issues);
  for (const key of ['SequenceNumber', 'ShardId']) {
    if (typeof json[key] !== 'string') typeIssue(json[key], key, 'a string', issues);
  }
  if (issues.length) throw new KinesisValidationError('PutRecord', 'output', issues);
  return json as unknown as PutRecordOutput;
}

/** The input types these validators accept, for the operation modules' signatures. */
export type { PutRecordInput, PutRecordsInput };

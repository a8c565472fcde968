/**
 * The GetRecords response (and SubscribeToShard's events, which carry the same records), checked and
 * converted in plain code instead of zod.
 *
 * Why: a GetRecords answer holds up to 10,000 records, and the consumer asks for one several times a
 * second per shard. Through the generated zod schema, the checks and conversions cost ~38 ms per
 * 10,000 records on Node 20, a large part of a Worker's CPU allowance; plain code does the same
 * work in a fraction of that (bench/.tmp measurements in the commit). The input still goes through
 * the zod schema, loaded on the first call like every other operation's.
 *
 * The rules are the API model's `GetRecordsOutput` (the shape `shape-schemas.ts` is generated from), with
 * zod/mini's behaviour: unknown members kept, `null` members absent, `Data` from base64 to bytes,
 * timestamps (epoch seconds, or an ISO string) to `Date`, issues in the model's member order, and a
 * `Data` that is not base64 reported alone, as zod reports a transform that throws.
 * test/unit/get-records-validation.test.ts holds it to the zod schema's results.
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html#API_GetRecords_ResponseSyntax
 */
import { deleteNulls } from './client.ts';
import { KinesisValidationError, type ValidationIssue } from './errors.ts';
import { decodeBase64 } from './internal/base64.ts';
import type { ChildShard, GetRecordsOutput, KinesisRecord } from './shapes.ts';


type Issues = ValidationIssue[];
type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** zod's wording for a wrong or missing scalar (see schema-validation.ts `toIssues`). */
function typeRule(value: unknown, type: 'string' | 'number'): string {
  return value === undefined ? 'is required' : `must be a ${type}`;
}

function requireType(object: Json, key: string, type: 'string' | 'number', path: string, issues: Issues): void {
  const value = object[key];
  if (typeof value !== type) issues.push({ path, rule: typeRule(value, type) });
}

function optionalType(object: Json, key: string, type: 'string' | 'number', path: string, issues: Issues): void {
  const value = object[key];
  if (value !== undefined && typeof value !== type) issues.push({ path, rule: `must be a ${type}` });
}

/**
 * One record, converted in place. Issue paths are built only for a bad member: a response holds up
 * to 10,000 records, and the common one is valid.
 */
function checkRecord(record: unknown, index: number, operation: string, issues: Issues): void {
  const at = (member: string) => `Records[${index}]${member}`;
  if (!isObject(record)) {
    issues.push({ path: at(''), rule: 'must be an object' });
    return;
  }
  // ApproximateArrivalTimestamp: epoch seconds (a fraction allowed) or an ISO string → Date; zod's
  // union reports anything else as "Invalid input".
  const arrival = record.ApproximateArrivalTimestamp;
  if (typeof arrival === 'number') record.ApproximateArrivalTimestamp = new Date(Math.round(arrival * 1000));
  else if (typeof arrival === 'string') record.ApproximateArrivalTimestamp = new Date(arrival);
  else if (arrival !== undefined) issues.push({ path: at('.ApproximateArrivalTimestamp'), rule: 'Invalid input' });
  const data = record.Data;
  if (typeof data !== 'string') {
    issues.push({ path: at('.Data'), rule: typeRule(data, 'string') });
  } else {
    try {
      record.Data = decodeBase64(data);
    } catch (error) {
      // zod stops the whole parse at a transform that throws and reports only that.
      throw new KinesisValidationError(operation, 'output', [{ path: '', rule: error instanceof Error ? error.message : String(error) }]);
    }
  }
  const { EncryptionType, PartitionKey, SequenceNumber } = record;
  if (EncryptionType !== undefined && typeof EncryptionType !== 'string') issues.push({ path: at('.EncryptionType'), rule: 'must be a string' });
  if (PartitionKey !== undefined && typeof PartitionKey !== 'string') issues.push({ path: at('.PartitionKey'), rule: 'must be a string' });
  if (typeof SequenceNumber !== 'string') issues.push({ path: at('.SequenceNumber'), rule: typeRule(SequenceNumber, 'string') });
}

function checkChildShard(child: unknown, path: string, issues: Issues): void {
  if (!isObject(child)) {
    issues.push({ path, rule: 'must be an object' });
    return;
  }
  const range = child.HashKeyRange;
  if (!isObject(range)) {
    issues.push({ path: `${path}.HashKeyRange`, rule: 'must be an object' });
  } else {
    requireType(range, 'EndingHashKey', 'string', `${path}.HashKeyRange.EndingHashKey`, issues);
    requireType(range, 'StartingHashKey', 'string', `${path}.HashKeyRange.StartingHashKey`, issues);
  }
  const parents = child.ParentShards;
  if (!Array.isArray(parents)) {
    issues.push({ path: `${path}.ParentShards`, rule: 'must be an array' });
  } else {
    parents.forEach((parent, index) => {
      if (typeof parent !== 'string') issues.push({ path: `${path}.ParentShards[${index}]`, rule: typeRule(parent, 'string') });
    });
  }
  requireType(child, 'ShardId', 'string', `${path}.ShardId`, issues);
}

/** `Records`: an array of records, converted in place (GetRecords, and SubscribeToShard's events). */
function checkRecords(records: unknown, operation: string, issues: Issues): void {
  if (!Array.isArray(records)) issues.push({ path: 'Records', rule: 'must be an array' });
  else for (let i = 0; i < records.length; i++) checkRecord(records[i], i, operation, issues);
}

/** `ChildShards`, when present: the shards that continue a closed shard's hash range. */
function checkChildShards(children: unknown, issues: Issues): void {
  if (children === undefined) return;
  if (!Array.isArray(children)) issues.push({ path: 'ChildShards', rule: 'must be an array' });
  else for (let i = 0; i < children.length; i++) checkChildShard(children[i], `ChildShards[${i}]`, issues);
}

/**
 * A GetRecords response (parsed JSON) → the output, converted in place: `Data` as `Uint8Array`,
 * `ApproximateArrivalTimestamp` as `Date`. Throws `KinesisValidationError` naming every bad member.
 */
export function parseGetRecordsOutput(json: unknown): GetRecordsOutput {
  deleteNulls(json);
  if (!isObject(json)) throw new KinesisValidationError('GetRecords', 'output', [{ path: '', rule: 'must be an object' }]);
  const issues: Issues = [];
  // The model's member order: ChildShards, MillisBehindLatest, NextShardIterator, Records.
  checkChildShards(json.ChildShards, issues);
  optionalType(json, 'MillisBehindLatest', 'number', 'MillisBehindLatest', issues);
  optionalType(json, 'NextShardIterator', 'string', 'NextShardIterator', issues);
  checkRecords(json.Records, 'GetRecords', issues);
  if (issues.length) throw new KinesisValidationError('GetRecords', 'output', issues);
  return json as unknown as GetRecordsOutput;
}

/**
 * A SubscribeToShard event's payload (parsed JSON) → the event, converted in place like a GetRecords
 * answer. Member order as in event-stream/schemas.ts: Records, ContinuationSequenceNumber,
 * MillisBehindLatest (required), ChildShards.
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_SubscribeToShardEvent.html
 */
export function parseSubscribeToShardEvent(json: unknown): SubscribeToShardEventOutput {
  deleteNulls(json);
  if (!isObject(json)) throw new KinesisValidationError('SubscribeToShard', 'output', [{ path: '', rule: 'must be an object' }]);
  const issues: Issues = [];
  checkRecords(json.Records, 'SubscribeToShard', issues);
  optionalType(json, 'ContinuationSequenceNumber', 'string', 'ContinuationSequenceNumber', issues);
  requireType(json, 'MillisBehindLatest', 'number', 'MillisBehindLatest', issues);
  checkChildShards(json.ChildShards, issues);
  if (issues.length) throw new KinesisValidationError('SubscribeToShard', 'output', issues);
  return json as unknown as SubscribeToShardEventOutput;
}

/** What {@link parseSubscribeToShardEvent} returns; subscribe.ts names it `SubscribeToShardEvent`. */
export interface SubscribeToShardEventOutput {
  Records: KinesisRecord[];
  ContinuationSequenceNumber?: string;
  MillisBehindLatest: number;
  ChildShards?: ChildShard[];
}

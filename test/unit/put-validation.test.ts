// The write path's plain validators (src/put-validation.ts) against the generated zod schemas
// (src/shapes.ts), which every other operation uses: the same inputs must give the same issues, in
// the same order, and the same wire body. The inputs put every rule of PutRecord and PutRecords at
// its boundaries (lengths in UTF-16 units and code points, patterns, the 2^128 - 1 hash-key bound,
// 500 entries, record and request bytes), then mix them at random (seeded) so that rules meet.
import { describe, expect, it } from 'vitest';
import { KinesisValidationError, type ValidationIssue } from '../../src/errors.ts';
import { DEFAULT_RECORD_LIMITS, type RecordLimits } from '../../src/limits.ts';
import {
  checkPutRecordsEntry,
  parsePutRecordOutput,
  parsePutRecordsOutput,
  streamIdentityIssues,
  validatePutRecordInput,
  validatePutRecordsInput,
} from '../../src/put-validation.ts';
import { deleteNulls } from '../../src/client.ts';
import { parseWith } from '../../src/schema-validation.ts';
import * as shapes from '../../src/shape-schemas.ts';
import { seededRandom } from '../support/seeded-random.ts';

type Outcome = { ok: true; body: string } | { ok: false; issues: readonly ValidationIssue[] };

function outcome(run: () => unknown): Outcome {
  try {
    const value = run();
    // The plain validators return the request body (PutRecords as UTF-8 bytes, PutRecord as text);
    // the zod path returns the object it stringifies to.
    const body = value instanceof Uint8Array ? new TextDecoder('utf-8', { fatal: true }).decode(value) : typeof value === 'string' ? value : JSON.stringify(value);
    return { ok: true, body };
  } catch (error) {
    if (!(error instanceof KinesisValidationError)) throw error;
    return { ok: false, issues: error.issues };
  }
}

type Entry = { PartitionKey?: string; Data: Uint8Array | string };

/**
 * The size rules, computed independently of the plain validator: every record over the record
 * limit (in order), then the request total. Counted as the service counts: UTF-8 bytes of key + data.
 */
function sizeIssues(operation: 'PutRecord' | 'PutRecords', input: unknown, limits: RecordLimits): ValidationIssue[] {
  const bytes = (entry: Entry) =>
    new TextEncoder().encode(entry.PartitionKey ?? '').length + (typeof entry.Data === 'string' ? new TextEncoder().encode(entry.Data).length : entry.Data.length);
  const over = (size: number, path: string) => ({ path, rule: `partition key + data is ${size} bytes, more than the record limit of ${limits.maxRecordBytes}` });
  if (operation === 'PutRecord') {
    const size = bytes(input as Entry);
    return size > limits.maxRecordBytes ? [over(size, 'Data')] : [];
  }
  const issues: ValidationIssue[] = [];
  let total = 0;
  (input as { Records: Entry[] }).Records.forEach((entry, index) => {
    const size = bytes(entry);
    total += size;
    if (size > limits.maxRecordBytes) issues.push(over(size, `Records[${index}].Data`));
  });
  if (total > limits.maxRequestBytes) issues.push({ path: 'Records', rule: `records total ${total} bytes, more than the request limit of ${limits.maxRequestBytes}` });
  return issues;
}

/** What the zod path gives: the schema, then (only for a valid shape) the size rules. */
function viaZod(operation: 'PutRecord' | 'PutRecords', input: unknown, limits: RecordLimits): unknown {
  const schema = operation === 'PutRecords' ? shapes.PutRecordsInputSchema() : shapes.PutRecordInputSchema();
  const wire = parseWith(schema, input, operation, 'input');
  const issues = sizeIssues(operation, input, limits);
  if (issues.length) throw new KinesisValidationError(operation, 'input', issues);
  return wire;
}

const emoji = '\u{1F600}';
const STREAM_NAMES: unknown[] = [undefined, 'clicks', '', 'a'.repeat(128), 'a'.repeat(129), 'has space', 'ok.name_-1', emoji, 5, null];
const ARN = 'arn:aws:kinesis:us-east-1:123456789012:stream/clicks';
const STREAM_ARNS: unknown[] = [
  undefined,
  ARN,
  'arn:aws-cn:kinesis:cn-north-1:123456789012:stream/clicks',
  'arn:aws:kinesis:us-east-1:12345678901:stream/clicks',
  'arn:aws:sqs:us-east-1:123456789012:stream/clicks',
  '',
  ARN + 'x'.repeat(2048 - ARN.length),
  ARN + 'x'.repeat(2049 - ARN.length),
  // 2,049 code points in more than 2,048 units, and 2,048 code points in more than 2,048 units.
  ARN + emoji.repeat(2049 - ARN.length),
  ARN + emoji.repeat(2048 - ARN.length),
  ARN + ' space',
  42,
];
const STREAM_IDS: unknown[] = [undefined, 'abcdefghij0123456789-abc', 'ABCDEFGHIJ0123456789-abc', 'abcdefghij0123456789-abcd', '', true];
const DRY_RUNS: unknown[] = [undefined, true, false, 'yes', null];
const PARTITION_KEYS: unknown[] = [
  undefined,
  'k',
  '',
  'a'.repeat(256),
  'a'.repeat(257),
  emoji.repeat(128),
  emoji.repeat(129),
  '\ud800',
  'x\udc00y',
  'ü'.repeat(256),
  7,
  null,
];
const HASH_KEYS: unknown[] = [
  undefined,
  '0',
  '01',
  'abc',
  '-1',
  '340282366920938463463374607431768211455',
  '340282366920938463463374607431768211456',
  '9'.repeat(39),
  '1'.repeat(40),
  '',
  12,
];
const DATA: unknown[] = [
  'hello',
  '',
  'ü€' + emoji,
  new Uint8Array([0, 1, 2, 255]),
  new Uint8Array([9, 1, 2, 3]).subarray(1),
  new Uint8Array(0),
  new DataView(new ArrayBuffer(2)),
  new ArrayBuffer(2),
  [1, 2],
  5,
  null,
  undefined,
];
const SEQUENCE_NUMBERS: unknown[] = [undefined, '0', '1', '01', '1'.repeat(129), '1'.repeat(130), 'x', 3];
const LIMITS: RecordLimits[] = [DEFAULT_RECORD_LIMITS, { maxRecordBytes: 6, maxRequestBytes: 20 }, { maxRecordBytes: 300, maxRequestBytes: 400 }];

function pick<T>(random: () => number, values: readonly T[]): T {
  return values[Math.floor(random() * values.length)]!;
}

/** An entry: usually valid, sometimes with one or more bad members, an unknown member, or no object at all. */
function randomEntry(random: () => number): unknown {
  const shape = random();
  if (shape < 0.03) return pick(random, [null, 'entry', [], 3]);
  const entry: Record<string, unknown> = {};
  const bad = random() < 0.3;
  if (!bad || random() < 0.5) entry.Data = bad ? pick(random, DATA) : pick(random, DATA.slice(0, 6));
  const key = bad ? pick(random, PARTITION_KEYS) : pick(random, ['k', 'user-1', emoji.repeat(3), 'ü']);
  if (key !== undefined) entry.PartitionKey = key;
  if (random() < (bad ? 0.4 : 0.1)) {
    const hashKey = bad ? pick(random, HASH_KEYS) : pick(random, ['0', '340282366920938463463374607431768211455', '12345']);
    if (hashKey !== undefined) entry.ExplicitHashKey = hashKey;
  }
  if (bad && random() < 0.15) entry.Partitionkey = 'typo';
  return entry;
}

function randomStreamMembers(random: () => number, target: Record<string, unknown>): void {
  const bad = random() < 0.3;
  const choose = (values: unknown[], good: unknown[]) => (bad ? pick(random, values) : pick(random, good));
  const name = choose(STREAM_NAMES, ['clicks', undefined]);
  if (name !== undefined) target.StreamName = name;
  if (bad || random() < 0.2) {
    const arn = choose(STREAM_ARNS, [ARN]);
    if (arn !== undefined) target.StreamARN = arn;
  }
  if (bad && random() < 0.3) target.StreamId = pick(random, STREAM_IDS);
  if (random() < 0.2) target.DryRun = bad ? pick(random, DRY_RUNS) : pick(random, [true, false]);
  if (bad && random() < 0.1) target.Streamname = 'typo';
  if (!bad && target.StreamName === undefined && target.StreamARN === undefined) target.StreamName = 'clicks';
}

function randomPutRecords(random: () => number): unknown {
  const input: Record<string, unknown> = {};
  randomStreamMembers(random, input);
  const records = random();
  if (records < 0.04) {
    const odd = pick(random, [undefined, null, {}, 'records', 3]);
    if (odd !== undefined) input.Records = odd;
  } else if (records < 0.08) {
    input.Records = [];
  } else if (records < 0.1) {
    input.Records = Array.from({ length: pick(random, [500, 501]) }, () => randomEntry(random));
  } else {
    input.Records = Array.from({ length: 1 + Math.floor(random() * 6) }, () => randomEntry(random));
  }
  return input;
}

function randomPutRecord(random: () => number): unknown {
  const input: Record<string, unknown> = {};
  randomStreamMembers(random, input);
  const entry = randomEntry(random);
  if (entry && typeof entry === 'object' && !Array.isArray(entry)) Object.assign(input, entry);
  if (random() < 0.25) {
    const sequence = pick(random, SEQUENCE_NUMBERS);
    if (sequence !== undefined) input.SequenceNumberForOrdering = sequence;
  }
  return input;
}

describe('plain PutRecords/PutRecord validators agree with the zod schemas', () => {
  it('on every boundary value of every member', () => {
    const base = { StreamName: 'clicks', Records: [{ Data: 'x', PartitionKey: 'k' }] };
    const cases: unknown[] = [undefined, null, [], 'input', 5, {}, base];
    for (const value of STREAM_NAMES) cases.push({ ...base, StreamName: value });
    for (const value of STREAM_ARNS) cases.push({ ...base, StreamName: undefined, StreamARN: value }, { ...base, StreamARN: value });
    for (const value of STREAM_IDS) cases.push({ ...base, StreamId: value }, { Records: base.Records, StreamId: value });
    for (const value of DRY_RUNS) cases.push({ ...base, DryRun: value });
    for (const value of PARTITION_KEYS) cases.push({ ...base, Records: [{ Data: 'x', PartitionKey: value }] });
    for (const value of HASH_KEYS) cases.push({ ...base, Records: [{ Data: 'x', PartitionKey: 'k', ExplicitHashKey: value }] });
    for (const value of DATA) cases.push({ ...base, Records: [{ Data: value, PartitionKey: 'k' }] });
    for (const value of [undefined, null, {}, [], [null], ['x'], [[]]]) cases.push({ ...base, Records: value });
    for (const length of [499, 500, 501, 1000]) {
      cases.push({ ...base, Records: Array.from({ length }, (_, i) => (i === 7 ? { Data: 5 } : { Data: 'x', PartitionKey: 'k' })) });
      cases.push({ ...base, Records: Array.from({ length }, () => ({ Data: 'x', PartitionKey: 'k' })) });
    }
    cases.push({ ...base, Extra: 1, Records: [{ Data: 'x', Extra: 2 }] }, { Records: [{ Data: 5 }] }, { StreamName: '', Foo: 1 });
    // Unknown members alone (at the root or in an entry) still let the stream-identity rule run.
    cases.push({ Foo: 1, Records: [{ Data: 'x' }] }, { Records: [{ Data: 'x', Extra: 2 }] }, { Foo: 1, Records: [{ Data: 'x', Extra: 2 }] });

    let compared = 0;
    for (const limits of LIMITS) {
      for (const input of cases) {
        expect(outcome(() => validatePutRecordsInput(input, limits)), JSON.stringify(input)?.slice(0, 200)).toEqual(
          outcome(() => viaZod('PutRecords', input, limits)),
        );
        compared++;
      }
    }
    expect(compared).toBe(cases.length * LIMITS.length);
  });

  it('on 3,000 seeded random PutRecords inputs, valid and not', () => {
    const random = seededRandom(20261201);
    let valid = 0;
    for (let i = 0; i < 3_000; i++) {
      const input = randomPutRecords(random);
      const limits = pick(random, LIMITS);
      const plain = outcome(() => validatePutRecordsInput(input, limits));
      expect(plain, `case ${i}`).toEqual(outcome(() => viaZod('PutRecords', input, limits)));
      if (plain.ok) valid++;
    }
    // Both sides of the rules are exercised.
    expect(valid).toBeGreaterThan(300);
    expect(valid).toBeLessThan(2_700);
  });

  it('on 3,000 seeded random PutRecord inputs, valid and not', () => {
    const random = seededRandom(7);
    let valid = 0;
    for (let i = 0; i < 3_000; i++) {
      const input = randomPutRecord(random);
      const limits = pick(random, LIMITS);
      const plain = outcome(() => validatePutRecordInput(input, limits));
      expect(plain, `case ${i}`).toEqual(outcome(() => viaZod('PutRecord', input, limits)));
      if (plain.ok) valid++;
    }
    expect(valid).toBeGreaterThan(300);
    expect(valid).toBeLessThan(2_700);
  });

  it('PutRecord: every member at its boundaries', () => {
    const base = { StreamName: 'clicks', PartitionKey: 'k', Data: 'x' };
    const cases: unknown[] = [{}, base, { ...base, Extra: true }];
    for (const value of SEQUENCE_NUMBERS) cases.push({ ...base, SequenceNumberForOrdering: value });
    for (const value of PARTITION_KEYS) cases.push({ ...base, PartitionKey: value });
    for (const value of HASH_KEYS) cases.push({ ...base, ExplicitHashKey: value });
    for (const value of DATA) cases.push({ ...base, Data: value });
    for (const value of STREAM_ARNS) cases.push({ ...base, StreamName: undefined, StreamARN: value });
    for (const limits of LIMITS) {
      for (const input of cases) {
        expect(outcome(() => validatePutRecordInput(input, limits))).toEqual(outcome(() => viaZod('PutRecord', input, limits)));
      }
    }
  });

  it('checks a producer record and a producer stream with the same rules', () => {
    for (const key of PARTITION_KEYS) {
      for (const hashKey of HASH_KEYS) {
        const entry: Record<string, unknown> = { Data: new Uint8Array(0), PartitionKey: key, ExplicitHashKey: hashKey };
        const issues: ValidationIssue[] = [];
        checkPutRecordsEntry(entry, '', issues);
        const viaSchema = outcome(() => parseWith(shapes.PutRecordsRequestEntryInputSchema(), entry, 'PutRecords', 'input'));
        expect(issues.length ? { ok: false, issues } : { ok: true }).toEqual(viaSchema.ok ? { ok: true } : viaSchema);
      }
    }
    for (const name of STREAM_NAMES) {
      for (const arn of STREAM_ARNS.slice(0, 6)) {
        const stream: Record<string, unknown> = { StreamName: name, StreamARN: arn };
        const viaSchema = outcome(() => parseWith(shapes.PutRecordsInputSchema(), { ...stream, Records: [{ Data: 'x' }] }, 'PutRecords', 'input'));
        const issues = streamIdentityIssues(stream);
        expect(issues.length ? { ok: false, issues } : { ok: true }).toEqual(viaSchema.ok ? { ok: true } : viaSchema);
      }
    }
  });
});

describe('plain PutRecords/PutRecord response checks agree with the zod schemas', () => {
  const outputs = (parse: (json: unknown) => unknown, json: unknown) => {
    try {
      return { ok: true, value: parse(structuredClone(json)) };
    } catch (error) {
      if (!(error instanceof KinesisValidationError)) throw error;
      return { ok: false, issues: error.issues };
    }
  };

  it('PutRecords: valid, partly failed, malformed, and with members the model does not know', () => {
    const cases: unknown[] = [
      { FailedRecordCount: 0, Records: [{ SequenceNumber: '1', ShardId: 'shardId-000000000000' }] },
      { FailedRecordCount: 1, EncryptionType: 'KMS', Records: [{ ErrorCode: 'ProvisionedThroughputExceededException', ErrorMessage: 'slow down' }, {}] },
      { Records: [] },
      { Records: [{ SequenceNumber: '1', ShardId: 's', NewField: { a: 1 } }], Added: true },
      {},
      [],
      'x',
      { Records: {} },
      { Records: [null, 3, { SequenceNumber: 1 }, { ErrorCode: false, ShardId: [] }] },
      { FailedRecordCount: '0', Records: [] },
      { EncryptionType: 3, Records: [] },
      // The service may send null for an absent member, at any depth.
      { FailedRecordCount: null, EncryptionType: null, Records: [{ SequenceNumber: '1', ShardId: 's', ErrorCode: null, Extra: { a: null, b: [null, { c: null }] } }] },
      { Records: null },
      { Records: [null, { ErrorCode: null }] },
      { Extra: { nested: null }, Records: [] },
    ];
    for (const json of cases) {
      expect(outputs(parsePutRecordsOutput, json), JSON.stringify(json)).toEqual(
        outputs((value) => (deleteNulls(value), parseWith(shapes.PutRecordsOutputSchema(), value, 'PutRecords', 'output')), json),
      );
    }
  });

  it('PutRecord: required members, optional ones, and extras', () => {
    const cases: unknown[] = [
      { SequenceNumber: '1', ShardId: 'shardId-000000000000' },
      { SequenceNumber: '1', ShardId: 's', EncryptionType: 'NONE', Extra: [1] },
      { SequenceNumber: '1' },
      {},
      { SequenceNumber: 1, ShardId: null },
      { SequenceNumber: '1', ShardId: 's', EncryptionType: {} },
      { SequenceNumber: '1', ShardId: 's', EncryptionType: null, Extra: { a: null } },
      { SequenceNumber: null, ShardId: 's' },
      null,
    ];
    for (const json of cases) {
      expect(outputs(parsePutRecordOutput, json), JSON.stringify(json)).toEqual(
        outputs((value) => (deleteNulls(value), parseWith(shapes.PutRecordOutputSchema(), value, 'PutRecord', 'output')), json),
      );
    }
  });
});

// The plain GetRecords response parser (src/get-records-validation.ts) against the generated zod
// schema (src/shapes.ts GetRecordsOutputSchema): the same responses must give the same output
// (bytes, dates, unknown members kept, nulls dropped) or the same issues in the same order.
import { describe, expect, it } from 'vitest';
import { deleteNulls } from '../../src/client.ts';
import { KinesisValidationError, type ValidationIssue } from '../../src/errors.ts';
import { parseGetRecordsOutput, parseSubscribeToShardEvent } from '../../src/get-records-validation.ts';
import { parseWith } from '../../src/schema-validation.ts';
import * as shapes from '../../src/shape-schemas.ts';
import { seededRandom } from '../support/seeded-random.ts';

type Outcome = { ok: true; value: unknown } | { ok: false; issues: readonly ValidationIssue[] };

function outcome(parse: (json: unknown) => unknown, json: unknown): Outcome {
  try {
    return { ok: true, value: parse(structuredClone(json)) };
  } catch (error) {
    if (!(error instanceof KinesisValidationError)) throw error;
    return { ok: false, issues: error.issues };
  }
}

const viaZod = (json: unknown) => {
  deleteNulls(json);
  return parseWith(shapes.GetRecordsOutputSchema(), json, 'GetRecords', 'output');
};

const SEQUENCE = '49680721631307556702168416044959309240192869867364286466';
const record = (overrides: Record<string, unknown> = {}) => ({
  SequenceNumber: SEQUENCE,
  ApproximateArrivalTimestamp: 1_764_547_200.123,
  Data: 'aGVsbG8=',
  PartitionKey: 'user-1',
  ...overrides,
});
const child = (overrides: Record<string, unknown> = {}) => ({
  ShardId: 'shardId-000000000002',
  ParentShards: ['shardId-000000000000'],
  HashKeyRange: { StartingHashKey: '0', EndingHashKey: '170141183460469231731687303715884105727' },
  ...overrides,
});

describe('plain GetRecords response parser agrees with the zod schema', () => {
  it('on valid, partly malformed and malformed responses', () => {
    const cases: unknown[] = [
      { Records: [], NextShardIterator: 'AAAA', MillisBehindLatest: 0 },
      { Records: [record(), record({ EncryptionType: 'KMS', Extra: { a: 1, b: null } })], NextShardIterator: 'AAAA', MillisBehindLatest: 1200 },
      { Records: [record({ ApproximateArrivalTimestamp: '2026-12-01T00:00:00.000Z' }), record({ ApproximateArrivalTimestamp: undefined })] },
      { Records: [record({ Data: '' }), record({ Data: 'AAECAwQF/w==' })], ChildShards: [child(), child({ ParentShards: ['a', 'b'] })] },
      { Records: [record({ PartitionKey: null, EncryptionType: null, ApproximateArrivalTimestamp: null })], NextShardIterator: null, ChildShards: null },
      {},
      [],
      null,
      'text',
      { Records: 'no' },
      { Records: [null, 3, [], record({ SequenceNumber: 5 }), record({ SequenceNumber: undefined }), record({ Data: undefined }), record({ Data: 42 })] },
      { Records: [record({ ApproximateArrivalTimestamp: true }), record({ PartitionKey: 1, EncryptionType: [] })], MillisBehindLatest: '0', NextShardIterator: 7 },
      { Records: [], ChildShards: 'x' },
      { Records: [], ChildShards: [null, child({ HashKeyRange: 'x' }), child({ HashKeyRange: { StartingHashKey: 1 } }), child({ ParentShards: 'x' }), child({ ParentShards: [1, null] }), child({ ShardId: undefined })] },
      // Data that is not base64 stops the parse with that one issue, as zod's throwing transform does.
      { Records: [record({ SequenceNumber: 5 }), record({ Data: 'not base64!' }), record({ PartitionKey: 3 })], ChildShards: [child({ ShardId: 9 })] },
      { Records: [record({ Data: 'QQ' }), record({ Data: ' QUJD ' })], Unknown: { deep: [null, { x: null }] } },
    ];
    for (const json of cases) expect(outcome(parseGetRecordsOutput, json), JSON.stringify(json)).toEqual(outcome(viaZod, json));
  });

  it('on 2,000 seeded random responses', () => {
    const random = seededRandom(20261201);
    const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
    const badValues = [undefined, null, 1, 'x', true, [], {}];
    let valid = 0;
    for (let i = 0; i < 2_000; i++) {
      const records = Array.from({ length: Math.floor(random() * 6) }, () => {
        if (random() < 0.9) return record();
        const member = pick(['SequenceNumber', 'ApproximateArrivalTimestamp', 'Data', 'PartitionKey', 'EncryptionType', 'Extra']);
        return record({ [member]: pick(badValues) });
      });
      const json: Record<string, unknown> = { Records: records };
      if (random() < 0.5) json.NextShardIterator = random() < 0.9 ? 'AAAA' : pick(badValues);
      if (random() < 0.5) json.MillisBehindLatest = random() < 0.9 ? 0 : pick(badValues);
      if (random() < 0.2) json.ChildShards = random() < 0.8 ? [child()] : [child({ [pick(['ShardId', 'ParentShards', 'HashKeyRange'])]: pick(badValues) })];
      const plain = outcome(parseGetRecordsOutput, json);
      expect(plain, `case ${i}: ${JSON.stringify(json)}`).toEqual(outcome(viaZod, json));
      if (plain.ok) valid++;
    }
    expect(valid).toBeGreaterThan(200);
    expect(valid).toBeLessThan(1_800);
  });

  it('returns bytes and dates: Data as Uint8Array, ApproximateArrivalTimestamp as Date', () => {
    const out = parseGetRecordsOutput({ Records: [record()] });
    expect(out.Records[0]!.Data).toEqual(new TextEncoder().encode('hello'));
    expect(out.Records[0]!.ApproximateArrivalTimestamp).toEqual(new Date(1_764_547_200_123));
  });
});

describe('plain SubscribeToShard event parser agrees with the zod event schema', () => {
  const loadZodEventParser = async () => {
    const { SubscribeToShardEventOutputSchema } = await import('../../src/event-stream/schemas.ts');
    return (value: unknown) => {
      deleteNulls(value);
      return parseWith(SubscribeToShardEventOutputSchema(), value, 'SubscribeToShard', 'output');
    };
  };

  it('on events with records, continuation, lag and child shards, valid and not', async () => {
    const zodEvent = await loadZodEventParser();
    const cases: unknown[] = [
      { Records: [record(), record({ Extra: 1 })], ContinuationSequenceNumber: SEQUENCE, MillisBehindLatest: 0 },
      { Records: [], MillisBehindLatest: 12, ChildShards: [child()] },
      { Records: [], ContinuationSequenceNumber: null, MillisBehindLatest: 0, ChildShards: [child(), child({ ParentShards: ['a', 'b'] })] },
      { Records: [] },
      { MillisBehindLatest: 0 },
      { Records: [record({ Data: 5 })], ContinuationSequenceNumber: 3, MillisBehindLatest: '0', ChildShards: [child({ ShardId: null })] },
      { Records: [record({ SequenceNumber: 1 }), record({ Data: 'not base64!' })], MillisBehindLatest: 'x' },
      null,
      [],
    ];
    for (const json of cases) expect(outcome(parseSubscribeToShardEvent, json), JSON.stringify(json)).toEqual(outcome(zodEvent, json));
  });
});

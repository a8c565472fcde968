// The consumer's record shape and KPL deaggregation. Vectors: test/fixtures/kpl/ (see its
// README: awslabs/kinesis-aggregation vectors plus our negative vectors).
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { deaggregateRecord, plainRecord, recordJson, recordText, type ConsumerRecord } from '../../src/consumer/record.ts';
import { encodeAggregatedRecord } from '../../src/internal/kpl.ts';
import type { KinesisRecord } from '../../src/shapes.ts';

interface Vector {
  name: string;
  data_base64: string;
  outer_record?: { partitionKey: string; sequenceNumber: string; approximateArrivalTimestamp: number };
  expected: {
    is_aggregated: boolean;
    user_records: { partition_key?: string; explicit_hash_key?: string | null; data_base64: string }[];
  };
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/kpl/kpl-aggregated-records.json', import.meta.url), 'utf8')) as {
  vectors: Vector[];
  negative_vectors: Vector[];
};

const SHARD = 'shardId-000000000007';
const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'));
const toBase64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

function kinesisRecord(vector: Vector): KinesisRecord {
  const outer = vector.outer_record ?? { partitionKey: 'outer-key', sequenceNumber: '49590338271490256608559692538361571095921575989136588898', approximateArrivalTimestamp: 1_700_000_000 };
  return {
    SequenceNumber: outer.sequenceNumber,
    PartitionKey: outer.partitionKey,
    ApproximateArrivalTimestamp: new Date(outer.approximateArrivalTimestamp * 1000),
    Data: fromBase64(vector.data_base64),
  };
}

describe('deaggregateRecord', () => {
  it.each(fixture.vectors.filter((v) => v.expected.is_aggregated).map((v) => [v.name, v] as const))(
    'splits %s into exactly the listed user records',
    (_name, vector) => {
      const outer = kinesisRecord(vector);
      const records = deaggregateRecord(outer, SHARD);

      expect(records.map((r) => ({ pk: r.partitionKey, ehk: r.explicitHashKey ?? null, data: toBase64(r.data) }))).toEqual(
        vector.expected.user_records.map((u) => ({ pk: u.partition_key, ehk: u.explicit_hash_key ?? null, data: u.data_base64 })),
      );
      records.forEach((record, index) => {
        expect(record).toMatchObject({
          shardId: SHARD,
          sequenceNumber: outer.SequenceNumber,
          subSequenceNumber: index,
          arrivalTime: outer.ApproximateArrivalTimestamp,
        });
      });
      if (vector.expected.user_records.every((u) => u.explicit_hash_key == null)) {
        for (const record of records) expect(record).not.toHaveProperty('explicitHashKey');
      }
    },
  );

  it.each(
    [...fixture.vectors.filter((v) => !v.expected.is_aggregated), ...fixture.negative_vectors].map((v) => [v.name, v] as const),
  )('passes %s through as one plain record equal to the input', (_name, vector) => {
    const outer = kinesisRecord(vector);
    const records = deaggregateRecord(outer, SHARD);

    expect(records).toHaveLength(1);
    expect(records[0]).toEqual({
      shardId: SHARD,
      sequenceNumber: outer.SequenceNumber,
      partitionKey: outer.PartitionKey,
      arrivalTime: outer.ApproximateArrivalTimestamp,
      data: outer.Data,
    });
    expect(toBase64(records[0]!.data)).toBe(vector.expected.user_records[0]!.data_base64);
  });

  it('round-trips records aggregated by our own encoder, with non-ASCII keys', () => {
    const users = [
      { partitionKey: 'user-😀', data: new TextEncoder().encode('{"n":1}') },
      { partitionKey: 'user-2', explicitHashKey: '340282366920938463463374607431768211455', data: new Uint8Array([0, 255]) },
    ];
    const outer: KinesisRecord = { SequenceNumber: '1', PartitionKey: 'agg', ApproximateArrivalTimestamp: new Date(5), Data: encodeAggregatedRecord(users) };

    expect(deaggregateRecord(outer, SHARD).map((r) => [r.partitionKey, r.explicitHashKey, [...r.data], r.subSequenceNumber])).toEqual([
      ['user-😀', undefined, [...users[0]!.data], 0],
      ['user-2', users[1]!.explicitHashKey, [0, 255], 1],
    ]);
  });
});

describe('plainRecord', () => {
  it('keeps an aggregated record whole and fills a missing partition key and arrival time', () => {
    const data = fromBase64(fixture.vectors[0]!.data_base64);
    expect(plainRecord({ SequenceNumber: '9', Data: data }, SHARD)).toEqual({
      shardId: SHARD,
      sequenceNumber: '9',
      partitionKey: '',
      arrivalTime: new Date(0),
      data,
    });
  });
});

describe('recordText / recordJson', () => {
  const record = (text: string, subSequenceNumber?: number): ConsumerRecord => ({
    shardId: SHARD,
    sequenceNumber: '42',
    ...(subSequenceNumber === undefined ? {} : { subSequenceNumber }),
    partitionKey: 'k',
    arrivalTime: new Date(0),
    data: new TextEncoder().encode(text),
  });

  it('decodes UTF-8, replacing invalid bytes', () => {
    expect(recordText(record('héllo 😀'))).toBe('héllo 😀');
    expect(recordText({ data: new Uint8Array([0x61, 0xff]) })).toBe('a\uFFFD');
  });

  it('parses JSON', () => {
    expect(recordJson<{ a: number[] }>(record('{"a":[1,2]}'))).toEqual({ a: [1, 2] });
  });

  it('names the record when the data is not JSON', () => {
    expect(() => recordJson(record('not json', 3))).toThrow(/recordJson: record shardId-000000000007 42\/3 is not JSON/);
    expect(() => recordJson(record('{'))).toThrow(SyntaxError);
  });
});

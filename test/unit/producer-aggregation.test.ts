// KPL aggregation in the producer: user records bound for one shard packed into aggregated records
// (magic F3 89 9A C2, protobuf AggregatedRecord, MD5), read back with the reference deaggregator
// aws-kinesis-agg and checked byte for byte against the KPL vectors in test/fixtures/kpl/
// (awslabs/kinesis-aggregation, see its README). Format:
// https://github.com/awslabs/amazon-kinesis-producer/blob/master/aggregation-format.md
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { decodeAggregatedRecord } from '../../src/internal/kpl.ts';
import { createProducer, DEFAULT_AGGREGATION_MAX_BYTES, type PutResult } from '../../src/producer/index.ts';
import { createFakeKinesis, keysOnShard, md5HashKey, settle } from './producer-fake-kinesis.ts';
import { randomInt, seededRandom } from '../support/seeded-random.ts';

interface AggUserRecord {
  partitionKey: string;
  explicitPartitionKey?: string;
  data: string;
}
const agg = createRequire(import.meta.url)('aws-kinesis-agg') as {
  deaggregateSync(
    record: { data: string; partitionKey: string; sequenceNumber: string },
    computeChecksums: boolean,
    callback: (err: Error | null | undefined, records?: AggUserRecord[]) => void,
  ): void;
};

function deaggregate(data: Uint8Array): AggUserRecord[] {
  let out: AggUserRecord[] = [];
  agg.deaggregateSync({ data: Buffer.from(data).toString('base64'), partitionKey: 'outer', sequenceNumber: '1' }, true, (err, records) => {
    if (err) throw err;
    out = records ?? [];
  });
  return out;
}

const isAggregated = (data: Uint8Array): boolean => data[0] === 0xf3 && data[1] === 0x89 && data[2] === 0x9a && data[3] === 0xc2;

interface KplVector {
  name: string;
  data_base64: string;
  expected: {
    is_aggregated: boolean;
    partition_key_table?: string[];
    explicit_hash_key_table?: string[];
    records?: { partition_key_index: number; explicit_hash_key_index: number | null; data_base64: string }[];
  };
}
const vectors = (
  JSON.parse(readFileSync(new URL('../fixtures/kpl/kpl-aggregated-records.json', import.meta.url), 'utf8')) as { vectors: KplVector[] }
).vectors.filter((v) => v.expected.is_aggregated);

describe('producer aggregation', () => {
  it('packs small records of one shard into one aggregated record that aws-kinesis-agg reads back', async () => {
    const kinesis = createFakeKinesis();
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 10, aggregation: true });
    const records = Array.from({ length: 50 }, (_, i) => ({ partitionKey: `user-${i % 5}`, data: `event ${i} é😀` }));
    const results = await Promise.all(records.map((record) => producer.put(record)));

    expect(kinesis.calls).toHaveLength(1);
    expect(kinesis.calls[0]!.entries).toHaveLength(1);
    const [outer] = kinesis.calls[0]!.entries;
    expect(isAggregated(outer!.data)).toBe(true);
    expect(outer!.partitionKey).toBe('user-0');
    const theirs = deaggregate(outer!.data);
    expect(theirs.map((r) => [r.partitionKey, Buffer.from(r.data, 'base64').toString('utf8')])).toEqual(records.map((r) => [r.partitionKey, r.data]));
    results.forEach((result, i) => {
      expect(result).toEqual({ shardId: 'shardId-000000000000', sequenceNumber: kinesis.stored[0]!.sequenceNumber, subSequenceNumber: i, attempts: 1 });
    });
  });

  it('aggregates only records predicted for the same shard', async () => {
    const kinesis = createFakeKinesis({ shards: 4 });
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 20, aggregation: true });
    const results = await Promise.all(Array.from({ length: 400 }, (_, i) => producer.put({ partitionKey: `k${i}`, data: `${i}` })));

    expect(kinesis.stored.length).toBeLessThanOrEqual(8);
    for (const stored of kinesis.stored) {
      const users = isAggregated(stored.data) ? decodeAggregatedRecord(stored.data)! : [{ partitionKey: stored.partitionKey, data: stored.data }];
      const shard = kinesis.shards.find((s) => s.ShardId === stored.shardId)!;
      for (const user of users) {
        const hashKey = md5HashKey(user.partitionKey);
        expect(hashKey >= BigInt(shard.HashKeyRange.StartingHashKey) && hashKey <= BigInt(shard.HashKeyRange.EndingHashKey)).toBe(true);
      }
    }
    expect(new Set(results.map((r) => `${r.sequenceNumber}/${r.subSequenceNumber}`)).size).toBe(400);
  });

  it('without a shard map aggregates only records with the same partition key', async () => {
    const kinesis = createFakeKinesis({ shards: 4 });
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 10, aggregation: true, predictShards: false });
    await Promise.all(Array.from({ length: 60 }, (_, i) => producer.put({ partitionKey: `k${i % 3}`, data: `${i}` })));

    expect(kinesis.stored).toHaveLength(3);
    for (const stored of kinesis.stored) {
      const keys = new Set(decodeAggregatedRecord(stored.data)!.map((user) => user.partitionKey));
      expect([...keys]).toEqual([stored.partitionKey]);
    }
  });

  it('never exceeds aggregation.maxBytes, counting keys in UTF-8 bytes', async () => {
    const kinesis = createFakeKinesis({ shards: 2 });
    const maxBytes = 4_096;
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 10, aggregation: { maxBytes } });
    const random = seededRandom(7);
    const sent = Array.from({ length: 600 }, (_, i) => ({
      partitionKey: `ключ-${randomInt(random, 0, 40)}-😀`,
      data: 'é'.repeat(randomInt(random, 0, 300)) + i,
    }));
    await Promise.all(sent.map((record) => producer.put(record)));

    let users = 0;
    for (const stored of kinesis.stored) {
      expect(stored.data.length).toBeLessThanOrEqual(maxBytes);
      users += isAggregated(stored.data) ? decodeAggregatedRecord(stored.data)!.length : 1;
    }
    expect(users).toBe(600);
    // Packed close to the limit, not one record each.
    expect(kinesis.stored.length).toBeLessThan(60);
  });

  it('sends a lone record and a record too large to aggregate as plain records', async () => {
    const kinesis = createFakeKinesis();
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0, aggregation: { maxBytes: 1_000 } });
    const lone = await producer.put({ partitionKey: 'k', data: 'alone' });
    const big = producer.put({ partitionKey: 'k', data: new Uint8Array(2_000) });
    const small = [producer.put({ partitionKey: 'k', data: 'a' }), producer.put({ partitionKey: 'k', data: 'b' })];
    const [bigResult, ...smallResults] = await Promise.all([big, ...small]);

    expect(lone.subSequenceNumber).toBeUndefined();
    expect(kinesis.stored[0]!.text).toBe('alone');
    expect(bigResult!.subSequenceNumber).toBeUndefined();
    expect(kinesis.stored.find((entry) => entry.data.length === 2_000)).toBeDefined();
    expect(smallResults.map((result) => result.subSequenceNumber)).toEqual([0, 1]);
  });

  it('re-sends every user record of a throttled aggregated record', async () => {
    const kinesis = createFakeKinesis();
    kinesis.script((call) => (call.index === 0 ? ['ProvisionedThroughputExceededException'] : undefined));
    const producer = createProducer(kinesis.client, {
      streamName: 'clicks',
      lingerMs: 5,
      aggregation: true,
      backoff: { throttlingBaseDelayMs: 1 },
    });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => producer.put({ partitionKey: 'k', data: `${i}` })));

    expect(kinesis.calls).toHaveLength(2);
    expect(results.map((result) => [result.subSequenceNumber, result.attempts])).toEqual(Array.from({ length: 10 }, (_, i) => [i, 2]));
    expect(decodeAggregatedRecord(kinesis.stored[0]!.data)!.map((user) => Buffer.from(user.data).toString())).toEqual(
      Array.from({ length: 10 }, (_, i) => `${i}`),
    );
  });

  it("per-key: a hot key's records go out together in one aggregated record, in order", async () => {
    const kinesis = createFakeKinesis({ shards: 2 });
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 5, aggregation: true, ordering: 'per-key' });
    const [hot] = keysOnShard(kinesis.shards, 'shardId-000000000000', 1, 'hot-');
    const puts: Promise<PutResult>[] = [];
    for (let i = 0; i < 200; i++) puts.push(producer.put({ partitionKey: hot!, data: `${i}` }));
    await settle(1);
    for (let i = 200; i < 300; i++) puts.push(producer.put({ partitionKey: hot!, data: `${i}` }));
    const results = await Promise.all(puts);

    const order = results.map((result) => [BigInt(result.sequenceNumber), result.subSequenceNumber ?? 0] as const);
    for (let i = 1; i < order.length; i++) {
      const [seq, sub] = order[i]!;
      const [prevSeq, prevSub] = order[i - 1]!;
      expect(seq > prevSeq || (seq === prevSeq && sub > prevSub)).toBe(true);
    }
    expect(kinesis.stored.length).toBeLessThanOrEqual(3);
  });
});

describe('producer aggregation against the KPL vectors', () => {
  it.each(vectors.map((v) => [v.name, v] as const))('writes the same bytes as the KPL for %s', async (_name, vector) => {
    const kinesis = createFakeKinesis();
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 10, aggregation: { maxBytes: DEFAULT_AGGREGATION_MAX_BYTES } });
    const { partition_key_table: keys = [], explicit_hash_key_table: hashKeys = [], records = [] } = vector.expected;
    await Promise.all(
      records.map((record) =>
        producer.put({
          partitionKey: keys[record.partition_key_index]!,
          ...(record.explicit_hash_key_index === null ? {} : { explicitHashKey: hashKeys[record.explicit_hash_key_index]! }),
          data: new Uint8Array(Buffer.from(record.data_base64, 'base64')),
        }),
      ),
    );

    expect(kinesis.stored).toHaveLength(1);
    expect(Buffer.from(kinesis.stored[0]!.data).toString('base64')).toBe(vector.data_base64);
  });
});

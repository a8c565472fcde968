// Shard prediction (MD5 of the partition key's UTF-8 bytes as an unsigned 128-bit big-endian
// integer, or the explicit hash key, compared as BigInt with ListShards' hash key ranges) against
// test/fixtures/kinesis/partition-keys-and-numbers.json, and the producer's shard map: listed once,
// listed again when a record lands on an unexpected shard, given up when ListShards is refused.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { predictShard, recordHashKey, createProducer } from '../../src/producer/index.ts';
import { partitionKeyHashHigh, partitionKeyToHashKey } from '../../src/internal/hash-key.ts';
import { ShardMap } from '../../src/producer/shard-map.ts';
import { awsError } from '../support/fake-fetch.ts';
import { advanceUntil, createFakeKinesis, evenShards, keysOnShard, md5HashKey, type FakeShard } from './producer-fake-kinesis.ts';

interface KeyVector {
  name: string;
  partition_key: string;
  utf8_bytes: number;
  hash_key_decimal: string;
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/kinesis/partition-keys-and-numbers.json', import.meta.url), 'utf8')) as {
  partition_keys: KeyVector[];
  explicit_hash_keys: { value: string; valid: boolean }[];
};

/** The shard index among `count` even shards, computed independently: floor(hash * count / 2^128). */
function expectedIndex(hashKey: bigint, count: number): number {
  // evenShards gives shard i the range [floor(2^128 i / n), floor(2^128 (i+1) / n) - 1].
  for (let i = 0; i < count; i++) {
    if (hashKey < ((2n ** 128n) * BigInt(i + 1)) / BigInt(count)) return i;
  }
  return count - 1;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('recordHashKey and predictShard', () => {
  it.each(fixture.partition_keys.map((v) => [v.name, v] as const))('maps the %s key to its vector hash key and shard', (_name, vector) => {
    const hashKey = recordHashKey({ partitionKey: vector.partition_key });
    expect(String(hashKey)).toBe(vector.hash_key_decimal);
    expect(hashKey).toBe(md5HashKey(vector.partition_key));
    for (const count of [1, 2, 3, 7, 64]) {
      const shards = evenShards(count);
      expect(predictShard(shards, vector.partition_key)?.ShardId).toBe(shards[expectedIndex(hashKey, count)]!.ShardId);
    }
  });

  it('uses the explicit hash key over the partition key', () => {
    const shards = evenShards(4);
    expect(predictShard(shards, { partitionKey: 'a', explicitHashKey: '0' })?.ShardId).toBe('shardId-000000000000');
    expect(predictShard(shards, { explicitHashKey: String(2n ** 128n - 1n) })?.ShardId).toBe('shardId-000000000003');
    expect(predictShard(shards, { explicitHashKey: String(2n ** 126n) })?.ShardId).toBe('shardId-000000000001');
    expect(predictShard(shards, { explicitHashKey: String(2n ** 126n - 1n) })?.ShardId).toBe('shardId-000000000000');
  });

  it('prefers an open child over its closed parent, and finds nothing outside every range', () => {
    const parent: FakeShard = { ...evenShards(1)[0]!, SequenceNumberRange: { StartingSequenceNumber: '1', EndingSequenceNumber: '9' } };
    const children = evenShards(2, 1);
    expect(predictShard([parent, ...children], 'a')?.ShardId).toBe(children[expectedIndex(md5HashKey('a'), 2)]!.ShardId);
    expect(predictShard([evenShards(2)[0]!], { explicitHashKey: String(2n ** 128n - 1n) })).toBeUndefined();
  });

  it('needs a partition key or an explicit hash key', () => {
    expect(() => recordHashKey({})).toThrow(TypeError);
  });
});

describe('ShardMap.shardForHigh', () => {
  async function loadedMap(shards: number): Promise<ShardMap> {
    const kinesis = createFakeKinesis({ shards });
    let loaded!: () => void;
    const ready = new Promise<void>((resolve) => (loaded = resolve));
    const map = new ShardMap({ client: kinesis.client, stream: { StreamName: 'clicks' }, now: () => Date.now(), onLoaded: () => loaded(), onError: () => {} });
    map.refresh();
    await ready;
    return map;
  }

  it('agrees with the whole hash key, and leaves a range boundary the low bits decide to it', async () => {
    for (const count of [1, 3, 4, 7]) {
      const map = await loadedMap(count);
      for (let i = 0; i < 2_000; i++) {
        const key = `user-${i}`;
        const hashKey = partitionKeyToHashKey(key);
        expect(partitionKeyHashHigh(key)).toBe(Number(hashKey >> 96n));
        const byHigh = map.shardForHigh(partitionKeyHashHigh(key));
        if (byHigh !== undefined) expect(byHigh).toBe(map.shardFor(hashKey));
      }
      const shards = evenShards(count);
      for (const shard of shards.slice(1)) {
        // The top bits of a start: decided by them only when the start's low 96 bits are zero (4 shards).
        const start = BigInt(shard.HashKeyRange.StartingHashKey);
        const high = Number(start >> 96n);
        const decided = (start & ((1n << 96n) - 1n)) === 0n;
        expect(map.shardForHigh(high)).toBe(decided ? shard.ShardId : undefined);
      }
      expect(map.shardForHigh(0)).toBe(shards[0]!.ShardId);
      expect(map.shardForHigh(0xffffffff)).toBe(shards[count - 1]!.ShardId);
    }
  });
});

describe('producer shard map', () => {
  it('lists the shards once and sends each record to its predicted shard', async () => {
    const kinesis = createFakeKinesis({ shards: 4 });
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 5 });
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => producer.put({ partitionKey: `user-${i}`, data: `${i}` })));

    expect(kinesis.listShardsCalls).toBe(1);
    expect(producer.stats().shards).toBe(4);
    results.forEach((result, i) => {
      expect(result.shardId).toBe(predictShard(kinesis.shards, `user-${i}`)!.ShardId);
    });
    expect(kinesis.fetch.requests.find((r) => r.operation === 'ListShards')!.json).toEqual({ StreamName: 'clicks' });
  });

  it('lists the shards again after a record lands on a shard it did not predict (a reshard)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const kinesis = createFakeKinesis({ shards: 2 });
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0 });
    const first = producer.put({ partitionKey: 'a', data: '1' });
    await advanceUntil(kinesis, producer, () => producer.stats().stored === 1, 5);
    await first;
    expect(kinesis.listShardsCalls).toBe(1);

    // Reshard: the parents close, four children take over with new ids.
    for (const shard of kinesis.shards) shard.SequenceNumberRange.EndingSequenceNumber = '99';
    kinesis.shards.push(...evenShards(4, 2));
    await vi.advanceTimersByTimeAsync(1_000);
    const keys = keysOnShard(kinesis.shards.slice(2), 'shardId-000000000005', 3, 'moved-');
    const moved = Promise.all(keys.map((key) => producer.put({ partitionKey: key, data: key })));
    await advanceUntil(kinesis, producer, () => producer.stats().stored === 4 && producer.stats().shards === 4, 5);
    const results = await moved;

    expect(results.every((result) => result.shardId === 'shardId-000000000005')).toBe(true);
    expect(kinesis.listShardsCalls).toBe(2);
    expect(producer.stats().shards).toBe(4);
  });

  it('moves records that fail after a reshard to their new shards, in put order', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const kinesis = createFakeKinesis({ shards: 2 });
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0 });
    const first = producer.put({ partitionKey: 'a', data: '1' });
    await advanceUntil(kinesis, producer, () => producer.stats().stored === 1, 5);
    await first;

    // A request for shard 1 is held while the stream reshards.
    const held = keysOnShard(kinesis.shards, 'shardId-000000000001', 6, 'held-');
    let release: ((codes: string[]) => void) | undefined;
    kinesis.script((call) =>
      release === undefined && call.entries[0]!.partitionKey.startsWith('held-') ? new Promise<string[]>((resolve) => (release = resolve)) : undefined,
    );
    const heldPuts = Promise.all(held.map((key) => producer.put({ partitionKey: key, data: key })));
    await advanceUntil(kinesis, producer, () => producer.stats().inFlightRecords === held.length, 5);
    for (const shard of kinesis.shards) shard.SequenceNumberRange.EndingSequenceNumber = '99';
    kinesis.shards.push(...evenShards(4, 2));
    await vi.advanceTimersByTimeAsync(1_000); // past the shard map's minimum refresh interval
    const [movedKey] = keysOnShard(kinesis.shards.slice(2), 'shardId-000000000005', 1, 'moved-');
    const moved = producer.put({ partitionKey: movedKey!, data: 'm' });
    await advanceUntil(kinesis, producer, () => producer.stats().shards === 4, 5);
    await moved;

    // The held records fail and go again, each to its shard among the children.
    release!(held.map(() => 'ProvisionedThroughputExceededException'));
    await advanceUntil(kinesis, producer, () => producer.stats().stored === 2 + held.length, 5);
    const results = await heldPuts;
    const children = kinesis.shards.slice(2);
    expect(results.map((result) => result.shardId)).toEqual(held.map((key) => predictShard(children, key)!.ShardId));
    expect(new Set(results.map((result) => result.shardId)).size).toBeGreaterThan(1);
    expect(results.every((result) => result.attempts === 2)).toBe(true);
    expect(producer.stats()).toMatchObject({ retried: held.length, bufferedRecords: 0, failed: 0 });
    // Per shard, the records went out in put order.
    const resent = kinesis.stored.filter((entry) => entry.partitionKey.startsWith('held-')).map((entry) => entry.partitionKey);
    for (const child of children) {
      const mine = held.filter((key) => predictShard(children, key)!.ShardId === child.ShardId);
      expect(resent.filter((key) => mine.includes(key))).toEqual(mine);
    }
  });

  it('gives up listing when ListShards is refused, limits per stream, and still delivers', async () => {
    const kinesis = createFakeKinesis({
      shards: 2,
      onListShards: () => awsError(400, 'AccessDeniedException', 'not authorized to perform: kinesis:ListShards'),
    });
    const errors: [string, boolean][] = [];
    const producer = createProducer(kinesis.client, {
      streamName: 'clicks',
      lingerMs: 0,
      onShardMapError: (error, disabled) => errors.push([(error as { code: string }).code, disabled]),
    });
    await Promise.all(Array.from({ length: 10 }, (_, i) => producer.put({ partitionKey: `k${i}`, data: `${i}` })));
    await producer.put({ partitionKey: 'later', data: 'x' });

    expect(kinesis.stored).toHaveLength(11);
    expect(kinesis.listShardsCalls).toBe(1);
    expect(errors).toEqual([['AccessDeniedException', true]]);
    expect(producer.stats().shards).toBeUndefined();
  });

  it('never lists shards with predictShards: false', async () => {
    const kinesis = createFakeKinesis({ shards: 2 });
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0, predictShards: false });
    await producer.put({ partitionKey: 'k', data: 'x' });
    expect(kinesis.listShardsCalls).toBe(0);
  });
});

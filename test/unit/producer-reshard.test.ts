// The producer after a split it has not listed yet: its shard map still shows the parent, whose
// bucket holds records of both children. Kinesis writes each (aggregated) record to the child that
// holds its own hash key (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_SplitShard.html),
// and the KCL drops the user records of an aggregated record whose hash keys lie outside the shard it
// landed on (https://github.com/awslabs/amazon-kinesis-client/issues/343). The smallest cases of
// what producer-invariants.test.ts's resharding cases found.
import { describe, expect, it } from 'vitest';
import { createProducer, type ProducerRetryEvent } from '../../src/producer/index.ts';
import { decodeAggregatedRecord } from '../../src/internal/kpl.ts';
import { createFakeKinesis, evenShards, keysOnShard, type FakeShard } from './producer-fake-kinesis.ts';

/** Splits the fake's only shard in halves, as SplitShard does: the parent is closed, two children open. */
function splitInHalves(shards: FakeShard[]): FakeShard[] {
  const parent = shards[0]!;
  parent.SequenceNumberRange.EndingSequenceNumber = '49000000000000000000999';
  const children: FakeShard[] = [
    {
      ShardId: 'shardId-000000000001',
      HashKeyRange: { StartingHashKey: '0', EndingHashKey: String(2n ** 127n - 1n) },
      SequenceNumberRange: { StartingSequenceNumber: '49000000000000000001000' },
    },
    {
      ShardId: 'shardId-000000000002',
      HashKeyRange: { StartingHashKey: String(2n ** 127n), EndingHashKey: String(2n ** 128n - 1n) },
      SequenceNumberRange: { StartingSequenceNumber: '49000000000000000001000' },
    },
  ];
  shards.push(...children);
  return children;
}

describe('producer when the stream is resharded', () => {
  it('sends again the user records of an aggregated record that landed on a child not holding their hash key', async () => {
    const shards = evenShards(1);
    const kinesis = createFakeKinesis({ shards });
    const retries: ProducerRetryEvent[] = [];
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 20, aggregation: true, onRetry: (event) => retries.push(event) });
    // The shard map is listed: one shard.
    await producer.put({ partitionKey: 'warm-up', data: 'w' });
    expect(producer.stats().shards).toBe(1);

    const children = splitInHalves(shards);
    const [low] = keysOnShard(children, 'shardId-000000000001', 1, 'low-');
    const [high] = keysOnShard(children, 'shardId-000000000002', 1, 'high-');
    const [a, b] = await Promise.all([producer.put({ partitionKey: low!, data: 'a' }), producer.put({ partitionKey: high!, data: 'b' })]);

    // Both went in one aggregated record (the map still showed one shard), stored on the child of
    // the first one's key; the second one is not there as far as the KCL is concerned.
    const first = kinesis.calls[1]!;
    expect(first.entries).toHaveLength(1);
    expect(first.entries[0]!.shardId).toBe('shardId-000000000001');
    expect(decodeAggregatedRecord(first.entries[0]!.data)?.map((user) => user.partitionKey)).toEqual([low, high]);
    expect(a).toMatchObject({ shardId: 'shardId-000000000001', attempts: 1 });
    // It went again, alone, and is reported where it was stored the second time.
    expect(b).toMatchObject({ shardId: 'shardId-000000000002', attempts: 2 });
    expect(kinesis.calls[2]!.entries.map((entry) => [entry.partitionKey, entry.shardId])).toEqual([[high, 'shardId-000000000002']]);
    expect(retries).toEqual([expect.objectContaining({ reason: 'partial-failure', records: 1, codes: { WrongShard: 1 } })]);
    await producer.close();
  });

  it('packs the records of a shard known to be closed only with records of the same key', async () => {
    const shards = evenShards(1);
    const kinesis = createFakeKinesis({ shards });
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 20, aggregation: true });
    await producer.put({ partitionKey: 'warm-up', data: 'w' });
    const children = splitInHalves(shards);
    const [low, low2] = keysOnShard(children, 'shardId-000000000001', 2, 'low-');
    const [high] = keysOnShard(children, 'shardId-000000000002', 1, 'high-');
    // A plain record lands on a child: the parent's bucket is known to be stale (and a listing is
    // not due yet: the last one was less than a second ago).
    await producer.put({ partitionKey: low2!, data: 'first' });
    const listings = kinesis.listShardsCalls;

    const results = await Promise.all([
      producer.put({ partitionKey: low!, data: 'a1' }),
      producer.put({ partitionKey: high!, data: 'b' }),
      producer.put({ partitionKey: low!, data: 'a2' }),
    ]);
    // One request; one Kinesis record per key, each on its own child; nothing sent twice.
    const call = kinesis.calls.at(-1)!;
    expect(call.entries.map((entry) => [entry.partitionKey, entry.shardId])).toEqual([
      [low, 'shardId-000000000001'],
      [high, 'shardId-000000000002'],
    ]);
    expect(decodeAggregatedRecord(call.entries[0]!.data)?.map((user) => user.partitionKey)).toEqual([low, low]);
    expect(results.map((result) => [result.shardId, result.attempts])).toEqual([
      ['shardId-000000000001', 1],
      ['shardId-000000000002', 1],
      ['shardId-000000000001', 1],
    ]);
    expect(kinesis.listShardsCalls).toBe(listings);
    await producer.close();
  });
});

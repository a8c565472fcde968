// readStreamEnhanced over the consumer's in-memory Kinesis (consumer-fake-kinesis.ts), with
// SubscribeToShard added on top: each subscription streams the shard's records from its starting
// position in events of two, then, for a closed shard, the last event AWS sends (no continuation,
// `ChildShards`), and for an open one an empty event and silence. kinesis-local never reports
// child shards over SubscribeToShard, so lineage over EFO is tested here.
import { describe, expect, it } from 'vitest';
import { checkpointRecord, createMemoryCheckpointStore, SHARD_END } from '../../src/consumer/checkpoints.ts';
import { recordText, type ConsumerRecord } from '../../src/consumer/record.ts';
import { createKinesisClient } from '../../src/client.ts';
import { readStreamEnhanced, type ReadStreamEnhancedOptions } from '../../src/event-stream/read-stream-enhanced.ts';
import { childShard, eventMessage, eventStreamResponse } from '../support/event-stream-fake.ts';
import { createFakeKinesis, type FakeKinesis, type FakeShard } from './consumer-fake-kinesis.ts';
import { bodyText } from '../support/fake-fetch.ts';

const CONSUMER_ARN = 'arn:aws:kinesis:us-east-1:123456789012:stream/test/consumer/efo:1700000000';
const shardIdOf = (n: number) => `shardId-${String(n).padStart(12, '0')}`;

interface Subscription {
  shardId: string;
  position: { Type: string; SequenceNumber?: string };
}

function withSubscribe(fake: FakeKinesis): { fetch: typeof fetch; subscriptions: Subscription[] } {
  const subscriptions: Subscription[] = [];
  const wire = (shard: FakeShard, index: number) => {
    const r = shard.records[index]!;
    let binary = '';
    for (const byte of r.data) binary += String.fromCharCode(byte);
    return { SequenceNumber: r.sequenceNumber, PartitionKey: r.partitionKey, Data: btoa(binary), ApproximateArrivalTimestamp: r.arrival / 1000 };
  };
  const fetchWithSubscribe = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const target = new Headers(init?.headers).get('x-amz-target') ?? '';
    if (!target.endsWith('.SubscribeToShard')) return fake.fetch(input, init);
    const body = JSON.parse(bodyText(init!.body));
    subscriptions.push({ shardId: body.ShardId, position: body.StartingPosition });
    const shard = fake.shards.get(body.ShardId)!;
    const at = shard.records.findIndex((r) => r.sequenceNumber === body.StartingPosition.SequenceNumber);
    const start = { TRIM_HORIZON: 0, LATEST: shard.records.length, AT_SEQUENCE_NUMBER: at, AFTER_SEQUENCE_NUMBER: at + 1 }[body.StartingPosition.Type as string] ?? 0;
    const messages: Uint8Array[] = [];
    for (let i = start; i < shard.records.length; i += 2) {
      const batch = [i, i + 1].filter((j) => j < shard.records.length);
      messages.push(eventMessage(batch.map((j) => wire(shard, j)), shard.records[batch.at(-1)!]!.sequenceNumber));
    }
    if (shard.closed) {
      const children = shard.children.map((id) => childShard(id, fake.shards.get(id)!.parents));
      messages.push(eventMessage([], null, { childShards: children }));
      return eventStreamResponse(messages).response;
    }
    const last = shard.records.at(-1)?.sequenceNumber ?? '0';
    messages.push(eventMessage([], last));
    return eventStreamResponse(messages, { then: 'hang' }).response;
  }) as typeof fetch;
  return { fetch: fetchWithSubscribe, subscriptions };
}

function options(extra: Partial<ReadStreamEnhancedOptions> = {}): ReadStreamEnhancedOptions {
  return { streamName: 'test', consumerARN: CONSUMER_ARN, from: { type: 'TRIM_HORIZON' }, shardRefreshIntervalMs: 0, throttleDelayMs: 1, maxThrottleDelayMs: 2, random: () => 0, ...extra };
}

async function take(fetch: typeof globalThis.fetch, count: number, extra: Partial<ReadStreamEnhancedOptions> = {}, each?: (r: ConsumerRecord) => unknown) {
  const client = createKinesisClient({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }, fetch, retry: { maxAttempts: 1 } });
  const out: ConsumerRecord[] = [];
  for await (const record of readStreamEnhanced(client, options(extra))) {
    out.push(record);
    await each?.(record);
    if (out.length === count) break;
  }
  return out;
}

describe('readStreamEnhanced', () => {
  it('reads parents before children across a split and a merge, each record once, through subscriptions', async () => {
    const fake = createFakeKinesis(3);
    const [s0, s1, s2] = [0, 1, 2].map(shardIdOf) as [string, string, string];
    for (let i = 1; i <= 3; i++) {
      fake.put(s0, 'a', `a${i}`);
      fake.put(s1, 'b', `b${i}`);
      fake.put(s2, 'c', `c${i}`);
    }
    const [s3, s4] = fake.split(s0);
    for (let i = 4; i <= 6; i++) fake.put(s3.id, 'a', `a${i}`);
    fake.put(s4.id, 'd', 'd1');
    const s5 = fake.merge(s1, s2);
    for (let i = 4; i <= 5; i++) {
      fake.put(s5.id, 'b', `b${i}`);
      fake.put(s5.id, 'c', `c${i}`);
    }
    const { fetch, subscriptions } = withSubscribe(fake);
    const records = await take(fetch, 17);

    expect(records.map(recordText).sort()).toEqual(['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'b1', 'b2', 'b3', 'b4', 'b5', 'c1', 'c2', 'c3', 'c4', 'c5', 'd1']);
    expect(new Set(records.map((r) => r.sequenceNumber)).size).toBe(records.length);
    const firstIndex = (shardId: string) => records.findIndex((r) => r.shardId === shardId);
    const lastIndex = (shardId: string) => records.map((r) => r.shardId).lastIndexOf(shardId);
    expect(lastIndex(s0)).toBeLessThan(firstIndex(s3.id));
    expect(lastIndex(s0)).toBeLessThan(firstIndex(s4.id));
    expect(Math.max(lastIndex(s1), lastIndex(s2))).toBeLessThan(firstIndex(s5.id));
    // Every shard was read through SubscribeToShard, children from their start.
    expect(new Set(subscriptions.map((s) => s.shardId))).toEqual(new Set([s0, s1, s2, s3.id, s4.id, s5.id]));
    expect(subscriptions.filter((s) => s.shardId === s5.id)[0]!.position).toEqual({ Type: 'TRIM_HORIZON' });
    expect(fake.callsOf('GetRecords')).toHaveLength(0);
  });

  it('stores SHARD_END for a finished parent and resumes after checkpoints with AFTER_SEQUENCE_NUMBER', async () => {
    const fake = createFakeKinesis(1);
    const s0 = shardIdOf(0);
    fake.put(s0, 'a', 'a1');
    fake.put(s0, 'a', 'a2');
    const [s1, s2] = fake.split(s0);
    fake.put(s1.id, 'a', 'a3');
    fake.put(s1.id, 'a', 'a4');
    const checkpoints = createMemoryCheckpointStore();
    const { fetch, subscriptions } = withSubscribe(fake);
    const first = await take(fetch, 3, { checkpoints, checkpointing: 'manual' }, (r) => checkpointRecord(checkpoints, r));
    expect(first.map(recordText)).toEqual(['a1', 'a2', 'a3']);
    expect(checkpoints.list().get(s0)).toEqual({ sequenceNumber: SHARD_END });

    subscriptions.length = 0;
    const second = await take(fetch, 1, { checkpoints, checkpointing: 'manual' });
    expect(second.map(recordText)).toEqual(['a4']);
    expect(subscriptions.map((s) => s.shardId)).not.toContain(s0);
    // Both children are subscribed to, in whichever order their readers start; the one read
    // before resumes after its checkpoint, its empty sibling from its start.
    expect(subscriptions.find((s) => s.shardId === s1.id)!.position).toEqual({ Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: first[2]!.sequenceNumber });
    expect(subscriptions.find((s) => s.shardId === s2.id)?.position ?? { Type: 'TRIM_HORIZON' }).toEqual({ Type: 'TRIM_HORIZON' });
  });

  it('refuses options without a consumer ARN', async () => {
    const fake = createFakeKinesis(1);
    await expect(take(withSubscribe(fake).fetch, 1, { consumerARN: '' })).rejects.toThrow(/consumerARN is required/);
  });
});

// readStream against the in-memory fake (consumer-fake-kinesis.ts): lineage across splits and
// merges, start positions, backpressure, checkpoints, failures and cancellation.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SHARD_END, checkpointRecord, createMemoryCheckpointStore } from '../../src/consumer/checkpoints.ts';
import { readStream, type ReadStreamOptions } from '../../src/consumer/read-stream.ts';
import { recordText, type ConsumerRecord } from '../../src/consumer/record.ts';
import { encodeAggregatedRecord } from '../../src/internal/kpl.ts';
import { createFakeKinesis, type FakeKinesis } from './consumer-fake-kinesis.ts';

const FAST = { pollIntervalMs: 1, idleDelayMs: 2, maxIdleDelayMs: 10, throttleDelayMs: 5, maxThrottleDelayMs: 20, random: () => 0.5 };
const realSetTimeout = globalThis.setTimeout;
const realDelay = (ms: number) => new Promise((resolve) => realSetTimeout(resolve, ms));

function options(extra: Partial<ReadStreamOptions> = {}): ReadStreamOptions {
  return { streamName: 'test', from: { type: 'TRIM_HORIZON' }, shardRefreshIntervalMs: 0, ...FAST, ...extra };
}

/** Takes `count` records (running `each` on every one), then breaks out. */
async function take(
  fake: FakeKinesis,
  count: number,
  extra: Partial<ReadStreamOptions> = {},
  each?: (record: ConsumerRecord, index: number) => unknown,
): Promise<ConsumerRecord[]> {
  const out: ConsumerRecord[] = [];
  if (count === 0) return out;
  for await (const record of readStream(fake.client(), options(extra))) {
    out.push(record);
    await each?.(record, out.length - 1);
    if (out.length === count) break;
  }
  return out;
}

const texts = (records: ConsumerRecord[]) => records.map(recordText);
const shardIdOf = (n: number) => `shardId-${String(n).padStart(12, '0')}`;

/** Checks that each key's records come in the order their text numbers say (`a1`, `a2`, …). */
function expectPerKeyOrder(records: ConsumerRecord[]) {
  const byKey = new Map<string, number[]>();
  for (const record of records) {
    const n = Number(recordText(record).slice(record.partitionKey.length));
    byKey.set(record.partitionKey, [...(byKey.get(record.partitionKey) ?? []), n]);
  }
  for (const [key, numbers] of byKey) expect({ key, numbers }).toEqual({ key, numbers: [...numbers].sort((a, b) => a - b) });
}

/** Every record of each parent comes before the first record of its child. */
function expectParentsFirst(fake: FakeKinesis, records: ConsumerRecord[]) {
  const positions = (shardId: string) => records.flatMap((r, i) => (r.shardId === shardId ? [i] : []));
  for (const shard of fake.shards.values()) {
    const first = positions(shard.id)[0];
    if (first === undefined) continue;
    for (const parent of shard.parents) expect(Math.max(-1, ...positions(parent))).toBeLessThan(first);
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe('readStream', () => {
  it('reads parents before children across a split and a merge, each record once, per-key order kept', async () => {
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
    for (let i = 4; i <= 6; i++) {
      fake.put(s5.id, 'b', `b${i}`);
      fake.put(s5.id, 'c', `c${i}`);
    }
    const [s6, s7] = fake.split(s5.id);
    fake.put(s6.id, 'b', 'b7');
    fake.put(s7.id, 'c', 'c7');

    const records = await take(fake, 21, { limit: 2 });

    expect(new Set(texts(records)).size).toBe(21);
    expectPerKeyOrder(records);
    expectParentsFirst(fake, records);
    // Every shard was opened once, and no shard twice.
    expect(fake.callsOf('GetShardIterator').map((c) => c.body.ShardId).sort()).toEqual([...fake.shards.keys()].sort());
  });

  it('follows a split and a merge that happen while it reads', async () => {
    const fake = createFakeKinesis(2);
    const [s0, s1] = [shardIdOf(0), shardIdOf(1)];
    fake.put(s0, 'a', 'a1');
    fake.put(s1, 'b', 'b1');
    const records = await take(fake, 6, {}, async (_record, index) => {
      if (index === 0) {
        await realDelay(20);
        fake.put(s0, 'a', 'a2');
        const [left] = fake.split(s0);
        fake.put(left.id, 'a', 'a3');
        fake.put(s1, 'b', 'b2');
        const merged = fake.merge(s1, fake.split(left.id)[0].id);
        fake.put(merged.id, 'b', 'b3');
      }
    });
    expect(texts(records).sort()).toEqual(['a1', 'a2', 'a3', 'b1', 'b2', 'b3']);
    expectPerKeyOrder(records);
    expectParentsFirst(fake, records);
  });

  it('delivers only records written after a LATEST start, including all of a later child', async () => {
    const fake = createFakeKinesis(2);
    const [s0, s1] = [shardIdOf(0), shardIdOf(1)];
    fake.put(s0, 'old', 'old1');
    const [s2, s3] = fake.split(s1);
    fake.put(s2.id, 'old', 'old2');
    const iterator = readStream(fake.client(), options({ from: { type: 'LATEST' } }));
    const first = iterator.next();
    // Wait until every open shard has its LATEST iterator.
    while (fake.callsOf('GetShardIterator').length < 3) await realDelay(2);
    fake.put(s0, 'n', 'n1');
    const [s4] = fake.split(s0);
    fake.put(s4.id, 'n', 'n2');
    fake.put(s3.id, 'm', 'm1');
    const records = [(await first).value as ConsumerRecord];
    for (let step = await iterator.next(); !step.done; step = await iterator.next()) {
      records.push(step.value);
      if (records.length === 3) break;
    }
    await iterator.return();

    expect(texts(records).sort()).toEqual(['m1', 'n1', 'n2']);
    const opened = fake.callsOf('GetShardIterator').map((c) => [c.body.ShardId, c.body.ShardIteratorType]);
    expect(opened).toEqual(expect.arrayContaining([[s0, 'LATEST'], [s2.id, 'LATEST'], [s3.id, 'LATEST'], [s4.id, 'TRIM_HORIZON']]));
    expect(opened.map(([id]) => id)).not.toContain(s1);
  });

  it('starts at a timestamp, and so do the children of shards started there', async () => {
    const fake = createFakeKinesis(1);
    const s0 = shardIdOf(0);
    const now = Date.now();
    fake.put(s0, 'k', 'k1', now - 60_000);
    fake.put(s0, 'k', 'k2', now);
    const [s1] = fake.split(s0);
    fake.put(s1.id, 'k', 'k3', now - 30_000); // a clock oddity: older than the timestamp
    fake.put(s1.id, 'k', 'k4', now);
    const records = await take(fake, 2, { from: { type: 'AT_TIMESTAMP', timestamp: new Date(now - 1000) } });
    expect(texts(records)).toEqual(['k2', 'k4']);
    // The parent and both children of the split.
    expect(fake.callsOf('GetShardIterator').map((c) => c.body.ShardIteratorType)).toEqual(['AT_TIMESTAMP', 'AT_TIMESTAMP', 'AT_TIMESTAMP']);
  });

  it('does not fetch ahead of a slow consumer', async () => {
    const fake = createFakeKinesis(2);
    for (let i = 0; i < 50; i++) {
      fake.put(shardIdOf(0), 'a', `a${i}`);
      fake.put(shardIdOf(1), 'b', `b${i}`);
    }
    const iterator = readStream(fake.client(), options({ limit: 5 }));
    await iterator.next();
    await realDelay(150);
    // One batch per shard, held until the consumer takes its records.
    expect(fake.callsOf('GetRecords')).toHaveLength(2);
    for (let i = 0; i < 9; i++) await iterator.next();
    await realDelay(50);
    expect(fake.callsOf('GetRecords').length).toBeLessThanOrEqual(4);
    await iterator.return();
  });

  it('checkpoints each processed batch and SHARD_END, then resumes after them', async () => {
    const fake = createFakeKinesis(1);
    const s0 = shardIdOf(0);
    const seqs = [0, 1, 2, 3, 4].map((i) => fake.put(s0, 'k', `k${i}`));
    const [s1, s2] = fake.split(s0);
    fake.put(s1.id, 'k', 'k5');
    const checkpoints = createMemoryCheckpointStore();
    const seen: (string | undefined)[] = [];

    const first = await take(fake, 6, { checkpoints, limit: 2 }, (record) => {
      seen.push(checkpoints.get(record.shardId)?.sequenceNumber);
    });

    expect(texts(first)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
    // While a record is processed, the store holds the end of the last fully processed batch.
    expect(seen).toEqual([undefined, undefined, seqs[1], seqs[1], seqs[3], undefined]);
    // k5 was being processed when the loop broke out: not checkpointed.
    expect(checkpoints.list()).toEqual(new Map([[s0, { sequenceNumber: SHARD_END }]]));

    fake.put(s1.id, 'k', 'k6');
    fake.calls.length = 0;
    const second = await take(fake, 2, { checkpoints });
    expect(texts(second)).toEqual(['k5', 'k6']);
    // The parent is not opened again.
    expect(fake.callsOf('GetShardIterator').map((c) => c.body.ShardId).sort()).toEqual([s1.id, s2.id]);
  });

  it('with manual checkpoints resumes exactly after the last record checkpointed', async () => {
    const fake = createFakeKinesis(2);
    for (let i = 0; i < 6; i++) {
      fake.put(shardIdOf(0), 'a', `a${i}`);
      fake.put(shardIdOf(1), 'b', `b${i}`);
    }
    const checkpoints = createMemoryCheckpointStore();
    const first = await take(fake, 5, { checkpoints, checkpointing: 'manual', limit: 2 }, (record) => checkpointRecord(checkpoints, record));
    const second = await take(fake, 7, { checkpoints, checkpointing: 'manual' }, (record) => checkpointRecord(checkpoints, record));

    expect([...texts(first), ...texts(second)].sort()).toEqual([...Array(6).keys()].flatMap((i) => [`a${i}`, `b${i}`]).sort());
    expectPerKeyOrder([...first, ...second]);
  });

  it('with manual checkpoints stores SHARD_END only once the last record of the shard was checkpointed', async () => {
    const fake = createFakeKinesis(2);
    const [s0, s1] = [shardIdOf(0), shardIdOf(1)];
    fake.put(s0, 'a', 'a0');
    fake.put(s0, 'a', 'a1');
    fake.put(s1, 'b', 'b0');
    const [c0] = fake.split(s0);
    const [c1] = fake.split(s1);
    fake.put(c0.id, 'a', 'a2');
    fake.put(c1.id, 'b', 'b1');
    const checkpoints = createMemoryCheckpointStore();
    // Checkpoint everything but a1, the last record of s0.
    await take(fake, 5, { checkpoints, checkpointing: 'manual' }, (record) => {
      if (recordText(record) !== 'a1') return checkpointRecord(checkpoints, record);
    });
    expect(checkpoints.get(s0)?.sequenceNumber).not.toBe(SHARD_END);
    expect(checkpoints.get(s1)).toEqual({ sequenceNumber: SHARD_END });

    // Resuming reads s0's unprocessed tail again before its child.
    const again = await take(fake, 1, { checkpoints, checkpointing: 'manual' });
    expect(texts(again)).toEqual(['a1']);
  });

  it('resumes inside a KPL aggregate with the next user record', async () => {
    const fake = createFakeKinesis(1);
    const s0 = shardIdOf(0);
    const users = [0, 1, 2, 3].map((i) => ({ partitionKey: `u${i}`, data: new TextEncoder().encode(`u${i}`) }));
    fake.put(s0, 'agg', encodeAggregatedRecord(users));
    fake.put(s0, 'p', 'p0');
    const checkpoints = createMemoryCheckpointStore();
    const first = await take(fake, 2, { checkpoints, checkpointing: 'manual' }, (record) => checkpointRecord(checkpoints, record));
    expect(first.map((r) => [recordText(r), r.subSequenceNumber])).toEqual([
      ['u0', 0],
      ['u1', 1],
    ]);
    const second = await take(fake, 3, { checkpoints, checkpointing: 'manual' });
    expect(texts(second)).toEqual(['u2', 'u3', 'p0']);
  });

  it('lists shards again when a child names a parent it never saw', async () => {
    const fake = createFakeKinesis(1);
    const s0 = shardIdOf(0);
    fake.put(s0, 'a', 'a0');
    const records = await take(fake, 3, {}, async (_record, index) => {
      if (index === 0) {
        const late = fake.addShard();
        fake.put(late.id, 'z', 'z0');
        const child = fake.merge(s0, late.id);
        fake.put(child.id, 'a', 'a1');
      }
    });
    expect(texts(records)).toEqual(['a0', 'z0', 'a1']);
    expect(fake.callsOf('ListShards').length).toBeGreaterThanOrEqual(2);
  });

  it('picks up a new shard found by the periodic listing, from its start', async () => {
    const fake = createFakeKinesis(1);
    const iterator = readStream(fake.client(), options({ from: { type: 'LATEST' }, shardRefreshIntervalMs: 30 }));
    const first = iterator.next();
    while (fake.callsOf('GetShardIterator').length < 1) await realDelay(2);
    const added = fake.addShard();
    fake.put(added.id, 'x', 'x0');
    const step = await first;
    await iterator.return();
    expect(step.done ? undefined : [step.value.shardId, recordText(step.value)]).toEqual([added.id, 'x0']);
  });

  it('waits for the next periodic listing after a ListShards failure with the retry quota spent', async () => {
    // With the shared retry quota spent, the client throws KinesisRetryQuotaExceededError
    // (retryable: false) around the 500; the periodic listing judged that error, not its cause, and
    // one failed listing ended the iteration. The polling twin of enhanced-invariants.test.ts's
    // 'a periodic ListShards failure with the retry quota spent waits for the next round'.
    const fake = createFakeKinesis(1);
    fake.faults = [{ operation: 'ListShards', status: 500, type: 'InternalFailure', when: () => fake.callsOf('ListShards').length === 2 }];
    const iterator = readStream(fake.client({ maxAttempts: 3, quota: 0 }), options({ shardRefreshIntervalMs: 5 }));
    const first = iterator.next();
    while (fake.callsOf('ListShards').length < 2) await realDelay(2);
    // Only a listing after the failed one finds this shard.
    const added = fake.addShard();
    fake.put(added.id, 'x', 'x0');
    const step = await first;
    await iterator.return();
    expect(step.done ? undefined : [step.value.shardId, recordText(step.value)]).toEqual([added.id, 'x0']);
    expect(fake.callsOf('ListShards').length).toBeGreaterThanOrEqual(3);
  });

  it('ends when every shard is closed and read', async () => {
    const fake = createFakeKinesis(1);
    fake.put(shardIdOf(0), 'k', 'k0');
    const [c0, c1] = fake.split(shardIdOf(0));
    fake.merge(c0.id, c1.id);
    fake.shards.get(shardIdOf(3))!.closed = true;
    const all: string[] = [];
    for await (const record of readStream(fake.client(), options())) all.push(recordText(record));
    expect(all).toEqual(['k0']);
  });

  it('surfaces a shard reader failure and stops the other readers', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const fake = createFakeKinesis(3);
    fake.faults = [{ operation: 'GetShardIterator', status: 400, type: 'AccessDeniedException', when: (b) => b.ShardId === shardIdOf(2) }];
    const error = await take(fake, 1, { shardRefreshIntervalMs: 30_000 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'KinesisServiceError', code: 'AccessDeniedException' });
    expect(vi.getTimerCount()).toBe(0);
    expect(fake.openRequests).toBe(0);
  });

  it('waits out a throttled or failing ListShards at the start, as later listings do', async () => {
    const fake = createFakeKinesis(1);
    fake.put(shardIdOf(0), 'k', 'k0');
    fake.faults = [
      { operation: 'ListShards', status: 400, type: 'LimitExceededException' },
      { operation: 'ListShards', status: 500, type: 'InternalFailure' },
      { operation: 'ListShards', status: 503, type: 'ServiceUnavailable' },
    ];
    const records = await take(fake, 1);
    expect(texts(records)).toEqual(['k0']);
    expect(fake.callsOf('ListShards')).toHaveLength(4);
  });

  it('gives up on a ListShards failing at the start more times in a row than maxConsecutiveErrors', async () => {
    const fake = createFakeKinesis(1);
    fake.faults = Array.from({ length: 3 }, () => ({ operation: 'ListShards', status: 500, type: 'InternalFailure' }));
    await expect(take(fake, 1, { maxConsecutiveErrors: 2 })).rejects.toMatchObject({ code: 'InternalFailure' });
    expect(fake.callsOf('ListShards')).toHaveLength(3);
  });

  it('surfaces a failing ListShards at the start', async () => {
    const fake = createFakeKinesis(1);
    fake.faults = [{ operation: 'ListShards', status: 400, type: 'ResourceNotFoundException', message: 'Stream test under account 123456789012 not found.' }];
    await expect(take(fake, 1)).rejects.toThrow(/ListShards failed: ResourceNotFoundException/);
    // Not retried: waiting does not make a stream exist.
    expect(fake.callsOf('ListShards')).toHaveLength(1);
  });

  it('leaves no timer and no request behind after break', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const fake = createFakeKinesis(4);
    for (let s = 0; s < 4; s++) for (let i = 0; i < 3; i++) fake.put(shardIdOf(s), `k${s}`, `r${i}`);
    const iterator = readStream(fake.client(), options({ shardRefreshIntervalMs: 30_000 }));
    for (let i = 0; i < 5; i++) await iterator.next();
    // Readers are now sleeping before their next poll or waiting for the consumer; the periodic
    // listing sleeps on its timer.
    await realDelay(30);
    expect(vi.getTimerCount()).toBeGreaterThanOrEqual(1);
    await iterator.return();
    expect(vi.getTimerCount()).toBe(0);
    expect(fake.openRequests).toBe(0);
  });

  it('cancels requests in flight and rejects with the reason when the signal aborts', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const fake = createFakeKinesis(3);
    fake.latencyMs = 60_000;
    fake.latencyOperations = ['GetRecords'];
    const controller = new AbortController();
    const iterator = readStream(fake.client(), options({ signal: controller.signal, shardRefreshIntervalMs: 30_000 }));
    const pending = iterator.next();
    while (fake.openRequests < 3) await realDelay(2);

    const reason = new Error('stop now');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(fake.openRequests).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  it.each<[Partial<ReadStreamOptions>, RegExp]>([
    [{ from: { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: '1' } as never }, /TRIM_HORIZON, LATEST or AT_TIMESTAMP/],
    [{ checkpointing: 'sometimes' as never }, /checkpointing must be/],
    [{ shardRefreshIntervalMs: -1 }, /shardRefreshIntervalMs/],
    [{ streamName: undefined }, /exactly one of streamName and streamARN/],
  ])('rejects bad options %j before any request', async (bad, message) => {
    const fake = createFakeKinesis(1);
    await expect(take(fake, 1, bad)).rejects.toThrow(message);
    expect(fake.calls).toHaveLength(0);
  });
});

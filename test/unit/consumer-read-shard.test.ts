// readShard / readShardBatches against the in-memory fake (consumer-fake-kinesis.ts). Pacing is
// checked with real timers and lower bounds (a wait never ends early); cancellation with vitest's
// fake timers and `vi.getTimerCount()`.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_POLLING, failureDelay, idleDelay, nextCallTime, resolvePolling } from '../../src/consumer/polling.ts';
import { readShard, readShardBatches, type ReadShardOptions, type ShardBatch } from '../../src/consumer/read-shard.ts';
import { recordText } from '../../src/consumer/record.ts';
import { isKinesisServiceError } from '../../src/errors.ts';
import { encodeAggregatedRecord } from '../../src/internal/kpl.ts';
import { createFakeKinesis, type FakeKinesis } from './consumer-fake-kinesis.ts';

const SHARD = 'shardId-000000000000';
/** Fast pacing for tests; each test overrides what it measures. */
const FAST = { pollIntervalMs: 1, idleDelayMs: 5, maxIdleDelayMs: 20, throttleDelayMs: 10, maxThrottleDelayMs: 40, random: () => 0.5 };
const realSetTimeout = globalThis.setTimeout;
const realDelay = (ms: number) => new Promise((resolve) => realSetTimeout(resolve, ms));

function options(extra: Partial<ReadShardOptions> = {}): ReadShardOptions {
  return { streamName: 'test', shardId: SHARD, from: { type: 'TRIM_HORIZON' }, ...FAST, ...extra };
}

async function collectBatches(fake: FakeKinesis, extra: Partial<ReadShardOptions> = {}) {
  const batches: ShardBatch[] = [];
  const iterator = readShardBatches(fake.client(), options(extra));
  for (;;) {
    const step = await iterator.next();
    if (step.done) return { batches, end: step.value };
    batches.push(step.value);
  }
}

const texts = (batches: ShardBatch[]) => batches.flatMap((b) => b.records.map(recordText));
const gaps = (times: number[]) => times.slice(1).map((t, i) => t - times[i]!);

afterEach(() => {
  vi.useRealTimers();
});

describe('polling', () => {
  it('waits 5 s after a 10 MiB response at the 2 MiB/s default', () => {
    const polling = resolvePolling({}, 't');
    expect(nextCallTime(1000, 1100, 10 * 1024 * 1024, polling)).toBe(6100);
    expect(nextCallTime(1000, 1010, 0, polling)).toBe(1200);
  });

  it('doubles the idle wait up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => idleDelay(n, DEFAULT_POLLING))).toEqual([250, 500, 1000, 2000, 2000, 2000]);
  });

  it('backs off failures with equal jitter, never under half the step nor over the cap', () => {
    const low = { ...DEFAULT_POLLING, random: () => 0 };
    const high = { ...DEFAULT_POLLING, random: () => 0.999999 };
    expect([1, 2, 3, 4, 5, 9].map((n) => failureDelay(n, low))).toEqual([500, 1000, 2000, 4000, 5000, 5000]);
    expect([1, 2, 5].map((n) => failureDelay(n, high))).toEqual([999, 1999, 9999]);
  });

  it.each([
    [{ limit: 0 }, RangeError],
    [{ limit: 10_001 }, RangeError],
    [{ pollIntervalMs: -1 }, RangeError],
    [{ bytesPerSecond: 0 }, RangeError],
    [{ maxConsecutiveErrors: 1.5 }, RangeError],
  ])('rejects %j', (bad, type) => {
    expect(() => resolvePolling(bad, 'readShard')).toThrow(type);
  });
});

describe('readShardBatches', () => {
  it('reads a closed shard to its end and reports its child shards', async () => {
    const fake = createFakeKinesis(1);
    for (let i = 0; i < 5; i++) fake.put(SHARD, `k${i}`, `r${i}`);
    const [a, b] = fake.split(SHARD);

    const { batches, end } = await collectBatches(fake, { limit: 2 });

    expect(texts(batches)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(batches.map((b) => b.records.length)).toEqual([2, 2, 1]);
    expect(batches.map((b) => b.isShardEnd)).toEqual([false, false, true]);
    expect(end.childShards.map((c) => c.ShardId)).toEqual([a.id, b.id]);
    expect(batches.at(-1)!.childShards).toEqual(end.childShards);
    expect(batches[0]!.records[0]).toMatchObject({ shardId: SHARD, partitionKey: 'k0' });
    expect(fake.callsOf('GetRecords').every((c) => c.body.Limit === 2 && c.body.ShardIterator)).toBe(true);
  });

  it('passes the stream ARN to GetShardIterator and GetRecords', async () => {
    const fake = createFakeKinesis(1);
    fake.split(SHARD);
    const arn = 'arn:aws:kinesis:us-east-1:123456789012:stream/test';
    const { batches } = await collectBatches(fake, { streamName: undefined, streamARN: arn });
    // An empty closed shard still ends with one (empty) batch naming its children.
    expect(batches).toEqual([expect.objectContaining({ records: [], isShardEnd: true, childShards: expect.any(Array) })]);
    expect(fake.callsOf('GetShardIterator')[0]!.body).toEqual({ StreamARN: arn, ShardId: SHARD, ShardIteratorType: 'TRIM_HORIZON' });
    expect(fake.callsOf('GetRecords')[0]!.body.StreamARN).toBe(arn);
  });

  it('spaces GetRecords calls by pollIntervalMs', async () => {
    const fake = createFakeKinesis(1);
    for (let i = 0; i < 5; i++) fake.put(SHARD, 'k', `r${i}`);
    fake.split(SHARD);
    await collectBatches(fake, { limit: 1, pollIntervalMs: 100 });
    const times = fake.callsOf('GetRecords').map((c) => c.at);
    // The page with the last record of a closed shard also ends it.
    expect(times).toHaveLength(5);
    // The fake sees a call after it is signed, a little after the reader's clock reading, so one
    // gap may look shorter by that much; the total cannot.
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(380);
    for (const gap of gaps(times)) expect(gap).toBeGreaterThanOrEqual(40);
  });

  it('waits in proportion to the bytes just read', async () => {
    const fake = createFakeKinesis(1);
    for (let i = 0; i < 3; i++) fake.put(SHARD, 'k', new Uint8Array(999));
    fake.split(SHARD);
    // 999 bytes of data + 1 of key at 10 000 B/s: 100 ms after each response.
    await collectBatches(fake, { limit: 1, pollIntervalMs: 0, bytesPerSecond: 10_000 });
    const times = fake.callsOf('GetRecords').map((c) => c.at);
    expect(times).toHaveLength(3);
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(180);
    for (const gap of gaps(times)) expect(gap).toBeGreaterThanOrEqual(40);
  });

  it('backs off while idle and polls at full pace again when records arrive', async () => {
    const fake = createFakeKinesis(1);
    const controller = new AbortController();
    const iterator = readShardBatches(fake.client(), options({ signal: controller.signal, idleDelayMs: 20, maxIdleDelayMs: 80 }));
    const first = iterator.next();
    await realDelay(600);
    const idleCalls = fake.callsOf('GetRecords').length;
    // Without backoff a 1 ms interval would make hundreds of calls; 20, 40, 80, 80, … makes ~9.
    expect(idleCalls).toBeGreaterThanOrEqual(4);
    expect(idleCalls).toBeLessThanOrEqual(12);
    const idleGaps = gaps(fake.callsOf('GetRecords').map((c) => c.at));
    expect(idleGaps[0]).toBeGreaterThanOrEqual(12);
    expect(idleGaps[2]).toBeGreaterThanOrEqual(65);

    fake.put(SHARD, 'k', 'hello');
    const step = await first;
    expect(step.done ? [] : texts([step.value])).toEqual(['hello']);
    const afterRecords = fake.callsOf('GetRecords').length;
    const next = iterator.next();
    await realDelay(60);
    // After records the idle backoff starts again from idleDelayMs (20 ms), not from the cap.
    expect(fake.callsOf('GetRecords').length - afterRecords).toBeGreaterThanOrEqual(2);
    controller.abort(new Error('stop'));
    await expect(next).rejects.toThrow('stop');
  });

  it('does not back off on an empty page while behind the tip', async () => {
    const fake = createFakeKinesis(1);
    fake.put(SHARD, 'k', 'one');
    fake.split(SHARD);
    fake.gapPages = 1;
    const { batches } = await collectBatches(fake, { idleDelayMs: 500, maxIdleDelayMs: 500 });
    const [gap] = gaps(fake.callsOf('GetRecords').map((c) => c.at));
    expect(gap).toBeLessThan(400);
    expect(texts(batches)).toEqual(['one']);
  });

  it('backs off on throttling beyond the client retries and delivers every record once', async () => {
    const fake = createFakeKinesis(1);
    for (let i = 0; i < 3; i++) fake.put(SHARD, 'k', `r${i}`);
    fake.split(SHARD);
    fake.faults = Array.from({ length: 3 }, () => ({ operation: 'GetRecords', status: 400, type: 'ProvisionedThroughputExceededException' }));

    const { batches } = await collectBatches(fake, { throttleDelayMs: 40, maxThrottleDelayMs: 1000, random: () => 0 });

    expect(texts(batches)).toEqual(['r0', 'r1', 'r2']);
    const times = fake.callsOf('GetRecords').map((c) => c.at);
    expect(times).toHaveLength(4);
    // Equal jitter with random 0: half of 40, 80, 160.
    const [g1, g2, g3] = gaps(times);
    expect(g1).toBeGreaterThanOrEqual(12);
    expect(g2).toBeGreaterThanOrEqual(30);
    expect(g3).toBeGreaterThanOrEqual(65);
    expect(fake.callsOf('GetShardIterator')).toHaveLength(1);
  });

  it('renews an expired iterator after the last record delivered: none skipped, none repeated', async () => {
    const fake = createFakeKinesis(1);
    const seqs = [0, 1, 2, 3, 4].map((i) => fake.put(SHARD, 'k', `r${i}`));
    fake.split(SHARD);
    let getRecords = 0;
    fake.faults = [{ operation: 'GetRecords', status: 400, type: 'ExpiredIteratorException', when: () => ++getRecords === 2 }];

    const { batches } = await collectBatches(fake, { limit: 2 });

    expect(texts(batches)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(fake.callsOf('GetShardIterator').map((c) => c.body)).toEqual([
      { StreamName: 'test', ShardId: SHARD, ShardIteratorType: 'TRIM_HORIZON' },
      { StreamName: 'test', ShardId: SHARD, ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: seqs[1] },
    ]);
  });

  it('renews from the original position when nothing was delivered yet', async () => {
    const fake = createFakeKinesis(1);
    fake.put(SHARD, 'k', 'old', Date.now() - 60_000);
    fake.put(SHARD, 'k', 'new', Date.now());
    fake.split(SHARD);
    fake.faults = [{ operation: 'GetRecords', status: 400, type: 'ExpiredIteratorException' }];
    const timestamp = new Date(Date.now() - 1000);

    const { batches } = await collectBatches(fake, { from: { type: 'AT_TIMESTAMP', timestamp } });

    expect(texts(batches)).toEqual(['new']);
    expect(fake.callsOf('GetShardIterator').map((c) => [c.body.ShardIteratorType, c.body.Timestamp])).toEqual([
      ['AT_TIMESTAMP', timestamp.getTime() / 1000],
      ['AT_TIMESTAMP', timestamp.getTime() / 1000],
    ]);
  });

  it('renews a LATEST iterator as AT_TIMESTAMP of when reading began, so records that came meanwhile are kept', async () => {
    const fake = createFakeKinesis(1);
    fake.put(SHARD, 'k', 'before', Date.now() - 60_000);
    const startedAt = Date.now();
    let getRecords = 0;
    fake.faults = [
      {
        operation: 'GetRecords',
        status: 400,
        type: 'ExpiredIteratorException',
        // Expire the iterator once, after a record arrived behind the LATEST position.
        when: () => {
          if (++getRecords !== 2) return false;
          fake.put(SHARD, 'k', 'meanwhile');
          return true;
        },
      },
    ];
    const iterator = readShardBatches(fake.client(), options({ from: { type: 'LATEST' } }));
    const step = await iterator.next();
    await iterator.return(undefined as never);

    expect(step.done ? [] : texts([step.value])).toEqual(['meanwhile']);
    const [, renewed] = fake.callsOf('GetShardIterator');
    expect(renewed!.body.ShardIteratorType).toBe('AT_TIMESTAMP');
    expect(renewed!.body.Timestamp * 1000).toBeLessThanOrEqual(startedAt);
    expect(renewed!.body.Timestamp * 1000).toBeGreaterThan(startedAt - 60_000);
  });

  it('gives up when the iterator keeps expiring', async () => {
    const fake = createFakeKinesis(1);
    fake.faults = Array.from({ length: 4 }, () => ({ operation: 'GetRecords', status: 400, type: 'ExpiredIteratorException' }));
    await expect(collectBatches(fake)).rejects.toMatchObject({ name: 'KinesisServiceError', code: 'ExpiredIteratorException' });
    expect(fake.callsOf('GetShardIterator')).toHaveLength(4);
  });

  it('throws a fault that no wait can fix at once', async () => {
    const fake = createFakeKinesis(1);
    const error = await collectBatches(fake, { shardId: 'shardId-000000000099' }).catch((e: unknown) => e);
    expect(isKinesisServiceError(error) && error.code).toBe('ResourceNotFoundException');
    expect(fake.calls).toHaveLength(1);
  });

  it('retries transient failures up to maxConsecutiveErrors, then throws', async () => {
    const fake = createFakeKinesis(1);
    fake.put(SHARD, 'k', 'r0');
    fake.split(SHARD);
    fake.faults = Array.from({ length: 2 }, () => ({ operation: 'GetRecords', status: 500, type: 'InternalFailure' }));
    expect(texts((await collectBatches(fake, { maxConsecutiveErrors: 2 })).batches)).toEqual(['r0']);

    fake.faults = Array.from({ length: 3 }, () => ({ operation: 'GetRecords', status: 500, type: 'InternalFailure' }));
    await expect(collectBatches(fake, { maxConsecutiveErrors: 2 })).rejects.toMatchObject({ code: 'InternalFailure', status: 500 });
  });

  it('resumes inside a KPL aggregate after the checkpointed user record', async () => {
    const fake = createFakeKinesis(1);
    const users = ['u0', 'u1', 'u2', 'u3'].map((t) => ({ partitionKey: `pk-${t}`, data: new TextEncoder().encode(t) }));
    fake.put(SHARD, 'k', 'before');
    const aggregated = fake.put(SHARD, 'agg', encodeAggregatedRecord(users));
    fake.put(SHARD, 'k', 'after');
    fake.split(SHARD);

    const { batches } = await collectBatches(fake, { from: { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: aggregated, subSequenceNumber: 1 } });

    expect(fake.callsOf('GetShardIterator')[0]!.body).toMatchObject({ ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: aggregated });
    expect(batches.flatMap((b) => b.records.map((r) => [recordText(r), r.partitionKey, r.subSequenceNumber]))).toEqual([
      ['u2', 'pk-u2', 2],
      ['u3', 'pk-u3', 3],
      ['after', 'k', undefined],
    ]);
  });

  it('delivers an aggregated record whole with deaggregate: false', async () => {
    const fake = createFakeKinesis(1);
    const bytes = encodeAggregatedRecord([{ partitionKey: 'a', data: new Uint8Array([1]) }]);
    fake.put(SHARD, 'agg', bytes);
    fake.split(SHARD);
    const { batches } = await collectBatches(fake, { deaggregate: false });
    expect(batches[0]!.records).toHaveLength(1);
    expect(batches[0]!.records[0]).toMatchObject({ partitionKey: 'agg', data: bytes });
    expect(batches[0]!.records[0]).not.toHaveProperty('subSequenceNumber');
  });

  it.each<[Partial<ReadShardOptions>, RegExp]>([
    [{ streamName: undefined }, /exactly one of streamName and streamARN/],
    [{ streamARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/x' }, /exactly one of streamName and streamARN/],
    [{ shardId: '' }, /shardId is required/],
    [{ from: { type: 'NEWEST' } as never }, /from.type must be/],
    [{ from: { type: 'AT_SEQUENCE_NUMBER', sequenceNumber: 12 } as never }, /sequenceNumber must be a string of digits/],
    [{ from: { type: 'AT_TIMESTAMP', timestamp: new Date(Number.NaN) } }, /timestamp must be a valid Date/],
    [{ limit: 0 }, /limit must be an integer/],
  ])('rejects bad options %j before any request', async (bad, message) => {
    const fake = createFakeKinesis(1);
    await expect(collectBatches(fake, bad)).rejects.toThrow(message);
    expect(fake.calls).toHaveLength(0);
  });
});

describe('readShard', () => {
  it('yields records one by one and returns the child shards', async () => {
    const fake = createFakeKinesis(1);
    for (let i = 0; i < 3; i++) fake.put(SHARD, 'k', `r${i}`);
    const [a, b] = fake.split(SHARD);
    const iterator = readShard(fake.client(), options({ limit: 2 }));
    const seen: string[] = [];
    let step = await iterator.next();
    for (; !step.done; step = await iterator.next()) seen.push(recordText(step.value));
    expect(seen).toEqual(['r0', 'r1', 'r2']);
    expect(step.value.childShards.map((c) => c.ShardId)).toEqual([a.id, b.id]);
  });

  it('leaves no timer and no request behind after break', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const fake = createFakeKinesis(1);
    for (let i = 0; i < 4; i++) fake.put(SHARD, 'k', `r${i}`);
    let seen = 0;
    for await (const _record of readShard(fake.client(), options())) {
      if (++seen === 3) break;
    }
    expect(seen).toBe(3);
    expect(vi.getTimerCount()).toBe(0);
    expect(fake.openRequests).toBe(0);
    await realDelay(20);
    expect(fake.callsOf('GetRecords')).toHaveLength(1);
  });

  it('clears its wait and rejects with the reason when aborted while idle', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const fake = createFakeKinesis(1);
    const controller = new AbortController();
    const pending = readShard(fake.client(), options({ signal: controller.signal, idleDelayMs: 60_000, maxIdleDelayMs: 60_000 })).next();
    // Let it make its first calls (signing is real async work) until it sleeps on a timer.
    while (vi.getTimerCount() === 0 || fake.callsOf('GetRecords').length === 0) await realDelay(5);
    expect(vi.getTimerCount()).toBe(1);

    const reason = new Error('shutting down');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('aborts the request in flight when aborted', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const fake = createFakeKinesis(1);
    fake.latencyMs = 60_000;
    const controller = new AbortController();
    const pending = readShard(fake.client(), options({ signal: controller.signal })).next();
    while (fake.openRequests === 0) await realDelay(5);
    // The fake's latency timer and the client's per-attempt timeout.
    expect(vi.getTimerCount()).toBe(2);

    controller.abort(new Error('bye'));
    await expect(pending).rejects.toThrow('bye');
    expect(fake.openRequests).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const fake = createFakeKinesis(1);
    const reason = new Error('already');
    await expect(readShard(fake.client(), options({ signal: AbortSignal.abort(reason) })).next()).rejects.toBe(reason);
    expect(fake.calls).toHaveLength(0);
  });
});

// Rate adaptation: the AIMD token bucket on its own, a hot shard throttled while another shard keeps
// flowing (no head-of-line blocking), and a throttling storm against a fake shard that accepts a
// fixed number of records per second (the per-shard write limit: 1,000 records/s,
// https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AdaptiveRateLimiter } from '../../src/producer/rate-limiter.ts';
import { createProducer } from '../../src/producer/index.ts';
import { advanceBy, advanceUntil, createFakeKinesis, keysOnShard, quiesce } from './producer-fake-kinesis.ts';

const PTE = 'ProvisionedThroughputExceededException';
const SHARD = { recordsPerSecond: 1000, bytesPerSecond: 1024 * 1024 };

afterEach(() => {
  vi.useRealTimers();
});

describe('AdaptiveRateLimiter', () => {
  it("starts with a second's allowance and refills at the ceiling rate", () => {
    const limiter = new AdaptiveRateLimiter(SHARD, 0);
    let taken = 0;
    while (limiter.tryTake(0, 10)) taken++;
    expect(taken).toBe(1000);
    expect(limiter.availableAt(0)).toBe(1);
    // A worthwhile request waits for a tenth of a second's allowance (100 records).
    expect(limiter.availableAt(0, 500, 5_000)).toBe(100);
    expect(limiter.availableAt(0, 3, 30)).toBe(3);
    expect(limiter.canTake(1)).toBe(true);
  });

  it('lets a large record run the bytes into debt, then waits for it to be repaid', () => {
    const limiter = new AdaptiveRateLimiter(SHARD, 0);
    expect(limiter.tryTake(0, 3 * 1024 * 1024)).toBe(true);
    expect(limiter.canTake(0)).toBe(false);
    expect(limiter.availableAt(0)).toBe(2001);
  });

  it('halves the rate on a throttle, once per congestion, down to a floor, and pauses', () => {
    const limiter = new AdaptiveRateLimiter(SHARD, 0);
    limiter.onThrottle(0, 300);
    expect(limiter.rate).toEqual({ recordsPerSecond: 500, bytesPerSecond: 512 * 1024 });
    expect(limiter.canTake(299)).toBe(false);
    expect(limiter.canTake(300)).toBe(true);
    limiter.onThrottle(100, 0); // same congestion: no second halving
    expect(limiter.rate.recordsPerSecond).toBe(500);
    for (let t = 300; t < 10_000; t += 300) limiter.onThrottle(t, 0);
    expect(limiter.rate.recordsPerSecond).toBe(1000 / 64);
    expect(limiter.failures).toBe(34); // 1 + 33: the throttle at 100 ms was the same congestion
    limiter.onSuccess();
    expect(limiter.failures).toBe(0);
  });

  it('regains a tenth of the ceiling per quiet second, up to the ceiling', () => {
    const limiter = new AdaptiveRateLimiter(SHARD, 0);
    limiter.onThrottle(0, 0);
    limiter.canTake(1_000); // quiet for 1 s: no increase yet
    expect(limiter.rate.recordsPerSecond).toBe(500);
    limiter.canTake(3_000);
    expect(limiter.rate.recordsPerSecond).toBe(700);
    limiter.canTake(20_000);
    expect(limiter.rate).toEqual(SHARD);
  });

  it('an unbounded bucket learns a rate from what it sent when first throttled', () => {
    const limiter = new AdaptiveRateLimiter({ recordsPerSecond: Infinity, bytesPerSecond: Infinity }, 0);
    for (let t = 0; t < 1_000; t++) limiter.tryTake(t, 1);
    limiter.tryTake(1_000, 1); // closes the first one-second window: 1,000 records/s
    limiter.onThrottle(1_000, 0);
    expect(limiter.rate.recordsPerSecond).toBe(500);
    expect(limiter.rate.bytesPerSecond).toBe(Infinity);
  });
});

describe('producer rate limiting', () => {
  it("keeps another shard flowing while a hot key's shard is throttled", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const start = Date.now();
    const kinesis = createFakeKinesis({ shards: 2 });
    const hotShard = 'shardId-000000000000';
    // The hot shard refuses everything for the first 3 seconds; the other accepts all.
    kinesis.script((call) => call.entries.map((entry) => (entry.shardId === hotShard && Date.now() - start < 3_000 ? PTE : 'ok')));
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 20 });
    const [hot] = keysOnShard(kinesis.shards, hotShard, 1, 'hot-');
    const cold = keysOnShard(kinesis.shards, 'shardId-000000000001', 20, 'cold-');
    // Load the shard map first, so records are bucketed per shard from the start. ListShards is
    // answered in real time (its schemas load through a dynamic import): wait for the map before
    // fake time moves, or on a loaded machine the producer stops waiting for it after 1 s of fake
    // time and the warm-up proves nothing.
    void producer.put({ partitionKey: cold[0]!, data: 'warm-up' });
    for (let i = 0; i < 100_000 && producer.stats().shards === undefined; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(producer.stats().shards).toBe(2);
    await advanceUntil(kinesis, producer, () => producer.stats().stored === 1);

    const storedAt = new Map<string, number>();
    const puts: Promise<void>[] = [];
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 10; i++) {
        const data = `hot-${round}-${i}`;
        puts.push(producer.put({ partitionKey: hot!, data }).then(() => void storedAt.set(data, Date.now() - start)));
      }
      for (let i = 0; i < 10; i++) {
        const data = `cold-${round}-${i}`;
        puts.push(producer.put({ partitionKey: cold[i]!, data }).then(() => void storedAt.set(data, Date.now() - start)));
      }
      await advanceBy(kinesis, producer, 100);
    }
    const requestsAt2s = kinesis.calls.length;
    await advanceUntil(kinesis, producer, () => storedAt.size === 400, 20);
    await Promise.all(puts);

    const coldTimes = [...storedAt].filter(([data]) => data.startsWith('cold-')).map(([data, t]) => t - Number(data.split('-')[1]) * 100);
    const hotTimes = [...storedAt].filter(([data]) => data.startsWith('hot-')).map(([, t]) => t);
    // Each cold record is stored soon after its put, never waiting for the hot shard.
    expect(Math.max(...coldTimes)).toBeLessThan(500);
    expect(Math.min(...hotTimes)).toBeGreaterThanOrEqual(3_000);
    // The throttled shard backs off: a bounded number of requests over its 3 throttled seconds.
    expect(requestsAt2s).toBeLessThan(80);
  });

  it('converges near the limit in a throttling storm, with a bounded request rate', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const start = Date.now();
    const limitPerShard = 400; // below the limiter's starting ceiling of 1,000/s
    const kinesis = createFakeKinesis({ shards: 2 });
    const window = new Map<string, { second: number; count: number }>();
    kinesis.script((call) =>
      call.entries.map((entry) => {
        const second = Math.floor((Date.now() - start) / 1000);
        const used = window.get(entry.shardId);
        const state = used && used.second === second ? used : { second, count: 0 };
        window.set(entry.shardId, state);
        if (state.count >= limitPerShard) return PTE;
        state.count++;
        return 'ok';
      }),
    );
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 50, maxBufferedRecords: 10_000, recordTtlMs: Infinity });
    void producer.put({ partitionKey: 'warm-up', data: 'x' });
    await advanceUntil(kinesis, producer, () => producer.stats().stored === 1);
    const sentAt: number[] = [];
    const total = 8_000;
    let stored = 0;
    for (let i = 0; i < total; i++) void producer.put({ partitionKey: `user-${i}`, data: `${i}` }).then(() => stored++);
    let lastCalls = kinesis.calls.length;
    for (let i = 0; i < 10_000 && stored < total; i++) {
      await quiesce(kinesis, () => producer.stats().requests);
      await vi.advanceTimersByTimeAsync(20);
      for (; lastCalls < kinesis.calls.length; lastCalls++) sentAt.push(Date.now() - start);
    }
    const elapsed = Date.now() - start;

    expect(stored).toBe(total);
    const texts = kinesis.stored.map((entry) => entry.text);
    expect(new Set(texts).size).toBe(texts.length);
    // 8,000 records at 800/s need 10 s; the limiter gets at least 60% of that throughput.
    expect(elapsed).toBeGreaterThanOrEqual(9_000);
    expect(elapsed).toBeLessThan(10_000 / 0.6);
    // No tight loop: requests per second stay bounded (2 shards, about 10 requests each).
    const perSecond = new Map<number, number>();
    for (const t of sentAt) perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
    expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(40);
    const throttled = kinesis.calls.reduce((sum, call) => sum + call.entries.length, 0) - kinesis.stored.length;
    expect(throttled).toBeLessThan(total);
  });

  it('converges near 1,000 records/s with 10,000 records through a buffer of 2,000, memory bounded', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const limit = 1_000; // records per second, the service's per-shard write limit
    // One shard: the case is the storm on one shard's limit and the buffer bound. (Two shards, one
    // throttled, whose backlog fills the shared buffer: the next test.)
    const kinesis = createFakeKinesis({ shards: 1 });
    let start = Date.now();
    // Per second since `start`: entries stored, entries refused, requests.
    const stored: number[] = [];
    const refused: number[] = [];
    const requests: number[] = [];
    const bump = (counts: number[], second: number): void => void (counts[second] = (counts[second] ?? 0) + 1);
    kinesis.script((call) => {
      const second = Math.floor((Date.now() - start) / 1000);
      bump(requests, second);
      return call.entries.map(() => {
        if ((stored[second] ?? 0) >= limit) {
          bump(refused, second);
          return PTE;
        }
        bump(stored, second);
        return 'ok';
      });
    });
    const maxBufferedRecords = 2_000;
    const maxBufferedBytes = 24 * 1024; // about what 2,000 of these records take: both bounds bind
    const producer = createProducer(kinesis.client, {
      streamName: 'clicks',
      lingerMs: 50,
      maxBufferedRecords,
      maxBufferedBytes,
      whenFull: 'wait',
      recordTtlMs: Infinity,
      // A ceiling three times the fake's limit: the producer has to learn the limit from throttles
      // (as when another writer shares the shard) instead of being held under it by its default.
      shardRate: { recordsPerSecond: 3 * limit },
    });
    void producer.put({ partitionKey: 'warm-up', data: 'x' });
    await advanceUntil(kinesis, producer, () => producer.stats().stored === 1);
    stored.length = refused.length = requests.length = 0;
    start = Date.now();

    const total = 10_000;
    const peak = { bufferedRecords: 0, bufferedBytes: 0, waitingRecords: 0 };
    const sample = (): void => {
      const stats = producer.stats();
      peak.bufferedRecords = Math.max(peak.bufferedRecords, stats.bufferedRecords);
      peak.bufferedBytes = Math.max(peak.bufferedBytes, stats.bufferedBytes);
      peak.waitingRecords = Math.max(peak.waitingRecords, stats.waitingRecords);
    };
    const results: Promise<unknown>[] = [];
    let settled = 0;
    let lastStoredAt = 0;
    // The feeder puts only when the producer has room, as a send() loop with backpressure would.
    const feeding = (async () => {
      for (let i = 0; i < total; i++) {
        await producer.waitForCapacity();
        const result = producer.put({ partitionKey: `user-${i}`, data: `${i}` });
        results.push(result);
        void result.then(
          () => void (lastStoredAt = Date.now() - start),
          () => undefined, // counted below, from `results`
        ).finally(() => settled++);
        sample();
      }
    })();
    for (let i = 0; i < 5_000 && settled < total; i++) {
      await quiesce(kinesis, () => producer.stats().requests);
      sample();
      await vi.advanceTimersByTimeAsync(20);
      sample();
    }
    await feeding;

    // Every record stored, once.
    expect(settled).toBe(total);
    expect((await Promise.allSettled(results)).filter((result) => result.status === 'rejected')).toEqual([]);
    expect(producer.stats()).toMatchObject({ stored: total + 1, failed: 0, bufferedRecords: 0, waitingRecords: 0 });
    const texts = kinesis.stored.map((entry) => entry.text);
    expect(new Set(texts).size).toBe(texts.length);

    // Memory: the buffer filled up to its bounds and never past them. A record waits for room only
    // when it does not fit in the bytes left: the feeder saw room for one more record, not for its
    // size, so at most its one record waited at a time.
    expect(peak.bufferedRecords).toBeGreaterThanOrEqual(maxBufferedRecords * 0.9);
    expect(peak.bufferedRecords).toBeLessThanOrEqual(maxBufferedRecords);
    expect(peak.bufferedBytes).toBeLessThanOrEqual(maxBufferedBytes);
    expect(peak.waitingRecords).toBeLessThanOrEqual(1);

    // No tight loop: about 10 requests per second (a tenth of a second's allowance each), throttled
    // seconds included.
    expect(Math.max(...Array.from(requests, (count) => count ?? 0))).toBeLessThanOrEqual(20);

    // The first second overshoots (the limiter starts at its 3,000/s ceiling); then the rate
    // settles into a sawtooth under the limit (halved on a throttle, a tenth of the ceiling back per
    // quiet second). From second 5 to the last full second: at least 70% of the limit stored, and
    // few entries refused.
    expect(refused[0]).toBeGreaterThan(limit);
    const lastFull = Math.floor(lastStoredAt / 1000) - 1;
    expect(lastFull).toBeGreaterThanOrEqual(8); // 10,000 records at 1,000/s take 10 seconds at least
    const steady = { stored: 0, refused: 0, seconds: 0 };
    for (let second = 5; second <= lastFull; second++) {
      steady.stored += stored[second] ?? 0;
      steady.refused += refused[second] ?? 0;
      steady.seconds++;
    }
    expect(steady.stored / steady.seconds).toBeGreaterThanOrEqual(0.7 * limit);
    expect(steady.refused / (steady.stored + steady.refused)).toBeLessThan(0.1);
    // Overall, learning included, at least 60% of the limit.
    expect(lastStoredAt).toBeLessThan((total / limit / 0.6) * 1000);
  });

  it('sends a healthy shard its records in batches, not one request per record, while a throttled shard fills the buffer', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    // Two shards behind one buffer: shard 0 takes 100 records/s, shard 1 takes 1,000/s. Shard 0's
    // backlog fills the buffer; capacity then frees a record or a few at a time (as shard 0 drains),
    // and shard 1's records arrive that way. They must still go out gathered for the linger time,
    // not each in a request of its own the moment it arrives.
    const limits: Record<string, number> = { 'shardId-000000000000': 100, 'shardId-000000000001': 1_000 };
    const kinesis = createFakeKinesis({ shards: 2 });
    let start = Date.now();
    const used = new Map<string, { second: number; count: number }>();
    const requests: number[] = [];
    kinesis.script((call) => {
      const second = Math.floor((Date.now() - start) / 1000);
      requests[second] = (requests[second] ?? 0) + 1;
      return call.entries.map((entry) => {
        const window = used.get(entry.shardId);
        const state = window && window.second === second ? window : { second, count: 0 };
        used.set(entry.shardId, state);
        if (state.count >= limits[entry.shardId]!) return PTE;
        state.count++;
        return 'ok';
      });
    });
    const lingerMs = 50;
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs, maxBufferedRecords: 500, whenFull: 'wait', recordTtlMs: Infinity });
    void producer.put({ partitionKey: 'warm-up', data: 'x' });
    for (let i = 0; i < 100_000 && producer.stats().shards === undefined; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(producer.stats().shards).toBe(2);
    await advanceUntil(kinesis, producer, () => producer.stats().stored === 1);
    requests.length = 0;
    start = Date.now();

    // Records alternate between the two shards; the feeder waits for room, as a send() loop would.
    const slow = keysOnShard(kinesis.shards, 'shardId-000000000000', 50, 'slow-');
    const fast = keysOnShard(kinesis.shards, 'shardId-000000000001', 50, 'fast-');
    const total = 2_000;
    let settled = 0;
    const feeding = (async () => {
      for (let i = 0; i < total; i++) {
        await producer.waitForCapacity();
        const key = i % 2 === 0 ? slow[(i / 2) % 50]! : fast[((i - 1) / 2) % 50]!;
        void producer.put({ partitionKey: key, data: `${i}` }).finally(() => settled++);
      }
    })();
    for (let i = 0; i < 5_000 && settled < total; i++) {
      await quiesce(kinesis, () => producer.stats().requests);
      await vi.advanceTimersByTimeAsync(20);
    }
    await feeding;

    expect(settled).toBe(total);
    expect(producer.stats()).toMatchObject({ stored: total + 1, failed: 0 });
    // 1,000 records for shard 0 at 100/s take 10 s. The request rate stays that of batches: the
    // healthy shard at most one request per linger time (20/s), the throttled one about ten a second
    // (a tenth of a second's allowance each). Sent on arrival, the trickle made 40 to 50 a second
    // here, in 20 ms steps of fake time (and hundreds in real time).
    const seconds = requests.length;
    expect(seconds).toBeGreaterThanOrEqual(9);
    expect(Math.max(...Array.from(requests, (count) => count ?? 0))).toBeLessThanOrEqual(1000 / lingerMs + 10);
    const entries = kinesis.calls.reduce((sum, call) => sum + call.entries.length, 0);
    expect(kinesis.calls.length).toBeLessThan(entries / 4);
  });
});

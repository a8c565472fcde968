// The producer's bounded buffer: records and bytes held (queued, awaiting a retry, in flight) never
// exceed maxBufferedRecords / maxBufferedBytes, also while the service is down; the whenFull policy
// decides what put() does meanwhile. These tests assert the policy and the counters, not timings.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createProducer, type KinesisProducerError, type Producer } from '../../src/producer/index.ts';
import { awsError } from '../support/fake-fetch.ts';
import { createFakeKinesis, quiesce, type FakeKinesis } from './producer-fake-kinesis.ts';

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'stored';
  } catch (error) {
    return (error as KinesisProducerError).reason;
  }
}

/**
 * Advances fake time in steps until `done()`, letting requests finish their real I/O before each
 * step and checking `invariant` after each.
 */
async function drive(kinesis: FakeKinesis, producer: Producer, done: () => boolean, invariant: () => void, stepMs = 20, maxSteps = 5_000): Promise<void> {
  for (let i = 0; i < maxSteps && !done(); i++) {
    await quiesce(kinesis, () => producer.stats().requests);
    invariant();
    await vi.advanceTimersByTimeAsync(stepMs);
  }
  await quiesce(kinesis, () => producer.stats().requests);
  invariant();
  if (!done()) throw new Error('drive: condition still false');
}

/** `steps` steps of fake time, as {@link drive}. */
async function steps(kinesis: FakeKinesis, producer: Producer, count: number, invariant: () => void, stepMs = 50): Promise<void> {
  for (let step = 0; step < count; step++) {
    await quiesce(kinesis, () => producer.stats().requests);
    invariant();
    await vi.advanceTimersByTimeAsync(stepMs);
  }
}

function bounded(producer: Producer, records: number, bytes: number): () => void {
  return () => {
    const stats = producer.stats();
    expect(stats.bufferedRecords).toBeLessThanOrEqual(records);
    expect(stats.bufferedBytes).toBeLessThanOrEqual(bytes);
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('producer buffer', () => {
  it("whenFull 'reject': refuses new records while the service is down, and stays within its bounds", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const kinesis = createFakeKinesis({ client: { retry: { maxAttempts: 1 } } });
    let down = true;
    kinesis.script(() => (down ? awsError(503, 'ServiceUnavailable') : undefined));
    const producer = createProducer(kinesis.client, {
      streamName: 'clicks',
      lingerMs: 10,
      maxBufferedRecords: 20,
      maxBufferedBytes: 10_000,
      recordTtlMs: 60_000,
      predictShards: false,
    });
    const invariant = bounded(producer, 20, 10_000);
    const outcomes: Promise<string>[] = [];
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 10; i++) outcomes.push(outcome(producer.put({ partitionKey: `k${i}`, data: `round ${round} record ${i}` })));
      await steps(kinesis, producer, 20, invariant);
    }
    expect(producer.hasCapacity).toBe(false);
    expect(producer.stats()).toMatchObject({ bufferedRecords: 20, waitingRecords: 0 });
    expect(kinesis.calls.length).toBeGreaterThan(3);

    down = false;
    await drive(kinesis, producer, () => producer.stats().bufferedRecords === 0, invariant);
    const reasons = await Promise.all(outcomes);
    expect(reasons.filter((r) => r === 'stored')).toHaveLength(20);
    expect(reasons.filter((r) => r === 'buffer-full')).toHaveLength(80);
    expect(producer.stats()).toMatchObject({ accepted: 20, stored: 20, failedByReason: { 'buffer-full': 80 } });
  });

  it("whenFull 'wait': holds new records in put order until there is room, within the bounds", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const kinesis = createFakeKinesis({ client: { retry: { maxAttempts: 1 } } });
    let down = true;
    kinesis.script(() => (down ? awsError(500, 'InternalFailure') : undefined));
    const producer = createProducer(kinesis.client, {
      streamName: 'clicks',
      lingerMs: 10,
      maxBufferedRecords: 10,
      whenFull: 'wait',
      ordering: 'per-key',
      predictShards: false,
    });
    const invariant = bounded(producer, 10, Number.POSITIVE_INFINITY);
    const puts = Array.from({ length: 35 }, (_, i) => producer.put({ partitionKey: 'one-key', data: String(i) }));
    let capacity = false;
    void producer.waitForCapacity().then(() => (capacity = true));
    await steps(kinesis, producer, 50, invariant);
    expect(producer.stats()).toMatchObject({ bufferedRecords: 10, waitingRecords: 25, stored: 0 });
    expect(capacity).toBe(false);

    down = false;
    await drive(kinesis, producer, () => producer.stats().stored === 35, invariant);
    await Promise.all(puts);
    expect(capacity).toBe(true);
    expect(kinesis.stored.map((entry) => entry.text)).toEqual(Array.from({ length: 35 }, (_, i) => String(i)));
  });

  it('counts bytes as well as records, including records awaiting a retry', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const kinesis = createFakeKinesis();
    let throttle = true;
    kinesis.script((call) => (throttle ? call.entries.map(() => 'ProvisionedThroughputExceededException') : undefined));
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0, maxBufferedBytes: 1_000, predictShards: false });
    const invariant = bounded(producer, Number.POSITIVE_INFINITY, 1_000);
    const data = 'x'.repeat(99); // 1-byte key + 99 = 100 bytes
    const outcomes = Array.from({ length: 15 }, (_, i) => outcome(producer.put({ partitionKey: String(i % 10), data })));
    await drive(kinesis, producer, () => producer.stats().retried >= 10, invariant);
    expect(producer.stats()).toMatchObject({ bufferedBytes: 1_000, bufferedRecords: 10 });
    expect(await outcome(producer.put({ partitionKey: 'k', data: 'more' }))).toBe('buffer-full');

    throttle = false;
    await drive(kinesis, producer, () => producer.stats().bufferedRecords === 0, invariant);
    expect((await Promise.all(outcomes)).sort()).toEqual([...Array(5).fill('buffer-full'), ...Array(10).fill('stored')]);
  });

  it('fails records that wait for room past their time to live as expired', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const kinesis = createFakeKinesis({ client: { retry: { maxAttempts: 1 } } });
    kinesis.script(() => awsError(503, 'ServiceUnavailable'));
    const producer = createProducer(kinesis.client, {
      streamName: 'clicks',
      maxBufferedRecords: 2,
      whenFull: 'wait',
      recordTtlMs: 1_000,
      predictShards: false,
    });
    const results = Array.from({ length: 5 }, (_, i) => outcome(producer.put({ partitionKey: 'k', data: String(i) })));
    let settled = 0;
    for (const result of results) void result.then(() => settled++);
    await drive(kinesis, producer, () => settled === 5, () => {});

    expect(await Promise.all(results)).toEqual(Array(5).fill('expired'));
    expect(producer.stats()).toMatchObject({ bufferedRecords: 0, waitingRecords: 0, failedByReason: { expired: 5 } });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a flush waits for records held by the wait policy too', async () => {
    const kinesis = createFakeKinesis();
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 50, maxBufferedRecords: 3, whenFull: 'wait' });
    for (let i = 0; i < 10; i++) producer.send({ partitionKey: 'k', data: String(i) });
    expect(producer.stats().waitingRecords).toBe(7);
    await expect(producer.flush()).resolves.toEqual({ stored: 10, failed: 0 });
    expect(kinesis.stored).toHaveLength(10);
  });
});

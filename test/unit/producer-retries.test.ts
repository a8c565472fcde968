// Producer resubmission: partial failures (HTTP 200 with FailedRecordCount > 0), answers whose
// Records count differs from the request, whole-request faults after the client's own retries,
// time to live, attempt limits and per-key ordering. Response shapes: API_PutRecords
// (PutRecordsResultEntry: ErrorCode is ProvisionedThroughputExceededException or InternalFailure,
// or a KMS fault), errors from test/support/fake-fetch.ts.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isKinesisServiceError } from '../../src/errors.ts';
import { createProducer, type KinesisProducerError, type ProducerRetryEvent } from '../../src/producer/index.ts';
import { awsError, json, networkError } from '../support/fake-fetch.ts';
import { advanceBy, advanceUntil, createFakeKinesis, settle } from './producer-fake-kinesis.ts';

const FAST = { lingerMs: 0, backoff: { baseDelayMs: 1, throttlingBaseDelayMs: 1, maxDelayMs: 5 }, random: () => 0.5 } as const;
const PTE = 'ProvisionedThroughputExceededException';

async function outcome(promise: Promise<unknown>): Promise<KinesisProducerError | 'stored'> {
  try {
    await promise;
    return 'stored';
  } catch (error) {
    return error as KinesisProducerError;
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe('producer partial failures', () => {
  it('re-sends only the failed entries, in one request, and never the stored ones', async () => {
    const kinesis = createFakeKinesis();
    kinesis.script((call) => (call.index === 0 ? ['ok', PTE, 'ok', 'InternalFailure'] : undefined));
    const retries: ProducerRetryEvent[] = [];
    const producer = createProducer(kinesis.client, { streamName: 'clicks', ...FAST, onRetry: (event) => retries.push(event) });
    const results = await Promise.all(['r0', 'r1', 'r2', 'r3'].map((data, i) => producer.put({ partitionKey: `k${i}`, data })));

    expect(kinesis.calls.map((call) => call.entries.map((entry) => entry.text))).toEqual([
      ['r0', 'r1', 'r2', 'r3'],
      ['r1', 'r3'],
    ]);
    expect(kinesis.stored.map((entry) => entry.text).sort()).toEqual(['r0', 'r1', 'r2', 'r3']);
    expect(results.map((result) => result.attempts)).toEqual([1, 2, 1, 2]);
    expect(retries).toEqual([{ reason: 'partial-failure', records: 2, codes: { [PTE]: 1, InternalFailure: 1 } }]);
    expect(producer.stats()).toMatchObject({ stored: 4, retried: 2, requests: 2, throttledRequests: 1 });
  });

  it('keeps re-sending failed entries until they are stored', async () => {
    const kinesis = createFakeKinesis({ shards: 4 });
    // Every request fails every other entry, for five requests.
    kinesis.script((call) => (call.index < 5 ? call.entries.map((_, i) => (i % 2 === 0 ? PTE : 'ok')) : undefined));
    const producer = createProducer(kinesis.client, { streamName: 'clicks', ...FAST });
    const puts = Array.from({ length: 64 }, (_, i) => producer.put({ partitionKey: `k${i}`, data: `r${i}` }));
    await Promise.all(puts);

    const texts = kinesis.stored.map((entry) => entry.text);
    expect(texts).toHaveLength(64);
    expect(new Set(texts).size).toBe(64);
  });

  it('rejects entries with a fault that retrying cannot fix, with the code, and stores the rest', async () => {
    const kinesis = createFakeKinesis();
    kinesis.script((call) => (call.index === 0 ? ['ok', 'KMSAccessDeniedException', 'ok'] : undefined));
    const producer = createProducer(kinesis.client, { streamName: 'clicks', ...FAST });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((data) => outcome(producer.put({ partitionKey: data, data }))));

    expect([a, c]).toEqual(['stored', 'stored']);
    expect(b).toMatchObject({ name: 'KinesisProducerError', reason: 'rejected', code: 'KMSAccessDeniedException', attempts: 1 });
    expect((b as KinesisProducerError).cause).toMatchObject({ code: 'KMSAccessDeniedException' });
    expect(kinesis.calls).toHaveLength(1);
  });

  it('treats an answer with a different Records count as unknown and re-sends every record', async () => {
    const kinesis = createFakeKinesis();
    kinesis.script((call) =>
      call.index === 0
        ? json({ FailedRecordCount: 0, Records: [{ ShardId: 'shardId-000000000000', SequenceNumber: '1' }, { ShardId: 'shardId-000000000000', SequenceNumber: '2' }] })
        : undefined,
    );
    const retries: ProducerRetryEvent[] = [];
    const producer = createProducer(kinesis.client, { streamName: 'clicks', ...FAST, onRetry: (event) => retries.push(event) });
    const results = await Promise.all(['a', 'b', 'c'].map((data) => producer.put({ partitionKey: data, data })));

    expect(kinesis.calls.map((call) => call.entries.map((entry) => entry.text))).toEqual([
      ['a', 'b', 'c'],
      ['a', 'b', 'c'],
    ]);
    // Results come from the answer that matched, never from the mismatched one by index.
    expect(results.map((result) => result.sequenceNumber)).toEqual(kinesis.stored.map((entry) => entry.sequenceNumber));
    expect(results.every((result) => result.attempts === 2)).toBe(true);
    expect(retries[0]).toMatchObject({ reason: 'unknown-outcome', records: 3 });
  });

  it('re-sends an entry that has neither an ErrorCode nor a SequenceNumber', async () => {
    const kinesis = createFakeKinesis();
    kinesis.script((call) => (call.index === 0 ? json({ FailedRecordCount: 0, Records: [{}] }) : undefined));
    const producer = createProducer(kinesis.client, { streamName: 'clicks', ...FAST });
    await expect(producer.put({ partitionKey: 'k', data: 'x' })).resolves.toMatchObject({ attempts: 2 });
  });
});

describe('producer whole-request failures', () => {
  it('requeues the records when the client gives up on a retryable fault', async () => {
    const kinesis = createFakeKinesis({ client: { retry: { maxAttempts: 2, baseDelayMs: 1 } } });
    kinesis.script((call) => (call.index < 3 ? awsError(503, 'ServiceUnavailable') : undefined));
    const retries: ProducerRetryEvent[] = [];
    const producer = createProducer(kinesis.client, { streamName: 'clicks', ...FAST, onRetry: (event) => retries.push(event) });
    const result = await producer.put({ partitionKey: 'k', data: 'x' });

    // Attempts 1-2 in the client, producer retry, attempts 3-4 in the client (3 fails), then stored.
    expect(kinesis.calls).toHaveLength(4);
    expect(result.attempts).toBe(2);
    expect(retries[0]).toMatchObject({ reason: 'request-failed', records: 1, codes: { ServiceUnavailable: 1 } });
    expect(isKinesisServiceError(retries[0]!.error)).toBe(true);
  });

  it('requeues after network errors (the outcome is unknown: at least once)', async () => {
    const kinesis = createFakeKinesis({ client: { retry: { maxAttempts: 1 } } });
    kinesis.script((call) => (call.index === 0 ? networkError() : undefined));
    const producer = createProducer(kinesis.client, { streamName: 'clicks', ...FAST });
    await expect(producer.put({ partitionKey: 'k', data: 'x' })).resolves.toMatchObject({ attempts: 2 });
  });

  it('rejects every record of a request refused with a fault retrying cannot fix', async () => {
    const kinesis = createFakeKinesis();
    kinesis.script(() => awsError(400, 'AccessDeniedException', 'User is not authorized to perform: kinesis:PutRecords'));
    const producer = createProducer(kinesis.client, { streamName: 'clicks', ...FAST });
    const results = await Promise.all(['a', 'b'].map((data) => outcome(producer.put({ partitionKey: data, data }))));

    for (const result of results) {
      expect(result).toMatchObject({ reason: 'rejected', code: 'AccessDeniedException', attempts: 1 });
      expect((result as KinesisProducerError).cause).toMatchObject({ name: 'KinesisServiceError', code: 'AccessDeniedException' });
    }
    expect(kinesis.calls).toHaveLength(1);
    expect(producer.stats()).toMatchObject({ bufferedRecords: 0, failed: 2, failedByReason: { rejected: 2 } });
  });

  it('keeps retrying when the client reports its retry quota exhausted', async () => {
    const kinesis = createFakeKinesis({ client: { retry: { quota: 10, baseDelayMs: 1 } } });
    kinesis.script((call) => (call.index < 4 ? awsError(500, 'InternalFailure') : undefined));
    const producer = createProducer(kinesis.client, { streamName: 'clicks', ...FAST });
    await expect(producer.put({ partitionKey: 'k', data: 'x' })).resolves.toMatchObject({ sequenceNumber: expect.any(String) });
  });
});

describe('producer time to live and attempt limit', () => {
  it('fails records not stored within recordTtlMs as expired, and sends them no more', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const kinesis = createFakeKinesis();
    kinesis.script((call) => call.entries.map(() => PTE));
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0, recordTtlMs: 2_000 });
    const results: (KinesisProducerError | 'stored')[] = [];
    for (let i = 0; i < 5; i++) void outcome(producer.put({ partitionKey: `k${i}`, data: `${i}` })).then((r) => results.push(r));
    await advanceUntil(kinesis, producer, () => results.length === 5);
    const requestsAtExpiry = kinesis.calls.length;
    await advanceBy(kinesis, producer, 10_000, 100);

    for (const result of results) {
      expect(result).toMatchObject({ reason: 'expired', code: PTE });
      expect((result as KinesisProducerError).attempts).toBeGreaterThan(0);
    }
    expect(kinesis.calls.length).toBe(requestsAtExpiry);
    expect(producer.stats()).toMatchObject({ bufferedRecords: 0, failedByReason: { expired: 5 } });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('expires queued records on time even while a request hangs', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const kinesis = createFakeKinesis({ client: { timeoutMs: 60_000 } });
    kinesis.script(() => new Promise<never>(() => {}));
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0, maxInFlight: 1, maxBatchRecords: 1, recordTtlMs: 1_000, predictShards: false });
    const first = outcome(producer.put({ partitionKey: 'k', data: 'first' }));
    let second: KinesisProducerError | 'stored' | undefined;
    void outcome(producer.put({ partitionKey: 'k', data: 'second' })).then((r) => (second = r));
    const start = Date.now();
    await advanceUntil(kinesis, producer, () => kinesis.calls.length === 1, 1);
    await advanceUntil(kinesis, producer, () => second !== undefined, 50);

    expect(second).toMatchObject({ reason: 'expired', attempts: 0 });
    expect(Date.now() - start).toBeLessThanOrEqual(1_050);
    expect(kinesis.calls).toHaveLength(1);
    expect(producer.stats()).toMatchObject({ inFlightRecords: 1, bufferedRecords: 1 });
    void first;
  });

  it('fails a record after maxAttempts requests with retries-exhausted', async () => {
    const kinesis = createFakeKinesis();
    kinesis.script((call) => call.entries.map(() => 'InternalFailure'));
    const producer = createProducer(kinesis.client, { streamName: 'clicks', ...FAST, maxAttempts: 3 });
    const result = await outcome(producer.put({ partitionKey: 'k', data: 'x' }));

    expect(result).toMatchObject({ reason: 'retries-exhausted', code: 'InternalFailure', attempts: 3 });
    expect(kinesis.calls).toHaveLength(3);
  });
});

describe('producer ordering', () => {
  it("per-key: a key never has two requests in flight, nor two records in one request", async () => {
    const kinesis = createFakeKinesis({ shards: 2 });
    const inFlight = new Map<string, number>();
    let violations = 0;
    kinesis.script(async (call) => {
      const keys = call.entries.map((entry) => entry.partitionKey);
      if (new Set(keys).size !== keys.length) violations++;
      for (const key of keys) {
        if (inFlight.has(key)) violations++;
        inFlight.set(key, 1);
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
      for (const key of keys) inFlight.delete(key);
      // Throttle a third of the entries of the first requests (a steady storm would slow the
      // shard's limiter down to its floor, which is the limiter's job, not this test's).
      return call.index < 20 ? call.entries.map((_, i) => (i % 3 === 0 ? PTE : 'ok')) : undefined;
    });
    const producer = createProducer(kinesis.client, { streamName: 'clicks', ...FAST, ordering: 'per-key', maxInFlight: 4 });
    const puts = Array.from({ length: 300 }, (_, i) => producer.put({ partitionKey: `k${i % 7}`, data: String(i) }));
    const results = await Promise.all(puts);

    expect(violations).toBe(0);
    for (let k = 0; k < 7; k++) {
      const stored = kinesis.stored.filter((entry) => entry.partitionKey === `k${k}`).map((entry) => Number(entry.text));
      expect(stored).toEqual([...stored].sort((a, b) => a - b));
      const sequence = results.filter((_, i) => i % 7 === k).map((result) => BigInt(result.sequenceNumber));
      expect(sequence.every((value, i) => i === 0 || value > sequence[i - 1]!)).toBe(true);
    }
  });

  it("none: a retried record goes out before newer records of its key, in the next request", async () => {
    const kinesis = createFakeKinesis();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    kinesis.script(async (call) => {
      if (call.index > 0) return undefined;
      await held; // answer the first request only once newer records are queued behind it
      return ['ok', PTE, 'ok'];
    });
    const producer = createProducer(kinesis.client, { streamName: 'clicks', ...FAST, maxInFlight: 1 });
    const first = ['0', '1', '2'].map((data) => producer.put({ partitionKey: 'k', data }));
    while (kinesis.calls.length === 0) await settle(1);
    const later = ['3', '4'].map((data) => producer.put({ partitionKey: 'k', data }));
    await settle(1);
    release();
    await Promise.all([...first, ...later]);

    // Stored order: 0, 2, then 1 ahead of 3 and 4 (documented: 'none' can reorder across retries).
    expect(kinesis.calls.map((call) => call.entries.map((entry) => entry.text))).toEqual([['0', '1', '2'], ['1', '3', '4']]);
    expect(kinesis.stored.map((entry) => entry.text)).toEqual(['0', '2', '1', '3', '4']);
  });
});

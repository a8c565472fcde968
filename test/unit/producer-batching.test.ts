// Producer batching, validation at put(), linger, flush and close, against the in-memory Kinesis of
// producer-fake-kinesis.ts. Limits: API_PutRecords (500 records, 5 MiB counted as partition keys +
// data before base64, 1 MiB per record).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KinesisError } from '../../src/errors.ts';
import { createProducer, isKinesisProducerError, KinesisProducerError, type ProducerRecord, type PutResult } from '../../src/producer/index.ts';
import { advanceUntil, createFakeKinesis, settle } from './producer-fake-kinesis.ts';

const MiB = 1024 * 1024;

async function reason(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(isKinesisProducerError(error)).toBe(true);
    return (error as KinesisProducerError).reason;
  }
  return 'stored';
}

afterEach(() => {
  vi.useRealTimers();
});

describe('producer batching', () => {
  it('splits 501 records into requests of 500 and 1', async () => {
    const kinesis = createFakeKinesis();
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0 });
    const puts = Array.from({ length: 501 }, (_, i) => producer.put({ partitionKey: `k${i}`, data: `r${i}` }));
    await Promise.all(puts);

    // Which request goes first depends on timers on a loaded machine; the cut does not.
    expect(kinesis.calls.map((call) => call.entries.length).sort((a, b) => a - b)).toEqual([1, 500]);
    expect(kinesis.stored.map((entry) => entry.text).sort()).toEqual(Array.from({ length: 501 }, (_, i) => `r${i}`).sort());
  });

  it('cuts requests by bytes: never more than the request limit, keys counted in UTF-8', async () => {
    // The client's limits scaled down 1024 times (1 KiB records, 5 KiB requests): the same rule as
    // 1 MiB / 5 MiB, without pushing megabytes through base64 in a unit test.
    const kinesis = createFakeKinesis({ client: { limits: { maxRecordBytes: 1024, maxRequestBytes: 5 * 1024 } } });
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0 });
    // 11 records of 1 KiB minus a 4-byte key ("é" is 2 bytes in UTF-8): exactly the record limit each.
    const results = await Promise.all(Array.from({ length: 11 }, () => producer.put({ partitionKey: 'éé', data: new Uint8Array(1024 - 4) })));

    expect(results).toHaveLength(11);
    const sizes = kinesis.calls.map((call) => call.entries.reduce((sum, entry) => sum + Buffer.byteLength(entry.partitionKey) + entry.data.length, 0));
    // The three requests are in flight together: which one the fake sees first is up to timing; the cut is not.
    expect(sizes.sort((a, b) => b - a)).toEqual([5 * 1024, 5 * 1024, 1024]);
    expect(await producer.put({ partitionKey: 'éé', data: new Uint8Array(1024 - 3) }).catch((error: KinesisProducerError) => error.reason)).toBe('too-large');
  });

  it('respects maxBatchRecords and maxBatchBytes', async () => {
    const kinesis = createFakeKinesis();
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0, maxBatchRecords: 7, maxBatchBytes: 100 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => producer.put({ partitionKey: 'k', data: `${i}`.padStart(9, '0') })));

    // 10 bytes per record: 7 by count first, then bytes never exceed 100.
    for (const call of kinesis.calls) {
      expect(call.entries.length).toBeLessThanOrEqual(7);
      expect(call.entries.reduce((sum, entry) => sum + 1 + entry.data.length, 0)).toBeLessThanOrEqual(100);
    }
    expect(kinesis.stored).toHaveLength(20);
  });

  it('returns the shard and sequence number the service assigned', async () => {
    const kinesis = createFakeKinesis({ shards: 4 });
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0 });
    const results = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((key) => producer.put({ partitionKey: key, data: key })));

    results.forEach((result, i) => {
      const stored = kinesis.stored.find((entry) => entry.text === ['a', 'b', 'c', 'd', 'e'][i])!;
      expect(result).toEqual({ shardId: stored.shardId, sequenceNumber: stored.sequenceNumber, attempts: 1 });
    });
  });

  it('keeps the records of one partition key in put order within a request', async () => {
    const kinesis = createFakeKinesis({ shards: 2 });
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 5 });
    const keys = ['x', 'y', 'z'];
    await Promise.all(Array.from({ length: 300 }, (_, i) => producer.put({ partitionKey: keys[i % 3], data: String(i) })));

    for (const key of keys) {
      const sent = kinesis.calls.flatMap((call) => call.entries.filter((entry) => entry.partitionKey === key).map((entry) => Number(entry.text)));
      expect(sent).toEqual([...sent].sort((a, b) => a - b));
    }
  });

  it('sends strings as UTF-8 and copies bytes at put()', async () => {
    const kinesis = createFakeKinesis();
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0 });
    const bytes = new Uint8Array([0x00, 0xff, 0x10]);
    const first = producer.put({ partitionKey: 'k', data: bytes });
    bytes[0] = 0x42;
    const second = producer.put({ partitionKey: 'k', data: 'héllo 😀' });
    await Promise.all([first, second]);

    expect([...kinesis.stored[0]!.data]).toEqual([0x00, 0xff, 0x10]);
    expect(kinesis.calls[0]!.request.json.Records[0].Data).toBe('AP8Q');
    expect(kinesis.stored[1]!.text).toBe('héllo 😀');
  });

  it('uses the partitionKey option, else a random key per record', async () => {
    const kinesis = createFakeKinesis();
    const keyed = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0, partitionKey: (record) => `pk-${String(record.data)}` });
    await keyed.put({ data: 'a' });
    await keyed.put({ data: 'b', partitionKey: 'own' });
    let n = 0;
    const random = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0, random: () => (++n % 1000) / 1000 });
    await Promise.all([random.put({ data: 'c' }), random.put({ data: 'd' })]);

    const keys = kinesis.stored.map((entry) => entry.partitionKey);
    expect(keys.slice(0, 2)).toEqual(['pk-a', 'own']);
    expect(keys[2]).not.toBe(keys[3]);
    expect(keys[2]).toMatch(/^[0-9a-z]{1,12}$/);
  });

  it('names the stream by ARN when given one', async () => {
    const kinesis = createFakeKinesis();
    const arn = 'arn:aws:kinesis:us-east-1:123456789012:stream/clicks';
    const producer = createProducer(kinesis.client, { streamARN: arn, lingerMs: 0, predictShards: false });
    await producer.put({ partitionKey: 'k', data: 'x' });

    expect(kinesis.calls[0]!.request.json).toMatchObject({ StreamARN: arn });
    expect(kinesis.calls[0]!.request.json.StreamName).toBeUndefined();
  });

  it('refuses a bad stream name or options when created', () => {
    const { client } = createFakeKinesis();
    expect(() => createProducer(client, {})).toThrow(TypeError);
    expect(() => createProducer(client, { streamName: 'bad name!' })).toThrow(/StreamName/);
    expect(() => createProducer(client, { streamName: 's', maxBatchRecords: 501 })).toThrow(RangeError);
    expect(() => createProducer(client, { streamName: 's', maxBatchBytes: 6 * MiB })).toThrow(RangeError);
    expect(() => createProducer(client, { streamName: 's', maxInFlight: 0 })).toThrow(RangeError);
    expect(() => createProducer(client, { streamName: 's', aggregation: { maxBytes: 2 * MiB } })).toThrow(RangeError);
    expect(() => createProducer(client, { streamName: 's', whenFull: 'drop' as never })).toThrow(RangeError);
  });
});

describe('producer validation at put()', () => {
  const cases: [string, ProducerRecord, string][] = [
    ['an empty partition key', { partitionKey: '', data: 'x' }, 'invalid'],
    ['a 257-character partition key', { partitionKey: 'a'.repeat(257), data: 'x' }, 'invalid'],
    ['a lone surrogate in the key', { partitionKey: '\uD800', data: 'x' }, 'invalid'],
    ['an explicit hash key with a leading zero', { partitionKey: 'k', explicitHashKey: '01', data: 'x' }, 'invalid'],
    ['an explicit hash key of 2^128', { partitionKey: 'k', explicitHashKey: String(2n ** 128n), data: 'x' }, 'invalid'],
    ['data that is a number', { partitionKey: 'k', data: 5 as never }, 'invalid'],
    ['data that is an object', { partitionKey: 'k', data: {} as never }, 'invalid'],
    ['key + data one byte over 1 MiB', { partitionKey: 'kk', data: new Uint8Array(MiB - 1) }, 'too-large'],
    ['a 2-byte key counted in UTF-8 over the limit', { partitionKey: 'é', data: new Uint8Array(MiB - 1) }, 'too-large'],
  ];

  it.each(cases)('refuses %s without buffering it', async (_name, record, expected) => {
    const kinesis = createFakeKinesis();
    const failures: KinesisProducerError[] = [];
    const producer = createProducer(kinesis.client, { streamName: 'clicks', onFailure: (error) => failures.push(error) });

    expect(await reason(producer.put(record))).toBe(expected);
    expect(producer.stats()).toMatchObject({ bufferedRecords: 0, bufferedBytes: 0, accepted: 0, failed: 1 });
    // toBe, not a deep match: deep-comparing 1 MiB arrays takes seconds.
    expect(failures[0]!.record).toBe(record);
    expect(failures[0]).toMatchObject({ reason: expected, attempts: 0 });
    expect(failures[0]!.message).toMatch(/^Producer: /);
  });

  // Data that is neither a string nor bytes: a typed error that names `data` and the rule, never
  // the value stringified ("[object Object]"), and no request.
  const badData: [string, unknown][] = [
    ['null', null],
    ['undefined', undefined],
    ['a number', 5],
    ['a plain object', { a: 1 }],
    ['an array', [1, 2, 3]],
    ['a boolean', true],
  ];

  it.each(badData)('put() refuses data that is %s with a typed error and sends nothing', async (_name, data) => {
    const kinesis = createFakeKinesis();
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0 });

    const error = await producer.put({ partitionKey: 'k', data: data as never }).then(
      () => undefined,
      (rejection: unknown) => rejection,
    );
    expect(error).toBeInstanceOf(KinesisProducerError);
    expect(error).toBeInstanceOf(KinesisError);
    expect(error).toMatchObject({ reason: 'invalid', attempts: 0 });
    const message = (error as Error).message;
    expect(message).toContain('data must be a Uint8Array or a string');
    expect(message).not.toContain('[object Object]');
    // A good record after it is sent alone: the refused one never reached the fake.
    await producer.put({ partitionKey: 'k', data: 'good' });
    await producer.flush();
    expect(kinesis.calls.map((call) => call.entries.map((entry) => entry.text))).toEqual([['good']]);
    expect(producer.stats()).toMatchObject({ accepted: 1, stored: 1, failed: 1 });
  });

  it.each(badData)('send() reports data that is %s to onFailure with a typed error and sends nothing', async (_name, data) => {
    const kinesis = createFakeKinesis();
    const failures: unknown[] = [];
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0, onFailure: (error) => failures.push(error) });

    expect(() => producer.send({ partitionKey: 'k', data: data as never })).not.toThrow();
    expect(failures).toHaveLength(1);
    expect(failures[0]).toBeInstanceOf(KinesisProducerError);
    expect(failures[0]).toBeInstanceOf(KinesisError);
    expect(failures[0]).toMatchObject({ reason: 'invalid', attempts: 0 });
    const message = (failures[0] as Error).message;
    expect(message).toContain('data must be a Uint8Array or a string');
    expect(message).not.toContain('[object Object]');
    producer.send({ partitionKey: 'k', data: 'good' });
    await producer.flush();
    expect(kinesis.calls.map((call) => call.entries.map((entry) => entry.text))).toEqual([['good']]);
    expect(producer.stats()).toMatchObject({ accepted: 1, stored: 1, failed: 1 });
  });

  it('accepts key + data of exactly 1 MiB, and an explicit hash key of 2^128 - 1', async () => {
    const kinesis = createFakeKinesis();
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0 });
    await producer.put({ partitionKey: 'k', data: new Uint8Array(MiB - 1) });
    await producer.put({ partitionKey: 'k', explicitHashKey: String(2n ** 128n - 1n), data: 'x' });

    expect(kinesis.stored).toHaveLength(2);
  });

  it('refuses a record larger than maxBatchBytes as too-large', async () => {
    const { client } = createFakeKinesis();
    const producer = createProducer(client, { streamName: 'clicks', maxBatchBytes: 1000 });
    expect(await reason(producer.put({ partitionKey: 'k', data: new Uint8Array(1000) }))).toBe('too-large');
  });

  it('send() reports refusals to onFailure and never rejects', async () => {
    const { client } = createFakeKinesis();
    const failures: string[] = [];
    const producer = createProducer(client, { streamName: 'clicks', onFailure: (error) => failures.push(error.reason) });
    expect(producer.send({ partitionKey: '', data: 'x' })).toBeUndefined();
    await producer.close();
    producer.send({ partitionKey: 'k', data: 'x' });

    expect(failures).toEqual(['invalid', 'closed']);
  });
});

describe('producer linger, flush and close', () => {
  it('waits lingerMs before sending a partial batch', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const kinesis = createFakeKinesis();
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 100, predictShards: false });
    const puts = Array.from({ length: 10 }, (_, i) => producer.put({ partitionKey: 'k', data: `${i}` }));
    await settle();
    await vi.advanceTimersByTimeAsync(99);
    await settle();
    expect(kinesis.calls).toHaveLength(0);

    await vi.advanceTimersByTimeAsync(1);
    await advanceUntil(kinesis, producer, () => kinesis.calls.length === 1 && producer.stats().bufferedRecords === 0);
    await Promise.all(puts);
    expect(kinesis.calls[0]!.entries).toHaveLength(10);
  });

  it('sends a full batch at once, without lingering', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const kinesis = createFakeKinesis();
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 60_000, predictShards: false });
    const puts = Array.from({ length: 500 }, (_, i) => producer.put({ partitionKey: 'k', data: `${i}` }));
    await advanceUntil(kinesis, producer, () => producer.stats().stored === 500, 1);

    await Promise.all(puts);
    expect(kinesis.calls).toHaveLength(1);
  });

  it('sends at once while the buffer is full: lingering could not add a record', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const kinesis = createFakeKinesis();
    // Aggregated, ten small records are far from filling a request; they do fill the buffer.
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 60_000, maxBufferedRecords: 10, aggregation: true, predictShards: false });
    const puts = Array.from({ length: 10 }, (_, i) => producer.put({ partitionKey: 'k', data: `${i}` }));
    expect(producer.hasCapacity).toBe(false);
    await advanceUntil(kinesis, producer, () => producer.stats().stored === 10, 1);

    await Promise.all(puts);
    expect(kinesis.calls).toHaveLength(1);
  });

  it('flush() sends without lingering and resolves when the records put before it settled', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const kinesis = createFakeKinesis();
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 60_000 });
    const good = producer.put({ partitionKey: 'k', data: 'a' });
    const also = producer.put({ partitionKey: 'k', data: 'b' });
    let flushed: { stored: number; failed: number } | undefined;
    void producer.flush().then((result) => (flushed = result));
    await advanceUntil(kinesis, producer, () => flushed !== undefined, 1);

    expect(flushed).toEqual({ stored: 2, failed: 0 });
    await expect(good).resolves.toMatchObject({ sequenceNumber: expect.any(String) });
    await expect(also).resolves.toMatchObject({ sequenceNumber: expect.any(String) });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('leaves no timer behind once the buffer is empty', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const kinesis = createFakeKinesis({ shards: 2 });
    kinesis.script((call) => (call.index === 0 ? call.entries.map((_, i) => (i % 2 ? 'ProvisionedThroughputExceededException' : 'ok')) : undefined));
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 100 });
    for (let i = 0; i < 20; i++) producer.send({ partitionKey: `k${i}`, data: `${i}` });
    let done = false;
    void producer.flush().then(() => (done = true));
    await advanceUntil(kinesis, producer, () => done, 10, 2_000);

    expect(kinesis.stored).toHaveLength(20);
    expect(producer.stats()).toMatchObject({ bufferedRecords: 0, inFlightRequests: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('flush() of an empty producer resolves at once', async () => {
    const { client } = createFakeKinesis();
    const producer = createProducer(client, { streamName: 'clicks' });
    await expect(producer.flush()).resolves.toEqual({ stored: 0, failed: 0 });
  });

  it('close() delivers what was put, then refuses new records with reason closed', async () => {
    const kinesis = createFakeKinesis();
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 60_000 });
    const before = producer.put({ partitionKey: 'k', data: 'before' });
    const closing = producer.close();
    const after = producer.put({ partitionKey: 'k', data: 'after' });

    expect(producer.isClosed).toBe(true);
    expect(await reason(after)).toBe('closed');
    await expect(closing).resolves.toEqual({ stored: 1, failed: 0 });
    await expect(before).resolves.toMatchObject({ attempts: 1 });
    expect(kinesis.stored.map((entry) => entry.text)).toEqual(['before']);
  });

  it('settles every put exactly once', async () => {
    const kinesis = createFakeKinesis({ shards: 3 });
    let call = 0;
    kinesis.script((c) => (++call % 3 === 1 ? c.entries.map((_, i) => (i % 4 === 0 ? 'InternalFailure' : i % 4 === 1 ? 'KMSDisabledException' : 'ok')) : undefined));
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 1, backoff: { baseDelayMs: 1 } });
    const settlements = new Map<number, number>();
    const outcomes: (PutResult | string)[] = [];
    const puts = Array.from({ length: 1200 }, (_, i) =>
      producer.put({ partitionKey: `k${i % 50}`, data: String(i) }).then(
        (result) => {
          settlements.set(i, (settlements.get(i) ?? 0) + 1);
          outcomes[i] = result;
        },
        (error: KinesisProducerError) => {
          settlements.set(i, (settlements.get(i) ?? 0) + 1);
          outcomes[i] = error.reason;
        },
      ),
    );
    const flushed = await producer.flush();
    await Promise.all(puts);

    expect(settlements.size).toBe(1200);
    expect([...settlements.values()].every((count) => count === 1)).toBe(true);
    const rejected = outcomes.filter((outcome) => outcome === 'rejected').length;
    expect(rejected).toBeGreaterThan(0);
    expect(flushed).toEqual({ stored: 1200 - rejected, failed: rejected });
    expect(kinesis.stored).toHaveLength(1200 - rejected);
    expect(new Set(kinesis.stored.map((entry) => entry.text)).size).toBe(1200 - rejected);
  });
});

describe('producer on a runtime whose clock stands still between I/O', () => {
  it('still sends when its linger timer fires and expires records on time', async () => {
    // Cloudflare Workers freeze Date.now() during execution; here the clock never moves at all.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const kinesis = createFakeKinesis();
    kinesis.script((call) => (call.index > 0 ? call.entries.map(() => 'InternalFailure') : undefined));
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 100, recordTtlMs: 5_000, predictShards: false, now: () => 1_000 });
    const stored = producer.put({ partitionKey: 'k', data: 'a' });
    await advanceUntil(kinesis, producer, () => producer.stats().stored === 1);
    await expect(stored).resolves.toMatchObject({ attempts: 1 });

    const expiring = reason(producer.put({ partitionKey: 'k', data: 'b' }));
    await advanceUntil(kinesis, producer, () => producer.stats().failed === 1, 50);
    expect(await expiring).toBe('expired');
    expect(vi.getTimerCount()).toBe(0);
  });
});

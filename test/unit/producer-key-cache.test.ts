// The producer's cache of recently seen partition keys: bounded, and never a way around the rules a
// record is checked against at put().
import { describe, expect, it } from 'vitest';
import { createProducer, isKinesisProducerError, type KinesisProducerError } from '../../src/producer/index.ts';
import { KeyCache } from '../../src/producer/key-cache.ts';
import { createFakeKinesis } from './producer-fake-kinesis.ts';

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

describe('KeyCache', () => {
  it('keeps at most two generations and promotes keys hit in the old one', () => {
    const cache = new KeyCache(2);
    const a = cache.add('a', 1);
    cache.add('b', 1);
    cache.add('c', 1); // young was full: {a, b} become old
    expect(cache.get('a')).toBe(a); // promoted into the young generation {c, a}
    cache.add('d', 1); // young full again: {c, a} old, {b} dropped
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(a);
    expect(cache.get('d')?.keyBytes).toBe(1);
  });
});

describe('producer key cache', () => {
  it('a known partition key still gets every check its record needs', async () => {
    const kinesis = createFakeKinesis();
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0 });
    expect(await reason(producer.put({ partitionKey: 'é', data: 'x' }))).toBe('stored');
    // Same key: the size rule counts its UTF-8 bytes, the explicit hash key is checked.
    expect(await reason(producer.put({ partitionKey: 'é', data: new Uint8Array(MiB - 1) }))).toBe('too-large');
    expect(await reason(producer.put({ partitionKey: 'é', data: new Uint8Array(MiB - 2) }))).toBe('stored');
    expect(await reason(producer.put({ partitionKey: 'é', explicitHashKey: '01', data: 'x' }))).toBe('invalid');
    expect(await reason(producer.put({ partitionKey: 'é', explicitHashKey: '1', data: 'x' }))).toBe('stored');
    await producer.close();
    expect(producer.stats()).toMatchObject({ stored: 3, failed: 2 });
  });
});

// Checkpoint stores. The storage store is exercised against a Map with the Web Storage
// `getItem` / `setItem` / `key` / `length` surface (https://html.spec.whatwg.org/multipage/webstorage.html).
import { describe, expect, it } from 'vitest';
import {
  SHARD_END,
  checkpointRecord,
  createMemoryCheckpointStore,
  createStorageCheckpointStore,
  parseCheckpoint,
  startPositionAfter,
  type KeyValueStorage,
} from '../../src/consumer/checkpoints.ts';

const SEQ = '49590338271490256608559692538361571095921575989136588898';

function mapStorage(): KeyValueStorage & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return {
    map,
    getItem: (key) => map.get(key) ?? null,
    setItem: (key, value) => void map.set(key, String(value)),
    get length() {
      return map.size;
    },
    key: (index) => [...map.keys()][index] ?? null,
  };
}

describe('createMemoryCheckpointStore', () => {
  it('stores, overwrites and lists checkpoints per shard', async () => {
    const store = createMemoryCheckpointStore([['shardId-000000000009', { sequenceNumber: SHARD_END }]]);
    expect(await store.get('shardId-000000000000')).toBeUndefined();
    await store.set('shardId-000000000000', '1');
    await store.set('shardId-000000000000', SEQ, 2);
    expect(await store.get('shardId-000000000000')).toEqual({ sequenceNumber: SEQ, subSequenceNumber: 2 });
    expect(store.list()).toEqual(
      new Map([
        ['shardId-000000000009', { sequenceNumber: SHARD_END }],
        ['shardId-000000000000', { sequenceNumber: SEQ, subSequenceNumber: 2 }],
      ]),
    );
  });

  it.each([
    ['a number as sequence number', 12 as unknown as string, undefined],
    ['a non-numeric sequence number', 'LATEST', undefined],
    ['a negative sub-sequence number', SEQ, -1],
    ['a fractional sub-sequence number', SEQ, 1.5],
  ])('rejects %s', (_name, sequenceNumber, sub) => {
    expect(() => createMemoryCheckpointStore().set('s', sequenceNumber, sub)).toThrow(TypeError);
  });
});

describe('createStorageCheckpointStore', () => {
  it('keeps one JSON value per shard under the prefix', async () => {
    const storage = mapStorage();
    const store = createStorageCheckpointStore(storage, { prefix: 'clicks:' });
    await store.set('shardId-000000000001', SEQ, 0);
    await store.set('shardId-000000000002', SHARD_END);
    storage.setItem('other', 'x');

    expect(storage.map.get('clicks:shardId-000000000001')).toBe(`{"sequenceNumber":"${SEQ}","subSequenceNumber":0}`);
    expect(await store.get('shardId-000000000001')).toEqual({ sequenceNumber: SEQ, subSequenceNumber: 0 });
    expect(await store.get('shardId-000000000003')).toBeUndefined();
    expect(await store.list!()).toEqual(
      new Map([
        ['shardId-000000000001', { sequenceNumber: SEQ, subSequenceNumber: 0 }],
        ['shardId-000000000002', { sequenceNumber: SHARD_END }],
      ]),
    );
  });

  it('uses the default prefix and has no list() without key()/length', async () => {
    const map = new Map<string, string>();
    const store = createStorageCheckpointStore({ getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v) });
    await store.set('s', '7');
    expect([...map.keys()]).toEqual(['kinesis-edge:checkpoint:s']);
    expect(store.list).toBeUndefined();
  });

  it('treats a value that does not parse as no checkpoint', async () => {
    const storage = mapStorage();
    storage.setItem('p:a', 'garbage');
    storage.setItem('p:b', '{"sequenceNumber":12}');
    storage.setItem('p:c', '{"sequenceNumber":"x1"}');
    const store = createStorageCheckpointStore(storage, { prefix: 'p:' });
    expect([await store.get('a'), await store.get('b'), await store.get('c')]).toEqual([undefined, undefined, undefined]);
  });
});

describe('parseCheckpoint', () => {
  it.each([
    [null, undefined],
    ['', undefined],
    ['null', undefined],
    [`{"sequenceNumber":"${SEQ}"}`, { sequenceNumber: SEQ }],
    [`{"sequenceNumber":"${SEQ}","subSequenceNumber":null}`, { sequenceNumber: SEQ }],
    [`{"sequenceNumber":"SHARD_END"}`, { sequenceNumber: SHARD_END }],
  ])('parses %s', (text, expected) => {
    expect(parseCheckpoint(text)).toEqual(expected);
  });
});

describe('checkpointRecord / startPositionAfter', () => {
  it('stores the record position, sub-sequence number included', async () => {
    const store = createMemoryCheckpointStore();
    await checkpointRecord(store, {
      shardId: 's1',
      sequenceNumber: SEQ,
      subSequenceNumber: 4,
      partitionKey: 'k',
      arrivalTime: new Date(0),
      data: new Uint8Array(),
    });
    expect(await store.get('s1')).toEqual({ sequenceNumber: SEQ, subSequenceNumber: 4 });
  });

  it.each([
    [{ sequenceNumber: SEQ }, { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: SEQ }],
    [{ sequenceNumber: SEQ, subSequenceNumber: 0 }, { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: SEQ, subSequenceNumber: 0 }],
    [{ sequenceNumber: SHARD_END }, undefined],
  ])('resumes after %j', (checkpoint, expected) => {
    expect(startPositionAfter(checkpoint)).toEqual(expected);
  });
});

// The producer's copies of record data in shared chunks (src/producer/data-copy.ts): real copies,
// and chunks kept by straggling records stay bounded by the bytes buffered.
import { describe, expect, it } from 'vitest';
import { DataCopier, type DataChunk } from '../../src/producer/data-copy.ts';

/** The copy `copy()` placed: the array it returned, from `lastOffset`, as long as `raw`. */
function copyOf(copier: DataCopier, raw: Uint8Array, bufferedBytes: number): Uint8Array {
  const store = copier.copy(raw, bufferedBytes);
  return store.subarray(copier.lastOffset, copier.lastOffset + raw.length);
}

describe('DataCopier', () => {
  it('copies: changing the caller buffer afterwards changes nothing', () => {
    const copier = new DataCopier();
    const raw = new Uint8Array([1, 2, 3]);
    const copy = copyOf(copier, raw, 0);
    raw.fill(9);
    expect([...copy]).toEqual([1, 2, 3]);
    expect(copier.lastChunk?.live).toBe(1);
    const other = copyOf(copier, new Uint8Array([4]), 3);
    expect([...copy]).toEqual([1, 2, 3]); // neighbours do not overlap
    expect([...other]).toEqual([4]);
    expect(copier.lastChunk?.live).toBe(2);
  });

  it('gives large data a copy of its own', () => {
    const copier = new DataCopier();
    const raw = new Uint8Array(4096).fill(7);
    const copy = copyOf(copier, raw, 0);
    expect(copier.lastChunk).toBeUndefined();
    expect(copy.buffer).not.toBe(raw.buffer);
    expect(copy.byteLength).toBe(4096);
  });

  it('starts no new chunk while held chunks exceed twice the buffered bytes', () => {
    const copier = new DataCopier();
    const stragglers: DataChunk[] = [];
    // One 1,000-byte record per chunk outlives the rest of its chunk (16 records fit one).
    for (let chunk = 0; chunk < 4; chunk++) {
      const kept: DataChunk[] = [];
      for (let i = 0; i < 16; i++) {
        copier.copy(new Uint8Array(1000), 1_000_000);
        kept.push(copier.lastChunk!);
      }
      for (const held of kept.slice(1)) copier.release(held);
      stragglers.push(kept[0]!);
    }
    // Four stragglers (4,000 bytes buffered) hold more than 2 * 4,000 + one chunk: copies of their own.
    // (The current chunk has room for none: it is full.)
    copier.copy(new Uint8Array(1000), 4_000);
    expect(copier.lastChunk).toBeUndefined();
    // Once they settle, chunks are shared again.
    for (const held of stragglers) copier.release(held);
    copier.copy(new Uint8Array(1000), 0);
    expect(copier.lastChunk).toBeDefined();
  });
});

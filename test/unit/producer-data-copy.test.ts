// The producer's copies of record data in shared chunks (src/producer/data-copy.ts): real copies,
// and chunks kept by straggling records stay bounded by the bytes buffered.
import { describe, expect, it } from 'vitest';
import { DataCopier, type DataChunk } from '../../src/producer/data-copy.ts';

/** The copy `copy()` placed: in the chunk it returned, from `lastOffset`, as long as `raw`. */
function copyOf(copier: DataCopier, raw: Uint8Array, bufferedBytes: number): [Uint8Array, DataChunk] {
  const chunk = copier.copy(raw, bufferedBytes);
  return [chunk.bytes.subarray(copier.lastOffset, copier.lastOffset + raw.length), chunk];
}

describe('DataCopier', () => {
  it('copies: changing the caller buffer afterwards changes nothing', () => {
    const copier = new DataCopier();
    const raw = new Uint8Array([1, 2, 3]);
    const [copy, chunk] = copyOf(copier, raw, 0);
    raw.fill(9);
    expect([...copy]).toEqual([1, 2, 3]);
    expect(chunk.shared).toBe(true);
    expect(chunk.live).toBe(1);
    const [other, same] = copyOf(copier, new Uint8Array([4]), 3);
    expect([...copy]).toEqual([1, 2, 3]); // neighbours do not overlap
    expect([...other]).toEqual([4]);
    expect(same).toBe(chunk);
    expect(chunk.live).toBe(2);
  });

  it('gives large data a copy of its own', () => {
    const copier = new DataCopier();
    const raw = new Uint8Array(4096).fill(7);
    const [copy, chunk] = copyOf(copier, raw, 0);
    expect(chunk.shared).toBe(false);
    expect(chunk.bytes.byteLength).toBe(4096); // exactly the data
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
        kept.push(copier.copy(new Uint8Array(1000), 1_000_000));
      }
      for (const held of kept.slice(1)) copier.release(held);
      stragglers.push(kept[0]!);
    }
    // Four stragglers (4,000 bytes buffered) hold more than 2 * 4,000 + one chunk: copies of their own.
    // (The current chunk has room for none: it is full.)
    const own = copier.copy(new Uint8Array(1000), 4_000);
    expect(own.shared).toBe(false);
    copier.release(own); // an own copy's release counts for no chunk
    // Once they settle, chunks are shared again.
    for (const held of stragglers) copier.release(held);
    expect(copier.copy(new Uint8Array(1000), 0).shared).toBe(true);
  });
});

describe('DataCopier.copyText', () => {
  it('writes the UTF-8 bytes TextEncoder gives, for ASCII, multibyte, emoji and lone surrogates, also across chunks', () => {
    const copier = new DataCopier();
    const encoder = new TextEncoder();
    // Over 2 KiB of UTF-8, data gets an array of its own rather than a place in a chunk.
    const texts = ['', 'a', 'hello world', 'ü€😀', '\ud800', 'x\udc00y', '"quoted"\n', 'é'.repeat(700), 'a'.repeat(2047), '😀'.repeat(300), 'b'.repeat(3000), 'ü'.repeat(1500)];
    let buffered = 0;
    for (let round = 0; round < 40; round++) {
      for (const text of texts) {
        const expected = encoder.encode(text);
        const store = copier.copyText(text, expected.length, buffered).bytes;
        expect([...store.subarray(copier.lastOffset, copier.lastOffset + expected.length)], JSON.stringify(text.slice(0, 20))).toEqual([...expected]);
        buffered += expected.length;
      }
    }
  });
});

/**
 * The producer's copies of record data (`put()` copies, since the caller may reuse its buffer),
 * packed side by side into shared chunks instead of one ArrayBuffer each.
 *
 * Why: in V8 a fresh ArrayBuffer per small record (`new Uint8Array(raw)`) cost about 1.6 µs of
 * CPU per record in the producer benchmark (a backing store to allocate, track and sweep), more
 * than the rest of `put()`; a view into a shared chunk costs about 0.15 µs
 * (bench/.tmp driver: `#prepare` self time 638 ms → 94 ms for 320,000 records of 100 bytes).
 *
 * The price: a chunk lives as long as any record copied into it is buffered, so a record that
 * outlives its neighbours (retried, or waiting behind its partition key) keeps the whole chunk.
 * That is bounded here: a new chunk is started only while the chunks still held total at most
 * twice the bytes buffered (plus one chunk); past that, records get copies of their own (as
 * before) until the stragglers settle. Data larger than an eighth of a chunk always gets its own.
 */

import { encodeUtf8 } from '../internal/utf8.ts';

/** Created on first use (see utf8.ts): importing this module costs nothing. */
let encoder: TextEncoder | undefined;

/**
 * Where buffered records' data is: a chunk shared by several records, or an array of one record's
 * own. Own copies get this wrapper too, so that a record holds one reference to its data, not an
 * array and a chunk (a field per record costs 8 B in every buffered record; own copies are rare,
 * mostly data too large to share, where the wrapper's bytes do not count).
 */
export interface DataChunk {
  readonly bytes: Uint8Array;
  /** Buffered records whose data is here. */
  live: number;
  /** False for an array of one record's own (not counted in the held chunks). */
  readonly shared: boolean;
}

const CHUNK_BYTES = 16 * 1024;
/** Larger data is copied on its own: at most this much of a chunk is left unused at its end. */
const MAX_SHARED_BYTES = CHUNK_BYTES / 8;

export class DataCopier {
  #current: DataChunk | undefined;
  #used = 0;
  /** Bytes of chunks that hold a buffered record's data, plus the current chunk. */
  #heldBytes = 0;
  /** Where in its chunk's array the last copy starts. */
  lastOffset = 0;

  /**
   * Copies `raw` and returns the chunk holding the copy, at {@link lastOffset}: no view per copy,
   * since a record buffered for long would keep one. Call {@link release} with the chunk once,
   * when the record settles. `bufferedBytes` is what the buffer holds now.
   */
  copy(raw: Uint8Array, bufferedBytes: number): DataChunk {
    const chunk = this.#reserve(raw.length, bufferedBytes);
    if (chunk === undefined) return ownChunk(new Uint8Array(raw));
    chunk.bytes.set(raw, this.lastOffset);
    return chunk;
  }

  /**
   * Like {@link copy}, for a string's UTF-8 bytes (`byteLength` of them, as `utf8ByteLength`
   * counts them), written straight into the chunk: the alternative, `encodeUtf8` and a copy of
   * its own, is one ArrayBuffer per record again. Lone surrogates become U+FFFD, as `TextEncoder` does.
   */
  copyText(text: string, byteLength: number, bufferedBytes: number): DataChunk {
    const chunk = this.#reserve(byteLength, bufferedBytes);
    if (chunk === undefined) return ownChunk(encodeUtf8(text));
    const bytes = chunk.bytes;
    const offset = this.lastOffset;
    if (byteLength === text.length) {
      // ASCII (the UTF-8 length of any other string exceeds its length): a plain loop beats a
      // call into TextEncoder for short strings.
      for (let i = 0; i < byteLength; i++) bytes[offset + i] = text.charCodeAt(i);
    } else {
      encoder ??= new TextEncoder();
      encoder.encodeInto(text, bytes.subarray(offset, offset + byteLength));
    }
    return chunk;
  }

  /**
   * Room for `length` bytes in a shared chunk, at {@link lastOffset}, counted as one more record
   * the chunk holds; undefined (and `lastOffset` 0) when the data gets an array of its own.
   */
  #reserve(length: number, bufferedBytes: number): DataChunk | undefined {
    let chunk = this.#current;
    this.lastOffset = 0;
    if (length > MAX_SHARED_BYTES || (length + this.#used > CHUNK_BYTES && !this.#mayStartChunk(bufferedBytes))) {
      return undefined;
    }
    if (chunk === undefined || length + this.#used > CHUNK_BYTES) {
      // The old chunk is garbage once no record holds it.
      if (chunk !== undefined && chunk.live === 0) this.#heldBytes -= CHUNK_BYTES;
      chunk = this.#current = { bytes: new Uint8Array(CHUNK_BYTES), live: 0, shared: true };
      this.#used = 0;
      this.#heldBytes += CHUNK_BYTES;
    }
    this.lastOffset = this.#used;
    this.#used += length;
    chunk.live++;
    return chunk;
  }

  /** A record whose data is in `chunk` settled. */
  release(chunk: DataChunk): void {
    if (--chunk.live === 0 && chunk.shared && chunk !== this.#current) this.#heldBytes -= CHUNK_BYTES;
  }

  #mayStartChunk(bufferedBytes: number): boolean {
    return this.#heldBytes <= 2 * bufferedBytes + CHUNK_BYTES;
  }
}

function ownChunk(bytes: Uint8Array): DataChunk {
  return { bytes, live: 1, shared: false };
}

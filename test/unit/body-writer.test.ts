// The byte-level body writer the write path uses (src/internal/body-writer.ts): base64 written in
// place must equal the reference encoder for every length and byte value, and strings must come out
// as their UTF-8 bytes, with the measured length enforced.
import { describe, expect, it } from 'vitest';
import { encodeBase64Fallback } from '../../src/internal/base64.ts';
import { base64Length, BodyWriter } from '../../src/internal/body-writer.ts';
import { randomBytes, seededRandom } from '../support/seeded-random.ts';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe('BodyWriter', () => {
  it('writes base64 equal to btoa for every length 0..300 and for all 256 byte values', () => {
    const random = seededRandom(42);
    const inputs: Uint8Array[] = [Uint8Array.from({ length: 256 }, (_, i) => i), new Uint8Array(3).fill(255)];
    for (let length = 0; length <= 300; length++) inputs.push(randomBytes(random, length));
    for (const data of inputs) {
      const writer = new BodyWriter(base64Length(data.length));
      writer.base64(data);
      expect(text(writer.finish())).toBe(encodeBase64Fallback(data));
    }
  });

  it('writes a subarray from its own offset, and large data (the 8 KiB+ path of the string encoder)', () => {
    const big = randomBytes(seededRandom(7), 70_001);
    for (const data of [big.subarray(5, 40_000), big]) {
      const writer = new BodyWriter(base64Length(data.length));
      writer.base64(data);
      expect(text(writer.finish())).toBe(encodeBase64Fallback(data));
    }
  });

  it('writes a range of an array as that range alone, for every start and length around the 3-byte groups', () => {
    const whole = randomBytes(seededRandom(9), 40);
    for (let start = 0; start <= 7; start++) {
      for (let end = start; end <= 40; end++) {
        const writer = new BodyWriter(base64Length(end - start));
        writer.base64(whole, start, end);
        expect(text(writer.finish()), `[${start}, ${end})`).toBe(encodeBase64Fallback(whole.subarray(start, end)));
      }
    }
  });

  it('writes ASCII and UTF-8 strings, and refuses a body whose measured length was wrong', () => {
    const key = 'ü€😀"';
    const bytes = new TextEncoder().encode(key).length;
    const writer = new BodyWriter(2 + bytes + 1);
    writer.ascii('{"');
    writer.utf8(key, bytes);
    writer.ascii('}');
    expect(text(writer.finish())).toBe(`{"${key}}`);

    const short = new BodyWriter(4);
    short.ascii('ab');
    expect(() => short.finish()).toThrow(/measured 4 bytes, wrote 2/);
    expect(() => new BodyWriter(8).utf8('ü', 3)).toThrow(/measured 3 UTF-8 bytes, wrote 2/);
  });
});

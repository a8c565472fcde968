import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/internal/crc32.ts';
import { encodeUtf8 } from '../../src/internal/utf8.ts';
import { randomBytes, seededRandom } from '../support/seeded-random.ts';

// CRC-32/ISO-HDLC check values (the "123456789" check is the catalogue's standard one).
// https://reveng.sourceforge.io/crc-catalogue/17plus.htm#crc.cat.crc-32-iso-hdlc
const VECTORS: [string, number][] = [
  ['', 0x00000000],
  ['a', 0xe8b7be43],
  ['abc', 0x352441c2],
  ['123456789', 0xcbf43926],
  ['The quick brown fox jumps over the lazy dog', 0x414fa339],
];

// zlib.crc32 exists from Node 20.15 / 22.2.
const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

describe('crc32', () => {
  it.each(VECTORS)('checksums %j', (text, expected) => {
    expect(crc32(encodeUtf8(text))).toBe(expected);
  });

  it('returns an unsigned 32-bit number', () => {
    const value = crc32(encodeUtf8('123456789'));
    expect(value).toBeGreaterThan(0x7fffffff);
    expect(Number.isInteger(value)).toBe(true);
  });

  it('continues a running checksum from `initial` at every split point', () => {
    const bytes = randomBytes(seededRandom(7), 200);
    const whole = crc32(bytes);
    for (let split = 0; split <= bytes.length; split++) {
      expect(crc32(bytes.subarray(split), crc32(bytes.subarray(0, split)))).toBe(whole);
    }
  });

  it.runIf(zlibCrc32 !== undefined)('matches zlib.crc32 on random buffers', () => {
    const random = seededRandom(8);
    for (const length of [1, 7, 64, 1000, 65_537]) {
      const bytes = randomBytes(random, length);
      expect(crc32(bytes)).toBe(zlibCrc32!(bytes));
      expect(crc32(bytes, 0x12345678)).toBe(zlibCrc32!(bytes, 0x12345678));
    }
  });
});

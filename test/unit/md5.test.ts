import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { md5, md5Words, md5WordsOfShortAscii } from '../../src/internal/md5.ts';
import { encodeUtf8 } from '../../src/internal/utf8.ts';
import { randomBytes, seededRandom } from '../support/seeded-random.ts';

// RFC 1321 appendix A.5, the MD5 test suite.
const RFC_1321_SUITE: [string, string][] = [
  ['', 'd41d8cd98f00b204e9800998ecf8427e'],
  ['a', '0cc175b9c0f1b6a831c399e269772661'],
  ['abc', '900150983cd24fb0d6963f7d28e17f72'],
  ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
  ['abcdefghijklmnopqrstuvwxyz', 'c3fcd3d76192e4007dfb496cca67e13b'],
  [
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789',
    'd174ab98d277d9f5a5611c2c9f419d9f',
  ],
  [
    '12345678901234567890123456789012345678901234567890123456789012345678901234567890',
    '57edf4a22be3c955ac49da2e2107b67a',
  ],
];

// Derived by this project; see test/fixtures/kinesis/README.md.
const { partition_keys: partitionKeys } = JSON.parse(
  readFileSync(new URL('../fixtures/kinesis/partition-keys-and-numbers.json', import.meta.url), 'utf8'),
) as { partition_keys: { name: string; partition_key: string; md5_hex: string }[] };

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const nodeMd5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest('hex');

describe('md5', () => {
  it.each(RFC_1321_SUITE)('hashes %j as in RFC 1321', (text, digest) => {
    expect(hex(md5(encodeUtf8(text)))).toBe(digest);
  });

  it.each(partitionKeys.map((k) => [k.name, k.partition_key, k.md5_hex]))(
    'hashes the UTF-8 bytes of the fixture key %s',
    (_name, key, digest) => {
      expect(hex(md5(encodeUtf8(key)))).toBe(digest);
    },
  );

  it('matches node:crypto for every length up to 200, across the padding boundaries', () => {
    const random = seededRandom(4);
    for (let length = 0; length <= 200; length++) {
      const bytes = randomBytes(random, length);
      expect(hex(md5(bytes)), `length ${length}`).toBe(nodeMd5(bytes));
    }
  });

  it('matches node:crypto on 1 MiB', () => {
    const bytes = randomBytes(seededRandom(5), 1024 * 1024 + 17);
    expect(hex(md5(bytes))).toBe(nodeMd5(bytes));
  });

  it('hashes only the bytes of an unaligned subarray view', () => {
    const whole = randomBytes(seededRandom(6), 300);
    const view = whole.subarray(3, 250);
    expect(hex(md5(view))).toBe(nodeMd5(view));
  });

  it('hashes short ASCII strings from their characters as md5Words hashes their bytes (lengths 0 to 55)', () => {
    const random = seededRandom(7);
    for (let length = 0; length <= 55; length++) {
      // Every ASCII code, 0x00 and 0x7f included, lands in each byte position of a word.
      const text = Array.from({ length }, () => String.fromCharCode(Math.floor(random() * 0x80))).join('');
      const expected = [...md5Words(encodeUtf8(text))];
      expect([...md5WordsOfShortAscii(text)!], `length ${length}`).toEqual(expected);
    }
  });

  it('leaves longer or non-ASCII strings to md5Words', () => {
    expect(md5WordsOfShortAscii('k'.repeat(56))).toBeUndefined();
    expect(md5WordsOfShortAscii('caf\u00e9')).toBeUndefined();
    expect(md5WordsOfShortAscii('\u{1f600}')).toBeUndefined();
  });

  it('returns 16 fresh bytes and leaves the input unchanged', () => {
    const input = encodeUtf8('abc');
    const first = md5(input);
    expect(first).toBeInstanceOf(Uint8Array);
    expect(first.length).toBe(16);
    expect(hex(input)).toBe('616263');
    expect(md5(input)).not.toBe(first);
  });
});

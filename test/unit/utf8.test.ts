import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  decodeUtf8,
  encodeUtf8,
  isWellFormedUtf16,
  isWellFormedUtf16Fallback,
  utf8ByteLength,
} from '../../src/internal/utf8.ts';
import { randomInt, seededRandom } from '../support/seeded-random.ts';

// Derived by this project; see test/fixtures/kinesis/README.md.
interface KeysFixture {
  partition_keys: {
    name: string;
    partition_key: string;
    js_length_utf16_units: number;
    code_points: number;
    utf8_bytes: number;
  }[];
  lone_surrogate: { partition_key_js_escape: string; textencoder_utf8_hex: string };
}
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/kinesis/partition-keys-and-numbers.json', import.meta.url), 'utf8'),
) as KeysFixture;
const loneSurrogate = JSON.parse(`"${fixture.lone_surrogate.partition_key_js_escape}"`) as string;

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
// ES2024, newer than the lib the project compiles against; Node 20 has it.
const nativeIsWellFormed = (text: string) =>
  (text as unknown as { isWellFormed(): boolean }).isWellFormed();

const LENGTHS: [string, string, number][] = [
  ['empty', '', 0],
  ['ASCII', 'abc', 3],
  ['2-byte é', '\u00e9', 2],
  ['last 2-byte U+07FF', '\u07ff', 2],
  ['first 3-byte U+0800', '\u0800', 3],
  ['euro sign', '\u20ac', 3],
  ['U+FFFF', '\uffff', 3],
  ['surrogate pair', '\u{1f600}', 4],
  ['lone high surrogate', '\ud800', 3],
  ['lone low surrogate', '\udc00', 3],
  ['high surrogate then ASCII', '\ud800a', 4],
  ['low then high surrogate', '\udc00\ud800', 6],
  ['two highs then a low', '\ud83d\ud83d\ude00', 7],
  ['trailing high surrogate', 'a\ud83d', 4],
];

const WELL_FORMED: [string, string, boolean][] = [
  ['empty', '', true],
  ['ASCII', 'abc', true],
  ['surrogate pair', '\u{1f600}', true],
  ['ZWJ sequence', '\u{1f468}\u200d\u{1f469}\u200d\u{1f467}', true],
  ['lone high surrogate', '\ud800', false],
  ['lone low surrogate', '\udc00', false],
  ['reversed pair', '\ude00\ud83d', false],
  ['high surrogate at the end', 'abc\ud83d', false],
  ['high surrogate before ASCII', '\ud83da', false],
];

describe('utf8', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.resetModules();
  });

  it('round-trips text through UTF-8', () => {
    const text = 'Testing KPL Aggregated Record 1 我愛你 \u{1f600}';
    expect(decodeUtf8(encodeUtf8(text))).toBe(text);
  });

  it('keeps a leading byte-order mark when decoding', () => {
    expect(decodeUtf8(new Uint8Array([0xef, 0xbb, 0xbf, 0x61]))).toBe('\ufeffa');
  });

  it('substitutes U+FFFD for invalid UTF-8 by default', () => {
    expect(decodeUtf8(new Uint8Array([0x61, 0xff]))).toBe('a\ufffd');
  });

  it('throws a TypeError on invalid UTF-8 when fatal', () => {
    expect(() => decodeUtf8(new Uint8Array([0x61, 0xff]), { fatal: true })).toThrow(TypeError);
    expect(decodeUtf8(new Uint8Array([0x61]), { fatal: true })).toBe('a');
  });

  it('encodes a lone surrogate as U+FFFD, as the fixture records', () => {
    expect(loneSurrogate).toBe('\ud800');
    expect(hex(encodeUtf8(loneSurrogate))).toBe(fixture.lone_surrogate.textencoder_utf8_hex);
    expect(utf8ByteLength(loneSurrogate)).toBe(3);
    expect(isWellFormedUtf16(loneSurrogate)).toBe(false);
  });

  it.each(LENGTHS)('counts the UTF-8 bytes of %s', (_label, text, bytes) => {
    expect(utf8ByteLength(text)).toBe(bytes);
    expect(encodeUtf8(text).length).toBe(bytes);
  });

  it.each(fixture.partition_keys.map((k) => [k.name, k] as const))(
    'measures the fixture key %s in UTF-16 units, code points and bytes',
    (_name, key) => {
      expect(key.partition_key.length).toBe(key.js_length_utf16_units);
      expect([...key.partition_key].length).toBe(key.code_points);
      expect(utf8ByteLength(key.partition_key)).toBe(key.utf8_bytes);
      expect(encodeUtf8(key.partition_key).length).toBe(key.utf8_bytes);
      expect(isWellFormedUtf16(key.partition_key)).toBe(true);
    },
  );

  it('agrees with TextEncoder on random strings of any code units, surrogates included', () => {
    const random = seededRandom(3);
    const ranges = [0x7f, 0x7ff, 0xd7ff, 0xdfff, 0xffff];
    for (let n = 0; n < 500; n++) {
      const units: number[] = [];
      for (let i = randomInt(random, 0, 20); i > 0; i--) {
        const top = ranges[randomInt(random, 0, ranges.length - 1)]!;
        units.push(randomInt(random, top === 0xdfff ? 0xd800 : 0, top));
      }
      const text = String.fromCharCode(...units);
      expect(utf8ByteLength(text)).toBe(new TextEncoder().encode(text).length);
      expect(isWellFormedUtf16Fallback(text)).toBe(nativeIsWellFormed(text));
    }
  });

  describe.each([
    ['String.prototype.isWellFormed', isWellFormedUtf16],
    ['the fallback loop', isWellFormedUtf16Fallback],
  ])('isWellFormedUtf16 via %s', (_name, isWellFormed) => {
    it.each(WELL_FORMED)('says %s is well-formed: %s', (_label, text, expected) => {
      expect(isWellFormed(text)).toBe(expected);
    });
  });

  it('falls back to the loop when String.prototype.isWellFormed is absent', () => {
    const descriptor = Object.getOwnPropertyDescriptor(String.prototype, 'isWellFormed');
    delete (String.prototype as { isWellFormed?: unknown }).isWellFormed;
    try {
      expect(isWellFormedUtf16('\ud800')).toBe(false);
      expect(isWellFormedUtf16('\u{1f600}')).toBe(true);
    } finally {
      if (descriptor) Object.defineProperty(String.prototype, 'isWellFormed', descriptor);
    }
  });

  it('creates its TextEncoder and TextDecoder on first use, not at import', async () => {
    const created = { encoders: 0, decoders: 0 };
    vi.stubGlobal(
      'TextEncoder',
      class extends TextEncoder {
        constructor() {
          super();
          created.encoders++;
        }
      },
    );
    vi.stubGlobal(
      'TextDecoder',
      class extends TextDecoder {
        constructor(...args: ConstructorParameters<typeof TextDecoder>) {
          super(...args);
          created.decoders++;
        }
      },
    );
    vi.resetModules();
    const fresh = await import('../../src/internal/utf8.ts');
    expect(created).toEqual({ encoders: 0, decoders: 0 });
    fresh.decodeUtf8(fresh.encodeUtf8('a'));
    fresh.decodeUtf8(fresh.encodeUtf8('b'));
    expect(created).toEqual({ encoders: 1, decoders: 1 });
  });
});

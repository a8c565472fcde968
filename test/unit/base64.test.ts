import { Buffer } from 'node:buffer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeBase64,
  decodeBase64Fallback,
  encodeBase64,
  encodeBase64Fallback,
  encodeBase64Table,
} from '../../src/internal/base64.ts';
import { randomBytes, seededRandom } from '../support/seeded-random.ts';

// RFC 4648 §10 test vectors, plus the byte values from our own docs.
const VECTORS: [string, number[], string][] = [
  ['empty', [], ''],
  ['f', [0x66], 'Zg=='],
  ['fo', [0x66, 0x6f], 'Zm8='],
  ['foo', [0x66, 0x6f, 0x6f], 'Zm9v'],
  ['foob', [0x66, 0x6f, 0x6f, 0x62], 'Zm9vYg=='],
  ['fooba', [0x66, 0x6f, 0x6f, 0x62, 0x61], 'Zm9vYmE='],
  ['foobar', [0x66, 0x6f, 0x6f, 0x62, 0x61, 0x72], 'Zm9vYmFy'],
  ['00 ff 10', [0x00, 0xff, 0x10], 'AP8Q'],
  ['+ and /', [0xfb, 0xff, 0xbf], '+/+/'],
];

const INVALID = [
  ['a lone character', 'A'],
  ['five characters', 'AAAAA'],
  ['padding after a full quantum', 'AP8Q='],
  ['padding in the middle', 'AP=Q'],
  ['too much padding', 'A==='],
  ['a character outside the alphabet', 'AP8!'],
  ['the URL-safe alphabet', 'AP-_'],
  ['a non-Latin-1 character', '\u0100AAA'],
];

interface NativeBase64Stub {
  toBase64?: (this: Uint8Array) => string;
}
interface NativeBase64ConstructorStub {
  fromBase64?: (text: string) => Uint8Array;
}
const proto = Uint8Array.prototype as NativeBase64Stub;
const ctor = Uint8Array as NativeBase64ConstructorStub;
const runtimeHasNative = typeof ctor.fromBase64 === 'function';

// Node 20 lacks the native methods, so the native path is exercised through stand-ins that
// count calls and throw SyntaxError as `Uint8Array.fromBase64` does.
const nativeCalls = { toBase64: 0, fromBase64: 0 };
function installNativeStubs(): void {
  proto.toBase64 = function (this: Uint8Array) {
    nativeCalls.toBase64++;
    return Buffer.from(this.buffer, this.byteOffset, this.byteLength).toString('base64');
  };
  ctor.fromBase64 = (text: string) => {
    nativeCalls.fromBase64++;
    try {
      return decodeBase64Fallback(text);
    } catch {
      throw new SyntaxError('invalid base64');
    }
  };
}
function removeNativeStubs(): void {
  delete proto.toBase64;
  delete ctor.fromBase64;
}

describe('base64', () => {
  describe.each([
    ['the fallback (btoa/atob)', encodeBase64Fallback, decodeBase64Fallback, false],
    ['the native methods', encodeBase64, decodeBase64, true],
  ] as const)('with %s', (_name, encode, decode, native) => {
    beforeAll(() => {
      if (native && !runtimeHasNative) installNativeStubs();
    });
    afterAll(() => {
      if (native && !runtimeHasNative) removeNativeStubs();
    });

    it.each(VECTORS)('encodes and decodes %s', (_label, bytes, text) => {
      expect(encode(new Uint8Array(bytes))).toBe(text);
      expect(decode(text)).toEqual(new Uint8Array(bytes));
    });

    it('round-trips all 256 byte values', () => {
      const bytes = new Uint8Array(256).map((_, i) => i);
      const text = encode(bytes);
      expect(text).toBe(Buffer.from(bytes).toString('base64'));
      expect(decode(text)).toEqual(bytes);
    });

    it('round-trips 1 MiB of random bytes, matching Buffer', () => {
      const bytes = randomBytes(seededRandom(1), 1024 * 1024);
      const text = encode(bytes);
      expect(text).toBe(Buffer.from(bytes).toString('base64'));
      // Buffer.equals: vitest's deep equality takes seconds on a megabyte.
      expect(Buffer.from(decode(text)).equals(bytes)).toBe(true);
    });

    it('matches Buffer for every length up to 100, across chunk padding', () => {
      const random = seededRandom(2);
      for (let length = 0; length <= 100; length++) {
        const bytes = randomBytes(random, length);
        expect(encode(bytes)).toBe(Buffer.from(bytes).toString('base64'));
      }
    });

    it('encodes only the bytes of a subarray view', () => {
      const whole = new Uint8Array([1, 2, 0x00, 0xff, 0x10, 3]);
      expect(encode(whole.subarray(2, 5))).toBe('AP8Q');
    });

    it('accepts input without padding', () => {
      expect(decode('AP8')).toEqual(new Uint8Array([0x00, 0xff]));
    });

    it.each(INVALID)('rejects %s with a TypeError', (_label, text) => {
      expect(() => decode(text)).toThrow(TypeError);
    });

    it('names the input and chains the cause in the error', () => {
      let error: unknown;
      try {
        decode('AP8!');
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(TypeError);
      expect((error as TypeError).message).toBe('Invalid base64 (4 characters): "AP8!"');
      expect((error as TypeError).cause).toBeDefined();
    });

    if (native && !runtimeHasNative) {
      it('calls the native methods when they are present', () => {
        const before = { ...nativeCalls };
        expect(decodeBase64(encodeBase64(new Uint8Array([1, 2, 3])))).toEqual(
          new Uint8Array([1, 2, 3]),
        );
        expect(nativeCalls.toBase64).toBe(before.toBase64 + 1);
        expect(nativeCalls.fromBase64).toBe(before.fromBase64 + 1);
      });
    }
  });

  it('detects the native methods at call time, not at import', () => {
    if (runtimeHasNative) return;
    const before = { ...nativeCalls };
    expect(encodeBase64(new Uint8Array([1]))).toBe('AQ==');
    installNativeStubs();
    try {
      expect(encodeBase64(new Uint8Array([1]))).toBe('AQ==');
    } finally {
      removeNativeStubs();
    }
    expect(nativeCalls.toBase64).toBe(before.toBase64 + 1);
  });
});

describe('encodeBase64Table', () => {
  it.each([0, 1, 2, 3, 4, 5, 100, 8191, 8192, 65537, 200_000])('matches btoa for %i bytes', (size) => {
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i++) bytes[i] = (i * 131 + 7) & 0xff;
    let binary = '';
    for (let i = 0; i < size; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    expect(encodeBase64Table(bytes)).toBe(btoa(binary));
  });
});

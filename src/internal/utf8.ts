// UTF-8 helpers. Kinesis limits count partition-key *bytes* (UTF-8) plus data bytes, while JS
// strings are UTF-16, so sizes are computed here rather than from `.length`. The encoder and
// decoder are created on first use so that importing this module costs nothing.
// https://encoding.spec.whatwg.org/#interface-textencoder
// https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecordsRequestEntry.html

let encoder: TextEncoder | undefined;
let decoder: TextDecoder | undefined;
let fatalDecoder: TextDecoder | undefined;

/**
 * Encodes a string as UTF-8. A lone surrogate becomes U+FFFD (`EF BF BD`), as `TextEncoder`
 * specifies; check {@link isWellFormedUtf16} first where that substitution would be wrong.
 */
export function encodeUtf8(text: string): Uint8Array<ArrayBuffer> {
  encoder ??= new TextEncoder();
  // A fresh, non-shared buffer (https://encoding.spec.whatwg.org/#dom-textencoder-encode), as fetch bodies need.
  return encoder.encode(text) as Uint8Array<ArrayBuffer>;
}

/** Options for {@link decodeUtf8}. */
export interface DecodeUtf8Options {
  /**
   * Throw a `TypeError` on invalid UTF-8 instead of substituting U+FFFD.
   * @default false
   */
  fatal?: boolean;
}

/**
 * Decodes UTF-8 bytes to a string. A leading byte-order mark is kept (`ignoreBOM: true`), so
 * bytes and strings round-trip exactly; `TextDecoder` would strip it by default.
 *
 * @throws {TypeError} with `fatal: true`, when the bytes are not valid UTF-8.
 */
export function decodeUtf8(bytes: Uint8Array, options?: DecodeUtf8Options): string {
  if (options?.fatal) {
    fatalDecoder ??= new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    return fatalDecoder.decode(bytes);
  }
  decoder ??= new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  return decoder.decode(bytes);
}

/**
 * The number of bytes {@link encodeUtf8} produces for `text`, computed without allocating.
 * A surrogate pair counts 4 bytes; a lone surrogate counts 3, the size of its U+FFFD replacement.
 */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) {
      bytes += 1;
    } else if (code < 0x800) {
      bytes += 2;
    } else if (code >= 0xd800 && code <= 0xdbff && i + 1 < length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else {
        bytes += 3;
      }
    } else {
      bytes += 3;
    }
  }
  return bytes;
}

interface WellFormedString {
  isWellFormed?: (this: string) => boolean;
}

/**
 * Whether `text` is well-formed UTF-16, that is, has no lone surrogates and so survives UTF-8
 * encoding unchanged. Uses `String.prototype.isWellFormed` (ES2024) when present.
 */
export function isWellFormedUtf16(text: string): boolean {
  const isWellFormed = (String.prototype as WellFormedString).isWellFormed;
  if (typeof isWellFormed === 'function') return isWellFormed.call(text);
  return isWellFormedUtf16Fallback(text);
}

/** The loop {@link isWellFormedUtf16} runs without `isWellFormed`; exported for tests. */
export function isWellFormedUtf16Fallback(text: string): boolean {
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0xd800 || code > 0xdfff) continue;
    if (code >= 0xdc00) return false;
    const next = i + 1 < length ? text.charCodeAt(i + 1) : 0;
    if (next < 0xdc00 || next > 0xdfff) return false;
    i++;
  }
  return true;
}

// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum that frames AWS event
// streams (the prelude and message CRCs of SubscribeToShard responses). Byte-at-a-time table
// lookup; the 1 KiB table is built on first use, not at import.
// https://docs.aws.amazon.com/AmazonS3/latest/API/RESTSelectObjectAppendix.html
// https://www.w3.org/TR/png/#D-CRCAppendix

let table: Uint32Array | undefined;

function crcTable(): Uint32Array {
  if (table) return table;
  const built = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    built[n] = c;
  }
  table = built;
  return built;
}

/**
 * The CRC-32 of `bytes` as an unsigned 32-bit number. Pass the CRC of the preceding bytes as
 * `initial` to continue a running checksum: `crc32(b, crc32(a))` equals the CRC of `a` then `b`.
 *
 * @param initial The CRC of the bytes before `bytes`; 0, the CRC of no bytes, by default.
 *
 * @example
 * crc32(new TextEncoder().encode('123456789')); // 0xcbf43926
 */
export function crc32(bytes: Uint8Array, initial = 0): number {
  const t = crcTable();
  let c = ~initial;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

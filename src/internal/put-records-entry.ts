/**
 * One PutRecords entry as request JSON, written into a {@link BodyWriter}: `{"Data":"<base64>"`,
 * then `"ExplicitHashKey"` and `"PartitionKey"` when present, in the model's member order
 * (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecordsRequestEntry.html).
 * Both writers of PutRecords bodies use it: `putRecords()` (put-validation.ts) and the producer
 * (producer/request.ts), which writes from its buffered records without entry objects.
 *
 * The caller has checked the entry: the hash key is digits only, the partition key well-formed
 * UTF-16 whose UTF-8 length is `keyBytes`.
 */
import { base64Length, type BodyWriter } from './body-writer.ts';
import { utf8ByteLength } from './utf8.ts';

const DATA_OPEN = '{"Data":"';
const HASH_KEY_OPEN = '","ExplicitHashKey":"';
const PARTITION_KEY_OPEN = '","PartitionKey":';
const DATA_CLOSE = '"';
const ENTRY_CLOSE = '}';

/**
 * UTF-8 bytes of a partition key as a JSON string, quotes included, when it needs no escapes
 * (`keyBytes + 2`), else -1. A well-formed key needs escapes only for `"`, `\` and control
 * characters, as JSON.stringify writes them; a loop over a short key costs less than a regular
 * expression.
 */
function plainKeyJsonBytes(key: string, keyBytes: number): number {
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i);
    if (code < 0x20 || code === 0x22 || code === 0x5c) return -1;
  }
  return keyBytes + 2;
}

/** Bytes {@link writePutRecordsEntry} writes for these members, `dataBytes` being the data's length. */
export function putRecordsEntryBytes(key: string | undefined, keyBytes: number, hashKey: string | undefined, dataBytes: number): number {
  let length = DATA_OPEN.length + base64Length(dataBytes) + ENTRY_CLOSE.length;
  length += hashKey === undefined ? 0 : HASH_KEY_OPEN.length + hashKey.length;
  if (key === undefined) return length + DATA_CLOSE.length;
  const plain = plainKeyJsonBytes(key, keyBytes);
  return length + PARTITION_KEY_OPEN.length + (plain >= 0 ? plain : utf8ByteLength(JSON.stringify(key)));
}

/** Writes one entry; `data[start..end)` is its data. */
export function writePutRecordsEntry(
  body: BodyWriter,
  key: string | undefined,
  keyBytes: number,
  hashKey: string | undefined,
  data: Uint8Array,
  start: number,
  end: number,
): void {
  body.ascii(DATA_OPEN);
  body.base64(data, start, end);
  if (hashKey !== undefined) {
    body.ascii(HASH_KEY_OPEN);
    body.ascii(hashKey);
  }
  if (key === undefined) {
    body.ascii(DATA_CLOSE);
  } else if (plainKeyJsonBytes(key, keyBytes) >= 0) {
    body.ascii(PARTITION_KEY_OPEN);
    body.ascii('"');
    body.utf8(key, keyBytes);
    body.ascii('"');
  } else {
    const json = JSON.stringify(key);
    body.ascii(PARTITION_KEY_OPEN);
    body.utf8(json, utf8ByteLength(json));
  }
  body.ascii(ENTRY_CLOSE);
}

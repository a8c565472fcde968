// Client-side validation: every input that breaks the API's rules is refused with a
// KinesisValidationError naming the field and the rule, before any request is made.
// Rules: the API model (codegen/kinesis-api-model.json: lengths, patterns, ranges, enums), the
// record and request size limits (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html,
// counted as partition-key UTF-8 bytes + data bytes) and the vectors in
// test/fixtures/kinesis/partition-keys-and-numbers.json (see its README).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  createKinesisClient,
  createStream,
  getRecords,
  getShardIterator,
  KinesisValidationError,
  putRecord,
  putRecords,
  type KinesisClient,
  type RecordLimits,
} from '../../src/index.ts';
import { createFakeFetch, json, putRecordOk, type FakeFetch } from '../support/fake-fetch.ts';

interface Vectors {
  partition_keys: { name: string; partition_key: string; js_length_utf16_units: number; utf8_bytes: number }[];
  lone_surrogate: { partition_key_js_escape: string };
  explicit_hash_keys: { value: string; valid: boolean }[];
}
const vectors = JSON.parse(readFileSync(new URL('../fixtures/kinesis/partition-keys-and-numbers.json', import.meta.url), 'utf8')) as Vectors;
const key = (name: string) => vectors.partition_keys.find((k) => k.name === name)!.partition_key;
const LONE_SURROGATE = JSON.parse(`"${vectors.lone_surrogate.partition_key_js_escape}"`) as string;

const MiB = 1024 * 1024;
const PUT_RECORDS_OK = { FailedRecordCount: 0, Records: [] };

function client(fake: FakeFetch, limits?: Partial<RecordLimits>): KinesisClient {
  return createKinesisClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    fetch: fake,
    retry: { maxAttempts: 1 },
    ...(limits ? { limits } : {}),
  });
}

/** Calls `call`, expects a KinesisValidationError with no request sent, and returns its issues. */
async function rejected(call: (c: KinesisClient) => Promise<unknown>, limits?: Partial<RecordLimits>) {
  const fake = createFakeFetch();
  const error = await call(client(fake, limits)).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(KinesisValidationError);
  expect((error as KinesisValidationError).source).toBe('input');
  expect(fake.requests).toHaveLength(0);
  return error as KinesisValidationError;
}

/** Calls `call` against a fake that answers `reply`, and expects exactly one request. */
async function accepted(call: (c: KinesisClient) => Promise<unknown>, reply: Response, limits?: Partial<RecordLimits>) {
  const fake = createFakeFetch([reply]);
  await call(client(fake, limits));
  expect(fake.requests).toHaveLength(1);
  return fake.requests[0]!;
}

const putOne = (extra: Record<string, unknown>) => (c: KinesisClient) =>
  putRecord(c, { StreamName: 'clicks', PartitionKey: 'k', Data: 'x', ...extra } as never);
const putMany = (records: Record<string, unknown>[], extra: Record<string, unknown> = {}) => (c: KinesisClient) =>
  putRecords(c, { StreamName: 'clicks', Records: records, ...extra } as never);

const HASH_KEY_PATTERN = 'must match ^(0|([1-9]\\d{0,38}))$';
const MAX_HASH_KEY_RULE = 'must be at most 2^128 - 1 (340282366920938463463374607431768211455)';
const STREAM_NAME_PATTERN = 'must match ^[a-zA-Z0-9_.-]+$';
const DATA_RULE = 'must be a Uint8Array or a string';

describe('input validation: refused before sending', () => {
  it.each([
    { name: 'partition key ""', call: putOne({ PartitionKey: '' }), path: 'PartitionKey', rule: 'length must be at least 1' },
    { name: 'partition key of 257 ASCII', call: putOne({ PartitionKey: key('ascii_257') }), path: 'PartitionKey', rule: 'length must be at most 256' },
    { name: 'partition key of 129 emoji (258 UTF-16 units)', call: putOne({ PartitionKey: key('emoji_129_codepoints_258_utf16') }), path: 'PartitionKey', rule: 'length must be at most 256' },
    { name: 'partition key with a lone surrogate', call: putOne({ PartitionKey: LONE_SURROGATE }), path: 'PartitionKey', rule: 'must be well-formed UTF-16 (no lone surrogates)' },
    { name: 'lone surrogate inside PutRecords', call: putMany([{ PartitionKey: `a${LONE_SURROGATE}b`, Data: 'x' }]), path: 'Records[0].PartitionKey', rule: 'must be well-formed UTF-16 (no lone surrogates)' },
    { name: 'PutRecords partition key ""', call: putMany([{ PartitionKey: 'ok', Data: 'x' }, { PartitionKey: '', Data: 'x' }]), path: 'Records[1].PartitionKey', rule: 'length must be at least 1' },
    ...vectors.explicit_hash_keys
      .filter((v) => !v.valid)
      .map((v) => ({
        name: `ExplicitHashKey ${JSON.stringify(v.value)}`,
        call: putOne({ ExplicitHashKey: v.value }),
        path: 'ExplicitHashKey',
        rule: /^\d{39}$/.test(v.value) ? MAX_HASH_KEY_RULE : HASH_KEY_PATTERN,
      })),
    { name: 'ExplicitHashKey 2^128 in PutRecords', call: putMany([{ PartitionKey: 'k', Data: 'x', ExplicitHashKey: (2n ** 128n).toString() }]), path: 'Records[0].ExplicitHashKey', rule: MAX_HASH_KEY_RULE },
    { name: 'ExplicitHashKey as a number', call: putOne({ ExplicitHashKey: 5 }), path: 'ExplicitHashKey', rule: 'must be a string' },
    { name: '501 records', call: putMany(Array.from({ length: 501 }, () => ({ PartitionKey: 'k', Data: 'x' }))), path: 'Records', rule: 'must have at most 500 items' },
    { name: 'no records', call: putMany([]), path: 'Records', rule: 'must have at least 1 items' },
    { name: 'stream name with a space', call: putOne({ StreamName: 'my stream' }), path: 'StreamName', rule: STREAM_NAME_PATTERN },
    { name: 'stream name with a slash', call: putOne({ StreamName: 'a/b' }), path: 'StreamName', rule: STREAM_NAME_PATTERN },
    { name: 'stream name of 129 characters', call: putOne({ StreamName: 's'.repeat(129) }), path: 'StreamName', rule: 'length must be at most 128' },
    { name: 'empty stream name', call: putOne({ StreamName: '' }), path: 'StreamName', rule: 'length must be at least 1' },
    {
      name: 'StreamARN with an 11-digit account',
      call: putOne({ StreamName: undefined, StreamARN: 'arn:aws:kinesis:us-east-1:12345678901:stream/clicks' }),
      path: 'StreamARN',
      rule: 'must match ^arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+$',
    },
    {
      name: 'StreamARN of another service',
      call: putOne({ StreamName: undefined, StreamARN: 'arn:aws:sqs:us-east-1:123456789012:stream/clicks' }),
      path: 'StreamARN',
      rule: 'must match ^arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+$',
    },
    { name: 'Data null', call: putOne({ Data: null }), path: 'Data', rule: DATA_RULE },
    { name: 'Data undefined', call: putOne({ Data: undefined }), path: 'Data', rule: DATA_RULE },
    { name: 'Data a number', call: putOne({ Data: 42 }), path: 'Data', rule: DATA_RULE },
    { name: 'Data a plain object', call: putOne({ Data: { event: 'click' } }), path: 'Data', rule: DATA_RULE },
    { name: 'Data an ArrayBuffer', call: putOne({ Data: new ArrayBuffer(3) }), path: 'Data', rule: DATA_RULE },
    { name: 'Data an object in PutRecords', call: putMany([{ PartitionKey: 'k', Data: { a: 1 } }]), path: 'Records[0].Data', rule: DATA_RULE },
    { name: 'a typo: Streamname', call: putOne({ StreamName: undefined, Streamname: 'clicks' }), path: 'Streamname', rule: 'is not a field of this operation' },
    { name: 'an unknown record field', call: putMany([{ PartitionKey: 'k', Data: 'x', Key: 'y' }]), path: 'Records[0].Key', rule: 'is not a field of this operation' },
    { name: 'neither StreamName nor StreamARN', call: putOne({ StreamName: undefined }), path: '', rule: 'one of StreamName, StreamARN, StreamId is required' },
    { name: 'PutRecords without a stream', call: putMany([{ PartitionKey: 'k', Data: 'x' }], { StreamName: undefined }), path: '', rule: 'one of StreamName, StreamARN, StreamId is required' },
    { name: 'GetRecords Limit 0', call: (c: KinesisClient) => getRecords(c, { ShardIterator: 'it', Limit: 0 }), path: 'Limit', rule: 'must be at least 1' },
    { name: 'GetRecords Limit 10001', call: (c: KinesisClient) => getRecords(c, { ShardIterator: 'it', Limit: 10_001 }), path: 'Limit', rule: 'must be at most 10000' },
    { name: 'GetRecords Limit 1.5', call: (c: KinesisClient) => getRecords(c, { ShardIterator: 'it', Limit: 1.5 }), path: 'Limit', rule: 'must be an integer' },
    {
      name: 'an enum value not in the list',
      call: (c: KinesisClient) => getShardIterator(c, { StreamName: 'clicks', ShardId: 'shardId-000000000000', ShardIteratorType: 'OLDEST' as never }),
      path: 'ShardIteratorType',
      rule: 'must be one of AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP',
    },
    {
      name: 'a Timestamp that is not a Date',
      call: (c: KinesisClient) =>
        getShardIterator(c, { StreamName: 'clicks', ShardId: 'shardId-000000000000', ShardIteratorType: 'AT_TIMESTAMP', Timestamp: 1_700_000_000 as never }),
      path: 'Timestamp',
      rule: 'must be a valid Date',
    },
    {
      name: 'an invalid Date',
      call: (c: KinesisClient) =>
        getShardIterator(c, { StreamName: 'clicks', ShardId: 'shardId-000000000000', ShardIteratorType: 'AT_TIMESTAMP', Timestamp: new Date(Number.NaN) }),
      path: 'Timestamp',
      rule: 'must be a valid Date',
    },
    { name: 'CreateStream ShardCount 0', call: (c: KinesisClient) => createStream(c, { StreamName: 'clicks', ShardCount: 0 }), path: 'ShardCount', rule: 'must be at least 1' },
    { name: 'a required member left out (CreateStream without StreamName)', call: (c: KinesisClient) => createStream(c, {} as never), path: 'StreamName', rule: 'is required' },
  ])('refuses $name', async ({ call, path, rule }) => {
    const error = await rejected(call);
    expect(error.issues).toContainEqual({ path, rule });
    expect(error.message).toContain(`${path || '(root)'}: ${rule}`);
    expect(error.message).not.toContain('[object Object]');
  });

  it('reports every broken rule, with the index of each record', async () => {
    const error = await rejected(putMany([{ PartitionKey: '', Data: 'x' }, { PartitionKey: 'k', Data: 1 }, { PartitionKey: 'k', Data: 'x', ExplicitHashKey: '01' }]));
    expect(error.issues).toEqual(
      expect.arrayContaining([
        { path: 'Records[0].PartitionKey', rule: 'length must be at least 1' },
        { path: 'Records[1].Data', rule: DATA_RULE },
        { path: 'Records[2].ExplicitHashKey', rule: HASH_KEY_PATTERN },
      ]),
    );
    expect(error.message).toMatch(/^PutRecords: invalid input: /);
  });
});

describe('input validation: accepted at the limits', () => {
  it.each([
    { name: '256 ASCII', partitionKey: key('ascii_256') },
    { name: '128 emoji (256 UTF-16 units, 512 bytes)', partitionKey: key('emoji_128_codepoints_256_utf16') },
    { name: '256 CJK (768 bytes)', partitionKey: key('cjk_256_chars_768_bytes') },
    { name: 'a ZWJ family emoji', partitionKey: key('zwj_family_emoji') },
  ])('accepts partition key: $name', async ({ partitionKey }) => {
    const sent = await accepted(putOne({ PartitionKey: partitionKey }), putRecordOk());
    expect(sent.json.PartitionKey).toBe(partitionKey);
  });

  it.each(vectors.explicit_hash_keys.filter((v) => v.valid))('accepts ExplicitHashKey $value', async ({ value }) => {
    const sent = await accepted(putOne({ ExplicitHashKey: value }), putRecordOk());
    expect(sent.json.ExplicitHashKey).toBe(value);
  });

  it('accepts 128-character stream names and 500 records', async () => {
    await accepted(putOne({ StreamName: 'a-Z_0.9'.repeat(18).slice(0, 128) }), putRecordOk());
    const sent = await accepted(putMany(Array.from({ length: 500 }, (_, i) => ({ PartitionKey: `k${i}`, Data: 'x' }))), json(PUT_RECORDS_OK));
    expect(sent.json.Records).toHaveLength(500);
  });

  it('accepts GetRecords Limit 1 and 10000, and a StreamARN instead of a name', async () => {
    await accepted((c) => getRecords(c, { ShardIterator: 'it', Limit: 1 }), json({ Records: [] }));
    await accepted((c) => getRecords(c, { ShardIterator: 'it', Limit: 10_000 }), json({ Records: [] }));
    await accepted(putOne({ StreamName: undefined, StreamARN: 'arn:aws-cn:kinesis:cn-north-1:123456789012:stream/clicks' }), putRecordOk());
  });
});

describe('record and request size limits', () => {
  const validKeys = vectors.partition_keys.filter((k) => k.js_length_utf16_units <= 256);

  it.each(validKeys)('counts partition key $name as $utf8_bytes bytes: key + data at 1 MiB passes, one byte more fails', async (k) => {
    const atLimit = new Uint8Array(MiB - k.utf8_bytes);
    await accepted(putOne({ PartitionKey: k.partition_key, Data: atLimit }), putRecordOk());

    const over = new Uint8Array(MiB - k.utf8_bytes + 1);
    const error = await rejected(putOne({ PartitionKey: k.partition_key, Data: over }));
    expect(error.issues).toEqual([{ path: 'Data', rule: `partition key + data is ${MiB + 1} bytes, more than the record limit of ${MiB}` }]);
  });

  it('applies the record limit to each PutRecords entry', async () => {
    const error = await rejected(putMany([{ PartitionKey: 'k', Data: 'x' }, { PartitionKey: 'k', Data: new Uint8Array(MiB) }]));
    expect(error.issues).toEqual([{ path: 'Records[1].Data', rule: `partition key + data is ${MiB + 1} bytes, more than the record limit of ${MiB}` }]);
  });

  it('counts a string Data as its UTF-8 bytes', async () => {
    const almost = 'é'.repeat(MiB / 2); // 1 MiB of UTF-8 in half as many UTF-16 units
    const error = await rejected(putOne({ PartitionKey: 'k', Data: almost }));
    expect(error.issues[0]!.rule).toContain(`${MiB + 1} bytes`);
  });

  it('follows a raised limits.maxRecordBytes (10 MiB)', async () => {
    const limits = { maxRecordBytes: 10 * MiB, maxRequestBytes: 10 * MiB };
    await accepted(putOne({ PartitionKey: 'k', Data: new Uint8Array(10 * MiB - 1) }), putRecordOk(), limits);
    const error = await rejected(putOne({ PartitionKey: 'k', Data: new Uint8Array(10 * MiB) }), limits);
    expect(error.issues).toEqual([
      { path: 'Data', rule: `partition key + data is ${10 * MiB + 1} bytes, more than the record limit of ${10 * MiB}` },
    ]);
  });

  it('follows a lowered limit too', async () => {
    const error = await rejected(putOne({ PartitionKey: 'k', Data: new Uint8Array(100) }), { maxRecordBytes: 100 });
    expect(error.issues[0]).toEqual({ path: 'Data', rule: 'partition key + data is 101 bytes, more than the record limit of 100' });
  });

  it('accepts a request of exactly 5 MiB and refuses one byte more', async () => {
    const records = (extra: number) =>
      Array.from({ length: 5 }, (_, i) => ({ PartitionKey: 'k', Data: new Uint8Array(MiB - 1 + (i === 4 ? extra : 0)) }));
    await accepted(putMany(records(0)), json(PUT_RECORDS_OK));

    const error = await rejected(putMany(records(1)), { maxRecordBytes: 2 * MiB });
    expect(error.issues).toEqual([{ path: 'Records', rule: `records total ${5 * MiB + 1} bytes, more than the request limit of ${5 * MiB}` }]);
  });

  it.each([
    { limits: { maxRecordBytes: 0 } },
    { limits: { maxRecordBytes: 10 * MiB + 1 } },
    { limits: { maxRequestBytes: 1.5 } },
    { limits: { maxRequestBytes: 11 * MiB } },
  ])('refuses impossible limits $limits when the client is created', ({ limits }) => {
    expect(() => client(createFakeFetch(), limits)).toThrow(RangeError);
  });
});

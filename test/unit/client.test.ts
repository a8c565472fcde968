// The client's wire format (AWS JSON 1.1: https://docs.aws.amazon.com/kinesis/latest/APIReference/CommonParameters.html)
// and error parsing, with an injected fake fetch. Response shapes come from the Kinesis API
// reference (PutRecord, PutRecords, GetRecords, DescribeStreamSummary, the Channel operations);
// error shapes from the JSON protocol as the AWS SDKs parse it (aws-sdk-js-v3
// `protocols/json/parseJsonBody.ts`, `sanitizeErrorCode`).
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createChannel,
  createKinesisClient,
  deleteChannel,
  describeChannel,
  describeStreamSummary,
  getRecords,
  getShardIterator,
  isKinesisError,
  isKinesisNetworkError,
  isKinesisRetryQuotaExceededError,
  isKinesisServiceError,
  isKinesisTimeoutError,
  isKinesisValidationError,
  KinesisNetworkError,
  listAllShards,
  listAllStreamConsumers,
  listAllStreams,
  KinesisServiceError,
  KinesisValidationError,
  listAllChannels,
  listChannels,
  putRecord,
  putRecords,
  updateChannel,
  updateStreamRecordDistributionStrategy,
  type KinesisClientConfig,
} from '../../src/index.ts';
import { awsError, createFakeFetch, json, networkError, putRecordOk, raw, type FakeFetch } from '../support/fake-fetch.ts';

const vectors = JSON.parse(
  readFileSync(new URL('../fixtures/kinesis/partition-keys-and-numbers.json', import.meta.url), 'utf8'),
) as { sequence_numbers: { value: string }[] };
const BIG_SEQUENCE_NUMBERS = vectors.sequence_numbers.map((s) => s.value);

const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const STREAM_ARN = 'arn:aws:kinesis:us-east-1:123456789012:stream/clicks';
const CHANNEL_ARN = 'arn:aws:kinesis:us-east-1:123456789012:channel/to-s3';

function client(fake: FakeFetch | undefined, overrides: Partial<KinesisClientConfig> = {}) {
  return createKinesisClient({
    region: 'us-east-1',
    credentials: CREDENTIALS,
    ...(fake ? { fetch: fake } : {}),
    retry: { maxAttempts: 1 },
    ...overrides,
  });
}

const b64 = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64');

describe('client wire format', () => {
  it('POSTs JSON 1.1 to the endpoint root with the operation as X-Amz-Target', async () => {
    const fake = createFakeFetch([json({ FailedRecordCount: 0, Records: [{ ShardId: 's', SequenceNumber: '1' }] })]);
    await putRecords(client(fake, { endpoint: 'https://kinesis.eu-west-1.amazonaws.com/some/path?x=1' }), {
      StreamName: 'clicks',
      Records: [{ PartitionKey: 'user-1', Data: 'hi' }],
    });

    expect(fake.requests).toHaveLength(1);
    const [sent] = fake.requests;
    expect(sent).toMatchObject({ method: 'POST', url: 'https://kinesis.eu-west-1.amazonaws.com/', operation: 'PutRecords' });
    expect(sent!.headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(sent!.headers['x-amz-target']).toBe('Kinesis_20131202.PutRecords');
    expect(sent!.json).toEqual({ StreamName: 'clicks', Records: [{ PartitionKey: 'user-1', Data: b64('hi') }] });
  });

  it('uses https://kinesis.<region>.amazonaws.com by default', async () => {
    const fake = createFakeFetch([putRecordOk()]);
    await putRecord(client(fake, { region: 'ap-southeast-2' }), { StreamName: 's', PartitionKey: 'k', Data: 'x' });
    expect(fake.requests[0]!.url).toBe('https://kinesis.ap-southeast-2.amazonaws.com/');
  });

  it.each([
    { name: 'bytes 00 ff 10', data: new Uint8Array([0x00, 0xff, 0x10]), wire: 'AP8Q' },
    { name: 'a UTF-8 string, base64 once', data: 'héllo 😀', wire: b64('héllo 😀') },
    { name: 'a base64-looking string, encoded again', data: 'AP8Q', wire: 'QVA4UQ==' },
    { name: 'an empty string', data: '', wire: '' },
    { name: 'a subarray (only its own bytes)', data: new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4), wire: 'AQID' },
  ])('sends Data as base64: $name', async ({ data, wire }) => {
    const fake = createFakeFetch([putRecordOk()]);
    await putRecord(client(fake), { StreamName: 's', PartitionKey: 'k', Data: data });
    expect(fake.requests[0]!.json.Data).toBe(wire);
    expect(Buffer.from(fake.requests[0]!.json.Data, 'base64')).toEqual(Buffer.from(data));
  });

  it('decodes Data in GetRecords back to the same bytes', async () => {
    const fake = createFakeFetch([
      json({
        Records: [{ SequenceNumber: BIG_SEQUENCE_NUMBERS[0], PartitionKey: 'k', Data: 'AP8Q', ApproximateArrivalTimestamp: 1767225600.5 }],
        NextShardIterator: 'it-2',
        MillisBehindLatest: 0,
      }),
    ]);
    const out = await getRecords(client(fake), { ShardIterator: 'it-1' });

    expect(out.Records[0]!.Data).toBeInstanceOf(Uint8Array);
    expect([...out.Records[0]!.Data]).toEqual([0x00, 0xff, 0x10]);
    expect(out.Records[0]!.ApproximateArrivalTimestamp).toEqual(new Date(Date.UTC(2026, 0, 1, 0, 0, 0, 500)));
  });

  it('sends a Date as epoch seconds (with fraction)', async () => {
    const fake = createFakeFetch([json({ ShardIterator: 'it' })]);
    await getShardIterator(client(fake), {
      StreamName: 's',
      ShardId: 'shardId-000000000000',
      ShardIteratorType: 'AT_TIMESTAMP',
      Timestamp: new Date(1_700_000_000_123),
    });
    expect(fake.requests[0]!.json.Timestamp).toBe(1_700_000_000.123);
    expect(fake.requests[0]!.body).toContain('"Timestamp":1700000000.123');
  });

  it('turns epoch seconds in a response into a Date', async () => {
    const fake = createFakeFetch([
      json({
        StreamDescriptionSummary: {
          StreamName: 's',
          StreamARN: STREAM_ARN,
          StreamStatus: 'ACTIVE',
          RetentionPeriodHours: 24,
          StreamCreationTimestamp: 1_700_000_000,
          EnhancedMonitoring: [],
          OpenShardCount: 1,
        },
      }),
    ]);
    const out = await describeStreamSummary(client(fake), { StreamName: 's' });
    expect(out.StreamDescriptionSummary.StreamCreationTimestamp).toEqual(new Date(1_700_000_000_000));
  });

  it('treats null fields in a response as absent', async () => {
    const fake = createFakeFetch([json({ Records: [], NextShardIterator: null, MillisBehindLatest: 0, ChildShards: null })]);
    const out = await getRecords(client(fake), { ShardIterator: 'it' });
    expect(out).toEqual({ Records: [], MillisBehindLatest: 0 });
    expect('NextShardIterator' in out).toBe(false);
  });

  it('keeps unknown response fields', async () => {
    const fake = createFakeFetch([json({ ShardId: 'shardId-000000000001', SequenceNumber: '1', EncryptionType: 'NONE', NewField: { a: 1 } })]);
    const out = await putRecord(client(fake), { StreamName: 's', PartitionKey: 'k', Data: 'x' });
    expect(out).toMatchObject({ ShardId: 'shardId-000000000001', NewField: { a: 1 } });
  });

  it('returns sequence numbers as the exact strings the service sent', async () => {
    expect(BIG_SEQUENCE_NUMBERS.length).toBeGreaterThanOrEqual(3);
    const body = `{"FailedRecordCount":0,"Records":[${BIG_SEQUENCE_NUMBERS.map((s) => `{"ShardId":"shardId-000000000000","SequenceNumber":"${s}"}`).join(',')}]}`;
    const fake = createFakeFetch([raw(200, body, { 'content-type': 'application/x-amz-json-1.1' })]);
    const out = await putRecords(client(fake), {
      StreamName: 's',
      Records: BIG_SEQUENCE_NUMBERS.map((_, i) => ({ PartitionKey: `k${i}`, Data: 'x' })),
    });

    expect(out.Records.map((r) => r.SequenceNumber)).toEqual(BIG_SEQUENCE_NUMBERS);
    for (const r of out.Records) expect(typeof r.SequenceNumber).toBe('string');
    // The values really are beyond what a Number keeps.
    expect(String(Number(BIG_SEQUENCE_NUMBERS[0]))).not.toBe(BIG_SEQUENCE_NUMBERS[0]);
  });

  it('sends SequenceNumberForOrdering as the exact string', async () => {
    const fake = createFakeFetch([putRecordOk()]);
    await putRecord(client(fake), { StreamName: 's', PartitionKey: 'k', Data: 'x', SequenceNumberForOrdering: BIG_SEQUENCE_NUMBERS[0] });
    expect(fake.requests[0]!.body).toContain(`"SequenceNumberForOrdering":"${BIG_SEQUENCE_NUMBERS[0]}"`);
  });

  it('rejects a response that lacks a required member as an output validation error', async () => {
    const fake = createFakeFetch([json({ ShardId: 'shardId-000000000000' })]);
    const error = await putRecord(client(fake), { StreamName: 's', PartitionKey: 'k', Data: 'x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KinesisValidationError);
    expect(error).toMatchObject({ source: 'output', operation: 'PutRecord', issues: [{ path: 'SequenceNumber', rule: 'is required' }] });
  });

  it('rejects a 200 answer that is not JSON as an output validation error', async () => {
    const fake = createFakeFetch([raw(200, '<html>captive portal</html>')]);
    const error = await putRecord(client(fake), { StreamName: 's', PartitionKey: 'k', Data: 'x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KinesisValidationError);
    expect((error as KinesisValidationError).source).toBe('output');
    expect((error as Error).message).toContain('captive portal');
  });
});

describe('client fetch injection', () => {
  const original = globalThis.fetch;
  afterEach(() => {
    globalThis.fetch = original;
  });

  it('reads globalThis.fetch at call time, not when the client is created', async () => {
    const c = client(undefined);
    const first = createFakeFetch([putRecordOk()]);
    const second = createFakeFetch([putRecordOk()]);

    globalThis.fetch = first;
    await putRecord(c, { StreamName: 's', PartitionKey: 'k', Data: 'x' });
    globalThis.fetch = second;
    await putRecord(c, { StreamName: 's', PartitionKey: 'k', Data: 'x' });

    expect(first.requests).toHaveLength(1);
    expect(second.requests).toHaveLength(1);
  });

  it('prefers the configured fetch over globalThis.fetch', async () => {
    const global = createFakeFetch([putRecordOk()]);
    const configured = createFakeFetch([putRecordOk()]);
    globalThis.fetch = global;
    await putRecord(client(configured), { StreamName: 's', PartitionKey: 'k', Data: 'x' });
    expect(configured.requests).toHaveLength(1);
    expect(global.requests).toHaveLength(0);
  });
});

describe('client error parsing', () => {
  it.each([
    {
      name: 'x-amzn-ErrorType with a coral URL suffix',
      response: () =>
        raw(400, JSON.stringify({ message: 'The request signature we calculated does not match' }), {
          'x-amzn-ErrorType': 'InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/',
          'x-amzn-RequestId': 'r-1',
        }),
      code: 'InvalidSignatureException',
      status: 400,
      requestId: 'r-1',
      message: 'The request signature we calculated does not match',
      retryable: false,
    },
    {
      name: '__type with a namespace',
      response: () =>
        raw(
          400,
          JSON.stringify({
            __type: 'com.amazonaws.kinesis.v20131202#ProvisionedThroughputExceededException',
            message: 'Rate exceeded for shard shardId-000000000000 in stream clicks under account 123456789012.',
          }),
          { 'x-amzn-RequestId': 'r-2' },
        ),
      code: 'ProvisionedThroughputExceededException',
      status: 400,
      requestId: 'r-2',
      message: 'Rate exceeded for shard shardId-000000000000 in stream clicks under account 123456789012.',
      retryable: true,
    },
    {
      name: 'Message with a capital M',
      response: () => raw(400, JSON.stringify({ __type: 'ResourceNotFoundException', Message: 'Stream clicks not found.' })),
      code: 'ResourceNotFoundException',
      status: 400,
      requestId: undefined,
      message: 'Stream clicks not found.',
      retryable: false,
    },
    {
      name: 'x-amz-request-id as the request id',
      response: () => raw(400, JSON.stringify({ __type: 'ValidationException', message: 'bad' }), { 'x-amz-request-id': 'r-3' }),
      code: 'ValidationException',
      status: 400,
      requestId: 'r-3',
      message: 'bad',
      retryable: false,
    },
    {
      name: 'an empty 500',
      response: () => raw(500, ''),
      code: 'Http500',
      status: 500,
      requestId: undefined,
      message: 'HTTP 500 with an empty body',
      retryable: true,
    },
    {
      name: 'a non-JSON 502 from a proxy',
      response: () => raw(502, '<html><body>Bad Gateway</body></html>', { 'content-type': 'text/html' }),
      code: 'Http502',
      status: 502,
      requestId: undefined,
      message: 'HTTP 502 with body: <html><body>Bad Gateway</body></html>',
      retryable: true,
    },
    {
      name: 'a 429 without a fault name',
      response: () => raw(429, ''),
      code: 'TooManyRequestsException',
      status: 429,
      requestId: undefined,
      message: 'HTTP 429 with an empty body',
      retryable: true,
    },
  ])('parses $name', async ({ response, code, status, requestId, message, retryable }) => {
    const fake = createFakeFetch([response()]);
    const error = await putRecord(client(fake), { StreamName: 'clicks', PartitionKey: 'k', Data: 'x' }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(KinesisServiceError);
    expect(error).toMatchObject({ name: 'KinesisServiceError', code, status, requestId, operation: 'PutRecord', serviceMessage: message, retryable });
    expect((error as Error).message).toBe(
      `PutRecord failed: ${code} (${status}${requestId ? `, request ${requestId}` : ''}): ${message}`,
    );
    expect(fake.requests).toHaveLength(1);
  });

  it('chains the fetch error as cause of a network error', async () => {
    const cause = networkError();
    const fake = createFakeFetch([cause]);
    const error = await putRecord(client(fake), { StreamName: 's', PartitionKey: 'k', Data: 'x' }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(KinesisNetworkError);
    expect((error as Error).cause).toBe(cause);
    expect((error as Error).message).toBe('PutRecord failed: network error (Failed to fetch)');
    expect(error).toMatchObject({ operation: 'PutRecord', retryable: true });
  });
});

describe('error guards', () => {
  it.each([
    { name: 'KinesisServiceError', guard: isKinesisServiceError },
    { name: 'KinesisNetworkError', guard: isKinesisNetworkError },
    { name: 'KinesisTimeoutError', guard: isKinesisTimeoutError },
    { name: 'KinesisValidationError', guard: isKinesisValidationError },
    { name: 'KinesisRetryQuotaExceededError', guard: isKinesisRetryQuotaExceededError },
  ])('$name: recognises a plain object from another bundle copy by name, and nothing else', ({ name, guard }) => {
    const foreign = { name, message: 'from the other copy' };
    expect(guard(foreign)).toBe(true);
    expect(isKinesisError(foreign)).toBe(true);
    expect(guard({ name: 'Error' })).toBe(false);
    expect(guard(new Error(name))).toBe(false);
    expect(guard(null)).toBe(false);
    expect(guard(name)).toBe(false);
  });

  it('recognises real instances', () => {
    const error = new KinesisServiceError({ code: 'ValidationException', status: 400, message: 'm', operation: 'PutRecord' });
    expect(isKinesisServiceError(error)).toBe(true);
    expect(isKinesisError(error)).toBe(true);
    expect(isKinesisNetworkError(error)).toBe(false);
  });
});

// kinesis-local has no Channel operations, so their wire requests are checked here.
const CHANNEL_DESCRIPTION = {
  ChannelARN: CHANNEL_ARN,
  ChannelCreationTimestamp: 1_767_225_600,
  ChannelId: 'abcdefghijabcdefghij-abc',
  ChannelName: 'to-s3',
  ChannelStatus: 'ACTIVE',
  LoggingConfiguration: { CloudWatchLogs: { Enabled: false } },
  ServiceExecutionRoleARN: 'arn:aws:iam::123456789012:role/channel-role',
  StreamConfigurationList: [{ RecordConfiguration: { RecordFormatType: 'JSON' }, StreamARN: STREAM_ARN, StreamCreationTimestamp: 1_767_225_000 }],
};
const CHANNEL_SUMMARY = {
  ChannelARN: CHANNEL_ARN,
  ChannelCreationTimestamp: 1_767_225_600,
  ChannelDestinationType: 'S3',
  ChannelId: 'abcdefghijabcdefghij-abc',
  ChannelName: 'to-s3',
  ChannelStatus: 'ACTIVE',
  Streams: [{ StreamARN: STREAM_ARN, StreamCreationTimestamp: 1_767_225_000 }],
};

describe('channel operations (wire only: kinesis-local lacks them)', () => {
  it('createChannel sends its input and parses the description', async () => {
    const fake = createFakeFetch([json({ ChannelDescription: CHANNEL_DESCRIPTION })]);
    const input = {
      ChannelName: 'to-s3',
      ServiceExecutionRoleARN: 'arn:aws:iam::123456789012:role/channel-role',
      StreamConfigurationList: [{ RecordConfiguration: { RecordFormatType: 'JSON' as const }, StreamARN: STREAM_ARN }],
    };
    const out = await createChannel(client(fake), input);

    expect(fake.requests[0]).toMatchObject({ operation: 'CreateChannel', json: input });
    expect(out.ChannelDescription.ChannelCreationTimestamp).toEqual(new Date(1_767_225_600_000));
    expect(out.ChannelDescription.StreamConfigurationList[0]!.StreamCreationTimestamp).toEqual(new Date(1_767_225_000_000));
  });

  it('describeChannel, updateChannel and deleteChannel send the channel ARN', async () => {
    const fake = createFakeFetch([json({ ChannelDescription: CHANNEL_DESCRIPTION }), json({ ChannelDescription: CHANNEL_DESCRIPTION }), json({})]);
    const c = client(fake);
    await describeChannel(c, { ChannelARN: CHANNEL_ARN });
    await updateChannel(c, { ChannelARN: CHANNEL_ARN, S3DestinationConfiguration: { DataFreshnessInSeconds: 300 } });
    const deleted = await deleteChannel(c, { ChannelARN: CHANNEL_ARN });

    expect(fake.requests.map((r) => [r.operation, r.json])).toEqual([
      ['DescribeChannel', { ChannelARN: CHANNEL_ARN }],
      ['UpdateChannel', { ChannelARN: CHANNEL_ARN, S3DestinationConfiguration: { DataFreshnessInSeconds: 300 } }],
      ['DeleteChannel', { ChannelARN: CHANNEL_ARN }],
    ]);
    expect(deleted).toBeUndefined();
  });

  it('listChannels and listAllChannels follow NextToken', async () => {
    const fake = createFakeFetch([
      json({ ChannelSummaries: [CHANNEL_SUMMARY], NextToken: 'page-2' }),
      json({ ChannelSummaries: [{ ...CHANNEL_SUMMARY, ChannelName: 'second' }] }),
      json({ ChannelSummaries: [] }),
    ]);
    const c = client(fake);
    const names: string[] = [];
    for await (const summary of listAllChannels(c, { MaxResults: 1 })) names.push(summary.ChannelName);
    const single = await listChannels(c, {});

    expect(names).toEqual(['to-s3', 'second']);
    expect(fake.requests.map((r) => r.json)).toEqual([{ MaxResults: 1 }, { MaxResults: 1, NextToken: 'page-2' }, {}]);
    expect(single.ChannelSummaries).toEqual([]);
  });

  it('rejects a malformed channel ARN before sending', async () => {
    const fake = createFakeFetch();
    const error = await describeChannel(client(fake), { ChannelARN: STREAM_ARN }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KinesisValidationError);
    expect((error as KinesisValidationError).issues[0]!.path).toBe('ChannelARN');
    expect(fake.requests).toHaveLength(0);
  });
});

describe('updateStreamRecordDistributionStrategy (wire only: kinesis-local lacks it)', () => {
  it('sends the strategy and the stream ARN', async () => {
    const fake = createFakeFetch([json({})]);
    await updateStreamRecordDistributionStrategy(client(fake), { StreamARN: STREAM_ARN, RecordDistributionStrategy: 'AUTO' });
    expect(fake.requests[0]).toMatchObject({
      operation: 'UpdateStreamRecordDistributionStrategy',
      json: { StreamARN: STREAM_ARN, RecordDistributionStrategy: 'AUTO' },
    });
  });
});

describe('paginators (request shapes; kinesis-local returns no NextToken for ListStreamConsumers)', () => {
  const consumer = (name: string) => ({
    ConsumerARN: `${STREAM_ARN}/consumer/${name}:1767225600`,
    ConsumerCreationTimestamp: 1_767_225_600,
    ConsumerName: name,
    ConsumerStatus: 'ACTIVE',
  });

  it('listAllStreamConsumers keeps StreamARN and MaxResults with each NextToken', async () => {
    const fake = createFakeFetch([
      json({ Consumers: [consumer('a')], NextToken: 't1' }),
      json({ Consumers: [consumer('b')], NextToken: 't2' }),
      json({ Consumers: [] }),
    ]);
    const names: string[] = [];
    for await (const c of listAllStreamConsumers(client(fake), { StreamARN: STREAM_ARN, MaxResults: 1 })) names.push(c.ConsumerName);

    expect(names).toEqual(['a', 'b']);
    expect(fake.requests.map((r) => r.json)).toEqual([
      { StreamARN: STREAM_ARN, MaxResults: 1 },
      { StreamARN: STREAM_ARN, NextToken: 't1', MaxResults: 1 },
      { StreamARN: STREAM_ARN, NextToken: 't2', MaxResults: 1 },
    ]);
  });

  it('listAllShards sends only NextToken (and MaxResults) after the first page, as ListShards requires', async () => {
    const shard = (id: string) => ({
      ShardId: id,
      HashKeyRange: { StartingHashKey: '0', EndingHashKey: '1' },
      SequenceNumberRange: { StartingSequenceNumber: '1' },
    });
    const fake = createFakeFetch([json({ Shards: [shard('s0')], NextToken: 'n1' }), json({ Shards: [shard('s1')] })]);
    const ids: string[] = [];
    for await (const s of listAllShards(client(fake), { StreamName: 'clicks', MaxResults: 1 })) ids.push(s.ShardId);

    expect(ids).toEqual(['s0', 's1']);
    expect(fake.requests.map((r) => r.json)).toEqual([{ StreamName: 'clicks', MaxResults: 1 }, { NextToken: 'n1', MaxResults: 1 }]);
  });

  it('listAllStreams follows HasMoreStreams with ExclusiveStartStreamName when there is no NextToken', async () => {
    const fake = createFakeFetch([
      json({ StreamNames: ['a', 'b'], HasMoreStreams: true }),
      json({ StreamNames: ['c'], HasMoreStreams: false }),
    ]);
    const names: string[] = [];
    for await (const s of listAllStreams(client(fake), { Limit: 2 })) names.push(s.StreamName);

    expect(names).toEqual(['a', 'b', 'c']);
    expect(fake.requests.map((r) => r.json)).toEqual([{ Limit: 2 }, { Limit: 2, ExclusiveStartStreamName: 'b' }]);
  });
});

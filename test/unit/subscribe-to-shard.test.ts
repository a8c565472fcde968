import { describe, expect, it } from 'vitest';
import { createKinesisClient, type KinesisClient } from '../../src/client.ts';
import { KinesisServiceError } from '../../src/errors.ts';
import { encodeEventStreamMessage } from '../../src/event-stream/decoder.ts';
import { subscribeToShard, type SubscribeToShardEvent, type SubscribeToShardInput } from '../../src/event-stream/subscribe.ts';
import { decodeUtf8 } from '../../src/internal/utf8.ts';
import { awsError, json, networkError } from '../support/fake-fetch.ts';
import {
  childShard,
  errorMessage,
  eventMessage,
  eventStreamResponse,
  exceptionMessage,
  initialResponse,
  streamingFetch,
  wireRecord,
} from '../support/event-stream-fake.ts';

const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const CONSUMER_ARN = 'arn:aws:kinesis:us-east-1:123456789012:stream/clicks/consumer/dashboard:1700000000';
const INPUT: SubscribeToShardInput = { ConsumerARN: CONSUMER_ARN, ShardId: 'shardId-000000000000', StartingPosition: { Type: 'TRIM_HORIZON' } };

function clientWith(fake: typeof fetch, timeoutMs = 10_000): KinesisClient {
  return createKinesisClient({
    region: 'us-east-1',
    credentials: CREDENTIALS,
    fetch: fake,
    timeoutMs,
    retry: { random: () => 0, maxAttempts: 3 },
  });
}

async function collect(iterable: AsyncIterable<SubscribeToShardEvent>): Promise<SubscribeToShardEvent[]> {
  const out: SubscribeToShardEvent[] = [];
  for await (const event of iterable) out.push(event);
  return out;
}

describe('subscribeToShard', () => {
  it('sends a signed SubscribeToShard request and yields typed events, skipping initial-response', async () => {
    const stream = eventStreamResponse([
      initialResponse(),
      eventMessage([wireRecord('101', 'hello'), wireRecord('102', 'world', 'k2')], '102', { millisBehindLatest: 7 }),
      eventMessage([], '102'),
    ]);
    const fake = streamingFetch([stream.response]);
    const at = new Date('2024-01-02T03:04:05.250Z');
    const events = await collect(
      subscribeToShard(clientWith(fake), { ...INPUT, StartingPosition: { Type: 'AT_TIMESTAMP', Timestamp: at } }),
    );

    const [request] = fake.requests;
    expect(request!.operation).toBe('SubscribeToShard');
    expect(request!.headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(request!.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/us-east-1\/kinesis\/aws4_request/);
    expect(request!.json).toEqual({
      ConsumerARN: CONSUMER_ARN,
      ShardId: 'shardId-000000000000',
      StartingPosition: { Type: 'AT_TIMESTAMP', Timestamp: at.getTime() / 1000 },
    });

    expect(events).toHaveLength(2);
    const [first, second] = events;
    expect(first!.ContinuationSequenceNumber).toBe('102');
    expect(first!.MillisBehindLatest).toBe(7);
    expect(first!).not.toHaveProperty('ChildShards');
    expect(first!.Records.map((r) => [r.SequenceNumber, r.PartitionKey, decodeUtf8(r.Data)])).toEqual([
      ['101', 'pk', 'hello'],
      ['102', 'k2', 'world'],
    ]);
    expect(first!.Records[0]!.Data).toBeInstanceOf(Uint8Array);
    expect(first!.Records[0]!.ApproximateArrivalTimestamp).toEqual(new Date(1_700_000_000_500));
    expect(second!.Records).toEqual([]);
  });

  it('yields the last event of a closed shard with ChildShards and no continuation', async () => {
    const children = [childShard('shardId-000000000001', ['shardId-000000000000'])];
    const fake = streamingFetch([eventStreamResponse([eventMessage([], null, { childShards: children })]).response]);
    const [event] = await collect(subscribeToShard(clientWith(fake), INPUT));
    expect(event!.ContinuationSequenceNumber).toBeUndefined();
    expect(event!.ChildShards).toEqual(children);
  });

  it.each([
    ['AFTER_SEQUENCE_NUMBER without SequenceNumber', { Type: 'AFTER_SEQUENCE_NUMBER' }, /SequenceNumber is required/],
    ['AT_TIMESTAMP without Timestamp', { Type: 'AT_TIMESTAMP' }, /Timestamp is required/],
    ['an unknown Type', { Type: 'NEWEST' }, /StartingPosition\.Type: must be one of/],
    ['a SequenceNumber that is not digits', { Type: 'AT_SEQUENCE_NUMBER', SequenceNumber: '12a' }, /StartingPosition\.SequenceNumber: must match/],
  ])('refuses a StartingPosition with %s before sending anything', async (_label, position, message) => {
    const fake = streamingFetch([]);
    const run = collect(subscribeToShard(clientWith(fake), { ...INPUT, StartingPosition: position as never }));
    await expect(run).rejects.toMatchObject({ name: 'KinesisValidationError', source: 'input' });
    await expect(run).rejects.toThrow(message);
    expect(fake.requests).toHaveLength(0);
  });

  it('refuses a ConsumerARN that is not a consumer ARN', async () => {
    const fake = streamingFetch([]);
    const run = collect(subscribeToShard(clientWith(fake), { ...INPUT, ConsumerARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/clicks' }));
    await expect(run).rejects.toThrow(/SubscribeToShard: invalid input: ConsumerARN: must match/);
    expect(fake.requests).toHaveLength(0);
  });

  it('turns an exception message into the typed KinesisServiceError', async () => {
    const fake = streamingFetch([
      eventStreamResponse([exceptionMessage('ResourceInUseException', 'Another active subscription exists')], { requestId: 'r-1' }).response,
    ]);
    const error = await collect(subscribeToShard(clientWith(fake), INPUT)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KinesisServiceError);
    expect(error).toMatchObject({ code: 'ResourceInUseException', status: 200, requestId: 'r-1', operation: 'SubscribeToShard', retryable: false });
    expect((error as Error).message).toBe('SubscribeToShard failed: ResourceInUseException (200, request r-1): Another active subscription exists');
  });

  it('turns an unmodeled error message into a KinesisServiceError from its headers, after the events before it', async () => {
    const fake = streamingFetch([eventStreamResponse([eventMessage([wireRecord('1', 'a')], '1'), errorMessage('InternalError', 'An internal server error occurred.')]).response]);
    const seen: SubscribeToShardEvent[] = [];
    const error = await (async () => {
      for await (const event of subscribeToShard(clientWith(fake), INPUT)) seen.push(event);
    })().catch((e: unknown) => e);
    expect(seen).toHaveLength(1);
    expect(error).toMatchObject({ name: 'KinesisServiceError', code: 'InternalError', serviceMessage: 'An internal server error occurred.' });
  });

  it('parses a non-200 answer like any call, and retries a retryable one', async () => {
    const ok = eventStreamResponse([eventMessage([], '5')]);
    const fake = streamingFetch([awsError(500, 'InternalFailure'), networkError(), ok.response]);
    const events = await collect(subscribeToShard(clientWith(fake), INPUT));
    expect(events).toHaveLength(1);
    expect(fake.requests).toHaveLength(3);
  });

  it('throws a fatal non-200 answer with the service fault name', async () => {
    const fake = streamingFetch([awsError(400, 'ResourceNotFoundException', 'Consumer not found')]);
    await expect(collect(subscribeToShard(clientWith(fake), INPUT))).rejects.toMatchObject({
      name: 'KinesisServiceError',
      code: 'ResourceNotFoundException',
      status: 400,
      message: 'SubscribeToShard failed: ResourceNotFoundException (400, request req-ResourceNotFoundException): Consumer not found',
    });
    expect(fake.requests).toHaveLength(1);
  });

  it('refuses a 200 answer that is not an event stream', async () => {
    const fake = streamingFetch([json({ Records: [] })]);
    await expect(collect(subscribeToShard(clientWith(fake), INPUT))).rejects.toMatchObject({
      name: 'KinesisValidationError',
      source: 'output',
      message: expect.stringMatching(/response is not an event stream \(content-type application\/x-amz-json-1\.1\)/),
    });
  });

  it('refuses an event whose payload breaks the output shape', async () => {
    const bad = encodeEventStreamMessage({
      headers: { ':message-type': { type: 'string', value: 'event' }, ':event-type': { type: 'string', value: 'SubscribeToShardEvent' } },
      payload: new TextEncoder().encode('{"Records":[{"SequenceNumber":"1"}],"MillisBehindLatest":0}'),
    });
    const fake = streamingFetch([eventStreamResponse([bad]).response]);
    await expect(collect(subscribeToShard(clientWith(fake), INPUT))).rejects.toThrow(/SubscribeToShard: unexpected response: Records\[0\]\.Data/);
  });

  it.each([
    ['cut mid-message', 'cut', { name: 'KinesisEventStreamError', fault: 'truncated', retryable: true }],
    ['reset by the network', 'error', { name: 'KinesisNetworkError', retryable: true }],
  ] as const)('throws when the body is %s, after the whole events', async (_label, then, expected) => {
    const fake = streamingFetch([eventStreamResponse([eventMessage([wireRecord('1', 'a')], '1')], { then }).response]);
    const seen: SubscribeToShardEvent[] = [];
    const error = await (async () => {
      for await (const event of subscribeToShard(clientWith(fake), INPUT)) seen.push(event);
    })().catch((e: unknown) => e);
    expect(seen.map((e) => e.ContinuationSequenceNumber)).toEqual(['1']);
    expect(error).toMatchObject(expected);
  });

  it('throws on a corrupt message', async () => {
    const message = eventMessage([], '1').slice();
    message[20]! ^= 0xff;
    const fake = streamingFetch([eventStreamResponse([message]).response]);
    await expect(collect(subscribeToShard(clientWith(fake), INPUT))).rejects.toMatchObject({ fault: 'message-crc', operation: 'SubscribeToShard' });
  });

  it('cancels the body when the caller breaks out', async () => {
    const stream = eventStreamResponse([eventMessage([], '1'), eventMessage([], '2')], { then: 'hang' });
    const fake = streamingFetch([stream.response]);
    for await (const _ of subscribeToShard(clientWith(fake), INPUT)) break;
    expect(stream.cancelled).toBe(true);
    expect(fake.requests[0]!.signal!.aborted).toBe(true);
  });

  it('rejects with the abort reason and cancels the body when the signal aborts mid-stream', async () => {
    const stream = eventStreamResponse([eventMessage([], '1')], { then: 'hang' });
    const fake = streamingFetch([stream.response]);
    const controller = new AbortController();
    const run = (async () => {
      for await (const _ of subscribeToShard(clientWith(fake), INPUT, { signal: controller.signal })) {
        setTimeout(() => controller.abort(new Error('user stop')), 5);
      }
    })();
    await expect(run).rejects.toThrow('user stop');
    expect(stream.cancelled).toBe(true);
  });

  it('gives up a silent subscription after idleTimeoutMs with a retryable timeout, and releases it', async () => {
    const stream = eventStreamResponse([eventMessage([], '1')], { then: 'hang' });
    const fake = streamingFetch([stream.response]);
    const run = collect(subscribeToShard(clientWith(fake), INPUT, { idleTimeoutMs: 40 }));
    await expect(run).rejects.toMatchObject({ name: 'KinesisTimeoutError', retryable: true, operation: 'SubscribeToShard' });
    expect(stream.cancelled).toBe(true);
  });

  it('does not count the time the caller holds an event against idleTimeoutMs', async () => {
    const stream = eventStreamResponse([eventMessage([], '1'), eventMessage([], '2')]);
    const fake = streamingFetch([stream.response]);
    const seen: string[] = [];
    for await (const event of subscribeToShard(clientWith(fake), INPUT, { idleTimeoutMs: 30 })) {
      seen.push(event.ContinuationSequenceNumber!);
      await new Promise((resolve) => setTimeout(resolve, 80));
    }
    expect(seen).toEqual(['1', '2']);
  });

  it('times out waiting for the response headers with the client timeout, and retries', async () => {
    const ok = eventStreamResponse([eventMessage([], '9')]);
    const fake = streamingFetch([
      (request) => new Promise<Response>((_resolve, reject) => request.signal!.addEventListener('abort', () => reject(request.signal!.reason))),
      ok.response,
    ]);
    const events = await collect(subscribeToShard(clientWith(fake, 50), INPUT));
    expect(events).toHaveLength(1);
    expect(fake.requests).toHaveLength(2);
  });
});

import { describe, expect, it } from 'vitest';
import { createKinesisClient, type KinesisClient } from '../../src/client.ts';
import type { ShardBatch, ShardEnd } from '../../src/consumer/read-shard.ts';
import { readShardEnhanced, readShardEnhancedBatches, type ReadShardEnhancedOptions } from '../../src/event-stream/read-shard-enhanced.ts';
import { decodeUtf8 } from '../../src/internal/utf8.ts';
import { encodeAggregatedRecord } from '../../src/internal/kpl.ts';
import { encodeBase64 } from '../../src/internal/base64.ts';
import { awsError, networkError } from '../support/fake-fetch.ts';
import {
  childShard,
  eventMessage,
  eventStreamResponse,
  exceptionMessage,
  initialResponse,
  streamingFetch,
  wireRecord,
} from '../support/event-stream-fake.ts';

const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const CONSUMER_ARN = 'arn:aws:kinesis:us-east-1:123456789012:stream/clicks/consumer/dashboard:1700000000';
const SHARD = 'shardId-000000000000';

function clientWith(fake: typeof fetch): KinesisClient {
  // One attempt per subscribe call, so the reader's own renewal is what the tests see.
  return createKinesisClient({ region: 'us-east-1', credentials: CREDENTIALS, fetch: fake, retry: { maxAttempts: 1 } });
}

function options(extra: Partial<ReadShardEnhancedOptions> = {}): ReadShardEnhancedOptions {
  return {
    consumerARN: CONSUMER_ARN,
    shardId: SHARD,
    from: { type: 'TRIM_HORIZON' },
    throttleDelayMs: 1,
    maxThrottleDelayMs: 2,
    random: () => 0,
    ...extra,
  };
}

async function drain(iterator: AsyncGenerator<ShardBatch, ShardEnd>): Promise<{ batches: ShardBatch[]; end: ShardEnd }> {
  const batches: ShardBatch[] = [];
  for (;;) {
    const step = await iterator.next();
    if (step.done) return { batches, end: step.value };
    batches.push(step.value);
  }
}

const texts = (batches: ShardBatch[]) => batches.flatMap((b) => b.records.map((r) => decodeUtf8(r.data)));
const positions = (fake: ReturnType<typeof streamingFetch>) => fake.requests.map((r) => r.json.StartingPosition);
const CHILDREN = [childShard('shardId-000000000001', [SHARD]), childShard('shardId-000000000002', [SHARD])];

describe('readShardEnhancedBatches', () => {
  it('renews an ended subscription from the last continuation, and ends with the child shards', async () => {
    const fake = streamingFetch([
      eventStreamResponse([initialResponse(), eventMessage([wireRecord('1', 'a'), wireRecord('2', 'b')], '2'), eventMessage([], '3')]).response,
      eventStreamResponse([eventMessage([wireRecord('4', 'c')], '4', { millisBehindLatest: 12 }), eventMessage([wireRecord('5', 'd')], null, { childShards: CHILDREN })]).response,
    ]);
    const { batches, end } = await drain(readShardEnhancedBatches(clientWith(fake), options()));
    expect(texts(batches)).toEqual(['a', 'b', 'c', 'd']);
    expect(positions(fake)).toEqual([{ Type: 'TRIM_HORIZON' }, { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: '3' }]);
    expect(batches.map((b) => [b.isShardEnd, b.millisBehindLatest])).toEqual([[false, 0], [false, 12], [true, 0]]);
    expect(batches[2]!.childShards).toEqual(CHILDREN);
    expect(end.childShards).toEqual(CHILDREN);
    expect(batches[0]!.records[0]).toMatchObject({ shardId: SHARD, sequenceNumber: '1', partitionKey: 'pk', arrivalTime: new Date(1_700_000_000_500) });
  });

  it('ends on a last event with child shards and an empty batch', async () => {
    const fake = streamingFetch([eventStreamResponse([eventMessage([], '7'), eventMessage([], null, { childShards: CHILDREN })]).response]);
    const { batches, end } = await drain(readShardEnhancedBatches(clientWith(fake), options()));
    expect(batches).toEqual([{ shardId: SHARD, records: [], millisBehindLatest: 0, isShardEnd: true, childShards: CHILDREN }]);
    expect(end.childShards).toHaveLength(2);
  });

  it.each([
    ['cut mid-message', 'cut'],
    ['reset', 'error'],
  ] as const)('renews a connection %s from the last whole event: no gap, no repeat', async (_label, then) => {
    const fake = streamingFetch([
      eventStreamResponse([eventMessage([wireRecord('1', 'a')], '1'), eventMessage([wireRecord('2', 'b')], '2')], { then }).response,
      eventStreamResponse([eventMessage([wireRecord('3', 'c')], null, { childShards: [] })]).response,
    ]);
    const { batches } = await drain(readShardEnhancedBatches(clientWith(fake), options()));
    expect(texts(batches)).toEqual(['a', 'b', 'c']);
    expect(positions(fake)[1]).toEqual({ Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: '2' });
  });

  it('backs off and renews on ResourceInUseException (the previous subscription still held) and on throttling', async () => {
    const fake = streamingFetch([
      eventStreamResponse([eventMessage([wireRecord('1', 'a')], '1')], { then: 'error' }).response,
      eventStreamResponse([exceptionMessage('ResourceInUseException', 'Another active subscription exists')]).response,
      awsError(400, 'LimitExceededException', 'Rate exceeded'),
      eventStreamResponse([eventMessage([wireRecord('2', 'b')], null, { childShards: [] })]).response,
    ]);
    const { batches } = await drain(readShardEnhancedBatches(clientWith(fake), options({ maxConsecutiveErrors: 1 })));
    expect(texts(batches)).toEqual(['a', 'b']);
    expect(positions(fake).slice(1).every((p) => p.SequenceNumber === '1')).toBe(true);
  });

  it('gives up after maxConsecutiveErrors transient failures in a row', async () => {
    const fake = streamingFetch([networkError(), networkError(), networkError()]);
    await expect(drain(readShardEnhancedBatches(clientWith(fake), options({ maxConsecutiveErrors: 2 })))).rejects.toMatchObject({
      name: 'KinesisNetworkError',
    });
    expect(fake.requests).toHaveLength(3);
  });

  it('throws a fatal fault at once', async () => {
    const fake = streamingFetch([eventStreamResponse([exceptionMessage('ResourceNotFoundException', 'Consumer not found')]).response]);
    await expect(drain(readShardEnhancedBatches(clientWith(fake), options()))).rejects.toMatchObject({ code: 'ResourceNotFoundException' });
    expect(fake.requests).toHaveLength(1);
  });

  it('gives up when subscriptions keep ending without an event, instead of spinning', async () => {
    const fake = streamingFetch([eventStreamResponse([]).response, eventStreamResponse([]).response, eventStreamResponse([]).response]);
    await expect(drain(readShardEnhancedBatches(clientWith(fake), options({ maxConsecutiveErrors: 2 })))).rejects.toThrow(
      /3 subscriptions to shardId-000000000000 in a row ended without an event/,
    );
  });

  it('renews a LATEST start that never got an event at AT_TIMESTAMP of when it started, less a margin', async () => {
    const fake = streamingFetch([networkError(), eventStreamResponse([eventMessage([], null, { childShards: [] })]).response]);
    const before = Date.now();
    await drain(readShardEnhancedBatches(clientWith(fake), options({ from: { type: 'LATEST' } })));
    const [first, second] = positions(fake);
    expect(first).toEqual({ Type: 'LATEST' });
    expect(second.Type).toBe('AT_TIMESTAMP');
    expect(second.Timestamp * 1000).toBeGreaterThanOrEqual(before - 5_000 - 50);
    expect(second.Timestamp * 1000).toBeLessThanOrEqual(Date.now() - 5_000 + 50);
  });

  it('resumes inside a KPL aggregate: subscribes AT its sequence number and skips the user records already processed', async () => {
    const aggregate = encodeAggregatedRecord([
      { partitionKey: 'k', data: new TextEncoder().encode('u0') },
      { partitionKey: 'k', data: new TextEncoder().encode('u1') },
      { partitionKey: 'k', data: new TextEncoder().encode('u2') },
    ]);
    const fake = streamingFetch([
      eventStreamResponse([
        eventMessage([{ SequenceNumber: '50', Data: encodeBase64(aggregate), PartitionKey: 'k', ApproximateArrivalTimestamp: 1 }], '50'),
        eventMessage([wireRecord('51', 'next')], null, { childShards: [] }),
      ]).response,
    ]);
    const { batches } = await drain(readShardEnhancedBatches(clientWith(fake), options({ from: { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: '50', subSequenceNumber: 0 } })));
    expect(positions(fake)[0]).toEqual({ Type: 'AT_SEQUENCE_NUMBER', SequenceNumber: '50' });
    expect(texts(batches)).toEqual(['u1', 'u2', 'next']);
    expect(batches[0]!.records.map((r) => r.subSequenceNumber)).toEqual([1, 2]);
  });

  it('stops at once when the signal aborts while a subscription is open, and releases it', async () => {
    const open = eventStreamResponse([eventMessage([wireRecord('1', 'a')], '1')], { then: 'hang' });
    const fake = streamingFetch([open.response]);
    const controller = new AbortController();
    const run = (async () => {
      for await (const _ of readShardEnhancedBatches(clientWith(fake), options({ signal: controller.signal }))) {
        setTimeout(() => controller.abort(new Error('stop reading')), 5);
      }
    })();
    await expect(run).rejects.toThrow('stop reading');
    expect(open.cancelled).toBe(true);
    expect(fake.requests).toHaveLength(1);
  });

  it('stops during a backoff when the signal aborts', async () => {
    const fake = streamingFetch([networkError()]);
    const controller = new AbortController();
    const run = drain(readShardEnhancedBatches(clientWith(fake), options({ signal: controller.signal, throttleDelayMs: 60_000, maxThrottleDelayMs: 60_000 })));
    setTimeout(() => controller.abort(new Error('bye')), 20);
    await expect(run).rejects.toThrow('bye');
  });

  it('refuses options without a consumer ARN or with a bad start', async () => {
    const fake = streamingFetch([]);
    await expect(drain(readShardEnhancedBatches(clientWith(fake), options({ consumerARN: '' })))).rejects.toThrow(/consumerARN is required/);
    await expect(drain(readShardEnhancedBatches(clientWith(fake), options({ from: { type: 'AT_SEQUENCE_NUMBER' } as never })))).rejects.toThrow(
      /from\.sequenceNumber must be a string of digits/,
    );
  });
});

describe('readShardEnhanced', () => {
  it('yields records, returns the shard end, and closes the subscription on break', async () => {
    const fake = streamingFetch([eventStreamResponse([eventMessage([wireRecord('1', 'a'), wireRecord('2', 'b')], '2'), eventMessage([], null, { childShards: CHILDREN })]).response]);
    const iterator = readShardEnhanced(clientWith(fake), options());
    const seen: string[] = [];
    let end: ShardEnd | undefined;
    for (;;) {
      const step = await iterator.next();
      if (step.done) {
        end = step.value;
        break;
      }
      seen.push(decodeUtf8(step.value.data));
    }
    expect(seen).toEqual(['a', 'b']);
    expect(end!.childShards).toEqual(CHILDREN);

    const open = eventStreamResponse([eventMessage([wireRecord('1', 'a'), wireRecord('2', 'b')], '2')], { then: 'hang' });
    for await (const _ of readShardEnhanced(clientWith(streamingFetch([open.response])), options())) break;
    expect(open.cancelled).toBe(true);
  });
});

// Enhanced fan-out against kinesis-local (started by test/support/global-setup.ts).
//
// What kinesis-local 0.6.2 does with SubscribeToShard (seen on its plain port, and in its source,
// kinesis-mock `api/SubscribeToShardRequest.scala`):
// - answers 200 `application/vnd.amazon.eventstream` over HTTP/1.1 `Transfer-Encoding: chunked`;
// - sends no `initial-response`; sends one `SubscribeToShardEvent` per second, records or not
//   (AWS pushes records as they arrive), each with `"ChildShards": null`;
// - ends a subscription after 5 minutes, like AWS, and never sooner, so renewal is tested here by
//   cutting the connection in a proxy;
// - never reports `ChildShards` nor ends at a closed shard: after a reshard the parent's
//   subscription goes on with empty events, so following children over EFO cannot be tested here
//   (the unit tests cover it with AWS-shaped events);
// - answers a second subscription of the same consumer and shard with a 200 whose one message is
//   an `exception` ResourceInUseException, as it does for an unknown consumer
//   (ResourceNotFoundException), where AWS answers HTTP 400; the lease is released when the
//   first connection closes;
// - resolves AFTER_SEQUENCE_NUMBER / AT_SEQUENCE_NUMBER of a sequence number it does not hold to
//   the start of the shard.
import { request as httpRequest, createServer, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createKinesisClient, type KinesisClient } from '../../src/client.ts';
import { checkpointRecord, createMemoryCheckpointStore } from '../../src/consumer/checkpoints.ts';
import { isKinesisServiceError } from '../../src/errors.ts';
import { deregisterStreamConsumerAndWait, ensureStreamConsumer } from '../../src/event-stream/consumers.ts';
import { readShardEnhanced } from '../../src/event-stream/read-shard-enhanced.ts';
import { readStreamEnhanced } from '../../src/event-stream/read-stream-enhanced.ts';
import { subscribeToShard, type SubscribeToShardEvent } from '../../src/event-stream/subscribe.ts';
import { decodeUtf8 } from '../../src/internal/utf8.ts';
import { describeStreamConsumer } from '../../src/operations/describe-stream-consumer.ts';
import { putRecord } from '../../src/operations/put-record.ts';
import { createTestStream, dummyKinesisHeaders } from '../support/kinesis-local.ts';

const endpoint = inject('kinesisEndpoint');
const SHARD = 'shardId-000000000000';
const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

function clientFor(url: string): KinesisClient {
  return createKinesisClient({ region: 'us-east-1', credentials: CREDENTIALS, endpoint: url, retry: { maxAttempts: 2 } });
}

/**
 * A proxy that forwards to kinesis-local and, for the SubscribeToShard answers it is told to,
 * passes `afterChunks` body chunks (kinesis-local writes one event per chunk), then half of the
 * next one, and destroys the connection on both sides: a subscription dropped in the middle of an
 * event. It logs each subscription's StartingPosition.
 */
async function startCuttingProxy(upstream: string): Promise<{ url: string; positions: unknown[]; cutNext(afterChunks: number): void; close(): Promise<void> }> {
  const target = new URL(upstream);
  const positions: unknown[] = [];
  const cuts: number[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const isSubscribe = String(req.headers['x-amz-target']).endsWith('.SubscribeToShard');
      if (isSubscribe) positions.push(JSON.parse(body.toString('utf8')).StartingPosition);
      const cutAfter = isSubscribe ? cuts.shift() : undefined;
      const up = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host }, agent: false },
        (upRes: IncomingMessage) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          let chunksSent = 0;
          upRes.on('data', (chunk: Buffer) => {
            if (cutAfter !== undefined && chunksSent === cutAfter) {
              res.write(chunk.subarray(0, Math.floor(chunk.length / 2)), () => {
                upRes.destroy();
                req.socket.destroy();
              });
              return;
            }
            chunksSent++;
            res.write(chunk);
          });
          upRes.on('end', () => res.end());
        },
      );
      up.on('error', () => res.destroy());
      res.on('close', () => up.destroy());
      up.end(body);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    positions,
    cutNext: (afterChunks) => void cuts.push(afterChunks),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function putTexts(client: KinesisClient, streamName: string, texts: string[], gapMs = 0): Promise<string[]> {
  const sequenceNumbers: string[] = [];
  for (const text of texts) {
    const { SequenceNumber } = await putRecord(client, { StreamName: streamName, PartitionKey: 'k', Data: text });
    sequenceNumbers.push(SequenceNumber);
    if (gapMs) await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  return sequenceNumbers;
}

/**
 * kinesis-local releases a subscription's lease only when it next writes to the closed
 * connection (it writes once a second): until then a new subscription of the same consumer and
 * shard is refused with ResourceInUseException. Retries for up to 5 s; returns the open
 * subscription with its first event taken.
 */
async function subscribeWhenFree(
  client: KinesisClient,
  input: Parameters<typeof subscribeToShard>[1],
  options: Parameters<typeof subscribeToShard>[2] = {},
): Promise<{ first: SubscribeToShardEvent; events: AsyncGenerator<SubscribeToShardEvent, void, undefined> }> {
  for (let attempt = 0; ; attempt++) {
    const events = subscribeToShard(client, input, options);
    try {
      const step = await events.next();
      if (step.done) throw new Error('subscription ended without an event');
      return { first: step.value, events };
    } catch (error) {
      if (!(isKinesisServiceError(error) && error.code === 'ResourceInUseException') || attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

describe('enhanced fan-out against kinesis-local', () => {
  const client = clientFor(endpoint);
  let streamName: string;
  let streamArn: string;
  let consumerArn: string;

  beforeAll(async () => {
    streamName = await createTestStream(endpoint, { shardCount: 1 });
    streamArn = `arn:aws:kinesis:us-east-1:000000000000:stream/${streamName}`;
    consumerArn = (await ensureStreamConsumer(client, { StreamName: streamName, ConsumerName: 'efo-test' }, { intervalMs: 50, timeoutMs: 10_000 })).ConsumerARN;
  });

  it('serves SubscribeToShard as an HTTP/1.1 chunked event stream on the plain port', async () => {
    const { statusCode, headers } = await new Promise<IncomingMessage>((resolve, reject) => {
      const url = new URL(endpoint);
      const req = httpRequest(
        { host: url.hostname, port: url.port, method: 'POST', path: '/', agent: false, headers: dummyKinesisHeaders('SubscribeToShard') },
        (res) => {
          resolve(res);
          res.destroy();
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ ConsumerARN: consumerArn, ShardId: SHARD, StartingPosition: { Type: 'LATEST' } }));
    });
    expect(statusCode).toBe(200);
    expect(headers['content-type']).toBe('application/vnd.amazon.eventstream');
    expect(headers['transfer-encoding']).toBe('chunked');
    // The lease outlives the connection until kinesis-local's next write.
    await expect(subscribeToShard(client, { ConsumerARN: consumerArn, ShardId: SHARD, StartingPosition: { Type: 'LATEST' } }).next()).rejects.toMatchObject({
      code: 'ResourceInUseException',
    });
    const { events } = await subscribeWhenFree(client, { ConsumerARN: consumerArn, ShardId: SHARD, StartingPosition: { Type: 'LATEST' } });
    await events.return();
  });

  it('registers a consumer once: ensureStreamConsumer reuses the ACTIVE one', async () => {
    const again = await ensureStreamConsumer(client, { StreamARN: streamArn, ConsumerName: 'efo-test' }, { intervalMs: 50 });
    expect(again.ConsumerARN).toBe(consumerArn);
    expect(again.ConsumerStatus).toBe('ACTIVE');
  });

  it('delivers records put while subscribed, in order, then releases the subscription on break', async () => {
    const texts = Array.from({ length: 8 }, (_, i) => `live-${i}`);
    const received: string[] = [];
    const continuations: string[] = [];
    let putting: Promise<string[]> | undefined;
    const { events } = await subscribeWhenFree(client, { ConsumerARN: consumerArn, ShardId: SHARD, StartingPosition: { Type: 'LATEST' } });
    for await (const event of events) {
      putting ??= putTexts(client, streamName, texts, 40);
      for (const record of event.Records) received.push(decodeUtf8(record.Data));
      continuations.push(event.ContinuationSequenceNumber!);
      if (received.length >= texts.length) break;
    }
    const sequenceNumbers = await putting!;
    expect(received).toEqual(texts);
    expect(continuations.at(-1)).toBe(sequenceNumbers.at(-1));

    // Breaking out closed the connection, so the lease is released and a new subscription (from
    // the middle) is accepted.
    const { first, events: again } = await subscribeWhenFree(client, {
      ConsumerARN: consumerArn,
      ShardId: SHARD,
      StartingPosition: { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: sequenceNumbers[3]! },
    });
    await again.return();
    expect(first.Records.map((r) => decodeUtf8(r.Data))).toEqual(texts.slice(4));
  });

  it('answers a second subscription of the same consumer and shard with ResourceInUseException; aborting the first releases it', async () => {
    const controller = new AbortController();
    const { events: first } = await subscribeWhenFree(
      client,
      { ConsumerARN: consumerArn, ShardId: SHARD, StartingPosition: { Type: 'LATEST' } },
      { signal: controller.signal },
    );
    const second = subscribeToShard(client, { ConsumerARN: consumerArn, ShardId: SHARD, StartingPosition: { Type: 'LATEST' } });
    await expect(second.next()).rejects.toMatchObject({ name: 'KinesisServiceError', code: 'ResourceInUseException', status: 200 });

    controller.abort(new Error('done with it'));
    await expect(first.next()).rejects.toThrow('done with it');
    const { events: third } = await subscribeWhenFree(client, { ConsumerARN: consumerArn, ShardId: SHARD, StartingPosition: { Type: 'LATEST' } });
    await third.return();
  });

  it('reports an unknown consumer as ResourceNotFoundException', async () => {
    const run = subscribeToShard(client, { ConsumerARN: `${streamArn}/consumer/nobody:1`, ShardId: SHARD, StartingPosition: { Type: 'LATEST' } }).next();
    await expect(run).rejects.toMatchObject({ name: 'KinesisServiceError', code: 'ResourceNotFoundException' });
  });

  it('renews a subscription cut mid-stream from the last continuation: every record once, in order', async () => {
    const proxy = await startCuttingProxy(endpoint);
    try {
      const name = await createTestStream(endpoint, { shardCount: 1 });
      const { ConsumerARN } = await ensureStreamConsumer(client, { StreamName: name, ConsumerName: 'renewal' }, { intervalMs: 50 });
      const texts = Array.from({ length: 12 }, (_, i) => `r-${i}`);
      const sequenceNumbers = await putTexts(client, name, texts.slice(0, 6));
      // The first subscription dies in the middle of its second event.
      proxy.cutNext(1);
      const proxied = clientFor(proxy.url);
      const received: string[] = [];
      let putting: Promise<string[]> | undefined;
      for await (const record of readShardEnhanced(proxied, { consumerARN: ConsumerARN, shardId: SHARD, from: { type: 'TRIM_HORIZON' }, throttleDelayMs: 50, maxThrottleDelayMs: 200 })) {
        received.push(decodeUtf8(record.data));
        if (received.length === 6) putting = putTexts(client, name, texts.slice(6), 30);
        if (received.length === texts.length) break;
      }
      await putting;
      expect(received).toEqual(texts);
      // Renewed from the first event's continuation (the last of the six records), however many
      // times kinesis-local refused while it still held the dropped subscription.
      expect(proxy.positions[0]).toEqual({ Type: 'TRIM_HORIZON' });
      expect(proxy.positions[1]).toEqual({ Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: sequenceNumbers[5] });
      await deregisterStreamConsumerAndWait(client, { ConsumerARN }, { intervalMs: 50 });
    } finally {
      await proxy.close();
    }
  });

  it('reads a stream through subscriptions with checkpoints, and resumes after them', async () => {
    const proxy = await startCuttingProxy(endpoint);
    try {
      const name = await createTestStream(endpoint, { shardCount: 2 });
      const { ConsumerARN } = await ensureStreamConsumer(client, { StreamName: name, ConsumerName: 'stream-reader' }, { intervalMs: 50 });
      const proxied = clientFor(proxy.url);
      const checkpoints = createMemoryCheckpointStore();
      const first = Array.from({ length: 10 }, (_, i) => `s-${i}`);
      for (const [i, text] of first.entries()) await putRecord(client, { StreamName: name, PartitionKey: `pk-${i}`, Data: text });
      const received: string[] = [];
      const options = { streamName: name, consumerARN: ConsumerARN, from: { type: 'TRIM_HORIZON' }, checkpoints, checkpointing: 'manual', throttleDelayMs: 100 } as const;
      for await (const record of readStreamEnhanced(proxied, options)) {
        received.push(decodeUtf8(record.data));
        await checkpointRecord(checkpoints, record);
        if (received.length === first.length) break;
      }
      expect(received.sort()).toEqual([...first].sort());
      expect(proxy.positions.length).toBeGreaterThanOrEqual(2);

      expect(proxy.positions.slice(0, 2)).toEqual([{ Type: 'TRIM_HORIZON' }, { Type: 'TRIM_HORIZON' }]);

      // A new run resumes after the checkpoints (AFTER_SEQUENCE_NUMBER per shard), once
      // kinesis-local has released the first run's subscriptions.
      proxy.positions.length = 0;
      await putRecord(client, { StreamName: name, PartitionKey: 'pk-x', Data: 'after' });
      for await (const record of readStreamEnhanced(proxied, options)) {
        expect(decodeUtf8(record.data)).toBe('after');
        break;
      }
      expect(proxy.positions.map((p) => (p as { Type: string }).Type)).toContain('AFTER_SEQUENCE_NUMBER');
      await deregisterStreamConsumerAndWait(client, { ConsumerARN }, { intervalMs: 50 });
    } finally {
      await proxy.close();
    }
  });

  afterAll(async () => {
    await deregisterStreamConsumerAndWait(client, { ConsumerARN: consumerArn }, { intervalMs: 50, timeoutMs: 10_000 });
    await expect(describeStreamConsumer(client, { ConsumerARN: consumerArn })).rejects.toMatchObject({ code: 'ResourceNotFoundException' });
  });
});

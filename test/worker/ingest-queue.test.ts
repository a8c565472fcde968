// The ingest Worker's Queue scale path (wrangler.jsonc `env.queue`, DELIVERY=queue) inside workerd,
// run by `wrangler dev` with a local queue: /collect answers once the Queue has the events, the
// same script's queue() handler writes them to the local Kinesis through the fault proxy.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startIngestWorker, type IngestWorker } from '../../worker-example/dev.mjs';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { createTestStream, type StoredRecord } from '../support/kinesis-local.ts';
import { makeEvent, storedEvents as readBack } from './events.ts';

const ORIGIN = 'http://127.0.0.1:8787';
// Queue batches wait up to max_batch_timeout (5 s) and retries up to a few seconds more.
const LAND_TIMEOUT_MS = 30_000;

let kinesisEndpoint: string;
let streamName: string;
let proxy: FaultProxy;
let worker: IngestWorker;

beforeAll(async () => {
  kinesisEndpoint = inject('kinesisEndpoint');
  streamName = await createTestStream(kinesisEndpoint, { shardCount: 2 });
  proxy = await startFaultProxy(kinesisEndpoint);
  worker = await startIngestWorker({ queue: true, kinesisEndpoint: proxy.url, streamName, allowedOrigins: ORIGIN, country: 'NL', maxBodyBytes: 192 * 1024 });
}, 90_000);

afterAll(async () => {
  await worker?.stop();
  await proxy?.close();
});

async function post(events: readonly unknown[], userAgent = `queue-test/${randomUUID()}`): Promise<{ status: number; body: any }> {
  const response = await fetch(`${worker.url}/collect`, {
    method: 'POST',
    headers: { Origin: ORIGIN, 'Content-Type': 'text/plain;charset=UTF-8', 'User-Agent': userAgent },
    body: JSON.stringify(events),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text) };
}

/** Records of the test stream whose event id is one of these. */
function storedEvents(ids: readonly string[]): ReturnType<typeof readBack> {
  return readBack(kinesisEndpoint, streamName, ids);
}

/** Polls the stream until every id is there (or the timeout), then waits a little for late duplicates. */
async function waitForEvents(ids: readonly string[]): Promise<{ record: StoredRecord; event: any }[]> {
  const deadline = Date.now() + LAND_TIMEOUT_MS;
  for (;;) {
    const found = await storedEvents(ids);
    if (new Set(found.map((f) => f.event.id)).size === ids.length) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      return storedEvents(ids);
    }
    if (Date.now() > deadline) throw new Error(`only ${found.length} of ${ids.length} events reached Kinesis in ${LAND_TIMEOUT_MS} ms:\n${worker.output().slice(-4000)}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

describe('Queue delivery (DELIVERY=queue)', () => {
  it('answers accepted once queued, then the consumer writes every event to Kinesis exactly once, enriched', async () => {
    proxy.reset();
    const userAgent = `queue-test/${randomUUID()}`;
    // 250 events: three sendBatch calls (at most 100 messages each) and several consumer batches.
    const events = Array.from({ length: 250 }, (_, i) => makeEvent({ sessionId: `session-${i % 7}-${randomUUID().slice(0, 4)}` }));
    const invalid = { ...makeEvent(), type: 'bogus' };
    const result = await post([...events, invalid], userAgent);
    expect(result.status).toBe(200);
    expect(result.body.accepted).toEqual(events.map((e) => e.id));
    expect(result.body.retry).toEqual([]);
    expect(result.body.rejected).toEqual([{ id: invalid.id, reason: expect.stringContaining('type') }]);

    const found = await waitForEvents(events.map((e) => e.id));
    expect(found).toHaveLength(events.length);
    const byId = new Map(events.map((e) => [e.id, e]));
    for (const { record, event } of found) {
      const sent = byId.get(event.id)!;
      expect(record.PartitionKey).toBe(sent.sessionId);
      expect(event).toMatchObject({ ...sent, country: 'NL', userAgent });
      expect(typeof event.receivedAt).toBe('number');
    }
    // Consumer batches of up to 100 messages: one PutRecords each, never one per event.
    const puts = proxy.requests.filter((r) => r.operation === 'PutRecords');
    expect(puts.length).toBeGreaterThanOrEqual(3);
    expect(puts.length).toBeLessThan(20);
  }, 60_000);

  it('answers accepted while Kinesis throttles, and the retried messages land once Kinesis recovers', async () => {
    proxy.reset();
    // Every PutRecords the first consumer run may send (3 producer attempts × 2 client attempts) is
    // throttled, so its messages go back to the Queue with retry().
    proxy.setFaults([{ fault: 'throttle', operation: 'PutRecords', times: 6 }]);
    const events = Array.from({ length: 5 }, () => makeEvent());
    const result = await post(events);
    expect(result.status).toBe(200);
    expect(result.body.accepted).toEqual(events.map((e) => e.id));

    const found = await waitForEvents(events.map((e) => e.id));
    expect(found.map((f) => f.event.id).sort()).toEqual(events.map((e) => e.id).sort());
    const puts = proxy.requests.filter((r) => r.operation === 'PutRecords');
    expect(puts.filter((r) => r.fault !== undefined).length).toBeGreaterThanOrEqual(6);
    expect(worker.output()).toContain('queue messages retried');
  }, 60_000);
});

describe('Queue delivery when Kinesis never recovers', () => {
  let failingProxy: FaultProxy;
  let failingWorker: IngestWorker;

  beforeAll(async () => {
    failingProxy = await startFaultProxy(kinesisEndpoint);
    // Every PutRecords fails, for good: the consumer can only retry its messages.
    failingProxy.setFaults([{ fault: 'status', status: 500, operation: 'PutRecords', times: 1_000 }]);
    failingWorker = await startIngestWorker({
      queue: true,
      kinesisEndpoint: failingProxy.url,
      streamName,
      allowedOrigins: ORIGIN,
      // wrangler.jsonc's ladder is 10 deliveries; two keep the test short.
      queueConsumer: { max_retries: 1, max_batch_timeout: 1 },
    });
  }, 90_000);

  afterAll(async () => {
    await failingWorker?.stop();
    await failingProxy?.close();
  });

  it('moves each message to the dead-letter queue after max_retries, never drops one', async () => {
    const events = Array.from({ length: 3 }, () => makeEvent());
    const response = await fetch(`${failingWorker.url}/collect`, {
      method: 'POST',
      headers: { Origin: ORIGIN, 'Content-Type': 'text/plain;charset=UTF-8', 'User-Agent': `queue-test/${randomUUID()}` },
      body: JSON.stringify(events),
      signal: AbortSignal.timeout(20_000),
    });
    expect(response.status).toBe(200);
    expect((await response.json()).accepted).toEqual(events.map((e) => e.id));

    // The local queue (miniflare) logs each move; with no consumer on the dead-letter queue the
    // messages stay there, as on Cloudflare, for an operator to replay.
    const moved = /Moving message "[^"]+" on queue "kinesis-edge-events" to dead letter queue "kinesis-edge-events-dlq"/g;
    await expect
      .poll(() => failingWorker.output().match(moved)?.length ?? 0, { timeout: 45_000, interval: 500 })
      .toBe(events.length);
    expect(failingWorker.output()).not.toMatch(/Dropped message/);
    expect(failingWorker.output()).toContain('queue messages retried');
    // Two deliveries, each tried by the producer: Kinesis was asked, and stored none of them.
    expect(failingProxy.requests.filter((r) => r.operation === 'PutRecords' && r.fault !== undefined).length).toBeGreaterThanOrEqual(2);
    expect(await storedEvents(events.map((e) => e.id))).toEqual([]);
  }, 60_000);
});

// The producer end to end: 21,000 records of distinct ids through the real fault proxy
// (test/support/fault-proxy.ts) into kinesis-local, under a mix of faults on PutRecords (partly
// failed batches, whole-request throttles, 500s, dropped connections before and after the upstream
// stored the records, answers with the wrong Records count, delays past the client's timeout,
// one non-retryable refusal), spread over five fresh 4-shard streams (one after the other) because kinesis-local's
// PutRecords slows down as one stream grows. Each stream is then read back (TRIM_HORIZON +
// GetRecords over every shard) and checked against what put() reported.
import { Buffer } from 'node:buffer';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createKinesisClient, type KinesisClient } from '../../src/client.ts';
import { decodeAggregatedRecord } from '../../src/internal/kpl.ts';
import {
  createProducer,
  isKinesisProducerError,
  type KinesisProducerError,
  type Producer,
  type ProducerOptions,
  type PutResult,
} from '../../src/producer/index.ts';
import { startFaultProxy, type FaultProxy, type FaultRule, type ProxiedRequest } from '../support/fault-proxy.ts';
import { createTestStream, readAllRecords } from '../support/kinesis-local.ts';

const endpoint = inject('kinesisEndpoint');

interface StreamPlan {
  label: string;
  records: number;
  keys: number;
  options: Partial<ProducerOptions>;
  /** Fire and forget with send() (outcomes through onFailure) instead of put(). */
  useSend?: boolean;
}

const PLANS: StreamPlan[] = [
  { label: 'unordered', records: 4_500, keys: 1_000, options: {} },
  { label: 'unordered-wait', records: 4_500, keys: 1_000, options: { whenFull: 'wait', maxBufferedRecords: 800 } },
  { label: 'per-key', records: 4_000, keys: 250, options: { ordering: 'per-key' } },
  { label: 'per-key-send', records: 4_000, keys: 250, options: { ordering: 'per-key' }, useSend: true },
  // Small aggregates and requests, so that this stream also takes many requests (and faults).
  { label: 'per-key-aggregated', records: 4_000, keys: 100, options: { ordering: 'per-key', aggregation: { maxBytes: 2_048 }, maxBatchRecords: 10 } },
];

/** One of each fault, at fixed points, so that every kind happens in every run. */
const ONCE: FaultRule[] = [
  { fault: 'partialFailure', failRatio: 0.5, errorCodes: ['ProvisionedThroughputExceededException', 'InternalFailure'], label: 'partial' },
  { fault: 'throttle', label: 'throttle' },
  { fault: 'status', status: 500, body: { __type: 'InternalFailure', message: 'injected' }, label: '500' },
  { fault: 'status', status: 400, body: { __type: 'ValidationException', message: 'injected: 1 validation error detected' }, label: 'refused' },
  { fault: 'drop', phase: 'beforeForward', label: 'drop-before' },
  { fault: 'drop', phase: 'afterForward', label: 'drop-after' },
  { fault: 'drop', phase: 'midResponse', label: 'drop-mid' },
  { fault: 'mismatchedCount', label: 'mismatch' },
  // Held past the client's timeout after kinesis-local stored the records: an unknown outcome.
  { fault: 'delay', phase: 'afterForward', ms: 16_000, label: 'late' },
  { fault: 'delay', ms: 200, label: 'slow' },
].map((rule, k) => ({ ...rule, operation: 'PutRecords', times: 1, when: (request: ProxiedRequest) => request.seq >= 8 + 5 * k }) as FaultRule);

const FAULTS: FaultRule[] = [
  { fault: 'throttle', operation: 'ListShards', times: 1, label: 'list-throttle' },
  ...ONCE,
  // The mix, drawn from the proxy's seeded PRNG.
  { fault: 'partialFailure', operation: 'PutRecords', probability: 0.2, failRatio: 0.3,
    errorCodes: ['ProvisionedThroughputExceededException', 'InternalFailure'], label: 'partial' },
  { fault: 'throttle', operation: 'PutRecords', probability: 0.04, label: 'throttle' },
  { fault: 'status', operation: 'PutRecords', status: 500, probability: 0.03, label: '500',
    body: { __type: 'InternalFailure', message: 'injected' } },
  { fault: 'drop', operation: 'PutRecords', phase: 'beforeForward', probability: 0.02, label: 'drop-before' },
  { fault: 'drop', operation: 'PutRecords', phase: 'afterForward', probability: 0.025, label: 'drop-after' },
  { fault: 'drop', operation: 'PutRecords', phase: 'midResponse', probability: 0.015, label: 'drop-mid' },
  { fault: 'mismatchedCount', operation: 'PutRecords', probability: 0.02, label: 'mismatch' },
  { fault: 'delay', operation: 'PutRecords', ms: 200, probability: 0.05, label: 'slow' },
];

interface Sent {
  id: string;
  key: string;
  /** Position of the record among its key's records, in put order. */
  n: number;
  result?: PutResult;
  error?: KinesisProducerError;
}

interface Located {
  shardId: string;
  sequenceNumber: string;
  sub: number;
}

interface StreamRun {
  plan: StreamPlan;
  streamName: string;
  producer: Producer;
  sent: Sent[];
  /** Refused at put(): invalid or too large on purpose. */
  refused: KinesisProducerError[];
  /** Every copy of each id in the stream, in shard order. */
  copies: Map<string, Located[]>;
  /** Ids per key in the order the stream holds their first copies. */
  streamOrder: Map<string, string[]>;
  maxBuffered: number;
}

let proxy: FaultProxy;
let client: KinesisClient;
const runs: StreamRun[] = [];
/** Ids that were in a request whose outcome the client could not know. */
const unknownOutcomeIds = new Set<string>();
let elapsedMs = 0;

function idsOf(records: { Data: string }[] | undefined, aggregated: boolean): string[] {
  const ids: string[] = [];
  for (const record of records ?? []) {
    const bytes = new Uint8Array(Buffer.from(record.Data, 'base64'));
    const users = aggregated ? decodeAggregatedRecord(bytes) : undefined;
    for (const data of users ? users.map((user) => user.data) : [bytes]) ids.push(JSON.parse(Buffer.from(data).toString('utf8')).id);
  }
  return ids;
}

function isUnknownOutcome(request: ProxiedRequest): boolean {
  return request.forwarded && (request.outcome !== 'answered' || request.fault?.type === 'mismatchedCount');
}

async function runStream(plan: StreamPlan, index: number): Promise<StreamRun> {
  const streamName = await createTestStream(endpoint, { shardCount: 4 });
  const sent: Sent[] = [];
  const refused: KinesisProducerError[] = [];
  const failures = new Map<string, KinesisProducerError>();
  const producer = createProducer(client, {
    streamName,
    lingerMs: 50,
    // kinesis-local handles one request at a time; more in flight only lengthens each one.
    maxInFlight: 2,
    recordTtlMs: 150_000,
    backoff: { baseDelayMs: 50, throttlingBaseDelayMs: 200, maxDelayMs: 2_000 },
    onFailure: (error) => {
      if (error.reason === 'invalid' || error.reason === 'too-large') return;
      failures.set(JSON.parse(String(error.record.data)).id, error);
    },
    ...plan.options,
  });
  const run: StreamRun = { plan, streamName, producer, sent, refused, copies: new Map(), streamOrder: new Map(), maxBuffered: 0 };
  const sampler = setInterval(() => {
    run.maxBuffered = Math.max(run.maxBuffered, producer.stats().bufferedRecords);
  }, 20);

  const counters = new Map<string, number>();
  const settled: Promise<void>[] = [];
  for (let i = 0; i < plan.records; i++) {
    const key = `key-${index}-${i % plan.keys}`;
    const n = counters.get(key) ?? 0;
    counters.set(key, n + 1);
    const record: Sent = { id: `${index}-${i}`, key, n };
    sent.push(record);
    const data = JSON.stringify({ id: record.id, key, n });
    if (plan.useSend) {
      producer.send({ partitionKey: key, data });
    } else {
      settled.push(
        producer.put({ partitionKey: key, data }).then(
          (result) => void (record.result = result),
          (error: unknown) => {
            if (!isKinesisProducerError(error)) throw error;
            record.error = error;
          },
        ),
      );
    }
    if (i % 500 === 0) {
      // Records that can never be sent are refused at put(), nothing buffered.
      for (const bad of [{ partitionKey: '', data: '{}' }, { partitionKey: key, data: new Uint8Array(1024 * 1024) }]) {
        await producer.put(bad).catch((error: KinesisProducerError) => refused.push(error));
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
  await Promise.all(settled);
  const closed = await producer.close();
  clearInterval(sampler);
  if (plan.useSend) for (const record of sent) record.error = failures.get(record.id);
  expect(closed.stored + closed.failed).toBeLessThanOrEqual(plan.records);
  return run;
}

async function readBack(run: StreamRun): Promise<void> {
  const aggregated = Boolean(run.plan.options.aggregation);
  const stored = await readAllRecords(endpoint, run.streamName, { maxPages: 200 });
  for (const record of stored) {
    const bytes = new Uint8Array(Buffer.from(record.Data, 'base64'));
    const users = aggregated ? decodeAggregatedRecord(bytes) : undefined;
    const datas = users ? users.map((user) => user.data) : [bytes];
    datas.forEach((data, sub) => {
      const { id, key } = JSON.parse(Buffer.from(data).toString('utf8')) as { id: string; key: string };
      const located = { shardId: record.ShardId, sequenceNumber: record.SequenceNumber, sub: users ? sub : -1 };
      const copies = run.copies.get(id);
      if (copies) copies.push(located);
      else {
        run.copies.set(id, [located]);
        const order = run.streamOrder.get(key) ?? [];
        order.push(id);
        run.streamOrder.set(key, order);
      }
    });
  }
}

beforeAll(async () => {
  proxy = await startFaultProxy(endpoint, { seed: 2024 });
  proxy.setFaults(FAULTS);
  client = createKinesisClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
    endpoint: proxy.url,
    // kinesis-local answers a 500-record PutRecords in 0.1-1.5 s (more on a loaded machine).
    timeoutMs: 15_000,
    retry: { maxAttempts: 3, baseDelayMs: 50, throttlingBaseDelayMs: 200, quota: Infinity },
  });
  const start = performance.now();
  // One stream after the other: kinesis-local is single-threaded, so running them at once would
  // only stretch each request towards the client's timeout.
  for (const [i, plan] of PLANS.entries()) runs.push(await runStream(plan, i));
  elapsedMs = performance.now() - start;
  await proxy.idle(10_000);
  for (const request of proxy.requests) {
    if (request.operation !== 'PutRecords' || !isUnknownOutcome(request)) continue;
    const aggregated = runs.some((run) => run.streamName === request.body?.StreamName && Boolean(run.plan.options.aggregation));
    for (const id of idsOf(request.body?.Records, aggregated)) unknownOutcomeIds.add(id);
  }
  for (const run of runs) await readBack(run);
}, 240_000);

afterAll(async () => {
  await proxy?.close();
});

describe('producer through the fault proxy', () => {
  it('applied every kind of fault, and finished in bounded time', () => {
    const applied = new Map<string, number>();
    for (const request of proxy.requests) {
      const label = request.fault?.label;
      if (label) applied.set(label, (applied.get(label) ?? 0) + 1);
    }
    for (const rule of FAULTS) expect(applied.get(rule.label!) ?? 0, `fault ${rule.label}`).toBeGreaterThan(0);
    // The mix happened too, beyond the one of each kind.
    expect([...applied.values()].reduce((sum, n) => sum + n, 0)).toBeGreaterThan(ONCE.length + 10);
    expect(unknownOutcomeIds.size).toBeGreaterThan(0);
    // A connection dropped after kinesis-local stored the records always leaves a duplicate.
    const duplicated = runs.reduce((sum, run) => sum + [...run.copies.values()].filter((copies) => copies.length > 1).length, 0);
    expect(duplicated).toBeGreaterThan(0);
    expect(runs.reduce((sum, run) => sum + run.sent.length, 0)).toBeGreaterThanOrEqual(20_000);
    expect(elapsedMs).toBeLessThan(150_000);
  });

  it.each(PLANS.map((plan, i) => [plan.label, i] as const))('%s: stores every record reported stored, where it was reported', (_label, i) => {
    const run = runs[i]!;
    for (const record of run.sent) {
      if (record.error) continue;
      const copies = run.copies.get(record.id);
      expect(copies, `record ${record.id} missing from the stream`).toBeDefined();
      if (record.result) {
        const at = { shardId: record.result.shardId, sequenceNumber: record.result.sequenceNumber, sub: record.result.subSequenceNumber ?? -1 };
        expect(copies).toContainEqual(at);
      }
    }
  });

  it.each(PLANS.map((plan, i) => [plan.label, i] as const))('%s: settles every record, stored or failed with a reason', (_label, i) => {
    const run = runs[i]!;
    const stats = run.producer.stats();
    expect(stats.bufferedRecords).toBe(0);
    expect(stats.waitingRecords).toBe(0);
    expect(stats.stored + stats.failed - run.refused.length).toBe(run.plan.records);
    for (const record of run.sent) {
      if (run.plan.useSend) continue;
      expect(record.result !== undefined || record.error !== undefined, `record ${record.id} never settled`).toBe(true);
    }
    for (const record of run.sent.filter((r) => r.error)) {
      expect(['rejected', 'expired', 'retries-exhausted']).toContain(record.error!.reason);
      // A failed record is in the stream only if a request that carried it had an unknown outcome.
      if (run.copies.has(record.id)) expect(unknownOutcomeIds.has(record.id)).toBe(true);
    }
    expect(run.refused.map((error) => error.reason).sort()).toEqual(
      Array.from({ length: run.refused.length }, (_, j) => (j < run.refused.length / 2 ? 'invalid' : 'too-large')),
    );
  });

  it.each(PLANS.map((plan, i) => [plan.label, i] as const))('%s: stores duplicates only of records whose request had an unknown outcome', (_label, i) => {
    const run = runs[i]!;
    for (const [id, copies] of run.copies) {
      if (copies.length > 1) expect(unknownOutcomeIds.has(id), `duplicate ${id}`).toBe(true);
    }
  });

  it.each(PLANS.map((plan, i) => [plan.label, i] as const))('%s: never holds more than maxBufferedRecords', (_label, i) => {
    const run = runs[i]!;
    expect(run.maxBuffered).toBeGreaterThan(0);
    expect(run.maxBuffered).toBeLessThanOrEqual(run.plan.options.maxBufferedRecords ?? 10_000);
  });

  it.each(PLANS.map((plan, i) => [plan.label, i] as const).filter(([, i]) => PLANS[i]!.options.ordering === 'per-key'))(
    '%s: keeps each key in put order in the stream',
    (_label, i) => {
      const run = runs[i]!;
      const failed = new Set(run.sent.filter((r) => r.error).map((r) => r.id));
      const byKey = new Map<string, Sent[]>();
      for (const record of run.sent) byKey.set(record.key, [...(byKey.get(record.key) ?? []), record]);
      for (const [key, records] of byKey) {
        const expected = records.map((r) => r.id).filter((id) => !failed.has(id));
        const actual = (run.streamOrder.get(key) ?? []).filter((id) => !failed.has(id));
        expect(actual, `order of ${key}`).toEqual(expected);
        // And the positions put() reported grow in put order.
        const reported = records.filter((r) => r.result).map((r) => [BigInt(r.result!.sequenceNumber), r.result!.subSequenceNumber ?? 0] as const);
        for (let j = 1; j < reported.length; j++) {
          const [seq, sub] = reported[j]!;
          const [prevSeq, prevSub] = reported[j - 1]!;
          expect(seq > prevSeq || (seq === prevSeq && sub > prevSub), `reported order of ${key}`).toBe(true);
        }
      }
    },
  );
});

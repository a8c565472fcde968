// The consumer against kinesis-local (started by test/support/global-setup.ts), with faults from
// the real proxy in test/support/fault-proxy.ts. kinesis-local closes a split or merged shard and
// creates its children after SPLIT_SHARD_DURATION / MERGE_SHARDS_DURATION (100 ms here).
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createKinesisClient, type KinesisClient } from '../../src/client.ts';
import { SHARD_END, checkpointRecord, createMemoryCheckpointStore } from '../../src/consumer/checkpoints.ts';
import { readShard } from '../../src/consumer/read-shard.ts';
import { readStream, type ReadStreamOptions } from '../../src/consumer/read-stream.ts';
import { recordJson, type ConsumerRecord } from '../../src/consumer/record.ts';
import { encodeAggregatedRecord } from '../../src/internal/kpl.ts';
import { listShards } from '../../src/operations/list-shards.ts';
import { mergeShards } from '../../src/operations/merge-shards.ts';
import { putRecords } from '../../src/operations/put-records.ts';
import { splitShard } from '../../src/operations/split-shard.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { createTestStream, waitForStreamActive } from '../support/kinesis-local.ts';
import { bodyText } from '../support/fake-fetch.ts';

const endpoint = inject('kinesisEndpoint');

function clientFor(url: string, fetchImpl?: typeof fetch): KinesisClient {
  return createKinesisClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
    endpoint: url,
    ...(fetchImpl ? { fetch: fetchImpl } : {}),
    // No jitter in the client's own retries keeps the throttling tests short.
    retry: { random: () => 0 },
  });
}

/** Polling fast enough for tests; kinesis-local does not enforce the per-shard limits. */
const FAST: Partial<ReadStreamOptions> = { pollIntervalMs: 20, idleDelayMs: 20, maxIdleDelayMs: 100, throttleDelayMs: 20, maxThrottleDelayMs: 100 };

interface Event {
  key: string;
  round: number;
}

/** One PutRecords call with one record per key for `round`; resolves when all are stored. */
async function putRound(client: KinesisClient, streamName: string, keys: readonly string[], round: number): Promise<void> {
  const out = await putRecords(client, {
    StreamName: streamName,
    Records: keys.map((key) => ({ PartitionKey: key, Data: JSON.stringify({ key, round } satisfies Event) })),
  });
  expect(out.FailedRecordCount ?? 0).toBe(0);
}

/** Collects records until `count` arrived (then breaks out), failing after `timeoutMs`. */
async function collect(iterable: AsyncIterable<ConsumerRecord>, count: number, each?: (r: ConsumerRecord) => unknown): Promise<ConsumerRecord[]> {
  const out: ConsumerRecord[] = [];
  if (count === 0) return out;
  for await (const record of iterable) {
    out.push(record);
    await each?.(record);
    if (out.length >= count) break;
  }
  return out;
}

function expectEachOnceInOrder(records: ConsumerRecord[], keys: readonly string[], rounds: number) {
  const events = records.map((r) => recordJson<Event>(r));
  const seen = events.map((e) => `${e.key}#${e.round}`);
  expect(new Set(seen).size).toBe(seen.length);
  expect(seen.sort()).toEqual(keys.flatMap((key) => Array.from({ length: rounds }, (_, round) => `${key}#${round}`)).sort());
  for (const key of keys) {
    const order = events.filter((e) => e.key === key).map((e) => e.round);
    expect({ key, order }).toEqual({ key, order: [...order].sort((a, b) => a - b) });
  }
}

const keysFor = (n: number, prefix = 'user') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe('readStream against kinesis-local', () => {
  const client = clientFor(endpoint);

  it('delivers every record once, in per-key order, while one shard splits and two others merge', async () => {
    const streamName = await createTestStream(endpoint, { shardCount: 3 });
    const { Shards = [] } = await listShards(client, { StreamName: streamName });
    const [s0, s1, s2] = Shards as [(typeof Shards)[0], (typeof Shards)[0], (typeof Shards)[0]];
    const keys = keysFor(24);
    const rounds = 5;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('timed out waiting for records')), 25_000);
    const reading = collect(
      readStream(client, { streamName, from: { type: 'TRIM_HORIZON' }, signal: controller.signal, shardRefreshIntervalMs: 1000, ...FAST }),
      keys.length * rounds,
    );

    await putRound(client, streamName, keys, 0);
    await putRound(client, streamName, keys, 1);
    const middle = (BigInt(s0.HashKeyRange.StartingHashKey) + BigInt(s0.HashKeyRange.EndingHashKey)) / 2n;
    await splitShard(client, { StreamName: streamName, ShardToSplit: s0.ShardId, NewStartingHashKey: String(middle) });
    await waitForStreamActive(endpoint, streamName);
    await putRound(client, streamName, keys, 2);
    await mergeShards(client, { StreamName: streamName, ShardToMerge: s1.ShardId, AdjacentShardToMerge: s2.ShardId });
    await waitForStreamActive(endpoint, streamName);
    await putRound(client, streamName, keys, 3);
    await putRound(client, streamName, keys, 4);

    const records = await reading.finally(() => clearTimeout(timer));
    expectEachOnceInOrder(records, keys, rounds);

    // Parents are fully delivered before the first record of any child.
    const after = await listShards(client, { StreamName: streamName });
    const children = (after.Shards ?? []).filter((s) => s.ParentShardId);
    expect(children).toHaveLength(3);
    const index = (shardId: string, pick: 'first' | 'last') => {
      const positions = records.flatMap((r, i) => (r.shardId === shardId ? [i] : []));
      return pick === 'first' ? positions[0] : positions.at(-1);
    };
    for (const child of children) {
      const first = index(child.ShardId, 'first');
      expect(first).toBeDefined();
      for (const parent of [child.ParentShardId!, child.AdjacentParentShardId].filter(Boolean) as string[]) {
        expect(index(parent, 'last')!).toBeLessThan(first!);
      }
    }
  });

  it('resumes after a stop mid-stream exactly after the last checkpoint, and skips shards checkpointed SHARD_END', async () => {
    const streamName = await createTestStream(endpoint, { shardCount: 2 });
    const { Shards = [] } = await listShards(client, { StreamName: streamName });
    const keys = keysFor(10, 'resume');
    for (let round = 0; round < 3; round++) await putRound(client, streamName, keys, round);
    const parent = Shards[0]!;
    const middle = (BigInt(parent.HashKeyRange.StartingHashKey) + BigInt(parent.HashKeyRange.EndingHashKey)) / 2n;
    await splitShard(client, { StreamName: streamName, ShardToSplit: parent.ShardId, NewStartingHashKey: String(middle) });
    await waitForStreamActive(endpoint, streamName);
    for (let round = 3; round < 5; round++) await putRound(client, streamName, keys, round);

    const checkpoints = createMemoryCheckpointStore();
    const options = { streamName, from: { type: 'TRIM_HORIZON' } as const, checkpoints, checkpointing: 'manual' as const, limit: 4, ...FAST };
    const first = await collect(readStream(client, options), 37, (record) => checkpointRecord(checkpoints, record));
    const second = await collect(readStream(client, { ...options, signal: AbortSignal.timeout(20_000) }), 50 - 37, (record) =>
      checkpointRecord(checkpoints, record),
    );

    expectEachOnceInOrder([...first, ...second], keys, 5);
    // Children were read, so the parent was read to its end before them.
    expect(checkpoints.get(parent.ShardId)).toEqual({ sequenceNumber: SHARD_END });

    // A third run opens only the shards still to read, and continues with the new round.
    const opened: string[] = [];
    const watching = clientFor(endpoint, async (input, init) => {
      if (new Headers(init?.headers).get('x-amz-target')?.endsWith('.GetShardIterator')) opened.push(JSON.parse(bodyText(init?.body)).ShardId);
      return fetch(input, init);
    });
    await putRound(client, streamName, keys, 5);
    const third = await collect(readStream(watching, { ...options, signal: AbortSignal.timeout(20_000) }), keys.length);
    expect(third.map((r) => recordJson<Event>(r).round)).toEqual(keys.map(() => 5));
    expect(opened).not.toContain(parent.ShardId);
    expect(opened.sort()).toEqual([Shards[1]!.ShardId, ...(await listShards(client, { StreamName: streamName })).Shards!.filter((s) => s.ParentShardId).map((s) => s.ShardId)].sort());
  });

  it('splits KPL aggregated records into user records', async () => {
    const streamName = await createTestStream(endpoint, { shardCount: 1 });
    const users = keysFor(5, 'kpl').map((key, round) => ({ partitionKey: key, data: new TextEncoder().encode(JSON.stringify({ key, round })) }));
    await putRecords(client, { StreamName: streamName, Records: [{ PartitionKey: 'aggregate', Data: encodeAggregatedRecord(users) }] });
    const records = await collect(readStream(client, { streamName, from: { type: 'TRIM_HORIZON' }, signal: AbortSignal.timeout(10_000), ...FAST }), 5);
    expect(records.map((r) => [r.partitionKey, r.subSequenceNumber, recordJson<Event>(r).round])).toEqual(users.map((u, i) => [u.partitionKey, i, i]));
    expect(new Set(records.map((r) => r.sequenceNumber)).size).toBe(1);
  });
});

describe('the consumer through the fault proxy', () => {
  let proxy: FaultProxy;
  let client: KinesisClient;

  beforeAll(async () => {
    proxy = await startFaultProxy(endpoint, { seed: 7 });
    client = clientFor(proxy.url);
  });
  afterAll(async () => {
    await proxy.close();
  });

  it('renews an expired iterator and waits out throttling without skipping or repeating a record', async () => {
    const streamName = await createTestStream(endpoint, { shardCount: 1 });
    const keys = keysFor(6, 'faults');
    for (let round = 0; round < 5; round++) await putRound(client, streamName, keys, round);
    const { Shards = [] } = await listShards(client, { StreamName: streamName });
    proxy.reset();
    // The proxy logs a request before it picks a rule, so this counts the current one too.
    const getRecordsSeen = () => proxy.requests.filter((r) => r.operation === 'GetRecords').length;
    proxy.setFaults([
      {
        fault: 'status',
        operation: 'GetRecords',
        status: 400,
        body: { __type: 'ExpiredIteratorException', message: 'Iterator expired. The iterator was created at time Mon Dec 01 00:00:00 UTC 2026 while right now it is Mon Dec 01 00:05:01 UTC 2026 which is further in the future than the tolerated delay of 300000 milliseconds.' },
        when: () => getRecordsSeen() === 3,
        label: 'expired',
      },
      // Three in a row: more than the client's own three attempts, so the reader's backoff is used too.
      { fault: 'throttle', operation: 'GetRecords', times: 4, when: () => getRecordsSeen() >= 5, label: 'throttled' },
    ]);

    const records = await collect(
      readShard(client, { streamName, shardId: Shards[0]!.ShardId, from: { type: 'TRIM_HORIZON' }, limit: 7, signal: AbortSignal.timeout(20_000), ...FAST }),
      30,
    );

    expectEachOnceInOrder(records, keys, 5);
    const applied = proxy.requests.filter((r) => r.fault).map((r) => r.fault!.label);
    expect(applied).toEqual(['expired', 'throttled', 'throttled', 'throttled', 'throttled']);
    const iterators = proxy.requests.filter((r) => r.operation === 'GetShardIterator').map((r) => r.body);
    expect(iterators).toEqual([
      expect.objectContaining({ ShardIteratorType: 'TRIM_HORIZON' }),
      // Two pages of 7 were delivered before the iterator expired.
      expect.objectContaining({ ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: records[13]!.sequenceNumber }),
    ]);
  });

  it('aborting the signal cancels every request in flight and leaves nothing running', async () => {
    const streamName = await createTestStream(endpoint, { shardCount: 3 });
    proxy.reset();
    proxy.setFaults([{ fault: 'delay', operation: 'GetRecords', ms: 20_000, times: 100 }]);
    const controller = new AbortController();
    const pending = collect(readStream(client, { streamName, from: { type: 'LATEST' }, signal: controller.signal, ...FAST }), 1);
    const deadline = Date.now() + 10_000;
    while (proxy.requests.filter((r) => r.operation === 'GetRecords').length < 3 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }

    const reason = new Error('stopped by test');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await proxy.idle(2_000);
    const held = proxy.requests.filter((r) => r.operation === 'GetRecords');
    expect(held).toHaveLength(3);
    expect(held.map((r) => r.outcome)).toEqual(['clientAborted', 'clientAborted', 'clientAborted']);
    // Nothing is sent after the abort.
    const count = proxy.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(proxy.requests).toHaveLength(count);
  });
});

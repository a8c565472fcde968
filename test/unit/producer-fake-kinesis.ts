// A small in-memory Kinesis behind the scripted fake fetch, for the producer's unit tests: it
// answers ListShards with evenly split hash key ranges and PutRecords by storing each entry on the
// shard its hash key falls in, unless the test's script fails some entries or the whole request.
// Shapes: https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html and
// API_ListShards.html; faults as in test/support/fake-fetch.ts.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { vi } from 'vitest';
import { createKinesisClient, type KinesisClient, type KinesisClientConfig } from '../../src/client.ts';
import { awsError, createFakeFetch, json, type FakeFetch, type RecordedRequest } from '../support/fake-fetch.ts';

// ListShards is validated by zod schemas that load on an operation's first call (a dynamic import,
// which takes real time): load them now, before a test fakes the clock and races ahead of it.
await import('../../src/schemas/list-shards.ts');

export interface FakeShard {
  ShardId: string;
  HashKeyRange: { StartingHashKey: string; EndingHashKey: string };
  SequenceNumberRange: { StartingSequenceNumber: string; EndingSequenceNumber?: string };
}

/** `count` shards splitting [0, 2^128 - 1] evenly, as CreateStream does. */
export function evenShards(count: number, firstId = 0): FakeShard[] {
  const space = 2n ** 128n;
  return Array.from({ length: count }, (_, i) => ({
    ShardId: `shardId-${String(firstId + i).padStart(12, '0')}`,
    HashKeyRange: {
      StartingHashKey: String((space * BigInt(i)) / BigInt(count)),
      EndingHashKey: String((space * BigInt(i + 1)) / BigInt(count) - 1n),
    },
    SequenceNumberRange: { StartingSequenceNumber: '1' },
  }));
}

/** MD5 hash key of a partition key, computed with node:crypto (independent of src/). */
export function md5HashKey(partitionKey: string): bigint {
  return BigInt(`0x${createHash('md5').update(partitionKey, 'utf8').digest('hex')}`);
}

export interface SentEntry {
  partitionKey: string;
  explicitHashKey: string | undefined;
  data: Uint8Array;
  /** `data` read as UTF-8. */
  text: string;
  /** The shard this entry's hash key falls in. */
  shardId: string;
}

export interface PutCall {
  /** 0-based among PutRecords calls. */
  index: number;
  entries: SentEntry[];
  request: RecordedRequest;
}

export interface StoredEntry extends SentEntry {
  sequenceNumber: string;
}

/**
 * What the script answers for one PutRecords call: a whole response or error, or per entry either
 * `'ok'` (stored) or an ErrorCode (not stored); `undefined` stores everything.
 */
export type PutScriptResult = Response | Error | readonly (string | undefined)[] | undefined;

export interface FakeKinesisOptions {
  shards?: number | FakeShard[];
  onPutRecords?: (call: PutCall) => PutScriptResult | Promise<PutScriptResult>;
  /** Answers ListShards instead of the shard list (e.g. an AccessDeniedException). */
  onListShards?: () => Response | Error | undefined;
  client?: Partial<KinesisClientConfig>;
}

export interface FakeKinesis {
  client: KinesisClient;
  fetch: FakeFetch;
  shards: FakeShard[];
  calls: PutCall[];
  stored: StoredEntry[];
  listShardsCalls: number;
  /** Replaces the script. */
  script(onPutRecords: FakeKinesisOptions['onPutRecords']): void;
}

export function createFakeKinesis(options: FakeKinesisOptions = {}): FakeKinesis {
  const shards = typeof options.shards === 'object' ? options.shards : evenShards(options.shards ?? 1);
  let onPutRecords = options.onPutRecords;
  const calls: PutCall[] = [];
  const stored: StoredEntry[] = [];
  let sequence = 49_000_000_000_000_000_000n;
  const state = { listShardsCalls: 0 };

  const shardOf = (hashKey: bigint): string => {
    const open = shards.filter((s) => s.SequenceNumberRange.EndingSequenceNumber === undefined);
    const shard = open.find((s) => hashKey >= BigInt(s.HashKeyRange.StartingHashKey) && hashKey <= BigInt(s.HashKeyRange.EndingHashKey));
    if (!shard) throw new Error(`fake kinesis: no shard for ${hashKey}`);
    return shard.ShardId;
  };

  const fetch = createFakeFetch([], {
    fallback: async (request) => {
      if (request.operation === 'ListShards') {
        state.listShardsCalls++;
        const override = options.onListShards?.();
        if (override !== undefined) return override;
        return json({ Shards: shards });
      }
      if (request.operation !== 'PutRecords') return awsError(400, 'UnknownOperationException', request.operation ?? '');
      const entries: SentEntry[] = request.json.Records.map((r: { Data: string; PartitionKey: string; ExplicitHashKey?: string }) => {
        const data = new Uint8Array(Buffer.from(r.Data, 'base64'));
        const hashKey = r.ExplicitHashKey !== undefined ? BigInt(r.ExplicitHashKey) : md5HashKey(r.PartitionKey);
        return {
          partitionKey: r.PartitionKey,
          explicitHashKey: r.ExplicitHashKey,
          data,
          text: Buffer.from(data).toString('utf8'),
          shardId: shardOf(hashKey),
        };
      });
      const call: PutCall = { index: calls.length, entries, request };
      calls.push(call);
      const outcome = await onPutRecords?.(call);
      if (outcome instanceof Response || outcome instanceof Error) return outcome;
      let failed = 0;
      const records = entries.map((entry, i) => {
        const code = outcome?.[i];
        if (code !== undefined && code !== 'ok') {
          failed++;
          return { ErrorCode: code, ErrorMessage: code === 'InternalFailure' ? 'Internal service failure.' : `${code} from the fake` };
        }
        sequence += 1n;
        const sequenceNumber = String(sequence);
        stored.push({ ...entry, sequenceNumber });
        return { ShardId: entry.shardId, SequenceNumber: sequenceNumber };
      });
      return json({ FailedRecordCount: failed, Records: records });
    },
  });

  const client = createKinesisClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
    endpoint: 'https://kinesis.us-east-1.amazonaws.com',
    fetch,
    ...options.client,
  });

  return {
    client,
    fetch,
    shards,
    calls,
    stored,
    get listShardsCalls() {
      return state.listShardsCalls;
    },
    script(next) {
      onPutRecords = next;
    },
  };
}

/** The shard (of `shards`) whose range holds `partitionKey`'s MD5 hash key. */
export function shardOfKey(shards: readonly FakeShard[], partitionKey: string): string {
  const hashKey = md5HashKey(partitionKey);
  return shards.find((s) => hashKey >= BigInt(s.HashKeyRange.StartingHashKey) && hashKey <= BigInt(s.HashKeyRange.EndingHashKey))!.ShardId;
}

/** Partition keys `${prefix}0`, `${prefix}1`, ... whose hash keys fall in `shardId`. */
export function keysOnShard(shards: readonly FakeShard[], shardId: string, count: number, prefix = 'k'): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count && i < 100_000; i++) {
    if (shardOfKey(shards, `${prefix}${i}`) === shardId) keys.push(`${prefix}${i}`);
  }
  return keys;
}

/** Lets pending I/O (crypto.subtle, response bodies) and microtasks run, with real time. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Lets real I/O finish before fake time moves on: signing uses crypto.subtle, which completes on
 * the real event loop, so a test that advances fake time must first wait until every request the
 * producer dispatched has reached the fake and had its answer read (at most `maxRounds` rounds).
 */
export async function quiesce(kinesis: FakeKinesis, dispatched: () => number, maxRounds = 500): Promise<void> {
  for (let i = 0; i < maxRounds; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (kinesis.calls.length >= dispatched() && kinesis.fetch.bodiesRead >= kinesis.fetch.requests.length) break;
  }
  await settle(2);
}

/**
 * Advances fake time in `stepMs` steps until `done()`, letting every dispatched request finish its
 * real I/O before each step (see {@link quiesce}), so fake time never runs ahead of the requests.
 */
export async function advanceUntil(
  kinesis: FakeKinesis,
  producer: { stats(): { requests: number } },
  done: () => boolean,
  stepMs = 10,
  maxSteps = 20_000,
): Promise<void> {
  for (let i = 0; i < maxSteps && !done(); i++) {
    await quiesce(kinesis, () => producer.stats().requests);
    if (done()) return;
    await vi.advanceTimersByTimeAsync(stepMs);
  }
  await quiesce(kinesis, () => producer.stats().requests);
  if (!done()) throw new Error('advanceUntil: condition still false');
}

/** Advances fake time by `ms` in steps, letting requests finish between steps. */
export async function advanceBy(kinesis: FakeKinesis, producer: { stats(): { requests: number } }, ms: number, stepMs = 10): Promise<void> {
  for (let elapsed = 0; elapsed < ms; elapsed += stepMs) {
    await quiesce(kinesis, () => producer.stats().requests);
    await vi.advanceTimersByTimeAsync(Math.min(stepMs, ms - elapsed));
  }
  await quiesce(kinesis, () => producer.stats().requests);
}

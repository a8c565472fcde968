// Seeded, model-based invariants of the polling consumer: readStream (every shard, lineage across
// resharding, checkpoints, crashes and resumes) and readShard / readShardBatches (one shard),
// against an in-process Kinesis behind the client's injected fetch, in fake time.
//
// The fake service models a stream as shards with hash key ranges and sequence numbers (56-digit
// decimal strings with random gaps, compared as bigint), resharded while the reader runs:
// SplitShard at a random hash key, MergeShards of two adjacent open shards, over several
// generations, with records routed by the MD5 of their partition key and arriving all the while.
// It answers as the API reference says:
// - ListShards (API_ListShards): pages of at most min(MaxResults, a small page size) shards with a
//   NextToken; a request with NextToken must not name the stream; ShardFilter is honoured for the
//   types that need no retention model (the consumer sends none today);
// - GetShardIterator (API_GetShardIterator): TRIM_HORIZON, LATEST, AT_/AFTER_SEQUENCE_NUMBER (a
//   sequence number that did not come from this shard is refused, InvalidArgumentException), and
//   AT_TIMESTAMP; sometimes no ShardIterator at the end of a closed shard (the KCL handles that);
// - GetRecords (API_GetRecords): at most Limit records, sometimes fewer, sometimes an empty page
//   while behind (a gap), MillisBehindLatest (0 when caught up), empty pages while an open shard
//   has nothing new, and at the end of a closed shard no NextShardIterator and ChildShards, either
//   with its last records or on the call after them; an iterator expires 5 minutes after it was
//   returned.
// KPL aggregated records (src/internal/kpl.ts builds them) come some of the time, a few with a
// broken MD5 (delivered as one plain record, as the KCL does).
//
// Faults, seeded per operation, shard and call number (so that the order in which concurrent
// requests arrive does not change them): ProvisionedThroughputExceededException (400;
// LimitExceededException for ListShards), ExpiredIteratorException (on iterators that came from
// GetRecords), 500 with an empty body, fetch rejecting (a network error), slow answers, some
// slower than the client's timeout. The first listing of each run is spared: a failing start is
// documented to throw (consumer-read-stream.test.ts covers it).
//
// readStream cases: 1-4 runs ("sessions") over one checkpoint store (none, in memory, in memory with
// asynchronous answers, or localStorage-like); every run but the last ends by aborting while a
// next() is pending, by aborting while a record is being processed, or by break; the last runs until
// every record in range was yielded and the world stopped, then 30 s more, then aborts. Checked:
// - every record in range (TRIM_HORIZON: all; AT_TIMESTAMP: arrived at or after it; LATEST, one run
//   only: per read-stream.ts, shards open at the start from their LATEST iterator, later shards and
//   children of read shards whole, shards closed at the start not at all) is yielded; within a run
//   at most once (with one run: exactly once); nothing out of range is yielded, except what
//   read-shard.ts documents for a renewed LATEST iterator (up to 5 s before when it was asked
//   for); under AT_TIMESTAMP, nothing from before the time, also after a resume;
// - the yielded record is the stored one: shard, sequence number, subsequence number, partition
//   key, data, arrival time; user records of an aggregate in order and complete;
// - per shard, (sequence, subsequence) strictly increases in yield order within a run; per
//   partition key, records come in the order they were put, across splits and merges;
// - parents before children: before a shard's first record in a run, every record in range of all
//   its ancestors was yielded, and no record of a shard comes after a record of a descendant in
//   the same run;
// - checkpoints: 'batch' stores only the ends of GetRecords batches (the last user record of a
//   page's last record), only once the consumer has finished with them (asked for the next
//   record), never backwards, never after SHARD_END; 'manual' stores nothing but SHARD_END;
//   SHARD_END only for a closed shard whose records in range were all processed, right after its
//   last record's position (so in manual mode once the caller checkpointed it); after a resume, no
//   record at or before a shard's stored position (or of a SHARD_END shard) is yielded again; at the
//   end every closed shard that was read holds SHARD_END (batch mode, or every record checkpointed);
// - stopping: the pending next() rejects with the abort reason (and the one after is done), return()
//   resolves done, and when it settles no timer and no request of the reader is left; a run's client
//   makes no request after the run ended;
// - memory: a shard never has more than one GetRecords page fetched beyond what was yielded, and
//   while the consumer pauses each shard gets at most one answer with records; no tight loop
//   (GetRecords and GetShardIterator calls per shard and fake second within the pacing's bound).
// readShard cases: one shard from every kind of start position, closed by a split or a merge while
// it is read; the records are exactly those from the position to the shard's end, in order, in
// batches of at most Limit Kinesis records, non-empty but for the last, which alone has
// isShardEnd and the shard's children (also the generator's return value); nothing is fetched while
// the caller holds a batch or record; abort and break leave nothing behind.
//
// Time: vitest's fake timers (setTimeout, clearTimeout, Date). Signing uses WebCrypto, real I/O
// that fake time does not move, so before each step the harness waits until no crypto job is in
// flight (node:async_hooks sees them): every reader, the consumer and the service then wait on a
// fake timer or on each other, and firing the next timer is the next thing that can happen.
//
// Exploration: CONSUMER_INVARIANTS_SEEDS=first:count runs other seeds (both describes),
// CONSUMER_INVARIANTS_REPORT=1 prints each case's configuration and figures,
// CONSUMER_INVARIANTS_TRACE=1 prints a failing case's runs, iterators, pages served and yields.
import { createHook } from 'node:async_hooks';
import { Buffer } from 'node:buffer';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createKinesisClient, type KinesisClient } from '../../src/client.ts';
import {
  SHARD_END,
  checkpointRecord,
  createMemoryCheckpointStore,
  createStorageCheckpointStore,
  type Checkpoint,
  type CheckpointStore,
} from '../../src/consumer/checkpoints.ts';
import type { StartPosition, StreamStartPosition } from '../../src/consumer/position.ts';
import { readShard, readShardBatches, type ReadShardOptions, type ShardBatch, type ShardEnd } from '../../src/consumer/read-shard.ts';
import { readStream, type ReadStreamOptions } from '../../src/consumer/read-stream.ts';
import type { ConsumerRecord } from '../../src/consumer/record.ts';
import { partitionKeyToHashKey } from '../../src/internal/hash-key.ts';
import { encodeAggregatedRecord } from '../../src/internal/kpl.ts';
import { getRecords } from '../../src/operations/get-records.ts';
import { getShardIterator } from '../../src/operations/get-shard-iterator.ts';
import { listShards } from '../../src/operations/list-shards.ts';
import { sleep } from '../../src/internal/sleep.ts';
import { bodyText } from '../support/fake-fetch.ts';
import { hash32, randomInt, seededRandom } from '../support/seeded-random.ts';
import { createFakeKinesis } from './consumer-fake-kinesis.ts';

const REPORT = process.env.CONSUMER_INVARIANTS_REPORT === '1';
const TRACE = process.env.CONSUMER_INVARIANTS_TRACE === '1';
const START_MS = Date.UTC(2030, 0, 1);
const MAX_HASH = (1n << 128n) - 1n;
const STREAM_NAME = 'invariants';
const STREAM_ARN = `arn:aws:kinesis:us-east-1:123456789012:stream/${STREAM_NAME}`;
/** "A shard iterator expires 5 minutes after it is returned to the requester." (API_GetShardIterator) */
const ITERATOR_LIFETIME_MS = 300_000;
/** read-shard.ts renews an expired LATEST iterator (before any delivery) this far before it. */
const LATEST_RENEWAL_MARGIN_MS = 5_000;
/** After the last record in range was yielded and the world stopped, the last run goes on this long. */
const DRAIN_MS = 30_000;
/** A run that has not finished by then (fake time) is reported stalled. */
const MAX_RUN_MS = 400_000;
/** Most pauses of the consumer per run. */
const MAX_PAUSES = 8;
/** Timer firings per case: a bound on the loop, far above what a case needs. */
const MAX_STEPS = 60_000;
const FIRST_SEQUENCE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898n;

// ---- small helpers -------------------------------------------------------------------------------

function pick<T>(random: () => number, values: readonly T[]): T {
  return values[Math.floor(random() * values.length)]!;
}

const encoder = new TextEncoder();

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A position in a shard: a sequence number and, inside an aggregate, a subsequence number. */
interface Position {
  seq: bigint;
  sub: number | undefined;
}

/** Yield order: by sequence number, then subsequence (a plain record has none). */
function comparePositions(a: Position, b: Position): number {
  if (a.seq !== b.seq) return a.seq < b.seq ? -1 : 1;
  return (a.sub ?? -1) - (b.sub ?? -1);
}

/** Whether `position` is covered by `checkpoint` (one without a subsequence covers the whole aggregate). */
function atOrBefore(position: Position, checkpoint: Checkpoint): boolean {
  const seq = BigInt(checkpoint.sequenceNumber);
  if (position.seq !== seq) return position.seq < seq;
  return checkpoint.subSequenceNumber === undefined || (position.sub ?? -1) <= checkpoint.subSequenceNumber;
}

const showPosition = (p: Position | Checkpoint): string =>
  'seq' in p ? `${p.seq}${p.sub === undefined ? '' : `/${p.sub}`}` : `${p.sequenceNumber}${p.subSequenceNumber === undefined ? '' : `/${p.subSequenceNumber}`}`;

// ---- the quiet point: no crypto job in flight ----------------------------------------------------

/**
 * Crypto jobs (and file requests, should a module still load) in flight. WebCrypto's digest and
 * sign run on libuv's thread pool, where fake time cannot reach: `quiesce()` waits for them.
 */
const jobs = new Set<number>();
const jobHook = createHook({
  init(id, type) {
    if (type.includes('REQ')) jobs.add(id);
  },
  after(id) {
    jobs.delete(id);
  },
  destroy(id) {
    jobs.delete(id);
  },
});

/**
 * Until no crypto job is in flight in two rounds of the event loop in a row (then the microtasks
 * that their answers start have run, and whatever they started is waiting on a fake timer, on
 * the service's answer, or on another part of the reader). Bounded in real time.
 */
async function quiesce(violate: (message: string) => void): Promise<void> {
  const deadline = performance.now() + 5_000;
  for (let calm = 0; calm < 2; ) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    calm = jobs.size === 0 ? calm + 1 : 0;
    if (performance.now() > deadline) {
      violate(`quiesce: ${jobs.size} crypto jobs still in flight after 5 s of real time`);
      return;
    }
  }
}

// ---- the world: shards, records, resharding -----------------------------------------------------

interface StoredRecord {
  shardId: string;
  /** Index in its shard. */
  index: number;
  seq: bigint;
  sequenceNumber: string;
  partitionKey: string;
  data: Uint8Array;
  arrival: number;
  /** Put order across the stream. */
  order: number;
  kind: 'plain' | 'aggregate' | 'corrupt';
  /** The user records of an aggregate, in order. */
  users: { partitionKey: string; data: Uint8Array }[];
}

interface ModelShard {
  id: string;
  /** ParentShardId first, AdjacentParentShardId second. */
  parents: string[];
  start: bigint;
  end: bigint;
  startingSeq: bigint;
  endingSeq: bigint | undefined;
  records: StoredRecord[];
  children: string[];
}

/** One consumer record the model expects from a stored record. */
interface Expected {
  key: string;
  record: StoredRecord;
  sub: number | undefined;
  partitionKey: string;
  data: Uint8Array;
}

interface WorldConfig {
  shards: number;
  maxOpen: number;
  keys: number;
  perTick: number;
  reshardChance: number;
  aggregateShare: number;
  corruptShare: number;
  maxUsers: number;
}

interface World {
  shards: Map<string, ModelShard>;
  bySeq: Map<string, StoredRecord>;
  records: StoredRecord[];
  open(): ModelShard[];
  put(partitionKey: string): StoredRecord;
  tick(): void;
  split(shard: ModelShard): void;
  merge(first: ModelShard, second: ModelShard): void;
  ancestors(shardId: string): string[];
  descendants(shardId: string): string[];
  /** The consumer records a stored record stands for, per `deaggregate`. */
  expected(record: StoredRecord, deaggregate: boolean): Expected[];
}

function createWorld(config: WorldConfig, random: () => number): World {
  const shards = new Map<string, ModelShard>();
  const bySeq = new Map<string, StoredRecord>();
  const records: StoredRecord[] = [];
  let sequence = FIRST_SEQUENCE;
  // Random gaps, so that nothing may assume consecutive numbers.
  const nextSequence = () => (sequence += BigInt(randomInt(random, 1, 1 << 20)));
  let order = 0;
  const make = (parents: string[], start: bigint, end: bigint): ModelShard => {
    const shard: ModelShard = {
      id: `shardId-${String(shards.size).padStart(12, '0')}`,
      parents,
      start,
      end,
      startingSeq: nextSequence(),
      endingSeq: undefined,
      records: [],
      children: [],
    };
    shards.set(shard.id, shard);
    return shard;
  };
  const step = (MAX_HASH + 1n) / BigInt(config.shards);
  for (let i = 0; i < config.shards; i++) make([], step * BigInt(i), i === config.shards - 1 ? MAX_HASH : step * BigInt(i + 1) - 1n);

  const open = () => [...shards.values()].filter((s) => s.endingSeq === undefined).sort((a, b) => (a.start < b.start ? -1 : 1));
  const close = (shard: ModelShard) => {
    shard.endingSeq = nextSequence();
  };

  /** Every shard reached from `shardId` through `parents` or `children` links, nearest first. */
  const lineageOf = (shardId: string, link: 'parents' | 'children') => {
    const out: string[] = [];
    const visit = (id: string) => {
      for (const next of shards.get(id)?.[link] ?? []) {
        if (out.includes(next)) continue;
        out.push(next);
        visit(next);
      }
    };
    visit(shardId);
    return out;
  };
  const world: World = {
    shards,
    bySeq,
    records,
    open,
    put(partitionKey) {
      const hash = partitionKeyToHashKey(partitionKey);
      const shard = open().find((s) => hash >= s.start && hash <= s.end)!;
      const id = order++;
      let kind: StoredRecord['kind'] = 'plain';
      let users: StoredRecord['users'] = [];
      let data: Uint8Array = encoder.encode(`r${id}`);
      const u = random();
      if (u < config.aggregateShare) {
        users = Array.from({ length: randomInt(random, 1, config.maxUsers) }, (_, i) => ({ partitionKey, data: encoder.encode(`r${id}.${i}`) }));
        data = encodeAggregatedRecord(users);
        kind = 'aggregate';
        if (random() < config.corruptShare) {
          // A broken MD5: not an aggregate any more, one plain record (aggregation-format.md).
          data = data.slice();
          data[data.length - 1]! ^= 0xff;
          kind = 'corrupt';
          users = [];
        }
      }
      const seq = nextSequence();
      const record: StoredRecord = {
        shardId: shard.id,
        index: shard.records.length,
        seq,
        sequenceNumber: String(seq),
        partitionKey,
        data,
        arrival: Date.now(),
        order: id,
        kind,
        users,
      };
      shard.records.push(record);
      bySeq.set(record.sequenceNumber, record);
      records.push(record);
      return record;
    },
    tick() {
      const count = randomInt(random, 0, config.perTick);
      for (let i = 0; i < count; i++) world.put(`k${randomInt(random, 0, config.keys - 1)}`);
      if (random() >= config.reshardChance) return;
      const candidates = open();
      const splittable = candidates.filter((s) => s.end - s.start >= 4n);
      if (splittable.length > 0 && (candidates.length < 2 || (candidates.length < config.maxOpen && random() < 0.55))) {
        world.split(pick(random, splittable));
      } else if (candidates.length >= 2) {
        const i = randomInt(random, 0, candidates.length - 2);
        const [a, b] = [candidates[i]!, candidates[i + 1]!];
        if (random() < 0.5) world.merge(a, b);
        else world.merge(b, a);
      }
    },
    split(shard) {
      // NewStartingHashKey inside (start, end] (API_SplitShard).
      const width = shard.end - shard.start;
      const at = shard.start + 1n + (width * BigInt(randomInt(random, 250, 750))) / 1000n;
      close(shard);
      const a = make([shard.id], shard.start, at - 1n);
      const b = make([shard.id], at, shard.end);
      shard.children = [a.id, b.id];
    },
    merge(first, second) {
      // Only adjacent shards merge (API_MergeShards); ParentShardId is the ShardToMerge.
      if (first.end + 1n !== second.start && second.end + 1n !== first.start) throw new Error('not adjacent');
      close(first);
      close(second);
      const child = make([first.id, second.id], first.start < second.start ? first.start : second.start, first.end > second.end ? first.end : second.end);
      first.children = [child.id];
      second.children = [child.id];
    },
    ancestors: (shardId) => lineageOf(shardId, 'parents'),
    descendants: (shardId) => lineageOf(shardId, 'children'),
    expected(record, deaggregate) {
      if (deaggregate && record.kind === 'aggregate') {
        return record.users.map((user, sub) => ({ key: `${record.sequenceNumber}/${sub}`, record, sub, partitionKey: user.partitionKey, data: user.data }));
      }
      return [{ key: `${record.sequenceNumber}/-`, record, sub: undefined, partitionKey: record.partitionKey, data: record.data }];
    },
  };
  return world;
}

// ---- the service: the Kinesis API over the world, with faults ------------------------------------

interface Faults {
  network: number;
  http500: number;
  throttle: number;
  expired: number;
  slow: number;
  /** Share of slow answers that come after the client's timeout. */
  timeouts: number;
  maxLatencyMs: number;
}

interface ServiceConfig {
  seed: number;
  faults: Faults;
  /** The end of a closed shard comes with its last records, or on the call after them. */
  endWithLastPage: boolean;
  /** Chance that GetShardIterator at the end of a closed shard answers no iterator. */
  nullIteratorChance: number;
  gapChance: number;
  shortPageChance: number;
  listPageSize: number;
  timeoutMs: number;
  byArn: boolean;
}

/** What one run (one client) did, as the service saw it. */
interface Session {
  id: number;
  ended: boolean;
  calls: number;
  /** Per shard: the first LATEST iterator answered, and when the first LATEST request came. */
  latest: Map<string, { index: number; at: number }>;
  latestAsked: Map<string, number>;
  /** Per shard: AT_TIMESTAMP iterators answered. */
  timestampIterators: Map<string, number>;
  /** The run's first complete listing: shard → closed when listed. */
  firstListing: Map<string, boolean>;
  listingComplete: boolean;
  /** Per shard: the first index a GetRecords answer served, and the end of the furthest one. */
  firstServed: Map<string, number>;
  servedEnd: Map<string, number>;
  /** Sequence numbers of the last record of each GetRecords page with records (batch ends). */
  pageEnds: Set<string>;
  /** Per shard: MillisBehindLatest of the last GetRecords answer. */
  millisBehind: Map<string, number>;
  /** Per shard: the index of the last record yielded in this run (kept by the consumer). */
  lastYieldedIndex: Map<string, number>;
  /** While the consumer pauses: GetRecords answers with records per shard. */
  pause: Map<string, number> | undefined;
  /** Shards whose GetShardIterator answered no iterator. */
  nullIterators: Set<string>;
  /** Calls per operation, shard and fake second. */
  perSecond: Map<string, number[]>;
  /** Limit of the reader (for the memory bound). */
  limit: number;
}

interface Service {
  fetchFor(session: Session): typeof fetch;
  newSession(id: number, limit: number): Session;
  readonly openRequests: number;
  readonly calls: number;
}

function okResponse(body: unknown): Response {
  return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-RequestId': 'fake-ok' } });
}

function faultResponse(status: number, type: string, message: string): Response {
  return new Response(JSON.stringify({ __type: type, message }), {
    status,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-RequestId': `fake-${type}` },
  });
}

interface IteratorToken {
  shardId: string;
  index: number;
  issuedAt: number;
  /** Straight from GetShardIterator: such an iterator is never reported expired by a fault. */
  fresh: boolean;
}

const iteratorToken = (token: IteratorToken) => Buffer.from(JSON.stringify(token)).toString('base64');

function parseIterator(text: unknown): IteratorToken | undefined {
  if (typeof text !== 'string') return undefined;
  try {
    const token = JSON.parse(Buffer.from(text, 'base64').toString('utf8')) as IteratorToken;
    return typeof token.shardId === 'string' && Number.isInteger(token.index) ? token : undefined;
  } catch {
    return undefined;
  }
}

/** With CONSUMER_INVARIANTS_TRACE=1: a case's notes, printed when it fails. */
function createTrace(): { trace: string[]; note: (line: string) => void } {
  const trace: string[] = [];
  return { trace, note: TRACE ? (line) => void trace.push(`t=${Date.now() - START_MS} ${line}`) : () => undefined };
}

function createService(world: World, config: ServiceConfig, violate: (message: string) => void, note: (line: string) => void): Service {
  let open = 0;
  let calls = 0;
  const counts = new Map<string, number>();
  const f = config.faults;

  const streamNamed = (body: Record<string, unknown>, op: string): boolean => {
    const byName = body.StreamName === STREAM_NAME && body.StreamARN === undefined;
    const byArn = body.StreamARN === STREAM_ARN && body.StreamName === undefined;
    if (!(config.byArn ? byArn : byName)) {
      violate(`${op} names the stream as ${JSON.stringify({ StreamName: body.StreamName, StreamARN: body.StreamARN })}, expected ${config.byArn ? 'the ARN' : 'the name'}`);
      return false;
    }
    return true;
  };

  const wireShard = (shard: ModelShard) => ({
    ShardId: shard.id,
    ...(shard.parents[0] ? { ParentShardId: shard.parents[0] } : {}),
    ...(shard.parents[1] ? { AdjacentParentShardId: shard.parents[1] } : {}),
    HashKeyRange: { StartingHashKey: String(shard.start), EndingHashKey: String(shard.end) },
    SequenceNumberRange: {
      StartingSequenceNumber: String(shard.startingSeq),
      ...(shard.endingSeq !== undefined ? { EndingSequenceNumber: String(shard.endingSeq) } : {}),
    },
  });

  const listShardsAnswer = (session: Session, body: Record<string, unknown>): Response => {
    let filter: { Type?: string; ShardId?: string } | undefined;
    let after: string | undefined;
    if (body.NextToken !== undefined) {
      // "NextToken ... Don't specify StreamName or StreamCreationTimestamp if you specify NextToken."
      if (body.StreamName !== undefined || body.StreamARN !== undefined || body.ShardFilter !== undefined) {
        violate(`ListShards with NextToken also names the stream or a filter: ${JSON.stringify(body)}`);
        return faultResponse(400, 'InvalidArgumentException', 'NextToken and StreamName cannot be provided together.');
      }
      const token = JSON.parse(Buffer.from(String(body.NextToken), 'base64').toString('utf8')) as { after: string; filter?: typeof filter; issuedAt: number };
      if (Date.now() - token.issuedAt > 300_000) return faultResponse(400, 'ExpiredNextTokenException', 'The NextToken has expired.');
      after = token.after;
      filter = token.filter;
    } else {
      if (!streamNamed(body, 'ListShards')) return faultResponse(400, 'InvalidArgumentException', 'bad stream');
      filter = body.ShardFilter as typeof filter;
    }
    const max = body.MaxResults === undefined ? 1000 : Number(body.MaxResults);
    if (!(Number.isInteger(max) && max >= 1 && max <= 10_000)) return faultResponse(400, 'InvalidArgumentException', 'MaxResults');
    let shards = [...world.shards.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    if (filter !== undefined) {
      // No retention in this model: every shard is within the trim horizon.
      switch (filter.Type) {
        case 'AFTER_SHARD_ID':
          shards = shards.filter((s) => s.id > String(filter.ShardId));
          break;
        case 'AT_LATEST':
          shards = shards.filter((s) => s.endingSeq === undefined);
          break;
        case 'AT_TRIM_HORIZON':
          shards = shards.filter((s) => s.parents.length === 0);
          break;
        case 'FROM_TRIM_HORIZON':
          break;
        default:
          violate(`ListShards with a ShardFilter this fake does not model: ${JSON.stringify(filter)}`);
          return faultResponse(400, 'InvalidArgumentException', 'ShardFilter');
      }
    }
    if (after !== undefined) shards = shards.filter((s) => s.id > after);
    const page = shards.slice(0, Math.min(max, config.listPageSize));
    const more = shards.length > page.length;
    if (!session.listingComplete) {
      for (const shard of page) session.firstListing.set(shard.id, shard.endingSeq !== undefined);
      if (!more) session.listingComplete = true;
    }
    return okResponse({
      Shards: page.map(wireShard),
      ...(more ? { NextToken: Buffer.from(JSON.stringify({ after: page.at(-1)!.id, filter, issuedAt: Date.now() })).toString('base64') } : {}),
    });
  };

  const getShardIteratorAnswer = (session: Session, body: Record<string, unknown>, random: () => number): Response => {
    if (!streamNamed(body, 'GetShardIterator')) return faultResponse(400, 'InvalidArgumentException', 'bad stream');
    const shard = world.shards.get(String(body.ShardId));
    note(`run ${session.id} GetShardIterator ${String(body.ShardId)} ${String(body.ShardIteratorType)} ${String(body.StartingSequenceNumber ?? body.Timestamp ?? '')}`);
    if (!shard) return faultResponse(400, 'ResourceNotFoundException', `Shard ${String(body.ShardId)} in stream ${STREAM_NAME} under account 123456789012 does not exist`);
    const { records } = shard;
    let index: number;
    switch (body.ShardIteratorType) {
      case 'TRIM_HORIZON':
        index = 0;
        break;
      case 'LATEST':
        index = records.length;
        if (!session.latest.has(shard.id)) session.latest.set(shard.id, { index, at: session.latestAsked.get(shard.id) ?? Date.now() });
        break;
      case 'AT_SEQUENCE_NUMBER':
      case 'AFTER_SEQUENCE_NUMBER': {
        const text = String(body.StartingSequenceNumber);
        const seq = /^\d+$/.test(text) ? BigInt(text) : -1n;
        if (seq < shard.startingSeq || (shard.endingSeq !== undefined && seq > shard.endingSeq)) {
          violate(`GetShardIterator ${String(body.ShardIteratorType)} ${text} on ${shard.id}: not a sequence number of this shard`);
          return faultResponse(
            400,
            'InvalidArgumentException',
            `StartingSequenceNumber ${text} used in GetShardIterator on shard ${shard.id} in stream ${STREAM_NAME} under account 123456789012 is invalid because it did not come from this stream.`,
          );
        }
        const at = records.findIndex((r) => (body.ShardIteratorType === 'AT_SEQUENCE_NUMBER' ? r.seq >= seq : r.seq > seq));
        index = at < 0 ? records.length : at;
        break;
      }
      case 'AT_TIMESTAMP': {
        // Epoch seconds with a fraction (the client's JSON 1.1 timestamps).
        const ms = Math.round(Number(body.Timestamp) * 1000);
        const at = records.findIndex((r) => r.arrival >= ms);
        index = at < 0 ? records.length : at;
        session.timestampIterators.set(shard.id, (session.timestampIterators.get(shard.id) ?? 0) + 1);
        break;
      }
      default:
        violate(`GetShardIterator with type ${String(body.ShardIteratorType)}`);
        return faultResponse(400, 'InvalidArgumentException', 'ShardIteratorType');
    }
    if (shard.endingSeq !== undefined && index >= records.length && random() < config.nullIteratorChance) {
      session.nullIterators.add(shard.id);
      return okResponse({ ShardIterator: null });
    }
    return okResponse({ ShardIterator: iteratorToken({ shardId: shard.id, index, issuedAt: Date.now(), fresh: true }) });
  };

  const getRecordsAnswer = (session: Session, body: Record<string, unknown>, random: () => number): Response => {
    const token = parseIterator(body.ShardIterator);
    if (!token) {
      violate(`GetRecords with an iterator this service never gave: ${String(body.ShardIterator).slice(0, 40)}`);
      return faultResponse(400, 'InvalidArgumentException', 'Invalid ShardIterator.');
    }
    if (body.StreamARN !== undefined && body.StreamARN !== STREAM_ARN) violate(`GetRecords names another stream: ${String(body.StreamARN)}`);
    if (config.byArn && body.StreamARN === undefined) violate('GetRecords without the StreamARN the reader was given');
    const shard = world.shards.get(token.shardId)!;
    if (Date.now() - token.issuedAt > ITERATOR_LIFETIME_MS) {
      return faultResponse(400, 'ExpiredIteratorException', `Iterator expired. The iterator was created at time ${new Date(token.issuedAt).toUTCString()} while right now it is ${new Date().toUTCString()} which is further in the future than the tolerated delay of 300000 milliseconds.`);
    }
    const limit = body.Limit === undefined ? 10_000 : Number(body.Limit);
    if (!(Number.isInteger(limit) && limit >= 1 && limit <= 10_000)) {
      violate(`GetRecords with Limit ${String(body.Limit)}`);
      return faultResponse(400, 'InvalidArgumentException', 'Limit');
    }
    const { records } = shard;
    const behind = (index: number) => (index < records.length ? Math.max(1, Date.now() - records[index]!.arrival) : 0);
    if (token.index < records.length && random() < config.gapChance) {
      // An empty page while behind (API_GetRecords: "a gap"): go on with the same position.
      return okResponse({ Records: [], MillisBehindLatest: behind(token.index), NextShardIterator: iteratorToken({ ...token, issuedAt: Date.now(), fresh: false }) });
    }
    let count = Math.min(limit, records.length - token.index);
    if (count > 1 && random() < config.shortPageChance) count = randomInt(random, 1, count - 1);
    const next = token.index + count;
    const page = records.slice(token.index, next);
    const closed = shard.endingSeq !== undefined;
    const atEnd = closed && next >= records.length && (page.length === 0 || config.endWithLastPage);
    if (page.length > 0) {
      if (!session.firstServed.has(shard.id)) session.firstServed.set(shard.id, token.index);
      session.servedEnd.set(shard.id, Math.max(session.servedEnd.get(shard.id) ?? 0, next));
      session.pageEnds.add(page.at(-1)!.sequenceNumber);
      // One page beyond what the consumer has: the reader fetches again only once a page is taken.
      const yielded = session.lastYieldedIndex.get(shard.id) ?? session.firstServed.get(shard.id)! - 1;
      note(`run ${session.id} GetRecords ${shard.id} serves ${token.index}..${next - 1}, consumer at ${yielded}${atEnd ? ', end' : ''}`);
      if (next - 1 - yielded > session.limit) {
        violate(`memory: ${shard.id} served up to index ${next - 1} while the consumer had index ${yielded}: ${next - 1 - yielded} records ahead, Limit ${session.limit}`);
      }
      if (session.pause) session.pause.set(shard.id, (session.pause.get(shard.id) ?? 0) + 1);
    }
    session.millisBehind.set(shard.id, behind(next));
    return okResponse({
      Records: page.map((r) => ({
        SequenceNumber: r.sequenceNumber,
        ApproximateArrivalTimestamp: r.arrival / 1000,
        Data: Buffer.from(r.data).toString('base64'),
        PartitionKey: r.partitionKey,
      })),
      MillisBehindLatest: behind(next),
      ...(atEnd
        ? {
            ChildShards: shard.children.map((id) => {
              const child = world.shards.get(id)!;
              return { ShardId: child.id, ParentShards: child.parents, HashKeyRange: { StartingHashKey: String(child.start), EndingHashKey: String(child.end) } };
            }),
          }
        : { NextShardIterator: iteratorToken({ shardId: shard.id, index: next, issuedAt: Date.now(), fresh: false }) }),
    });
  };

  return {
    get openRequests() {
      return open;
    },
    get calls() {
      return calls;
    },
    newSession(id, limit) {
      return {
        id,
        ended: false,
        calls: 0,
        latest: new Map(),
        latestAsked: new Map(),
        timestampIterators: new Map(),
        firstListing: new Map(),
        listingComplete: false,
        firstServed: new Map(),
        servedEnd: new Map(),
        pageEnds: new Set(),
        millisBehind: new Map(),
        lastYieldedIndex: new Map(),
        pause: undefined,
        nullIterators: new Set(),
        perSecond: new Map(),
        limit,
      };
    },
    fetchFor(session) {
      return async (_input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
        const op = String(new Headers(init?.headers).get('x-amz-target')).split('.')[1] ?? '';
        const body = JSON.parse(bodyText(init?.body)) as Record<string, unknown>;
        const signal = init?.signal ?? undefined;
        if (session.ended) violate(`run ${session.id}: ${op} sent after the run ended`);
        calls++;
        session.calls++;
        const shardId = op === 'GetShardIterator' ? String(body.ShardId) : op === 'GetRecords' ? (parseIterator(body.ShardIterator)?.shardId ?? '?') : '-';
        // read-shard.ts anchors a renewed LATEST iterator at "when reading began": the request, not
        // the answer, which faults and retries may delay.
        if (op === 'GetShardIterator' && body.ShardIteratorType === 'LATEST' && !session.latestAsked.has(shardId)) session.latestAsked.set(shardId, Date.now());
        const countKey = `${op}|${shardId}`;
        const n = (counts.get(countKey) ?? 0) + 1;
        counts.set(countKey, n);
        const second = Math.floor((Date.now() - START_MS) / 1000);
        const perSecond = session.perSecond.get(countKey) ?? [];
        session.perSecond.set(countKey, perSecond);
        perSecond[second] = (perSecond[second] ?? 0) + 1;

        const random = seededRandom(hash32(`${countKey}|${n}`, config.seed));
        // A failing start is documented to throw: the run's first listing gets no fault (and no
        // answer after the client's timeout).
        // Nor do the pages after a listing's first: they hold 1-3 shards here, where AWS's hold up
        // to 1,000 (a real listing is one page), and faults on each would compound into listings
        // that can hardly succeed.
        const spared = op === 'ListShards' && (!session.listingComplete || body.NextToken !== undefined);
        const u = random();
        let fault: 'network' | 'http500' | 'throttle' | 'expired' | undefined;
        if (!spared) {
          if (u < f.network) fault = 'network';
          else if (u < f.network + f.http500) fault = 'http500';
          else if (u < f.network + f.http500 + f.throttle) fault = 'throttle';
          else if (op === 'GetRecords' && u < f.network + f.http500 + f.throttle + f.expired && !parseIterator(body.ShardIterator)?.fresh) fault = 'expired';
        }
        const slow = random() < f.slow;
        const late = random() < f.timeouts && !spared;
        // Slow answers come before the client's timeout, late ones after it.
        const latency = slow ? (late ? config.timeoutMs + randomInt(random, 1, 2_000) : Math.min(randomInt(random, 1, f.maxLatencyMs), config.timeoutMs - 1)) : 0;
        if (latency > 0) {
          open++;
          try {
            // As a real fetch does, an aborted request rejects with the signal's reason.
            await sleep(latency, signal ?? undefined);
          } finally {
            open--;
          }
        }
        if (signal?.aborted) throw signal.reason;
        switch (fault) {
          case 'network':
            throw new TypeError('fetch failed');
          case 'http500':
            return new Response(null, { status: 500 });
          case 'throttle':
            return op === 'ListShards'
              ? faultResponse(400, 'LimitExceededException', 'Rate exceeded for stream invariants under account 123456789012.')
              : faultResponse(400, 'ProvisionedThroughputExceededException', `Rate exceeded for shard ${shardId} in stream ${STREAM_NAME} under account 123456789012.`);
          case 'expired':
            return faultResponse(400, 'ExpiredIteratorException', 'Iterator expired.');
          default:
        }
        switch (op) {
          case 'ListShards':
            return listShardsAnswer(session, body);
          case 'GetShardIterator':
            return getShardIteratorAnswer(session, body, random);
          case 'GetRecords':
            return getRecordsAnswer(session, body, random);
          default:
            violate(`the consumer called ${op}`);
            return faultResponse(400, 'UnknownOperationException', op);
        }
      };
    },
  };
}

// ---- configurations shared by both kinds of case -------------------------------------------------

interface Pacing {
  limit: number;
  pollIntervalMs: number;
  idleDelayMs: number;
  maxIdleDelayMs: number;
  throttleDelayMs: number;
  maxThrottleDelayMs: number;
}

interface ClientRetry {
  maxAttempts: number;
  baseDelayMs: number;
  throttlingBaseDelayMs: number;
  maxDelayMs: number;
  quota: number;
}

function makeFaults(r: () => number): Faults {
  const level = pick(r, ['none', 'light', 'light', 'heavy'] as const);
  if (level === 'none') return { network: 0, http500: 0, throttle: 0, expired: 0, slow: 0, timeouts: 0, maxLatencyMs: 1 };
  const heavy = level === 'heavy';
  return {
    network: heavy ? 0.05 : 0.02,
    http500: heavy ? 0.05 : 0.02,
    throttle: heavy ? 0.1 : 0.03,
    expired: heavy ? 0.08 : 0.03,
    slow: pick(r, [0, 0.1, 0.3]),
    timeouts: pick(r, [0, 0.1]),
    maxLatencyMs: pick(r, [50, 500, 3_000]),
  };
}

function makePacing(r: () => number): Pacing {
  return {
    limit: pick(r, [1, 2, 3, 5, 10, 100, 10_000]),
    pollIntervalMs: pick(r, [50, 200, 200]),
    idleDelayMs: pick(r, [50, 250]),
    maxIdleDelayMs: pick(r, [500, 2_000]),
    throttleDelayMs: pick(r, [100, 1_000]),
    maxThrottleDelayMs: pick(r, [1_000, 10_000]),
  };
}

function makeRetry(r: () => number): ClientRetry {
  return { maxAttempts: pick(r, [1, 2, 3]), baseDelayMs: pick(r, [10, 100]), throttlingBaseDelayMs: pick(r, [50, 500]), maxDelayMs: 2_000, quota: pick(r, [500, Infinity]) };
}

function makeClient(session: Session, service: Service, retry: ClientRetry, timeoutMs: number, seed: number): KinesisClient {
  return createKinesisClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
    endpoint: 'https://kinesis.us-east-1.amazonaws.com',
    fetch: service.fetchFor(session),
    timeoutMs,
    retry: { ...retry, random: seededRandom(seed) },
  });
}

/** Calls per operation, shard and fake second above the pacing's bound (no tight loop). */
function pacingViolations(session: Session, pacing: Pacing, retry: ClientRetry): string[] {
  const out: string[] = [];
  // A reader's calls start pollIntervalMs apart (GetShardIterator only after a failure or an
  // expired iterator, which back off or, once in a row, do not); the client repeats each up to
  // maxAttempts times.
  const readerCalls = Math.ceil(1000 / pacing.pollIntervalMs) + 1;
  for (const [key, seconds] of session.perSecond) {
    const [op] = key.split('|');
    if (op === 'ListShards') continue;
    const bound = (op === 'GetRecords' ? readerCalls : 2 * readerCalls) * retry.maxAttempts + 2;
    const worst = Math.max(0, ...seconds.map((c) => c ?? 0));
    if (worst > bound) out.push(`pacing: ${key} made ${worst} calls in one fake second, bound ${bound}`);
  }
  return out;
}

// ---- readStream cases ----------------------------------------------------------------------------

type RunEnd = { kind: 'abort-pending'; afterMs: number } | { kind: 'abort-processing'; after: number } | { kind: 'break'; after: number };

interface StreamCase {
  seed: number;
  world: WorldConfig;
  tickMs: number;
  prehistoryMs: number;
  /** The world runs this long after the first run starts. */
  worldMs: number;
  from: 'TRIM_HORIZON' | 'LATEST' | 'AT_TIMESTAMP';
  /** AT_TIMESTAMP: this long before the first run. */
  timestampBackMs: number;
  store: 'none' | 'memory' | 'async' | 'storage';
  checkpointing: 'batch' | 'manual';
  /** Manual mode: the chance that the consumer checkpoints a record. */
  manualChance: number;
  /** How each run but the last ends. */
  runs: RunEnd[];
  gapBetweenRunsMs: number;
  deaggregate: boolean | undefined;
  pacing: Pacing;
  retry: ClientRetry;
  timeoutMs: number;
  shardRefreshIntervalMs: number;
  service: Omit<ServiceConfig, 'seed' | 'timeoutMs' | 'byArn' | 'faults'>;
  faults: Faults;
  byArn: boolean;
  /** The consumer pauses after a record with this chance, for up to pauseMs. */
  pauseChance: number;
  pauseMs: number;
}

function makeStreamCase(seed: number): StreamCase {
  const r = seededRandom(seed);
  const from = pick(r, ['TRIM_HORIZON', 'TRIM_HORIZON', 'AT_TIMESTAMP', 'LATEST'] as const);
  const store = pick(r, ['none', 'memory', 'memory', 'async', 'storage'] as const);
  // LATEST and no store: one run (what a resumed LATEST run must deliver depends on what the first
  // one stored; see the header).
  const runCount = store === 'none' || from === 'LATEST' ? 1 : randomInt(r, 1, 4);
  const runs: RunEnd[] = [];
  for (let i = 1; i < runCount; i++) {
    runs.push(
      pick(r, [
        { kind: 'abort-pending', afterMs: randomInt(r, 300, 8_000) },
        { kind: 'abort-processing', after: randomInt(r, 1, 60) },
        { kind: 'break', after: randomInt(r, 1, 60) },
      ] as RunEnd[]),
    );
  }
  const aggregates = r() < 0.4;
  return {
    seed,
    world: {
      shards: randomInt(r, 1, 4),
      maxOpen: randomInt(r, 2, 5),
      keys: pick(r, [4, 12, 40]),
      perTick: pick(r, [1, 3, 8]),
      reshardChance: pick(r, [0.02, 0.05, 0.12]),
      aggregateShare: aggregates ? pick(r, [0.2, 0.6]) : 0,
      corruptShare: aggregates ? pick(r, [0, 0.15]) : 0,
      maxUsers: pick(r, [2, 5]),
    },
    tickMs: pick(r, [100, 250, 500]),
    prehistoryMs: pick(r, [0, 2_000, 6_000]),
    worldMs: pick(r, [4_000, 10_000, 16_000]),
    from,
    timestampBackMs: pick(r, [0, 1_000, 3_000, 10_000]),
    store,
    checkpointing: r() < 0.65 ? 'batch' : 'manual',
    manualChance: pick(r, [1, 1, 0.5]),
    runs,
    gapBetweenRunsMs: pick(r, [0, 500, 3_000]),
    deaggregate: pick(r, [undefined, true, false]),
    pacing: makePacing(r),
    retry: makeRetry(r),
    timeoutMs: pick(r, [2_000, 10_000]),
    shardRefreshIntervalMs: pick(r, [0, 1_000, 5_000, 30_000]),
    service: {
      endWithLastPage: r() < 0.5,
      nullIteratorChance: pick(r, [0, 0, 0.5]),
      gapChance: pick(r, [0, 0.05]),
      shortPageChance: pick(r, [0, 0.3]),
      listPageSize: pick(r, [1, 2, 3, 1000]),
    },
    faults: makeFaults(r),
    byArn: r() < 0.3,
    pauseChance: pick(r, [0, 0.05, 0.2]),
    pauseMs: pick(r, [200, 2_000, 8_000]),
  };
}

interface StreamReport {
  records: number;
  expected: number;
  yields: number;
  runs: number;
  shards: number;
  calls: number;
  steps: number;
  fakeSeconds: number;
  ms: number;
}

const describeCase = (config: object): string => JSON.stringify(config, (_key, value: unknown) => (value === Infinity ? 'Infinity' : value));

/** A localStorage stand-in with key() and length, so that the store can list() what it holds. */
function mapStorage() {
  const map = new Map<string, string>();
  return {
    getItem: (key: string) => map.get(key) ?? null,
    setItem: (key: string, value: string) => void map.set(key, value),
    get length() {
      return map.size;
    },
    key: (index: number) => [...map.keys()][index] ?? null,
  };
}

async function runStreamCase(config: StreamCase): Promise<{ violations: string[]; report: StreamReport }> {
  const began = performance.now();
  // Before the clients exist: they take Date.now as their clock when created.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: START_MS });
  const violations: string[] = [];
  const violate = (message: string): void => {
    if (violations.length < 30) violations.push(`t=${Date.now() - START_MS} ms: ${message}`);
  };
  const world = createWorld(config.world, seededRandom(config.seed * 7919 + 1));
  const { trace, note } = createTrace();
  const service = createService(world, { ...config.service, seed: config.seed, faults: config.faults, timeoutMs: config.timeoutMs, byArn: config.byArn }, violate, note);
  const consumerRandom = seededRandom(config.seed * 104_729 + 7);
  const deaggregate = config.deaggregate ?? true;

  // The world ticks on its own timer until worldEnd.
  let worldTimer: ReturnType<typeof setTimeout> | undefined;
  const worldEnd = START_MS + config.prehistoryMs + config.worldMs;
  const tick = () => {
    world.tick();
    worldTimer = Date.now() + config.tickMs <= worldEnd ? setTimeout(tick, config.tickMs) : undefined;
  };
  worldTimer = setTimeout(tick, config.tickMs);
  await vi.advanceTimersByTimeAsync(config.prehistoryMs);
  const firstRunAt = Date.now();
  const timestamp = firstRunAt - config.timestampBackMs;
  const from: StreamStartPosition =
    config.from === 'AT_TIMESTAMP' ? { type: 'AT_TIMESTAMP', timestamp: new Date(timestamp) } : { type: config.from };

  // ---- the checkpoint store, watched ---------------------------------------------------------------
  const memory = createMemoryCheckpointStore();
  const storageStore = createStorageCheckpointStore(mapStorage(), { prefix: 'inv:' });
  const inner: CheckpointStore = config.store === 'storage' ? storageStore : memory;
  /** What the store holds now (both list synchronously). */
  const held = (): Map<string, Checkpoint> => (config.store === 'storage' ? (storageStore.list!() as Map<string, Checkpoint>) : memory.list());
  let storeTimers = 0;
  const later = <T>(value: () => T): Promise<T> | T => {
    if (config.store !== 'async') return value();
    storeTimers++;
    return new Promise<T>((resolve) =>
      setTimeout(() => {
        storeTimers--;
        resolve(value());
      }, randomInt(consumerRandom, 0, 30)),
    );
  };

  let session!: Session;
  let userSetting = false;
  /** Keys of expected records whose processing finished (the consumer asked for the next one). */
  const processed = new Set<string>();
  /** Per shard, in this run: the last position the consumer finished with. */
  let processedUpTo = new Map<string, Position>();
  /** Per shard, in this run: the last record yielded. */
  let lastYielded = new Map<string, Expected>();
  let yieldedInRun = new Set<string>();
  let shardsInRun = new Set<string>();
  let keyOrderInRun = new Map<string, Position & { order: number }>();
  let snapshot = new Map<string, Checkpoint>();
  const everYielded = new Map<string, number>();
  let yields = 0;

  const lastRequired = (shard: ModelShard): Expected | undefined => {
    for (let i = shard.records.length - 1; i >= 0; i--) {
      const list = world.expected(shard.records[i]!, deaggregate).filter((e) => isRequired(e));
      if (list.length > 0) return list.at(-1);
    }
    return undefined;
  };

  const checkSet = (shardId: string, sequenceNumber: string, sub: number | undefined): void => {
    const shard = world.shards.get(shardId);
    const current = held().get(shardId);
    if (!shard) {
      violate(`checkpoint for an unknown shard ${shardId}`);
      return;
    }
    if (sequenceNumber === SHARD_END) {
      if (userSetting) return;
      if (shard.endingSeq === undefined) violate(`SHARD_END stored for ${shardId}, which is open`);
      const unprocessed = shard.records.flatMap((r) => world.expected(r, deaggregate)).filter((e) => isRequired(e) && !processed.has(e.key));
      if (unprocessed.length > 0) violate(`SHARD_END stored for ${shardId} with ${unprocessed.length} records not processed, first ${unprocessed[0]!.key}`);
      const last = lastRequired(shard);
      if (last !== undefined && (current === undefined || current.sequenceNumber !== last.record.sequenceNumber || current.subSequenceNumber !== last.sub)) {
        violate(`SHARD_END stored for ${shardId} while it held ${current ? showPosition(current) : 'nothing'}, not its last record ${showPosition({ seq: last.record.seq, sub: last.sub })}`);
      }
      return;
    }
    const position: Position = { seq: BigInt(sequenceNumber), sub };
    if (current?.sequenceNumber === SHARD_END) violate(`${shardId}: position ${showPosition(position)} stored after SHARD_END`);
    else if (current !== undefined && atOrBefore(position, current) && !(current.sequenceNumber === sequenceNumber && current.subSequenceNumber === sub)) {
      violate(`${shardId}: checkpoint moved back from ${showPosition(current)} to ${showPosition(position)}`);
    }
    if (userSetting) return;
    if (config.checkpointing === 'manual') violate(`manual mode: the reader stored ${shardId} ${showPosition(position)}`);
    // 'batch' stores the end of a GetRecords batch: the last (user) record of a page.
    const stored = world.bySeq.get(sequenceNumber);
    const lastOfRecord = stored ? world.expected(stored, deaggregate).at(-1)!.sub : undefined;
    if (!session.pageEnds.has(sequenceNumber) || sub !== lastOfRecord) violate(`${shardId}: stored ${showPosition(position)}, not the end of a GetRecords batch`);
    const done = processedUpTo.get(shardId);
    if (done === undefined || comparePositions(position, done) > 0) {
      violate(`${shardId}: stored ${showPosition(position)} before the consumer finished with it (finished: ${done ? showPosition(done) : 'nothing'})`);
    }
  };

  const store: CheckpointStore | undefined =
    config.store === 'none'
      ? undefined
      : {
          get: (shardId) => later(() => inner.get(shardId) as Checkpoint | undefined),
          set: (shardId, sequenceNumber, sub) => {
            checkSet(shardId, sequenceNumber, sub);
            return later(() => void inner.set(shardId, sequenceNumber, sub));
          },
        };

  // ---- what is in range --------------------------------------------------------------------------
  /** LATEST: whether the reader skips a shard (closed in the first listing, no parent read). */
  const skippedMemo = new Map<string, boolean>();
  const isSkipped = (shardId: string): boolean => {
    if (config.from !== 'LATEST') return false;
    const memo = skippedMemo.get(shardId);
    if (memo !== undefined) return memo;
    const shard = world.shards.get(shardId)!;
    const value = session.firstListing.get(shardId) === true && !shard.parents.some((p) => !isSkipped(p));
    if (session.listingComplete) skippedMemo.set(shardId, value);
    return value;
  };
  /** Why an expected record is in range; undefined when it is not. */
  const isRequired = (e: Expected): boolean => {
    if (config.from === 'TRIM_HORIZON') return true;
    if (config.from === 'AT_TIMESTAMP') return e.record.arrival >= timestamp;
    const shard = world.shards.get(e.record.shardId)!;
    if (isSkipped(shard.id)) return false;
    if (!session.firstListing.has(shard.id) || shard.parents.some((p) => !isSkipped(p))) return true;
    const latest = session.latest.get(shard.id);
    return latest !== undefined && e.record.index >= latest.index;
  };
  /** Out of range, but documented to come: a renewed LATEST iterator starts up to 5 s before it. */
  const isAllowedExtra = (e: Expected): boolean => {
    if (config.from !== 'LATEST') return false;
    const latest = session.latest.get(e.record.shardId);
    return latest !== undefined && (session.timestampIterators.get(e.record.shardId) ?? 0) > 0 && e.record.arrival >= latest.at - LATEST_RENEWAL_MARGIN_MS - 1;
  };

  // ---- each record as it is yielded ---------------------------------------------------------------
  const onYield = (record: ConsumerRecord): Expected | undefined => {
    yields++;
    const stored = world.bySeq.get(record.sequenceNumber);
    if (!stored || stored.shardId !== record.shardId) {
      violate(`yielded ${record.shardId} ${record.sequenceNumber}, which that shard does not hold`);
      return undefined;
    }
    const expected = world.expected(stored, deaggregate).find((e) => e.sub === record.subSequenceNumber);
    if (!expected) {
      violate(`yielded ${record.shardId} ${record.sequenceNumber} with subsequence ${String(record.subSequenceNumber)}, expected ${world.expected(stored, deaggregate).map((e) => String(e.sub)).join(',')}`);
      return undefined;
    }
    const where = `${record.shardId} ${showPosition({ seq: stored.seq, sub: expected.sub })}`;
    if (record.partitionKey !== expected.partitionKey) violate(`${where}: partition key ${record.partitionKey}, stored ${expected.partitionKey}`);
    if (!sameBytes(record.data, expected.data)) violate(`${where}: data differs from what was stored`);
    if (record.arrivalTime.getTime() !== stored.arrival) violate(`${where}: arrival ${record.arrivalTime.toISOString()}, stored ${new Date(stored.arrival).toISOString()}`);
    if (record.explicitHashKey !== undefined) violate(`${where}: an explicit hash key nobody set`);
    if (!isRequired(expected) && !isAllowedExtra(expected)) violate(`${where}: out of the requested range (${config.from})`);
    if (yieldedInRun.has(expected.key)) violate(`${where}: yielded twice in run ${session.id}`);
    yieldedInRun.add(expected.key);
    everYielded.set(expected.key, (everYielded.get(expected.key) ?? 0) + 1);
    const position: Position = { seq: stored.seq, sub: expected.sub };
    const checkpoint = snapshot.get(stored.shardId);
    if (checkpoint?.sequenceNumber === SHARD_END) violate(`${where}: its shard held SHARD_END when run ${session.id} started`);
    else if (checkpoint !== undefined && atOrBefore(position, checkpoint)) violate(`${where}: at or before the checkpoint ${showPosition(checkpoint)} run ${session.id} resumed from`);
    const last = lastYielded.get(stored.shardId);
    if (last !== undefined && comparePositions(position, { seq: last.record.seq, sub: last.sub }) <= 0) {
      violate(`${where}: after ${showPosition({ seq: last.record.seq, sub: last.sub })} of the same shard`);
    }
    lastYielded.set(stored.shardId, expected);
    session.lastYieldedIndex.set(stored.shardId, stored.index);
    note(`run ${session.id} yields ${stored.shardId} #${stored.index}${expected.sub === undefined ? '' : `/${expected.sub}`}`);
    if (!shardsInRun.has(stored.shardId)) {
      shardsInRun.add(stored.shardId);
      for (const ancestor of world.ancestors(stored.shardId)) {
        const missing = world.shards.get(ancestor)!.records.flatMap((r) => world.expected(r, deaggregate)).find((e) => isRequired(e) && !everYielded.has(e.key));
        if (missing) violate(`${where}: first record of its shard, yet ancestor ${ancestor}'s ${showPosition({ seq: missing.record.seq, sub: missing.sub })} was never yielded`);
      }
    }
    for (const descendant of world.descendants(stored.shardId)) {
      if (shardsInRun.has(descendant)) violate(`${where}: after a record of its descendant ${descendant} in run ${session.id}`);
    }
    const previousOfKey = keyOrderInRun.get(expected.partitionKey);
    const ordered = { order: stored.order, seq: stored.seq, sub: expected.sub };
    if (previousOfKey !== undefined && (stored.order < previousOfKey.order || (stored.order === previousOfKey.order && (expected.sub ?? -1) <= (previousOfKey.sub ?? -1)))) {
      violate(`${where}: key ${expected.partitionKey}'s record put ${stored.order} after its record put ${previousOfKey.order}`);
    }
    keyOrderInRun.set(expected.partitionKey, ordered);
    return expected;
  };

  const missingRequired = (): Expected[] => {
    const out: Expected[] = [];
    for (const record of world.records) for (const e of world.expected(record, deaggregate)) if (isRequired(e) && !everYielded.has(e.key)) out.push(e);
    return out;
  };

  // ---- the runs ----------------------------------------------------------------------------------
  let steps = 0;
  let consumerTimers = 0;
  let alarms = 0;
  const ownTimers = () => (worldTimer !== undefined ? 1 : 0) + consumerTimers + alarms + storeTimers;
  const alarm = (at: number) => {
    alarms++;
    setTimeout(() => alarms--, Math.max(0, at - Date.now()));
  };
  const consumerSleep = (ms: number) => {
    consumerTimers++;
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        consumerTimers--;
        resolve();
      }, ms),
    );
  };
  /** When the reader's promise settles: nothing of it may be left. */
  const leftovers = (what: string) => {
    const timers = vi.getTimerCount() - ownTimers();
    if (timers !== 0) violate(`${what}: ${timers} timers left when it settled`);
    if (service.openRequests !== 0) violate(`${what}: ${service.openRequests} requests left when it settled`);
  };

  const runs: RunEnd[] = [...config.runs, { kind: 'abort-pending', afterMs: Infinity }];
  for (let runIndex = 0; runIndex < runs.length; runIndex++) {
    const plan = runs[runIndex]!;
    const isLast = runIndex === runs.length - 1;
    session = service.newSession(runIndex, config.pacing.limit);
    snapshot = config.store === 'none' ? new Map() : new Map(held());
    // The memory bound counts from the checkpointed record: resumed inside an aggregate, a first page
    // may hold only user records already processed, and the reader fetches again.
    for (const [shardId, checkpoint] of snapshot) {
      const record = world.bySeq.get(checkpoint.sequenceNumber);
      if (record) session.lastYieldedIndex.set(shardId, record.index);
    }
    processedUpTo = new Map();
    lastYielded = new Map();
    yieldedInRun = new Set();
    shardsInRun = new Set();
    keyOrderInRun = new Map();
    const runStart = Date.now();
    note(`run ${runIndex} starts; store ${JSON.stringify([...snapshot])}; shards [id, parents, closed, records] ${JSON.stringify([...world.shards.values()].map((x) => [x.id, x.parents, x.endingSeq !== undefined, x.records.length]))}`);
    const controller = new AbortController();
    const reason = new Error(`run ${runIndex} aborted by the test`);
    const client = makeClient(session, service, config.retry, config.timeoutMs, config.seed * 31 + runIndex);
    const options: ReadStreamOptions = {
      ...(config.byArn ? { streamARN: STREAM_ARN } : { streamName: STREAM_NAME }),
      from,
      signal: controller.signal,
      ...(store ? { checkpoints: store, checkpointing: config.checkpointing } : {}),
      ...(config.deaggregate === undefined ? {} : { deaggregate: config.deaggregate }),
      shardRefreshIntervalMs: config.shardRefreshIntervalMs,
      ...config.pacing,
      random: seededRandom(config.seed * 17 + runIndex),
    };
    const consumer = { pending: false, done: false, count: 0 };
    let pauses = 0;
    if (plan.kind === 'abort-pending' && Number.isFinite(plan.afterMs)) alarm(runStart + plan.afterMs);

    const finished = (async () => {
      const iterator = readStream(client, options);
      let previous: Expected | undefined;
      const expectAbortRejection = async (pending: Promise<IteratorResult<ConsumerRecord>>) => {
        let outcome: unknown;
        await pending.then(
          (step) => {
            leftovers(`run ${runIndex}: next() after abort`);
            outcome = step;
          },
          (error: unknown) => {
            leftovers(`run ${runIndex}: next() after abort`);
            outcome = error;
          },
        );
        if (outcome !== reason) violate(`run ${runIndex}: after abort, next() settled with ${outcome instanceof Error ? outcome.message : JSON.stringify(outcome)}, not the abort reason`);
        const after = await iterator.next().catch((error: unknown) => error);
        if (!(typeof after === 'object' && after !== null && 'done' in after && after.done === true)) violate(`run ${runIndex}: the next() after the abort gave ${String(after)}`);
      };
      for (;;) {
        // Asking for the next record: the previous one is processed.
        if (previous) {
          processed.add(previous.key);
          processedUpTo.set(previous.record.shardId, { seq: previous.record.seq, sub: previous.sub });
        }
        consumer.pending = true;
        const pending = iterator.next();
        let step: IteratorResult<ConsumerRecord>;
        try {
          step = await pending;
        } catch (error) {
          consumer.pending = false;
          if (controller.signal.aborted && error === reason) {
            leftovers(`run ${runIndex}: next() after abort`);
            const after = await iterator.next().catch((e: unknown) => e);
            if (!(typeof after === 'object' && after !== null && 'done' in after && after.done === true)) violate(`run ${runIndex}: the next() after the abort gave ${String(after)}`);
          } else {
            violate(`run ${runIndex}: readStream threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
          }
          return;
        }
        consumer.pending = false;
        if (step.done) {
          violate(`run ${runIndex}: readStream ended while the stream has open shards`);
          return;
        }
        const record = step.value;
        consumer.count++;
        previous = onYield(record);
        if (store && config.checkpointing === 'manual' && consumerRandom() < config.manualChance) {
          userSetting = true;
          const done = checkpointRecord(store, record);
          userSetting = false;
          // The caller's checkpoint says it is processed, even if this run ends before the next ask.
          if (previous) processed.add(previous.key);
          await done;
        }
        // A few pauses per run (a consumer that pauses all the time never catches up with the world).
        if (pauses < MAX_PAUSES && consumerRandom() < config.pauseChance) {
          pauses++;
          session.pause = new Map();
          await consumerSleep(randomInt(consumerRandom, 1, config.pauseMs));
          for (const [shardId, answers] of session.pause) {
            // Resumed inside an aggregate, a first page may hold only user records already processed.
            const bound = snapshot.get(shardId)?.subSequenceNumber === undefined ? 1 : 2;
            if (answers > bound) violate(`memory: ${answers} GetRecords answers with records for ${shardId} while the consumer paused`);
          }
          session.pause = undefined;
        }
        if (plan.kind === 'break' && consumer.count >= plan.after) {
          const result = await iterator.return(undefined).then(
            (value) => {
              leftovers(`run ${runIndex}: return()`);
              return value;
            },
            (error: unknown) => error,
          );
          if (!(typeof result === 'object' && result !== null && 'done' in result && result.done === true)) violate(`run ${runIndex}: return() gave ${String(result)}`);
          return;
        }
        if (plan.kind === 'abort-processing' && consumer.count >= plan.after) {
          controller.abort(reason);
          await expectAbortRejection(iterator.next());
          return;
        }
      }
    })().finally(() => {
      consumer.done = true;
    });
    finished.catch((error: unknown) => violate(`run ${runIndex}: the consumer threw ${String(error)}`));

    let drainUntil: number | undefined;
    let lastYields = -1;
    for (;;) {
      await quiesce(violate);
      if (consumer.done) break;
      const now = Date.now();
      if (!controller.signal.aborted && consumer.pending) {
        // Aborted here: let the reader settle (quiesce) before looking at what is left.
        if ((plan.kind === 'abort-pending' && now >= runStart + plan.afterMs) || (drainUntil !== undefined && now >= drainUntil)) {
          controller.abort(reason);
          continue;
        }
      }
      // Every run ends once everything in range was yielded, the world stopped and DRAIN_MS passed
      // (a run planned to end after more records than come ends so too).
      if (drainUntil === undefined && worldTimer === undefined && yields !== lastYields) {
        lastYields = yields;
        if (missingRequired().length === 0) {
          drainUntil = now + DRAIN_MS;
          alarm(drainUntil);
        }
      }
      if (now - runStart > MAX_RUN_MS && !controller.signal.aborted) {
        const missing = missingRequired();
        violate(`run ${runIndex} stalled: ${missing.length} records in range never yielded, first ${missing.slice(0, 3).map((e) => `${e.record.shardId} ${e.key}`).join(', ')}`);
        controller.abort(reason);
        continue;
      }
      if (vi.getTimerCount() === 0) {
        violate(`run ${runIndex}: nothing left to happen (no timer) while the consumer waits`);
        controller.abort(reason);
        await quiesce(violate);
        break;
      }
      if (++steps > MAX_STEPS) {
        violate(`more than ${MAX_STEPS} timer firings`);
        controller.abort(reason);
        break;
      }
      await vi.advanceTimersToNextTimerAsync();
    }
    await finished.catch(() => undefined);
    session.ended = true;
    violations.push(...pacingViolations(session, config.pacing, config.retry).slice(0, 3));
    // Between runs the world goes on; a request of the old run would show up now.
    const gapEnd = Date.now() + config.gapBetweenRunsMs;
    if (!isLast && config.gapBetweenRunsMs > 0) alarm(gapEnd);
    while (!isLast && Date.now() < gapEnd && vi.getTimerCount() > 0) {
      await quiesce(violate);
      await vi.advanceTimersToNextTimerAsync();
    }
  }

  // ---- after the last run ------------------------------------------------------------------------
  const missing = missingRequired();
  if (missing.length > 0) {
    violate(`${missing.length} records in range never yielded, first ${missing.slice(0, 3).map((e) => `${e.record.shardId} ${e.key}`).join(', ')}`);
  }
  // Every closed shard that was read to its end holds SHARD_END (in manual mode when the caller
  // checkpointed every record).
  if (config.store !== 'none' && (config.checkpointing === 'batch' || config.manualChance === 1)) {
    const stored = held();
    for (const shard of world.shards.values()) {
      if (shard.endingSeq === undefined || isSkipped(shard.id)) continue;
      if (stored.get(shard.id)?.sequenceNumber !== SHARD_END) violate(`closed shard ${shard.id} holds ${stored.get(shard.id) ? showPosition(stored.get(shard.id)!) : 'nothing'}, not SHARD_END`);
    }
  }
  if (config.from === 'LATEST') {
    for (const [shardId, closed] of session.firstListing) {
      const shard = world.shards.get(shardId)!;
      if (!closed && !shard.parents.some((p) => !isSkipped(p)) && !session.latest.has(shardId)) violate(`${shardId}, open at the start, never got a LATEST iterator`);
    }
  }
  const expectedCount = world.records.reduce((sum, record) => sum + world.expected(record, deaggregate).filter((e) => isRequired(e)).length, 0);
  if (TRACE && violations.length > 0) console.log(`stream seed ${config.seed} trace:\n${trace.join('\n')}`);
  const fakeSeconds = (Date.now() - START_MS) / 1000;
  if (worldTimer !== undefined) clearTimeout(worldTimer);
  vi.useRealTimers();
  return {
    violations,
    report: { records: world.records.length, expected: expectedCount, yields, runs: runs.length, shards: world.shards.size, calls: service.calls, steps, fakeSeconds, ms: Math.round(performance.now() - began) },
  };
}

// ---- readShard cases -----------------------------------------------------------------------------

interface ShardCase {
  seed: number;
  api: 'batches' | 'records';
  from: 'TRIM_HORIZON' | 'LATEST' | 'AT_SEQUENCE_NUMBER' | 'AFTER_SEQUENCE_NUMBER' | 'AFTER_SUBSEQUENCE' | 'AT_TIMESTAMP';
  world: WorldConfig;
  tickMs: number;
  prehistoryMs: number;
  /** The read shard is split or merged with its neighbour this long after the reader starts. */
  closeAfterMs: number;
  reshard: 'split' | 'merge';
  /** How the reader stops: at the shard's end, by abort (after that many yields), or by break. */
  ending: 'end' | 'abort' | 'break';
  endAfter: number;
  deaggregate: boolean | undefined;
  pacing: Pacing;
  retry: ClientRetry;
  timeoutMs: number;
  service: Omit<ServiceConfig, 'seed' | 'timeoutMs' | 'byArn' | 'faults'>;
  faults: Faults;
  byArn: boolean;
  holdChance: number;
  holdMs: number;
}

function makeShardCase(seed: number): ShardCase {
  const r = seededRandom(seed + 500_000);
  const aggregates = r() < 0.5;
  return {
    seed,
    api: r() < 0.5 ? 'batches' : 'records',
    from: pick(r, ['TRIM_HORIZON', 'LATEST', 'AT_SEQUENCE_NUMBER', 'AFTER_SEQUENCE_NUMBER', 'AFTER_SUBSEQUENCE', 'AT_TIMESTAMP'] as const),
    world: {
      shards: 2,
      maxOpen: 2,
      keys: 24,
      perTick: pick(r, [1, 4, 10]),
      reshardChance: 0,
      aggregateShare: aggregates ? pick(r, [0.3, 0.8]) : 0,
      corruptShare: aggregates ? pick(r, [0, 0.2]) : 0,
      maxUsers: pick(r, [2, 6]),
    },
    tickMs: pick(r, [100, 300]),
    prehistoryMs: pick(r, [1_000, 4_000]),
    closeAfterMs: pick(r, [0, 2_000, 8_000]),
    reshard: r() < 0.5 ? 'split' : 'merge',
    ending: pick(r, ['end', 'end', 'abort', 'break'] as const),
    endAfter: randomInt(r, 1, 30),
    deaggregate: pick(r, [undefined, true, false]),
    pacing: makePacing(r),
    retry: makeRetry(r),
    timeoutMs: pick(r, [2_000, 10_000]),
    service: {
      endWithLastPage: r() < 0.5,
      nullIteratorChance: pick(r, [0, 0.5]),
      gapChance: pick(r, [0, 0.1]),
      shortPageChance: pick(r, [0, 0.3]),
      listPageSize: 1000,
    },
    faults: makeFaults(r),
    byArn: r() < 0.3,
    holdChance: pick(r, [0, 0.2]),
    holdMs: pick(r, [100, 3_000]),
  };
}

async function runShardCase(config: ShardCase): Promise<{ violations: string[]; report: Record<string, number> }> {
  const began = performance.now();
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: START_MS });
  const violations: string[] = [];
  const violate = (message: string): void => {
    if (violations.length < 30) violations.push(`t=${Date.now() - START_MS} ms: ${message}`);
  };
  const r = seededRandom(config.seed * 7 + 3);
  const world = createWorld(config.world, seededRandom(config.seed * 7919 + 2));
  const { trace, note } = createTrace();
  const service = createService(world, { ...config.service, seed: config.seed, faults: config.faults, timeoutMs: config.timeoutMs, byArn: config.byArn }, violate, note);
  const deaggregate = config.deaggregate ?? true;
  const target = world.shards.get(pick(r, ['shardId-000000000000', 'shardId-000000000001']))!;
  const neighbour = [...world.shards.values()].find((s) => s !== target)!;

  let worldTimer: ReturnType<typeof setTimeout> | undefined;
  const tick = () => {
    world.tick();
    worldTimer = setTimeout(tick, config.tickMs);
  };
  worldTimer = setTimeout(tick, config.tickMs);
  await vi.advanceTimersByTimeAsync(config.prehistoryMs);
  let closeTimer: ReturnType<typeof setTimeout> | undefined = setTimeout(() => {
    closeTimer = undefined;
    if (config.reshard === 'split') world.split(target);
    else world.merge(target, neighbour);
  }, config.closeAfterMs);

  // ---- the start position, and the first record it stands for --------------------------------------
  const existing = target.records;
  let from: StartPosition;
  let startIndex: number | undefined;
  let skipThrough: number | undefined;
  const chosen = existing.length > 0 ? existing[randomInt(r, 0, existing.length - 1)]! : undefined;
  const aggregates = deaggregate ? existing.filter((x) => x.kind === 'aggregate') : [];
  const aggregate = aggregates.length > 0 ? aggregates[randomInt(r, 0, aggregates.length - 1)] : undefined;
  switch (config.from) {
    case 'AT_SEQUENCE_NUMBER':
    case 'AFTER_SEQUENCE_NUMBER':
      if (chosen) {
        from = { type: config.from, sequenceNumber: chosen.sequenceNumber };
        startIndex = config.from === 'AT_SEQUENCE_NUMBER' ? chosen.index : chosen.index + 1;
      } else {
        from = { type: 'TRIM_HORIZON' };
        startIndex = 0;
      }
      break;
    case 'AFTER_SUBSEQUENCE':
      if (aggregate) {
        skipThrough = randomInt(r, 0, aggregate.users.length - 1);
        from = { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: aggregate.sequenceNumber, subSequenceNumber: skipThrough };
        startIndex = aggregate.index;
      } else {
        from = { type: 'TRIM_HORIZON' };
        startIndex = 0;
      }
      break;
    case 'AT_TIMESTAMP': {
      const at = chosen ? chosen.arrival : Date.now();
      from = { type: 'AT_TIMESTAMP', timestamp: new Date(at) };
      const index = existing.findIndex((x) => x.arrival >= at);
      startIndex = index < 0 ? existing.length : index;
      break;
    }
    case 'LATEST':
      from = { type: 'LATEST' };
      break;
    default:
      from = { type: 'TRIM_HORIZON' };
      startIndex = 0;
  }
  const session = service.newSession(0, config.pacing.limit);
  // Resumed inside an aggregate: its user records up to the position count as had (the first page
  // may hold nothing new, and the reader fetches again).
  if (skipThrough !== undefined) session.lastYieldedIndex.set(target.id, startIndex!);
  const expectedFrom = (index: number): Expected[] => {
    const out: Expected[] = [];
    for (const record of target.records.slice(index)) {
      for (const e of world.expected(record, deaggregate)) {
        if (record.index === startIndex && skipThrough !== undefined && e.sub !== undefined && e.sub <= skipThrough) continue;
        out.push(e);
      }
    }
    return out;
  };

  const client = makeClient(session, service, config.retry, config.timeoutMs, config.seed * 31);
  const controller = new AbortController();
  const reason = new Error('aborted by the test');
  const options: ReadShardOptions = {
    ...(config.byArn ? { streamARN: STREAM_ARN } : { streamName: STREAM_NAME }),
    shardId: target.id,
    from,
    signal: controller.signal,
    ...(config.deaggregate === undefined ? {} : { deaggregate: config.deaggregate }),
    ...config.pacing,
    random: seededRandom(config.seed * 13),
  };

  let holdTimers = 0;
  const hold = (ms: number) => {
    holdTimers++;
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        holdTimers--;
        resolve();
      }, ms),
    );
  };
  const ownTimers = () => (worldTimer !== undefined ? 1 : 0) + (closeTimer !== undefined ? 1 : 0) + holdTimers;
  const leftovers = (what: string) => {
    const timers = vi.getTimerCount() - ownTimers();
    if (timers !== 0) violate(`${what}: ${timers} timers left when it settled`);
    if (service.openRequests !== 0) violate(`${what}: ${service.openRequests} requests left when it settled`);
  };

  const yielded: Expected[] = [];
  let ended: ShardEnd | undefined;
  let endBatch: ShardBatch | undefined;
  const onRecord = (record: ConsumerRecord) => {
    const i = yielded.length;
    if (i === 0 && startIndex === undefined) {
      // LATEST: from the LATEST iterator, or, renewed before any delivery, up to 5 s before it.
      const latest = session.latest.get(target.id);
      const first = world.bySeq.get(record.sequenceNumber);
      if (latest === undefined || first === undefined) {
        violate(`first record ${record.sequenceNumber} before any LATEST iterator`);
        startIndex = 0;
      } else {
        startIndex = Math.min(first.index, latest.index);
        const early = target.records.slice(startIndex, latest.index);
        if (early.length > 0 && !((session.timestampIterators.get(target.id) ?? 0) > 0 && early.every((x) => x.arrival >= latest.at - LATEST_RENEWAL_MARGIN_MS - 1))) {
          violate(`LATEST: yielded from index ${startIndex}, the LATEST iterator was at ${latest.index} (renewed: ${session.timestampIterators.get(target.id) ?? 0})`);
        }
      }
    }
    const want = expectedFrom(startIndex!)[i];
    const stored = world.bySeq.get(record.sequenceNumber);
    const got = stored ? world.expected(stored, deaggregate).find((e) => e.sub === record.subSequenceNumber) : undefined;
    if (record.shardId !== target.id) violate(`record of ${record.shardId} from a reader of ${target.id}`);
    if (want === undefined || got === undefined || got.key !== want.key) {
      violate(`record #${i}: ${record.sequenceNumber}/${String(record.subSequenceNumber)}, expected ${want ? showPosition({ seq: want.record.seq, sub: want.sub }) : 'none'}`);
    } else {
      if (record.partitionKey !== want.partitionKey || !sameBytes(record.data, want.data) || record.arrivalTime.getTime() !== want.record.arrival) {
        violate(`record #${i} ${want.key}: key, data or arrival time differ from what was stored`);
      }
      session.lastYieldedIndex.set(target.id, want.record.index);
    }
    if (got) yielded.push(got);
    else yielded.push(want ?? ({ key: '?' } as Expected));
  };
  const expectChildren = (childShards: readonly { ShardId: string; ParentShards: string[]; HashKeyRange: { StartingHashKey: string; EndingHashKey: string } }[] | undefined, what: string) => {
    const want = session.nullIterators.has(target.id)
      ? []
      : target.children.map((id) => {
          const child = world.shards.get(id)!;
          return { ShardId: child.id, ParentShards: child.parents, HashKeyRange: { StartingHashKey: String(child.start), EndingHashKey: String(child.end) } };
        });
    if (JSON.stringify(childShards) !== JSON.stringify(want)) violate(`${what}: child shards ${JSON.stringify(childShards)}, expected ${JSON.stringify(want)}`);
  };

  const state = { done: false, pending: false };
  const finished = (async () => {
    const stop = async <T>(iterator: AsyncGenerator<T, ShardEnd, undefined>): Promise<boolean> => {
      if (config.ending === 'end' || yielded.length < config.endAfter) return false;
      if (config.ending === 'break') {
        const result = await iterator.return({ childShards: [] }).then((value) => {
          leftovers('return()');
          return value;
        });
        if (result.done !== true) violate(`return() gave ${JSON.stringify(result)}`);
        return true;
      }
      controller.abort(reason);
      const outcome = await iterator.next().then(
        (value) => {
          leftovers('next() after abort');
          return value;
        },
        (error: unknown) => {
          leftovers('next() after abort');
          return error;
        },
      );
      if (outcome !== reason) violate(`after abort, next() settled with ${String(outcome)}`);
      return true;
    };
    const held = async () => {
      if (r() >= config.holdChance) return;
      const before = session.calls;
      await hold(randomInt(r, 1, config.holdMs));
      if (session.calls !== before) violate(`${session.calls - before} requests while the caller held what it was given`);
    };
    if (config.api === 'batches') {
      const iterator = readShardBatches(client, options);
      for (let index = 0; ; index++) {
        state.pending = true;
        const step = await iterator.next();
        state.pending = false;
        if (step.done) {
          ended = step.value;
          leftovers('the end');
          break;
        }
        const batch = step.value;
        if (endBatch) violate(`batch #${index} after the batch with isShardEnd`);
        if (batch.shardId !== target.id) violate(`batch #${index} of ${batch.shardId}`);
        if (batch.records.length === 0 && !batch.isShardEnd) violate(`batch #${index}: empty, not the end`);
        const kinesisRecords = new Set(batch.records.map((x) => x.sequenceNumber)).size;
        if (kinesisRecords > config.pacing.limit) violate(`batch #${index}: ${kinesisRecords} Kinesis records, Limit ${config.pacing.limit}`);
        // Nothing is fetched while a batch is held, so the shard's last answer is this batch's.
        if (batch.millisBehindLatest !== session.millisBehind.get(target.id) && !session.nullIterators.has(target.id)) {
          violate(`batch #${index}: millisBehindLatest ${batch.millisBehindLatest}, the answer said ${session.millisBehind.get(target.id)}`);
        }
        if (batch.isShardEnd) {
          endBatch = batch;
          expectChildren(batch.childShards, `batch #${index}`);
        } else if (batch.childShards !== undefined) violate(`batch #${index}: childShards before the end`);
        for (const record of batch.records) onRecord(record);
        await held();
        if (await stop(iterator)) return;
      }
    } else {
      const iterator = readShard(client, options);
      for (;;) {
        state.pending = true;
        const step = await iterator.next();
        state.pending = false;
        if (step.done) {
          ended = step.value;
          leftovers('the end');
          break;
        }
        onRecord(step.value);
        await held();
        if (await stop(iterator)) return;
      }
    }
    // At the end: the records are exactly those from the start to the shard's end.
    expectChildren(ended.childShards, 'the return value');
    const want = expectedFrom(startIndex ?? session.latest.get(target.id)?.index ?? target.records.length);
    if (yielded.length !== want.length) violate(`${yielded.length} records yielded, ${want.length} from the start position to the end`);
  })()
    .catch((error: unknown) => violate(`the reader threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`))
    .finally(() => {
      state.done = true;
    });

  let steps = 0;
  const startedAt = Date.now();
  for (;;) {
    await quiesce(violate);
    if (state.done) break;
    if (Date.now() - startedAt > MAX_RUN_MS || ++steps > MAX_STEPS) {
      violate(`stalled: ${yielded.length} records yielded`);
      controller.abort(reason);
      await quiesce(violate);
      break;
    }
    await vi.advanceTimersToNextTimerAsync();
  }
  await finished;
  session.ended = true;
  violations.push(...pacingViolations(session, config.pacing, config.retry).slice(0, 3));
  if (TRACE && violations.length > 0) console.log(`shard seed ${config.seed} trace:\n${trace.join('\n')}`);
  if (worldTimer !== undefined) clearTimeout(worldTimer);
  if (closeTimer !== undefined) clearTimeout(closeTimer);
  vi.useRealTimers();
  return { violations, report: { yielded: yielded.length, records: target.records.length, calls: service.calls, steps, ms: Math.round(performance.now() - began) } };
}

// ---- the cases -----------------------------------------------------------------------------------

// CONSUMER_INVARIANTS_SEEDS=first:count runs other seeds (exploration); the default lists are the test.
const [firstSeed, seedCount] = (process.env.CONSUMER_INVARIANTS_SEEDS ?? '').split(':').map(Number);
const explore = firstSeed !== undefined && seedCount !== undefined && Number.isInteger(firstSeed) && Number.isInteger(seedCount);
// The default lists end with seeds that fail when one of the fixes found here is reverted:
// stream 31 (a resumed shard read before an ancestor's tail, manual checkpoints), 23 (a failed
// ListShards when a shard ended), 196 (a resumed AT_TIMESTAMP run read a child of a SHARD_END
// parent from TRIM_HORIZON; the only one of seeds 1-300), shard 1 (readShard after an abort), 337
// (abort after the last batch).
const STREAM_SEEDS = explore ? Array.from({ length: seedCount }, (_, i) => firstSeed + i) : [...Array.from({ length: 16 }, (_, i) => 2_000 + i * 41), 31, 23, 196];
const SHARD_SEEDS = explore ? Array.from({ length: seedCount }, (_, i) => firstSeed + i) : [...Array.from({ length: 16 }, (_, i) => 7_000 + i * 53), 1, 337];

/** Loads the operations' schemas (a dynamic import each, real I/O) before fake time starts. */
async function loadSchemas(): Promise<void> {
  const answers: Record<string, unknown> = {
    ListShards: { Shards: [] },
    GetShardIterator: { ShardIterator: 'x' },
    GetRecords: { Records: [], NextShardIterator: 'x', MillisBehindLatest: 0 },
  };
  const client = createKinesisClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
    fetch: async (_input, init) => okResponse(answers[String(new Headers(init?.headers).get('x-amz-target')).split('.')[1]!]),
  });
  await listShards(client, { StreamName: STREAM_NAME });
  await getShardIterator(client, { StreamName: STREAM_NAME, ShardId: 'shardId-000000000000', ShardIteratorType: 'LATEST' });
  await getRecords(client, { ShardIterator: 'x' });
}

beforeAll(async () => {
  await loadSchemas();
  jobHook.enable();
});

afterAll(() => {
  jobHook.disable();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('readStream invariants (seeded)', () => {
  it.each(STREAM_SEEDS.map((seed) => [seed] as const))('seed %i', async (seed) => {
    const config = makeStreamCase(seed);
    const { violations, report } = await runStreamCase(config);
    if (REPORT) console.log(`stream seed ${seed}: ${describeCase(config)}\n  -> ${JSON.stringify(report)}`);
    expect(violations, `seed ${seed}: ${describeCase(config)}`).toEqual([]);
  });
});

describe('readShard / readShardBatches invariants (seeded)', () => {
  it.each(SHARD_SEEDS.map((seed) => [seed] as const))('seed %i', async (seed) => {
    const config = makeShardCase(seed);
    const { violations, report } = await runShardCase(config);
    if (REPORT) console.log(`shard seed ${seed}: ${describeCase(config)}\n  -> ${JSON.stringify(report)}`);
    expect(violations, `seed ${seed}: ${describeCase(config)}`).toEqual([]);
  });
});

// ---- the smallest cases of what the seeded cases found ---------------------------------------------
// Against the small scripted fake of the other consumer tests, with real timers.

describe('consumer: cases found by the invariants', () => {
  const FAST = { pollIntervalMs: 1, idleDelayMs: 2, maxIdleDelayMs: 10, throttleDelayMs: 5, maxThrottleDelayMs: 20, random: () => 0.5 };
  const shardIdOf = (n: number) => `shardId-${String(n).padStart(12, '0')}`;
  const text = (record: ConsumerRecord) => new TextDecoder().decode(record.data);

  it('readShard: after an abort, next() rejects with the reason instead of giving the rest of the batch', async () => {
    const fake = createFakeKinesis(1);
    for (let i = 0; i < 3; i++) fake.put(shardIdOf(0), 'k', `r${i}`);
    const controller = new AbortController();
    const reason = new Error('stop');
    const iterator = readShard(fake.client(), { streamName: 'test', shardId: shardIdOf(0), from: { type: 'TRIM_HORIZON' }, signal: controller.signal, ...FAST });
    const first = await iterator.next();
    expect(first.done ? undefined : text(first.value)).toBe('r0');
    controller.abort(reason);
    // r1 and r2 came in the same GetRecords batch as r0.
    await expect(iterator.next()).rejects.toBe(reason);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  it('readShardBatches: aborted while the caller holds the last batch, the next call rejects with the reason', async () => {
    const fake = createFakeKinesis(1);
    fake.put(shardIdOf(0), 'k', 'r0');
    fake.split(shardIdOf(0));
    const controller = new AbortController();
    const reason = new Error('stop');
    const iterator = readShardBatches(fake.client(), { streamName: 'test', shardId: shardIdOf(0), from: { type: 'TRIM_HORIZON' }, signal: controller.signal, ...FAST });
    const last = await iterator.next();
    expect(last.done ? undefined : last.value.isShardEnd).toBe(true);
    controller.abort(reason);
    await expect(iterator.next()).rejects.toBe(reason);
  });

  it('readStream: a throttled ListShards when a shard ends is waited out, not thrown', async () => {
    const fake = createFakeKinesis(1);
    const s0 = shardIdOf(0);
    fake.put(s0, 'a', 'a0');
    // After the first listing: a shard it did not see, merged with s0. s0's end names a child with
    // a parent never listed, so the reader lists again, and that listing is throttled once.
    fake.faults = [{ operation: 'ListShards', status: 400, type: 'LimitExceededException', when: () => fake.callsOf('ListShards').length === 2 }];
    const seen: string[] = [];
    for await (const record of readStream(fake.client(), { streamName: 'test', from: { type: 'TRIM_HORIZON' }, shardRefreshIntervalMs: 0, ...FAST })) {
      seen.push(text(record));
      if (seen.length === 1) {
        const late = fake.addShard();
        fake.put(late.id, 'z', 'z0');
        fake.put(fake.merge(s0, late.id).id, 'a', 'a1');
      }
      if (seen.length === 3) break;
    }
    expect(seen).toEqual(['a0', 'z0', 'a1']);
    expect(fake.callsOf('ListShards').length).toBeGreaterThanOrEqual(3);
  });

  // Found by the seeded cases (AT_TIMESTAMP with resumes), and by enhanced-invariants.test.ts at the
  // same time: lineage.ts started a child without checkpoint whose parents held SHARD_END at
  // TRIM_HORIZON whatever `from` was, so a resumed run yielded records older than the timestamp,
  // which the first run never would have (read-stream.ts: "AT_TIMESTAMP: records that arrived at
  // or after the time").
  it('readStream from AT_TIMESTAMP: after a resume, a child of a shard finished in an earlier run starts at the timestamp', async () => {
    // s0 closed (split) before the timestamp; its child s1 has k1 from before the timestamp and k2
    // from after it. The first run reads s0 (nothing in range: SHARD_END) and yields k2, then stops
    // before k2 is checkpointed. The second run must not yield k1, which the first never would have.
    const fake = createFakeKinesis(1);
    const s0 = shardIdOf(0);
    const now = Date.now();
    fake.put(s0, 'k', 'k0', now - 60_000);
    const [s1] = fake.split(s0);
    fake.put(s1.id, 'k', 'k1', now - 40_000);
    fake.put(s1.id, 'k', 'k2', now);
    const checkpoints = createMemoryCheckpointStore();
    const options = { streamName: 'test', from: { type: 'AT_TIMESTAMP', timestamp: new Date(now - 10_000) }, shardRefreshIntervalMs: 0, checkpoints, ...FAST } as const;
    const read = async () => {
      for await (const record of readStream(fake.client(), options)) return text(record);
      return undefined;
    };
    expect(await read()).toBe('k2');
    expect(checkpoints.list()).toEqual(new Map([[s0, { sequenceNumber: SHARD_END }]]));
    expect(await read()).toBe('k2');
  });

  it('readStream, manual checkpoints: a resumed shard whose parents hold SHARD_END waits for an older ancestor not yet finished', async () => {
    // s0 (a0, a1) split into s1 and s2, merged again into s3 (a2). The caller checkpoints every
    // record but a1, s0's last: s0 gets no SHARD_END, its empty children s1 and s2 do, and s3
    // holds a2. A resumed reader must read s0's tail (a1) before s3 (a3), which comes after a1 in
    // per-key order, though s3's own parents are finished.
    const fake = createFakeKinesis(1);
    const s0 = shardIdOf(0);
    fake.put(s0, 'a', 'a0');
    fake.put(s0, 'a', 'a1');
    const [s1, s2] = fake.split(s0);
    const s3 = fake.merge(s1.id, s2.id);
    fake.put(s3.id, 'a', 'a2');
    const checkpoints = createMemoryCheckpointStore();
    const options = { streamName: 'test', from: { type: 'TRIM_HORIZON' }, shardRefreshIntervalMs: 0, checkpoints, checkpointing: 'manual', ...FAST } as const;
    const first: string[] = [];
    for await (const record of readStream(fake.client(), options)) {
      first.push(text(record));
      if (text(record) !== 'a1') await checkpointRecord(checkpoints, record);
      if (first.length === 3) break;
    }
    expect(first).toEqual(['a0', 'a1', 'a2']);
    expect(checkpoints.get(s0)?.sequenceNumber).not.toBe(SHARD_END);
    expect([checkpoints.get(s1.id), checkpoints.get(s2.id)]).toEqual([{ sequenceNumber: SHARD_END }, { sequenceNumber: SHARD_END }]);

    fake.put(s3.id, 'a', 'a3');
    fake.calls.length = 0;
    const second: string[] = [];
    for await (const record of readStream(fake.client(), options)) {
      second.push(text(record));
      if (second.length === 2) break;
    }
    expect(second).toEqual(['a1', 'a3']);
    // s3 is opened only after s0's last GetRecords (the one without NextShardIterator).
    const opened = fake.calls.findIndex((c) => c.operation === 'GetShardIterator' && c.body.ShardId === s3.id);
    const s0Ended = fake.calls.findIndex((c) => c.operation === 'GetRecords' && JSON.parse(Buffer.from(c.body.ShardIterator, 'base64').toString())[0] === s0);
    expect(opened).toBeGreaterThan(s0Ended);
  });
});

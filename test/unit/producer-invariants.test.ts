// Seeded randomized invariants of the producer across mixed configurations: 1-4 shards, aggregation
// on/off, per-key ordering on/off, whenFull 'reject' / 'wait', small record and byte buffers,
// varied lingerMs / maxInFlight / batch limits / time to live / attempt limits / backoffs / client
// retries, shard prediction on/off with ListShards quick, slow, refused or failing once. The fake
// Kinesis decides per call (seeded by the request's body, so the order in which concurrent
// requests arrive does not change the faults): entries throttled, InternalFailure or refused for
// good (KMSAccessDeniedException); whole requests throttled (400) or failed (500); stored but
// answered 500, with a dropped connection or with a Records count that does not match (unknown
// outcomes); answers held for a while (requests overlap); a per-shard records-per-second limit;
// an outage in which every call fails. Records come through put() and send(), in bursts or after
// waitForCapacity(), as strings or bytes (overwritten by the caller right after the call), with
// hot, spread, multi-byte, random and explicit-hash keys, some too large or invalid; hooks that
// throw; flush() in the middle, close() at the end. A third of the cases are the storm of 8ceb4e3
// (see stormCase()). Every case checks:
//
// - every record settles exactly once: each put() promise settles (stored xor failed), onFailure
//   is called once per failed record (the same error a put() rejects with), never for a stored
//   one; stats stored + failed = every record, per reason as counted here, accepted = every record
//   but the refused; buffer-full only with whenFull 'reject'; refused records are never sent;
// - a record reported stored is in the fake's stored entries with that sequence number (and
//   subsequence number when aggregated) on its hash key's shard, with its key and data as put; a
//   record is stored twice only if a request of it had an unknown outcome; an aggregate holds only
//   records of its shard; a record is never in two requests at once;
// - failures: expired only with a finite time to live, retries-exhausted only with maxAttempts
//   (after exactly that many), rejected only with the fake's non-retryable code, and each carries
//   the last retryable code the fake gave the record (none when never faulted);
// - per-key ordering: no key in two requests in flight or in two Kinesis records of one request
//   (checked in the fake at call time), each key's records stored in put order and reported with
//   increasing (sequence, subsequence); with or without it, a key's records keep put order within
//   a request;
// - stats: bufferedRecords / bufferedBytes within the limits, inFlightRequests within
//   maxInFlight, buffered + waiting = accepted records not settled yet, sampled at every step,
//   every call and every hook; waitForCapacity() resolves only with hasCapacity true;
// - request rate: calls per fake second within a sanity bound (no tight loop); during an outage,
//   calls within what an exponentially growing backoff allows; in a storm, the healthy shards'
//   new records in batches: requests per second within one per linger time per shard, and more
//   than two records per request;
// - flush() resolves once every record put before it settled, counting exactly those; close()
//   resolves with everything settled, then put() rejects and send() fails with reason closed;
// - the case ends within a bounded number of steps of fake time, with no timer left pending
//   (also a ListShards in progress at close(): the cases at the end of the file, fixed in 095e1df).
//
// Exploration: PRODUCER_INVARIANTS_SEEDS=first:count runs other seeds, PRODUCER_INVARIANTS_REPORT=1
// prints each case's configuration and figures, PRODUCER_INVARIANTS_OVERRIDE='{...}' overrides
// configuration fields (JSON) of every case.
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isKinesisServiceError, type KinesisError } from '../../src/errors.ts';
import {
  createProducer,
  isKinesisProducerError,
  type KinesisProducerError,
  type Producer,
  type ProducerRecord,
  type ProducerStats,
  type PutResult,
} from '../../src/producer/index.ts';
import { decodeAggregatedRecord } from '../../src/internal/kpl.ts';
import { sleep } from '../../src/internal/sleep.ts';
import { ShardMap } from '../../src/producer/shard-map.ts';
import { backoffDelay } from '../../src/retry.ts';
import { awsError, bodyText, json, networkError } from '../support/fake-fetch.ts';
import { hash32, randomInt, seededRandom } from '../support/seeded-random.ts';
import { createFakeKinesis, keysOnShard, md5HashKey, settle, type FakeKinesis, type FakeShard, type PutCall, type SentEntry } from './producer-fake-kinesis.ts';

const agg = createRequire(import.meta.url)('aws-kinesis-agg') as {
  deaggregateSync(
    record: { data: string; partitionKey: string; sequenceNumber: string },
    computeChecksums: boolean,
    callback: (err: Error | null | undefined, records?: { partitionKey: string; explicitPartitionKey?: string; data: string }[]) => void,
  ): void;
};

const PTE = 'ProvisionedThroughputExceededException';
const FATAL = 'KMSAccessDeniedException';
const STEP_MS = 10;
/** 60 s of fake time: a case that has not closed by then fails ("the test ends"). */
const MAX_STEPS = 6_000;
const REPORT = process.env.PRODUCER_INVARIANTS_REPORT === '1';

// ---- configurations ------------------------------------------------------------------------------

interface Faults {
  /** Per entry: throttled, InternalFailure, a fault retrying cannot fix. */
  entryPte: number;
  entryInternal: number;
  entryFatal: number;
  /** Per call: 400 ProvisionedThroughputExceededException, 500 InternalFailure. */
  requestThrottle: number;
  request500: number;
  /** Per call: stored, then answered 500, with a dropped connection, or with a Records count that does not match. */
  unknownOutcome: number;
  /** Per call: the answer waits this long (fake ms, 1..maxDelayMs) with this chance. */
  delayChance: number;
  maxDelayMs: number;
  /** A stretch of fake time in which every call fails whole: 500 InternalFailure or 400 throttled. */
  outage?: { fromMs: number; forMs: number; status: 400 | 500 } | undefined;
}

interface CaseConfig {
  seed: number;
  /** A storm case (see stormCase()). */
  storm: boolean;
  shards: number;
  /** Aggregation's maxBytes, or false. */
  aggregation: number | false;
  perKey: boolean;
  whenFull: 'reject' | 'wait';
  maxBufferedRecords: number;
  maxBufferedBytes: number;
  lingerMs: number;
  maxInFlight: number;
  maxBatchRecords: number;
  maxBatchBytes: number | undefined;
  recordTtlMs: number;
  maxAttempts: number;
  predictShards: boolean;
  /** Wait for the shard map (one record stored) before the workload. */
  warmUp: boolean;
  /**
   * ListShards: answered at once; after 200-1,500 fake ms (records start in the stream's bucket,
   * some in flight when the map arrives); refused (AccessDeniedException: prediction off for
   * good); or its first call failing with 500 (the client's retry gets the map: a listing the
   * producer itself retries, 5 s later, could not be waited for, and would make runs differ).
   */
  listShards: 'ok' | 'slow' | 'denied' | 'flaky';
  backoff: { baseDelayMs: number; throttlingBaseDelayMs: number; maxDelayMs: number };
  clientRetry: { maxAttempts: number; baseDelayMs: number; throttlingBaseDelayMs: number; maxDelayMs: number };
  faults: Faults;
  /** Records per second each shard stores (by index), Infinity for no limit; undefined: no limits. */
  shardLimits: number[] | undefined;
  records: number;
  /** 'burst': records at their step whatever the room; 'capacity': waitForCapacity() before each. */
  feeder: 'burst' | 'capacity';
  /** Most records per step. */
  perStep: number;
  hotKeys: number;
  hotShare: number;
  noKeyShare: number;
  explicitHashShare: number;
  spreadKeys: number;
  /** Share of records with a key of shard 0 (the slow one), the rest with keys of the others (storm cases). */
  slowShare: number | undefined;
  sendShare: number;
  bytesShare: number;
  /** Spread keys with multi-byte UTF-8 characters (their UTF-8 length counts, not their length). */
  unicodeKeys: boolean;
  /** onFailure and onRetry throw after recording. */
  hooksThrow: boolean;
  /** Share of records put() refuses at once: too large for the buffer or a batch, or invalid. */
  refusedShare: number;
  maxPad: number;
  flushes: number;
  /** Splits and merges during the run (see reshardCase()); undefined: the shards never change. */
  reshard: ReshardConfig | undefined;
}

/** What starts a reshard event. */
type ReshardTrigger =
  /** Its time, between two steps. */
  | 'time'
  /** The first ListShards that arrives after its time, right after the fake took its snapshot (the answer is stale). */
  | 'listing'
  /** The first held PutRecords call answered after its time: the shard of its first record, before the answer. */
  | 'call'
  /** Its time: the shard of a record that waits for a retry (it was answered with a fault). */
  | 'retry';

interface ReshardEvent {
  /** Fake ms after the workload starts; a 'listing' or 'call' event that found nothing 2 s later goes as 'time'. */
  atMs: number;
  trigger: ReshardTrigger;
  action: 'split' | 'merge';
  /** Where a split cuts: the middle, anywhere, or at a hot key's hash key (it starts the upper child, or ends the lower one). */
  at: 'middle' | 'random' | 'hot-key' | 'hot-key+1';
}

interface ReshardConfig {
  events: ReshardEvent[];
  /** Open shards at most: a split beyond it merges instead. */
  maxOpen: number;
  /** Per ListShards call: chance of a 500 InternalFailure or 400 LimitExceededException. */
  listFailure: number;
  /** Per ListShards call: chance that its answer (taken when it arrives) comes this many fake ms later (1..max). */
  listDelayChance: number;
  listMaxDelayMs: number;
  /** Shards per ListShards page (NextToken), undefined for one page. */
  pageSize: number | undefined;
  /**
   * Shard 0 stores 20 records/s and the others any number; its children (the only event splits it)
   * store any number: records bound for them must not wait for shard 0's throttling once the
   * producer has listed them.
   */
  throttledParent: boolean;
}

function pick<T>(random: () => number, values: readonly T[]): T {
  return values[Math.floor(random() * values.length)]!;
}

function makeCase(seed: number): CaseConfig {
  const r = seededRandom(seed);
  // About a third of the cases are the 8ceb4e3 storm: one slow shard among fast ones behind a
  // buffer that its backlog fills, fed through waitForCapacity() as fast as room frees.
  if (r() < 0.3) return stormCase(seed, r);
  return mixedCase(seed, r);
}

/** The mixed configurations (all but the storm), drawn from `r`. */
function mixedCase(seed: number, r: () => number): CaseConfig {
  const shards = randomInt(r, 1, 4);
  const shardLimits = r() < 0.25 ? Array.from({ length: shards }, () => pick(r, [150, 300, 1_000])) : undefined;
  const perKey = r() < 0.5;
  const heavy = r() < 0.35;
  const none = !heavy && r() < 0.25;
  const faults: Faults = none
    ? noFaults()
    : {
        entryPte: heavy ? 0.2 : 0.05,
        entryInternal: heavy ? 0.08 : 0.03,
        entryFatal: r() < 0.3 ? 0.03 : 0,
        requestThrottle: heavy ? 0.08 : 0.03,
        request500: heavy ? 0.06 : 0.03,
        unknownOutcome: r() < 0.35 ? 0.04 : 0,
        delayChance: perKey ? pick(r, [0.3, 0.8]) : pick(r, [0, 0.3, 0.8]),
        maxDelayMs: pick(r, [15, 60, 200]),
        outage: r() < 0.3 ? { fromMs: randomInt(r, 0, 1_000), forMs: pick(r, [300, 1_000, 2_500]), status: pick(r, [400, 500] as const) } : undefined,
      };
  if (none && perKey) {
    // Answers that take a while, so that requests overlap and per-key ordering has something to hold.
    faults.delayChance = 0.5;
    faults.maxDelayMs = 40;
  }
  const maxPad = pick(r, [16, 64, 200]);
  const maxBufferedRecords = pick(r, [8, 20, 50, 150, 400]);
  const averageSize = 12 + maxPad / 2;
  const predictShards = r() < 0.85;
  const config: CaseConfig = {
    seed,
    storm: false,
    shards,
    aggregation: r() < 0.4 ? pick(r, [51_200, 256, 1_024]) : false,
    perKey,
    whenFull: r() < 0.5 ? 'reject' : 'wait',
    maxBufferedRecords,
    maxBufferedBytes: Math.max(2 * (maxPad + 40), Math.round(maxBufferedRecords * averageSize * pick(r, [0.5, 1, 2]))),
    lingerMs: pick(r, [0, 5, 20, 50, 100]),
    maxInFlight: pick(r, [1, 2, 4, 6]),
    maxBatchRecords: pick(r, [500, 500, 50, 7]),
    maxBatchBytes: r() < 0.2 ? 2_048 : undefined,
    recordTtlMs: r() < 0.5 ? Infinity : pick(r, [300, 1_000, 3_000]),
    maxAttempts: r() < 0.2 ? pick(r, [2, 4]) : Infinity,
    predictShards,
    ...listing(r, predictShards),
    backoff: { baseDelayMs: pick(r, [5, 20, 100]), throttlingBaseDelayMs: pick(r, [20, 100, 500]), maxDelayMs: pick(r, [500, 2_000]) },
    clientRetry: { maxAttempts: pick(r, [1, 2, 3]), baseDelayMs: pick(r, [5, 20]), throttlingBaseDelayMs: pick(r, [10, 50]), maxDelayMs: 200 },
    faults,
    shardLimits,
    records: randomInt(r, 60, 300),
    feeder: r() < 0.3 ? 'capacity' : 'burst',
    perStep: pick(r, [2, 8, 30]),
    hotKeys: randomInt(r, 1, 3),
    hotShare: pick(r, [0, 0.3, 0.7]),
    noKeyShare: pick(r, [0, 0.1]),
    explicitHashShare: pick(r, [0, 0, 0.05]),
    spreadKeys: pick(r, [20, 500]),
    slowShare: undefined,
    sendShare: pick(r, [0, 0.3]),
    bytesShare: pick(r, [0, 0.3]),
    unicodeKeys: r() < 0.25,
    hooksThrow: r() < 0.25,
    refusedShare: pick(r, [0, 0, 0.02]),
    maxPad,
    flushes: randomInt(r, 0, 3),
    reshard: undefined,
  };
  if (config.listShards === 'flaky') config.clientRetry.maxAttempts = Math.max(2, config.clientRetry.maxAttempts);
  return config;
}

function listing(r: () => number, predictShards: boolean): Pick<CaseConfig, 'warmUp' | 'listShards'> {
  const listShards = predictShards ? pick(r, ['ok', 'ok', 'ok', 'slow', 'denied', 'flaky'] as const) : 'ok';
  return { listShards, warmUp: listShards === 'ok' && r() < 0.7 };
}

function noFaults(): Faults {
  return { entryPte: 0, entryInternal: 0, entryFatal: 0, requestThrottle: 0, request500: 0, unknownOutcome: 0, delayChance: 0, maxDelayMs: 1 };
}

/**
 * A storm case: shard 0 stores 20 or 50 records/s, the others 1,000/s or any number; half the
 * records are for shard 0, fed through waitForCapacity() as fast as room frees, so that shard 0's
 * backlog fills the buffer and the other shards' records trickle in as it drains (8ceb4e3).
 */
function stormCase(seed: number, r: () => number): CaseConfig {
  // Two shards and a linger of 100 ms: the request-rate bound in runCase() is then 25 a second,
  // which the code before 8ceb4e3 exceeds in half of these cases or more, and the current code
  // stays well under. With more shards or a shorter linger the bound is looser than the difference.
  const shards = 2;
  const perKey = r() < 0.4;
  // The slow shard's throttling is the fault here; answers may take a while (requests overlap).
  const faults = { ...noFaults(), delayChance: perKey ? 0.5 : pick(r, [0, 0.5]), maxDelayMs: 30 };
  const maxBufferedRecords = pick(r, [100, 200]);
  const maxPad = pick(r, [16, 64]);
  return {
    seed,
    storm: true,
    shards,
    // Aggregated, many records make one Kinesis record, and the records-per-second limit is no storm.
    aggregation: false,
    perKey,
    whenFull: r() < 0.5 ? 'reject' : 'wait',
    maxBufferedRecords,
    maxBufferedBytes: maxBufferedRecords * (20 + maxPad),
    lingerMs: 100,
    maxInFlight: pick(r, [2, 4, 6]),
    maxBatchRecords: 500,
    maxBatchBytes: undefined,
    recordTtlMs: r() < 0.7 ? Infinity : 20_000,
    maxAttempts: Infinity,
    predictShards: true,
    warmUp: true,
    listShards: 'ok',
    backoff: { baseDelayMs: 100, throttlingBaseDelayMs: pick(r, [100, 500]), maxDelayMs: 2_000 },
    clientRetry: { maxAttempts: pick(r, [1, 2]), baseDelayMs: 20, throttlingBaseDelayMs: 50, maxDelayMs: 200 },
    faults,
    shardLimits: Array.from({ length: shards }, (_, i) => (i === 0 ? pick(r, [20, 50]) : pick(r, [Infinity, 1_000]))),
    // Half the records for the slow shard: five buffers' worth in all, so its backlog fills the
    // buffer for seconds.
    records: 5 * maxBufferedRecords,
    feeder: 'capacity',
    perStep: 30,
    hotKeys: 2,
    hotShare: 0,
    noKeyShare: pick(r, [0, 0.1]),
    explicitHashShare: 0,
    spreadKeys: 100,
    slowShare: 0.5,
    sendShare: pick(r, [0, 0.5]),
    bytesShare: pick(r, [0, 0.3]),
    unicodeKeys: false,
    hooksThrow: r() < 0.25,
    refusedShare: 0,
    maxPad,
    flushes: 0,
    reshard: undefined,
  };
}

/**
 * A resharding case: a mixed configuration (always predicting shards, with held answers so that
 * records are in flight when a shard closes) over a longer workload, during which the fake splits
 * and merges shards 3 to 7 times (see ReshardTrigger), while ListShards answers fail, come late
 * (a snapshot already stale) or come in pages. A quarter are the throttled-parent variant (see
 * ReshardConfig.throttledParent).
 */
function reshardCase(seed: number): CaseConfig {
  const r = seededRandom((seed * 2_654_435_761 + 0x5eed) >>> 0);
  const config = mixedCase(seed, r);
  config.predictShards = true;
  config.listShards = 'ok';
  config.warmUp = r() < 0.6;
  config.records = randomInt(r, 250, 600);
  config.perStep = pick(r, [2, 4, 8]);
  config.hotShare = pick(r, [0.3, 0.5, 0.7]);
  config.flushes = randomInt(r, 0, 2);
  if (config.faults.delayChance < 0.3) config.faults.delayChance = 0.3;
  if (config.faults.maxDelayMs < 60) config.faults.maxDelayMs = 60;
  if (config.faults.outage !== undefined && r() < 0.5) config.faults.outage = undefined;
  // The workload's length in fake ms (a step puts perStep / 2 records on average).
  const span = (config.records / (config.perStep / 2)) * STEP_MS;
  const throttledParent = r() < 0.25;
  const events: ReshardEvent[] = [];
  if (throttledParent) {
    config.shards = randomInt(r, 2, 3);
    config.shardLimits = Array.from({ length: config.shards }, (_, i) => (i === 0 ? 20 : Infinity));
    // Most records for shard 0, as in the storm (see stormCase()): its backlog fills the buffer.
    config.slowShare = 0.6;
    config.spreadKeys = 100;
    config.faults = { ...noFaults(), delayChance: 0.5, maxDelayMs: 30 };
    config.perKey = false;
    config.hotShare = 0;
    config.recordTtlMs = Infinity;
    config.maxAttempts = Infinity;
    config.warmUp = true;
    config.feeder = 'capacity';
    config.records = randomInt(r, 400, 700);
    config.maxBufferedRecords = pick(r, [100, 200, 400]);
    config.maxBufferedBytes = config.maxBufferedRecords * (20 + config.maxPad);
    config.lingerMs = pick(r, [0, 20, 50]);
    config.maxInFlight = Math.max(2, config.maxInFlight);
    // Requests as large as the children's limiters allow (the drain bound below counts on it).
    config.maxBatchRecords = 500;
    config.maxBatchBytes = undefined;
    config.refusedShare = 0;
    config.flushes = 0;
    events.push({ atMs: randomInt(r, 800, 1_500), trigger: 'time', action: 'split', at: 'middle' });
  } else {
    const count = randomInt(r, 3, 7);
    for (let i = 0; i < count; i++) {
      events.push({
        // While records are put (after close() the producer lists no more).
        atMs: randomInt(r, 100, Math.max(200, Math.round(span * 0.9))),
        trigger: pick(r, ['time', 'listing', 'call', 'call', 'retry'] as const),
        action: r() < 0.6 ? 'split' : 'merge',
        at: pick(r, ['middle', 'random', 'hot-key', 'hot-key+1'] as const),
      });
    }
    events.sort((a, b) => a.atMs - b.atMs);
  }
  config.reshard = {
    events,
    maxOpen: 8,
    listFailure: throttledParent ? 0 : pick(r, [0, 0, 0.15, 0.4]),
    listDelayChance: pick(r, [0.3, 0.7]),
    listMaxDelayMs: throttledParent ? 100 : pick(r, [50, 300, 1_500]),
    pageSize: r() < 0.3 ? pick(r, [1, 2, 3]) : undefined,
    throttledParent,
  };
  if (config.reshard.listFailure > 0) config.clientRetry.maxAttempts = Math.max(2, config.clientRetry.maxAttempts);
  return config;
}

function describeCase(config: CaseConfig): string {
  return `seed ${config.seed}: ${JSON.stringify(config, (_key, value: unknown) => (value === Infinity ? 'Infinity' : value))}`;
}

// ---- helpers -------------------------------------------------------------------------------------

const isAggregated = (data: Uint8Array): boolean => data.length > 4 && data[0] === 0xf3 && data[1] === 0x89 && data[2] === 0x9a && data[3] === 0xc2;

/** One user record inside a Kinesis record as the fake received it. */
interface UserRecord {
  /** The record's id (from its data), NaN when the data is not one of ours. */
  id: number;
  partitionKey: string;
  explicitHashKey: string | undefined;
  text: string;
}

function usersOf(entry: SentEntry): { users: UserRecord[]; aggregated: boolean } {
  const parse = (text: string) => (text.includes('|') ? Number(text.slice(0, text.indexOf('|'))) : Number.NaN);
  if (!isAggregated(entry.data)) {
    return { users: [{ id: parse(entry.text), partitionKey: entry.partitionKey, explicitHashKey: entry.explicitHashKey, text: entry.text }], aggregated: false };
  }
  // Partition keys and data from the reference deaggregator. It reports explicit_hash_key_table[0]
  // for a user record without explicit_hash_key_index (protobuf's default 0), so whether a user
  // record has one, and which, comes from src/'s decoder (held to the KPL vectors in
  // producer-aggregation.test.ts); both must agree on the rest.
  let users: UserRecord[] = [];
  agg.deaggregateSync({ data: Buffer.from(entry.data).toString('base64'), partitionKey: entry.partitionKey, sequenceNumber: '1' }, true, (err, records) => {
    if (err) throw err;
    users = (records ?? []).map((user) => {
      const text = Buffer.from(user.data, 'base64').toString('utf8');
      return { id: parse(text), partitionKey: user.partitionKey, explicitHashKey: undefined, text };
    });
  });
  const ours = decodeAggregatedRecord(entry.data) ?? [];
  if (ours.length !== users.length) throw new Error(`deaggregators disagree: ${ours.length} vs ${users.length} user records`);
  users.forEach((user, i) => {
    const mine = ours[i]!;
    if (mine.partitionKey !== user.partitionKey || Buffer.from(mine.data).toString('utf8') !== user.text) throw new Error(`deaggregators disagree on user record ${i}`);
    user.explicitHashKey = mine.explicitHashKey;
  });
  return { users, aggregated: true };
}

function shardOfHash(shards: readonly FakeShard[], hashKey: bigint): string {
  return shards.find((s) => hashKey >= BigInt(s.HashKeyRange.StartingHashKey) && hashKey <= BigInt(s.HashKeyRange.EndingHashKey))!.ShardId;
}

/** Lets a few microtasks run (a failed put() settles through a thenable, two microtasks later). */
async function microtasks(count = 4): Promise<void> {
  for (let i = 0; i < count; i++) await Promise.resolve();
}

// ---- resharding ----------------------------------------------------------------------------------

// The producer's re-listing rules (src/producer/shard-map.ts): a listing starts at most once per
// MIN_REFRESH_INTERVAL_MS, and not within RETRY_AFTER_ERROR_MS of a failed one; a record that
// lands on another shard than predicted starts one when allowed (invalidate()).
const RELIST_INTERVAL_MS = 1_000;
const RELIST_AFTER_ERROR_MS = 5_000;
/** A ListShards answered this long ago is installed: reading and parsing it is real I/O, which quiesce() waits for. */
const INSTALL_MS = 3 * STEP_MS;
/** A listing the producer owes starts within this long of the answer that shows its map stale (the answer is read in real I/O). */
const RELIST_SLACK_MS = 5 * STEP_MS;
/**
 * Records of a throttled parent's range settle within this long of the producer listing its
 * children (which store any number): the buffer (at most 400 records) fits the new limiters'
 * first second (1,000 records), so a few requests of up to 500 records, answers held up to 30 ms,
 * and a linger of up to 50 ms (at most 250 ms in seeds 1-1000); a parent's limiter that kept them
 * took over a second.
 */
const THROTTLED_PARENT_DRAIN_MS = 400;
/** The code the producer retries a user record with when its aggregate landed on a shard not known to hold it. */
const WRONG_SHARD = 'WrongShard';

/** A shard as ListShards lists it after a reshard (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_Shard.html). */
type ListedShard = FakeShard & { ParentShardId?: string; AdjacentParentShardId?: string };

const isOpen = (shard: FakeShard): boolean => shard.SequenceNumberRange.EndingSequenceNumber === undefined;
const startOf = (shard: FakeShard): bigint => BigInt(shard.HashKeyRange.StartingHashKey);
const endOf = (shard: FakeShard): bigint => BigInt(shard.HashKeyRange.EndingHashKey);

/** The open shard of `shards` whose range holds `hashKey` (closed parents cover it too, but take no writes). */
function openShardOf(shards: readonly FakeShard[], hashKey: bigint): string | undefined {
  return shards.find((s) => isOpen(s) && hashKey >= startOf(s) && hashKey <= endOf(s))?.ShardId;
}

function hashKeyOf(record: { partitionKey: string; explicitHashKey: string | undefined }): bigint {
  return record.explicitHashKey !== undefined ? BigInt(record.explicitHashKey) : md5HashKey(record.partitionKey);
}

/** What the partition key or explicit hash key of a record puts it on the same shard as (the producer's grouping without a map). */
const hashInputOf = (record: { partitionKey: string; explicitHashKey: string | undefined }): string =>
  record.explicitHashKey !== undefined ? `h${record.explicitHashKey}` : `p${record.partitionKey}`;

/** A ListShards answer the producer got in full: when, and the shards it listed. */
interface Listed {
  at: number;
  shards: ListedShard[];
  open: Set<string>;
}

/** A record the test still waits for, as the resharder sees it. */
interface PendingRecord {
  id: number;
  hashKey: bigint;
  /** In a PutRecords call the fake holds; else answered with a fault (waits for a retry); else queued. */
  state: 'in-flight' | 'retry' | 'queued';
}

interface ReshardReport {
  reshards: number;
  byTrigger: Record<ReshardTrigger, number>;
  listings: number;
  /** Listings whose answer was stale when it arrived (a reshard while it was in flight). */
  staleListings: number;
  listingFailures: number;
  /** PutRecords entries stored on a shard the producer's last listing did not have. */
  revealing: number;
  /** Of those, answers after which a listing was due, and began. */
  relists: number;
  /** Records of a shard that closed: in a held call, waiting for a retry, queued. */
  inFlightAtReshard: number;
  retryAtReshard: number;
  queuedAtReshard: number;
  /** Records stored on another shard than the one of their first call. */
  moved: number;
  /** User records stored in an aggregate on a shard whose range does not hold their hash key. */
  wrongShard: number;
  /** Throttled parent: ms from the listing with its children to the last of its records settling. */
  drainMs: number | undefined;
}

interface ResharderDeps {
  config: CaseConfig;
  kinesis: FakeKinesis;
  violate: (message: string) => void;
  /** When the workload started (fake ms): reshard events count from it, messages too. */
  start: () => number;
  /** Whether the workload has started (the warm-up's listing is answered at once). */
  started: () => boolean;
  hotKeys: readonly string[];
  pending: () => PendingRecord[];
  /** Whether close() has resolved (its flush settled every record; then it stops the shard map). */
  closing: () => boolean;
  producerShards: () => number | undefined;
}

/**
 * The fake's resharding: splits and merges its shards at the configured events, answers ListShards
 * (snapshots taken on arrival, answered late, failing, in pages), keeps the shard set of each stored
 * entry, and checks the producer's side: it lists no more often than its rules allow, lists when a
 * record lands on a shard it did not list (when allowed), and installs what it listed.
 */
function createResharder(deps: ResharderDeps) {
  const { config, kinesis, violate } = deps;
  const rs = config.reshard!;
  const cr = config.clientRetry;
  const random = seededRandom(config.seed * 65_537 + 11);
  const shards = kinesis.shards as ListedShard[];
  const clone = (): ListedShard[] => shards.map((s) => ({ ...s, HashKeyRange: { ...s.HashKeyRange }, SequenceNumberRange: { ...s.SequenceNumberRange } }));
  /** The shard set from each stored entry on (index into kinesis.stored). */
  const epochs: { from: number; shards: ListedShard[] }[] = [{ from: 0, shards: clone() }];
  const limits = new Map<string, number>();
  shards.forEach((s, i) => {
    const limit = config.shardLimits?.[i];
    if (limit !== undefined) limits.set(s.ShardId, limit);
  });
  let nextShard = shards.length;
  let sequence = 10n ** 25n;
  const events = [...rs.events];
  const armed: ReshardEvent[] = [];
  const report: ReshardReport = {
    reshards: 0,
    byTrigger: { time: 0, listing: 0, call: 0, retry: 0 },
    listings: 0,
    staleListings: 0,
    listingFailures: 0,
    revealing: 0,
    relists: 0,
    inFlightAtReshard: 0,
    retryAtReshard: 0,
    queuedAtReshard: 0,
    moved: 0,
    wrongShard: 0,
    drainMs: undefined,
  };
  const delivered: Listed[] = [];
  const listing = {
    open: false,
    snapshot: [] as ListedShard[],
    pageAttempts: 0,
    page: 0,
    snapshotTaken: false,
    /** Asked for (or its next page due) and not at the fake yet: signing it is real I/O that quiesce() waits for. */
    awaitingFetch: false,
    lastBegin: Number.NEGATIVE_INFINITY,
    lastEnd: Number.NEGATIVE_INFINITY,
    lastFailure: Number.NEGATIVE_INFINITY,
    /** Fake timers of answers held now. */
    waits: 0,
  };
  const tokens = new Map<string, { snapshot: ListedShard[]; page: number }>();
  let answer: Response | undefined;
  /** Listings the producer owes: a record landed at `at` on a shard it did not list. */
  let owed: { at: number; shardId: string; by: number; lastBegin: number }[] = [];
  let throttledParentClosedAt: number | undefined;
  /** Per record landed in an aggregate on a shard not holding it: how many listings had been answered then. */
  const wrongAt = new Map<number, number>();

  /** Listings owed whose time is up (none is owed once close() was called: it stops the shard map). */
  const checkOwed = (now: number): void => {
    const late = owed.find((o) => o.by < now);
    if (late === undefined) return;
    if (!deps.closing()) {
      violate(
        `re-listing: a record landed on ${late.shardId} at ${late.at - deps.start()} ms, a shard the last listing did not have, ` +
          `and no listing started within ${RELIST_SLACK_MS} ms (the previous started ${late.at - late.lastBegin} ms before)`,
      );
    }
    owed = [];
  };

  const newShard = (start: bigint, end: bigint, parents: { ParentShardId: string; AdjacentParentShardId?: string }): ListedShard => {
    const shard: ListedShard = {
      ShardId: `shardId-${String(nextShard++).padStart(12, '0')}`,
      ...parents,
      HashKeyRange: { StartingHashKey: String(start), EndingHashKey: String(end) },
      SequenceNumberRange: { StartingSequenceNumber: String(sequence++) },
    };
    shards.push(shard);
    return shard;
  };
  const close = (shard: ListedShard): void => {
    shard.SequenceNumberRange.EndingSequenceNumber = String(sequence++);
  };
  const randomBelow = (n: bigint): bigint => {
    let value = 0n;
    for (let i = 0; i < 5; i++) value = (value << 32n) | BigInt(Math.floor(random() * 2 ** 32));
    return value % n;
  };
  const hotHashes = deps.hotKeys.map((key) => md5HashKey(key));

  /** Splits or merges the open shard holding `hashKey`, as SplitShard / MergeShards do. */
  const reshard = (event: ReshardEvent, trigger: ReshardTrigger, hashKey: bigint | undefined): void => {
    const open = shards.filter(isOpen);
    const key = hashKey ?? (hotHashes.length > 0 && random() < 0.5 ? pick(random, hotHashes) : randomBelow(2n ** 128n));
    const target = open.find((s) => key >= startOf(s) && key <= endOf(s))!;
    const start = startOf(target);
    const end = endOf(target);
    let action = event.action;
    if (action === 'split' && (open.length >= rs.maxOpen || end === start)) action = 'merge';
    const neighbours = open.filter((s) => startOf(s) === end + 1n || endOf(s) === start - 1n);
    if (action === 'merge' && neighbours.length === 0) action = 'split';
    if (action === 'split' && end === start) return;
    const parents: ListedShard[] = [];
    if (action === 'split') {
      // NewStartingHashKey starts the upper child: start < at <= end.
      // https://docs.aws.amazon.com/kinesis/latest/APIReference/API_SplitShard.html
      let at = start + (end - start + 1n) / 2n;
      if (event.at === 'random') at = start + 1n + randomBelow(end - start);
      const hot = hotHashes.find((h) => (event.at === 'hot-key' ? h > start && h <= end : h >= start && h < end));
      if (event.at === 'hot-key' && hot !== undefined) at = hot;
      if (event.at === 'hot-key+1' && hot !== undefined) at = hot + 1n;
      close(target);
      parents.push(target);
      const limit = rs.throttledParent ? undefined : limits.get(target.ShardId);
      for (const child of [newShard(start, at - 1n, { ParentShardId: target.ShardId }), newShard(at, end, { ParentShardId: target.ShardId })]) {
        if (limit !== undefined) limits.set(child.ShardId, limit);
      }
    } else {
      // The lower shard is ShardToMerge, the upper its AdjacentShardToMerge.
      // https://docs.aws.amazon.com/kinesis/latest/APIReference/API_MergeShards.html
      const other = pick(random, neighbours);
      const [lower, upper] = startOf(other) < start ? [other, target] : [target, other];
      close(lower);
      close(upper);
      parents.push(lower, upper);
      const child = newShard(startOf(lower), endOf(upper), { ParentShardId: lower.ShardId, AdjacentParentShardId: upper.ShardId });
      const limit = limits.get(lower.ShardId);
      if (limit !== undefined) limits.set(child.ShardId, limit);
    }
    epochs.push({ from: kinesis.stored.length, shards: clone() });
    report.reshards++;
    report.byTrigger[trigger]++;
    if (rs.throttledParent && parents.some((p) => p.ShardId === shards[0]!.ShardId)) throttledParentClosedAt ??= Date.now();
    for (const record of deps.pending()) {
      if (!parents.some((p) => record.hashKey >= startOf(p) && record.hashKey <= endOf(p))) continue;
      if (record.state === 'in-flight') report.inFlightAtReshard++;
      else if (record.state === 'retry') report.retryAtReshard++;
      else report.queuedAtReshard++;
    }
  };

  const fireArmed = (trigger: 'listing' | 'call', hashKey: bigint | undefined): void => {
    const index = armed.findIndex((event) => event.trigger === trigger);
    if (index < 0) return;
    const [event] = armed.splice(index, 1);
    reshard(event!, trigger, hashKey);
  };

  /** The snapshots the producer may have cut a request with, built at `builtAt`: its last listing, and the one before while the last is being installed. */
  const mapsAt = (builtAt: number): Listed[] => {
    let i = delivered.length - 1;
    while (i >= 0 && delivered[i]!.at > builtAt) i--;
    if (i < 0) return [];
    return delivered[i]!.at + INSTALL_MS > builtAt && i > 0 ? [delivered[i]!, delivered[i - 1]!] : [delivered[i]!];
  };

  /** Whether the producer may not know `shardId` now (so it cannot tell which user records of an aggregate there belong there). */
  const maybeUnknown = (shardId: string, now: number): boolean => {
    const last = delivered.at(-1);
    if (last === undefined || !last.open.has(shardId)) return true;
    const previous = delivered.at(-2);
    return last.at + INSTALL_MS > now && (previous === undefined || !previous.open.has(shardId));
  };

  return {
    report,
    limitOf: (shardId: string): number | undefined => limits.get(shardId),
    /** The open shard holding `hashKey` when the fake stored its entry number `order`. */
    shardAtStored(order: number, hashKey: bigint): string | undefined {
      let i = epochs.length - 1;
      while (epochs[i]!.from > order) i--;
      return openShardOf(epochs[i]!.shards, hashKey);
    },

    /**
     * The producer's shard map started a listing now (its refresh() did): it lists at most once a
     * RELIST_INTERVAL_MS, not within RELIST_AFTER_ERROR_MS of a failed listing, and one at a time.
     */
    listingRequested(): void {
      const now = Date.now();
      if (listing.open) violate('a listing started while another is in progress');
      if (now < listing.lastBegin + RELIST_INTERVAL_MS) violate(`a listing started ${now - listing.lastBegin} ms after the previous one (at most one a ${RELIST_INTERVAL_MS} ms)`);
      if (now < listing.lastFailure + RELIST_AFTER_ERROR_MS) violate(`a listing started ${now - listing.lastFailure} ms after one failed (${RELIST_AFTER_ERROR_MS} ms)`);
      if (owed.some((o) => o.at <= now)) report.relists++;
      owed = owed.filter((o) => o.at > now);
      Object.assign(listing, { open: true, lastBegin: now, page: 0, pageAttempts: 0, snapshotTaken: false, awaitingFetch: true });
      report.listings++;
    },

    /** Whether a ListShards call the producer owes the fake has not arrived yet. */
    awaitingFetch: (): boolean => listing.awaitingFetch && !deps.closing(),

    /** The answer of the ListShards call in progress (onListShards). */
    takeAnswer(): Response | undefined {
      const next = answer;
      answer = undefined;
      return next;
    },

    /** A ListShards call: a page of a snapshot taken when the listing began, maybe late, maybe failing. */
    async listShards(input: RequestInfo | URL, init: RequestInit | undefined): Promise<Response> {
      const now = Date.now();
      const body = JSON.parse(bodyText(init?.body)) as { StreamName?: string; StreamARN?: string; NextToken?: string };
      let snapshot: ListedShard[];
      let page: number;
      if (body.NextToken !== undefined) {
        // ListShards refuses a NextToken with a stream (InvalidArgumentException).
        if (body.StreamName !== undefined || body.StreamARN !== undefined) violate(`ListShards: a NextToken with the stream name: ${JSON.stringify(body)}`);
        const token = tokens.get(body.NextToken);
        if (token === undefined || !listing.open || token.page !== listing.page) {
          violate(`ListShards: NextToken ${body.NextToken} is not the one the last page gave`);
          return json({ Shards: [] });
        }
        ({ snapshot, page } = token);
      } else {
        if (body.StreamName !== 'clicks') violate(`ListShards: first page without the stream name: ${JSON.stringify(body)}`);
        if (!listing.open || listing.page !== 0) violate(`ListShards: a first page the producer's shard map did not ask for (open ${listing.open}, page ${listing.page})`);
        // The shards as they are when the call arrives (a client retry sees them as they are then).
        snapshot = clone();
        page = 0;
        if (!listing.snapshotTaken) {
          listing.snapshotTaken = true;
          // A reshard right after the snapshot: this listing's answer is stale before it arrives.
          fireArmed('listing', undefined);
        }
      }
      listing.awaitingFetch = false;
      listing.pageAttempts++;
      const fails = deps.started() && random() < rs.listFailure;
      const delay = deps.started() && random() < rs.listDelayChance ? randomInt(random, 1, rs.listMaxDelayMs) : 0;
      const size = rs.pageSize ?? snapshot.length;
      const more = (page + 1) * size < snapshot.length;
      try {
        if (delay > 0) {
          listing.waits++;
          // As a real fetch does, the wait ends when the request is aborted (close() aborts it).
          await sleep(delay, init?.signal ?? undefined).finally(() => listing.waits--);
        }
        let token: string | undefined;
        if (!fails && more) {
          token = `page-${report.listings}-${page + 1}`;
          tokens.set(token, { snapshot, page: page + 1 });
        }
        answer = fails
          ? random() < 0.5
            ? awsError(500, 'InternalFailure')
            : awsError(400, 'LimitExceededException', 'Rate exceeded for stream clicks under account 123456789012.')
          : json({ Shards: snapshot.slice(page * size, (page + 1) * size), ...(token !== undefined ? { NextToken: token } : {}) });
        const response = await kinesis.fetch(input, init);
        const at = Date.now();
        if (fails) {
          if (listing.pageAttempts >= cr.maxAttempts) {
            // The client gave up: the listing failed.
            listing.open = false;
            listing.lastEnd = at;
            listing.lastFailure = at;
            report.listingFailures++;
          }
        } else if (token !== undefined) {
          listing.page = page + 1;
          listing.pageAttempts = 0;
          listing.awaitingFetch = true;
        } else {
          listing.open = false;
          listing.lastEnd = at;
          delivered.push({ at, shards: snapshot, open: new Set(snapshot.filter(isOpen).map((s) => s.ShardId)) });
          if (snapshot.length !== shards.length) report.staleListings++;
        }
        return response;
      } catch (error) {
        listing.open = false;
        listing.lastEnd = Date.now();
        throw error;
      }
    },

    /**
     * A call arrived: each aggregate of several hash keys must be one shard's in a map the producer
     * may hold (its last listing when it cut the request); records of one hash key share a shard.
     */
    checkAggregates(call: PutCall, decoded: { users: UserRecord[]; aggregated: boolean }[], builtAt: number): void {
      decoded.forEach(({ users }, i) => {
        if (new Set(users.map(hashInputOf)).size <= 1) return;
        const maps = mapsAt(builtAt);
        const fits = maps.some((map) => new Set(users.map((user) => openShardOf(map.shards, hashKeyOf(user)) ?? '?')).size === 1);
        if (!fits) {
          const listed = maps.map((map) => `${map.at - deps.start()} ms`).join(', ') || 'none';
          violate(`call ${call.index}: Kinesis record ${i} packs user records of several shards of the producer's map (listed at ${listed}, request cut at ${builtAt - deps.start()} ms)`);
        }
      });
    },

    /** The fake answers a call now (after holding it if `held`): a 'call' event closes its first record's shard first; entries go to the shard that holds them now. */
    beforeAnswer(call: PutCall, held: boolean): void {
      if (held && call.entries.length > 0) fireArmed('call', hashKeyOf(call.entries[0]!));
      for (const entry of call.entries) entry.shardId = openShardOf(shards, hashKeyOf(entry))!;
    },

    /**
     * An entry was stored: on a shard the producer's last listing does not have, it must list again
     * when its rules allow; of an aggregate's user records, those the producer cannot place in that
     * shard are retried (`WRONG_SHARD`), and may be stored again.
     */
    stored(entry: SentEntry, users: UserRecord[], builtAt: number, mark: (user: UserRecord) => void): void {
      const now = Date.now();
      if (users.length > 1) {
        const first = hashInputOf(users[0]!);
        const unknown = maybeUnknown(entry.shardId, now);
        for (const user of users) {
          if (hashInputOf(user) === first) continue;
          const wrong = openShardOf(shards, hashKeyOf(user)) !== entry.shardId;
          if (wrong) {
            report.wrongShard++;
            // Once a record of a shard's bucket has landed elsewhere, the producer knows that shard
            // closed: until a new map, that bucket packs only records of one hash key together.
            if (wrongAt.get(user.id) === delivered.length) {
              violate(`record ${user.id} landed twice, in an aggregate on ${entry.shardId}, on a shard that does not hold its hash key, with no listing answered in between`);
            }
            wrongAt.set(user.id, delivered.length);
          }
          if (wrong || unknown) mark(user);
        }
      }
      const last = delivered.at(-1);
      if (last === undefined || builtAt <= delivered[0]!.at + INSTALL_MS || last.open.has(entry.shardId) || deps.closing()) return;
      report.revealing++;
      // A listing in progress (or just ended, its answer not installed yet), or one too recent: none is due.
      if (listing.open || now < listing.lastEnd + INSTALL_MS) return;
      if (now < listing.lastBegin + RELIST_INTERVAL_MS || now < listing.lastFailure + RELIST_AFTER_ERROR_MS + INSTALL_MS) return;
      if (!owed.some((o) => o.at <= now)) owed.push({ at: now, shardId: entry.shardId, by: now + RELIST_SLACK_MS, lastBegin: listing.lastBegin });
    },

    /** Between two steps: due events, the producer's installed map, listings owed. */
    step(): void {
      const elapsed = Date.now() - deps.start();
      while (events.length > 0 && events[0]!.atMs <= elapsed) {
        const event = events.shift()!;
        if (event.trigger === 'listing' || event.trigger === 'call') armed.push(event);
        else if (event.trigger === 'retry') {
          const waiting = deps.pending().filter((record) => record.state === 'retry');
          reshard(event, 'retry', waiting.length > 0 ? pick(random, waiting).hashKey : undefined);
        } else reshard(event, 'time', rs.throttledParent ? startOf(shards[0]!) : undefined);
      }
      for (const event of [...armed]) {
        if (event.atMs + 2_000 > elapsed) continue;
        armed.splice(armed.indexOf(event), 1);
        reshard(event, 'time', undefined);
      }
      const now = Date.now();
      const last = delivered.at(-1);
      if (last !== undefined && !listing.open && now >= listing.lastEnd + INSTALL_MS && !deps.closing()) {
        const installed = deps.producerShards();
        if (installed !== last.open.size) violate(`shard map: the producer holds ${installed} shards, its last listing (${now - last.at} ms ago) has ${last.open.size} open`);
      }
      checkOwed(now);
    },

    checkOwed,

    /** The throttled parent's children were listed at this fake time (undefined: not yet). */
    childrenListedAt(): number | undefined {
      if (throttledParentClosedAt === undefined) return undefined;
      return delivered.find((listed) => listed.at >= throttledParentClosedAt! && !listed.open.has(shards[0]!.ShardId))?.at;
    },

    /** Fake timers this resharder holds now (held ListShards answers). */
    timers: (): number => listing.waits,
  };
}

// ---- one case ------------------------------------------------------------------------------------

interface Tracked {
  id: number;
  record: ProducerRecord;
  /** The data as given (before the caller overwrote its bytes). */
  text: string;
  api: 'put' | 'send';
  afterClose: boolean;
  /** put(): how its promise settled. */
  outcome: 'pending' | 'stored' | 'failed';
  result: PutResult | undefined;
  rejection: unknown;
  /** onFailure calls for this record. */
  failures: KinesisProducerError[];
  /** What the fake saw and answered for this record. */
  calls: number;
  lastCode: string | undefined;
  lastAnswer: string | undefined;
  unknownOutcome: boolean;
  /** Refused by put() / send() at once, for this reason. */
  refusedAs: 'too-large' | 'invalid' | undefined;
  /** The step of its put() / send(), and the shard the fake first saw it bound for. */
  putStep: number;
  shardId: string | undefined;
  /** Fake time of its put() / send(), and of its put() promise settling. */
  putAt: number;
  settledAt: number | undefined;
  /**
   * In an aggregate that landed on a shard the producer could not tell held it (a reshard): the
   * producer retries it (code WRONG_SHARD), and it may be stored twice.
   */
  unverified: boolean;
}

interface Occurrence {
  sequenceNumber: string;
  /** Index inside its aggregate, undefined for a plain record. */
  sub: number | undefined;
  shardId: string;
  partitionKey: string;
  explicitHashKey: string | undefined;
  text: string;
  /** Order of storage in the fake. */
  order: number;
  /** On the shard its hash key was in when stored: false for a user record of an aggregate cut with a stale shard map (the KCL drops it). */
  valid: boolean;
}

interface CaseReport {
  steps: number;
  calls: number;
  maxCallsPerSecond: number;
  callBound: number;
  entriesPerCall: number;
  fastEntriesPerCall: number | undefined;
  stored: number;
  failed: Record<string, number>;
  /** A ListShards was still counted in progress once close() resolved (its timers must be gone). */
  listingAfterClose: boolean;
  reshard: ReshardReport | undefined;
  ms: number;
}

async function runCase(config: CaseConfig): Promise<{ violations: string[]; report: CaseReport }> {
  const began = performance.now();
  // Before the client and the producer exist: both take `Date.now` as their clock when created.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  const violations: string[] = [];
  const violate = (message: string): void => {
    if (violations.length < 30) violations.push(message);
  };
  const r = seededRandom(config.seed * 7919 + 17);
  const fakeRandom = seededRandom(config.seed * 104_729 + 3);
  const f = config.faults;

  // Client retries the fake will see: the client's ladder is fixed (random 0.5, no quota) so the
  // wake-up time of each retry is known, and quiesce() knows which calls are still to come.
  const clientRetryWakes: number[] = [];
  let clientRetries = 0;
  const cr = config.clientRetry;
  let kinesis!: FakeKinesis;
  let slowListingDone = false;
  let slowListingWaiting = false;
  /** ListShards attempts inside fetch (each with the client's timeout timer), and retries asleep. */
  let listingAttempts = 0;
  let listingFetches = 0;
  const listingWakes: number[] = [];
  /** Fake timers a ListShards in progress holds now. */
  const listingTimers = (): number =>
    listingAttempts + (slowListingWaiting ? 1 : 0) + (resharder?.timers() ?? 0) + listingWakes.filter((at) => at > Date.now()).length;
  let listShardsCalls = 0;
  let resharder: ReturnType<typeof createResharder> | undefined;
  kinesis = createFakeKinesis({
    shards: config.shards,
    onListShards: () => {
      listShardsCalls++;
      if (resharder !== undefined) return resharder.takeAnswer();
      if (config.listShards === 'denied') return awsError(400, 'AccessDeniedException', 'User is not authorized to perform: kinesis:ListShards');
      if (config.listShards === 'flaky' && listShardsCalls === 1) return awsError(500, 'InternalFailure');
      return undefined;
    },
    client: {
      // Counts ListShards attempts; a slow one reaches the fake only after some fake time.
      fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
        if (!new Headers(init?.headers).get('x-amz-target')?.endsWith('.ListShards')) return kinesis.fetch(input, init);
        listingFetches++;
        listingAttempts++;
        try {
          if (resharder !== undefined) return await resharder.listShards(input, init);
          if (config.listShards === 'slow' && !slowListingDone) {
            slowListingDone = true;
            slowListingWaiting = true;
            // As a real fetch does, the wait ends when the request is aborted (close() aborts it).
            await sleep(randomInt(fakeRandom, 200, 1_500), init?.signal ?? undefined).finally(() => (slowListingWaiting = false));
          }
          return await kinesis.fetch(input, init);
        } finally {
          listingAttempts--;
        }
      },
      retry: {
        maxAttempts: cr.maxAttempts,
        baseDelayMs: cr.baseDelayMs,
        throttlingBaseDelayMs: cr.throttlingBaseDelayMs,
        maxDelayMs: cr.maxDelayMs,
        quota: Infinity,
        random: () => 0.5,
        shouldRetry: (error: KinesisError, attempt: number) => {
          if (attempt < cr.maxAttempts && error.retryable) {
            const throttling = isKinesisServiceError(error) && error.kind === 'throttling';
            const delay = backoffDelay(attempt, throttling ? cr.throttlingBaseDelayMs : cr.baseDelayMs, cr.maxDelayMs, () => 0.5);
            if (error.operation === 'PutRecords') {
              clientRetryWakes.push(Date.now() + delay);
              clientRetries++;
            } else {
              listingWakes.push(Date.now() + delay);
            }
          }
          return undefined;
        },
      },
    },
  });
  const shardIds = kinesis.shards.map((s) => s.ShardId);

  const tracked: Tracked[] = [];
  const bySource = new Map<ProducerRecord, Tracked>();
  let producer!: Producer;
  let statsOk = true;
  const sample = (where: string): ProducerStats => {
    const stats = producer.stats();
    if (!statsOk) return stats;
    const problems: string[] = [];
    if (stats.bufferedRecords > config.maxBufferedRecords) problems.push(`bufferedRecords ${stats.bufferedRecords} > ${config.maxBufferedRecords}`);
    if (stats.bufferedBytes > config.maxBufferedBytes) problems.push(`bufferedBytes ${stats.bufferedBytes} > ${config.maxBufferedBytes}`);
    if (stats.bufferedRecords < 0 || stats.bufferedBytes < 0 || stats.inFlightRecords < 0) problems.push('a negative gauge');
    if (stats.inFlightRecords > stats.bufferedRecords) problems.push(`inFlightRecords ${stats.inFlightRecords} > bufferedRecords ${stats.bufferedRecords}`);
    if (stats.inFlightRequests > config.maxInFlight) problems.push(`inFlightRequests ${stats.inFlightRequests} > maxInFlight ${config.maxInFlight}`);
    if (config.whenFull === 'reject' && stats.waitingRecords > 0) problems.push(`waitingRecords ${stats.waitingRecords} with whenFull 'reject'`);
    const byReason = stats.failedByReason;
    const settledAccepted = stats.stored + byReason.expired + byReason.rejected + byReason['retries-exhausted'];
    if (stats.bufferedRecords + stats.waitingRecords !== stats.accepted - settledAccepted) {
      problems.push(`buffered ${stats.bufferedRecords} + waiting ${stats.waitingRecords} != accepted ${stats.accepted} - settled ${settledAccepted}`);
    }
    if (problems.length > 0) {
      statsOk = false; // one report, not one per sample
      violate(`stats at ${where} (t=${Date.now() - start} ms): ${problems.join('; ')} ${JSON.stringify(stats)}`);
    }
    return stats;
  };

  // ---- the fake's script ------------------------------------------------------------------------
  let start = Date.now();
  let faultsOn = false;
  let held = 0;
  const inFlightKeys = new Map<string, number>();
  const bodySeen = new Map<string, number>();
  const callsPerSecond: number[] = [];
  /** Per fake second: calls carrying a record sent for the first time, calls answered with a fault. */
  const freshCallsPerSecond: number[] = [];
  const faultCallsPerSecond: number[] = [];
  /** Seconds during which a flush() or close() was pending (records go without lingering then). */
  const urgentSeconds = new Set<number>();
  let flushing = 0;
  let outageCalls = 0;
  /** Calls answered by rejecting fetch (no response body to read). */
  let networkErrors = 0;
  /** Records put (or sent) per fake second. */
  const putsPerSecond: number[] = [];
  /** Records in a call the fake has not answered yet: a record is never in two requests at once. */
  const recordsInFlight = new Set<number>();
  const bump = (counts: number[], second: number): void => void (counts[second] = (counts[second] ?? 0) + 1);
  const limitWindows = new Map<string, { second: number; count: number }>();
  const sentIds = new Set<number>();
  let unknownSequence = 10n ** 30n;
  // Records of the other shards than the first (the slow one in storm cases) sent for the first
  // time, and the calls that carried any.
  const storm = { fastEntries: 0, fastCalls: 0 };

  const trackedOf = (id: number): Tracked | undefined => (Number.isInteger(id) ? tracked[id] : undefined);

  /** When the fake first saw each request body: when the producer cut the request (a client retry sends it again). */
  const bodyFirstAt = new Map<string, number>();
  kinesis.script(async (call: PutCall) => {
    sample('call');
    const builtAt = bodyFirstAt.get(call.request.body) ?? Date.now();
    bodyFirstAt.set(call.request.body, builtAt);
    const second = Math.floor((Date.now() - start) / 1000);
    if (faultsOn) bump(callsPerSecond, second);
    const arrived = Date.now() - start;
    if (faultsOn && f.outage !== undefined && arrived >= f.outage.fromMs && arrived < f.outage.fromMs + f.outage.forMs) outageCalls++;
    if (flushing > 0) urgentSeconds.add(second);
    let fresh = false;
    const decoded = call.entries.map((entry) => usersOf(entry));
    // Keys of this call: never in two Kinesis records (per-key), nor in another call in flight.
    const callKeys = new Set<string>();
    const lastIdOfKey = new Map<string, number>();
    let freshFast = 0;
    const callIds: number[] = [];
    decoded.forEach(({ users }, i) => {
      const entry = call.entries[i]!;
      const entryKeys = new Set<string>();
      for (const user of users) {
        const record = trackedOf(user.id);
        if (record === undefined || record.text !== user.text) {
          violate(`call ${call.index}: an entry that is not a record put (or its data changed after put): ${JSON.stringify(user.text.slice(0, 40))}`);
          continue;
        }
        sentIds.add(user.id);
        if (recordsInFlight.has(user.id)) violate(`call ${call.index}: record ${user.id} sent while another call of it is in flight`);
        recordsInFlight.add(user.id);
        callIds.push(user.id);
        if (record.calls === 0) fresh = true;
        if (record.calls === 0 && entry.shardId !== shardIds[0]) freshFast++;
        record.shardId ??= entry.shardId;
        record.calls++;
        if (record.afterClose) violate(`call ${call.index}: record ${user.id}, put after close(), was sent`);
        if (record.failures.some((e) => e.reason === 'buffer-full')) violate(`call ${call.index}: record ${user.id}, refused buffer-full, was sent`);
        // The user record's own hash key must fall in the shard its Kinesis record goes to.
        // (With resharding, the shard of the producer's map when it cut the request: checkAggregates below.)
        const hashKey = user.explicitHashKey !== undefined ? BigInt(user.explicitHashKey) : md5HashKey(user.partitionKey);
        if (resharder === undefined && shardOfHash(kinesis.shards, hashKey) !== entry.shardId) violate(`call ${call.index}: record ${user.id} aggregated into a record for ${entry.shardId}, not its shard`);
        const previous = lastIdOfKey.get(user.partitionKey);
        if (previous !== undefined && previous > user.id) violate(`call ${call.index}: key ${user.partitionKey}'s records out of put order in one request (${previous} before ${user.id})`);
        lastIdOfKey.set(user.partitionKey, user.id);
        entryKeys.add(user.partitionKey);
      }
      for (const key of entryKeys) {
        if (config.perKey && callKeys.has(key)) violate(`per-key: call ${call.index} has key ${key} in two Kinesis records`);
        callKeys.add(key);
      }
    });
    resharder?.checkAggregates(call, decoded, builtAt);
    if (config.perKey) {
      for (const key of callKeys) {
        if (inFlightKeys.has(key)) violate(`per-key: call ${call.index} (t=${Date.now() - start} ms) sends key ${key} while another call of it is in flight`);
      }
    }
    for (const key of callKeys) inFlightKeys.set(key, (inFlightKeys.get(key) ?? 0) + 1);
    if (faultsOn && fresh) bump(freshCallsPerSecond, second);
    if (faultsOn && freshFast > 0) {
      storm.fastEntries += freshFast;
      storm.fastCalls++;
    }

    // The answer's randomness comes from the body (and how often it was seen), not arrival order.
    const seen = bodySeen.get(call.request.body) ?? 0;
    bodySeen.set(call.request.body, seen + 1);
    const rnd = seededRandom(hash32(call.request.body, config.seed + seen * 977));
    const isHeld = faultsOn && rnd() < f.delayChance;
    if (isHeld) {
      held++;
      await new Promise((resolve) => setTimeout(resolve, randomInt(rnd, 1, f.maxDelayMs)));
      held--;
    }
    // Stored now: on the shard that holds each entry's hash key now (a reshard may have closed the one it was bound for).
    resharder?.beforeAnswer(call, isHeld);
    for (const id of callIds) recordsInFlight.delete(id);
    for (const key of callKeys) {
      const left = inFlightKeys.get(key)! - 1;
      if (left > 0) inFlightKeys.set(key, left);
      else inFlightKeys.delete(key);
    }
    const allUsers = decoded.flatMap(({ users }) => users);
    const answerAll = (code: string | undefined, answer: string): void => {
      for (const user of allUsers) {
        const record = trackedOf(user.id);
        if (record === undefined) continue;
        record.lastAnswer = answer;
        if (code !== undefined) record.lastCode = code;
      }
    };
    if (!faultsOn) {
      answerAll(undefined, 'ok');
      return undefined;
    }
    const answeredAt = Math.floor((Date.now() - start) / 1000);
    const outage = f.outage;
    const sinceStart = Date.now() - start;
    if (outage !== undefined && sinceStart >= outage.fromMs && sinceStart < outage.fromMs + outage.forMs) {
      bump(faultCallsPerSecond, answeredAt);
      if (outage.status === 400) {
        answerAll(PTE, PTE);
        return awsError(400, PTE, 'Rate exceeded for shard shardId-000000000000 in stream clicks under account 123456789012.');
      }
      answerAll('InternalFailure', 'InternalFailure');
      return awsError(500, 'InternalFailure');
    }
    const u = rnd();
    if (u < f.requestThrottle + f.request500 + f.unknownOutcome) bump(faultCallsPerSecond, answeredAt);
    if (u < f.requestThrottle) {
      answerAll(PTE, PTE);
      return awsError(400, PTE, 'Rate exceeded for shard shardId-000000000000 in stream clicks under account 123456789012.');
    }
    if (u < f.requestThrottle + f.request500) {
      answerAll('InternalFailure', 'InternalFailure');
      return awsError(500, 'InternalFailure');
    }
    if (u < f.requestThrottle + f.request500 + f.unknownOutcome) {
      // Stored, but the answer does not say so: a 500, a dropped connection, or a Records count
      // that does not match.
      for (const entry of call.entries) {
        unknownSequence += 1n;
        kinesis.stored.push({ ...entry, sequenceNumber: String(unknownSequence) });
      }
      for (const user of allUsers) {
        const record = trackedOf(user.id);
        if (record !== undefined) record.unknownOutcome = true;
      }
      const variant = rnd();
      if (variant < 0.4) {
        answerAll('InternalFailure', 'InternalFailure');
        return awsError(500, 'InternalFailure');
      }
      if (variant < 0.7) {
        // The connection drops after the request arrived: fetch rejects, no body to read.
        networkErrors++;
        answerAll('KinesisNetworkError', 'network');
        return networkError('fetch failed');
      }
      const shown = call.entries.length - 1;
      answerAll(`ResponseCount${shown}of${call.entries.length}`, 'mismatch');
      return json({
        FailedRecordCount: 0,
        Records: call.entries.slice(0, shown).map((entry, i) => ({ ShardId: entry.shardId, SequenceNumber: String(unknownSequence - BigInt(i)) })),
      });
    }
    const now = Date.now() - start;
    let faulted = false;
    const answer = call.entries.map((entry, i) => {
      let code = 'ok';
      const limit = resharder !== undefined ? resharder.limitOf(entry.shardId) : config.shardLimits?.[shardIds.indexOf(entry.shardId)];
      const window = limitWindows.get(entry.shardId);
      const state = window && window.second === Math.floor(now / 1000) ? window : { second: Math.floor(now / 1000), count: 0 };
      limitWindows.set(entry.shardId, state);
      if (limit !== undefined && state.count >= limit) code = PTE;
      else {
        const v = rnd();
        if (v < f.entryPte) code = PTE;
        else if (v < f.entryPte + f.entryInternal) code = 'InternalFailure';
        else if (v < f.entryPte + f.entryInternal + f.entryFatal) code = FATAL;
      }
      if (code === 'ok') state.count++;
      else faulted = true;
      for (const user of decoded[i]!.users) {
        const record = trackedOf(user.id);
        if (record === undefined) continue;
        record.lastAnswer = code;
        if (code === PTE || code === 'InternalFailure') record.lastCode = code;
      }
      if (code === 'ok') {
        resharder?.stored(entry, decoded[i]!.users, builtAt, (user) => {
          const record = trackedOf(user.id);
          if (record === undefined) return;
          record.lastCode = WRONG_SHARD;
          record.unverified = true;
        });
      }
      return code;
    });
    if (faulted) bump(faultCallsPerSecond, answeredAt);
    return answer;
  });

  // ---- the producer ----------------------------------------------------------------------------
  producer = createProducer(kinesis.client, {
    streamName: 'clicks',
    lingerMs: config.lingerMs,
    maxInFlight: config.maxInFlight,
    maxBatchRecords: config.maxBatchRecords,
    ...(config.maxBatchBytes !== undefined ? { maxBatchBytes: config.maxBatchBytes } : {}),
    maxBufferedRecords: config.maxBufferedRecords,
    maxBufferedBytes: config.maxBufferedBytes,
    whenFull: config.whenFull,
    recordTtlMs: config.recordTtlMs,
    maxAttempts: config.maxAttempts,
    ordering: config.perKey ? 'per-key' : 'none',
    aggregation: config.aggregation === false ? false : { maxBytes: config.aggregation },
    predictShards: config.predictShards,
    backoff: config.backoff,
    random: seededRandom(config.seed * 31 + 5),
    onFailure: (error) => {
      const record = bySource.get(error.record);
      if (record === undefined) violate(`onFailure for a record never put: ${String(error)}`);
      else record.failures.push(error);
      sample('onFailure');
      // Hooks' own errors are ignored by the producer.
      if (config.hooksThrow) throw new Error('onFailure hook failed');
    },
    onRetry: () => {
      sample('onRetry');
      if (config.hooksThrow) throw new Error('onRetry hook failed');
    },
  });

  /**
   * Until every dispatched request (and every client retry whose backoff ended) has reached the
   * fake and every answer not held by it was read: signing and reading use real I/O, so fake time
   * must not move on meanwhile. Bounded in real time, not in rounds (a loaded machine signs slowly).
   */
  const quiesce = async (): Promise<void> => {
    const deadline = performance.now() + 5_000;
    for (;;) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const now = Date.now();
      const woken = clientRetryWakes.filter((at) => at <= now).length;
      const stats = producer.stats();
      const reached = kinesis.calls.length >= stats.requests + woken;
      // The shard map's first listing starts with the first record admitted; the client's
      // retries of a failed listing when their backoff ends (later listings are not waited for).
      const listings = (config.predictShards && stats.accepted > 0 ? 1 : 0) + listingWakes.filter((at) => at <= now).length;
      const listingSigned = !(resharder?.awaitingFetch() ?? false);
      if (reached && listingFetches >= listings && listingSigned && kinesis.fetch.requests.length - kinesis.fetch.bodiesRead - networkErrors <= held) {
        await settle(2);
        return;
      }
      if (performance.now() > deadline) break;
    }
    const now = Date.now();
    violate(
      `quiesce: requests still in real I/O after 5 s (t=${now - start} ms): calls ${kinesis.calls.length}, requests ${producer.stats().requests}, ` +
        `client retries woken ${clientRetryWakes.filter((at) => at <= now).length} of ${clientRetryWakes.length}, listing signing ${resharder?.awaitingFetch() ?? false}, fetches ${kinesis.fetch.requests.length}, bodies read ${kinesis.fetch.bodiesRead}, held ${held}`,
    );
  };

  // ---- records -----------------------------------------------------------------------------------
  const hotKeys = Array.from({ length: config.hotKeys }, (_, i) => `hot-${config.seed}-${i}`);
  const slowKeys = config.slowShare === undefined ? [] : keysOnShard(kinesis.shards, shardIds[0]!, config.spreadKeys, 'u-');
  const fastKeys = config.slowShare === undefined ? [] : shardIds.slice(1).flatMap((id) => keysOnShard(kinesis.shards, id, config.spreadKeys, 'u-'));
  const makeRecord = (id: number, afterClose = false, refusable = !afterClose): Tracked => {
    const text = `${id}|${'abcdefghij'.repeat(30).slice(0, randomInt(r, 0, config.maxPad))}`;
    const record: ProducerRecord = { data: r() < config.bytesShare ? new Uint8Array(Buffer.from(text, 'utf8')) : text };
    const k = r();
    if (k < config.noKeyShare) {
      // the producer's random key
    } else if (k < config.noKeyShare + config.explicitHashShare) {
      record.partitionKey = `e-${id}`;
      record.explicitHashKey = String((md5HashKey(`ehk-${config.seed}-${randomInt(r, 0, 50)}`) * 3n) % 2n ** 128n);
    } else if (k < config.noKeyShare + config.explicitHashShare + config.hotShare) {
      record.partitionKey = pick(r, hotKeys);
    } else if (config.slowShare !== undefined) {
      record.partitionKey = pick(r, r() < config.slowShare ? slowKeys : fastKeys);
    } else {
      record.partitionKey = `${config.unicodeKeys ? 'ключ-😀-' : 'u-'}${randomInt(r, 0, config.spreadKeys - 1)}`;
    }
    const entry: Tracked = {
      id,
      record,
      text,
      api: r() < config.sendShare ? 'send' : 'put',
      afterClose,
      outcome: 'pending',
      result: undefined,
      rejection: undefined,
      failures: [],
      calls: 0,
      lastCode: undefined,
      lastAnswer: undefined,
      unknownOutcome: false,
      putStep: -1,
      shardId: undefined,
      refusedAs: undefined,
      putAt: -1,
      settledAt: undefined,
      unverified: false,
    };
    if (refusable && r() < config.refusedShare) {
      if (r() < 0.5) {
        entry.refusedAs = 'too-large';
        const limit = Math.min(config.maxBufferedBytes, config.maxBatchBytes ?? Infinity);
        entry.text = `${id}|${'z'.repeat(limit)}`;
        record.data = entry.text;
      } else {
        entry.refusedAs = 'invalid';
        if (r() < 0.5) record.partitionKey = '';
        else record.explicitHashKey = 'not-a-number';
      }
    }
    tracked.push(entry);
    bySource.set(record, entry);
    return entry;
  };
  const submit = (entry: Tracked): void => {
    entry.putStep = currentStep;
    entry.putAt = Date.now();
    if (faultsOn) bump(putsPerSecond, Math.floor((Date.now() - start) / 1000));
    if (entry.api === 'put') {
      producer.put(entry.record).then(
        (result) => {
          if (entry.outcome !== 'pending') violate(`record ${entry.id}: put() settled twice`);
          entry.outcome = 'stored';
          entry.settledAt = Date.now();
          entry.result = result;
        },
        (error: unknown) => {
          if (entry.outcome !== 'pending') violate(`record ${entry.id}: put() settled twice`);
          entry.outcome = 'failed';
          entry.settledAt = Date.now();
          entry.rejection = error;
        },
      );
    } else {
      producer.send(entry.record);
    }
    // The caller may reuse its buffer at once: the producer copied it.
    if (entry.record.data instanceof Uint8Array) entry.record.data.fill(0x21);
  };
  /** Whether the record has settled, as far as the test can see (put(): its promise; send(): onFailure, or the end). */
  const settledPut = (entry: Tracked): boolean => entry.outcome !== 'pending';

  let closing = false;
  if (config.reshard !== undefined) {
    // When the producer's shard map starts a listing (its refresh() found it due): the fake sees the
    // call only after it is signed, in real I/O, later in fake time.
    const refresh = ShardMap.prototype.refresh;
    vi.spyOn(ShardMap.prototype, 'refresh').mockImplementation(function (this: ShardMap) {
      const loading = this.isLoading;
      refresh.call(this);
      if (!loading && this.isLoading) resharder?.listingRequested();
    });
    resharder = createResharder({
      config,
      kinesis,
      violate,
      start: () => start,
      started: () => faultsOn,
      hotKeys,
      closing: () => closing,
      producerShards: () => producer.stats().shards,
      // Records not settled as far as the fake can tell (an 'ok' answer settles one, unless it was retried as WRONG_SHARD).
      pending: () =>
        tracked
          .filter((e) => e.putStep >= 0 && !e.afterClose && e.refusedAs === undefined && e.outcome === 'pending' && e.failures.length === 0)
          .filter((e) => e.record.partitionKey !== undefined && (e.lastAnswer !== 'ok' || e.lastCode === WRONG_SHARD))
          .map((e) => ({
            id: e.id,
            hashKey: hashKeyOf({ partitionKey: e.record.partitionKey!, explicitHashKey: e.record.explicitHashKey }),
            state: recordsInFlight.has(e.id) ? 'in-flight' : e.calls > 0 ? 'retry' : 'queued',
          })),
    });
  }

  // ---- the plan ----------------------------------------------------------------------------------
  type Op = { step: number; kind: 'record' } | { step: number; kind: 'flush'; awaited: boolean };
  const plan: Op[] = [];
  let step = 0;
  for (let placed = 0; placed < config.records; step++) {
    const count = Math.min(config.records - placed, randomInt(r, 0, config.perStep));
    for (let i = 0; i < count; i++) plan.push({ step, kind: 'record' });
    placed += count;
  }
  const lastStep = step;
  for (let i = 0; i < config.flushes; i++) {
    const at = randomInt(r, 1, lastStep);
    const index = plan.findIndex((op) => op.step > at);
    plan.splice(index < 0 ? plan.length : index, 0, { step: at, kind: 'flush', awaited: r() < 0.5 });
  }

  start = Date.now();
  let currentStep = -1;
  let stepWaiters: (() => void)[] = [];
  const nextStep = (): Promise<void> => new Promise((resolve) => stepWaiters.push(resolve));

  // Warm-up: one record stored with the fake answering everything, so that the shard map is known.
  if (config.warmUp) {
    const warm = makeRecord(0, false, false);
    warm.record.partitionKey = 'warm-up';
    delete warm.record.explicitHashKey;
    warm.api = 'put';
    submit(warm);
    for (let i = 0; i < 100_000 && producer.stats().shards === undefined; i++) await new Promise((resolve) => setImmediate(resolve));
    for (let i = 0; i < 1_000 && warm.outcome === 'pending'; i++) {
      await quiesce();
      await vi.advanceTimersByTimeAsync(STEP_MS);
    }
    await quiesce();
    if (warm.outcome !== 'stored') violate(`warm-up record not stored: ${warm.outcome}`);
  }
  faultsOn = true;
  start = Date.now();

  interface FlushCheck {
    step: number;
    pendingAtCall: number;
    ids: number[];
    result?: { stored: number; failed: number };
  }
  const flushes: FlushCheck[] = [];
  const watchFlush = (promise: Promise<{ stored: number; failed: number }>, check: FlushCheck, what: string): Promise<void> =>
    promise.then(async (result) => {
      check.result = result;
      await microtasks();
      const unsettled = check.ids.filter((id) => !settledPut(tracked[id]!));
      if (unsettled.length > 0) violate(`${what} at step ${check.step} resolved before records put before it settled: ${unsettled.slice(0, 5).join(', ')}`);
      if (result.stored + result.failed !== check.pendingAtCall) {
        violate(`${what} at step ${check.step}: stored ${result.stored} + failed ${result.failed} != ${check.pendingAtCall} records pending at the call`);
      }
    });
  const startFlush = (what: 'flush()' | 'close()'): { check: FlushCheck; promise: Promise<{ stored: number; failed: number }> } => {
    const stats = producer.stats();
    const check: FlushCheck = {
      step: currentStep,
      pendingAtCall: stats.bufferedRecords + stats.waitingRecords,
      ids: tracked.filter((entry) => entry.api === 'put' && !settledPut(entry) && !entry.afterClose).map((entry) => entry.id),
    };
    flushes.push(check);
    flushing++;
    const promise = what === 'flush()' ? producer.flush() : producer.close();
    // Once close() resolves the shard map is stopped: no listing is owed after that.
    if (what === 'close()') void promise.then(() => (closing = true));
    if (what === 'flush()') void promise.then(() => flushing--);
    return { check, promise };
  };

  let closed = false;
  const feeding = (async () => {
    let id = tracked.length;
    for (const op of plan) {
      while (currentStep < op.step) await nextStep();
      if (op.kind === 'flush') {
        const { check, promise } = startFlush('flush()');
        const watched = watchFlush(promise, check, 'flush()');
        if (op.awaited) await watched;
        continue;
      }
      if (config.feeder === 'capacity') {
        await producer.waitForCapacity();
        if (!producer.hasCapacity) violate(`waitForCapacity() resolved, yet hasCapacity is false: ${JSON.stringify(producer.stats())}`);
      }
      submit(makeRecord(id++));
    }
    while (currentStep < lastStep) await nextStep();
    const { check, promise } = startFlush('close()');
    if (!producer.isClosed) violate('isClosed is false after close()');
    // After close(): put() rejects and send() fails, with reason closed.
    const late = makeRecord(id++, true);
    late.api = 'put';
    submit(late);
    const lateSend = makeRecord(id++, true);
    lateSend.api = 'send';
    submit(lateSend);
    await microtasks();
    if (late.outcome !== 'failed' || !isKinesisProducerError(late.rejection) || late.rejection.reason !== 'closed') {
      violate(`put() after close(): ${late.outcome} ${String(late.rejection)}`);
    }
    if (lateSend.failures.length !== 1 || lateSend.failures[0]!.reason !== 'closed') violate(`send() after close(): onFailure ${lateSend.failures.map((e) => e.reason).join(', ')}`);
    await watchFlush(promise, check, 'close()');
    const stats = producer.stats();
    if (stats.bufferedRecords !== 0 || stats.waitingRecords !== 0 || stats.inFlightRequests !== 0) {
      violate(`after close(): ${JSON.stringify(stats)}`);
    }
    closed = true;
  })();
  feeding.catch((error: unknown) => violate(`feeder threw: ${String(error)}`));

  // ---- the clock ---------------------------------------------------------------------------------
  let steps = 0;
  for (; steps < MAX_STEPS && !closed; steps++) {
    currentStep = steps;
    const waiters = stepWaiters;
    stepWaiters = [];
    for (const wake of waiters) wake();
    await quiesce();
    sample('step');
    if (faultsOn) resharder?.step();
    if (flushing > 0) urgentSeconds.add(Math.floor((Date.now() - start) / 1000));
    if (closed) break;
    await vi.advanceTimersByTimeAsync(STEP_MS);
  }
  if (!closed) violate(`not closed after ${MAX_STEPS} steps (${(MAX_STEPS * STEP_MS) / 1000} s of fake time): ${JSON.stringify(producer.stats())}`);
  await quiesce();
  // close() leaves nothing behind: a ListShards still in progress (in flight, or asleep in the
  // client's retry backoff) is aborted with its timers (see the last test of this file).
  const listingAfterClose = closed && listingFetches > 0 && listingTimers() > 0;
  resharder?.checkOwed(Date.now());
  if (closed && vi.getTimerCount() !== 0) violate(`${vi.getTimerCount()} timers pending after close()`);
  vi.useRealTimers();

  // ---- what was stored ---------------------------------------------------------------------------
  const occurrences = new Map<number, Occurrence[]>();
  kinesis.stored.forEach((stored, order) => {
    const { users, aggregated } = usersOf(stored);
    users.forEach((user, index) => {
      const list = occurrences.get(user.id) ?? [];
      occurrences.set(user.id, list);
      list.push({
        sequenceNumber: stored.sequenceNumber,
        sub: aggregated ? index : undefined,
        shardId: stored.shardId,
        partitionKey: user.partitionKey,
        explicitHashKey: user.explicitHashKey,
        text: user.text,
        order,
        valid: resharder === undefined || resharder.shardAtStored(order, hashKeyOf(user)) === stored.shardId,
      });
    });
  });

  const stats = producer.stats();
  const failedByReason: Record<string, number> = {};
  let storedCount = 0;
  const refusedReasons = new Set(['buffer-full', 'closed', 'too-large', 'invalid']);
  for (const entry of tracked) {
    const where = `record ${entry.id} (${entry.api}${entry.afterClose ? ', after close' : ''})`;
    if (entry.failures.length > 1) violate(`${where}: onFailure called ${entry.failures.length} times`);
    const failure = entry.failures[0];
    if (entry.api === 'put' && closed) {
      if (entry.outcome === 'pending') violate(`${where}: put() never settled`);
      if (entry.outcome === 'stored' && failure !== undefined) violate(`${where}: stored, yet onFailure (${failure.reason})`);
      if (entry.outcome === 'failed' && entry.rejection !== failure) violate(`${where}: put() rejected with another error than onFailure's: ${String(entry.rejection)}`);
    }
    const all = occurrences.get(entry.id) ?? [];
    // Where a reader finds it: a user record of an aggregate cut with a stale shard map may have
    // landed on a shard that does not hold its hash key, where the KCL drops it.
    const list = all.filter((o) => o.valid);
    if (failure === undefined) {
      storedCount++;
      if (list.length === 0) violate(`${where}: settled stored but not in the fake${all.length > 0 ? ` (only on ${all[0]!.shardId}, which does not hold its hash key)` : ''}`);
      if (entry.result !== undefined) {
        const result = entry.result;
        const match = list.find((o) => o.sequenceNumber === result.sequenceNumber && o.sub === result.subSequenceNumber);
        if (match === undefined) violate(`${where}: reported ${result.shardId}/${result.sequenceNumber}/${result.subSequenceNumber}, which the fake did not store it as`);
        else if (match.shardId !== result.shardId) violate(`${where}: reported shard ${result.shardId}, stored on ${match.shardId}`);
        if (result.attempts < 1 || result.attempts > entry.calls) violate(`${where}: attempts ${result.attempts}, the fake saw it in ${entry.calls} calls`);
      }
    } else {
      failedByReason[failure.reason] = (failedByReason[failure.reason] ?? 0) + 1;
      if (!isKinesisProducerError(failure)) violate(`${where}: onFailure with a non-producer error`);
      if (failure.record !== entry.record) violate(`${where}: its error's record is not the record put`);
      switch (failure.reason) {
        case 'buffer-full':
          if (config.whenFull !== 'reject') violate(`${where}: buffer-full with whenFull 'wait'`);
          if (entry.calls > 0 || failure.attempts !== 0) violate(`${where}: buffer-full yet sent`);
          break;
        case 'closed':
          if (!entry.afterClose) violate(`${where}: closed, but put before close()`);
          if (entry.calls > 0) violate(`${where}: closed yet sent`);
          break;
        case 'too-large':
        case 'invalid':
          if (entry.refusedAs !== failure.reason) violate(`${where}: refused as ${failure.reason}: ${failure.message}`);
          if (entry.calls > 0 || failure.attempts !== 0) violate(`${where}: refused as ${failure.reason}, yet sent`);
          break;
        case 'expired':
          if (!Number.isFinite(config.recordTtlMs)) violate(`${where}: expired with recordTtlMs Infinity`);
          if (failure.code !== entry.lastCode) violate(`${where}: expired with code ${failure.code}, the fake last answered ${entry.lastCode}`);
          break;
        case 'retries-exhausted':
          if (!Number.isFinite(config.maxAttempts)) violate(`${where}: retries-exhausted with maxAttempts Infinity`);
          if (failure.attempts !== config.maxAttempts) violate(`${where}: retries-exhausted after ${failure.attempts} attempts`);
          if (failure.code !== entry.lastCode) violate(`${where}: retries-exhausted with code ${failure.code}, the fake last answered ${entry.lastCode}`);
          break;
        case 'rejected':
          if (failure.code !== FATAL || entry.lastAnswer !== FATAL) violate(`${where}: rejected with code ${failure.code}, the fake last answered ${entry.lastAnswer}`);
          if (failure.attempts < 1) violate(`${where}: rejected after ${failure.attempts} attempts`);
          break;
        default:
          violate(`${where}: failed with reason ${failure.reason}: ${failure.message}`);
      }
      if (entry.afterClose && failure.reason !== 'closed') violate(`${where}: put after close, failed ${failure.reason}`);
      if (entry.refusedAs !== undefined && failure.reason !== entry.refusedAs) violate(`${where}: should be refused as ${entry.refusedAs}, failed ${failure.reason}`);
      if (refusedReasons.has(failure.reason) && sentIds.has(entry.id)) violate(`${where}: refused (${failure.reason}) but sent`);
    }
    if (entry.afterClose && failure === undefined) violate(`${where}: put after close(), not refused`);
    if (entry.refusedAs !== undefined && failure === undefined) violate(`${where}: ${entry.refusedAs}, yet not refused`);
    // Stored once, unless a request of it had an unknown outcome (or, resharding, its aggregate
    // landed where the producer could not tell it belonged, and the producer sent it again).
    if (list.length > 1 && !entry.unknownOutcome && !entry.unverified) violate(`${where}: stored ${list.length} times, with no unknown outcome`);
    if (f.unknownOutcome === 0 && list.length > 1 && !entry.unverified) violate(`${where}: stored twice in a case without unknown outcomes`);
    for (const occurrence of all) {
      if (occurrence.text !== entry.text) violate(`${where}: stored data differs`);
      const hashKey = occurrence.explicitHashKey !== undefined ? BigInt(occurrence.explicitHashKey) : md5HashKey(occurrence.partitionKey);
      if (resharder === undefined) {
        if (shardOfHash(kinesis.shards, hashKey) !== occurrence.shardId) violate(`${where}: stored on ${occurrence.shardId}, not its hash key's shard`);
      } else if (occurrence.sub === undefined && !occurrence.valid) {
        // A plain record goes where its own hash key is (the fake's own bookkeeping).
        violate(`${where}: stored plain on ${occurrence.shardId}, not the shard that held its hash key then`);
      }
      if (entry.record.partitionKey !== undefined && occurrence.partitionKey !== entry.record.partitionKey) violate(`${where}: stored with key ${occurrence.partitionKey}`);
      if (entry.record.explicitHashKey !== occurrence.explicitHashKey) violate(`${where}: stored with explicit hash key ${occurrence.explicitHashKey}`);
    }
  }
  if (closed) {
    if (stats.stored + stats.failed !== tracked.length) violate(`stats: stored ${stats.stored} + failed ${stats.failed} != ${tracked.length} records`);
    if (stats.stored !== storedCount) violate(`stats: stored ${stats.stored}, the test counts ${storedCount}`);
    for (const [reason, count] of Object.entries(stats.failedByReason)) {
      if ((failedByReason[reason] ?? 0) !== count) violate(`stats: failedByReason.${reason} ${count}, the test counts ${failedByReason[reason] ?? 0}`);
    }
    const refused = [...refusedReasons].reduce((sum, reason) => sum + (failedByReason[reason] ?? 0), 0);
    if (stats.accepted !== tracked.length - refused) violate(`stats: accepted ${stats.accepted} != ${tracked.length} records - ${refused} refused`);
    if (kinesis.calls.length !== stats.requests + clientRetries) violate(`the fake saw ${kinesis.calls.length} calls: ${stats.requests} requests + ${clientRetries} client retries expected`);
  }

  // Per-key ordering: each key's stored records (first storage) in put order, and the reported
  // sequence numbers of its put() records increasing.
  if (config.perKey) {
    const byKey = new Map<string, { id: number; order: number; seq: bigint; sub: number }[]>();
    for (const entry of tracked) {
      if (entry.failures.length > 0) continue;
      const list = (occurrences.get(entry.id) ?? []).filter((o) => o.valid);
      if (list.length === 0) continue;
      const first = list.reduce((a, b) => (a.order <= b.order ? a : b));
      const key = first.partitionKey;
      const items = byKey.get(key) ?? [];
      byKey.set(key, items);
      items.push({
        id: entry.id,
        order: first.order,
        seq: entry.result ? BigInt(entry.result.sequenceNumber) : -1n,
        sub: entry.result?.subSequenceNumber ?? 0,
      });
    }
    for (const [key, items] of byKey) {
      const byStorage = [...items].sort((a, b) => a.order - b.order || (a.id - b.id));
      // Within one aggregate, order is by subsequence: compare ids along storage order.
      for (let i = 1; i < byStorage.length; i++) {
        if (byStorage[i]!.id < byStorage[i - 1]!.id && byStorage[i]!.order !== byStorage[i - 1]!.order) {
          violate(`per-key: key ${key} stored ${byStorage[i - 1]!.id} before ${byStorage[i]!.id}`);
          break;
        }
      }
      const reported = items.filter((item) => item.seq >= 0n);
      for (let i = 1; i < reported.length; i++) {
        const [a, b] = [reported[i - 1]!, reported[i]!];
        if (!(b.seq > a.seq || (b.seq === a.seq && b.sub > a.sub))) {
          violate(`per-key: key ${key}: record ${b.id} reported at ${b.seq}/${b.sub}, not after record ${a.id} at ${a.seq}/${a.sub}`);
          break;
        }
      }
    }
  }

  if (resharder !== undefined) {
    const { report } = resharder;
    for (const entry of tracked) {
      const first = (occurrences.get(entry.id) ?? []).find((o) => o.valid);
      if (first !== undefined && entry.shardId !== undefined && first.shardId !== entry.shardId) report.moved++;
    }
    // A throttled parent holds no record bound for its children once the producer has listed them:
    // those records move to the children's buckets, whose rate limiters are new.
    const listedAt = resharder.childrenListedAt();
    if (config.reshard!.throttledParent && listedAt !== undefined) {
      const parent = kinesis.shards[0]!;
      let drain = 0;
      let slowest: number | undefined;
      for (const entry of tracked) {
        if (entry.api !== 'put' || entry.putAt < 0 || entry.putAt > listedAt || entry.settledAt === undefined || entry.record.partitionKey === undefined) continue;
        const hashKey = hashKeyOf({ partitionKey: entry.record.partitionKey, explicitHashKey: entry.record.explicitHashKey });
        if (hashKey < startOf(parent) || hashKey > endOf(parent)) continue;
        if (entry.settledAt - listedAt > drain) [drain, slowest] = [entry.settledAt - listedAt, entry.id];
      }
      report.drainMs = drain;
      if (drain > THROTTLED_PARENT_DRAIN_MS) {
        violate(`throttled parent: record ${slowest} of its range settled ${drain} ms after the producer listed its children (bound ${THROTTLED_PARENT_DRAIN_MS} ms)`);
      }
    }
  }

  // Request rate: no tight loop.
  const seconds = callsPerSecond.map((count) => count ?? 0);
  const maxCallsPerSecond = Math.max(0, ...seconds);
  let callBound = 0;
  seconds.forEach((count, second) => {
    const bound = requestBound(config, kinesis.shards.length, putsPerSecond[second] ?? 0);
    callBound = Math.max(callBound, bound);
    if (count > bound) violate(`request rate: ${count} calls in fake second ${second} (per second: ${seconds.join(' ')}), bound ${bound}`);
  });
  // An outage: every request fails whole, so every one waits for the stream's backoff gate, which
  // grows exponentially (full jitter) up to maxDelayMs. Gate openings in D ms: about
  // log2(2 min(D, max) / base) while growing, 2 D / max once capped, plus a margin; each lets
  // maxInFlight requests go, each tried clientRetry.maxAttempts times.
  if (f.outage !== undefined) {
    const { forMs } = f.outage;
    const base = Math.max(1, Math.min(config.backoff.baseDelayMs, config.backoff.throttlingBaseDelayMs));
    const max = config.backoff.maxDelayMs;
    const openings = Math.ceil(Math.log2((2 * Math.min(forMs, max)) / base)) + Math.ceil((2 * forMs) / max) + 6;
    const bound = config.maxInFlight * config.clientRetry.maxAttempts * openings;
    if (REPORT) console.log(`outage seed ${config.seed}: ${outageCalls} calls in ${forMs} ms, bound ${bound}`);
    if (outageCalls > bound) violate(`outage: ${outageCalls} calls in its ${forMs} ms, bound ${bound} (no tight loop: the backoff grows)`);
  }
  const entries = kinesis.calls.reduce((sum, call) => sum + call.entries.length, 0);
  // The other shards' records as they arrived: per step with any, and over the linger time.
  const fastPuts = tracked.filter((entry) => entry.putStep >= 0 && !entry.afterClose && entry.shardId !== undefined && entry.shardId !== shardIds[0] && entry.id > 0);
  const arrivalSteps = new Set(fastPuts.map((entry) => entry.putStep));
  const perArrival = fastPuts.length / Math.max(1, arrivalSteps.size);
  const span = fastPuts.length > 0 ? (Math.max(...arrivalSteps) - Math.min(...arrivalSteps) + 1) * STEP_MS : 0;
  const arrivalsPerLinger = (arrivalSteps.size * Math.max(config.lingerMs, STEP_MS)) / Math.max(1, span);
  const fastEntriesPerCall = storm.fastCalls > 0 ? storm.fastEntries / storm.fastCalls : undefined;
  // A storm: the other shards' new records go out in batches (a request per linger time per
  // shard; the slow shard's about ten a second, a tenth of a second's allowance each), not one
  // request per record as its backlog frees room. Not counted: the first two seconds (the slow
  // shard's limiter starts at its 1,000/s ceiling and halves at most every 250 ms down to the
  // limit) and seconds with a flush() or close() pending (those send without lingering). Tried
  // against the code before 8ceb4e3 (in a copy of the tree): 6 of the 9 storm seeds below fail,
  // with 26-36 such requests in a second; the current code makes at most 16 here (at most 20 in
  // the 316 storm cases among seeds 1-1000).
  let maxFresh = 0;
  if (config.storm) {
    const bound = (config.shards - 1) * Math.ceil(1000 / config.lingerMs) + 15;
    for (let second = 2; second < freshCallsPerSecond.length; second++) {
      if (urgentSeconds.has(second)) continue;
      const fresh = freshCallsPerSecond[second] ?? 0;
      maxFresh = Math.max(maxFresh, fresh);
      if (fresh > bound) {
        violate(`throttled shard: ${fresh} requests with new records in fake second ${second}, bound ${bound} (per second: ${freshCallsPerSecond.map((c) => c ?? 0).join(' ')})`);
        break;
      }
    }
    if (storm.fastEntries >= 100 && fastEntriesPerCall! < 2) {
      violate(`throttled shard: the other shards' new records went ${fastEntriesPerCall!.toFixed(2)} per request (${storm.fastEntries} in ${storm.fastCalls} calls)`);
    }
  }
  if (REPORT && config.storm) {
    console.log(
      `storm seed ${config.seed}: fresh fast per call ${fastEntriesPerCall?.toFixed(2)} (${storm.fastEntries} in ${storm.fastCalls}), ` +
        `max fresh calls/s ${maxFresh}, bound ${(config.shards - 1) * Math.ceil(1000 / config.lingerMs) + 15}, per second ${freshCallsPerSecond.map((c) => c ?? 0).join(' ')}, urgent ${[...urgentSeconds].join(',')}, faults ${faultCallsPerSecond.map((c) => c ?? 0).join(' ')}`,
    );
  }
  return {
    violations,
    report: {
      steps,
      calls: kinesis.calls.length,
      maxCallsPerSecond,
      callBound,
      entriesPerCall: entries / Math.max(1, kinesis.calls.length),
      fastEntriesPerCall,
      stored: stats.stored,
      failed: failedByReason,
      listingAfterClose,
      reshard: resharder?.report,
      ms: performance.now() - began,
    },
  };
}

/**
 * The most PutRecords calls one fake second may see, a sanity bound against a tight loop (the
 * outage and storm checks are the sharp ones). Per bucket (a shard, or the stream) a lingering
 * request goes at most every max(lingerMs, step) ms; a full buffer, flush() and close() send
 * without lingering, at most a request per record put; retries wait for a backoff, and
 * maxInFlight requests may chain within a step; the client repeats a failed call up to its
 * maxAttempts.
 */
function requestBound(config: CaseConfig, shards: number, recordsPut: number): number {
  // Every shard there was (a closed one's bucket sends until the producer lists its children), and the stream.
  const buckets = shards + 1;
  const perBucket = Math.ceil(1000 / Math.max(config.lingerMs, STEP_MS));
  return config.clientRetry.maxAttempts * (buckets * perBucket + 10 * config.maxInFlight + recordsPut);
}

// ---- the cases -----------------------------------------------------------------------------------

// PRODUCER_INVARIANTS_SEEDS=first:count runs other seeds (exploration); the default list is the test.
const [firstSeed, seedCount] = (process.env.PRODUCER_INVARIANTS_SEEDS ?? '').split(':').map(Number);
const SEEDS =
  firstSeed !== undefined && seedCount !== undefined && Number.isInteger(firstSeed) && Number.isInteger(seedCount)
    ? Array.from({ length: seedCount }, (_, i) => firstSeed + i)
    : Array.from({ length: 32 }, (_, i) => 1_000 + i * 37);

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('producer invariants across mixed configurations (seeded)', () => {
  it.each(SEEDS.map((seed) => [seed] as const))('seed %i', async (seed) => {
    const config = { ...makeCase(seed), ...(process.env.PRODUCER_INVARIANTS_OVERRIDE ? (JSON.parse(process.env.PRODUCER_INVARIANTS_OVERRIDE) as Partial<CaseConfig>) : {}) };
    const { violations, report } = await runCase(config);
    if (REPORT) console.log(`${describeCase(config)}\n  -> ${JSON.stringify(report)}`);
    expect(violations, describeCase(config)).toEqual([]);
  });
});

// Resharding cases: PRODUCER_INVARIANTS_SEEDS runs the same seeds here (vitest -t resharding for these alone).
const RESHARD_SEEDS = firstSeed !== undefined && seedCount !== undefined && Number.isInteger(firstSeed) && Number.isInteger(seedCount) ? SEEDS : Array.from({ length: 12 }, (_, i) => 5_000 + i * 41);
/** What the resharding cases exercised, summed (checked once the default seeds all ran). */
const reshardCoverage = { cases: 0, throttledParent: 0, reports: [] as ReshardReport[] };

describe('producer invariants while the stream is resharded (seeded)', () => {
  it.each(RESHARD_SEEDS.map((seed) => [seed] as const))('resharding seed %i', async (seed) => {
    const config = { ...reshardCase(seed), ...(process.env.PRODUCER_INVARIANTS_OVERRIDE ? (JSON.parse(process.env.PRODUCER_INVARIANTS_OVERRIDE) as Partial<CaseConfig>) : {}) };
    const { violations, report } = await runCase(config);
    if (REPORT) console.log(`${describeCase(config)}\n  -> ${JSON.stringify(report)}`);
    reshardCoverage.cases++;
    if (config.reshard?.throttledParent) reshardCoverage.throttledParent++;
    if (report.reshard !== undefined) reshardCoverage.reports.push(report.reshard);
    expect(violations, describeCase(config)).toEqual([]);
  });

  it('exercises splits and merges with records in flight, waiting for a retry and queued, and stale, failing and late listings', () => {
    if (reshardCoverage.cases !== RESHARD_SEEDS.length || RESHARD_SEEDS === SEEDS) return; // a filtered or exploratory run
    const sum = (field: keyof ReshardReport): number => reshardCoverage.reports.reduce((total, report) => total + Number(report[field] ?? 0), 0);
    const byTrigger = (trigger: ReshardTrigger): number => reshardCoverage.reports.reduce((total, report) => total + report.byTrigger[trigger], 0);
    const exercised = {
      reshards: sum('reshards'),
      listings: sum('listings'),
      staleListings: sum('staleListings'),
      listingFailures: sum('listingFailures'),
      revealing: sum('revealing'),
      relists: sum('relists'),
      inFlightAtReshard: sum('inFlightAtReshard'),
      retryAtReshard: sum('retryAtReshard'),
      queuedAtReshard: sum('queuedAtReshard'),
      moved: sum('moved'),
      wrongShard: sum('wrongShard'),
      reshardOnTime: byTrigger('time'),
      reshardDuringListing: byTrigger('listing'),
      reshardDuringCall: byTrigger('call'),
      reshardDuringRetry: byTrigger('retry'),
      throttledParent: reshardCoverage.throttledParent,
    };
    if (REPORT) console.log(JSON.stringify(exercised));
    // A default list that stopped reaching one of these would pass while proving less: each must
    // happen at least once across the seeds (with the current list: 53 reshards, 1,188 revealing
    // entries, 53 wrong-shard user records, each trigger at least once).
    const missing = Object.entries(exercised).filter(([, count]) => count === 0).map(([name]) => name);
    expect(missing, JSON.stringify(exercised)).toEqual([]);
  });
});

/**
 * Waits, in real time, until the first ListShards reached fetch: its schemas load through a dynamic
 * import, which fake time does not move, so on a loaded machine the listing would otherwise start
 * late in fake time (and the cases below would time it wrongly).
 */
async function listingStarted(listings: () => number): Promise<void> {
  for (let i = 0; i < 100_000 && listings() === 0; i++) await new Promise((resolve) => setImmediate(resolve));
  expect(listings()).toBe(1);
}

describe('producer close() and flush() with a shard listing in progress', () => {
  // Found by the cases above with a slow or failing ListShards: close() and flush() resolved once
  // every record settled, while the shard map's ListShards could still be in flight or asleep in
  // the client's retry backoff, so the client's timeout timer (timeoutMs, 10 s by default) or its
  // backoff timer outlived them: a Node process that closed its producer waited for it, and a
  // Worker's ctx.waitUntil(producer.flush()) left a request behind. Now close() aborts the listing
  // (no record is left to use it) and flush() waits for it (a long-lived producer keeps the map).
  it('leaves no timer behind when ListShards has not answered by then', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let listings = 0;
    let kinesis!: FakeKinesis;
    kinesis = createFakeKinesis({
      client: {
        // ListShards never answers (until the client's timeout aborts it); PutRecords as usual.
        fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
          if (!new Headers(init?.headers).get('x-amz-target')?.endsWith('.ListShards')) return kinesis.fetch(input, init);
          listings++;
          return new Promise<Response>((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)));
        },
      },
    });
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0 });
    const result = producer.put({ partitionKey: 'k', data: 'x' });
    await listingStarted(() => listings);
    let closed = false;
    // The record waits up to 1 s for the map, then goes without it and is stored.
    for (let i = 0; i < 300 && !closed; i++) {
      await settle(5);
      if (i === 150) void producer.close().then(() => (closed = true));
      await vi.advanceTimersByTimeAsync(10);
    }
    await settle(5);
    await expect(result).resolves.toMatchObject({ shardId: 'shardId-000000000000' });
    expect(closed).toBe(true);
    expect(listings).toBe(1);
    // No timer left: the client's 10 s timeout timer of the ListShards went with the abort.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('flush() resolves once a listing in progress has ended, and the map is kept for later records', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const start = Date.now();
    let listings = 0;
    let kinesis!: FakeKinesis;
    kinesis = createFakeKinesis({
      shards: 2,
      client: {
        // ListShards answers after 3 s of fake time; PutRecords as usual.
        fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
          if (new Headers(init?.headers).get('x-amz-target')?.endsWith('.ListShards')) {
            listings++;
            await new Promise((resolve) => setTimeout(resolve, 3_000));
          }
          return kinesis.fetch(input, init);
        },
      },
    });
    const producer = createProducer(kinesis.client, { streamName: 'clicks', lingerMs: 0 });
    const result = producer.put({ partitionKey: 'k', data: 'x' });
    await listingStarted(() => listings);
    let flushedAt: number | undefined;
    for (let i = 0; i < 800 && flushedAt === undefined; i++) {
      await settle(5);
      // After the record went without the map (1 s), before the listing answers (3 s).
      if (i === 150) void producer.flush().then(() => (flushedAt = Date.now() - start));
      await vi.advanceTimersByTimeAsync(10);
    }
    await expect(result).resolves.toMatchObject({ sequenceNumber: expect.any(String) });
    expect(flushedAt).toBeGreaterThanOrEqual(3_000);
    expect(producer.stats().shards).toBe(2);
    expect(vi.getTimerCount()).toBe(0);
  });
});

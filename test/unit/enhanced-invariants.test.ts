// Seeded, model-based invariants of the enhanced fan-out readers, readShardEnhanced and
// readStreamEnhanced (which runs readShardEnhancedBatches under src/consumer/read-stream.ts), against
// the model of Kinesis in enhanced-fake-kinesis.ts, in fake time. Each seed picks a stream (1-3
// shards; splits and merges before and while reading, over several generations), records arriving
// before and while reading (plain, KPL aggregates, aggregates with a bad digest, explicit hash
// keys), a start (TRIM_HORIZON, LATEST, AT_TIMESTAMP, and for one shard AT/AFTER a sequence
// number, also inside an aggregate), checkpoints (none, 'batch', 'manual') with a stop and a
// resume, a slow or quick consumer, a checkpoint store with latency, the service's habits
// (subscription lifetime, ResourceInUseException after a recent call, one call per second, event
// sizes, heartbeats, continuations that move on without records, initial-response or not,
// ListShards page size) and its faults (network errors, 500s, throttling, answers that never come,
// connections cut between or inside messages, `exception` and `error` messages, bad CRCs, stalls
// shorter and longer than the idle timeout, ListShards failures). Every case checks:
//
// - completeness: every record the start promises is yielded (union of the runs), none it
//   excludes (before AT_TIMESTAMP, before a LATEST start less its documented 5 s margin, at or
//   before the start sequence number, in a shard closed before a LATEST start);
// - exactly once within a run: renewals from ContinuationSequenceNumber neither skip nor repeat;
// - per shard, (sequence number, subsequence number) strictly increasing within a run, compared
//   as bigint; records carry their shard, key, data and arrival time;
// - KPL aggregates split completely, in order; a corrupt one (or any, with deaggregate: false)
//   delivered whole;
// - parents before children: when a child's record is yielded, every promised record of each of
//   its parents (both, after a merge) has been yielded, in this run or an earlier one;
// - checkpoints: each position the reader stores is a record it yielded, stored in order;
//   SHARD_END only once the whole shard was yielded; a resumed run yields no record at or before
//   the stored checkpoint (nothing of a SHARD_END shard) and every promised one after it;
// - stopping (break, abort, the end of a shard): the iterator settles as documented, and leaves no
//   timer, no open event stream body and no fetch in progress; no other error ever ends a run
//   (every injected fault is retryable: a corrupt message means a renewal, not a skip);
// - the readers never send the fake a position it refuses (InvalidArgumentException), and never
//   subscribe to a shard in a tight loop.
//
// Exploration: ENHANCED_INVARIANTS_SEEDS=first:count runs other seeds, ENHANCED_INVARIANTS_REPORT=1
// prints each case and its figures, ENHANCED_INVARIANTS_TRACE=1 prints a failing case's
// subscriptions and shards, ENHANCED_INVARIANTS_OVERRIDE='{...}' overrides fields of every
// case (JSON).
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createKinesisClient, type KinesisClient } from '../../src/client.ts';
import { checkpointRecord, createMemoryCheckpointStore, SHARD_END, startPositionAfter, type Checkpoint, type CheckpointStore } from '../../src/consumer/checkpoints.ts';
import type { ShardEnd } from '../../src/consumer/read-shard.ts';
import type { ConsumerRecord } from '../../src/consumer/record.ts';
import type { StartPosition } from '../../src/consumer/position.ts';
import { readShardEnhanced, readShardEnhancedBatches } from '../../src/event-stream/read-shard-enhanced.ts';
import { readStreamEnhanced } from '../../src/event-stream/read-stream-enhanced.ts';
import { subscribeToShard } from '../../src/event-stream/subscribe.ts';
import { listShards } from '../../src/operations/list-shards.ts';
import { childShard, eventMessage, eventStreamResponse, streamingFetch, wireRecord } from '../support/event-stream-fake.ts';
import { randomInt, seededRandom } from '../support/seeded-random.ts';
import {
  createEnhancedFake,
  NO_FAULTS,
  type EnhancedFake,
  type ExpectedItem,
  type SubscribeFaults,
  type SubscriptionModel,
  type WorldRecord,
} from './enhanced-fake-kinesis.ts';

const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const STREAM = 'clicks';
const CONSUMER_ARN = 'arn:aws:kinesis:us-east-1:123456789012:stream/clicks/consumer/dashboard:1700000000';
const REPORT = process.env.ENHANCED_INVARIANTS_REPORT === '1';
const TRACE = process.env.ENHANCED_INVARIANTS_TRACE === '1';
/** The documented margin of a LATEST start renewed as AT_TIMESTAMP (read-shard-enhanced.ts). */
const LATEST_MARGIN_MS = 5_000;
/** Fake time a case may take after the last record arrived. */
const DRAIN_MS = 240_000;
/** Timers one run may fire: a case that needs more is stuck in a loop. */
const MAX_TIMERS = 60_000;
/** The shard readShardEnhanced cases read. */
const READ_SHARD = 'shardId-000000000000';

// ---- configurations ------------------------------------------------------------------------------

type From = 'TRIM_HORIZON' | 'LATEST' | 'AT_TIMESTAMP' | 'AT_SEQUENCE_NUMBER' | 'AFTER_SEQUENCE_NUMBER' | 'AFTER_SUB_SEQUENCE_NUMBER';

interface Phase {
  records: number;
  reshards: number;
  ms: number;
}

interface CaseConfig {
  seed: number;
  /** readStreamEnhanced, or readShardEnhanced of shardId-000000000000. */
  mode: 'stream' | 'shard';
  shards: number;
  /** Before the reader starts, and while it reads. */
  history: Phase;
  live: Phase;
  /** Share of records that are KPL aggregates (2..maxUsers user records); of those, share with a bad digest. */
  aggregateShare: number;
  maxUsers: number;
  corruptShare: number;
  explicitHashShare: number;
  keys: number;
  /** Several records at one instant. */
  burst: number;
  from: From;
  deaggregate: boolean;
  checkpointing: 'none' | 'batch' | 'manual';
  /**
   * Two runs: the first stopped (after `stopAfter` records: break, or abort inside the loop and ask
   * for the next one; or abort at `abortAtMs`), the second resumed from the checkpoints.
   */
  resume: { stopAfter: number; abortAtMs: number | undefined; inLoop: boolean; gapMs: number } | undefined;
  /** How the last run stops once every record is in: abort, or break at a record put for it. */
  finalStop: 'abort' | 'break' | 'abort-in-loop';
  /** Manual checkpointing: chance per record. */
  manualShare: number;
  /** Chance per record that the consumer takes a while over it, and how long. */
  slowShare: number;
  slowMs: number;
  storeDelayMs: number;
  reader: { throttleDelayMs: number; maxThrottleDelayMs: number; maxConsecutiveErrors: number; idleTimeoutMs: number; shardRefreshIntervalMs: number };
  client: { maxAttempts: number; timeoutMs: number; baseDelayMs: number; throttlingBaseDelayMs: number };
  listPageSize: number;
  listFailure: number;
  model: SubscriptionModel;
  faults: SubscribeFaults;
}

function pick<T>(random: () => number, values: readonly T[]): T {
  return values[Math.floor(random() * values.length)]!;
}

function makeCase(seed: number): CaseConfig {
  const r = seededRandom(seed);
  const mode = r() < 0.7 ? 'stream' : 'shard';
  const idleTimeoutMs = pick(r, [3_000, 10_000, 30_000]);
  const heavy = r() < 0.3;
  const none = !heavy && r() < 0.2;
  const scale = heavy ? 2 : 1;
  const faults: SubscribeFaults = none
    ? { ...NO_FAULTS }
    : {
        // Failures before the answer count toward maxConsecutiveErrors (throttling in between does
        // not reset it): with maxAttempts 1, ten in a row must stay unlikely over a long case.
        network: 0.03 * scale,
        http500: 0.03 * scale,
        throttle: 0.03 * scale,
        noAnswer: r() < 0.3 ? 0.02 * scale : 0,
        // Per event: a subscription of 1-record events with these ends every 30 events or so.
        cutBetween: 0.01 * scale,
        cutMid: 0.01 * scale,
        exception: 0.005 * scale,
        error: 0.003 * scale,
        badCrc: 0.02 * scale,
        stall: r() < 0.4 ? 0.005 * scale : 0,
        // Shorter than the idle timeout (a slow event) or longer (the reader gives the connection up).
        stallMs: r() < 0.5 ? Math.floor(idleTimeoutMs * 0.6) : idleTimeoutMs + pick(r, [500, 5_000]),
        unknownEvent: pick(r, [0, 0.02]),
      };
  const heartbeatMs = pick(r, [200, 1_000, Math.floor(idleTimeoutMs / 3)]);
  const model: SubscriptionModel = {
    lifetimeMs: pick(r, [6_000, 15_000, 300_000]),
    inUseWindowMs: pick(r, [0, 2_000, 5_000]),
    rateLimit: r() < 0.6,
    inUseAs: r() < 0.6 ? 'http' : 'stream',
    heartbeatMs,
    pushDelayMs: pick(r, [5, 30, 70]),
    maxRecordsPerEvent: pick(r, [1, 3, 10, 200]),
    initialResponse: r() < 0.7,
    idleContinuation: r() < 0.6 ? 'advance' : 'hold',
    maxPieces: pick(r, [1, 2, 4]),
    coalesce: r() < 0.5,
    headerDelayMs: pick(r, [0, 20, 150]),
  };
  let from: From = pick(r, ['TRIM_HORIZON', 'TRIM_HORIZON', 'TRIM_HORIZON', 'LATEST', 'AT_TIMESTAMP']);
  if (mode === 'shard' && r() < 0.5) from = pick(r, ['AT_SEQUENCE_NUMBER', 'AFTER_SEQUENCE_NUMBER', 'AFTER_SUB_SEQUENCE_NUMBER']);
  // readShardEnhanced stores nothing: 'manual' there is the caller's own checkpoint, resumed with
  // AFTER_SEQUENCE_NUMBER (and the subsequence number inside an aggregate).
  const checkpointing = mode === 'stream' ? pick(r, ['none', 'batch', 'batch', 'manual'] as const) : pick(r, ['none', 'manual'] as const);
  const aggregateShare = pick(r, [0, 0, 0.2, 0.5]);
  // LATEST makes a resumed run start where it restarts, not where the first one stopped.
  const resume = checkpointing !== 'none' && from !== 'LATEST' && r() < 0.7;
  const history: Phase = { records: pick(r, [0, 10, 40, 120]), reshards: mode === 'stream' ? pick(r, [0, 0, 1, 3]) : pick(r, [0, 1]), ms: pick(r, [5_000, 30_000]) };
  const live: Phase = { records: randomInt(r, 10, 120), reshards: pick(r, [0, 1, 2, 4]), ms: pick(r, [5_000, 20_000, 60_000]) };
  const maxAttempts = pick(r, [1, 2, 3]);
  const config: CaseConfig = {
    seed,
    mode,
    shards: mode === 'stream' ? randomInt(r, 1, 3) : randomInt(r, 1, 2),
    history,
    live,
    aggregateShare,
    maxUsers: pick(r, [2, 5]),
    corruptShare: aggregateShare > 0 && r() < 0.3 ? 0.2 : 0,
    explicitHashShare: pick(r, [0, 0.1]),
    keys: pick(r, [3, 50]),
    burst: pick(r, [1, 1, 5]),
    from: from === 'AFTER_SUB_SEQUENCE_NUMBER' && aggregateShare === 0 ? 'AFTER_SEQUENCE_NUMBER' : from,
    deaggregate: r() < 0.85,
    checkpointing,
    resume: resume ? { stopAfter: 0, abortAtMs: r() < 0.4 ? randomInt(r, 500, live.ms) : undefined, inLoop: r() < 0.5, gapMs: pick(r, [0, 1_000, 8_000]) } : undefined,
    finalStop: pick(r, ['abort', 'break', 'abort-in-loop'] as const),
    manualShare: pick(r, [0.1, 0.5, 1]),
    slowShare: pick(r, [0, 0, 0.02, 0.2]),
    slowMs: pick(r, [50, 500, idleTimeoutMs + 1_000]),
    storeDelayMs: pick(r, [0, 0, 5, 40]),
    reader: {
      throttleDelayMs: pick(r, [50, 300, 1_000]),
      maxThrottleDelayMs: pick(r, [2_000, 10_000]),
      maxConsecutiveErrors: pick(r, [10, 16]),
      idleTimeoutMs,
      shardRefreshIntervalMs: pick(r, [0, 5_000, 30_000]),
    },
    client: { maxAttempts, timeoutMs: pick(r, [2_000, 10_000]), baseDelayMs: pick(r, [10, 100]), throttlingBaseDelayMs: pick(r, [50, 500]) },
    listPageSize: pick(r, [1, 2, 100]),
    // ListShards failures are answered at most once in a row, and only when the client tries
    // twice: readStream's first listing throws a failure the client does not retry (as intended;
    // later listings wait and try again since c545846).
    listFailure: maxAttempts >= 2 && r() < 0.5 ? 0.2 : 0,
    model,
    faults,
  };
  if (config.resume) config.resume.stopAfter = randomInt(r, 1, Math.max(1, Math.floor((history.records + live.records) / 2)));
  return config;
}

/** Keeps an overridden case coherent (what makeCase() never combines). */
function normalize(config: CaseConfig): CaseConfig {
  const out = { ...config };
  if (out.mode === 'stream' && !['TRIM_HORIZON', 'LATEST', 'AT_TIMESTAMP'].includes(out.from)) out.from = 'TRIM_HORIZON';
  if (out.mode === 'shard' && out.checkpointing === 'batch') out.checkpointing = 'manual';
  if (out.from === 'AFTER_SUB_SEQUENCE_NUMBER' && (out.aggregateShare === 0 || !out.deaggregate)) out.from = 'AFTER_SEQUENCE_NUMBER';
  if (out.checkpointing === 'none' || out.from === 'LATEST') out.resume = undefined;
  return out;
}

function describeCase(config: CaseConfig): string {
  return `seed ${config.seed}: ${JSON.stringify(config)}`;
}

// ---- helpers -------------------------------------------------------------------------------------

/** Lets real I/O finish: WebCrypto (signing) runs off the event loop, and fake time must wait for it. */
let cryptoInFlight = 0;
function instrumentCrypto(): () => void {
  const subtle = globalThis.crypto.subtle as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const originals = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  for (const name of ['digest', 'sign', 'importKey']) {
    const original = subtle[name]!.bind(globalThis.crypto.subtle);
    originals.set(name, original);
    Object.defineProperty(subtle, name, {
      configurable: true,
      writable: true,
      value: (...args: unknown[]) => {
        cryptoInFlight++;
        return original(...args).finally(() => cryptoInFlight--);
      },
    });
  }
  return () => {
    for (const name of originals.keys()) delete subtle[name];
  };
}

async function quiesce(): Promise<boolean> {
  const deadline = performance.now() + 10_000;
  for (let idle = 0; idle < 3; ) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    idle = cryptoInFlight === 0 ? idle + 1 : 0;
    if (performance.now() > deadline) return false;
  }
  return true;
}

/** (sequence number, subsequence number) order; a plain record sorts after every user record of its number. */
function comparePosition(a: { sequenceNumber: string; subSequenceNumber?: number | undefined }, b: { sequenceNumber: string; subSequenceNumber?: number | undefined }): number {
  const x = BigInt(a.sequenceNumber);
  const y = BigInt(b.sequenceNumber);
  if (x !== y) return x < y ? -1 : 1;
  const s = a.subSequenceNumber ?? Number.POSITIVE_INFINITY;
  const t = b.subSequenceNumber ?? Number.POSITIVE_INFINITY;
  return s === t ? 0 : s < t ? -1 : 1;
}

/** Whether `item` is at or before `checkpoint` (covered by it). */
function coveredBy(item: ExpectedItem, checkpoint: Checkpoint): boolean {
  if (checkpoint.sequenceNumber === SHARD_END) return true;
  return comparePosition(item, checkpoint) <= 0;
}

const keyOf = (record: ConsumerRecord) => `${record.shardId}/${record.sequenceNumber}/${record.subSequenceNumber ?? '-'}`;
const textOf = (record: ConsumerRecord, raw: boolean) => (raw ? Buffer.from(record.data).toString('hex') : new TextDecoder().decode(record.data));

// ---- one case ------------------------------------------------------------------------------------

interface Delivery {
  run: number;
  /** Order across runs. */
  order: number;
  at: number;
  record: ConsumerRecord;
  key: string;
}

interface RunOutcome {
  kind: 'returned' | 'broke' | 'threw' | 'stuck';
  value?: ShardEnd | void;
  error?: unknown;
}

interface CaseReport {
  items: number;
  delivered: number;
  runs: number;
  subscribeCalls: number;
  outcomes: Record<string, number>;
  ends: Record<string, number>;
  listShardsCalls: number;
  fakeSeconds: number;
  timers: number;
  ms: number;
}

async function runCase(config: CaseConfig): Promise<{ violations: string[]; report: CaseReport }> {
  const began = performance.now();
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  vi.setSystemTime(new Date('2024-05-01T00:00:00.000Z'));
  const violations: string[] = [];
  const violate = (message: string): void => {
    if (violations.length < 30) violations.push(message);
  };
  // Separate streams for the world, the start, the consumer and the store: one shared stream would
  // make the world depend on how the consumer's calls interleave with it.
  const r = seededRandom(config.seed * 7919 + 17);
  const startRandom = seededRandom(config.seed * 7919 + 18);
  const consumerRandom = seededRandom(config.seed * 7919 + 19);
  const storeRandom = seededRandom(config.seed * 7919 + 20);
  const fake = createEnhancedFake({
    seed: config.seed * 104_729 + 3,
    streamName: STREAM,
    consumerARN: CONSUMER_ARN,
    shards: config.shards,
    listPageSize: config.listPageSize,
    listFailure: config.listFailure,
    model: config.model,
    faults: config.faults,
  });
  const client: KinesisClient = createKinesisClient({
    region: 'us-east-1',
    credentials: CREDENTIALS,
    fetch: fake.fetch,
    timeoutMs: config.client.timeoutMs,
    retry: {
      maxAttempts: config.client.maxAttempts,
      baseDelayMs: config.client.baseDelayMs,
      throttlingBaseDelayMs: config.client.throttlingBaseDelayMs,
      maxDelayMs: 2_000,
      // Shared by every shard's calls, so any stream would be drawn in an order real time decides.
      random: () => 0.5,
      // The default retry quota, shared with the listings: the subscriptions' retries spend it in
      // the heavy cases, and a ListShards failure then comes as KinesisRetryQuotaExceededError.
    },
  });

  // ---- the world: records and reshards on one schedule, one timer at a time ------------------------
  type WorldEvent = { at: number; kind: 'record' } | { at: number; kind: 'reshard' } | { at: number; kind: 'sentinel' };
  const schedule: WorldEvent[] = [];
  const historyStart = Date.now();
  const t0 = historyStart + config.history.ms;
  const liveEnd = t0 + config.live.ms;
  const place = (phase: Phase, from: number) => {
    for (let i = 0; i < phase.records; ) {
      const at = from + Math.floor(r() * phase.ms);
      const burst = Math.min(phase.records - i, randomInt(r, 1, config.burst));
      for (let j = 0; j < burst; j++) schedule.push({ at, kind: 'record' });
      i += burst;
    }
    // Reshards not in the first half second of the reader: "open at the start" stays clear.
    for (let i = 0; i < phase.reshards; i++) schedule.push({ at: from + 500 + Math.floor(r() * (phase.ms - 500)), kind: 'reshard' });
  };
  place(config.history, historyStart);
  place(config.live, t0);
  schedule.sort((a, b) => a.at - b.at);
  let nextEvent = 0;
  let worldTimer: ReturnType<typeof setTimeout> | undefined;
  let sentinel: WorldRecord | undefined;
  /** Records put to stop a run at (one every 2 s until one is taken): the run may end before the later ones. */
  const sentinels = new Set<WorldRecord>();
  const records: WorldRecord[] = [];
  const keys = Array.from({ length: config.keys }, (_, i) => `key-${config.seed}-${i}`);

  const happen = (event: WorldEvent) => {
    if (event.kind === 'reshard') {
      const pairs = fake.adjacentPairs();
      const open = fake.openShards();
      if (pairs.length > 0 && (open.length >= 5 || r() < 0.4)) {
        const [a, b] = pick(r, pairs);
        fake.merge(a.id, b.id);
      } else fake.split(pick(r, open).id, 0.05 + r() * 0.9);
      return;
    }
    // The sentinel is plain: the consumer breaks at it, so nothing of it may be left unread.
    const users = event.kind !== 'sentinel' && r() < config.aggregateShare ? randomInt(r, 2, config.maxUsers) : 0;
    let explicit = r() < config.explicitHashShare ? String(BigInt(`0x${Buffer.from(Array.from({ length: 16 }, () => Math.floor(r() * 256))).toString('hex')}`)) : undefined;
    if (event.kind === 'sentinel') {
      // Into the shard being read (readShardEnhanced), or any open one.
      const target = fake.shards.get(READ_SHARD)!;
      explicit = String(config.mode === 'shard' && target.closedAt === undefined ? target.start : fake.openShards()[0]!.start);
    }
    const record = fake.put(pick(r, keys), { users, explicitHashKey: explicit, corruptAggregate: users > 0 && r() < config.corruptShare });
    records.push(record);
    if (event.kind === 'sentinel') {
      sentinel = record;
      sentinels.add(record);
    }
  };
  const armWorld = () => {
    if (worldTimer !== undefined) clearTimeout(worldTimer);
    worldTimer = undefined;
    const event = schedule[nextEvent];
    if (event === undefined) return;
    worldTimer = setTimeout(() => {
      worldTimer = undefined;
      // Everything due now, in order; arrival times are the fake clock's.
      while (schedule[nextEvent] !== undefined && schedule[nextEvent]!.at <= Date.now()) happen(schedule[nextEvent++]!);
      armWorld();
    }, Math.max(0, event.at - Date.now()));
  };
  const pauseWorld = () => {
    if (worldTimer !== undefined) clearTimeout(worldTimer);
    worldTimer = undefined;
  };
  const worldDone = () => nextEvent >= schedule.length;

  // History: only the world runs.
  armWorld();
  while (Date.now() < t0 && vi.getTimerCount() > 0) {
    const next = schedule[nextEvent];
    if (next === undefined || next.at >= t0) break;
    await vi.advanceTimersToNextTimerAsync();
  }
  pauseWorld();
  vi.setSystemTime(new Date(t0));
  const openAtStart = new Set(fake.openShards().map((s) => s.id));

  // ---- the reader's start ----------------------------------------------------------------------
  const shardStart = (): StartPosition => {
    const shard = fake.shards.get(READ_SHARD)!;
    const candidates = shard.records;
    const at = candidates.length > 0 ? pick(startRandom, candidates) : undefined;
    switch (config.from) {
      case 'AT_SEQUENCE_NUMBER':
        return at ? { type: 'AT_SEQUENCE_NUMBER', sequenceNumber: at.sequenceNumber } : { type: 'TRIM_HORIZON' };
      case 'AFTER_SEQUENCE_NUMBER':
        return at ? { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: at.sequenceNumber } : { type: 'TRIM_HORIZON' };
      case 'AFTER_SUB_SEQUENCE_NUMBER': {
        const aggregates = candidates.filter((c) => c.users !== undefined);
        const agg = aggregates.length > 0 ? pick(startRandom, aggregates) : undefined;
        if (agg && config.deaggregate) return { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: agg.sequenceNumber, subSequenceNumber: randomInt(startRandom, 0, agg.users!.length - 1) };
        return at ? { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: at.sequenceNumber } : { type: 'TRIM_HORIZON' };
      }
      default:
        return streamStart();
    }
  };
  const timestamp = historyStart + Math.floor(startRandom() * (config.history.ms + 1));
  const streamStart = (): StartPosition => {
    if (config.from === 'LATEST') return { type: 'LATEST' };
    if (config.from === 'AT_TIMESTAMP') return { type: 'AT_TIMESTAMP', timestamp: new Date(timestamp) };
    return { type: 'TRIM_HORIZON' };
  };
  const start = config.mode === 'shard' ? shardStart() : streamStart();
  /** readShardEnhanced resumes after the caller's checkpoint, as a caller would. */
  const resumeFrom = (): StartPosition => {
    const checkpoint = memory.get(READ_SHARD);
    return checkpoint === undefined ? start : startPositionAfter(checkpoint)!;
  };

  // ---- checkpoints ---------------------------------------------------------------------------------
  const memory = createMemoryCheckpointStore();
  let manualSet = false;
  let storeOps = 0;
  const storeDelay = () => (config.storeDelayMs > 0 ? new Promise<void>((resolve) => setTimeout(resolve, randomInt(storeRandom, 0, config.storeDelayMs))) : Promise.resolve());
  const deliveries: Delivery[] = [];
  const deliveredKeys = new Set<string>();
  let run = 0;
  /** Keys delivered in the current run. */
  let runKeys = new Set<string>();
  const store: CheckpointStore = {
    get: async (shardId) => {
      storeOps++;
      await storeDelay();
      storeOps--;
      return memory.get(shardId);
    },
    set: async (shardId, sequenceNumber, subSequenceNumber) => {
      storeOps++;
      const byReader = !manualSet;
      // Checked when the reader asks, against what it yielded by then.
      if (byReader) checkStoredPosition(shardId, sequenceNumber, subSequenceNumber);
      await storeDelay();
      storeOps--;
      memory.set(shardId, sequenceNumber, subSequenceNumber);
    },
  };
  const checkStoredPosition = (shardId: string, sequenceNumber: string, subSequenceNumber: number | undefined) => {
    const previous = memory.get(shardId);
    const where = `run ${run}: checkpoint ${shardId} ${sequenceNumber}${subSequenceNumber === undefined ? '' : `/${subSequenceNumber}`}`;
    if (previous?.sequenceNumber === SHARD_END) violate(`${where} stored after SHARD_END`);
    if (sequenceNumber === SHARD_END) {
      const missing = itemsOfShard(shardId).filter((item) => promise(item) === 'must' && !deliveredKeys.has(item.key));
      if (missing.length > 0) violate(`${where}: SHARD_END while ${missing.length} of its records were never yielded (first ${missing[0]!.key})`);
      if (config.checkpointing === 'manual') {
        const last = [...deliveries].reverse().find((d) => d.run === run && d.record.shardId === shardId);
        const stored = previous;
        if (last && (stored === undefined || comparePosition(last.record, stored) !== 0)) violate(`${where}: SHARD_END in manual mode while its last record ${last.key} was not checkpointed`);
      }
      return;
    }
    if (config.checkpointing === 'manual') violate(`${where}: stored by the reader in manual mode`);
    const key = `${shardId}/${sequenceNumber}/${subSequenceNumber ?? '-'}`;
    if (!runKeys.has(key)) violate(`${where}: not a record yielded in this run`);
    if (previous !== undefined && comparePosition({ sequenceNumber, subSequenceNumber }, previous) <= 0) {
      violate(`${where}: not after the stored ${previous.sequenceNumber}/${previous.subSequenceNumber ?? '-'}`);
    }
  };

  // ---- what the start promises -------------------------------------------------------------------
  const itemsCache = new Map<WorldRecord, ExpectedItem[]>();
  const items = (record: WorldRecord) => {
    let list = itemsCache.get(record);
    if (list === undefined) itemsCache.set(record, (list = fake.itemsOf(record, config.deaggregate)));
    return list;
  };
  const itemsOfShard = (shardId: string) => fake.shards.get(shardId)!.records.flatMap(items);
  /** First ok subscription (its start index) and first call of each shard in the first run, for LATEST. */
  const firstOk = new Map<string, number>();
  const firstCall = new Map<string, number>();
  const promise = (item: ExpectedItem): 'must' | 'may' | 'never' => {
    const shard = fake.shards.get(item.shardId)!;
    if (sentinels.has(shard.records[item.index]!)) return 'may';
    if (config.mode === 'shard') {
      if (item.shardId !== READ_SHARD) return 'never';
      switch (start.type) {
        case 'AT_SEQUENCE_NUMBER':
          return BigInt(item.sequenceNumber) >= BigInt(start.sequenceNumber) ? 'must' : 'never';
        case 'AFTER_SEQUENCE_NUMBER':
          if (start.subSequenceNumber !== undefined && item.sequenceNumber === start.sequenceNumber) {
            return item.subSequenceNumber !== undefined && item.subSequenceNumber > start.subSequenceNumber ? 'must' : 'never';
          }
          return BigInt(item.sequenceNumber) > BigInt(start.sequenceNumber) ? 'must' : 'never';
        default:
      }
    }
    if (start.type === 'AT_TIMESTAMP') return item.arrival >= start.timestamp.getTime() ? 'must' : 'never';
    if (start.type === 'LATEST') {
      const opened = shard.createdAt <= t0;
      if (config.mode === 'stream' && !openAtStart.has(shard.id) && opened) return 'never';
      if (config.mode === 'stream' && !opened) return 'must';
      const okAt = firstOk.get(shard.id);
      if (okAt !== undefined && item.index >= okAt) return 'must';
      const calledAt = firstCall.get(shard.id);
      if (calledAt === undefined || item.arrival < calledAt - LATEST_MARGIN_MS) return 'never';
      return 'may';
    }
    return 'must';
  };

  /** LATEST: until a shard's first subscription is up, what it will promise is unknown. */
  const isResolved = () => start.type !== 'LATEST' || [...(config.mode === 'shard' ? [READ_SHARD] : openAtStart)].every((id) => firstOk.has(id));

  // ---- runs ----------------------------------------------------------------------------------------
  const runs = config.resume ? 2 : 1;
  const outcomes: RunOutcome[] = [];
  const checkpointsAtStart: Map<string, Checkpoint>[] = [];
  let timersFired = 0;
  let seenCalls = 0;
  let order = 0;

  for (run = 1; run <= runs; run++) {
    const isFinal = run === runs;
    runKeys = new Set<string>();
    checkpointsAtStart.push(memory.list());
    const controller = new AbortController();
    const stopReason = new Error(`stop run ${run}`);
    const driverTimers: ReturnType<typeof setTimeout>[] = [];
    let outcome: RunOutcome | undefined;
    let stopAtNextRecord = false;
    let graceArmed = false;
    const lastOfShard = new Map<string, ConsumerRecord>();

    const options = {
      signal: controller.signal,
      deaggregate: config.deaggregate,
      throttleDelayMs: config.reader.throttleDelayMs,
      maxThrottleDelayMs: config.reader.maxThrottleDelayMs,
      maxConsecutiveErrors: config.reader.maxConsecutiveErrors,
      idleTimeoutMs: config.reader.idleTimeoutMs,
      // readStream hands one random to every shard reader (see the client's).
      random: config.mode === 'shard' ? seededRandom(config.seed * 13 + run) : () => 0.5,
    };
    const iterator: AsyncGenerator<ConsumerRecord, ShardEnd | void, undefined> =
      config.mode === 'stream'
        ? readStreamEnhanced(client, {
            ...options,
            streamName: STREAM,
            consumerARN: CONSUMER_ARN,
            from: start as Extract<StartPosition, { type: 'TRIM_HORIZON' | 'LATEST' | 'AT_TIMESTAMP' }>,
            shardRefreshIntervalMs: config.reader.shardRefreshIntervalMs,
            ...(config.checkpointing !== 'none' ? { checkpoints: store, checkpointing: config.checkpointing } : {}),
          })
        : readShardEnhanced(client, { ...options, consumerARN: CONSUMER_ARN, shardId: READ_SHARD, from: resumeFrom() });

    /** Every record promised is in and no more will come (the last-record stop of 'abort-in-loop'). */
    const isEverythingIn = (): boolean =>
      isResolved() && worldDone() && Date.now() >= liveEnd && missingInRun().length === 0;
    /** What this run still owes: every promised record (a resumed run: every one after its checkpoint). */
    const missingInRun = (): ExpectedItem[] => {
      const checkpoints = checkpointsAtStart[run - 1]!;
      return records.flatMap(items).filter((item) => {
        if (promise(item) !== 'must') return false;
        if (run === 1) return !deliveredKeys.has(item.key);
        const checkpoint = checkpoints.get(item.shardId);
        return !(checkpoint !== undefined && coveredBy(item, checkpoint)) && !runKeys.has(item.key);
      });
    };
    const consume = async (): Promise<RunOutcome> => {
      try {
        for (;;) {
          // Once the signal aborted, the next call throws its reason: no record, no quiet end.
          const afterAbort = controller.signal.aborted;
          const step = await iterator.next();
          if (step.done) return { kind: 'returned', value: step.value };
          const record = step.value;
          const key = keyOf(record);
          deliveries.push({ run, order: order++, at: Date.now(), record, key });
          const where = `run ${run}: ${key}`;
          if (afterAbort) violate(`${where} yielded by a next() called after the signal aborted`);
          if (runKeys.has(key)) violate(`${where} yielded twice in one run`);
          runKeys.add(key);
          deliveredKeys.add(key);
          const previous = lastOfShard.get(record.shardId);
          if (previous && comparePosition(previous, record) >= 0) violate(`${where} after ${keyOf(previous)}: not in shard order`);
          lastOfShard.set(record.shardId, record);
          if (config.checkpointing === 'manual' && consumerRandom() < config.manualShare) {
            manualSet = true;
            try {
              await checkpointRecord(store, record);
            } finally {
              manualSet = false;
            }
          }
          const stopHere = isFinal
            ? stopAtNextRecord || (config.finalStop === 'abort-in-loop' && isEverythingIn())
            : config.resume!.abortAtMs === undefined && runKeys.size >= config.resume!.stopAfter;
          if (stopHere && !controller.signal.aborted) {
            if (isFinal ? config.finalStop === 'abort-in-loop' : config.resume!.inLoop) {
              // Aborted while holding a record (maybe the last of a batch, or of a closed shard).
              controller.abort(stopReason);
              continue;
            }
            await iterator.return(undefined as never);
            return { kind: 'broke' };
          }
          if (consumerRandom() < config.slowShare) await new Promise((resolve) => setTimeout(resolve, config.slowMs));
        }
      } catch (error) {
        return { kind: 'threw', error };
      }
    };
    const task = consume().then((value) => (outcome = value));

    if (!isFinal && config.resume!.abortAtMs !== undefined) driverTimers.push(setTimeout(() => controller.abort(stopReason), config.resume!.abortAtMs));
    armWorld();
    // Time enough for every wait of a slow consumer, on top of the drain.
    const slowBudget = Math.ceil((config.history.records + config.live.records) * config.maxUsers * config.slowShare * 2) * config.slowMs;
    const deadline = Math.max(Date.now(), liveEnd) + DRAIN_MS + slowBudget + (config.history.records + config.live.records) * 500;
    let stuck: string | undefined;
    for (let i = 0; outcome === undefined; i++) {
      if (!(await quiesce())) {
        stuck = 'signing did not finish within 10 s of real time';
        break;
      }
      if (outcome !== undefined) break;
      // LATEST: where each shard's first subscription started (the fake resolved it then).
      for (; run === 1 && seenCalls < fake.calls.length; seenCalls++) {
        const call = fake.calls[seenCalls]!;
        if (!firstCall.has(call.shardId)) firstCall.set(call.shardId, call.at);
        if (call.outcome === 'ok' && !firstOk.has(call.shardId)) firstOk.set(call.shardId, call.startIndex!);
      }
      // (A first run that has not reached its stop by then stops the same way.)
      if (!graceArmed && isResolved() && worldDone() && Date.now() >= liveEnd) {
        const shard = fake.shards.get(READ_SHARD)!;
        const endsByItself = config.mode === 'shard' && shard.closedAt !== undefined;
        if (!endsByItself && missingInRun().length === 0) {
          // Everything is in: give duplicates a chance to show, then stop (break at the next
          // record: one is put every 2 s until the consumer took one).
          graceArmed = true;
          const putSentinel = () => {
            if (outcome !== undefined) return;
            stopAtNextRecord = true;
            happen({ at: Date.now(), kind: 'sentinel' });
            driverTimers.push(setTimeout(putSentinel, 2_000));
          };
          driverTimers.push(
            setTimeout(() => {
              if (config.finalStop !== 'break' || !isFinal) controller.abort(stopReason);
              else putSentinel();
            }, 3_000),
          );
        }
      }
      if (Date.now() > deadline || i >= MAX_TIMERS) {
        const asked = controller.signal.aborted ? ' (aborted, not settled)' : stopAtNextRecord && deliveries.at(-1)?.run === run && deliveries.at(-1)!.at >= Date.now() - 2_000 ? ' (break asked, not settled)' : '';
        stuck = `still running${asked} at ${Date.now() - t0} ms after the start, ${i} timers fired`;
        break;
      }
      if (vi.getTimerCount() === 0) {
        stuck = 'waiting with no timer left (nothing can wake it)';
        break;
      }
      await vi.advanceTimersToNextTimerAsync();
      timersFired++;
    }
    if (stuck !== undefined) {
      if (TRACE) console.log(`stuck run ${run}: graceArmed ${graceArmed}, stopAtNextRecord ${stopAtNextRecord}, sentinel ${sentinel?.sequenceNumber} on ${sentinel?.shardId}, last deliveries ${deliveries.slice(-3).map((d) => `${d.key}@${d.at - t0}`).join(' ')}`);
      const missing = missingInRun();
      violate(`run ${run} stuck: ${stuck}; ${missing.length} promised records not yielded (first ${missing[0]?.key}, arrived ${missing[0] ? missing[0].arrival - t0 : '-'} ms)`);
      controller.abort(stopReason);
      for (let i = 0; i < 1_000 && outcome === undefined; i++) {
        await quiesce();
        if (outcome === undefined && vi.getTimerCount() > 0) await vi.advanceTimersToNextTimerAsync();
      }
      await Promise.race([task, new Promise((resolve) => setImmediate(resolve))]);
      outcomes.push(outcome ?? { kind: 'stuck' });
      pauseWorld();
      break;
    }
    outcomes.push(outcome!);

    // ---- how it ended, and what it left behind ----------------------------------------------------
    const o = outcome!;
    const aborted = controller.signal.aborted;
    if (o.kind === 'threw' && !(aborted && o.error === stopReason)) {
      const e = o.error as { name?: string; message?: string; code?: string };
      violate(`run ${run} threw ${e?.name}: ${e?.message}${e?.code ? ` (${e.code})` : ''}`);
      if (TRACE) console.log((o.error as Error)?.stack);
    }
    if (aborted && o.kind !== 'threw') violate(`run ${run}: aborted, but the iterator ${o.kind} instead of rejecting with the reason`);
    if (o.kind === 'returned') {
      if (config.mode === 'stream') violate(`run ${run}: readStreamEnhanced returned on its own`);
      else {
        const shard = fake.shards.get(READ_SHARD)!;
        const end = o.value as ShardEnd;
        if (shard.closedAt === undefined) violate(`run ${run}: readShardEnhanced returned while the shard is open`);
        const expected = shard.children.map((id) => ({ id, parents: fake.shards.get(id)!.parents.join(',') }));
        const got = (end?.childShards ?? []).map((c) => ({ id: c.ShardId, parents: c.ParentShards.join(',') }));
        if (JSON.stringify(got) !== JSON.stringify(expected)) violate(`run ${run}: ShardEnd children ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`);
      }
    }
    pauseWorld();
    for (const timer of driverTimers) clearTimeout(timer);
    await quiesce();
    if (vi.getTimerCount() !== 0) violate(`run ${run} (${o.kind}): ${vi.getTimerCount()} timers left behind`);
    if (fake.openBodies !== 0) violate(`run ${run} (${o.kind}): ${fake.openBodies} event stream bodies left open`);
    if (fake.pendingFetches !== 0) violate(`run ${run} (${o.kind}): ${fake.pendingFetches} fetches still in progress`);
    if (storeOps !== 0) violate(`run ${run} (${o.kind}): ${storeOps} checkpoint store calls still in progress`);
    if (!isFinal) {
      // The process restarts after a while; records keep arriving meanwhile.
      armWorld();
      const until = Date.now() + config.resume!.gapMs;
      while (Date.now() < until && vi.getTimerCount() > 0) await vi.advanceTimersToNextTimerAsync();
      if (Date.now() < until) vi.setSystemTime(new Date(until));
      pauseWorld();
    }
  }

  // ---- invariants over the runs ------------------------------------------------------------------
  const all = records.flatMap(items);
  const byKey = new Map(all.map((item) => [item.key, item]));
  const firstDelivery = new Map<string, Delivery>();
  for (const d of deliveries) {
    const item = byKey.get(d.key);
    const where = `run ${d.run}: ${d.key}`;
    if (item === undefined) {
      violate(`${where}: yielded, but no such record exists`);
      continue;
    }
    if (!firstDelivery.has(d.key)) firstDelivery.set(d.key, d);
    const raw = item.raw;
    if (textOf(d.record, raw) !== item.text) violate(`${where}: data ${JSON.stringify(textOf(d.record, raw).slice(0, 40))}, expected ${JSON.stringify(item.text.slice(0, 40))}`);
    if (d.record.partitionKey !== item.partitionKey) violate(`${where}: partition key ${d.record.partitionKey}`);
    if (d.record.arrivalTime.getTime() !== item.arrival) violate(`${where}: arrival ${d.record.arrivalTime.toISOString()}`);
    if (promise(item) === 'never') violate(`${where}: yielded, though ${start.type} excludes it (arrived ${item.arrival - t0} ms after the start)`);
    // Across a resume: never at or before the checkpoint the run started from.
    const checkpoint = checkpointsAtStart[d.run - 1]!.get(item.shardId);
    if (checkpoint !== undefined && coveredBy(item, checkpoint)) {
      violate(`${where}: yielded again, though checkpoint ${checkpoint.sequenceNumber}/${checkpoint.subSequenceNumber ?? '-'} covers it`);
    }
    // Parents before children: every promised record of the parents already yielded.
    const shard = fake.shards.get(item.shardId)!;
    for (const parentId of shard.parents) {
      const late = itemsOfShard(parentId).find((p) => promise(p) === 'must' && !(firstDelivery.get(p.key)?.order! <= d.order));
      if (late !== undefined) {
        violate(`${where}: yielded before ${late.key} of its parent ${parentId}`);
        break;
      }
    }
  }
  for (const item of all) {
    if (promise(item) === 'must' && !firstDelivery.has(item.key)) violate(`${item.key} (arrived ${item.arrival - t0} ms after the start) never yielded`);
  }
  // A resumed run yields every promised record after its checkpoint (at least once across a resume).
  if (runs === 2 && outcomes.length === 2 && outcomes[1]!.kind !== 'stuck') {
    const checkpoints = checkpointsAtStart[1]!;
    const second = new Set(deliveries.filter((d) => d.run === 2).map((d) => d.key));
    for (const item of all) {
      const checkpoint = checkpoints.get(item.shardId);
      if (promise(item) !== 'must' || (checkpoint !== undefined && coveredBy(item, checkpoint))) continue;
      if (!second.has(item.key)) {
        violate(`run 2: ${item.key}, after checkpoint ${checkpoint ? `${checkpoint.sequenceNumber}/${checkpoint.subSequenceNumber ?? '-'}` : '(none)'}, not yielded again`);
        break;
      }
    }
  }
  // The fake refuses positions outside a shard; the readers must never send one.
  for (const call of fake.calls) {
    if (call.outcome === 'invalid') violate(`SubscribeToShard ${call.shardId} at ${call.at - t0} ms refused: ${JSON.stringify(call.position)}`);
  }
  // No tight loop: per shard, subscriptions per fake second within what the backoff allows.
  const perShardSecond = new Map<string, number>();
  for (const call of fake.calls) {
    const k = `${call.shardId}@${Math.floor((call.at - t0) / 1000)}`;
    perShardSecond.set(k, (perShardSecond.get(k) ?? 0) + 1);
  }
  const bound = config.client.maxAttempts * (Math.ceil(2_000 / config.reader.throttleDelayMs) + 3);
  for (const [k, count] of perShardSecond) {
    if (count > bound) {
      violate(`subscription rate: ${count} SubscribeToShard calls for ${k}, bound ${bound}`);
      break;
    }
  }

  const outcomeCounts: Record<string, number> = {};
  const ends: Record<string, number> = {};
  for (const call of fake.calls) {
    outcomeCounts[call.outcome] = (outcomeCounts[call.outcome] ?? 0) + 1;
    if (call.end) ends[call.end.replace(/ \(.*/, '')] = (ends[call.end.replace(/ \(.*/, '')] ?? 0) + 1;
  }
  if (TRACE && violations.length > 0) {
    // The subscriptions in order, to see what the reader asked for and what the fake did.
    for (const call of fake.calls) console.log(`${call.at - t0} ms ${call.shardId} ${JSON.stringify(call.position)} -> ${call.outcome}${call.startIndex !== undefined ? ` @${call.startIndex}` : ''} ${call.end ?? ''}`);
    for (const shard of fake.shards.values()) {
      console.log(`${shard.id} parents ${shard.parents.join(',') || '-'} records ${shard.records.length} created ${shard.createdAt - t0} closed ${shard.closedAt === undefined ? '-' : shard.closedAt - t0}`);
    }
  }
  const fakeSeconds = Math.round((Date.now() - t0) / 1000);
  vi.useRealTimers();
  return {
    violations,
    report: {
      items: all.length,
      delivered: deliveries.length,
      runs: outcomes.length,
      subscribeCalls: fake.calls.length,
      outcomes: outcomeCounts,
      ends,
      listShardsCalls: fake.listShardsCalls,
      fakeSeconds,
      timers: timersFired,
      ms: Math.round(performance.now() - began),
    },
  };
}

// ---- the cases -----------------------------------------------------------------------------------

// ENHANCED_INVARIANTS_SEEDS=first:count runs other seeds (exploration); the default list is the test.
// It ends with seeds 330 and 492, the ones of 1-600 that fail when the AT_TIMESTAMP resume fix in
// src/consumer/lineage.ts is reverted, and 586, which with 944 of the list are the ones of 1-1000
// that fail when the periodic listing judges an exhausted retry quota by itself again.
const [firstSeed, seedCount] = (process.env.ENHANCED_INVARIANTS_SEEDS ?? '').split(':').map(Number);
const SEEDS =
  firstSeed !== undefined && seedCount !== undefined && Number.isInteger(firstSeed) && Number.isInteger(seedCount)
    ? Array.from({ length: seedCount }, (_, i) => firstSeed + i)
    : [...Array.from({ length: 24 }, (_, i) => 1 + i * 41), 330, 492, 586];

let restoreCrypto: (() => void) | undefined;

beforeAll(async () => {
  restoreCrypto = instrumentCrypto();
  // The operations' schemas load on first use through a dynamic import (real I/O, which fake time
  // does not wait for): load them now.
  const refuse = (async () => new Response('{"__type":"AccessDeniedException","message":"warm-up"}', { status: 400 })) as typeof fetch;
  const warm = createKinesisClient({ region: 'us-east-1', credentials: CREDENTIALS, fetch: refuse, retry: { maxAttempts: 1 } });
  await listShards(warm, { StreamName: STREAM }).catch(() => undefined);
  await (async () => {
    for await (const _ of subscribeToShard(warm, { ConsumerARN: CONSUMER_ARN, ShardId: 'shardId-000000000000', StartingPosition: { Type: 'TRIM_HORIZON' } }));
  })().catch(() => undefined);
  return () => restoreCrypto?.();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('enhanced fan-out readers: invariants across seeded streams, faults and restarts', () => {
  it.each(SEEDS.map((seed) => [seed] as const))('seed %i', async (seed) => {
    const config = normalize({ ...makeCase(seed), ...(process.env.ENHANCED_INVARIANTS_OVERRIDE ? (JSON.parse(process.env.ENHANCED_INVARIANTS_OVERRIDE) as Partial<CaseConfig>) : {}) });
    const { violations, report } = await runCase(config);
    if (REPORT) console.log(`${describeCase(config)}\n  -> ${JSON.stringify(report)}`);
    expect(violations, describeCase(config)).toEqual([]);
  });
});

// ---- smallest cases of what the seeds found outside src/event-stream ------------------------------

const QUIET: SubscriptionModel = {
  lifetimeMs: 300_000,
  inUseWindowMs: 0,
  rateLimit: false,
  inUseAs: 'http',
  heartbeatMs: 1_000,
  pushDelayMs: 10,
  maxRecordsPerEvent: 10,
  initialResponse: true,
  idleContinuation: 'hold',
  maxPieces: 1,
  coalesce: false,
  headerDelayMs: 0,
};

function quietFake(shards: number): EnhancedFake {
  return createEnhancedFake({
    seed: 7,
    streamName: STREAM,
    consumerARN: CONSUMER_ARN,
    shards,
    listPageSize: 100,
    listFailure: 0,
    model: QUIET,
    faults: { ...NO_FAULTS },
  });
}

/** Moves fake time one timer at a time (letting signing finish in between) until `done()`. */
async function driveUntil(done: () => boolean, maxTimers = 2_000): Promise<void> {
  for (let i = 0; i < maxTimers && !done(); i++) {
    await quiesce();
    if (done() || vi.getTimerCount() === 0) break;
    await vi.advanceTimersToNextTimerAsync();
  }
  await quiesce();
}

/** Takes records until `count` (then breaks) or until the iterator ends or throws. */
function take(iterator: AsyncGenerator<ConsumerRecord, unknown>, count: number) {
  const state = { records: [] as ConsumerRecord[], error: undefined as unknown, settled: false };
  void (async () => {
    try {
      for await (const record of iterator) {
        state.records.push(record);
        if (state.records.length === count) break;
      }
    } catch (error) {
      state.error = error;
    }
    state.settled = true;
  })();
  return state;
}

describe('readStreamEnhanced: cases the seeds found in src/consumer', () => {
  // Found by the resumed AT_TIMESTAMP cases (seeds 963, 1181, 1731, 1834, 1851, 1984 of 500-1999
  // in the model of the time; 330 and 492 of the default list now), and at the same time by
  // consumer-invariants.test.ts, whose 'readStream from AT_TIMESTAMP: after a resume, …' is the
  // polling twin of this one. src/consumer/lineage.ts started a child without checkpoint at the
  // stream's AT_TIMESTAMP only when every parent started there itself; a parent finished in the
  // first run (SHARD_END) did not, so the child started at TRIM_HORIZON and the resumed run
  // yielded its records from before the timestamp, which the first run rightly skipped
  // (read-stream.ts: "AT_TIMESTAMP: records that arrived at or after the time"). A child created
  // before the timestamp is enough.
  it('a resumed AT_TIMESTAMP read yields no record from before the timestamp', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(new Date('2024-05-01T00:00:00.000Z'));
    const fake = quietFake(1);
    fake.put('k', {});
    vi.setSystemTime(Date.now() + 1_000);
    const [child] = fake.split('shardId-000000000000', 0.5);
    vi.setSystemTime(Date.now() + 1_000);
    const early = fake.put('k', { explicitHashKey: String(child.start) });
    vi.setSystemTime(Date.now() + 1_000);
    const timestamp = new Date(Date.now());
    vi.setSystemTime(Date.now() + 1_000);
    const late = fake.put('k', { explicitHashKey: String(child.start) });
    const client = createKinesisClient({ region: 'us-east-1', credentials: CREDENTIALS, fetch: fake.fetch, retry: { maxAttempts: 1 } });
    const checkpoints = createMemoryCheckpointStore();
    const read = () =>
      readStreamEnhanced(client, { streamName: STREAM, consumerARN: CONSUMER_ARN, from: { type: 'AT_TIMESTAMP', timestamp }, checkpoints, shardRefreshIntervalMs: 0 });

    // The first run reads the parent (nothing at or after the time: SHARD_END) and the child from
    // the time, and stops at the child's first record, before its checkpoint.
    const first = take(read(), 1);
    await driveUntil(() => first.settled);
    expect(first.records.map((r) => r.sequenceNumber)).toEqual([late.sequenceNumber]);
    expect(checkpoints.list().get('shardId-000000000000')).toEqual({ sequenceNumber: SHARD_END });
    expect(checkpoints.list().has(child.id)).toBe(false);

    const second = take(read(), 1);
    await driveUntil(() => second.settled);
    // Before the fix: `early`, which arrived a second before the timestamp.
    expect(second.records.map((r) => r.sequenceNumber)).not.toContain(early.sequenceNumber);
    expect(second.records.map((r) => r.sequenceNumber)).toEqual([late.sequenceNumber]);
  });

  // Found by seeds 359, 360 and 403 (of 1-500, in the model of the time). readStream's periodic
  // listing (src/consumer/read-stream.ts) waited for the next round after a retryable failure, but
  // the client throws KinesisRetryQuotaExceededError (retryable: false, the fault as its cause) once
  // the shared retry quota is spent, which the subscriptions' own retries do under throttling: one
  // ListShards 500 then ended the whole iteration, where the shard readers judged such an error by
  // its cause. Now all three judge it through unwrapRetryQuotaError() (src/consumer/polling.ts). A
  // client with `quota: 0` shows it at once; consumer-read-stream.test.ts has the polling twin.
  it('a periodic ListShards failure with the retry quota spent waits for the next round', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(new Date('2024-05-01T00:00:00.000Z'));
    const fake = quietFake(1);
    let listings = 0;
    const fetchWithFailure = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (new Headers(init?.headers).get('x-amz-target')?.endsWith('.ListShards') && ++listings === 2) {
        return new Response('{"__type":"InternalFailure","message":"We encountered an internal error."}', { status: 500 });
      }
      return fake.fetch(input, init);
    }) as typeof fetch;
    const client = createKinesisClient({ region: 'us-east-1', credentials: CREDENTIALS, fetch: fetchWithFailure, retry: { quota: 0 } });
    fake.put('k', {});
    const reading = take(readStreamEnhanced(client, { streamName: STREAM, consumerARN: CONSUMER_ARN, from: { type: 'TRIM_HORIZON' }, shardRefreshIntervalMs: 1_000 }), 2);
    // A record after the failed listing (at 1 s) and the next one (at 2 s).
    setTimeout(() => fake.put('k', {}), 3_000);
    await driveUntil(() => reading.settled);
    expect(listings).toBeGreaterThanOrEqual(2);
    expect(reading.error).toBeUndefined();
    expect(reading.records).toHaveLength(2);
  });
});

describe('readShardEnhanced: an abort while the caller holds a record (found by the seeds)', () => {
  // Found by the in-loop aborts (finalStop 'abort-in-loop', resume.inLoop): seeds 62, 116, 182,
  // 244, 248, 300, 326, 366 of 1-400 and seed 780 of the default list failed, and seeds 44, 178,
  // 231 once messages could share a chunk (coalesce). The readers' documented contract is "the
  // iterator throws the signal's reason" (ReadShardEnhancedOptions.signal); the polling reader was
  // fixed the same way by the consumer invariants test (c545846).
  const client = (fake: typeof fetch) => createKinesisClient({ region: 'us-east-1', credentials: CREDENTIALS, fetch: fake, retry: { maxAttempts: 1 } });
  const shardOptions = (signal: AbortSignal) => ({ consumerARN: CONSUMER_ARN, shardId: READ_SHARD, from: { type: 'TRIM_HORIZON' as const }, signal });
  const reason = new Error('stop');
  /** Reads the first record of `fake`'s shard, then aborts with `reason`: the iterator's next call must throw it. */
  const readOneThenAbort = async (fake: typeof fetch) => {
    const controller = new AbortController();
    const iterator = readShardEnhanced(client(fake), shardOptions(controller.signal));
    expect((await iterator.next()).value).toMatchObject({ sequenceNumber: '1' });
    controller.abort(reason);
    return iterator;
  };

  it('throws the reason on the next call instead of the rest of the event already received', async () => {
    const fake = streamingFetch([eventStreamResponse([eventMessage([wireRecord('1', 'a'), wireRecord('2', 'b'), wireRecord('3', 'c')], '3')], { then: 'hang' }).response]);
    const iterator = await readOneThenAbort(fake);
    // Before the fix: records 2 and 3, then the reason.
    await expect(iterator.next()).rejects.toBe(reason);
  });

  it('throws the reason on the next call instead of ending when the shard end was held', async () => {
    const last = eventMessage([wireRecord('1', 'a')], null, { childShards: [childShard('shardId-000000000001', [READ_SHARD])] });
    const iterator = await readOneThenAbort(streamingFetch([eventStreamResponse([last]).response]));
    // Before the fix: { done: true, value: { childShards: [shardId-000000000001] } }.
    await expect(iterator.next()).rejects.toBe(reason);

    const batchController = new AbortController();
    const batches = readShardEnhancedBatches(client(streamingFetch([eventStreamResponse([last]).response])), shardOptions(batchController.signal));
    expect((await batches.next()).value).toMatchObject({ isShardEnd: true });
    batchController.abort(reason);
    await expect(batches.next()).rejects.toBe(reason);
  });

  it('hands out no event that arrived in the same chunk as the one held', async () => {
    // Two events in one read, as a socket returns them once the reader fell behind.
    const first = eventMessage([wireRecord('1', 'a')], '1');
    const second = eventMessage([wireRecord('2', 'b')], '2');
    const both = new Uint8Array(first.length + second.length);
    both.set(first);
    both.set(second, first.length);
    const stream = eventStreamResponse([both], { then: 'hang' });
    const controller = new AbortController();
    const batches = readShardEnhancedBatches(client(streamingFetch([stream.response])), shardOptions(controller.signal));
    expect((await batches.next()).value).toMatchObject({ records: [{ sequenceNumber: '1' }] });
    controller.abort(reason);
    // Before the fix: the batch of record 2.
    await expect(batches.next()).rejects.toBe(reason);
    expect(stream.cancelled).toBe(true);
  });
});

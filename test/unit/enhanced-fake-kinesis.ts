// A model of Kinesis for the enhanced fan-out invariants test (enhanced-invariants.test.ts): one
// stream whose shards cover the 128-bit hash key space, records routed by the MD5 of their
// partition key (or an explicit hash key) to the open shard that holds it, splits and merges over
// several generations, sequence numbers as 56-digit decimals from one clock (so they only grow,
// and a shard's are never adjacent), and, behind an injected `fetch`:
//
// - ListShards, paged (`NextToken` only after the first page, as the API requires), every shard
//   open or closed, parents and `EndingSequenceNumber` as AWS lists them
//   (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_ListShards.html);
// - SubscribeToShard as AWS describes it
//   (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_SubscribeToShard.html,
//   https://docs.aws.amazon.com/kinesis/latest/APIReference/API_SubscribeToShardEvent.html):
//   an `application/vnd.amazon.eventstream` body with an optional `initial-response`, then
//   `SubscribeToShardEvent`s pushed as records arrive (a little later) and as heartbeats when none
//   do, each with `ContinuationSequenceNumber` (which moves on without records, so a later record
//   always gets a larger number) and `MillisBehindLatest`; at the end of a closed shard, one last
//   event with `ChildShards` and `ContinuationSequenceNumber: null`, and the end of the body. A
//   subscription ends after `lifetimeMs` (AWS: 5 minutes). A second call for the same shard while
//   one is open, or within `inUseWindowMs` of a successful one (AWS: 5 s), is refused with
//   ResourceInUseException (as HTTP 400, as AWS does, or as an `exception` message in a 200, as
//   kinesis-local does: test/integration/subscribe-to-shard.test.ts); more than one call per second
//   per shard with LimitExceededException. Positions are checked: a sequence number outside the
//   shard's range is InvalidArgumentException, a fault the readers must never cause.
//
// Seeded faults, decided per call and per event: network errors, 500s, throttling, answers that
// never come (the client's timeout), connections cut between messages or in the middle of one
// (reset, or closed: a truncated body), `exception` and `error` messages in the stream, a message
// with a flipped byte (bad CRC; the events after it go on), messages of an event type this client
// does not know (to be skipped), and stalls (no event for a while; longer than the reader's idle
// timeout or not). Bytes go out in random pieces, never more than was decided.
//
// Everything that waits uses setTimeout, so the test drives it in fake time; nothing here is left
// behind by a body the client cancelled or a request it aborted (the test counts on that to find
// what the readers leave behind).
import { createHash } from 'node:crypto';
import { encodeEventStreamMessage } from '../../src/event-stream/decoder.ts';
import { encodeAggregatedRecord } from '../../src/internal/kpl.ts';
import { bodyText } from '../support/fake-fetch.ts';
import { hash32, seededRandom } from '../support/seeded-random.ts';
import { errorMessage, eventMessage, exceptionMessage, initialResponse } from '../support/event-stream-fake.ts';

const MAX_HASH = (1n << 128n) - 1n;
/** Where the sequence clock starts: a 56-digit number, as AWS's are. */
const SEQUENCE_ORIGIN = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898n;

/** What a reader must yield for one Kinesis record (one per user record of a KPL aggregate). */
export interface ExpectedItem {
  /** `${shardId}/${sequenceNumber}/${subSequenceNumber ?? '-'}` */
  key: string;
  shardId: string;
  sequenceNumber: string;
  subSequenceNumber: number | undefined;
  partitionKey: string;
  /** The data, as text for our records, hex for a raw aggregate. */
  text: string;
  arrival: number;
  /** Index of its Kinesis record in the shard. */
  index: number;
  /** Delivered as the Kinesis record's bytes (an aggregate not split): `text` is hex. */
  raw: boolean;
}

export interface WorldRecord {
  shardId: string;
  index: number;
  sequenceNumber: string;
  partitionKey: string;
  explicitHashKey: string | undefined;
  data: Uint8Array;
  arrival: number;
  /** The user records' texts when `data` is a valid KPL aggregate. */
  users: string[] | undefined;
  /** Looks like an aggregate (magic bytes) but its digest is wrong: delivered as one plain record. */
  corruptAggregate: boolean;
}

export interface WorldShard {
  id: string;
  parents: string[];
  start: bigint;
  end: bigint;
  /** Below every record's sequence number. */
  startSequence: bigint;
  /** Set when closed: above every record's sequence number and every continuation handed out. */
  endSequence: bigint | undefined;
  records: WorldRecord[];
  children: string[];
  createdAt: number;
  closedAt: number | undefined;
}

/** How subscriptions behave when nothing goes wrong. */
export interface SubscriptionModel {
  /** AWS: 300,000. */
  lifetimeMs: number;
  /** ResourceInUseException for a call this soon after a successful one. AWS: 5,000. */
  inUseWindowMs: number;
  /** LimitExceededException for a second call within a second (AWS: one call per second per shard and consumer). */
  rateLimit: boolean;
  /** How ResourceInUseException is answered: HTTP 400 (AWS) or a 200 with an `exception` message (kinesis-local). */
  inUseAs: 'http' | 'stream';
  /** Between events when no record arrives. */
  heartbeatMs: number;
  /** From a record's arrival (or the previous event while behind) to the event that carries it. */
  pushDelayMs: number;
  maxRecordsPerEvent: number;
  initialResponse: boolean;
  /** Continuations of events without records move past the last record (`advance`) or stay (`hold`). */
  idleContinuation: 'advance' | 'hold';
  /** Each message goes out in 1..maxPieces pieces. */
  maxPieces: number;
  /** Messages may arrive together in one chunk. */
  coalesce: boolean;
  /** Every answer's headers wait up to this long. */
  headerDelayMs: number;
}

/** Chances per SubscribeToShard call (before the answer) and per event (in the stream). */
export interface SubscribeFaults {
  network: number;
  http500: number;
  throttle: number;
  /** The answer never comes: the client's timeoutMs ends the attempt. */
  noAnswer: number;
  cutBetween: number;
  cutMid: number;
  exception: number;
  error: number;
  badCrc: number;
  stall: number;
  stallMs: number;
  /** A message of an event type added after this client was written (to be skipped), before an event. */
  unknownEvent: number;
}

export const NO_FAULTS: SubscribeFaults = {
  network: 0,
  http500: 0,
  throttle: 0,
  noAnswer: 0,
  cutBetween: 0,
  cutMid: 0,
  exception: 0,
  error: 0,
  badCrc: 0,
  stall: 0,
  stallMs: 0,
  unknownEvent: 0,
};

export interface EnhancedFakeOptions {
  /** Fixes every choice the fake makes. */
  seed: number;
  streamName: string;
  consumerARN: string;
  shards: number;
  listPageSize: number;
  /** Chance that a ListShards call fails with 500 (never twice in a row: the client's retry gets through). */
  listFailure: number;
  model: SubscriptionModel;
  faults: SubscribeFaults;
}

/** One SubscribeToShard call as the fake saw it. */
export interface SubscribeCall {
  id: number;
  shardId: string;
  position: { Type: string; SequenceNumber?: string; Timestamp?: number };
  at: number;
  /** `ok` streamed events; the rest is why not. */
  outcome: 'ok' | 'network' | 'http500' | 'throttle' | 'no-answer' | 'limit' | 'in-use' | 'invalid' | 'aborted';
  /** For `ok`: the shard's record count when it started (where LATEST resolved, for one). */
  startIndex?: number;
  /** For `ok`: why it ended. */
  end?: string;
}

export interface EnhancedFake {
  shards: Map<string, WorldShard>;
  calls: SubscribeCall[];
  listShardsCalls: number;
  /** fetch calls not settled yet. */
  readonly pendingFetches: number;
  /** Event stream bodies neither ended by the fake nor cancelled by the client. */
  readonly openBodies: number;
  fetch: typeof fetch;
  put(partitionKey: string, options?: { users?: number; explicitHashKey?: string; corruptAggregate?: boolean }): WorldRecord;
  split(shardId: string, fraction: number): [WorldShard, WorldShard];
  merge(a: string, b: string): WorldShard;
  openShards(): WorldShard[];
  /** Pairs of open shards whose hash ranges touch (mergeable). */
  adjacentPairs(): [WorldShard, WorldShard][];
  /** What a reader yields for `record`. */
  itemsOf(record: WorldRecord, deaggregate: boolean): ExpectedItem[];
  shardOfHash(hash: bigint): WorldShard;
}

export function md5HashKey(partitionKey: string): bigint {
  return BigInt(`0x${createHash('md5').update(partitionKey, 'utf8').digest('hex')}`);
}

const shardIdOf = (n: number) => `shardId-${String(n).padStart(12, '0')}`;

function jsonResponse(status: number, body: unknown, extra: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-RequestId': 'fake', ...extra } });
}

function errorResponse(status: number, type: string, message: string): Response {
  return jsonResponse(status, { __type: type, message }, { 'x-amzn-ErrorType': type });
}

interface Subscription {
  id: number;
  call: SubscribeCall;
  shard: WorldShard;
  cursor: number;
  continuation: string;
  openedAt: number;
  controller: ReadableStreamDefaultController<Uint8Array>;
  timer: ReturnType<typeof setTimeout> | undefined;
  dueAt: number;
  stalledUntil: number;
  finished: boolean;
  /** Messages sent with a flipped byte. */
  corrupted: number;
  /** This subscription's own choices (see randomFor). */
  random: () => number;
  /** Bytes sent but not delivered yet (coalesce). */
  held: Uint8Array[];
}

export function createEnhancedFake(options: EnhancedFakeOptions): EnhancedFake {
  const { model, faults } = options;
  // One random stream per call (per shard, by its count), not one for all: which of two shards'
  // requests arrives first may vary with real time (signing), and must not change what each gets.
  const randomFor = (name: string): (() => number) => seededRandom(hash32(`${options.seed}/${name}`));
  const clockRandom = randomFor('clock');
  const callsPerShard = new Map<string, number>();
  const callRandom = new WeakMap<object, () => number>();
  const shards = new Map<string, WorldShard>();
  const calls: SubscribeCall[] = [];
  const leases = new Map<string, { active: Subscription | undefined; lastSuccessAt: number; lastCallAt: number }>();
  let clock = SEQUENCE_ORIGIN;
  let shardCounter = 0;
  let recordCounter = 0;
  let pendingFetches = 0;
  let openBodies = 0;
  let lastListFailed = false;

  /** The next sequence number: from one clock, with gaps, so numbers only grow. */
  const tick = (): bigint => {
    clock += 1n + BigInt(Math.floor(clockRandom() * 1_000_000)) * 1_000_003n;
    return clock;
  };
  const between = (random: () => number, min: number, max: number) => min + Math.floor(random() * (max - min + 1));

  const makeShard = (parents: string[], start: bigint, end: bigint): WorldShard => {
    const shard: WorldShard = {
      id: shardIdOf(shardCounter++),
      parents,
      start,
      end,
      startSequence: tick(),
      endSequence: undefined,
      records: [],
      children: [],
      createdAt: Date.now(),
      closedAt: undefined,
    };
    shards.set(shard.id, shard);
    leases.set(shard.id, { active: undefined, lastSuccessAt: -Infinity, lastCallAt: -Infinity });
    return shard;
  };
  const step = (MAX_HASH + 1n) / BigInt(options.shards);
  for (let i = 0; i < options.shards; i++) makeShard([], step * BigInt(i), i === options.shards - 1 ? MAX_HASH : step * BigInt(i + 1) - 1n);

  const openShards = () => [...shards.values()].filter((s) => s.closedAt === undefined);
  const shardOfHash = (hash: bigint): WorldShard => openShards().find((s) => hash >= s.start && hash <= s.end)!;

  const close = (shard: WorldShard) => {
    shard.closedAt = Date.now();
    shard.endSequence = tick();
  };

  // ---- subscriptions ---------------------------------------------------------------------------

  const finish = (sub: Subscription, how: string) => {
    if (sub.finished) return;
    sub.finished = true;
    sub.call.end = sub.corrupted > 0 ? `${how} after bad-crc` : how;
    if (sub.timer !== undefined) clearTimeout(sub.timer);
    sub.timer = undefined;
    openBodies--;
    const lease = leases.get(sub.shard.id)!;
    if (lease.active === sub) lease.active = undefined;
  };

  const schedule = (sub: Subscription, delay: number) => {
    if (sub.timer !== undefined) clearTimeout(sub.timer);
    sub.dueAt = Date.now() + delay;
    sub.timer = setTimeout(() => {
      sub.timer = undefined;
      emit(sub);
    }, delay);
  };

  /**
   * Sends `bytes`, in 1..maxPieces pieces; with `coalesce`, maybe later, in one chunk with the next
   * message (as a socket read returns several messages once the client fell behind). `last`: the
   * body ends after these bytes, so nothing is held back.
   */
  const deliver = (sub: Subscription, bytes: Uint8Array, last = false) => {
    sub.held.push(bytes);
    if (!last && model.coalesce && sub.random() < 0.5) return;
    const all = new Uint8Array(sub.held.reduce((n, b) => n + b.length, 0));
    let at = 0;
    for (const b of sub.held) {
      all.set(b, at);
      at += b.length;
    }
    sub.held = [];
    const pieces = between(sub.random, 1, model.maxPieces);
    const cuts = new Set<number>();
    for (let i = 1; i < pieces && all.length > 1; i++) cuts.add(between(sub.random, 1, all.length - 1));
    let from = 0;
    for (const to of [...[...cuts].sort((a, b) => a - b), all.length]) {
      if (to > from) sub.controller.enqueue(all.slice(from, to));
      from = to;
    }
  };

  const wire = (record: WorldRecord) => ({
    SequenceNumber: record.sequenceNumber,
    ApproximateArrivalTimestamp: record.arrival / 1000,
    Data: Buffer.from(record.data).toString('base64'),
    PartitionKey: record.partitionKey,
    ...(record.explicitHashKey !== undefined ? { ExplicitHashKey: record.explicitHashKey } : {}),
    EncryptionType: 'NONE',
  });

  const childShardsOf = (shard: WorldShard) =>
    shard.children.map((id) => {
      const child = shards.get(id)!;
      return { ShardId: child.id, ParentShards: [...child.parents], HashKeyRange: { StartingHashKey: String(child.start), EndingHashKey: String(child.end) } };
    });

  /** The next event of `sub` (or its end, or a fault). */
  const emit = (sub: Subscription) => {
    if (sub.finished) return;
    const now = Date.now();
    if (now >= sub.openedAt + model.lifetimeMs) {
      // The service ends the subscription; the reader renews it.
      finish(sub, 'lifetime');
      if (sub.held.length > 0) deliver(sub, new Uint8Array(0), true);
      sub.controller.close();
      return;
    }
    if (now < sub.stalledUntil) {
      schedule(sub, sub.stalledUntil - now);
      return;
    }
    const { random } = sub;
    const u = random();
    let p = faults.cutBetween;
    if (u < p) {
      // The connection drops between two messages: reset, or closed early (a short subscription).
      const reset = random() < 0.7;
      finish(sub, reset ? 'cut-between (reset)' : 'cut-between (closed)');
      if (sub.held.length > 0) deliver(sub, new Uint8Array(0), true);
      if (reset) sub.controller.error(new TypeError('terminated'));
      else sub.controller.close();
      return;
    }
    if (u < (p += faults.exception)) {
      const type = ['InternalFailureException', 'InternalFailureException', 'KMSThrottlingException'][between(random, 0, 2)]!;
      finish(sub, `exception ${type}`);
      deliver(sub, exceptionMessage(type, 'We encountered an internal error. Please try again.'), true);
      sub.controller.close();
      return;
    }
    if (u < (p += faults.error)) {
      finish(sub, 'error InternalFailure');
      deliver(sub, errorMessage('InternalFailure', 'An internal error occurred.'), true);
      sub.controller.close();
      return;
    }
    const { shard } = sub;
    const left = shard.records.length - sub.cursor;
    const n = Math.min(left, model.maxRecordsPerEvent);
    const records = shard.records.slice(sub.cursor, sub.cursor + n);
    const atEnd = shard.closedAt !== undefined && sub.cursor + n === shard.records.length;
    let continuation: string | null;
    if (atEnd) continuation = null;
    else if (n > 0) {
      // Caught up: the continuation may already lie past the last record.
      const caughtUp = sub.cursor + n === shard.records.length;
      continuation = caughtUp && model.idleContinuation === 'advance' && random() < 0.5 ? String(tick()) : records[n - 1]!.sequenceNumber;
    } else continuation = model.idleContinuation === 'advance' ? String(tick()) : sub.continuation;
    const next = shard.records[sub.cursor + n];
    const bytes = eventMessage(records.map(wire), continuation, {
      millisBehindLatest: next === undefined ? 0 : Math.max(0, now - next.arrival),
      childShards: atEnd ? childShardsOf(shard) : null,
    });
    if (u < (p += faults.cutMid)) {
      // Cut inside this message: what arrived of it is useless.
      const reset = random() < 0.5;
      finish(sub, reset ? 'cut-mid (reset)' : 'cut-mid (closed)');
      deliver(sub, bytes.slice(0, between(random, 1, bytes.length - 1)), true);
      if (reset) sub.controller.error(new TypeError('terminated'));
      else sub.controller.close();
      return;
    }
    if (random() < faults.unknownEvent) {
      deliver(
        sub,
        encodeEventStreamMessage({
          headers: { ':message-type': { type: 'string', value: 'event' }, ':event-type': { type: 'string', value: 'SubscribeToShardHint' } },
          payload: new TextEncoder().encode('{"Hint":"a member a later API version may add"}'),
        }),
      );
    }
    // Damage that matters: events that carry records (checked apart from the other faults).
    if (n > 0 && random() < faults.badCrc) {
      // One byte flipped on the way: the service sent the event (and goes on with the next ones),
      // the client got it damaged. A reader that skipped it would lose its records.
      const corrupt = bytes.slice();
      corrupt[between(random, 0, corrupt.length - 1)]! ^= 1 << between(random, 0, 7);
      sub.corrupted++;
      deliver(sub, corrupt, atEnd);
    } else deliver(sub, bytes, atEnd);
    sub.cursor += n;
    if (continuation !== null) sub.continuation = continuation;
    if (atEnd) {
      finish(sub, 'shard-end');
      sub.controller.close();
      return;
    }
    if (u < (p += faults.stall)) {
      sub.stalledUntil = now + faults.stallMs;
      schedule(sub, faults.stallMs);
      return;
    }
    const behind = sub.cursor < shard.records.length || shard.closedAt !== undefined;
    schedule(sub, behind ? model.pushDelayMs : model.heartbeatMs);
  };

  /** A record arrived or the shard closed: an open subscription sends soon. */
  const poke = (shard: WorldShard) => {
    const sub = leases.get(shard.id)!.active;
    if (sub === undefined || sub.finished) return;
    if (sub.dueAt > Date.now() + model.pushDelayMs && Date.now() >= sub.stalledUntil) schedule(sub, model.pushDelayMs);
  };

  /** The cursor for a StartingPosition, or an error message. */
  const startIndex = (shard: WorldShard, position: SubscribeCall['position']): number | string => {
    const { records } = shard;
    switch (position.Type) {
      case 'TRIM_HORIZON':
        return 0;
      case 'LATEST':
        return records.length;
      case 'AT_TIMESTAMP': {
        const at = Math.round(position.Timestamp! * 1000);
        const index = records.findIndex((r) => r.arrival >= at);
        return index < 0 ? records.length : index;
      }
      case 'AT_SEQUENCE_NUMBER':
      case 'AFTER_SEQUENCE_NUMBER': {
        const text = position.SequenceNumber;
        if (typeof text !== 'string' || !/^\d+$/.test(text)) return `StartingSequenceNumber ${text} is not a sequence number`;
        const seq = BigInt(text);
        const ceiling = shard.endSequence ?? clock;
        if (seq < shard.startSequence || seq > ceiling) {
          return `StartingSequenceNumber ${text} used in ShardIterator is invalid for shard ${shard.id}: outside ${shard.startSequence}..${ceiling}`;
        }
        const after = position.Type === 'AFTER_SEQUENCE_NUMBER';
        const index = records.findIndex((r) => (after ? BigInt(r.sequenceNumber) > seq : BigInt(r.sequenceNumber) >= seq));
        return index < 0 ? records.length : index;
      }
      default:
        return `unknown StartingPosition.Type ${position.Type}`;
    }
  };

  const subscribe = async (body: any, init: RequestInit | undefined, signal: AbortSignal | undefined, sentAt: number): Promise<Response> => {
    const now = Date.now();
    // `at`: when the request was sent (the answer may take headerDelayMs more).
    const call: SubscribeCall = { id: calls.length, shardId: body.ShardId, position: body.StartingPosition, at: sentAt, outcome: 'ok' };
    calls.push(call);
    const shard = shards.get(body.ShardId);
    if (body.ConsumerARN !== options.consumerARN || shard === undefined) {
      call.outcome = 'invalid';
      return errorResponse(400, 'ResourceNotFoundException', `Consumer ${body.ConsumerARN} or shard ${body.ShardId} not found`);
    }
    const lease = leases.get(shard.id)!;
    const previousCall = lease.lastCallAt;
    lease.lastCallAt = now;
    const random = callRandom.get(init!)!;
    const u = random();
    let p = faults.network;
    if (u < p) {
      call.outcome = 'network';
      throw new TypeError('fetch failed');
    }
    if (u < (p += faults.http500)) {
      call.outcome = 'http500';
      return errorResponse(500, 'InternalFailure', 'We encountered an internal error.');
    }
    if (u < (p += faults.throttle)) {
      call.outcome = 'throttle';
      return errorResponse(400, 'LimitExceededException', `Rate exceeded for consumer ${options.consumerARN} and shard ${shard.id}`);
    }
    if (u < (p += faults.noAnswer)) {
      call.outcome = 'no-answer';
      // Like a real fetch, it rejects with the signal's reason once the client gives up.
      return new Promise<Response>((_resolve, reject) => signal?.addEventListener('abort', () => reject(signal.reason), { once: true }));
    }
    if (model.rateLimit && now - previousCall < 1_000) {
      call.outcome = 'limit';
      return errorResponse(400, 'LimitExceededException', `Rate exceeded for consumer ${options.consumerARN} and shard ${shard.id}`);
    }
    if (lease.active !== undefined || now - lease.lastSuccessAt < model.inUseWindowMs) {
      call.outcome = 'in-use';
      const message = `Another active subscription exists for consumer ${options.consumerARN} and shard ${shard.id}`;
      if (model.inUseAs === 'http') return errorResponse(400, 'ResourceInUseException', message);
      return streamOf([exceptionMessage('ResourceInUseException', message)]);
    }
    const start = startIndex(shard, body.StartingPosition);
    if (typeof start === 'string') {
      call.outcome = 'invalid';
      return errorResponse(400, 'InvalidArgumentException', start);
    }
    call.startIndex = start;
    lease.lastSuccessAt = now;
    const previous = shard.records[start - 1];
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const sub: Subscription = {
      id: call.id,
      call,
      shard,
      cursor: start,
      // Before any event: where this subscription started.
      continuation: previous?.sequenceNumber ?? String(shard.startSequence),
      openedAt: now,
      controller: undefined as never,
      timer: undefined,
      dueAt: Infinity,
      stalledUntil: 0,
      finished: false,
      corrupted: 0,
      random,
      held: [],
    };
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
      },
      cancel() {
        finish(sub, 'cancelled');
      },
    });
    sub.controller = controller;
    openBodies++;
    lease.active = sub;
    // A real fetch errors the body when its signal aborts after the answer.
    signal?.addEventListener(
      'abort',
      () => {
        if (sub.finished) return;
        finish(sub, 'aborted');
        try {
          controller.error(signal.reason);
        } catch {
          // already closed
        }
      },
      { once: true },
    );
    if (model.initialResponse) deliver(sub, initialResponse());
    schedule(sub, model.pushDelayMs);
    return new Response(stream, { status: 200, headers: { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-RequestId': `sub-${call.id}` } });
  };

  const streamOf = (messages: Uint8Array[]): Response => {
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (const m of messages) c.enqueue(m);
        c.close();
      },
    });
    return new Response(body, { status: 200, headers: { 'content-type': 'application/vnd.amazon.eventstream' } });
  };

  // ---- ListShards ------------------------------------------------------------------------------

  const listShards = (body: any, random: () => number): Response => {
    if ((body.StreamName !== undefined || body.StreamARN !== undefined) && body.NextToken !== undefined) {
      return errorResponse(400, 'InvalidArgumentException', 'NextToken and StreamName cannot be provided together.');
    }
    if (body.NextToken === undefined && body.StreamName !== options.streamName) {
      return errorResponse(400, 'ResourceNotFoundException', `Stream ${body.StreamName} not found`);
    }
    if (!lastListFailed && random() < options.listFailure) {
      lastListFailed = true;
      return errorResponse(500, 'InternalFailure', 'We encountered an internal error.');
    }
    lastListFailed = false;
    const offset = body.NextToken === undefined ? 0 : (JSON.parse(Buffer.from(body.NextToken, 'base64').toString('utf8')) as { offset: number }).offset;
    const all = [...shards.values()];
    const page = all.slice(offset, offset + options.listPageSize);
    const more = offset + page.length < all.length;
    return jsonResponse(200, {
      Shards: page.map((s) => ({
        ShardId: s.id,
        ...(s.parents[0] !== undefined ? { ParentShardId: s.parents[0] } : {}),
        ...(s.parents[1] !== undefined ? { AdjacentParentShardId: s.parents[1] } : {}),
        HashKeyRange: { StartingHashKey: String(s.start), EndingHashKey: String(s.end) },
        SequenceNumberRange: {
          StartingSequenceNumber: String(s.startSequence),
          ...(s.endSequence !== undefined ? { EndingSequenceNumber: String(s.endSequence) } : {}),
        },
      })),
      ...(more ? { NextToken: Buffer.from(JSON.stringify({ offset: offset + page.length })).toString('base64') } : {}),
    });
  };

  // ---- fetch -----------------------------------------------------------------------------------

  const handle = async (init: RequestInit | undefined): Promise<Response> => {
    // (`init` keys this call's random stream.)
    init ??= {};
    const target = new Headers(init.headers).get('x-amz-target') ?? '';
    const operation = target.slice(target.lastIndexOf('.') + 1);
    const body = JSON.parse(bodyText(init?.body));
    const signal = init?.signal ?? undefined;
    if (signal?.aborted) throw signal.reason;
    const key = operation === 'SubscribeToShard' ? String(body.ShardId) : operation;
    const n = (callsPerShard.get(key) ?? 0) + 1;
    callsPerShard.set(key, n);
    const random = randomFor(`${key}#${n}`);
    callRandom.set(init, random);
    // The answer's headers take a while; an abort ends the wait, as with a real fetch.
    const sentAt = Date.now();
    const delay = between(random, 0, model.headerDelayMs);
    if (delay > 0) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        }, delay);
        const onAbort = () => {
          clearTimeout(timer);
          reject(signal!.reason);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    if (operation === 'ListShards') {
      fake.listShardsCalls++;
      return listShards(body, random);
    }
    if (operation === 'SubscribeToShard') return subscribe(body, init, signal, sentAt);
    return errorResponse(400, 'UnknownOperationException', `the fake does not serve ${operation}`);
  };

  const fake: EnhancedFake = {
    shards,
    calls,
    listShardsCalls: 0,
    get pendingFetches() {
      return pendingFetches;
    },
    get openBodies() {
      return openBodies;
    },
    fetch: (async (_input: RequestInfo | URL, init?: RequestInit) => {
      pendingFetches++;
      try {
        return await handle(init);
      } finally {
        pendingFetches--;
      }
    }) as typeof fetch,
    put(partitionKey, putOptions = {}) {
      const hash = putOptions.explicitHashKey !== undefined ? BigInt(putOptions.explicitHashKey) : md5HashKey(partitionKey);
      const shard = shardOfHash(hash);
      const id = recordCounter++;
      let data: Uint8Array;
      let users: string[] | undefined;
      const count = putOptions.users ?? 0;
      if (count > 0) {
        users = Array.from({ length: count }, (_, i) => `r${id}.${i}`);
        data = encodeAggregatedRecord(users.map((text) => ({ partitionKey, data: new TextEncoder().encode(text) })));
        if (putOptions.corruptAggregate) {
          // The last byte is part of the MD5 digest: a reader must hand the record over whole.
          data[data.length - 1]! ^= 0xff;
          users = undefined;
        }
      } else data = new TextEncoder().encode(`r${id}`);
      const record: WorldRecord = {
        shardId: shard.id,
        index: shard.records.length,
        sequenceNumber: String(tick()),
        partitionKey,
        explicitHashKey: putOptions.explicitHashKey,
        data,
        arrival: Date.now(),
        users,
        corruptAggregate: putOptions.corruptAggregate === true && count > 0,
      };
      shard.records.push(record);
      poke(shard);
      return record;
    },
    split(shardId, fraction) {
      const parent = shards.get(shardId)!;
      const width = parent.end - parent.start;
      // NewStartingHashKey anywhere inside the range, not only in the middle.
      const at = parent.start + 1n + (width * BigInt(Math.floor(fraction * 1_000_000))) / 1_000_000n;
      const middle = at > parent.end ? parent.end : at;
      close(parent);
      const a = makeShard([parent.id], parent.start, middle - 1n);
      const b = makeShard([parent.id], middle, parent.end);
      parent.children = [a.id, b.id];
      poke(parent);
      return [a, b];
    },
    merge(first, second) {
      const a = shards.get(first)!;
      const b = shards.get(second)!;
      close(a);
      close(b);
      const child = makeShard([a.id, b.id], a.start < b.start ? a.start : b.start, a.end > b.end ? a.end : b.end);
      a.children = [child.id];
      b.children = [child.id];
      poke(a);
      poke(b);
      return child;
    },
    openShards,
    adjacentPairs() {
      const open = openShards().sort((x, y) => (x.start < y.start ? -1 : 1));
      const pairs: [WorldShard, WorldShard][] = [];
      for (let i = 1; i < open.length; i++) if (open[i - 1]!.end + 1n === open[i]!.start) pairs.push([open[i - 1]!, open[i]!]);
      return pairs;
    },
    itemsOf(record, deaggregate) {
      const base = { shardId: record.shardId, sequenceNumber: record.sequenceNumber, partitionKey: record.partitionKey, arrival: record.arrival, index: record.index };
      if (deaggregate && record.users !== undefined) {
        return record.users.map((text, sub) => ({ ...base, key: `${record.shardId}/${record.sequenceNumber}/${sub}`, subSequenceNumber: sub, text, raw: false }));
      }
      const raw = record.users !== undefined || record.corruptAggregate;
      const text = raw ? Buffer.from(record.data).toString('hex') : new TextDecoder().decode(record.data);
      return [{ ...base, key: `${record.shardId}/${record.sequenceNumber}/-`, subSequenceNumber: undefined, text, raw }];
    },
    shardOfHash,
  };
  return fake;
}

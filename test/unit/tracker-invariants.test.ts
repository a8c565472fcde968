// @vitest-environment happy-dom
// Seeded model-based invariants of the browser tracker's delivery (src/tracker/index.ts), in the
// manner of producer-invariants.test.ts. Each case draws a configuration (batch limits, flush
// interval, outbox bound, fetch keepalive or not, whether sendBeacon shares the page's keepalive
// budget as Chrome's does, the Worker's body cap) and runs a minute of page life against a fake
// ingest endpoint that answers each request its own way (seeded), as the Worker's /collect does
// (worker-example/src/index.ts) or what may stand between it and the page: every event accepted;
// some left for a retry or left out (the contract's "treated as retry"); events refused as invalid
// (properties over 8 KiB) in a 200, or in a 400 when none was valid; 413 over the body cap; 429
// with Retry-After in seconds, as an HTTP date, or (an intermediary's) unparseable; 401; 400
// {error}; 500; 503; a 200 that is not JSON (a captive portal); a network error; a timeout (a
// network error after 15-45 s, the events stored or not); stored but the connection dropped
// (unknown outcome); slow answers; answers that never come while the page lives; an outage (503
// with the Worker's retry body, network errors, or the rate limiter's 429 for its whole period).
// The page: track() in small groups and in bursts beyond the outbox bound, flush(), the tab hidden
// (the unload path: keepalive within the page's 64 KiB budget, then sendBeacon, which refuses a
// body over 64 KiB and, sharing the budget, a spent budget), reloads (a new tracker on the same
// storage; the old page never reads its answers, and its requests without keepalive are aborted,
// stored or not), `online`, disable()/enable(), a second tab on the same storage (whose writes may
// reach the other tab's view a moment later, as in Chrome), and localStorage that runs out of quota
// for a while, throws on every write for a while, or is blocked. Each page load writes an outbox
// of its own and takes over those of pages that are gone; the checks look at all of them together.
//
// Every case checks:
// - no silent loss: each event tracked (while enabled) is stored by the endpoint at least once, or
//   reported: a console warning naming its id after the endpoint refused it (invalid) or answered
//   413 to it alone, or trimmed for overflow (the outbox write that removed it from storage came
//   with an "outbox full" warning, in track() or when the page took over other outboxes; trims of
//   an outbox that only memory held are counted), and the warnings add up
//   to `dropped`. The one documented loss: events that only the page's memory held (its storage
//   writes failing: "kept in memory for this page") when that page unloaded; counted, not failed;
// - duplicates only as documented: a page reads "accepted" for an event at most once, and all
//   pages together at most once per tab open ("at worst twice" with two tabs), unless the write
//   that acknowledged it failed (the next load sends it again: at-least-once); any other copy came
//   from a request whose answer nobody read (connection dropped, timeout, the page unloaded, a
//   beacon), or from two pages taking over the same outbox (one reading a view of storage that the
//   other's take-over had not reached); an event that left every outbox is never written back to
//   one, except by such a take-over;
// - ids: one id per event in every request, beacon and outbox write, with the same JSON each time;
//   no id twice in a request, nor in two unanswered requests of a page;
// - bounds: each stored outbox within maxOutboxEvents at every write, and a page writes only its
//   own outbox key; the ids a page marks in flight
//   beyond those of its unanswered requests never outnumber maxOutboxEvents (the tracker's set,
//   caught by probeInFlight()); requests within maxBatchEvents, and within maxBatchBytes when they
//   hold more than one event; keepalive bodies in flight within the page's 64 KiB (a browser fails
//   the request past it);
// - backoff: no request before a Retry-After the page read has run out (except the halves of a 413
//   and after `online`); during an outage, rounds of requests within what a backoff growing from
//   1 s to 60 s allows; at most MAX_REQUESTS in a case (a tight loop);
// - flush() resolves only once every request it started has been answered;
// - the end: with the endpoint and storage healthy, the outboxes of pages that could not mark
//   theirs gone (storage failing at pagehide) abandoned, each tab reloaded once (so that beaconed and
//   abandoned events go again) and the pages idle, no outbox holds an event and no timer is left.
//
// What they found (the cases at the end of the file): a later failure's short backoff replaced a
// pending Retry-After; an unparseable Retry-After made the page resend at once on every answer;
// (by reading the code, held by a bound here) beaconed ids stayed marked in flight after their
// events left the outbox. Two tabs lost each other's events when one of them could not write the
// outbox they shared for a while, or when both wrote it at the same moment (storageDelayMs); each
// page load now has an outbox key of its own, and makeCase() draws both mixes again. Fixed in
// src/tracker/index.ts.
//
// Exploration: TRACKER_INVARIANTS_SEEDS=first:count runs other seeds, TRACKER_INVARIANTS_REPORT=1
// prints each case's configuration and figures, TRACKER_INVARIANTS_TRACE=1 the operations and
// requests of a failing case, TRACKER_INVARIANTS_OVERRIDE='{...}' overrides configuration fields
// (JSON) of every case.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTracker, TRACKER_EVENT_LIMITS, type Tracker, type TrackerEvent, type TrackerOptions, type TrackerStorage } from '../../src/tracker/index.ts';
import { createEndpoint, hidePage, memoryStorage, OUTBOX_PREFIX, TEST_TRACKER_OPTIONS, type FakeEndpoint } from '../support/tracker-harness.ts';
import { randomInt, seededRandom } from '../support/seeded-random.ts';

const ENDPOINT = 'https://ingest.example.com/collect';
/** The tracker's ABANDONED_OUTBOX_MS: an outbox not written for this long is taken over by the next page. */
const ABANDONED_OUTBOX_MS = 300_000;
/** A page's budget for keepalive bodies in flight (fetch spec, "inflight keepalive bytes"). */
const KEEPALIVE_BUDGET = 65_536;
const STEP_MS = 100;
/** The drain ends after this long without a request: more than the 60 s backoff cap and any Retry-After here. */
const QUIET_MS = 70_000;
const MAX_DRAIN_MS = 900_000;
/** More requests than this in one case is a tight loop (the cases make a few hundred). */
const MAX_REQUESTS = 6_000;
const REPORT = process.env.TRACKER_INVARIANTS_REPORT === '1';
/** TRACKER_INVARIANTS_TRACE=1 prints the operations and requests of a failing case. */
const TRACE = process.env.TRACKER_INVARIANTS_TRACE === '1';

// ---- configurations ------------------------------------------------------------------------------

interface Outage {
  fromMs: number;
  forMs: number;
  /**
   * 503 with the Worker's "nothing stored" body, network errors, or the rate limiter's 429 with
   * Retry-After: 60 (an intermediary's unparseable one where the case has badRetryAfter).
   */
  kind: 503 | 'network' | 429;
}

interface Faults {
  /** Per request, in this order of precedence. */
  hang: number;
  network: number;
  timeout: number;
  throttle: number;
  /** Share of 429s whose Retry-After cannot be parsed (an intermediary's; all of an outage's). */
  badRetryAfter: number;
  unauthorized: number;
  malformed: number;
  server: number;
  notJson: number;
  unknown: number;
  /** Per event of a 200: listed in retry, or left out of every list. */
  partial: number;
  /** The answer takes 1-8 s instead of 5-80 ms. */
  slow: number;
  /** A beacon the browser took that never arrives. */
  beaconLost: number;
  outage: Outage | undefined;
}

type StorageMode = 'ok' | 'quota' | 'failing' | 'blocked';

interface CaseConfig {
  seed: number;
  maxBatchEvents: number;
  maxBatchBytes: number;
  flushIntervalMs: number;
  maxOutboxEvents: number;
  keepalive: boolean;
  /** sendBeacon draws on the page's keepalive budget (Chrome) or only refuses bodies over 64 KiB. */
  beaconSharesBudget: boolean;
  /** The Worker's MAX_BODY_BYTES. */
  workerMaxBodyBytes: number;
  faults: Faults;
  /** A second tab on the same storage, opened and maybe closed at these times. */
  secondTab: { openMs: number; closeMs: number | undefined } | undefined;
  /**
   * 'quota': another script's data leaves the outbox little or no room for a while; 'failing':
   * every write throws QuotaExceededError for a while; 'blocked': every call throws SecurityError.
   */
  storage: StorageMode;
  /**
   * How long a write of one tab takes to reach the other tab's view of localStorage (0: one
   * coherent store, as if the tabs took turns). Browsers give no lock across tabs
   * (https://html.spec.whatwg.org/multipage/webstorage.html#introduction-15).
   */
  storageDelayMs: number;
  events: number;
  /** Most events per track() group. */
  perOp: number;
  /** Bursts of 1.5 x maxOutboxEvents events in one go, on top of `events`. */
  bursts: number;
  /** Events whose properties the Worker refuses (9 KB > 8 KiB). */
  bigShare: number;
  /** Events over every cap (70 KB): 413 alone, refused by sendBeacon. */
  hugeShare: number;
  maxPad: number;
  flushes: number;
  hides: number;
  reloads: number;
  onlines: number;
  disables: number;
  activeMs: number;
}

function pick<T>(random: () => number, values: readonly T[]): T {
  return values[Math.floor(random() * values.length)]!;
}

function noFaults(): Faults {
  return {
    hang: 0,
    network: 0,
    timeout: 0,
    throttle: 0,
    badRetryAfter: 0,
    unauthorized: 0,
    malformed: 0,
    server: 0,
    notJson: 0,
    unknown: 0,
    partial: 0,
    slow: 0,
    beaconLost: 0,
    outage: undefined,
  };
}

function makeCase(seed: number): CaseConfig {
  const r = seededRandom(seed);
  const heavy = r() < 0.35;
  const none = !heavy && r() < 0.2;
  const activeMs = 60_000;
  const faults: Faults = none
    ? noFaults()
    : {
        hang: r() < 0.15 ? 0.01 : 0,
        network: heavy ? 0.08 : 0.03,
        timeout: r() < 0.3 ? 0.02 : 0,
        throttle: heavy ? 0.06 : 0.02,
        badRetryAfter: r() < 0.2 ? 0.5 : 0,
        unauthorized: r() < 0.3 ? 0.03 : 0,
        malformed: r() < 0.2 ? 0.02 : 0,
        server: heavy ? 0.1 : 0.03,
        notJson: r() < 0.2 ? 0.02 : 0,
        unknown: r() < 0.5 ? (heavy ? 0.06 : 0.02) : 0,
        partial: pick(r, [0, 0.1, 0.3]),
        slow: pick(r, [0, 0.1, 0.3]),
        beaconLost: pick(r, [0, 0.1]),
        outage: r() < 0.35 ? { fromMs: randomInt(r, 5_000, 30_000), forMs: pick(r, [5_000, 20_000, 45_000]), kind: pick(r, [503, 'network', 429] as const) } : undefined,
      };
  const maxOutboxEvents = pick(r, [1_000, 60, 15]);
  const secondTab = r() < 0.35 ? { openMs: randomInt(r, 0, 30_000), closeMs: r() < 0.4 ? randomInt(r, 35_000, 55_000) : undefined } : undefined;
  const storage = pick(r, ['ok', 'ok', 'ok', 'quota', 'failing', 'blocked'] as const);
  const config: CaseConfig = {
    seed,
    maxBatchEvents: pick(r, [50, 10, 3]),
    maxBatchBytes: pick(r, [16_384, 4_000, 1_500]),
    flushIntervalMs: pick(r, [5_000, 1_000, 200]),
    maxOutboxEvents,
    keepalive: r() < 0.8,
    beaconSharesBudget: r() < 0.6,
    workerMaxBodyBytes: pick(r, [65_536, 65_536, 6_000]),
    faults,
    secondTab,
    storage,
    storageDelayMs: 0,
    events: randomInt(r, 60, maxOutboxEvents === 1_000 ? 250 : 300),
    perOp: pick(r, [2, 8, 30]),
    bursts: maxOutboxEvents === 1_000 ? 0 : randomInt(r, 0, 2),
    bigShare: pick(r, [0, 0.03]),
    hugeShare: pick(r, [0, 0, 0.01]),
    maxPad: pick(r, [40, 400, 2_500]),
    flushes: randomInt(r, 0, 4),
    hides: randomInt(r, 0, 4),
    reloads: randomInt(r, 0, 3),
    onlines: randomInt(r, 0, 2),
    disables: r() < 0.25 ? 1 : 0,
    activeMs,
  };
  // Drawn last, so that the other fields of a seed stay what they were before two tabs could have
  // storage that lags (Chrome's tabs read cached copies; a few ms is typical, 50 a slow machine).
  if (secondTab) config.storageDelayMs = pick(r, [0, 0, 5, 50]);
  return config;
}

function describeCase(config: CaseConfig): string {
  return `seed ${config.seed}: ${JSON.stringify(config)}`;
}

// ---- helpers -------------------------------------------------------------------------------------

const encoder = new TextEncoder();
const utf8 = (text: string): number => encoder.encode(text).length;

/** Lets the tracker's promise chains (await fetch, await json, acknowledge) run to their end. */
async function microtasks(count = 12): Promise<void> {
  for (let i = 0; i < count; i++) await Promise.resolve();
}

/** A v4 UUID from `random`, so that ids are the same on every run of a seed. */
function uuid(random: () => number): `${string}-${string}-${string}-${string}-${string}` {
  const hex = (length: number) => Array.from({ length }, () => Math.floor(random() * 16).toString(16)).join('');
  return `${hex(8)}-${hex(4)}-4${hex(3)}-${'89ab'[Math.floor(random() * 4)]}${hex(3)}-${hex(12)}`;
}

/** What a fetch resolves with: status, headers.get and json(), as much of Response as the tracker reads. */
function answer(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const lower = new Map(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
  return {
    status,
    ok: status >= 200 && status < 300,
    headers: { get: (name: string) => lower.get(name.toLowerCase()) ?? null },
    json: async () => JSON.parse(text) as unknown,
    text: async () => text,
  } as unknown as Response;
}

/**
 * Creates a tracker and catches its set of in-flight ids, the first Set createTracker makes, so that
 * a test can see the memory it holds (nothing else exposes it). Fails loudly if the tracker stops
 * making one.
 */
function probeInFlight(create: () => Tracker): { tracker: Tracker; inFlight: Set<string> } {
  const RealSet = globalThis.Set;
  const sets: Set<unknown>[] = [];
  (globalThis as { Set: SetConstructor }).Set = class extends RealSet<unknown> {
    constructor(values?: Iterable<unknown> | null) {
      super(values);
      sets.push(this);
    }
  } as SetConstructor;
  let tracker: Tracker;
  try {
    tracker = create();
  } finally {
    (globalThis as { Set: SetConstructor }).Set = RealSet;
  }
  if (sets[0] === undefined) throw new Error('createTracker made no Set: the in-flight probe needs updating');
  return { tracker, inFlight: sets[0] as Set<string> };
}

/** The events of one stored outbox, `[written at, events]`. */
const parseOutbox = (raw: string | null | undefined): TrackerEvent[] => (raw == null ? [] : (JSON.parse(raw) as [number, TrackerEvent[]])[1]);
/** The events of every outbox in a view of storage: one key per page load. */
const outboxEvents = (store: Map<string, string>): TrackerEvent[] => [...store].flatMap(([key, raw]) => (key.startsWith(OUTBOX_PREFIX) ? parseOutbox(raw) : []));

// ---- one case ------------------------------------------------------------------------------------

interface Tracked {
  n: number;
  name: string;
  kind: 'normal' | 'big' | 'huge';
  page: number;
  atMs: number;
  id: string | undefined;
  /** Its JSON in the first request or beacon that carried it. */
  json: string | undefined;
  /** Copies the endpoint stored. */
  stored: number;
  /** Per page: answers it read that listed the event accepted. */
  knownStored: Map<number, number>;
  /** The endpoint listed it rejected / answered 413 to it alone, in an answer a live page read. */
  rejectedKnown: boolean;
  tooLargeKnown: boolean;
  /** Removed from the stored outbox by a write that came with an "outbox full" warning. */
  trimmed: boolean;
  /** Removed from the stored outbox by a write that neither acknowledged nor trimmed it. */
  overwritten: boolean;
  /** Only the memory of a page held it (storage failing) when that page unloaded. */
  memoryOnlyAtUnload: boolean;
  /** A page acknowledged it, but the outbox write that would have removed it failed. */
  ackUnrecorded: boolean;
  /**
   * Two pages took over the outbox that held it: one read it from a view of storage that another
   * tab's take-over had not reached yet (storageDelayMs). Sent twice: at-least-once.
   */
  takenOverTwice: boolean;
}

interface Req {
  n: number;
  page: Page;
  kind: 'fetch' | 'beacon';
  at: number;
  events: TrackerEvent[];
  bytes: number;
  keepalive: boolean;
  /** A half of a batch answered 413, sent at the instant of that answer. */
  split: boolean;
  outcome: string;
  answeredAt: number | undefined;
}

interface Page {
  id: number;
  tab: number;
  tracker: Tracker;
  alive: boolean;
  enabled: boolean;
  listeners: Map<string, ((event: Event) => void)[]>;
  /** The tracker's in-flight id set (see probeInFlight). */
  inFlight: Set<string>;
  /** Keepalive bodies (and beacons, when they share the budget) in flight, as the browser counts them. */
  keepaliveBytes: number;
  open: Set<Req>;
  bornAt: number;
  diedAt: number | undefined;
  /** Events the "outbox full" warnings of this page's track() calls allow its next outbox write to remove. */
  overflowAllowance: number;
  /** Its last write of its whole outbox failed, so only its memory holds the outbox. */
  memoryHoldsOutbox: boolean;
  /**
   * Its last storage call was an outbox write that failed: the tracker's next call writes what is
   * left of the stored outbox (or erases it), which does not store the memory's.
   */
  afterFailedWrite: boolean;
  /** The one outbox key it writes, learnt from its first write. */
  outboxKey: string | undefined;
  /** A Retry-After the page read: no request before notBefore, for answers after notBeforeSince. */
  notBefore: number;
  notBeforeSince: number;
  splits: { at: number; ids: Set<string> }[];
  collecting: Req[] | undefined;
  flushes: { at: number; requests: Req[]; resolvedAt: number | undefined }[];
  onlineAt: number[];
  tracked: Tracked[];
}

type Op =
  | { atMs: number; kind: 'track'; tab: number; count: number }
  | { atMs: number; kind: 'flush' | 'hide' | 'reload' | 'online' | 'disable' | 'enable'; tab: number }
  | { atMs: number; kind: 'open-tab' | 'close-tab' | 'squeeze' | 'unsqueeze' | 'fail-writes' | 'heal-writes' };

type PlanKind = 'hang' | 'network' | 'timeout' | 'unknown' | '429' | '401' | '413' | '400' | '500' | '503' | 'not-json' | 'ok' | 'outage-503' | 'outage-429';

interface Plan {
  kind: PlanKind;
  delayMs: number;
  /** The Worker stores the request's valid events (whether or not anyone reads the answer). */
  stores: boolean;
  retryAfter?: string;
}

interface CaseReport {
  requests: number;
  /** Requests the page gave up on (its 30 s timeout). */
  aborted: number;
  beacons: number;
  stored: number;
  duplicates: number;
  trimmed: number;
  rejected: number;
  tooLarge: number;
  documentedLoss: number;
  overwritten: number;
  /** Outboxes holding events that a page took over from a page that was gone. */
  takenOver: number;
  /** Events two pages took over (one from a lagging view of storage). */
  takenOverTwice: number;
  pages: number;
  drainMs: number;
  ms: number;
}

async function runCase(config: CaseConfig): Promise<{ violations: string[]; report: CaseReport }> {
  const began = performance.now();
  vi.useFakeTimers({ now: new Date('2025-06-01T12:00:00Z') });
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  const violations: string[] = [];
  const said = new Set<string>();
  /** Records a violation; `key` keeps one message per kind and subject. */
  const violate = (message: string, key = message) => {
    if (said.has(key) || violations.length >= 30) return;
    said.add(key);
    violations.push(`[${now()} ms] ${message}`);
  };
  const f = config.faults;
  const planRandom = seededRandom(config.seed * 8 + 1);
  const endpointRandom = seededRandom(config.seed * 8 + 2);
  const jitterRandom = seededRandom(config.seed * 8 + 3);
  const idRandom = seededRandom(config.seed * 8 + 4);
  vi.spyOn(crypto, 'randomUUID').mockImplementation(() => uuid(idRandom));
  // AbortSignal.timeout runs on the platform's timers, which the fake clock does not drive: a
  // stand-in with the same contract, so that the tracker's request timeout fires in fake time.
  vi.spyOn(AbortSignal, 'timeout').mockImplementation((ms) => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new DOMException('signal timed out', 'TimeoutError')), ms);
    return controller.signal;
  });

  const all: Tracked[] = [];
  const byName = new Map<string, Tracked>();
  const byId = new Map<string, Tracked>();
  const discarded = new Set<string>();
  const pages: Page[] = [];
  const tabs: (Page | undefined)[] = [undefined, undefined];
  const requests: Req[] = [];
  let currentPage: Page | undefined;
  /** The page that called its storage last: the one whose tracker is running (warnings of a flush). */
  let storagePage: Page | undefined;
  let overflowWarned = 0;
  let trimmedCount = 0;
  let memoryTrimmed = 0;
  let overwrittenCount = 0;
  let takenOver = 0;
  let takenOverTwice = 0;
  const rejectedWarnings: string[] = [];
  const tooLargeWarnings: string[] = [];

  vi.spyOn(console, 'warn').mockImplementation((...args: unknown[]) => {
    const text = args.map(String).join(' ');
    const overflow = /outbox full, dropped (\d+) oldest/.exec(text);
    const rejected = /event (\S+) rejected: /.exec(text);
    const tooLarge = /event (\S+) dropped: too large/.exec(text);
    if (overflow) {
      overflowWarned += Number(overflow[1]);
      // From track(), or from a page taking over outboxes of pages that are gone (at its start or
      // in a flush, after reading them).
      const page = currentPage ?? storagePage;
      if (page === undefined) violate(`an "outbox full" warning from no page: ${text}`);
      else page.overflowAllowance += Number(overflow[1]);
    } else if (rejected) rejectedWarnings.push(rejected[1]!);
    else if (tooLarge) tooLargeWarnings.push(tooLarge[1]!);
    else violate(`unexpected warning: ${text}`);
  });

  // ---- events seen -------------------------------------------------------------------------------
  const learn = (event: TrackerEvent, where: string): Tracked | undefined => {
    const tracked = byName.get(event.name);
    if (tracked === undefined) {
      violate(`${where}: ${event.name} (${event.id}) was never tracked${discarded.has(event.name) ? ' (it was tracked while disabled, which discards it)' : ''}`, `untracked ${event.name}`);
      return undefined;
    }
    if (tracked.id === undefined) {
      const other = byId.get(event.id);
      if (other !== undefined) violate(`${where}: ${event.name} carries ${event.id}, the id of ${other.name}`);
      tracked.id = event.id;
      byId.set(event.id, tracked);
    } else if (tracked.id !== event.id) {
      violate(`${where}: ${event.name} carries id ${event.id}, first seen as ${tracked.id}`, `id ${event.name}`);
    }
    return tracked;
  };

  // ---- localStorage shared by the tabs ---------------------------------------------------------
  const backend = new Map<string, string>();
  const views = new Map<number, Map<string, string>>([
    [0, new Map()],
    [1, new Map()],
  ]);
  const FILLER = 'other-app:cache';
  let quotaChars = config.storage === 'quota' ? 2_000_000 : Infinity;
  let failWrites = false;
  let propagations = 0;
  const blocked = config.storage === 'blocked';
  const acknowledged = new Set<string>();
  const everRemoved = new Set<string>();
  const used = () => {
    let total = 0;
    for (const [key, value] of backend) total += key.length + value.length;
    return total;
  };
  const usedAfter = (key: string, value: string) => {
    const before = backend.get(key);
    return used() - (before === undefined ? 0 : key.length + before.length) + key.length + value.length;
  };
  const viewOf = (tab: number) => (config.storageDelayMs > 0 ? views.get(tab)! : backend);

  // Events in and out of storage, over all the outboxes: one page taking over another's moves events
  // from a key to another, which is neither a new event nor a removal.
  const observeOutbox = (page: Page, prev: TrackerEvent[], next: TrackerEvent[]) => {
    const prevIds = new Set(prev.map((event) => event.id));
    const nextIds = new Set(next.map((event) => event.id));
    for (const event of next) {
      if (prevIds.has(event.id)) continue;
      const tracked = learn(event, `page ${page.id}'s outbox write`);
      // A take-over from a lagging view: the page's view still holds the event in another outbox.
      const lagging =
        config.storageDelayMs > 0 &&
        [...viewOf(page.tab)].some(([key, raw]) => key.startsWith(OUTBOX_PREFIX) && key !== page.outboxKey && parseOutbox(raw).some((other) => other.id === event.id));
      if (everRemoved.has(event.id) && lagging) {
        if (tracked) tracked.takenOverTwice = true;
        takenOverTwice++;
      } else if (everRemoved.has(event.id)) {
        violate(
          `page ${page.id} wrote ${tracked?.name ?? event.id} back to the outbox after it had left it (${acknowledged.has(event.id) ? 'acknowledged' : 'not acknowledged'}): it will be sent again`,
          `resurrected ${event.id}`,
        );
      }
    }
    for (const event of prev) {
      if (nextIds.has(event.id)) continue;
      everRemoved.add(event.id);
      if (acknowledged.has(event.id)) continue;
      const tracked = byId.get(event.id);
      if (page.overflowAllowance > 0) {
        page.overflowAllowance--;
        trimmedCount++;
        if (tracked) tracked.trimmed = true;
      } else {
        overwrittenCount++;
        if (tracked) tracked.overwritten = true;
      }
    }
  };

  const commit = (page: Page, key: string, value: string | undefined, afterFailedWrite = false) => {
    const isOutbox = key.startsWith(OUTBOX_PREFIX);
    const before = isOutbox ? outboxEvents(backend) : [];
    if (isOutbox && value === undefined && key !== page.outboxKey && parseOutbox(backend.get(key)).length > 0) takenOver++;
    if (value === undefined) backend.delete(key);
    else backend.set(key, value);
    if (isOutbox) {
      if (key === page.outboxKey && value !== undefined && !afterFailedWrite) page.memoryHoldsOutbox = false;
      const events = parseOutbox(value);
      if (events.length > config.maxOutboxEvents) violate(`page ${page.id}'s stored outbox holds ${events.length} events, over maxOutboxEvents ${config.maxOutboxEvents}`, 'outbox bound');
      observeOutbox(page, before, outboxEvents(backend));
      // A warning allows the trims of the page's next write of its own outbox (after track()), or
      // of the outboxes it erases once it has taken them over (the warning comes after its write).
      if (key === page.outboxKey) page.overflowAllowance = 0;
    }
    if (config.storageDelayMs > 0) {
      const own = views.get(page.tab)!;
      if (value === undefined) own.delete(key);
      else own.set(key, value);
      for (const [tab, other] of views) {
        if (tab === page.tab) continue;
        propagations++;
        // The other tab's view catches up with the store a moment later.
        setTimeout(() => {
          propagations--;
          const current = backend.get(key);
          if (current === undefined) other.delete(key);
          else other.set(key, current);
        }, config.storageDelayMs);
      }
    }
  };

  /** Every storage call of a page starts here. */
  const call = (page: Page) => {
    storagePage = page;
    const after = page.afterFailedWrite;
    page.afterFailedWrite = false;
    return after;
  };
  const storageFor = (page: Page): TrackerStorage => ({
    getItem(key) {
      call(page);
      if (blocked) throw new DOMException('The operation is insecure.', 'SecurityError');
      return viewOf(page.tab).get(key) ?? null;
    },
    key(index) {
      call(page);
      if (blocked) throw new DOMException('The operation is insecure.', 'SecurityError');
      return [...viewOf(page.tab).keys()][index] ?? null;
    },
    setItem(key, value) {
      const afterFailedWrite = call(page);
      if (key.startsWith(OUTBOX_PREFIX)) {
        if (page.outboxKey !== undefined && key !== page.outboxKey) violate(`page ${page.id} wrote ${key}, another outbox than its own ${page.outboxKey}`, `two keys ${page.id}`);
        page.outboxKey = key;
      }
      // A write that throws leaves the value in the tracker's memory.
      if (blocked || failWrites || usedAfter(key, value) > quotaChars) {
        if (key.startsWith(OUTBOX_PREFIX)) {
          page.memoryHoldsOutbox = true;
          page.afterFailedWrite = true;
          // Acknowledged events the failed write meant to remove stay stored (in this page's outbox,
          // or in one it took over, which it erases only once its own is stored), and the next page
          // load sends them again: at-least-once, a duplicate that storage failing explains.
          const attempted = new Set(parseOutbox(value).map((event) => event.id));
          for (const event of outboxEvents(backend)) {
            const tracked = byId.get(event.id);
            if (tracked && !attempted.has(event.id) && acknowledged.has(event.id)) tracked.ackUnrecorded = true;
          }
          // Events trimmed for overflow from an outbox that only memory holds never leave a trace
          // in storage: they are accounted for by count.
          memoryTrimmed += page.overflowAllowance;
        }
        if (blocked) throw new DOMException('The operation is insecure.', 'SecurityError');
        throw new DOMException(`Setting the value of '${key}' exceeded the quota.`, 'QuotaExceededError');
      }
      commit(page, key, value, afterFailedWrite);
    },
    removeItem(key) {
      call(page);
      if (blocked) throw new DOMException('The operation is insecure.', 'SecurityError');
      if (backend.has(key) || viewOf(page.tab).has(key)) commit(page, key, undefined);
    },
  });

  // ---- the endpoint ------------------------------------------------------------------------------
  let healthy = false;
  let beaconsPending = 0;
  let lastActivity = 0;
  const outageAt = (ms: number) => !healthy && f.outage !== undefined && ms >= f.outage.fromMs && ms < f.outage.fromMs + f.outage.forMs;
  const tooLarge = (req: Req) => req.bytes > config.workerMaxBodyBytes || req.events.length > TRACKER_EVENT_LIMITS.requestEvents;
  const openIds = (page: Page) => {
    const ids = new Set<string>();
    for (const req of page.open) for (const event of req.events) ids.add(event.id);
    return ids;
  };

  const newRequest = (page: Page, kind: Req['kind'], body: string, keepalive: boolean): Req => {
    const events = JSON.parse(body) as TrackerEvent[];
    const at = now();
    const req: Req = { n: requests.length, page, kind, at, events, bytes: utf8(body), keepalive, split: false, outcome: '', answeredAt: undefined };
    requests.push(req);
    lastActivity = at;
    const what = `page ${page.id}'s ${kind} ${req.n}`;
    if (!Array.isArray(events) || events.length === 0) violate(`${what} holds no events`);
    if (events.length > config.maxBatchEvents) violate(`${what} holds ${events.length} events, over maxBatchEvents ${config.maxBatchEvents}`, `batch events ${kind}`);
    if (events.length > 1 && req.bytes > config.maxBatchBytes) violate(`${what} of ${events.length} events is ${req.bytes} B, over maxBatchBytes ${config.maxBatchBytes}`, `batch bytes ${kind}`);
    const ids = new Set<string>();
    const inOpen = kind === 'fetch' ? openIds(page) : new Set<string>();
    for (const event of events) {
      const tracked = learn(event, what);
      if (tracked !== undefined) {
        const json = JSON.stringify(event);
        if (tracked.json === undefined) tracked.json = json;
        else if (tracked.json !== json) violate(`${what}: ${event.name} differs from its first send:\n  ${tracked.json.slice(0, 300)}\n  ${json.slice(0, 300)}`, `json ${event.name}`);
      }
      if (ids.has(event.id)) violate(`${what} holds ${event.name} twice`);
      ids.add(event.id);
      if (inOpen.has(event.id)) violate(`${what} holds ${event.name}, already in an unanswered request of the page`, `twice in flight ${event.id}`);
    }
    req.split = page.splits.some((split) => split.at === at && events.every((event) => split.ids.has(event.id)));
    return req;
  };

  const retryAfterValue = (): string => {
    if (endpointRandom() < f.badRetryAfter) return 'soon';
    const seconds = randomInt(endpointRandom, 1, 30);
    return endpointRandom() < 0.5 ? String(seconds) : new Date(Date.now() + seconds * 1_000).toUTCString();
  };

  const decide = (req: Req): Plan => {
    const r = endpointRandom;
    const delayMs = () => (!healthy && r() < f.slow ? randomInt(r, 1_000, 8_000) : randomInt(r, 5, 80));
    if (outageAt(req.at)) {
      const kind = f.outage!.kind;
      if (kind === 'network') return { kind: 'network', delayMs: randomInt(r, 1, 30), stores: false };
      // The rate limiter answers 429 with the binding's period (60 s) for the rest of it; an
      // intermediary whose Retry-After cannot be parsed sends that one every time.
      if (kind === 429) return { kind: 'outage-429', delayMs: delayMs(), stores: false, retryAfter: f.badRetryAfter > 0 ? 'soon' : '60' };
      return { kind: 'outage-503', delayMs: delayMs(), stores: false };
    }
    if (healthy) return { kind: tooLarge(req) ? '413' : 'ok', delayMs: delayMs(), stores: !tooLarge(req) };
    if (r() < f.hang) return { kind: 'hang', delayMs: 0, stores: false };
    if (r() < f.network) return { kind: 'network', delayMs: randomInt(r, 1, 30), stores: false };
    if (r() < f.timeout) return { kind: 'timeout', delayMs: randomInt(r, 15_000, 45_000), stores: r() < 0.5 && !tooLarge(req) };
    if (r() < f.throttle) return { kind: '429', delayMs: delayMs(), stores: false, retryAfter: retryAfterValue() };
    if (r() < f.unauthorized) return { kind: '401', delayMs: delayMs(), stores: false };
    if (tooLarge(req)) return { kind: '413', delayMs: delayMs(), stores: false };
    if (r() < f.malformed) return { kind: '400', delayMs: delayMs(), stores: false };
    if (r() < f.server) return { kind: r() < 0.5 ? '500' : '503', delayMs: delayMs(), stores: false };
    if (r() < f.notJson) return { kind: 'not-json', delayMs: delayMs(), stores: false };
    if (r() < f.unknown) return { kind: 'unknown', delayMs: delayMs(), stores: true };
    return { kind: 'ok', delayMs: delayMs(), stores: true };
  };

  /** What the Worker does with the events: refuse the invalid, store the rest (some not this time). */
  const store = (req: Req, partial: boolean, stores: boolean) => {
    const accepted: string[] = [];
    const rejected: { id: string; reason: string }[] = [];
    const retry: string[] = [];
    let omitted = 0;
    const seen = new Set<string>();
    for (const event of req.events) {
      if (utf8(JSON.stringify(event.properties)) > TRACKER_EVENT_LIMITS.propertiesBytes) {
        rejected.push({ id: event.id, reason: `properties: larger than ${TRACKER_EVENT_LIMITS.propertiesBytes} bytes` });
        continue;
      }
      // A repeated id inside one request is written once (worker-example/src/index.ts).
      if (seen.has(event.id)) continue;
      seen.add(event.id);
      if (!stores) retry.push(event.id);
      else if (partial && endpointRandom() < f.partial) {
        if (endpointRandom() < 0.5) retry.push(event.id);
        else omitted++;
      } else {
        accepted.push(event.id);
        const tracked = byId.get(event.id);
        if (tracked) tracked.stored++;
      }
    }
    return { accepted, rejected, retry, omitted };
  };

  /** The answer to a request, and what it does to the fake's books. */
  const respond = (req: Req, plan: Plan, alive: boolean): Response | Error => {
    const page = req.page;
    const at = now();
    switch (plan.kind) {
      case 'network':
      case 'hang':
        return new TypeError('Failed to fetch');
      case 'timeout':
      case 'unknown':
        if (plan.stores) store(req, false, true);
        return new TypeError('Failed to fetch');
      default:
    }
    let response: Response;
    let body: { accepted?: string[]; rejected?: { id: string; reason: string }[] } = {};
    switch (plan.kind) {
      case '429':
      case 'outage-429':
        response = answer(429, { error: 'too many requests' }, { 'Retry-After': plan.retryAfter! });
        break;
      case '401':
        response = answer(401, { error: 'session token expired' });
        break;
      case '413':
        response = answer(413, { error: 'request body too large' });
        break;
      case '400':
        response = answer(400, { error: 'malformed JSON' });
        break;
      case '500':
        response = answer(500, { error: 'internal error' });
        break;
      case '503':
        response = answer(503, { error: 'service unavailable' });
        break;
      case 'not-json':
        response = answer(200, '<html><body>Sign in to the Wi-Fi</body></html>', { 'content-type': 'text/html' });
        break;
      case 'outage-503': {
        const result = store(req, false, false);
        body = result;
        response = answer(503, { error: 'service unavailable', ...result }, { 'Retry-After': '1' });
        break;
      }
      default: {
        const result = store(req, alive, true);
        body = result;
        const { omitted, ...lists } = result;
        // As the Worker answers (worker-example/src/index.ts, end of collect()).
        if (lists.accepted.length === 0 && (lists.retry.length > 0 || omitted > 0)) response = answer(503, { error: 'service unavailable', ...lists }, { 'Retry-After': '1' });
        else if (lists.accepted.length === 0) response = answer(400, lists);
        else response = answer(200, lists);
      }
    }
    if (alive && req.kind === 'fetch') {
      for (const id of body.accepted ?? []) {
        acknowledged.add(id);
        const tracked = byId.get(id);
        if (tracked) tracked.knownStored.set(page.id, (tracked.knownStored.get(page.id) ?? 0) + 1);
      }
      for (const { id } of body.rejected ?? []) {
        acknowledged.add(id);
        const tracked = byId.get(id);
        if (tracked) tracked.rejectedKnown = true;
      }
      if (response.status === 413) {
        if (req.events.length === 1) {
          acknowledged.add(req.events[0]!.id);
          const tracked = byId.get(req.events[0]!.id);
          if (tracked) tracked.tooLargeKnown = true;
        } else page.splits.push({ at, ids: new Set(req.events.map((event) => event.id)) });
      }
      const retryAfter = response.headers.get('retry-after');
      if (retryAfter !== null) {
        const until = /^\d+$/.test(retryAfter) ? Date.now() + Number(retryAfter) * 1_000 : Date.parse(retryAfter);
        if (Number.isFinite(until)) {
          page.notBefore = Math.max(page.notBefore, until - t0);
          page.notBeforeSince = at;
        }
      }
    }
    return response;
  };

  const endpointFetch = (page: Page, url: string, init: RequestInit): Promise<Response> => {
    if (url !== ENDPOINT) violate(`page ${page.id} posted to ${url}`);
    if (typeof init.body !== 'string') {
      violate(`page ${page.id} sent a body that is not a string`);
      return Promise.reject(new TypeError('Failed to fetch'));
    }
    const req = newRequest(page, 'fetch', init.body, init.keepalive === true);
    page.collecting?.push(req);
    if (!req.split && req.at > page.notBeforeSince && req.at < page.notBefore) {
      violate(`page ${page.id} sent request ${req.n} at ${req.at} ms, ${page.notBefore - req.at} ms before the Retry-After it read at ${page.notBeforeSince} ms ran out`, `retry-after ${page.id}`);
    }
    if (requests.length > MAX_REQUESTS) {
      violate(`more than ${MAX_REQUESTS} requests: a tight loop`, 'tight loop');
      return new Promise(() => {});
    }
    if (req.keepalive) {
      if (page.keepaliveBytes + req.bytes > KEEPALIVE_BUDGET) {
        violate(`page ${page.id}'s keepalive request ${req.n} of ${req.bytes} B with ${page.keepaliveBytes} B in flight is over the 64 KiB budget (the browser fails it)`, `budget ${page.id}`);
        req.outcome = 'over-budget';
        req.answeredAt = req.at;
        return Promise.reject(new TypeError('Failed to fetch'));
      }
      page.keepaliveBytes += req.bytes;
    }
    page.open.add(req);
    const plan = decide(req);
    req.outcome = plan.kind;
    let aborted = false;
    return new Promise<Response>((resolve, reject) => {
      // The tracker's timeout: the page gives the request up (a page that unloaded runs no timers).
      init.signal?.addEventListener('abort', () => {
        if (!page.alive || req.answeredAt !== undefined) return;
        aborted = true;
        page.open.delete(req);
        if (req.keepalive) page.keepaliveBytes -= req.bytes;
        req.answeredAt = now();
        req.outcome += ', aborted';
        reject(init.signal!.reason);
      });
      // No answer while the page lives; its unload abandons the request.
      if (plan.kind === 'hang') return;
      setTimeout(() => {
        // The Worker goes on with a request the page gave up on; nobody reads its answer.
        if (aborted) return void (plan.stores && store(req, false, true));
        const alive = page.alive;
        page.open.delete(req);
        if (req.keepalive && alive) page.keepaliveBytes -= req.bytes;
        req.answeredAt = now();
        lastActivity = now();
        // A request without keepalive is aborted when its page unloads: it reached the Worker or not.
        const reached = alive || req.keepalive || endpointRandom() < 0.5;
        const reply = reached ? respond(req, plan, alive) : new TypeError('aborted');
        // A page that unloaded never reads its answers.
        if (!alive) return;
        if (reply instanceof Error) reject(reply);
        else resolve(reply);
      }, plan.delayMs);
    });
  };

  const endpointBeacon = (page: Page, url: string, body: string): boolean => {
    if (url !== ENDPOINT) violate(`page ${page.id} beaconed to ${url}`);
    const req = newRequest(page, 'beacon', body, false);
    // sendBeacon refuses a body over the budget, and Chrome's one that the budget left cannot take
    // (https://w3c.github.io/beacon/#sendbeacon-method).
    if (req.bytes > KEEPALIVE_BUDGET || (config.beaconSharesBudget && page.keepaliveBytes + req.bytes > KEEPALIVE_BUDGET)) {
      req.outcome = 'refused';
      req.answeredAt = req.at;
      return false;
    }
    if (config.beaconSharesBudget) page.keepaliveBytes += req.bytes;
    beaconsPending++;
    const lost = !healthy && endpointRandom() < f.beaconLost;
    const plan = decide(req);
    req.outcome = lost ? 'lost' : plan.kind;
    setTimeout(
      () => {
        beaconsPending--;
        if (config.beaconSharesBudget && page.alive) page.keepaliveBytes -= req.bytes;
        req.answeredAt = now();
        lastActivity = now();
        // Its answer goes nowhere: whatever the Worker did, the page learns nothing.
        if (!lost && plan.stores && plan.kind !== 'hang') store(req, false, true);
      },
      randomInt(endpointRandom, 10, 200),
    );
    return true;
  };

  // ---- pages -------------------------------------------------------------------------------------
  const openPage = (tab: number): Page => {
    const page = {
      id: pages.length,
      tab,
      alive: true,
      enabled: true,
      listeners: new Map(),
      keepaliveBytes: 0,
      open: new Set(),
      bornAt: now(),
      diedAt: undefined,
      overflowAllowance: 0,
      memoryHoldsOutbox: false,
      afterFailedWrite: false,
      outboxKey: undefined,
      notBefore: 0,
      notBeforeSince: 0,
      splits: [],
      collecting: undefined,
      flushes: [],
      onlineAt: [],
      tracked: [],
    } as unknown as Page;
    pages.push(page);
    tabs[tab] = page;
    // Each page gets its own window and document: the tracker's listeners are caught here and
    // called by fire() for this page only.
    const targets = [window, document] as EventTarget[];
    const descriptors = targets.map((target) => Object.getOwnPropertyDescriptor(target, 'addEventListener'));
    const capture = (type: string, listener: EventListenerOrEventListenerObject | null) => {
      const list = page.listeners.get(type) ?? [];
      page.listeners.set(type, list);
      list.push(listener as (event: Event) => void);
    };
    for (const target of targets) Object.defineProperty(target, 'addEventListener', { configurable: true, writable: true, value: capture });
    currentPage = page;
    try {
      ({ tracker: page.tracker, inFlight: page.inFlight } = probeInFlight(() =>
        createTracker({
          endpoint: ENDPOINT,
          fetch: (url, init) => endpointFetch(page, url, init),
          sendBeacon: (url, body) => endpointBeacon(page, url, body),
          storage: storageFor(page),
          now: () => Date.now(),
          random: jitterRandom,
          keepalive: config.keepalive,
          trackPageViews: false,
          maxBatchEvents: config.maxBatchEvents,
          maxBatchBytes: config.maxBatchBytes,
          flushIntervalMs: config.flushIntervalMs,
          maxOutboxEvents: config.maxOutboxEvents,
        }),
      ));
    } finally {
      targets.forEach((target, i) => {
        const descriptor = descriptors[i];
        if (descriptor) Object.defineProperty(target, 'addEventListener', descriptor);
        else delete (target as { addEventListener?: unknown }).addEventListener;
      });
      currentPage = undefined;
    }
    return page;
  };

  /** Dispatches a lifecycle event to one page, as its own window/document would. */
  const fire = (page: Page, type: string, hidden = false) => {
    if (hidden) Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    currentPage = page;
    try {
      for (const listener of page.listeners.get(type) ?? []) listener(new Event(type));
    } finally {
      if (hidden) delete (document as { visibilityState?: unknown }).visibilityState;
      currentPage = undefined;
    }
  };

  const unload = (page: Page) => {
    // What a browser fires when a tab is closed or reloaded.
    fire(page, 'visibilitychange', true);
    fire(page, 'pagehide');
    page.alive = false;
    page.diedAt = now();
    if (page.memoryHoldsOutbox) {
      const stored = new Set(outboxEvents(backend).map((event) => event.id));
      for (const tracked of page.tracked) if (tracked.id === undefined || !stored.has(tracked.id)) tracked.memoryOnlyAtUnload = true;
    }
    page.open.clear();
    page.tracker.destroy();
    if (tabs[page.tab] === page) tabs[page.tab] = undefined;
  };

  const track = (page: Page, count: number) => {
    for (let i = 0; i < count; i++) {
      const n = all.length + discarded.size;
      const roll = planRandom();
      const kind: Tracked['kind'] = roll < config.hugeShare ? 'huge' : roll < config.hugeShare + config.bigShare ? 'big' : 'normal';
      const pad = kind === 'huge' ? 70_000 : kind === 'big' ? 9_000 : randomInt(planRandom, 0, config.maxPad);
      const name = `e${n}`;
      const properties = pad > 0 ? { n, pad: 'x'.repeat(pad) } : { n };
      if (!page.enabled) discarded.add(name);
      else {
        const tracked: Tracked = {
          n,
          name,
          kind,
          page: page.id,
          atMs: now(),
          id: undefined,
          json: undefined,
          stored: 0,
          knownStored: new Map(),
          rejectedKnown: false,
          tooLargeKnown: false,
          trimmed: false,
          overwritten: false,
          memoryOnlyAtUnload: false,
          ackUnrecorded: false,
          takenOverTwice: false,
        };
        all.push(tracked);
        byName.set(name, tracked);
        page.tracked.push(tracked);
      }
      currentPage = page;
      try {
        page.tracker.track(name, properties);
      } finally {
        currentPage = undefined;
      }
    }
  };

  const flush = (page: Page) => {
    const record = { at: now(), requests: [] as Req[], resolvedAt: undefined as number | undefined };
    page.collecting = record.requests;
    let promise: Promise<void>;
    try {
      promise = page.tracker.flush();
    } finally {
      page.collecting = undefined;
    }
    page.flushes.push(record);
    void promise.then(() => {
      record.resolvedAt = now();
      const open = record.requests.filter((req) => req.answeredAt === undefined);
      if (open.length > 0) violate(`page ${page.id}'s flush() at ${record.at} ms resolved with ${open.length} of its requests unanswered`);
    });
  };

  // ---- checks at every step ------------------------------------------------------------------------
  const sample = () => {
    for (const page of pages) {
      if (!page.alive) continue;
      // Ids the page marks in flight: those of its unanswered requests, and beaconed events still
      // in the outbox ("marked in flight for the rest of this page"). Ids of events that left the
      // outbox since are memory held for nothing; they may linger, but never beyond the outbox bound.
      const open = openIds(page);
      const stale = [...page.inFlight].filter((id) => !open.has(id));
      if (stale.length > config.maxOutboxEvents) {
        const outbox = new Set(outboxEvents(viewOf(page.tab)).map((event) => event.id));
        const gone = stale.filter((id) => !outbox.has(id));
        const beaconed = gone.filter((id) => requests.some((req) => req.page === page && req.kind === 'beacon' && req.outcome !== 'refused' && req.events.some((event) => event.id === id))).length;
        violate(
          `page ${page.id} marks ${page.inFlight.size} ids in flight, ${stale.length} of them in no unanswered request, over maxOutboxEvents ${config.maxOutboxEvents}; ` +
            `${gone.length} are no longer in the outbox (${beaconed} beaconed; ${gone.slice(0, 3).map((id) => byId.get(id)?.name ?? id).join(', ')}): memory that grows with every beacon`,
          `in-flight bound ${page.id}`,
        );
      }
    }
  };

  // ---- the plan ----------------------------------------------------------------------------------
  const ops: Op[] = [];
  const at = () => randomInt(planRandom, 0, config.activeMs - STEP_MS);
  const anyTab = () => (config.secondTab && planRandom() < 0.5 ? 1 : 0);
  for (let i = 0; i < config.bursts; i++) ops.push({ atMs: at(), kind: 'track', tab: anyTab(), count: Math.ceil(config.maxOutboxEvents * 1.5) });
  for (let left = config.events; left > 0; ) {
    const count = Math.min(left, randomInt(planRandom, 1, config.perOp));
    ops.push({ atMs: at(), kind: 'track', tab: anyTab(), count });
    left -= count;
  }
  for (const [kind, times] of [
    ['flush', config.flushes],
    ['hide', config.hides],
    ['reload', config.reloads],
    ['online', config.onlines],
  ] as const) {
    for (let i = 0; i < times; i++) ops.push({ atMs: at(), kind, tab: anyTab() });
  }
  for (let i = 0; i < config.disables; i++) {
    const from = at();
    const tab = anyTab();
    ops.push({ atMs: from, kind: 'disable', tab }, { atMs: from + randomInt(planRandom, 2_000, 15_000), kind: 'enable', tab });
  }
  if (config.secondTab) {
    ops.push({ atMs: config.secondTab.openMs, kind: 'open-tab' });
    if (config.secondTab.closeMs !== undefined) ops.push({ atMs: config.secondTab.closeMs, kind: 'close-tab' });
  }
  if (config.storage === 'quota' || config.storage === 'failing') {
    for (let i = 0; i < 2; i++) {
      const from = at();
      const squeeze = config.storage === 'quota';
      ops.push({ atMs: from, kind: squeeze ? 'squeeze' : 'fail-writes' }, { atMs: from + randomInt(planRandom, 3_000, 20_000), kind: squeeze ? 'unsqueeze' : 'heal-writes' });
    }
  }
  ops.sort((a, b) => a.atMs - b.atMs);

  const pageOf = (tab: number) => tabs[tab] ?? tabs[0]!;
  const trace: string[] = [];
  const run = (op: Op) => {
    if (TRACE) trace.push(`${now()} op ${JSON.stringify(op)} -> page ${'tab' in op ? pageOf(op.tab).id : '-'}`);
    switch (op.kind) {
      case 'track':
        return track(pageOf(op.tab), op.count);
      case 'flush':
        return flush(pageOf(op.tab));
      case 'hide':
        return fire(pageOf(op.tab), 'visibilitychange', true);
      case 'reload': {
        const page = pageOf(op.tab);
        unload(page);
        openPage(page.tab);
        return;
      }
      case 'online': {
        const page = pageOf(op.tab);
        page.onlineAt.push(now());
        page.notBefore = 0;
        return fire(page, 'online');
      }
      case 'disable':
        pageOf(op.tab).tracker.disable();
        pageOf(op.tab).enabled = false;
        return;
      case 'enable':
        for (const page of tabs) {
          if (page !== undefined && !page.enabled) {
            page.enabled = true;
            page.tracker.enable();
          }
        }
        return;
      case 'open-tab':
        if (tabs[1] === undefined) openPage(1);
        return;
      case 'close-tab':
        if (tabs[1] !== undefined) unload(tabs[1]);
        return;
      case 'squeeze': {
        // Another script's data leaves the outbox room for a few events, or none.
        const room = pick(planRandom, [0, 2_000, 10_000]);
        backend.delete(FILLER);
        backend.set(FILLER, 'y'.repeat(Math.max(0, quotaChars - used() - FILLER.length - room)));
        return;
      }
      case 'unsqueeze':
        backend.delete(FILLER);
        return;
      case 'fail-writes':
        failWrites = true;
        return;
      case 'heal-writes':
        failWrites = false;
    }
  };

  // ---- the clock ---------------------------------------------------------------------------------
  openPage(0);
  let opIndex = 0;
  for (let ms = 0; ms < config.activeMs; ms += STEP_MS) {
    while (opIndex < ops.length && ops[opIndex]!.atMs <= ms) run(ops[opIndex++]!);
    await vi.advanceTimersByTimeAsync(STEP_MS);
    await microtasks();
    sample();
  }

  // The drain: a healthy endpoint and storage; every page enabled. Wait for quiet, reload every
  // tab (beaconed and abandoned events go again from the new page), wait for quiet again.
  healthy = true;
  failWrites = false;
  quotaChars = Infinity;
  backend.delete(FILLER);
  for (const page of tabs) {
    if (page !== undefined && !page.enabled) {
      page.enabled = true;
      page.tracker.enable();
    }
  }
  const drainStart = now();
  const quiet = async (what: string) => {
    const start = now();
    for (;;) {
      await vi.advanceTimersByTimeAsync(1_000);
      await microtasks();
      sample();
      const busy = pages.some((page) => page.alive && [...page.open].some((req) => req.outcome !== 'hang')) || beaconsPending > 0 || propagations > 0;
      if (!busy && now() - Math.max(lastActivity, start) >= QUIET_MS) return;
      if (now() - start > MAX_DRAIN_MS) {
        violate(`${what}: still busy after ${MAX_DRAIN_MS / 1_000} s of a healthy endpoint (last request at ${lastActivity} ms)`);
        return;
      }
    }
  };
  await quiet('the drain');
  // An outbox whose page could not mark it gone at pagehide (storage failing) is taken over once it
  // is ABANDONED_OUTBOX_MS old.
  const abandonedAt = config.activeMs + ABANDONED_OUTBOX_MS;
  if (now() < abandonedAt) await vi.advanceTimersByTimeAsync(abandonedAt - now());
  for (const tab of [0, 1]) {
    const page = tabs[tab];
    if (page !== undefined) {
      unload(page);
      openPage(tab);
    }
  }
  if (tabs[0] === undefined) openPage(0);
  await quiet('the drain after the last reload');
  const drainMs = now() - drainStart;
  const timers = vi.getTimerCount();
  if (timers !== 0) violate(`${timers} timers pending with every request answered and the pages idle`);
  const leftInOutbox = outboxEvents(backend);
  if (leftInOutbox.length > 0) violate(`the outbox still holds ${leftInOutbox.length} events after the drain: ${leftInOutbox.slice(0, 5).map((event) => event.name).join(', ')}`);

  // ---- what was stored and reported --------------------------------------------------------------
  const droppedTotal = pages.reduce((sum, page) => sum + page.tracker.dropped, 0);
  const warned = rejectedWarnings.length + tooLargeWarnings.length + overflowWarned;
  if (droppedTotal !== warned) {
    violate(`dropped adds up to ${droppedTotal}, the warnings to ${warned} (${rejectedWarnings.length} rejected, ${tooLargeWarnings.length} too large, ${overflowWarned} outbox full)`);
  }
  for (const id of rejectedWarnings) if (!byId.get(id)?.rejectedKnown) violate(`a warning says ${byId.get(id)?.name ?? id} was rejected; the endpoint never said so`);
  for (const id of tooLargeWarnings) if (!byId.get(id)?.tooLargeKnown) violate(`a warning says ${byId.get(id)?.name ?? id} was too large; the endpoint never answered 413 to it alone`);
  const storageFaults = config.storage !== 'ok';
  if (!storageFaults && trimmedCount !== overflowWarned) violate(`outbox writes trimmed ${trimmedCount} events for overflow, the warnings say ${overflowWarned}`);
  let documentedLoss = 0;
  let trimmedInMemory = 0;
  let duplicates = 0;
  let storedCount = 0;
  const maxTabs = config.secondTab ? 2 : 1;
  const rejectedSet = new Set(rejectedWarnings);
  const tooLargeSet = new Set(tooLargeWarnings);
  for (const tracked of all) {
    const where = `${tracked.name} (${tracked.kind}, tracked by page ${tracked.page} at ${tracked.atMs} ms, id ${tracked.id ?? 'never seen'})`;
    if (tracked.kind === 'big' && tracked.stored > 0) violate(`${where}: the fake stored an invalid event`);
    const known = [...tracked.knownStored.values()].reduce((sum, count) => sum + count, 0);
    for (const [page, count] of tracked.knownStored) if (count > 1) violate(`${where}: page ${page} read "accepted" for it ${count} times`, `known twice ${tracked.name}`);
    if (known > maxTabs && !tracked.ackUnrecorded && !tracked.takenOverTwice) violate(`${where}: ${known} answers read by pages listed it accepted, with at most ${maxTabs} tab(s) open`, `known ${tracked.name}`);
    if (tracked.stored > 0) {
      storedCount++;
      duplicates += tracked.stored - 1;
      continue;
    }
    if (tracked.id !== undefined && (rejectedSet.has(tracked.id) || tooLargeSet.has(tracked.id))) continue;
    if (tracked.trimmed) continue;
    if (tracked.memoryOnlyAtUnload) {
      documentedLoss++;
      continue;
    }
    if (trimmedInMemory < memoryTrimmed) {
      trimmedInMemory++;
      continue;
    }
    const requestsOf = tracked.id === undefined ? [] : requests.filter((req) => req.events.some((event) => event.id === tracked.id));
    violate(
      `${where} is gone: never stored, never reported${tracked.overwritten ? ' (an outbox write removed it without an acknowledgment or an "outbox full" warning)' : ''}; ` +
        `sent ${requestsOf.length} times (${requestsOf.map((req) => `${req.kind} ${req.n} of page ${req.page.id}: ${req.outcome}`).join(', ')})`,
      `gone ${tracked.name}`,
    );
  }
  // Every page alive at the end had its flush() calls resolve.
  for (const page of pages) {
    if (!page.alive) continue;
    for (const record of page.flushes) if (record.resolvedAt === undefined) violate(`page ${page.id}'s flush() at ${record.at} ms never resolved`);
  }

  // ---- request rate ------------------------------------------------------------------------------
  // An outage: every request fails, so each round waits for a backoff growing from 1 s to the 60 s
  // cap (full jitter): about log2(2 min(D, 60 s) / 1 s) rounds while it grows, 2 D / 60 s once
  // capped, plus a margin, and a round for each `online` (it ends the wait). Counted for each page
  // over the part of the outage it lived through (the drain ends an outage).
  if (f.outage !== undefined) {
    const outage = f.outage;
    for (const page of pages) {
      const from = Math.max(outage.fromMs, page.bornAt);
      const to = Math.min(outage.fromMs + outage.forMs, config.activeMs, page.diedAt ?? Infinity);
      if (to - from < 1_000) continue;
      const span = to - from;
      const onlines = page.onlineAt.filter((ms) => ms >= from && ms < to).length;
      const bound = Math.ceil(Math.log2((2 * Math.min(span, 60_000)) / 1_000)) + Math.ceil((2 * span) / 60_000) + 8 + onlines;
      const rounds = new Set(requests.filter((req) => req.page === page && req.kind === 'fetch' && !req.split && req.at >= from && req.at < to).map((req) => req.at));
      if (rounds.size > bound) {
        violate(`outage (${outage.kind}): page ${page.id} sent ${rounds.size} rounds of requests in the ${span} ms of it that it lived, bound ${bound} (no tight loop: the backoff grows)`, `outage ${page.id}`);
      }
    }
  }

  if (TRACE && violations.length > 0) {
    for (const req of requests) trace.push(`${req.at} ${req.kind} ${req.n} page ${req.page.id}${req.keepalive ? ' keepalive' : ''}${req.split ? ' split' : ''} [${req.events.map((event) => byId.get(event.id)?.name ?? event.id).join(' ')}] ${req.bytes} B -> ${req.outcome} at ${req.answeredAt}`);
    console.log(trace.sort((a, b) => parseInt(a) - parseInt(b)).join('\n'));
  }
  for (const page of pages) if (page.alive) page.tracker.destroy();
  vi.restoreAllMocks();
  vi.useRealTimers();
  return {
    violations,
    report: {
      requests: requests.filter((req) => req.kind === 'fetch').length,
      aborted: requests.filter((req) => req.outcome.endsWith('aborted')).length,
      beacons: requests.filter((req) => req.kind === 'beacon').length,
      stored: storedCount,
      duplicates,
      trimmed: trimmedCount,
      rejected: rejectedWarnings.length,
      tooLarge: tooLargeWarnings.length,
      documentedLoss,
      overwritten: overwrittenCount,
      takenOver,
      takenOverTwice,
      pages: pages.length,
      drainMs,
      ms: Math.round(performance.now() - began),
    },
  };
}

// ---- the cases -----------------------------------------------------------------------------------

// TRACKER_INVARIANTS_SEEDS=first:count runs other seeds (exploration); the default list is the test.
const [firstSeed, seedCount] = (process.env.TRACKER_INVARIANTS_SEEDS ?? '').split(':').map(Number);
// Between them, every fault, outage kind, storage mode and tab setup makeCase() draws, three 429
// outages with an unparseable Retry-After among them.
const DEFAULT_SEEDS = Array.from({ length: 24 }, (_, i) => 37 + i * 29);
const SEEDS =
  firstSeed !== undefined && seedCount !== undefined && Number.isInteger(firstSeed) && Number.isInteger(seedCount)
    ? Array.from({ length: seedCount }, (_, i) => firstSeed + i)
    : DEFAULT_SEEDS;

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('tracker delivery invariants across mixed configurations (seeded)', () => {
  it('draws, in the default seeds, two tabs whose storage lags and two tabs whose storage fails', () => {
    const twoTabs = DEFAULT_SEEDS.map(makeCase).filter((config) => config.secondTab !== undefined);
    expect(twoTabs.filter((config) => config.storageDelayMs > 0 && config.storage === 'ok').length).toBeGreaterThan(1);
    for (const storage of ['quota', 'failing', 'blocked'] as const) expect(twoTabs.some((config) => config.storage === storage)).toBe(true);
  });

  it.each(SEEDS.map((seed) => [seed] as const))('seed %i', async (seed) => {
    const config = { ...makeCase(seed), ...(process.env.TRACKER_INVARIANTS_OVERRIDE ? (JSON.parse(process.env.TRACKER_INVARIANTS_OVERRIDE) as Partial<CaseConfig>) : {}) };
    const { violations, report } = await runCase(config);
    if (REPORT) console.log(`${describeCase(config)}\n  -> ${JSON.stringify(report)}`);
    expect(violations, describeCase(config)).toEqual([]);
  });
});

describe('tracker delivery: the smallest cases of what the seeds found', () => {
  let trackers: Tracker[] = [];
  const start = (options: Partial<TrackerOptions> & { fetch: FakeEndpoint['fetch'] }): Tracker => {
    const tracker = createTracker({
      endpoint: ENDPOINT,
      storage: memoryStorage(),
      ...TEST_TRACKER_OPTIONS,
      ...options,
    });
    trackers.push(tracker);
    return tracker;
  };
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const names = (endpoint: FakeEndpoint) => endpoint.requests.flatMap((request) => request.events.map((event) => event.name));

  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2025-06-01T12:00:00Z') });
    vi.spyOn(console, 'warn').mockImplementation(() => {});
  });
  afterEach(() => {
    for (const tracker of trackers) tracker.destroy();
    trackers = [];
  });

  // Found in 53 of seeds 1-150 (seed 10: a 503 with the Worker's Retry-After: 1, then another
  // request of the page answered with events left over, whose shorter jitter replaced the wait; the
  // page sent again 200 ms later). A 429's Retry-After: 60 from the rate limiter was cut the same way.
  it('waits out a Retry-After also when another request fails after it with a shorter backoff', async () => {
    const endpoint = createEndpoint(async (events) => {
      if (events[0]!.name === 'a') {
        await sleep(10);
        return new Response('{"error":"too many requests"}', { status: 429, headers: { 'retry-after': '30' } });
      }
      await sleep(20);
      return new Response('{"error":"internal error"}', { status: 500 });
    });
    const tracker = start({ fetch: endpoint.fetch, maxBatchEvents: 1 });
    const t0 = Date.now();
    // Each event is a full batch: two requests at once.
    tracker.track('a');
    tracker.track('b');
    // The 500 at 20 ms draws 0.5 x 2 s = 1 s of backoff: before the fix the page resent both at 1,020 ms.
    await vi.advanceTimersByTimeAsync(30_000);
    expect(endpoint.requests.map((request) => request.at - t0)).toEqual([0, 0]);
    await vi.advanceTimersByTimeAsync(100);
    expect(endpoint.requests.slice(2).map((request) => request.at - t0)).toEqual([30_010, 30_010]);
  });

  // Seen in the code, then in the seeded 429 outages whose Retry-After cannot be parsed (seeds 24
  // and 37: 204 rounds of requests in 21 s where the backoff allows 15): 'soon' parsed to NaN, the
  // retry timer took NaN for 0 and fired at once, so the page resent on every answer.
  it('backs off when a Retry-After cannot be parsed, instead of resending at once', async () => {
    const endpoint = createEndpoint(async () => {
      await sleep(10);
      return new Response('{"error":"too many requests"}', { status: 429, headers: { 'retry-after': 'soon' } });
    });
    const tracker = start({ fetch: endpoint.fetch });
    tracker.track('a');
    void tracker.flush();
    await vi.advanceTimersByTimeAsync(10_000);
    // Full jitter with random() = 0.5: at 0, 0.51, 1.52, 3.53 and 7.54 s.
    expect(endpoint.requests).toHaveLength(5);
  });

  // A beaconed event stays marked in flight for the rest of the page, also after it leaves the
  // outbox (another tab sent it, or overflow dropped it): a long-lived page that beacons at every
  // tab switch (fetch without keepalive: Firefox before 133) kept 5 more ids per cycle here, 100 after
  // 20 cycles. Found by reading the code; the seeded cases bound the set by maxOutboxEvents, which
  // a minute of page life does not outgrow.
  it('forgets the in-flight marks of beaconed events once they have left the outbox', () => {
    const endpoint = createEndpoint();
    let beacons = 0;
    const { tracker, inFlight } = probeInFlight(() =>
      start({ fetch: endpoint.fetch, keepalive: false, sendBeacon: () => ++beacons > 0, maxOutboxEvents: 5, flushIntervalMs: 3_600_000 }),
    );
    for (let cycle = 0; cycle < 20; cycle++) {
      for (let i = 0; i < 5; i++) tracker.track(`e${cycle}.${i}`);
      hidePage();
    }
    expect(beacons).toBe(20);
    expect(endpoint.requests).toHaveLength(0);
    expect(inFlight.size).toBeLessThanOrEqual(5);
  });

  // Found by the seeded cases with two tabs and a storage quota (seed 67 before makeCase stopped
  // drawing that mix): when the tabs shared one outbox key, a tab whose outbox write failed kept
  // the outbox in its memory ("kept in memory for this page") and read only that copy from then
  // on; the other tab's writes still succeeded (its values are smaller, or another script freed
  // space), and the first tab's next successful write put its stale copy back: the other tab's new
  // events were gone without a warning or a `dropped` count, and events it had acknowledged came
  // back and were sent again. Fixed by giving each page load an outbox key of its own.
  it('keeps the events of both tabs when one tab could not write its outbox for a while', async () => {
    const shared = memoryStorage();
    let failing = false;
    const storage: TrackerStorage = {
      getItem: (key) => shared.getItem(key),
      setItem: (key, value) => {
        if (failing) throw new DOMException('quota', 'QuotaExceededError');
        shared.setItem(key, value);
      },
      removeItem: (key) => shared.removeItem(key),
      key: (index) => shared.key(index),
    };
    const endpoint = createEndpoint();
    const a = start({ fetch: endpoint.fetch, storage });
    const b = start({ fetch: endpoint.fetch, storage });
    a.track('a1');
    failing = true;
    a.track('a2'); // only a's memory holds its outbox [a1, a2]; storage has [a1]
    failing = false;
    b.track('b1'); // b writes [b1]: one shared key held [a1, b1]
    a.track('a3'); // a writes [a1, a2, a3]: over [a1, b1] when the key was shared
    await vi.advanceTimersByTimeAsync(10_000);
    expect(new Set(names(endpoint))).toEqual(new Set(['a1', 'a2', 'a3', 'b1']));
  });

  // With the seeds' storage model set to let a write reach the other tab's view 5 ms later
  // (TRACKER_INVARIANTS_OVERRIDE='{"storageDelayMs":5,"secondTab":{"openMs":1000},"storage":"ok"}'),
  // 14 of seeds 1-30 lost events or wrote acknowledged ones back when the tabs shared one outbox
  // key. Browsers give localStorage no lock across tabs
  // (https://html.spec.whatwg.org/multipage/webstorage.html#introduction-15: "authors are
  // encouraged to assume that there is no locking mechanism"); Chrome's tabs each read a cached
  // copy that another tab's write reaches asynchronously. The read-modify-write of one shared key
  // lost one tab's event when both tabs wrote within that moment (page views of tabs restored
  // together, both tabs' flushes on `online`). Fixed by giving each page load an outbox key of its
  // own, which no other page writes; makeCase() draws storageDelayMs again.
  it('keeps the events of two tabs that write their outboxes within the moment a write takes to reach the other', async () => {
    const store = new Map<string, string>();
    const views = [new Map<string, string>(), new Map<string, string>()];
    const tab = (index: 0 | 1): TrackerStorage => ({
      getItem: (key) => views[index]!.get(key) ?? null,
      setItem: (key, value) => {
        store.set(key, value);
        views[index]!.set(key, value);
        setTimeout(() => views[1 - index]!.set(key, store.get(key)!), 5);
      },
      removeItem: (key) => {
        store.delete(key);
        views[index]!.delete(key);
        setTimeout(() => (store.has(key) ? views[1 - index]!.set(key, store.get(key)!) : views[1 - index]!.delete(key)), 5);
      },
      key: (position) => [...views[index]!.keys()][position] ?? null,
    });
    const endpoint = createEndpoint();
    const a = start({ fetch: endpoint.fetch, storage: tab(0) });
    const b = start({ fetch: endpoint.fetch, storage: tab(1) });
    a.track('a');
    await vi.advanceTimersByTimeAsync(1);
    b.track('b'); // b's view does not have a's write yet: one shared key ended up with [b]
    await vi.advanceTimersByTimeAsync(10_000);
    expect(new Set(names(endpoint))).toEqual(new Set(['a', 'b']));
  });
});

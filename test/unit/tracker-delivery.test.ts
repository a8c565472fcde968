// @vitest-environment happy-dom
// Delivery side of the browser tracker: batching triggers, the durable outbox and its replay across
// page loads, the 64 KiB keepalive budget (also with racing flushes and at unload), the beacon
// fallback, and the retry rules for the Worker's answers (contract in src/tracker/event.ts).
// Requests are those captured by the injected fetch; the outbox is the injected storage.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTracker, type TrackerEvent, type Tracker, type TrackerOptions } from '../../src/tracker/index.ts';
import {
  collectResponse,
  createBeacon,
  createEndpoint,
  deferred,
  hidePage,
  memoryStorage,
  padding,
  pageHide,
  storedOutbox,
  TEST_TRACKER_OPTIONS,
  type FakeEndpoint,
} from '../support/tracker-harness.ts';

const BUDGET = 65_536;

let trackers: Tracker[] = [];
let endpoint: FakeEndpoint;
let storage: ReturnType<typeof memoryStorage>;
let warnings: string[];

function start(options: Partial<TrackerOptions> = {}): Tracker {
  const tracker = createTracker({
    endpoint: 'https://ingest.example.com/collect',
    fetch: endpoint.fetch,
    storage,
    ...TEST_TRACKER_OPTIONS,
    ...options,
  });
  trackers.push(tracker);
  return tracker;
}

const names = (events: TrackerEvent[]) => events.map((event) => event.name);
const sentNames = () => names(endpoint.requests.flatMap((request) => request.events));
const times = () => endpoint.requests.map((request) => request.at - endpoint.requests[0]!.at);

/** An endpoint handler whose replies wait until the test calls `releaseAll()`. */
function holdReplies(endpointUnderTest: FakeEndpoint) {
  const held: (() => void)[] = [];
  endpointUnderTest.answer((events) => {
    const gate = deferred<Response | Error>();
    held.push(() => gate.resolve(collectResponse({ accepted: events.map((event) => event.id) })));
    return gate.promise;
  });
  return {
    get count() {
      return held.length;
    },
    async releaseOne() {
      held.shift()?.();
      await vi.advanceTimersByTimeAsync(0);
    },
    async releaseAll() {
      while (held.length) held.shift()!();
      await vi.advanceTimersByTimeAsync(0);
    },
  };
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2025-06-01T12:00:00Z') });
  endpoint = createEndpoint();
  storage = memoryStorage();
  warnings = [];
  vi.spyOn(console, 'warn').mockImplementation((...args: unknown[]) => {
    warnings.push(args.join(' '));
  });
  history.replaceState(null, '', '/start');
});

afterEach(() => {
  for (const tracker of trackers) tracker.destroy();
  trackers = [];
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('tracker batching', () => {
  it('sends a full batch at once when maxBatchEvents is reached', async () => {
    const tracker = start({ maxBatchEvents: 3 });
    tracker.track('a');
    tracker.track('b');
    expect(endpoint.requests).toHaveLength(0);
    tracker.track('c');
    expect(endpoint.requests).toHaveLength(1);
    expect(names(endpoint.requests[0]!.events)).toEqual(['a', 'b', 'c']);
    await vi.advanceTimersByTimeAsync(0);
    expect(names(storedOutbox(storage))).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('sends when maxBatchBytes is reached and keeps every request under it', async () => {
    const tracker = start({ maxBatchBytes: 2_000 });
    tracker.track('a', { pad: padding(700) });
    tracker.track('b', { pad: padding(700) });
    expect(endpoint.requests).toHaveLength(0);
    tracker.track('c', { pad: padding(700) });
    await vi.advanceTimersByTimeAsync(0);
    expect(endpoint.requests.map((request) => names(request.events))).toEqual([['a', 'b'], ['c']]);
    for (const request of endpoint.requests) expect(request.bytes).toBeLessThanOrEqual(2_000);
  });

  it('sends after flushIntervalMs, with a timer only while the outbox holds events', async () => {
    const tracker = start();
    expect(vi.getTimerCount()).toBe(0);
    tracker.track('a');
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(4_999);
    tracker.track('b');
    expect(endpoint.requests).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(endpoint.requests.map((request) => names(request.events))).toEqual([['a', 'b']]);
    expect(vi.getTimerCount()).toBe(0);
    expect(names(storedOutbox(storage))).toEqual([]);
  });

  it('honours a configured flushIntervalMs', async () => {
    const tracker = start({ flushIntervalMs: 500 });
    tracker.track('a');
    await vi.advanceTimersByTimeAsync(499);
    expect(endpoint.requests).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(endpoint.requests).toHaveLength(1);
  });

  it('flushes on visibilitychange to hidden and on pagehide', async () => {
    const tracker = start();
    tracker.track('a');
    document.dispatchEvent(new Event('visibilitychange'));
    expect(endpoint.requests).toHaveLength(0);
    hidePage();
    expect(endpoint.requests).toHaveLength(1);
    tracker.track('b');
    pageHide();
    expect(endpoint.requests.map((request) => names(request.events))).toEqual([['a'], ['b']]);
  });
});

describe('tracker outbox', () => {
  it('stores events synchronously, before any request', () => {
    const tracker = start();
    tracker.track('a', { n: 1 });
    expect(storedOutbox(storage)).toMatchObject([{ name: 'a', properties: { n: 1 } }]);
    tracker.destroy();
  });

  it('replays unacknowledged events on the next load with their original ids', async () => {
    endpoint.answer(() => new TypeError('Failed to fetch'));
    const first = start();
    first.track('a');
    first.track('b');
    await first.flush();
    const stored = storedOutbox(storage);
    expect(names(stored)).toEqual(['a', 'b']);
    first.destroy();

    endpoint.answer((events) => collectResponse({ accepted: events.map((event) => event.id) }));
    const second = start();
    await second.flush();
    const replayed = endpoint.requests.at(-1)!.events;
    expect(replayed).toEqual(stored);
    expect(names(storedOutbox(storage))).toEqual([]);
  });

  it('never resends an acknowledged event, also after a reload', async () => {
    const first = start();
    first.track('acked');
    await first.flush();
    endpoint.answer(() => new Response('down', { status: 502 }));
    first.track('pending');
    await first.flush();
    first.destroy();

    endpoint.answer((events) => collectResponse({ accepted: events.map((event) => event.id) }));
    const second = start();
    await second.flush();
    expect(sentNames()).toEqual(['acked', 'pending', 'pending']);
    const ids = endpoint.sentIds();
    expect(ids[2]).toBe(ids[1]);
  });

  it('resends events sent by beacon or cut off by unload on the next load', async () => {
    const beacon = createBeacon();
    const held = holdReplies(endpoint);
    const first = start({ keepalive: false, sendBeacon: beacon.sendBeacon });
    first.track('in-flight');
    void first.flush();
    first.track('beaconed');
    pageHide();
    expect(beacon.bodies).toHaveLength(1);
    first.destroy();
    expect(names(storedOutbox(storage))).toEqual(['in-flight', 'beaconed']);

    endpoint.answer((events) => collectResponse({ accepted: events.map((event) => event.id) }));
    const second = start();
    await second.flush();
    expect(names(endpoint.requests.at(-1)!.events)).toEqual(['in-flight', 'beaconed']);
    expect(names(storedOutbox(storage))).toEqual([]);
    expect(held.count).toBe(1);
  });

  it('leaves no acknowledged event stored when its outbox write fails, so the next load does not send it again', async () => {
    // Every outbox write throws from some point on (a quota already spent); removals still work.
    let failing = false;
    const setItem = storage.setItem;
    storage.setItem = (key, value) => {
      if (failing && key.startsWith('kinesis-edge:q:')) throw new DOMException('quota', 'QuotaExceededError');
      setItem(key, value);
    };
    endpoint.answer((events) => collectResponse({ accepted: events.filter((event) => event.name === 'a').map((event) => event.id), retry: events.filter((event) => event.name !== 'a').map((event) => event.id) }));
    const first = start();
    first.track('a');
    failing = true;
    first.track('b'); // only memory holds it
    await first.flush(); // a is acknowledged; b is left for a retry
    expect(names(storedOutbox(storage))).toEqual([]);
    first.destroy();

    failing = false;
    endpoint.answer((events) => collectResponse({ accepted: events.map((event) => event.id) }));
    await vi.advanceTimersByTimeAsync(300_000);
    await start().flush();
    expect(sentNames()).toEqual(['a', 'b']);
  });

  it('does not send an event twice while it is in flight', async () => {
    const held = holdReplies(endpoint);
    const tracker = start();
    tracker.track('a');
    const first = tracker.flush();
    tracker.track('b');
    const second = tracker.flush();
    expect(endpoint.requests.map((request) => names(request.events))).toEqual([['a'], ['b']]);
    await held.releaseAll();
    await Promise.all([first, second]);
    expect(endpoint.duplicatesInFlight).toEqual([]);
    expect(names(storedOutbox(storage))).toEqual([]);
  });

  it('drops the oldest events beyond maxOutboxEvents, counting them and warning', async () => {
    endpoint.answer(() => new TypeError('Failed to fetch'));
    const tracker = start({ maxOutboxEvents: 5, maxBatchEvents: 100, flushIntervalMs: 60_000 });
    for (let i = 0; i < 8; i++) tracker.track(`e${i}`);
    expect(names(storedOutbox(storage))).toEqual(['e3', 'e4', 'e5', 'e6', 'e7']);
    expect(tracker.dropped).toBe(3);
    expect(warnings).toHaveLength(3);
    expect(warnings[2]).toMatch(/outbox full.*3 so far/);
  });
});

describe('tracker outboxes of other tabs', () => {
  // Each page load writes its outbox under a key of its own, as the tracker does:
  // `kinesis-edge:q:<page id>` holding `[written at (0: the page is gone), events]`.
  const event = (name: string): TrackerEvent => ({
    id: `id-${name}`,
    type: 'track',
    name,
    ts: Date.now(),
    anonymousId: 'anonymous',
    sessionId: 'session',
    url: 'https://example.com/',
    referrer: '',
    viewport: { w: 800, h: 600 },
    properties: {},
  });
  const storeOutbox = (page: string, writtenAt: number, events: TrackerEvent[]) => storage.setItem(`kinesis-edge:q:${page}`, JSON.stringify([writtenAt, events]));
  const down = () => endpoint.answer(() => new TypeError('Failed to fetch'));
  const up = () => endpoint.answer((events) => collectResponse({ accepted: events.map((event) => event.id) }));

  it("sends a closed tab's events from the next page load at once, with their ids", async () => {
    down();
    const closed = start();
    closed.track('a');
    pageHide(); // the tab closes: its page marks its outbox gone
    const [stored] = storedOutbox(storage);
    up();
    const next = start();
    await next.flush();
    expect(endpoint.requests.at(-1)!.events).toEqual([stored]);
    expect(storedOutbox(storage)).toEqual([]);
  });

  it("keeps a closed tab's outbox marked gone when its pagehide request fails afterwards, or another listener tracks", async () => {
    // Offline at close: the keepalive request made at pagehide fails a moment later, while the
    // page is still there, and its failure writes the outbox again. So does an event another
    // pagehide listener tracks after ours. Both writes must keep the outbox marked gone.
    down();
    const closed = start();
    closed.track('a');
    window.addEventListener('pagehide', () => closed.track('bye'), { once: true });
    pageHide();
    await vi.advanceTimersByTimeAsync(0); // the failed request is handled
    expect(endpoint.requests.length).toBeGreaterThan(0);
    up();
    const next = start();
    await next.flush();
    expect(sentNames().slice(-2)).toEqual(['a', 'bye']);
    expect(storedOutbox(storage)).toEqual([]);
  });

  it('writes the outbox as an open tab again when the page is shown from the back/forward cache', async () => {
    const restoredEndpoint = createEndpoint(() => new TypeError('Failed to fetch'));
    const restored = start({ fetch: restoredEndpoint.fetch });
    restored.track('a');
    pageHide(); // into the back/forward cache: marked gone…
    window.dispatchEvent(new Event('pageshow')); // …and shown again: open
    await vi.advanceTimersByTimeAsync(0);
    const other = start();
    await other.flush();
    // The other tab leaves the restored page's outbox to it.
    expect(sentNames()).toEqual([]);
    expect(names(storedOutbox(storage))).toEqual(['a']);
    expect(restoredEndpoint.requests.length).toBeGreaterThan(0);
  });

  it('leaves the outbox of an open tab to that tab, also when its sends have failed for longer than 5 minutes', async () => {
    const endpoints = [createEndpoint(() => new TypeError('Failed to fetch')), createEndpoint(() => new TypeError('Failed to fetch'))];
    start({ fetch: endpoints[0]!.fetch }).track('a');
    start({ fetch: endpoints[1]!.fetch }).track('b');
    // Both keep failing; each flush writes the page's outbox again, with the time.
    await vi.advanceTimersByTimeAsync(600_000);
    const sent = endpoints.map((tab) => new Set(tab.requests.flatMap((request) => names(request.events))));
    expect(endpoints[0]!.requests.length).toBeGreaterThan(5);
    expect(sent).toEqual([new Set(['a']), new Set(['b'])]);
    expect(names(storedOutbox(storage)).sort()).toEqual(['a', 'b']);
  });

  it('takes over an outbox not written for 5 minutes (a tab killed without pagehide), not sooner', async () => {
    storeOutbox('killed', Date.now(), [event('k1'), event('k2')]);
    const tracker = start();
    await vi.advanceTimersByTimeAsync(299_000);
    tracker.track('a');
    await tracker.flush();
    expect(sentNames()).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(1_000);
    tracker.track('b');
    await tracker.flush();
    expect(sentNames()).toEqual(['a', 'k1', 'k2', 'b']);
    expect(storage.data.has('kinesis-edge:q:killed')).toBe(false);
  });

  it('sends twice, never loses, the events of an open tab that had not written for 5 minutes', async () => {
    down();
    const idle = start();
    idle.track('a1');
    idle.disable();
    await vi.advanceTimersByTimeAsync(360_000);
    const next = start(); // takes over a1: idle, disabled, has not written for 6 minutes
    expect(names(storedOutbox(storage))).toEqual(['a1']);
    idle.enable();
    idle.track('a2'); // idle stores its outbox again, a1 included
    up();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(new Set(sentNames())).toEqual(new Set(['a1', 'a2']));
    // Once by each tab, with one id.
    expect(sentNames().filter((name) => name === 'a1')).toHaveLength(2);
    expect(new Set(endpoint.sentIds().filter((id, i) => sentNames()[i] === 'a1')).size).toBe(1);
    expect(storedOutbox(storage)).toEqual([]);
    next.destroy();
  });

  it('keeps the outboxes of closed tabs within maxOutboxEvents, counting and warning about the oldest it drops', () => {
    down();
    storeOutbox('first', 0, [event('f1'), event('f2'), event('f3')]);
    storeOutbox('second', 0, [event('s1'), event('s2'), event('s3')]);
    const tracker = start({ maxOutboxEvents: 4, maxBatchEvents: 100 });
    expect(names(storedOutbox(storage))).toEqual(['f3', 's1', 's2', 's3']);
    expect(tracker.dropped).toBe(2);
    expect(warnings).toEqual(['tracker: outbox full, dropped 2 oldest events (2 so far)']);
  });

  it('leaves a closed tab\'s outbox in place while it cannot store its own, and takes it over once it can', async () => {
    storeOutbox('closed', 0, [event('c')]);
    const setItem = storage.setItem;
    storage.setItem = () => {
      throw new DOMException('quota', 'QuotaExceededError');
    };
    const tracker = start();
    tracker.track('a');
    await tracker.flush();
    expect(sentNames()).toEqual(['a']);
    expect(names(storedOutbox(storage))).toEqual(['c']);
    storage.setItem = setItem;
    tracker.track('b');
    await tracker.flush();
    expect(sentNames()).toEqual(['a', 'c', 'b']);
    expect(storedOutbox(storage)).toEqual([]);
  });

  it('revokeConsent() deletes the outboxes of closed tabs too', () => {
    storeOutbox('closed', 0, [event('c')]);
    storeOutbox('open', Date.now(), [event('o')]);
    const tracker = start({ requireConsent: true });
    tracker.grantConsent();
    tracker.track('a');
    tracker.revokeConsent();
    expect(storage.data.size).toBe(0);
  });
});

describe('tracker keepalive budget', () => {
  // 30 events of ~4 KiB: about 120 KiB, almost twice the budget.
  const fill = (tracker: Tracker) => {
    for (let i = 0; i < 30; i++) tracker.track(`e${i}`, { pad: padding(4_000) });
  };

  it('keeps keepalive bytes in flight within 64 KiB and sends the rest as requests complete', async () => {
    const held = holdReplies(endpoint);
    const tracker = start({ maxBatchEvents: 100, flushIntervalMs: 60_000 });
    fill(tracker);
    void tracker.flush();
    expect(endpoint.keepaliveBytesInFlight).toBeGreaterThan(BUDGET - 16_384);
    expect(endpoint.maxKeepaliveBytesInFlight).toBeLessThanOrEqual(BUDGET);
    const firstWave = endpoint.sentIds().length;
    expect(firstWave).toBeLessThan(30);
    for (const request of endpoint.requests) expect(request.keepalive).toBe(true);

    for (let i = 0; i < 10 && storedOutbox(storage).length; i++) await held.releaseAll();
    expect(names(storedOutbox(storage))).toEqual([]);
    expect(new Set(endpoint.sentIds()).size).toBe(30);
    expect(endpoint.sentIds()).toHaveLength(30);
    expect(endpoint.maxKeepaliveBytesInFlight).toBeLessThanOrEqual(BUDGET);
  });

  it('stays within the budget with racing flushes', async () => {
    // A first page load fills the outbox while the network is down.
    endpoint.answer(() => new TypeError('Failed to fetch'));
    const offline = start({ maxBatchEvents: 100 });
    fill(offline);
    offline.destroy();
    expect(storedOutbox(storage)).toHaveLength(30);

    // The next load flushes the outbox at start, up to the budget.
    endpoint = createEndpoint();
    const held = holdReplies(endpoint);
    const tracker = start({ maxBatchEvents: 100 });
    const firstWave = endpoint.requests.length;
    expect(endpoint.keepaliveBytesInFlight).toBeGreaterThan(BUDGET - 16_384);
    // One answer frees part of the budget; its completion flushes again, racing with an explicit
    // flush and both unload signals.
    await held.releaseOne();
    const racing = tracker.flush();
    pageHide();
    hidePage();
    expect(endpoint.requests.length).toBeGreaterThan(firstWave);
    expect(endpoint.maxKeepaliveBytesInFlight).toBeLessThanOrEqual(BUDGET);
    expect(endpoint.duplicatesInFlight).toEqual([]);

    for (let i = 0; i < 10 && storedOutbox(storage).length; i++) await held.releaseAll();
    await racing;
    expect(names(storedOutbox(storage))).toEqual([]);
    expect(endpoint.sentIds()).toHaveLength(30);
    expect(new Set(endpoint.sentIds()).size).toBe(30);
    expect(endpoint.maxKeepaliveBytesInFlight).toBeLessThanOrEqual(BUDGET);
  });

  it('on unload sends what fits the budget, then beacons, and keeps the rest for the next load', async () => {
    // Chrome's sendBeacon shares the keepalive budget: with it spent, it answers false.
    const beacon = createBeacon(() => false);
    holdReplies(endpoint);
    const first = start({ maxBatchEvents: 100, sendBeacon: beacon.sendBeacon });
    fill(first);
    pageHide();
    expect(endpoint.maxKeepaliveBytesInFlight).toBeLessThanOrEqual(BUDGET);
    const sentAtUnload = new Set(endpoint.sentIds());
    expect(sentAtUnload.size).toBeGreaterThan(0);
    expect(sentAtUnload.size).toBeLessThan(30);
    const ids = storedOutbox(storage).map((event) => event.id);
    expect(ids).toHaveLength(30);
    first.destroy();

    // Next load: the keepalive requests' answers never arrived, so all 30 go again, same ids.
    const replay = createEndpoint();
    endpoint = replay;
    const second = start({ maxBatchEvents: 100 });
    for (let i = 0; i < 5 && storedOutbox(storage).length; i++) await second.flush();
    expect(replay.sentIds().sort()).toEqual(ids.sort());
    expect(names(storedOutbox(storage))).toEqual([]);
  });

  it('falls back to sendBeacon at unload once the keepalive budget is spent', async () => {
    const beacon = createBeacon(() => true);
    holdReplies(endpoint);
    const tracker = start({ maxBatchEvents: 100, sendBeacon: beacon.sendBeacon });
    fill(tracker);
    hidePage();
    const byFetch = endpoint.sentIds();
    const beaconed = beacon.ids();
    expect(endpoint.maxKeepaliveBytesInFlight).toBeLessThanOrEqual(BUDGET);
    expect(beaconed.length).toBeGreaterThan(0);
    expect([...byFetch, ...beaconed].sort()).toEqual(storedOutbox(storage).map((event) => event.id).sort());
    for (const body of beacon.bodies) expect(new TextEncoder().encode(body).length).toBeLessThanOrEqual(16_384);
    // A second unload signal sends nothing again.
    pageHide();
    expect(endpoint.sentIds()).toEqual(byFetch);
    expect(beacon.ids()).toEqual(beaconed);
  });

  // Found by reading flush(): the event over 64 KiB made its batch fail both keepalive and the
  // beacon, and that stopped the unload flush before the events behind it.
  it.each([true, false])('at unload sends the events behind one too large for any keepalive body (keepalive %s)', (keepalive) => {
    // sendBeacon refuses a body over 64 KiB (https://w3c.github.io/beacon/#sendbeacon-method).
    const beacon = createBeacon((body) => new TextEncoder().encode(body).length <= BUDGET);
    holdReplies(endpoint);
    // Batch limits above the event, so that tracking it sends nothing before the unload.
    const tracker = start({ keepalive, sendBeacon: beacon.sendBeacon, flushIntervalMs: 60_000, maxBatchBytes: 100_000 });
    tracker.track('huge', { pad: padding(70_000) });
    tracker.track('b');
    pageHide();
    const atUnload = [...endpoint.requests.flatMap((request) => request.events), ...beacon.bodies.flatMap((body) => JSON.parse(body) as TrackerEvent[])];
    expect(names(atUnload)).toEqual(['b']);
    // The huge event waits for the next load, which sends it without keepalive.
    expect(names(storedOutbox(storage))).toEqual(['huge', 'b']);
  });

  it('uses sendBeacon at unload when fetch keepalive is unavailable', async () => {
    const beacon = createBeacon();
    const tracker = start({ keepalive: false, sendBeacon: beacon.sendBeacon });
    tracker.track('a');
    tracker.track('b');
    pageHide();
    expect(endpoint.requests).toHaveLength(0);
    expect(beacon.bodies.map((body) => names(JSON.parse(body)))).toEqual([['a', 'b']]);
    pageHide();
    expect(beacon.bodies).toHaveLength(1);
  });

  it('uses plain fetch outside unload when fetch keepalive is unavailable', async () => {
    const tracker = start({ keepalive: false });
    tracker.track('a');
    await tracker.flush();
    expect(endpoint.requests).toHaveLength(1);
    expect(endpoint.requests[0]!.keepalive).toBe(false);
    expect(names(storedOutbox(storage))).toEqual([]);
  });
});

describe('tracker endpoint as a function (session tokens)', () => {
  it('asks the function for the URL of every request', async () => {
    let token = 't1';
    const tracker = start({ endpoint: () => `https://ingest.example.com/collect?token=${token}` });
    tracker.track('a');
    await tracker.flush();
    token = 't2';
    tracker.track('b');
    await tracker.flush();
    expect(endpoint.requests.map((request) => request.url)).toEqual([
      'https://ingest.example.com/collect?token=t1',
      'https://ingest.example.com/collect?token=t2',
    ]);
  });

  it('keeps the events of a 401 and sends them again with the URL of the new token', async () => {
    let token = 'expired';
    endpoint.answer((events, request) =>
      request.url.endsWith('token=expired')
        ? new Response(JSON.stringify({ error: 'session token expired' }), { status: 401 })
        : collectResponse({ accepted: events.map((event) => event.id) }),
    );
    const tracker = start({ endpoint: () => `https://ingest.example.com/collect?token=${token}` });
    tracker.track('a');
    await tracker.flush();
    expect(names(storedOutbox(storage))).toEqual(['a']);
    expect(tracker.dropped).toBe(0);
    token = 'fresh';
    // Full jitter with random() = 0.5: the first retry waits half of the first backoff step.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(endpoint.requests.map((request) => request.url.split('=')[1])).toEqual(['expired', 'fresh']);
    expect(endpoint.requests[1]!.events[0]!.id).toBe(endpoint.requests[0]!.events[0]!.id);
    expect(names(storedOutbox(storage))).toEqual([]);
  });

  it('beacons to the URL the function returns at unload', () => {
    const beacon = createBeacon();
    const tracker = start({ keepalive: false, sendBeacon: beacon.sendBeacon, endpoint: () => 'https://ingest.example.com/collect?token=last' });
    tracker.track('a');
    pageHide();
    expect(beacon.urls).toEqual(['https://ingest.example.com/collect?token=last']);
  });
});

describe('tracker retries', () => {
  it('waits for Retry-After on 429 and sends the same ids again', async () => {
    endpoint.answer(() => new Response('slow down', { status: 429, headers: { 'retry-after': '7' } }));
    const tracker = start();
    tracker.track('a');
    await tracker.flush();
    endpoint.answer((events) => collectResponse({ accepted: events.map((event) => event.id) }));
    await tracker.flush();
    tracker.track('b');
    await vi.advanceTimersByTimeAsync(6_999);
    expect(endpoint.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(times()).toEqual([0, 7_000]);
    expect(names(endpoint.requests[1]!.events)).toEqual(['a', 'b']);
    expect(endpoint.requests[1]!.events[0]!.id).toBe(endpoint.requests[0]!.events[0]!.id);
    expect(names(storedOutbox(storage))).toEqual([]);
  });

  it("holds every request back for a Retry-After whose request's events all settled", async () => {
    // A 503 with Retry-After whose events were all rejected (found by the invariants test, seed 56
    // with two tabs and lagging storage): nothing of it is retried, yet the Worker asked the page
    // to wait, and the next request went out at once.
    endpoint.answer((events) => collectResponse({ rejected: events.map((event) => ({ id: event.id, reason: 'invalid' })) }, 503, { 'retry-after': '7' }));
    const tracker = start();
    tracker.track('a');
    await tracker.flush();
    endpoint.answer((events) => collectResponse({ accepted: events.map((event) => event.id) }));
    tracker.track('b');
    await tracker.flush();
    await vi.advanceTimersByTimeAsync(6_999);
    expect(endpoint.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(times()).toEqual([0, 7_000]);
    expect(names(endpoint.requests[1]!.events)).toEqual(['b']);
  });

  it('accepts Retry-After as an HTTP date', async () => {
    const until = new Date(Date.now() + 30_000).toUTCString();
    endpoint.answer(() => new Response('', { status: 429, headers: { 'retry-after': until } }));
    const tracker = start();
    tracker.track('a');
    await tracker.flush();
    endpoint.answer((events) => collectResponse({ accepted: events.map((event) => event.id) }));
    await vi.advanceTimersByTimeAsync(29_999);
    expect(endpoint.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(endpoint.requests).toHaveLength(2);
  });

  it('backs off exponentially with full jitter on 5xx, capped at 60 s', async () => {
    endpoint.answer(() => new Response('', { status: 503 }));
    const tracker = start({ random: () => 0.5 });
    tracker.track('a');
    await tracker.flush();
    await vi.advanceTimersByTimeAsync(300_000);
    const gaps = times()
      .slice(1)
      .map((at, i) => at - times()[i]!);
    expect(gaps.slice(0, 8)).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    expect(new Set(endpoint.sentIds()).size).toBe(1);
  });

  it('draws the jitter from random: never longer than the exponential step', async () => {
    const draws = [0, 0.999, 0.25];
    endpoint.answer(() => new Response('', { status: 500 }));
    const tracker = start({ random: () => draws.shift() ?? 0.5 });
    tracker.track('a');
    await tracker.flush();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(times().slice(0, 4)).toEqual([0, 0, 1_998, 1_998 + 1_000]);
  });

  it('retries after a network error and then stops retrying', async () => {
    endpoint.answer(() => new TypeError('Failed to fetch'));
    const tracker = start();
    tracker.track('a');
    await tracker.flush();
    endpoint.answer((events) => collectResponse({ accepted: events.map((event) => event.id) }));
    await vi.advanceTimersByTimeAsync(600_000);
    expect(endpoint.requests).toHaveLength(2);
    expect(endpoint.sentIds()[1]).toBe(endpoint.sentIds()[0]);
    expect(names(storedOutbox(storage))).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('gives up on a request left unanswered for 30 s and sends its events again', async () => {
    // AbortSignal.timeout runs on the platform's timers, which the fake clock does not drive: a
    // stand-in with the same contract (aborts with a TimeoutError after `ms`).
    vi.spyOn(AbortSignal, 'timeout').mockImplementation((ms) => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(new DOMException('signal timed out', 'TimeoutError')), ms);
      return controller.signal;
    });
    // A connection that stalls: no answer, until fetch's signal aborts it, as fetch does.
    endpoint.answer((_, request) => new Promise((_, reject) => request.init.signal?.addEventListener('abort', () => reject(request.init.signal!.reason))));
    const tracker = start();
    tracker.track('a');
    let answered = false;
    void tracker.flush().then(() => (answered = true));
    await vi.advanceTimersByTimeAsync(29_999);
    expect(endpoint.requests).toHaveLength(1);
    endpoint.answer((events) => collectResponse({ accepted: events.map((event) => event.id) }));
    // The abort at 30 s, then the first backoff (0.5 x 1 s).
    await vi.advanceTimersByTimeAsync(501);
    expect(answered).toBe(true);
    expect(times()).toEqual([0, 30_500]);
    expect(endpoint.requests[1]!.events).toEqual(endpoint.requests[0]!.events);
    expect(names(storedOutbox(storage))).toEqual([]);
  });

  it('retries at once when the network comes back online', async () => {
    endpoint.answer(() => new TypeError('Failed to fetch'));
    const tracker = start({ random: () => 0.99 });
    tracker.track('a');
    await tracker.flush();
    endpoint.answer((events) => collectResponse({ accepted: events.map((event) => event.id) }));
    window.dispatchEvent(new Event('online'));
    await vi.advanceTimersByTimeAsync(0);
    expect(endpoint.requests).toHaveLength(2);
    expect(names(storedOutbox(storage))).toEqual([]);
  });

  it('splits a batch answered 413 into halves until it fits', async () => {
    endpoint.answer((events) =>
      events.length > 2 ? new Response('', { status: 413 }) : collectResponse({ accepted: events.map((event) => event.id) }),
    );
    const tracker = start();
    for (let i = 0; i < 8; i++) tracker.track(`e${i}`);
    await tracker.flush();
    expect(endpoint.requests.map((request) => request.events.length)).toEqual([8, 4, 4, 2, 2, 2, 2]);
    expect(names(storedOutbox(storage))).toEqual([]);
    const accepted = endpoint.requests.filter((request) => request.events.length <= 2).flatMap((request) => names(request.events));
    expect(accepted).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7']);
  });

  it('drops a single event answered 413, with a warning', async () => {
    endpoint.answer((events) =>
      events.some((event) => event.name === 'huge')
        ? new Response('', { status: 413 })
        : collectResponse({ accepted: events.map((event) => event.id) }),
    );
    const tracker = start();
    tracker.track('ok');
    tracker.track('huge');
    await tracker.flush();
    expect(endpoint.requests.map((request) => names(request.events))).toEqual([['ok', 'huge'], ['ok'], ['huge']]);
    expect(names(storedOutbox(storage))).toEqual([]);
    expect(tracker.dropped).toBe(1);
    expect(warnings.join('\n')).toMatch(/too large/);
  });

  it('applies per-event results: accepted and rejected leave the outbox, retry ids stay', async () => {
    endpoint.answer(([a, b, c]) =>
      collectResponse({ accepted: [a!.id], rejected: [{ id: b!.id, reason: 'name too long' }], retry: [c!.id] }),
    );
    const tracker = start();
    tracker.track('a');
    tracker.track('b');
    tracker.track('c');
    tracker.track('unmentioned');
    await tracker.flush();
    expect(names(storedOutbox(storage))).toEqual(['c', 'unmentioned']);
    expect(tracker.dropped).toBe(1);
    expect(warnings).toEqual([expect.stringMatching(/rejected: name too long/)]);

    endpoint.answer((events) => collectResponse({ accepted: events.map((event) => event.id) }));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(names(endpoint.requests[1]!.events)).toEqual(['c', 'unmentioned']);
    expect(names(storedOutbox(storage))).toEqual([]);
  });

  it('drops events on a 400 only when the answer rejects them', async () => {
    endpoint.answer(([a]) => collectResponse({ rejected: [{ id: a!.id, reason: 'ts out of range' }] }, 400));
    const tracker = start();
    tracker.track('bad');
    await tracker.flush();
    expect(names(storedOutbox(storage))).toEqual([]);
    expect(warnings).toHaveLength(1);

    endpoint.answer(() => new Response('{"error":"malformed JSON"}', { status: 400 }));
    tracker.track('kept');
    await tracker.flush();
    expect(names(storedOutbox(storage))).toEqual(['kept']);
    expect(warnings).toHaveLength(1);
    endpoint.answer((events) => collectResponse({ accepted: events.map((event) => event.id) }));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(names(endpoint.requests.at(-1)!.events)).toEqual(['kept']);
    expect(names(storedOutbox(storage))).toEqual([]);
  });

  it('keeps events when a 200 body is not a CollectResponse', async () => {
    endpoint.answer(() => new Response('ok', { status: 200 }));
    const tracker = start();
    tracker.track('a');
    await tracker.flush();
    expect(names(storedOutbox(storage))).toEqual(['a']);
  });

  it('does not resend during backoff on flush() or unload; the outbox keeps the events', async () => {
    endpoint.answer(() => new Response('', { status: 429, headers: { 'retry-after': '60' } }));
    const tracker = start();
    tracker.track('a');
    await tracker.flush();
    await tracker.flush();
    pageHide();
    expect(endpoint.requests).toHaveLength(1);
    expect(names(storedOutbox(storage))).toEqual(['a']);
  });
});

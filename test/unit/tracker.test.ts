// @vitest-environment happy-dom
// Capture side of the browser tracker: the event wire shape (src/tracker/event.ts), sessions,
// consent, sampling, page views on SPA navigations, click capture, enable/disable and destroy.
// Every assertion is on requests captured by the injected fetch or on the injected storage.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { captureClicks, createTracker, type Tracker, type TrackerOptions } from '../../src/tracker/index.ts';
import { createEndpoint, memoryStorage, storedOutbox, TEST_TRACKER_OPTIONS, type FakeEndpoint } from '../support/tracker-harness.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const MINUTE = 60_000;

let trackers: Tracker[] = [];
let endpoint: FakeEndpoint;
let storage: ReturnType<typeof memoryStorage>;

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

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2025-06-01T12:00:00Z') });
  endpoint = createEndpoint();
  storage = memoryStorage();
  history.replaceState(null, '', '/start');
  document.body.innerHTML = '';
});

afterEach(() => {
  for (const tracker of trackers) tracker.destroy();
  trackers = [];
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('tracker events', () => {
  it('sends the documented wire shape as text/plain JSON with keepalive and no credentials', async () => {
    const tracker = start();
    tracker.track('signup', { plan: 'pro' });
    await tracker.flush();

    expect(endpoint.requests).toHaveLength(1);
    const [request] = endpoint.requests;
    expect(request!.url).toBe('https://ingest.example.com/collect');
    expect(request!.init).toMatchObject({ method: 'POST', keepalive: true, credentials: 'omit' });
    // A string body, no Content-Type of its own: fetch sends it as text/plain;charset=UTF-8, as a
    // Request built from the same init shows (test/e2e/clickstream.test.ts sends it to the Worker).
    expect(typeof request!.init.body).toBe('string');
    expect(new Headers(request!.init.headers).has('content-type')).toBe(false);
    expect(new Request(request!.url, request!.init).headers.get('content-type')).toBe('text/plain;charset=UTF-8');
    const [event] = request!.events;
    expect(Object.keys(event!).sort()).toEqual(
      ['anonymousId', 'id', 'name', 'properties', 'referrer', 'sessionId', 'ts', 'type', 'url', 'viewport'].sort(),
    );
    expect(event).toMatchObject({
      type: 'track',
      name: 'signup',
      ts: Date.parse('2025-06-01T12:00:00Z'),
      url: 'http://localhost:3000/start',
      referrer: document.referrer,
      viewport: { w: window.innerWidth, h: window.innerHeight },
      properties: { plan: 'pro' },
    });
    expect(event!.id).toMatch(UUID);
    expect(event!.anonymousId).toMatch(UUID);
    expect(event!.sessionId).toMatch(UUID);
  });

  it('gives every event its own id and keeps the anonymous id across page loads', async () => {
    const first = start();
    first.track('a');
    first.track('b');
    await first.flush();
    first.destroy();
    const second = start();
    second.track('c');
    await second.flush();

    const events = endpoint.requests.flatMap((request) => request.events);
    expect(new Set(events.map((event) => event.id)).size).toBe(3);
    expect(new Set(events.map((event) => event.anonymousId)).size).toBe(1);
    expect(JSON.parse(storage.data.get('kinesis-edge:aid')!)).toBe(events[0]!.anonymousId);
  });

  it('builds v4 ids from getRandomValues where randomUUID is missing (insecure contexts)', async () => {
    Object.defineProperty(crypto, 'randomUUID', { configurable: true, value: undefined });
    try {
      const tracker = start();
      tracker.track('a');
      await tracker.flush();
    } finally {
      delete (crypto as { randomUUID?: unknown }).randomUUID;
    }
    const [event] = endpoint.requests[0]!.events;
    expect(event!.id).toMatch(UUID);
    expect(event!.sessionId).toMatch(UUID);
  });

  it('truncates url and referrer to 2048 characters and name to 128', async () => {
    history.replaceState(null, '', `/${'p'.repeat(3000)}`);
    const tracker = start();
    tracker.track('n'.repeat(200));
    await tracker.flush();
    const [event] = endpoint.requests[0]!.events;
    expect(event!.url).toHaveLength(2048);
    expect(event!.name).toHaveLength(128);
  });

  it('carries the user id after identify(), also after a reload', async () => {
    const tracker = start();
    tracker.track('before');
    tracker.identify('user-42');
    tracker.track('after');
    await tracker.flush();
    tracker.destroy();
    const reloaded = start();
    reloaded.track('next-load');
    await reloaded.flush();

    const events = endpoint.requests.flatMap((request) => request.events);
    expect(events.map((event) => [event.type, event.name, event.userId])).toEqual([
      ['track', 'before', undefined],
      ['identify', 'identify', 'user-42'],
      ['track', 'after', 'user-42'],
      ['track', 'next-load', 'user-42'],
    ]);
    expect('userId' in events[0]!).toBe(false);
  });
});

describe('tracker sessions', () => {
  it('keeps the session within 30 minutes of inactivity and starts a new one after', async () => {
    const tracker = start();
    tracker.track('a');
    vi.setSystemTime(Date.now() + 29 * MINUTE);
    tracker.track('b');
    vi.setSystemTime(Date.now() + 29 * MINUTE);
    tracker.track('c');
    vi.setSystemTime(Date.now() + 30 * MINUTE + 1);
    tracker.track('d');
    await tracker.flush();

    const [a, b, c, d] = endpoint.requests.flatMap((request) => request.events);
    expect(b!.sessionId).toBe(a!.sessionId);
    expect(c!.sessionId).toBe(a!.sessionId);
    expect(d!.sessionId).not.toBe(a!.sessionId);
    expect(d!.anonymousId).toBe(a!.anonymousId);
  });

  it('continues the session across a reload and honours sessionTimeoutMs', async () => {
    const first = start({ sessionTimeoutMs: 5 * MINUTE });
    first.track('a');
    first.destroy();
    vi.setSystemTime(Date.now() + 4 * MINUTE);
    const second = start({ sessionTimeoutMs: 5 * MINUTE });
    second.track('b');
    vi.setSystemTime(Date.now() + 5 * MINUTE + 1);
    second.track('c');
    await second.flush();

    const [a, b, c] = endpoint.requests.flatMap((request) => request.events);
    expect(b!.sessionId).toBe(a!.sessionId);
    expect(c!.sessionId).not.toBe(b!.sessionId);
  });
});

describe('tracker consent', () => {
  it('stores and sends nothing before grantConsent()', async () => {
    const tracker = start({ requireConsent: true, trackPageViews: true, clicks: captureClicks() });
    tracker.track('a');
    tracker.identify('user-1');
    tracker.page();
    document.body.innerHTML = '<button data-track="b">b</button>';
    document.querySelector('button')!.click();
    await tracker.flush();
    await vi.advanceTimersByTimeAsync(60_000);

    expect(storage.data.size).toBe(0);
    expect(endpoint.requests).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('starts with a page view once consent is granted, and revokeConsent() clears ids and outbox', async () => {
    endpoint.answer(() => new TypeError('Failed to fetch'));
    const tracker = start({ requireConsent: true, trackPageViews: true });
    tracker.track('ignored');
    tracker.grantConsent();
    tracker.identify('user-1');
    tracker.track('kept');
    await tracker.flush();
    expect(endpoint.requests[0]!.events.map((event) => event.name)).toEqual(['/start', 'identify', 'kept']);
    // The outbox key carries the page's id: kinesis-edge:q:<uuid>.
    expect([...storage.data.keys()].map((key) => key.replace(/:q:[\w-]{36}$/, ':q:<page>')).sort()).toEqual(['kinesis-edge:aid', 'kinesis-edge:q:<page>', 'kinesis-edge:sid', 'kinesis-edge:uid']);

    tracker.revokeConsent();
    expect(storage.data.size).toBe(0);
    tracker.track('after-revoke');
    await vi.advanceTimersByTimeAsync(120_000);
    expect(storage.data.size).toBe(0);
    expect(endpoint.requests).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('leaves nothing stored when an answer arrives after revokeConsent()', async () => {
    let release!: () => void;
    endpoint.answer(
      (events) =>
        new Promise((resolve) => {
          release = () => resolve(new Response(JSON.stringify({ accepted: [], rejected: [], retry: events.map((e) => e.id) })));
        }),
    );
    const tracker = start();
    tracker.track('a');
    const flushed = tracker.flush();
    tracker.revokeConsent();
    release();
    await flushed;
    expect(storage.data.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('tracker sampling', () => {
  it('records nothing with sampleRate 0', async () => {
    const tracker = start({ sampleRate: 0 });
    tracker.track('a');
    await tracker.flush();
    expect(endpoint.requests).toHaveLength(0);
    expect(storedOutbox(storage)).toEqual([]);
  });

  it('keeps or drops whole sessions, about sampleRate of them, the same way after a reload', async () => {
    const sessions = 400;
    let tracker = start({ sampleRate: 0.5 });
    for (let i = 0; i < sessions; i++) {
      tracker.track('first');
      if (i % 2 === 0) {
        // Half of the sessions continue on a new page load: the decision must not change.
        tracker.destroy();
        tracker = start({ sampleRate: 0.5 });
      }
      tracker.track('second');
      await tracker.flush();
      vi.setSystemTime(Date.now() + 31 * MINUTE);
    }

    const bySession = new Map<string, string[]>();
    for (const event of endpoint.requests.flatMap((request) => request.events)) {
      bySession.set(event.sessionId, [...(bySession.get(event.sessionId) ?? []), event.name]);
    }
    for (const names of bySession.values()) expect(names).toEqual(['first', 'second']);
    expect(bySession.size).toBeGreaterThan(sessions * 0.4);
    expect(bySession.size).toBeLessThan(sessions * 0.6);
  });
});

describe('tracker page views', () => {
  it('records the first page and each SPA navigation with the previous URL as referrer', async () => {
    const rawReplaceState = history.replaceState;
    const tracker = start({ trackPageViews: true });
    history.pushState({}, '', '/pricing');
    history.replaceState({ scroll: 10 }, '', '/pricing');
    history.replaceState({}, '', '/pricing?plan=pro');
    rawReplaceState.call(history, null, '', '/back');
    window.dispatchEvent(new PopStateEvent('popstate'));
    window.dispatchEvent(new PopStateEvent('popstate'));
    await tracker.flush();

    const pages = endpoint.requests.flatMap((request) => request.events);
    expect(pages.map((event) => [event.type, event.name, event.url, event.referrer])).toEqual([
      ['page', '/start', 'http://localhost:3000/start', document.referrer],
      ['page', '/pricing', 'http://localhost:3000/pricing', 'http://localhost:3000/start'],
      ['page', '/pricing', 'http://localhost:3000/pricing?plan=pro', 'http://localhost:3000/pricing'],
      ['page', '/back', 'http://localhost:3000/back', 'http://localhost:3000/pricing?plan=pro'],
    ]);
    expect(pages[0]!.properties).toEqual({ title: document.title });
  });

  it('restores history on destroy() and records nothing afterwards', async () => {
    const pushState = history.pushState;
    const replaceState = history.replaceState;
    const tracker = start({ trackPageViews: true });
    expect(history.pushState).not.toBe(pushState);
    tracker.destroy();
    expect(history.pushState).toBe(pushState);
    expect(history.replaceState).toBe(replaceState);
    history.pushState({}, '', '/after');
    window.dispatchEvent(new PopStateEvent('popstate'));
    await tracker.flush();
    expect(endpoint.requests).toHaveLength(0);
    expect(storedOutbox(storage).map((event) => event.name)).toEqual(['/start']);
  });

  it('leaves history alone with trackPageViews: false', async () => {
    const pushState = history.pushState;
    const tracker = start({ trackPageViews: false });
    expect(history.pushState).toBe(pushState);
    history.pushState({}, '', '/elsewhere');
    tracker.page({ section: 'docs' });
    await tracker.flush();
    const [event] = endpoint.requests[0]!.events;
    expect(event).toMatchObject({ type: 'page', name: '/elsewhere', properties: { section: 'docs' } });
    expect(endpoint.requests[0]!.events).toHaveLength(1);
  });
});

describe('tracker click capture', () => {
  it('records clicks on opted-in elements only, with data-track-* as properties', async () => {
    document.body.innerHTML = `
      <button data-track="signup-button" data-track-plan="pro"><span>Sign up</span></button>
      <button id="plain">Plain</button>
      <a data-track="docs-link" href="#docs">Docs</a>`;
    const tracker = start({ clicks: captureClicks() });
    document.querySelector('span')!.click();
    document.querySelector<HTMLElement>('#plain')!.click();
    // A handler that stops propagation does not hide the click: the tracker listens in capture.
    document.querySelector('a')!.addEventListener('click', (event) => {
      event.stopPropagation();
      event.preventDefault();
    });
    document.querySelector('a')!.click();
    await tracker.flush();

    const events = endpoint.requests.flatMap((request) => request.events);
    expect(events.map((event) => [event.type, event.name, event.properties])).toEqual([
      ['click', 'signup-button', { text: 'Sign up', plan: 'pro' }],
      ['click', 'docs-link', { text: 'Docs' }],
    ]);
  });

  it('records clicks matching a configured selector, named by id or tag', async () => {
    document.body.innerHTML = '<div class="cta" id="hero-cta">Go</div><p class="cta">Read</p><p>Other</p>';
    const tracker = start({ clicks: captureClicks('.cta') });
    for (const element of document.querySelectorAll<HTMLElement>('p, div')) element.click();
    await tracker.flush();
    expect(endpoint.requests[0]!.events.map((event) => event.name)).toEqual(['hero-cta', 'p']);
  });

  it('captures no clicks by default', async () => {
    document.body.innerHTML = '<button data-track="x">x</button>';
    const tracker = start();
    document.querySelector('button')!.click();
    await tracker.flush();
    expect(endpoint.requests).toHaveLength(0);
  });
});

describe('tracker lifecycle', () => {
  it('disable() stops capture and sending, enable() resumes with the kept outbox', async () => {
    const tracker = start();
    tracker.track('kept');
    tracker.disable();
    tracker.track('ignored');
    await tracker.flush();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(endpoint.requests).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);

    tracker.enable();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(endpoint.requests.flatMap((request) => request.events).map((event) => event.name)).toEqual(['kept']);
  });

  it('leaves no timers or listeners after destroy()', async () => {
    endpoint.answer(() => new Response('busy', { status: 503 }));
    const tracker = start({ clicks: captureClicks(), trackPageViews: true });
    await tracker.flush();
    tracker.track('pending');
    expect(vi.getTimerCount()).toBe(1);
    tracker.destroy();
    expect(vi.getTimerCount()).toBe(0);

    document.body.innerHTML = '<button data-track="x">x</button>';
    document.querySelector('button')!.click();
    window.dispatchEvent(new Event('pagehide'));
    window.dispatchEvent(new Event('online'));
    await vi.advanceTimersByTimeAsync(600_000);
    expect(endpoint.requests).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
    expect(storedOutbox(storage).map((event) => event.name)).toEqual(['/start', 'pending']);
  });

  it('keeps working in memory when storage throws', async () => {
    const broken = {
      getItem: () => null,
      setItem: () => {
        throw new DOMException('quota', 'QuotaExceededError');
      },
      removeItem: () => {},
      key: () => null,
    };
    const tracker = start({ storage: broken });
    tracker.track('a');
    tracker.track('b');
    await tracker.flush();
    const events = endpoint.requests[0]!.events;
    expect(events.map((event) => event.name)).toEqual(['a', 'b']);
    expect(events[1]!.sessionId).toBe(events[0]!.sessionId);
  });
});

// Stand-ins for the browser tracker's unit tests: a fake ingest endpoint (a `fetch` that records
// every request and answers like the Worker's `/collect` route, contract in src/tracker/event.ts),
// an in-memory Web Storage, a beacon recorder, and helpers for page lifecycle events.
import type { CollectResponse, TrackerEvent, TrackerOptions, TrackerStorage } from '../../src/tracker/index.ts';

/** One request the fake endpoint received. */
export interface SentRequest {
  url: string;
  init: RequestInit;
  body: string;
  /** The parsed body. */
  events: TrackerEvent[];
  /** UTF-8 bytes of the body, what the browser counts against the keepalive budget. */
  bytes: number;
  keepalive: boolean;
  /** `Date.now()` when it was made (the faked clock under `vi.useFakeTimers`). */
  at: number;
}

/** How the fake endpoint answers: a response, an error to reject with (a network error). */
export type EndpointReply = Response | Error | Promise<Response | Error>;
export type EndpointHandler = (events: TrackerEvent[], request: SentRequest) => EndpointReply;

export interface FakeEndpoint {
  fetch: (input: string, init: RequestInit) => Promise<Response>;
  readonly requests: SentRequest[];
  /** Ids of every event sent, in order, duplicates included. */
  sentIds(): string[];
  /** Keepalive body bytes whose request has not been answered yet. */
  readonly keepaliveBytesInFlight: number;
  /** The highest `keepaliveBytesInFlight` seen. */
  readonly maxKeepaliveBytesInFlight: number;
  /** Ids currently inside an unanswered request; an id sent while already in here is a duplicate. */
  readonly duplicatesInFlight: string[];
  /** Replaces the handler for later requests. */
  answer(handler: EndpointHandler): void;
}

/** The Worker's answer to a batch, 200 by default. */
export function collectResponse(body: Partial<CollectResponse>, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ accepted: [], rejected: [], retry: [], ...body }), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

/** The handler of a healthy Worker: every event accepted. */
export const acceptAll: EndpointHandler = (events) => collectResponse({ accepted: events.map((event) => event.id) });

/** A fake `/collect` endpoint answering with `handler` (accept everything by default). */
export function createEndpoint(handler: EndpointHandler = acceptAll): FakeEndpoint {
  const requests: SentRequest[] = [];
  const open = new Map<string, number>();
  const duplicates: string[] = [];
  let current = handler;
  let inFlight = 0;
  let maxInFlight = 0;
  const fetch = async (url: string, init: RequestInit): Promise<Response> => {
    if (typeof init.body !== 'string') throw new Error('the tracker sends string bodies');
    const body = init.body;
    const bytes = new TextEncoder().encode(body).length;
    const events = JSON.parse(body) as TrackerEvent[];
    const request: SentRequest = { url, init, body, events, bytes, keepalive: init.keepalive === true, at: Date.now() };
    requests.push(request);
    for (const event of events) {
      if (open.has(event.id)) duplicates.push(event.id);
      open.set(event.id, (open.get(event.id) ?? 0) + 1);
    }
    if (request.keepalive) {
      inFlight += bytes;
      maxInFlight = Math.max(maxInFlight, inFlight);
    }
    try {
      const reply = await current(events, request);
      if (reply instanceof Error) throw reply;
      return reply;
    } finally {
      if (request.keepalive) inFlight -= bytes;
      for (const event of events) {
        const count = open.get(event.id)! - 1;
        if (count === 0) open.delete(event.id);
        else open.set(event.id, count);
      }
    }
  };
  return {
    fetch,
    requests,
    sentIds: () => requests.flatMap((request) => request.events.map((event) => event.id)),
    get keepaliveBytesInFlight() {
      return inFlight;
    },
    get maxKeepaliveBytesInFlight() {
      return maxInFlight;
    },
    duplicatesInFlight: duplicates,
    answer(next) {
      current = next;
    },
  };
}

/** A promise with its resolve exposed, to hold a reply until the test releases it. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/**
 * What the tracker tests give every tracker unless a test says otherwise: the clock vitest fakes, a
 * fixed jitter draw, keepalive on, beacons refused, and no automatic page views.
 */
export const TEST_TRACKER_OPTIONS = {
  now: () => Date.now(),
  random: () => 0.5,
  keepalive: true,
  sendBeacon: () => false,
  trackPageViews: false,
} satisfies Partial<TrackerOptions>;

/** A Web Storage in a Map, shared between "page loads" by passing the same instance. */
export function memoryStorage(): TrackerStorage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getItem: (key) => data.get(key) ?? null,
    setItem: (key, value) => {
      data.set(key, String(value));
    },
    removeItem: (key) => {
      data.delete(key);
    },
    key: (index) => [...data.keys()][index] ?? null,
  };
}

/** Storage keys of the outboxes: one per page load, `kinesis-edge:q:<page id>`. */
export const OUTBOX_PREFIX = 'kinesis-edge:q:';

/** The events of every stored outbox (each `[written at, events]`), in the order of their keys. */
export function storedOutbox(storage: { data: Map<string, string> }): TrackerEvent[] {
  return [...storage.data].flatMap(([key, raw]) => (key.startsWith(OUTBOX_PREFIX) ? (JSON.parse(raw) as [number, TrackerEvent[]])[1] : []));
}

/** A `navigator.sendBeacon` stand-in that records bodies and answers `accept(body)`. */
export function createBeacon(accept: (body: string) => boolean = () => true) {
  const bodies: string[] = [];
  const urls: string[] = [];
  const sendBeacon = (url: string, body: string): boolean => {
    const ok = accept(body);
    if (ok) {
      bodies.push(body);
      urls.push(url);
    }
    return ok;
  };
  return { sendBeacon, bodies, urls, ids: () => bodies.flatMap((body) => (JSON.parse(body) as TrackerEvent[]).map((event) => event.id)) };
}

/** Fires `visibilitychange` with `document.visibilityState` reading `hidden`, then restores it. */
export function hidePage(): void {
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
  try {
    document.dispatchEvent(new Event('visibilitychange'));
  } finally {
    delete (document as { visibilityState?: unknown }).visibilityState;
  }
}

/** Fires `pagehide` on window, as a browser does when the page is being unloaded. */
export function pageHide(): void {
  window.dispatchEvent(new Event('pagehide'));
}

/** A string property value making an event about `bytes` bytes larger. */
export function padding(bytes: number): string {
  return 'x'.repeat(bytes);
}

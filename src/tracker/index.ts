// The browser clickstream tracker (`kinesis-edge/tracker`). It is the only DOM code in the
// package and imports nothing from the rest of it, so a page pays for the tracker alone (the size
// test in test/unit/tracker-size.test.ts holds it to a gzip ceiling). It never signs requests: it
// posts to the ingest Worker (worker-example/), which holds the AWS credentials.
//
// Delivery is at-least-once. Events go to a localStorage outbox synchronously when they happen
// (synchronous matters at `pagehide`, where an IndexedDB transaction may never commit), and leave it
// only when the Worker acknowledges them (accepted or rejected). In-flight marks live in memory
// only, so a page load that takes over an outbox resends whatever was not acknowledged, with the
// same ids; consumers dedupe by `id`. The wire contract is in ./event.ts.
import type { ClickCapture } from './clicks.ts';
import type { CollectResponse, TrackerEvent, TrackerEventType, TrackerProperties } from './event.ts';

export type { CollectResponse, TrackerEvent, TrackerEventType, TrackerProperties } from './event.ts';
export { TRACKER_EVENT_LIMITS } from './event.ts';
export { captureClicks, type ClickCapture } from './clicks.ts';

/** The subset of the Web Storage API the tracker uses (`localStorage` fits). */
export interface TrackerStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
  /** The name of the key at `index`, null past the last: how a page finds closed tabs' outboxes. */
  key(index: number): string | null;
}

/** Options for {@link createTracker}. */
export interface TrackerOptions {
  /**
   * URL of the ingest Worker's collect route, e.g. `https://ingest.example.com/collect`; or a
   * function returning it, called for every request, for a URL that changes: with the Worker's
   * session tokens on, `() => \`${collectUrl}?token=${currentToken}\`` (README, "Session tokens").
   * A refused request (401 for an expired token) keeps its events and sends them again later, with
   * the URL the function returns then.
   */
  endpoint: string | (() => string);
  /**
   * Store and send nothing until {@link Tracker.grantConsent} is called. Consent is not
   * remembered by the tracker: call `grantConsent()` on every page load once your consent
   * manager reports it. Events before that are discarded, not buffered.
   * @default false
   */
  requireConsent?: boolean;
  /**
   * Share of sessions to record, 0..1. Decided once per session id, from a hash of it, so that a
   * session is recorded whole or not at all, in every tab.
   * @default 1
   */
  sampleRate?: number;
  /**
   * Inactivity after which the next event starts a new session, in ms.
   * @default 1_800_000 (30 minutes)
   */
  sessionTimeoutMs?: number;
  /**
   * Record a page view when the tracker starts (or consent is granted) and on every SPA
   * navigation: `history.pushState`/`replaceState` are wrapped (restored by `destroy()`) and
   * `popstate` is observed; a navigation that keeps the URL records nothing.
   * @default true
   */
  trackPageViews?: boolean;
  /**
   * Record clicks on opted-in elements: `captureClicks()` for elements matching `[data-track]`,
   * `captureClicks(selector)` for your own (see {@link captureClicks}). Off by default, and a page
   * that leaves it off does not carry the click code.
   */
  clicks?: ClickCapture;
  /**
   * Most events in one request; a full batch is sent at once.
   * @default 50
   */
  maxBatchEvents?: number;
  /**
   * Most bytes (UTF-8 JSON) in one request; reaching it sends at once. Keep it well under 64 KiB,
   * the browser's budget for keepalive requests.
   * @default 16_384
   */
  maxBatchBytes?: number;
  /**
   * How long an event may wait for a batch to fill, in ms. The timer runs only while the outbox
   * holds unsent events.
   * @default 5_000
   */
  flushIntervalMs?: number;
  /**
   * Bound of a page's outbox, also when it takes over closed tabs' outboxes; when full the oldest
   * events are dropped (counted in {@link Tracker.dropped}, with a console warning).
   * @default 1_000
   */
  maxOutboxEvents?: number;
  /**
   * Prefix of the storage keys (`<prefix>:q:<page id>` a page's outbox, `:aid` anonymous id,
   * `:sid` session, `:uid` user id).
   * @default 'kinesis-edge'
   */
  storageKey?: string;
  /**
   * Whether `fetch` honours `keepalive` (Chrome 66, Safari 13, Firefox 133). Without it, sends
   * during unload use `navigator.sendBeacon`.
   * @default 'keepalive' in Request.prototype
   */
  keepalive?: boolean;
  /** @default globalThis.fetch */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /**
   * Where ids and outboxes persist. When it throws (quota, blocked storage) the values are kept
   * in memory for this page: events only memory holds are lost when the page unloads before they
   * are sent.
   * @default localStorage
   */
  storage?: TrackerStorage;
  /** @default Date.now */
  now?: () => number;
  /** Jitter source for retry backoff. @default Math.random */
  random?: () => number;
  /** @default navigator.sendBeacon */
  sendBeacon?: (url: string, body: string) => boolean;
}

/** A running tracker; see {@link createTracker}. */
export interface Tracker {
  /** Records a custom event. */
  track(name: string, properties?: TrackerProperties): void;
  /** Records a page view of the current URL (`name` is `location.pathname`, `title` is added). */
  page(properties?: TrackerProperties): void;
  /** Sets the user id carried by later events (persisted) and records an `identify` event. */
  identify(userId: string): void;
  /**
   * Sends what the outbox holds now and resolves when those requests have been answered. During a
   * retry backoff it sends nothing.
   */
  flush(): Promise<void>;
  /** Resumes capturing and sending after {@link Tracker.disable}. */
  enable(): void;
  /** Stops capturing and sending; the outbox is kept for `enable()` or the next page load. */
  disable(): void;
  /** With `requireConsent`: starts storing and sending (and records a page view). */
  grantConsent(): void;
  /**
   * Stops storing and sending, and deletes the stored ids and outboxes: this page's and those of
   * other tabs (a tab still open stores its own again when it next records or is answered, until
   * its page revokes consent too).
   */
  revokeConsent(): void;
  /**
   * Removes listeners and timers and restores `history`; unacknowledged events stay stored, for
   * the next page load to send.
   */
  destroy(): void;
  /**
   * Events removed without reaching Kinesis since creation: outbox overflow (also of outboxes this
   * page took over), events the Worker rejected, a single event answered 413.
   */
  readonly dropped: number;
}

// All keepalive requests of a page may hold at most 64 KiB of body in flight together; a request
// over it fails with a network error (https://fetch.spec.whatwg.org/#http-network-or-cache-fetch,
// "inflight keepalive bytes"). sendBeacon queues through the same budget
// (https://w3c.github.io/beacon/#sendbeacon-method), and returns false when it is spent
// (https://developer.mozilla.org/en-US/docs/Web/API/Navigator/sendBeacon).
const KEEPALIVE_BUDGET = 65_536;
const BACKOFF_BASE_MS = 1_000;
const BACKOFF_CAP_MS = 60_000;
// An outbox its page has not written for this long (a page holding events writes it at every
// flush, at least once a minute while its sends fail) belongs to a tab that closed without
// `pagehide` (a crash; mobile browsers kill background tabs without it:
// https://developer.chrome.com/docs/web-platform/page-lifecycle-api#advice-hidden).
const ABANDONED_OUTBOX_MS = 300_000;
// A request unanswered this long is given up and its events are sent again (fetch itself has no
// time limit). The Worker answers within its record budget (8 s) and one Kinesis attempt (4 s):
// worker-example/src/kinesis.ts.
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Starts a clickstream tracker that posts batches of {@link TrackerEvent} to your ingest Worker.
 *
 * @example
 * import { captureClicks, createTracker } from 'kinesis-edge/tracker';
 *
 * const tracker = createTracker({ endpoint: 'https://ingest.example.com/collect', clicks: captureClicks() });
 * tracker.track('signup', { plan: 'pro' });
 * // <button data-track="buy" data-track-sku="A1">Buy</button> is recorded when clicked.
 */
export function createTracker(options: TrackerOptions): Tracker {
  const {
    endpoint,
    requireConsent,
    sampleRate = 1,
    sessionTimeoutMs = 1_800_000,
    trackPageViews = true,
    clicks,
    maxBatchEvents = 50,
    maxBatchBytes = 16_384,
    flushIntervalMs = 5_000,
    maxOutboxEvents = 1_000,
    storageKey = 'kinesis-edge',
    keepalive = 'keepalive' in Request.prototype,
    fetch: send = fetch,
    now = Date.now,
    random = Math.random,
    sendBeacon = (url, body) => navigator.sendBeacon(url, body),
  } = options;
  let storage = options.storage;
  try {
    // Reading `localStorage` throws where storage is blocked (sandboxed frames, cookie settings).
    storage ??= localStorage;
  } catch {}
  // Values whose write failed (quota exceeded, no storage) live here for the rest of the page.
  const memory: Record<string, string> = {};
  const inFlight = new Set<string>();
  const listeners: (() => void)[] = [];
  let live = true;
  // From pagehide until the page is shown again (restored from the back/forward cache): every write
  // of the outbox marks it gone, also one made after pagehide (the keepalive request failing, an
  // answer, an event another pagehide listener tracks), or the page's last write would read as an
  // open tab's and its events would wait 5 minutes (found by test/e2e/clickstream.test.ts: a tab
  // closed while offline).
  let gone = false;
  let enabled = true;
  let consented = !requireConsent;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let keepaliveBytes = 0;
  let retryAt = 0;
  let attempt = 0;
  let dropped = 0;
  let starved = false;
  let lastUrl = location.href;
  let referrer = document.referrer;
  const url = typeof endpoint == 'string' ? () => endpoint : endpoint;

  // UTF-8 bytes of a string: what the body of a request or beacon weighs.
  const byteLength = (text: string) => new Blob([text]).size;
  const uuid = (): string =>
    // randomUUID exists only in secure contexts; the fallback builds the same v4 layout.
    crypto.randomUUID?.() ??
    '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (c) =>
      (+c ^ (crypto.getRandomValues(new Uint8Array(1))[0]! & (15 >> (+c / 4)))).toString(16),
    );
  const read = (key: string): any => {
    key = storageKey + ':' + key;
    try {
      // A missing key reads null, which JSON.parse turns into null: absent fields must be undefined.
      return JSON.parse(key in memory ? memory[key]! : storage!.getItem(key)!) ?? undefined;
    } catch {}
  };
  const write = (key: string, value: unknown) => {
    key = storageKey + ':' + key;
    try {
      storage!.setItem(key, JSON.stringify(value));
      // true: the value is stored.
      return delete memory[key];
    } catch {
      memory[key] = JSON.stringify(value);
    }
  };
  const erase = (key: string) => {
    key = storageKey + ':' + key;
    delete memory[key];
    try {
      storage!.removeItem(key);
    } catch {}
  };
  // Each page load keeps its outbox in memory and writes it whole, under a key of its own:
  // localStorage has no lock across tabs
  // (https://html.spec.whatwg.org/multipage/webstorage.html#introduction-15), so a read-modify-write
  // of one shared key lost one tab's events when two tabs wrote within the moment a write takes to
  // reach the other, or when a tab wrote back its memory copy after a failed write (found by
  // test/unit/tracker-invariants.test.ts). The time of the write goes with the events; 0 marks a
  // page that is gone (pagehide, destroy()), whose outbox the next page to start or flush takes over
  // (adopt). An empty outbox is erased rather than written, so that after revokeConsent() a late
  // answer leaves nothing behind.
  const box = 'q:' + uuid();
  let queue: TrackerEvent[] = [];
  // What storage holds of this outbox. When a write fails (quota), storage keeps the outbox last
  // written, with events acknowledged since, which the next page load would send again: what is
  // left of it is written instead (smaller, it fits where the whole did not), or erased.
  let stored: TrackerEvent[] = [];
  // Truthy when storage holds the outbox.
  const save = (at = live && !gone ? now() : 0) => {
    if (queue.length && write(box, [at, queue])) return (stored = [...queue]);
    (stored = stored.filter((event) => queue.includes(event))).length ? write(box, [at, stored]) : erase(box);
  };
  const outboxes = () => {
    const keys: string[] = [];
    try {
      for (let i = 0, key; (key = storage!.key(i)) != null; i++) key.startsWith(storageKey + ':q:') && keys.push(key.slice(storageKey.length + 1));
    } catch {}
    return keys;
  };
  // Makes the newest maxOutboxEvents of `events` the outbox; returns how many it left out.
  const bound = (events: TrackerEvent[]) => events.length - (queue = events.slice(-maxOutboxEvents)).length;
  const drop = (count: number) => count && console.warn(`tracker: outbox full, dropped ${count} oldest events (${(dropped += count)} so far)`);
  // At start and in every flush: takes over the outboxes of pages that are gone (marked so, or not
  // written for ABANDONED_OUTBOX_MS), and writes this page's again, with the time, so that a tab
  // still trying to send is not taken for gone. Their events go in front of this page's (they are
  // older), one per id, and their keys are erased once this page's outbox holding them is stored;
  // when that write fails (quota) nothing changes, and a page that can write takes them over. A tab
  // taken for gone that is in fact open (disabled, or its timers stopped all that time) stores its
  // events again when it next saves, and two pages take over the same outbox when the view of
  // storage of one lags behind the other's take-over: their events are sent twice, never lost.
  const adopt = () => {
    const kept = queue;
    const adopted: TrackerEvent[] = [];
    const taken: string[] = [];
    for (const key of outboxes()) {
      const [at, events] = read(key) ?? [];
      // A key gone since it was listed reads as no time (NaN), and is skipped.
      if (key != box && now() - at >= ABANDONED_OUTBOX_MS) adopted.push(...events), taken.push(key);
    }
    const over = bound([...new Map([...adopted, ...kept].map((event) => [event.id, event])).values()]);
    if (!save()) return (queue = kept);
    drop(over);
    for (const key of taken) erase(key);
  };
  const acknowledge = (ids: Set<string>) => {
    queue = queue.filter((event) => !ids.has(event.id));
    save();
  };
  const usable = () => live && enabled && consented;

  const stop = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  const arm = (ms: number) => {
    clearTimeout(timer);
    // setTimeout fires at once for delays over 2^31 - 1 ms; a long Retry-After just wakes early.
    timer = usable() ? setTimeout(flush, Math.min(ms, 2e9)) : undefined;
  };

  const check = () => {
    // A beaconed event stays marked in flight for the rest of the page (see dispatch); forget the
    // marks of events that have left the outbox since (dropped for overflow), or a long-lived page
    // that beacons piles them up without bound.
    const ids = new Set(queue.map((event) => event.id));
    for (const id of inFlight) ids.has(id) || inFlight.delete(id);
    const pending = queue.filter((event) => !inFlight.has(event.id));
    if (pending.length >= maxBatchEvents || byteLength(JSON.stringify(pending)) >= maxBatchBytes) flush();
    else if (pending.length && !timer) arm(flushIntervalMs);
  };

  const emit = (type: TrackerEventType, name: string, properties: TrackerProperties = {}) => {
    if (!usable()) return;
    const ts = now();
    let [sessionId, lastActivity] = read('sid') ?? [];
    if (!sessionId || ts - lastActivity > sessionTimeoutMs) sessionId = uuid();
    write('sid', [sessionId, ts]);
    // The session id's last 8 hex digits (random in a v4 UUID, RFC 9562 §5.4), as a fraction of
    // 2^32: the same answer for the whole session.
    if (parseInt(sessionId.slice(-8), 16) / 2 ** 32 >= sampleRate) return;
    let anonymousId = read('aid');
    if (!anonymousId) write('aid', (anonymousId = uuid()));
    queue.push({
      id: uuid(),
      type,
      name: name.slice(0, 128),
      ts,
      anonymousId,
      sessionId,
      userId: read('uid'),
      url: location.href.slice(0, 2048),
      referrer: referrer.slice(0, 2048),
      viewport: { w: innerWidth, h: innerHeight },
      properties,
    });
    drop(bound(queue));
    save();
    check();
  };

  const post = async (batch: TrackerEvent[], body: string, bytes: number): Promise<void> => {
    for (const event of batch) inFlight.add(event.id);
    keepaliveBytes += bytes;
    const done = new Set<string>();
    let status = 0;
    let retryAfter = 0;
    try {
      const response = await send(url(), {
        method: 'POST',
        // A string body goes as `text/plain;charset=UTF-8` (https://fetch.spec.whatwg.org/#bodyinit-unions,
        // "extract"): a CORS-safelisted type, so no preflight, and what sendBeacon sends too.
        body,
        keepalive: bytes > 0,
        credentials: 'omit',
        // AbortSignal.timeout is missing before Chrome 103, Firefox 100 and Safari 16, where a
        // request waits for its answer as before
        // (https://developer.mozilla.org/en-US/docs/Web/API/AbortSignal/timeout_static).
        signal: AbortSignal.timeout?.(REQUEST_TIMEOUT_MS),
      });
      status = response.status;
      const header = response.headers.get('retry-after');
      // Retry-After is delay-seconds or an HTTP date (RFC 9110 §10.2.3); one that is neither (NaN)
      // counts as absent, or the retry timer would fire at once, and again on every such answer.
      if (header) retryAfter = (+header >= 0 ? +header * 1000 : Date.parse(header) - now()) || 0;
      const result: Partial<CollectResponse> = await response.json();
      for (const id of result.accepted ?? []) done.add(id);
      for (const { id, reason } of result.rejected ?? []) {
        done.add(id);
        dropped++;
        console.warn(`tracker: event ${id} rejected: ${reason}`);
      }
    } catch {
      // A network error, a timeout, or a body that is not a CollectResponse: nothing is acknowledged.
    } finally {
      keepaliveBytes -= bytes;
      for (const event of batch) inFlight.delete(event.id);
    }
    if (status == 413 && !batch[1]) {
      done.add(batch[0]!.id);
      dropped++;
      console.warn(`tracker: event ${batch[0]!.id} dropped: too large (413)`);
    }
    if (done.size) acknowledge(done);
    // The Worker's Retry-After holds back every request of the page, also when this one's events
    // all settled (rejected by a 503, say) and none of them waits for it.
    retryAt = Math.max(retryAt, now() + retryAfter);
    const left = batch.filter((event) => !done.has(event.id));
    if (!left.length) attempt = 0;
    else if (status == 413) {
      // The Worker's body cap is below this batch: send each half on its own, at once.
      const posts: Promise<void>[] = [];
      dispatch(left.splice(0, left.length >> 1), posts);
      dispatch(left, posts);
      return Promise.all(posts).then(() => check());
    } else {
      // Full jitter (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/),
      // and never sooner than the Worker's Retry-After, also when another request fails after it
      // with a shorter draw.
      retryAt = Math.max(retryAt, now() + Math.max(retryAfter, random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt++)));
      return arm(retryAt - now());
    }
    // A flush cut short by the budget continues as soon as a request gives its share back.
    if (starved) {
      starved = false;
      flush();
    } else check();
  };

  // Sends one batch: with keepalive while the budget allows; past it, by beacon during unload, or
  // else not yet (false) because the requests in flight will flush again when they complete. During
  // unload, a batch over the budget (one event) fits no keepalive request or beacon: it waits for
  // the next page load (true), and the batches behind it still go.
  const dispatch = (batch: TrackerEvent[], posts: Promise<void>[], unloading?: boolean): boolean => {
    const body = JSON.stringify(batch);
    const size = byteLength(body);
    if (keepalive && keepaliveBytes + size <= KEEPALIVE_BUDGET) posts.push(post(batch, body, size));
    // Without keepalive support, or for a batch that can never fit the budget, a plain request.
    else if (!unloading && (!keepalive || size > KEEPALIVE_BUDGET)) posts.push(post(batch, body, 0));
    else if (!unloading || !sendBeacon(url(), body)) return size > KEEPALIVE_BUDGET;
    // A beacon gives no answer: its events stay in the outbox, marked in flight for the rest of
    // this page, and the next page load sends them again.
    else for (const event of batch) inFlight.add(event.id);
    return true;
  };

  // `unloading` is set for visibilitychange→hidden and pagehide, the last events a page can rely
  // on (https://developer.chrome.com/docs/web-platform/page-lifecycle-api#advice-hidden).
  const flush = (unloading?: boolean): Promise<void> => {
    stop();
    const posts: Promise<void>[] = [];
    const wait = retryAt - now();
    if (!usable()) {
      // Nothing to send: disabled, without consent, or destroyed.
    } else if (wait > 0) arm(wait);
    else {
      // Not during a backoff: a page tracking many events then flushes on each one, and each would
      // read every outbox and write its own again for nothing.
      adopt();
      const pending = queue.filter((event) => !inFlight.has(event.id));
      for (let i = 0; i < pending.length; ) {
        const room = KEEPALIVE_BUDGET - keepaliveBytes;
        const batch: TrackerEvent[] = [];
        let size = 2;
        while (i < pending.length && batch.length < maxBatchEvents) {
          const eventSize = byteLength(JSON.stringify(pending[i])) + 1;
          if (batch.length && size + eventSize > Math.min(maxBatchBytes, room)) break;
          batch.push(pending[i++]!);
          size += eventSize;
        }
        if (!dispatch(batch, posts, unloading)) {
          starved = true;
          break;
        }
      }
    }
    return Promise.all(posts).then(() => {});
  };

  const page = (properties?: TrackerProperties) => {
    if (location.href != lastUrl) {
      referrer = lastUrl;
      lastUrl = location.href;
    }
    emit('page', location.pathname, { title: document.title, ...properties });
  };

  const listen = (target: EventTarget, type: string, listener: (event: any) => void) => {
    target.addEventListener(type, listener, true);
    listeners.push(() => target.removeEventListener(type, listener, true));
  };

  const start = () => {
    adopt();
    if (trackPageViews) page();
    check();
  };

  listen(document, 'visibilitychange', () => document.visibilityState == 'hidden' && flush(true));
  listen(window, 'pagehide', () => {
    flush(true);
    gone = true;
    save();
  });
  listen(window, 'pageshow', () => {
    gone = false;
    save();
  });
  listen(window, 'online', () => {
    retryAt = 0;
    flush();
  });
  if (clicks) listen(document, 'click', clicks((name, properties) => emit('click', name, properties)));
  if (trackPageViews) {
    const navigated = () => location.href != lastUrl && page();
    listen(window, 'popstate', navigated);
    for (const method of ['pushState', 'replaceState'] as const) {
      const original = history[method];
      const wrapper = function (this: History, ...args: Parameters<History['pushState']>) {
        original.apply(this, args);
        navigated();
      };
      history[method] = wrapper;
      // Another script may have wrapped ours since; then ours stays, inert once `live` is false.
      listeners.push(() => history[method] == wrapper && (history[method] = original));
    }
  }
  if (consented) start();

  return {
    track: (name, properties) => emit('track', name, properties),
    page,
    identify(userId) {
      if (!usable()) return;
      write('uid', userId);
      emit('identify', 'identify');
    },
    flush: () => flush(),
    enable() {
      enabled = true;
      check();
    },
    disable() {
      enabled = false;
      stop();
    },
    grantConsent() {
      if (consented) return;
      consented = true;
      start();
    },
    revokeConsent() {
      consented = false;
      stop();
      queue = [];
      for (const key of [...outboxes(), 'aid', 'sid', 'uid']) erase(key);
    },
    destroy() {
      live = false;
      stop();
      save();
      for (const remove of listeners) remove();
    },
    get dropped() {
      return dropped;
    },
  };
}

// The wire contract between the browser tracker and the edge ingest Worker (worker-example/).
// Both sides build on this file: the tracker produces these shapes, the Worker validates them with
// zod and answers with a `CollectResponse`. Change the two together.
//
// Request: `POST <endpoint>` with body = a JSON array of 1..500 `TrackerEvent` (500: one
// PutRecords call; the tracker sends at most `maxBatchEvents`, default 50),
// sent as `text/plain;charset=UTF-8` so that `navigator.sendBeacon` and `fetch` need no CORS
// preflight (text/plain is a CORS-safelisted content type:
// https://fetch.spec.whatwg.org/#cors-safelisted-request-header). The Worker accepts
// `application/json` too. The body is at most 64 KiB: that is the browser's budget for all
// keepalive requests in flight together (https://fetch.spec.whatwg.org/#http-network-or-cache-fetch,
// step "inflight keepalive bytes"); the tracker's batches stay well below it (`maxBatchBytes`,
// default 16 KiB).
//
// Each event, exactly these fields (no others; the Worker rejects unknown fields):
//   id           string, 1..64 chars. A UUID from `crypto.randomUUID()`; unique per event and kept
//                across retries and page loads, so the Worker and consumers dedupe by it.
//   type         'track' | 'page' | 'identify' | 'click'
//   name         string, 1..128 chars. track: the caller's name; page: `location.pathname`;
//                identify: 'identify'; click: the element's `data-track` value, else its id or tag.
//   ts           integer, epoch milliseconds when the event happened, in the browser's clock. The
//                Worker rejects it when it is more than 24 h away from its receipt time (events
//                replayed from an outbox older than that are rejected, not retried).
//   anonymousId  string, 1..64 chars. Persisted in localStorage per browser profile and site.
//   sessionId    string, 1..64 chars. Renewed after `sessionTimeoutMs` of inactivity.
//                The Worker uses it as the Kinesis partition key.
//   userId       string, 1..256 chars, optional (absent until `identify()`).
//   url          string, 0..2048 chars (`location.href`; the tracker truncates longer ones).
//   referrer     string, 0..2048 chars (`document.referrer`, or the previous URL after an SPA
//                navigation; truncated like url).
//   viewport     { w: integer 0..100000, h: integer 0..100000 }, CSS pixels.
//   properties   a JSON object (not an array or null); its `JSON.stringify` is at most 8 KiB of
//                UTF-8.
//
// Response (`CollectResponse`), sent only after Kinesis has answered for the accepted records:
//   200 { accepted: string[], rejected: { id: string, reason: string }[], retry: string[] }
//       accepted: stored in Kinesis; the tracker deletes them from its outbox.
//       rejected: invalid events (reason is short and human-readable); deleted with a console
//                 warning, never resent.
//       retry:    not stored this time (throttled, upstream fault); kept and resent after backoff.
//       An id of the request that appears in none of the lists is treated as `retry`.
//   400 with the same body when events are invalid (the tracker applies `rejected` and `accepted`
//       as for 200); any other 400 body means the request as a whole was unreadable, and the
//       tracker keeps the events and backs off.
//   413 the body is too large: the tracker halves its batches; a single event answered 413 is dropped.
//   429 with `Retry-After` (seconds or an HTTP date): the tracker waits at least that long.
//   5xx or a network error: kept, retried with full-jitter exponential backoff.

/** What kind of event a {@link TrackerEvent} is. */
export type TrackerEventType = 'track' | 'page' | 'identify' | 'click';

/** Free-form event data; must serialize with `JSON.stringify` to at most 8 KiB. */
export type TrackerProperties = Record<string, unknown>;

/** One event on the wire, as the tracker sends it and the ingest Worker validates it. */
export interface TrackerEvent {
  /** Unique event id (UUID), kept across retries and reloads; dedupe by it. 1..64 chars. */
  id: string;
  type: TrackerEventType;
  /** 1..128 chars. */
  name: string;
  /** Epoch milliseconds, browser clock. Within ±24 h of the Worker's receipt time. */
  ts: number;
  /** Persisted per browser profile and site. 1..64 chars. */
  anonymousId: string;
  /** Renewed after inactivity; the Kinesis partition key. 1..64 chars. */
  sessionId: string;
  /** Set by `identify()`. 1..256 chars. */
  userId?: string;
  /** Page URL, at most 2048 chars. */
  url: string;
  /** Referrer or previous SPA URL, at most 2048 chars. */
  referrer: string;
  /** Viewport size in CSS pixels. */
  viewport: { w: number; h: number };
  /** A JSON object, at most 8 KiB when serialized. */
  properties: TrackerProperties;
}

/** The ingest Worker's answer to a batch (status 200, or 400 when events are invalid). */
export interface CollectResponse {
  /** Ids stored in Kinesis. */
  accepted: string[];
  /** Ids that are invalid and must not be resent, with a short reason. */
  rejected: { id: string; reason: string }[];
  /** Ids to resend later (throttling, upstream faults). */
  retry: string[];
}

/** The limits of {@link TrackerEvent}, shared by the tracker and the Worker's validation. */
export const TRACKER_EVENT_LIMITS = {
  /** Max chars of `id`, `anonymousId` and `sessionId`. */
  idLength: 64,
  /** Max chars of `name`. */
  nameLength: 128,
  /** Max chars of `userId`. */
  userIdLength: 256,
  /** Max chars of `url` and `referrer`. */
  urlLength: 2048,
  /** Max UTF-8 bytes of `JSON.stringify(properties)`. */
  propertiesBytes: 8192,
  /** Max distance of `ts` from the receipt time, in ms. */
  clockSkewMs: 86_400_000,
  /** Max `viewport.w` and `viewport.h`. */
  viewportMax: 100_000,
  /** Max events in one request (one PutRecords call). */
  requestEvents: 500,
  /** Max bytes of one request body: the browser's keepalive budget. */
  requestBytes: 65_536,
} as const;

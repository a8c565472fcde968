/**
 * The Worker's bindings: vars from wrangler.jsonc, secrets from `wrangler secret` (`.dev.vars`
 * locally), the rate limiter and, for `DELIVERY=queue`, the Queue.
 */
import type { OutgoingRecord } from './kinesis.ts';

export interface Env {
  /** Kinesis stream to write to (var). */
  STREAM_NAME?: string;
  /** AWS region used for the endpoint and for signing (var). */
  AWS_REGION?: string;
  /** Optional Kinesis-compatible endpoint, e.g. the local Kinesis `http://127.0.0.1:4567` (var). */
  KINESIS_ENDPOINT?: string;
  /** Comma-separated exact origins allowed to send events (var). */
  ALLOWED_ORIGINS?: string;
  /** Request body cap in bytes (var). @default 65536 */
  MAX_BODY_BYTES?: string;
  /** The rate limiter's period, sent as `Retry-After` (var). @default 60 */
  RATE_LIMIT_PERIOD_SECONDS?: string;
  /**
   * `queue`: `/collect` answers once the Queue has the events and the `queue()` handler writes
   * them to Kinesis; anything else (the default): `/collect` writes to Kinesis itself (var).
   */
  DELIVERY?: string;
  /** Secret. */
  AWS_ACCESS_KEY_ID?: string;
  /** Secret. */
  AWS_SECRET_ACCESS_KEY?: string;
  /** Secret, for temporary credentials. */
  AWS_SESSION_TOKEN?: string;
  /**
   * Secret, at least 32 characters. When set, `/collect` takes events only with a session token
   * from `POST /session` (session.ts), bound to the page's origin.
   */
  SESSION_SECRET?: string;
  /** Session token lifetime in seconds (var). @default 3600 */
  SESSION_TTL_SECONDS?: string;
  /** Secret. When set (with `SESSION_SECRET`), `POST /session` requires a solved Turnstile challenge. */
  TURNSTILE_SECRET_KEY?: string;
  /** Siteverify URL (var), for a local stand-in in tests. @default Cloudflare's */
  TURNSTILE_VERIFY_URL?: string;
  /** `ratelimits` binding: https://developers.cloudflare.com/workers/runtime-apis/bindings/rate-limit/ */
  RATE_LIMITER?: RateLimit;
  /** `queues.producers` binding, used when `DELIVERY=queue`: https://developers.cloudflare.com/queues/ */
  EVENTS_QUEUE?: Queue<OutgoingRecord>;
}

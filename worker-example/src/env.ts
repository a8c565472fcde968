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
  /** `ratelimits` binding: https://developers.cloudflare.com/workers/runtime-apis/bindings/rate-limit/ */
  RATE_LIMITER?: RateLimit;
  /** `queues.producers` binding, used when `DELIVERY=queue`: https://developers.cloudflare.com/queues/ */
  EVENTS_QUEUE?: Queue<OutgoingRecord>;
}

/**
 * The retry ladder: decides, for one failed attempt, whether to try again and after how long.
 *
 * Order of the rungs (as in ky's `source/core/Ky.ts` `_calculateRetryDelay`): attempts left, the
 * caller's override, the retry quota, then each known retryable class (throttling faults by name,
 * clock skew, expired credentials, 5xx, 429, network errors, timeouts); anything else is thrown.
 *
 * Backoff is "full jitter" (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/):
 * `random() * min(cap, base * 2^attempt)`, with a larger base for throttling, as the AWS SDKs'
 * standard retry mode does (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html).
 */
import { isKinesisServiceError, type KinesisError } from './errors.ts';

export interface RetryOptions {
  /**
   * Attempts in all, the first one included. `1` turns retries off.
   * @default 3
   */
  maxAttempts?: number;
  /**
   * Base delay for transient faults (5xx, network errors, timeouts), in ms.
   * @default 100
   */
  baseDelayMs?: number;
  /**
   * Base delay for throttling faults, in ms.
   * @default 500
   */
  throttlingBaseDelayMs?: number;
  /**
   * Upper bound of any single backoff, in ms.
   * @default 20000
   */
  maxDelayMs?: number;
  /**
   * Size of the retry quota shared by all calls of one client. Each retry spends tokens (5 for a
   * throttling fault, 10 for other faults); a success gives back what its retries spent, or 1.
   * When the quota is spent, failures are thrown with {@link KinesisRetryQuotaExceededError}.
   * Set to `Infinity` to disable.
   * @default 500
   */
  quota?: number;
  /**
   * Override: return `false` to stop retrying an error the ladder would retry, `true` to retry
   * one it would not. Return `undefined` to let the ladder decide.
   */
  shouldRetry?: (error: KinesisError, attempt: number) => boolean | undefined;
  /**
   * Random number source in [0, 1) for jitter; inject a seeded one in tests.
   * @default Math.random
   */
  random?: () => number;
}

export type ResolvedRetryOptions = Required<Omit<RetryOptions, 'shouldRetry'>> & Pick<RetryOptions, 'shouldRetry'>;

export const DEFAULT_RETRY_OPTIONS: ResolvedRetryOptions = {
  maxAttempts: 3,
  baseDelayMs: 100,
  throttlingBaseDelayMs: 500,
  maxDelayMs: 20_000,
  quota: 500,
  random: Math.random,
};

/** Tokens one retry costs, as in the AWS SDKs' standard mode. */
export const THROTTLING_RETRY_COST = 5;
export const TRANSIENT_RETRY_COST = 10;
/** Extra time a `Retry-After` may add over the computed backoff. */
const MAX_RETRY_AFTER_EXTRA_MS = 5_000;

export function resolveRetryOptions(options: RetryOptions | undefined): ResolvedRetryOptions {
  const resolved = { ...DEFAULT_RETRY_OPTIONS, ...options };
  if (!Number.isInteger(resolved.maxAttempts) || resolved.maxAttempts < 1) {
    throw new RangeError('retry.maxAttempts must be an integer of at least 1');
  }
  return resolved;
}

/** Full-jitter exponential backoff for attempt number `attempt` (1 = the first retry). */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.floor(random() * ceiling);
}

/**
 * A token bucket shared by all calls of one client, so that a sustained outage stops causing
 * retries instead of multiplying traffic.
 */
export class RetryQuota {
  #tokens: number;
  readonly capacity: number;
  constructor(capacity: number) {
    this.capacity = capacity;
    this.#tokens = capacity;
  }
  get available(): number {
    return this.#tokens;
  }
  /** Take `cost` tokens; false when there are not enough. */
  tryAcquire(cost: number): boolean {
    if (this.#tokens < cost) return false;
    this.#tokens -= cost;
    return true;
  }
  /** A call succeeded: give back what its retries took, or one token when it took none. */
  release(spent: number): void {
    this.#tokens = Math.min(this.capacity, this.#tokens + (spent > 0 ? spent : 1));
  }
}

export type RetryDecision =
  | { retry: false; quotaExhausted: boolean }
  | { retry: true; delayMs: number; cost: number };

/**
 * Walk the ladder for one failed attempt. `attempt` counts the attempts made so far (1 after the
 * first failure).
 */
export function decideRetry(
  error: KinesisError,
  attempt: number,
  options: ResolvedRetryOptions,
  quota: RetryQuota,
): RetryDecision {
  if (attempt >= options.maxAttempts) return { retry: false, quotaExhausted: false };
  const override = options.shouldRetry?.(error, attempt);
  if (override === false) return { retry: false, quotaExhausted: false };
  if (!error.retryable && override !== true) return { retry: false, quotaExhausted: false };

  const service = isKinesisServiceError(error) ? error : undefined;
  const kind = service?.kind;
  // A clock-skew or expired-credential retry fixes the cause before trying again: it needs no
  // pause and costs no quota, but it is still bounded by maxAttempts.
  if (kind === 'clock-skew' || kind === 'expired-credentials') return { retry: true, delayMs: 0, cost: 0 };

  const isThrottling = kind === 'throttling';
  const cost = isThrottling ? THROTTLING_RETRY_COST : TRANSIENT_RETRY_COST;
  if (!quota.tryAcquire(cost)) return { retry: false, quotaExhausted: true };

  const base = isThrottling ? options.throttlingBaseDelayMs : options.baseDelayMs;
  let delayMs = backoffDelay(attempt, base, options.maxDelayMs, options.random);
  const retryAfter = service?.retryAfterMs;
  if (retryAfter !== undefined && retryAfter > delayMs) {
    delayMs = Math.min(retryAfter, delayMs + MAX_RETRY_AFTER_EXTRA_MS);
  }
  return { retry: true, delayMs, cost };
}

/** Parse `Retry-After` (seconds or an HTTP date) into milliseconds from `nowMs`. */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/**
 * How fast a shard reader polls: the per-shard read limits, idle backoff and throttling backoff.
 * Pure functions of counters and clocks, so they are tested without a network.
 *
 * Limits: 5 GetRecords calls and 2 MiB per second per shard; a call that returns 10 MiB uses up
 * the next 5 seconds. https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html
 */
import { isKinesisRetryQuotaExceededError } from '../errors.ts';
import { sleep } from '../internal/sleep.ts';
import { SHARD_READ_BYTES_PER_SECOND, SHARD_READ_CALLS_PER_SECOND } from '../limits.ts';

/** Pacing and backoff of one shard reader. All delays are in ms. */
export interface ShardPollingOptions {
  /**
   * Most records per GetRecords call (1..10000). Lower values bound the memory of one batch.
   * @default 10000 (the service's maximum)
   */
  limit?: number;
  /**
   * Least time between the starts of two GetRecords calls on one shard.
   * @default 200 (5 calls per second, the per-shard limit)
   */
  pollIntervalMs?: number;
  /**
   * Read throughput to stay under: after a response of `n` bytes the next call waits `n / bytesPerSecond`.
   * @default 2097152 (2 MiB/s, the per-shard limit)
   */
  bytesPerSecond?: number;
  /**
   * Extra wait after the first empty response while caught up; it doubles with each further empty
   * response, up to {@link maxIdleDelayMs}, and resets when records arrive.
   * @default 250
   */
  idleDelayMs?: number;
  /** @default 2000 */
  maxIdleDelayMs?: number;
  /**
   * First wait after a throttling fault that the client's own retries did not get past; it doubles
   * with each further one, up to {@link maxThrottleDelayMs}. Throttling is retried without end.
   * @default 1000
   */
  throttleDelayMs?: number;
  /** @default 10000 */
  maxThrottleDelayMs?: number;
  /**
   * Other retryable failures (network errors, timeouts, 5xx) in a row, after the client's own
   * retries, before the reader gives up and throws. They back off like throttling.
   * @default 10
   */
  maxConsecutiveErrors?: number;
  /**
   * Random source in [0, 1) for backoff jitter; inject a seeded one in tests.
   * @default Math.random
   */
  random?: () => number;
}

export type ResolvedPolling = Required<ShardPollingOptions>;

/** The defaults of {@link ShardPollingOptions}: the per-shard service limits, and the KCL's habits. */
export const DEFAULT_POLLING: ResolvedPolling = {
  limit: 10_000,
  pollIntervalMs: 1000 / SHARD_READ_CALLS_PER_SECOND,
  bytesPerSecond: SHARD_READ_BYTES_PER_SECOND,
  idleDelayMs: 250,
  maxIdleDelayMs: 2000,
  throttleDelayMs: 1000,
  maxThrottleDelayMs: 10_000,
  maxConsecutiveErrors: 10,
  random: Math.random,
};

/** Fills in defaults; rejects values that would make a reader spin or stall. */
export function resolvePolling(options: ShardPollingOptions, caller: string): ResolvedPolling {
  const resolved: ResolvedPolling = { ...DEFAULT_POLLING };
  for (const key of Object.keys(DEFAULT_POLLING) as (keyof ResolvedPolling)[]) {
    const value = options[key];
    if (value !== undefined) (resolved as Record<string, unknown>)[key] = value;
  }
  if (!Number.isInteger(resolved.limit) || resolved.limit < 1 || resolved.limit > 10_000) {
    throw new RangeError(`${caller}: limit must be an integer from 1 to 10000`);
  }
  for (const key of ['pollIntervalMs', 'idleDelayMs', 'maxIdleDelayMs', 'throttleDelayMs', 'maxThrottleDelayMs'] as const) {
    if (!(resolved[key] >= 0) || !Number.isFinite(resolved[key])) throw new RangeError(`${caller}: ${key} must be a finite number ≥ 0`);
  }
  if (!(resolved.bytesPerSecond > 0)) throw new RangeError(`${caller}: bytesPerSecond must be > 0`);
  if (!Number.isInteger(resolved.maxConsecutiveErrors) || resolved.maxConsecutiveErrors < 0) {
    throw new RangeError(`${caller}: maxConsecutiveErrors must be an integer ≥ 0`);
  }
  return resolved;
}

/**
 * When the next GetRecords call may start: `pollIntervalMs` after this call started, and not
 * before the bytes just read fit under `bytesPerSecond`, counted from the response.
 */
export function nextCallTime(startedAt: number, respondedAt: number, bytes: number, polling: ResolvedPolling): number {
  return Math.max(startedAt + polling.pollIntervalMs, respondedAt + (bytes * 1000) / polling.bytesPerSecond);
}

/** The idle wait after the `count`-th empty response in a row (count ≥ 1). */
export function idleDelay(count: number, polling: ResolvedPolling): number {
  return Math.min(polling.maxIdleDelayMs, polling.idleDelayMs * 2 ** Math.min(count - 1, 30));
}

/**
 * The wait after the `count`-th failure in a row (count ≥ 1): exponential with "equal jitter",
 * so it is never less than half the step and readers of many shards do not retry in lockstep.
 * https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
 */
export function failureDelay(count: number, polling: ResolvedPolling): number {
  const step = Math.min(polling.maxThrottleDelayMs, polling.throttleDelayMs * 2 ** Math.min(count - 1, 30));
  return Math.floor(step / 2 + polling.random() * (step / 2));
}

/**
 * The failure a reader judges a failed call by. Once the client's shared retry quota is spent it
 * throws KinesisRetryQuotaExceededError (retryable: false) around the real fault, its `cause`: the
 * quota keeps the client from a retry storm, but a throttle or a 500 behind it is still worth
 * waiting out with the reader's own backoff, where the error itself would end a long read.
 */
export function unwrapRetryQuotaError(error: unknown): unknown {
  return isKinesisRetryQuotaExceededError(error) ? error.cause : error;
}

/**
 * The consecutive-failure bookkeeping both shard readers share (GetRecords polling and enhanced
 * fan-out): throttling is waited out and never gives up; other retryable failures give up after
 * `maxConsecutiveErrors` in a row; anything else is thrown at once. A success calls `reset()`.
 */
export function createFailureBackoff(polling: ResolvedPolling, signal: AbortSignal | undefined) {
  let throttles = 0;
  let failures = 0;
  return {
    /** Wait out `error` as the reader classified it (`kind`), or throw it. */
    async recover(error: unknown, kind: string): Promise<void> {
      if (signal?.aborted) throw signal.reason;
      if (kind === 'throttling') {
        throttles++;
        await sleep(failureDelay(throttles, polling), signal);
      } else if (kind === 'transient') {
        failures++;
        if (failures > polling.maxConsecutiveErrors) throw error;
        await sleep(failureDelay(failures, polling), signal);
      } else {
        throw error;
      }
    },
    /** A failure that threw nothing (a subscription that ended without an event): wait, or give up with `giveUp(count)`. */
    async countFailure(giveUp: (count: number) => Error): Promise<void> {
      failures++;
      if (failures > polling.maxConsecutiveErrors) throw giveUp(failures);
      await sleep(failureDelay(failures, polling), signal);
    },
    reset(): void {
      throttles = 0;
      failures = 0;
    },
  };
}

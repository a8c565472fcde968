/**
 * An adaptive token bucket: the producer keeps one per shard (and one for the whole stream while
 * shards are unknown), so a throttled shard slows down on its own while others keep their pace.
 *
 * AIMD (additive increase, multiplicative decrease; the congestion control of TCP, RFC 5681 §3.1):
 * a throttle halves the rate, each quiet second adds back a tenth of the ceiling. A throttle also
 * pauses the bucket for a full-jitter backoff
 * (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/), so a storm of
 * throttles cannot become a tight loop. The ceiling starts at the service's per-shard write limits
 * (1,000 records and 1 MiB per second,
 * https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html).
 *
 * Time is passed in by the caller; the limiter owns no timer.
 */

/** Rates in records and bytes per second; `Infinity` for no limit. */
export interface Rate {
  recordsPerSecond: number;
  bytesPerSecond: number;
}

/** The smallest share of a finite ceiling a throttled bucket falls to. */
const MIN_FACTOR = 1 / 64;
/** Share of a finite ceiling regained per quiet second. */
const INCREASE_PER_SECOND = 0.1;
/** A throttle within this long of the previous decrease reports the same congestion. */
const DECREASE_INTERVAL_MS = 250;
/** Seconds without a throttle before the rate grows again. */
const QUIET_MS = 1_000;
/** Floor of an unbounded bucket's learnt rate, records per second. */
const MIN_LEARNT_RATE = 10;
/** An unbounded bucket goes back to unbounded once its learnt rate grows past this. */
const UNBOUNDED_RATE = 1_000_000;
/**
 * A limited bucket waits to gather this much of a second's allowance (or enough for what it
 * holds) before it asks for a request, so a rate limit never becomes a stream of tiny requests.
 */
const GATHER_SECONDS = 0.1;

export class AdaptiveRateLimiter {
  readonly ceiling: Rate;
  #records: number;
  #bytes: number;
  #recordTokens: number;
  #byteTokens: number;
  #updatedAt: number;
  #pausedUntil = 0;
  #lastDecreaseAt = Number.NEGATIVE_INFINITY;
  #lastThrottleAt = Number.NEGATIVE_INFINITY;
  /** Consecutive failed sends; the exponent of the backoff. Reset by a success. */
  failures = 0;
  // Records taken in the current and the previous one-second window, to learn a rate for an
  // unbounded bucket when it is first throttled.
  #windowStart: number;
  #windowRecords = 0;
  #previousWindowRate = 0;

  constructor(ceiling: Rate, now: number) {
    this.ceiling = ceiling;
    this.#records = ceiling.recordsPerSecond;
    this.#bytes = ceiling.bytesPerSecond;
    this.#recordTokens = this.#records;
    this.#byteTokens = this.#bytes;
    this.#updatedAt = now;
    this.#windowStart = now;
  }

  /** The current rate. */
  get rate(): Rate {
    return { recordsPerSecond: this.#records, bytesPerSecond: this.#bytes };
  }

  get pausedUntil(): number {
    return this.#pausedUntil;
  }

  /** Whether one more record can be taken now. */
  canTake(now: number): boolean {
    this.#refill(now);
    return now >= this.#pausedUntil && this.#recordTokens >= 1 && this.#byteTokens > 0;
  }

  /**
   * Takes one record of `bytes` if allowed. Bytes may run into debt so that a record larger than one
   * second's allowance still goes (the debt then delays the next one).
   */
  tryTake(now: number, bytes: number): boolean {
    if (!this.canTake(now)) return false;
    this.#recordTokens -= 1;
    this.#byteTokens -= bytes;
    this.#count(now, 1);
    return true;
  }

  /** Charges bytes for a record already taken (an aggregate grows after its record token is taken). */
  chargeBytes(bytes: number): void {
    this.#byteTokens -= bytes;
  }

  /** Gives back a record token taken for an aggregate that ended up empty. */
  refund(): void {
    this.#recordTokens += 1;
    this.#windowRecords = Math.max(0, this.#windowRecords - 1);
  }

  /**
   * The earliest time (≥ `now`) at which this bucket is worth a request for `records` records of
   * `bytes` bytes in all: it is not paused, and it has tokens for them or for a tenth of a second's
   * allowance, whichever is less.
   */
  availableAt(now: number, records = 1, bytes = 1): number {
    this.#refill(now);
    let at = Math.max(now, this.#pausedUntil);
    const wantRecords = Math.max(1, Math.min(records, this.#records * GATHER_SECONDS));
    const wantBytes = Math.max(1, Math.min(bytes, this.#bytes * GATHER_SECONDS));
    if (this.#recordTokens < wantRecords) at = Math.max(at, now + ((wantRecords - this.#recordTokens) / this.#records) * 1000);
    if (this.#byteTokens < wantBytes) at = Math.max(at, now + ((wantBytes - this.#byteTokens) / this.#bytes) * 1000);
    return Math.ceil(at);
  }

  /** A send with records of this bucket succeeded. */
  onSuccess(): void {
    this.failures = 0;
  }

  /** Records of this bucket were throttled: halve the rate and pause for `delayMs`. */
  onThrottle(now: number, delayMs: number): void {
    this.#refill(now);
    this.#lastThrottleAt = now;
    // Answers to requests that were in flight together report the same congestion: it halves the
    // rate and deepens the backoff once, not once per answer.
    if (now - this.#lastDecreaseAt < DECREASE_INTERVAL_MS) {
      this.#pausedUntil = Math.max(this.#pausedUntil, now + delayMs);
      return;
    }
    this.#pause(now, delayMs);
    this.#lastDecreaseAt = now;
    if (Number.isFinite(this.ceiling.recordsPerSecond)) {
      this.#records = Math.max(this.ceiling.recordsPerSecond * MIN_FACTOR, this.#records / 2);
    } else {
      const learnt = Number.isFinite(this.#records) ? this.#records : this.#recentRate(now);
      this.#records = Math.max(MIN_LEARNT_RATE, learnt / 2);
    }
    if (Number.isFinite(this.ceiling.bytesPerSecond)) {
      this.#bytes = Math.max(this.ceiling.bytesPerSecond * MIN_FACTOR, this.#bytes / 2);
    }
    this.#recordTokens = Math.min(this.#recordTokens, this.#records);
    this.#byteTokens = Math.min(this.#byteTokens, this.#bytes);
  }

  /** A send failed for another reason (transient fault, unknown outcome): pause only. */
  onFailure(now: number, delayMs: number): void {
    this.#pause(now, delayMs);
  }

  #pause(now: number, delayMs: number): void {
    this.failures++;
    this.#pausedUntil = Math.max(this.#pausedUntil, now + delayMs);
  }

  #recentRate(now: number): number {
    const elapsed = now - this.#windowStart;
    const current = elapsed >= 100 ? (this.#windowRecords * 1000) / elapsed : 0;
    return Math.max(current, this.#previousWindowRate, MIN_LEARNT_RATE);
  }

  #count(now: number, records: number): void {
    if (now - this.#windowStart >= 1000) {
      this.#previousWindowRate = (this.#windowRecords * 1000) / (now - this.#windowStart);
      this.#windowStart = now;
      this.#windowRecords = 0;
    }
    this.#windowRecords += records;
  }

  #refill(now: number): void {
    const elapsed = now - this.#updatedAt;
    if (elapsed <= 0) return;
    // The rate grows only over time that was quiet (a second after the last throttle).
    const quietFrom = Math.max(this.#updatedAt, this.#lastThrottleAt + QUIET_MS);
    if (now > quietFrom) this.#increase(now - quietFrom);
    this.#updatedAt = now;
    this.#recordTokens = Math.min(this.#records, this.#recordTokens + (this.#records * elapsed) / 1000);
    this.#byteTokens = Math.min(this.#bytes, this.#byteTokens + (this.#bytes * elapsed) / 1000);
  }

  #increase(elapsedMs: number): void {
    const seconds = elapsedMs / 1000;
    const ceiling = this.ceiling;
    if (Number.isFinite(ceiling.recordsPerSecond)) {
      this.#records = Math.min(ceiling.recordsPerSecond, this.#records + ceiling.recordsPerSecond * INCREASE_PER_SECOND * seconds);
    } else if (Number.isFinite(this.#records)) {
      const grown = this.#records + Math.max(MIN_LEARNT_RATE, this.#records * INCREASE_PER_SECOND) * seconds;
      this.#records = grown > UNBOUNDED_RATE ? Number.POSITIVE_INFINITY : grown;
    }
    if (Number.isFinite(ceiling.bytesPerSecond)) {
      this.#bytes = Math.min(ceiling.bytesPerSecond, this.#bytes + ceiling.bytesPerSecond * INCREASE_PER_SECOND * seconds);
    }
  }
}

// The retry ladder through the client, with a scripted fake fetch, injected random and fake
// timers. Expected behaviour: the AWS SDKs' standard retry mode
// (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html: 500-token quota,
// 5 per throttling retry, 10 per other retry, 20 s cap), clock-skew correction as in
// aws-sdk-js-v3 (`isClockSkewed`, `getSkewCorrectedDate`; the concurrent case is
// aws-sdk-js-v3#8005), and the Kinesis error table
// (https://docs.aws.amazon.com/kinesis/latest/APIReference/CommonErrors.html).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CLOCK_SKEW_THRESHOLD_MS } from '../../src/client.ts';
import { CREDENTIAL_REFRESH_WINDOW_MS, createCredentialsCache, type AwsCredentials } from '../../src/credentials.ts';
import {
  createKinesisClient,
  getClockOffset,
  KinesisNetworkError,
  KinesisRetryQuotaExceededError,
  KinesisServiceError,
  KinesisTimeoutError,
  putRecord,
  type KinesisClientConfig,
  type RetryOptions,
} from '../../src/index.ts';
import { backoffDelay, DEFAULT_RETRY_OPTIONS } from '../../src/retry.ts';
import {
  awsError,
  createFakeFetch,
  hang,
  networkError,
  putRecordOk,
  raw,
  until,
  type FakeFetch,
  type RecordedRequest,
  type Reply,
} from '../support/fake-fetch.ts';
import { seededRandom } from '../support/seeded-random.ts';

const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const INPUT = { StreamName: 'clicks', PartitionKey: 'user-1', Data: 'x' };
const ALMOST_ONE = 0.999_999;

function client(fake: FakeFetch, overrides: Partial<KinesisClientConfig> = {}, retry: RetryOptions = {}) {
  return createKinesisClient({
    region: 'us-east-1',
    credentials: CREDENTIALS,
    fetch: fake,
    ...overrides,
    retry: { baseDelayMs: 1, throttlingBaseDelayMs: 1, ...retry },
  });
}

function useFakeClock(): void {
  // setImmediate stays real: `until` uses it to let WebCrypto and the fake fetch finish.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
}

/**
 * Runs `promise` to the end under fake timers: waits until the client is idle (every response
 * read and a backoff timer pending), then fires that timer, and so on.
 */
async function drive<T>(promise: Promise<T>, fake: FakeFetch): Promise<T> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  while (!done) {
    await until(() => done || (fake.bodiesRead === fake.requests.length && vi.getTimerCount() > 0));
    if (!done) await vi.advanceTimersToNextTimerAsync();
  }
  return promise;
}

/** Gaps between consecutive requests, in ms of the (fake) clock. */
function gaps(fake: FakeFetch): number[] {
  return fake.requests.slice(1).map((r, i) => r.at - fake.requests[i]!.at);
}

afterEach(() => {
  vi.useRealTimers();
});

describe('backoffDelay', () => {
  it.each([
    { attempt: 1, base: 500, expected: 499 },
    { attempt: 2, base: 500, expected: 999 },
    { attempt: 3, base: 500, expected: 1999 },
    { attempt: 6, base: 500, expected: 15_999 },
    { attempt: 7, base: 500, expected: 19_999 },
    { attempt: 40, base: 500, expected: 19_999 },
    { attempt: 1, base: 100, expected: 99 },
    { attempt: 1000, base: 100, expected: 19_999 },
  ])('is just under min(20 s, base·2^(attempt−1)) for random → 1 (attempt $attempt, base $base)', ({ attempt, base, expected }) => {
    expect(backoffDelay(attempt, base, 20_000, () => ALMOST_ONE)).toBe(expected);
  });

  it('never exceeds the cap or goes negative, over a seeded sample', () => {
    const random = seededRandom(7);
    for (let i = 0; i < 5_000; i++) {
      const attempt = 1 + Math.floor(random() * 60);
      const delay = backoffDelay(attempt, random() < 0.5 ? 100 : 500, 20_000, random);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(20_000);
    }
  });

  it('has the SDK defaults: 3 attempts, 100 ms and 500 ms bases, 20 s cap, 500 tokens', () => {
    expect(DEFAULT_RETRY_OPTIONS).toMatchObject({ maxAttempts: 3, baseDelayMs: 100, throttlingBaseDelayMs: 500, maxDelayMs: 20_000, quota: 500 });
  });
});

describe('retry ladder: what is retried', () => {
  it.each<{ name: string; reply: () => Reply }>([
    { name: '400 ProvisionedThroughputExceededException', reply: () => awsError(400, 'ProvisionedThroughputExceededException') },
    { name: '400 LimitExceededException', reply: () => awsError(400, 'LimitExceededException') },
    { name: '400 KMSThrottlingException', reply: () => awsError(400, 'KMSThrottlingException') },
    { name: '500 InternalFailure', reply: () => awsError(500, 'InternalFailure') },
    { name: 'empty 500', reply: () => raw(500, '') },
    { name: 'empty 502', reply: () => raw(502, '') },
    { name: '503 ServiceUnavailable', reply: () => awsError(503, 'ServiceUnavailable') },
    { name: 'HTML 504', reply: () => raw(504, '<html>Gateway Timeout</html>') },
    { name: 'empty 429', reply: () => raw(429, '') },
    { name: "TypeError('Failed to fetch')", reply: () => networkError('Failed to fetch') },
    { name: "TypeError('Load failed')", reply: () => networkError('Load failed') },
  ])('retries $name and succeeds on attempt 2', async ({ reply }) => {
    const fake = createFakeFetch([reply(), putRecordOk()]);
    const out = await putRecord(client(fake), INPUT);
    expect(out.SequenceNumber).toBeDefined();
    expect(fake.requests).toHaveLength(2);
  });

  it('retries a timed-out attempt, aborting it', async () => {
    const fake = createFakeFetch([hang(), putRecordOk()]);
    await putRecord(client(fake, { timeoutMs: 20 }), INPUT);
    expect(fake.requests).toHaveLength(2);
    expect(fake.requests[0]!.signal!.aborted).toBe(true);
    expect(fake.requests[1]!.signal!.aborted).toBe(false);
  });

  it.each([
    'ValidationException',
    'SerializationException',
    'InvalidArgumentException',
    'ResourceNotFoundException',
    'AccessDeniedException',
    'KMSAccessDeniedException',
    'ResourceInUseException',
    'UnrecognizedClientException',
  ])('does not retry 400 %s: exactly one request', async (code) => {
    const fake = createFakeFetch([awsError(400, code), putRecordOk()]);
    const error = await putRecord(client(fake), INPUT).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KinesisServiceError);
    expect(error).toMatchObject({ code, status: 400, retryable: false });
    expect(fake.requests).toHaveLength(1);
  });

  it('does not retry an InvalidSignatureException that is not about the clock', async () => {
    const fake = createFakeFetch([
      awsError(400, 'InvalidSignatureException', 'The request signature we calculated does not match the signature you provided.'),
      putRecordOk(),
    ]);
    await expect(putRecord(client(fake), INPUT)).rejects.toMatchObject({ code: 'InvalidSignatureException' });
    expect(fake.requests).toHaveLength(1);
  });

  it('stops at maxAttempts and throws the last error', async () => {
    const fake = createFakeFetch([], { fallback: awsError(500, 'InternalFailure') });
    const error = await putRecord(client(fake, {}, { maxAttempts: 4 }), INPUT).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KinesisServiceError);
    expect(error).toMatchObject({ code: 'InternalFailure', status: 500 });
    expect(fake.requests).toHaveLength(4);
  });

  it('makes one attempt with maxAttempts 1', async () => {
    const fake = createFakeFetch([], { fallback: raw(503, '') });
    await expect(putRecord(client(fake, {}, { maxAttempts: 1 }), INPUT)).rejects.toBeInstanceOf(KinesisServiceError);
    expect(fake.requests).toHaveLength(1);
  });

  it('returns the typed network error, with the fetch error as cause, when attempts run out', async () => {
    const cause = networkError();
    const fake = createFakeFetch([], { fallback: cause });
    const error = await putRecord(client(fake, {}, { maxAttempts: 3 }), INPUT).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KinesisNetworkError);
    expect((error as Error).cause).toBe(cause);
    expect(fake.requests).toHaveLength(3);
  });

  it('throws KinesisTimeoutError after every attempt timed out', async () => {
    const fake = createFakeFetch([], { fallback: hang() });
    const started = performance.now();
    const error = await putRecord(client(fake, { timeoutMs: 25 }, { maxAttempts: 3 }), INPUT).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KinesisTimeoutError);
    expect(error).toMatchObject({ timeoutMs: 25, operation: 'PutRecord', retryable: true });
    expect(fake.requests).toHaveLength(3);
    expect(fake.requests.every((r) => r.signal!.aborted)).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(70);
  });
});

describe('retry ladder: delays', () => {
  it('waits up to the throttling base (500 ms) before retrying a throttle, then doubles', async () => {
    useFakeClock();
    const fake = createFakeFetch([
      awsError(400, 'ProvisionedThroughputExceededException'),
      awsError(400, 'ProvisionedThroughputExceededException'),
      putRecordOk(),
    ]);
    const c = client(fake, {}, { throttlingBaseDelayMs: 500, baseDelayMs: 100, random: () => ALMOST_ONE });
    await drive(putRecord(c, INPUT), fake);
    expect(gaps(fake)).toEqual([499, 999]);
  });

  it('does not retry a throttle before its delay has passed', async () => {
    useFakeClock();
    const fake = createFakeFetch([awsError(400, 'ProvisionedThroughputExceededException'), putRecordOk()]);
    const c = client(fake, {}, { throttlingBaseDelayMs: 500, random: () => ALMOST_ONE });
    const call = putRecord(c, INPUT);
    await until(() => fake.bodiesRead === 1 && vi.getTimerCount() === 1);
    await vi.advanceTimersByTimeAsync(498);
    await until(() => true);
    expect(fake.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await until(() => fake.requests.length === 2);
    await call;
  });

  it('uses the smaller transient base (100 ms) for a 500', async () => {
    useFakeClock();
    const fake = createFakeFetch([raw(500, ''), putRecordOk()]);
    const c = client(fake, {}, { throttlingBaseDelayMs: 500, baseDelayMs: 100, random: () => ALMOST_ONE });
    await drive(putRecord(c, INPUT), fake);
    expect(gaps(fake)).toEqual([99]);
  });

  it('jitters with the injected random: the delays follow the seeded sequence', async () => {
    useFakeClock();
    const fake = createFakeFetch([], { fallback: awsError(400, 'ProvisionedThroughputExceededException') });
    const c = client(fake, {}, { throttlingBaseDelayMs: 500, maxAttempts: 6, random: seededRandom(42) });
    await drive(putRecord(c, INPUT), fake).catch(() => undefined);

    const replay = seededRandom(42);
    const expected = [1, 2, 3, 4, 5].map((attempt) => Math.floor(replay() * Math.min(20_000, 500 * 2 ** (attempt - 1))));
    expect(gaps(fake)).toEqual(expected);
    expect(new Set(expected).size).toBe(5);
  });

  it('never waits more than maxDelayMs (20 s)', async () => {
    useFakeClock();
    const fake = createFakeFetch([], { fallback: awsError(400, 'ProvisionedThroughputExceededException') });
    const c = client(fake, {}, { throttlingBaseDelayMs: 500, maxAttempts: 12, random: () => ALMOST_ONE });
    await drive(putRecord(c, INPUT), fake).catch(() => undefined);

    expect(fake.requests).toHaveLength(12);
    expect(gaps(fake)).toEqual([499, 999, 1999, 3999, 7999, 15_999, 19_999, 19_999, 19_999, 19_999, 19_999]);
  });

  it.each([
    { name: 'Retry-After: 2 with a small backoff → 2 s', retryAfter: '2', random: 0, expected: 2000 },
    { name: 'Retry-After: 2 with a larger backoff → the backoff', retryAfter: '2', random: ALMOST_ONE, base: 4000, expected: 3999 },
    { name: 'Retry-After: 60 → at most backoff + 5 s', retryAfter: '60', random: ALMOST_ONE, base: 1000, expected: 999 + 5000 },
    { name: 'Retry-After as an HTTP date 3 s ahead → 3 s', retryAfter: 'date+3', random: 0, expected: 3000 },
  ])('honours $name', async ({ retryAfter, random, base, expected }) => {
    useFakeClock();
    vi.setSystemTime(Date.UTC(2026, 0, 15, 12, 0, 0));
    const header = retryAfter === 'date+3' ? new Date(Date.now() + 3000).toUTCString() : retryAfter;
    const fake = createFakeFetch([raw(503, '', { 'Retry-After': header }), putRecordOk()]);
    const c = client(fake, {}, { baseDelayMs: base ?? 100, random: () => random });
    await drive(putRecord(c, INPUT), fake);
    const [gap] = gaps(fake);
    expect(gap).toBe(expected);
    if (retryAfter === '2') expect(gap).toBeGreaterThanOrEqual(2000);
  });
});

describe('retry quota', () => {
  it('drains under a sustained outage (500 tokens, 10 per transient retry) and then throws KinesisRetryQuotaExceededError', async () => {
    const fake = createFakeFetch([], { fallback: raw(500, '') });
    const c = client(fake, {}, { maxAttempts: 1000, baseDelayMs: 0, random: () => 0 });
    const error = await putRecord(c, INPUT).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(KinesisRetryQuotaExceededError);
    expect(error).toMatchObject({ name: 'KinesisRetryQuotaExceededError', operation: 'PutRecord', retryable: false });
    const cause = (error as Error).cause as KinesisServiceError;
    expect(cause).toBeInstanceOf(KinesisServiceError);
    expect(cause.status).toBe(500);
    expect(fake.requests).toHaveLength(51);
    expect(c.state.quota.available).toBe(0);
  });

  it('allows 100 throttling retries (5 tokens each)', async () => {
    const fake = createFakeFetch([], { fallback: awsError(400, 'ProvisionedThroughputExceededException') });
    const c = client(fake, {}, { maxAttempts: 1000, throttlingBaseDelayMs: 0, random: () => 0 });
    await expect(putRecord(c, INPUT)).rejects.toBeInstanceOf(KinesisRetryQuotaExceededError);
    expect(fake.requests).toHaveLength(101);
  });

  it('is shared by the calls of one client: once spent, a failure is not retried', async () => {
    const fake = createFakeFetch([], { fallback: raw(500, '') });
    const c = client(fake, {}, { maxAttempts: 1000, baseDelayMs: 0, random: () => 0 });
    await putRecord(c, INPUT).catch(() => undefined);
    fake.requests.length = 0;

    await expect(putRecord(c, INPUT)).rejects.toBeInstanceOf(KinesisRetryQuotaExceededError);
    expect(fake.requests).toHaveLength(1);
  });

  it('recovers on success: one token per plain success, a retried success gives back what it spent', async () => {
    const fake = createFakeFetch([], { fallback: raw(500, '') });
    const c = client(fake, {}, { maxAttempts: 1000, baseDelayMs: 0, random: () => 0 });
    await putRecord(c, INPUT).catch(() => undefined);
    expect(c.state.quota.available).toBe(0);

    for (let i = 0; i < 9; i++) fake.push(putRecordOk());
    for (let i = 0; i < 9; i++) await putRecord(c, INPUT);
    expect(c.state.quota.available).toBe(9);
    fake.push(raw(500, ''));
    await expect(putRecord(c, INPUT)).rejects.toBeInstanceOf(KinesisRetryQuotaExceededError);

    fake.push(putRecordOk(), raw(500, ''), putRecordOk());
    await putRecord(c, INPUT);
    expect(c.state.quota.available).toBe(10);
    const before = fake.requests.length;
    await putRecord(c, INPUT);
    expect(fake.requests.length - before).toBe(2);
    expect(c.state.quota.available).toBe(10);
  });

  it('can be disabled with Infinity', async () => {
    const fake = createFakeFetch([], { fallback: raw(500, '') });
    const c = client(fake, {}, { maxAttempts: 80, baseDelayMs: 0, random: () => 0, quota: Number.POSITIVE_INFINITY });
    await expect(putRecord(c, INPUT)).rejects.toBeInstanceOf(KinesisServiceError);
    expect(fake.requests).toHaveLength(80);
  });
});

describe('shouldRetry override', () => {
  it('false stops a retry the ladder would make', async () => {
    const fake = createFakeFetch([raw(500, ''), putRecordOk()]);
    const shouldRetry = vi.fn(() => false);
    await expect(putRecord(client(fake, {}, { shouldRetry }), INPUT)).rejects.toMatchObject({ status: 500 });
    expect(fake.requests).toHaveLength(1);
    expect(shouldRetry).toHaveBeenCalledWith(expect.any(KinesisServiceError), 1);
  });

  it('true retries an error the ladder would throw', async () => {
    const fake = createFakeFetch([awsError(400, 'ValidationException'), putRecordOk()]);
    await putRecord(client(fake, {}, { shouldRetry: () => true }), INPUT);
    expect(fake.requests).toHaveLength(2);
  });

  it('undefined lets the ladder decide, and maxAttempts still wins over true', async () => {
    const fake = createFakeFetch([], { fallback: awsError(400, 'ValidationException') });
    await expect(putRecord(client(fake, {}, { shouldRetry: () => undefined }), INPUT)).rejects.toMatchObject({ code: 'ValidationException' });
    expect(fake.requests).toHaveLength(1);

    const always = createFakeFetch([], { fallback: awsError(400, 'ValidationException') });
    await expect(putRecord(client(always, {}, { shouldRetry: () => true, maxAttempts: 3 }), INPUT)).rejects.toBeInstanceOf(KinesisServiceError);
    expect(always.requests).toHaveLength(3);
  });
});

describe('AbortSignal', () => {
  it('aborts an in-flight request with the signal reason', async () => {
    const fake = createFakeFetch([hang(), putRecordOk()]);
    const controller = new AbortController();
    const reason = new Error('user navigated away');
    const c = client(fake);
    const call = putRecord(c, INPUT, { signal: controller.signal });
    await until(() => fake.requests.length === 1);
    controller.abort(reason);

    await expect(call).rejects.toBe(reason);
    expect(fake.requests[0]!.signal!.aborted).toBe(true);
    expect(fake.requests).toHaveLength(1);
    // Cancelled, not failed: no retry decision is made, so no quota is spent.
    expect(c.state.quota.available).toBe(500);
  });

  it('aborts a pending backoff: no request after the abort', async () => {
    const fake = createFakeFetch([raw(500, ''), putRecordOk()]);
    const controller = new AbortController();
    const c = client(fake, {}, { baseDelayMs: 10_000, random: () => ALMOST_ONE });
    const started = performance.now();
    const call = putRecord(c, INPUT, { signal: controller.signal });
    await until(() => fake.bodiesRead === 1);
    controller.abort();

    await expect(call).rejects.toMatchObject({ name: 'AbortError' });
    expect(performance.now() - started).toBeLessThan(5_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fake.requests).toHaveLength(1);
  });

  it('sends nothing when the signal is already aborted', async () => {
    const fake = createFakeFetch([putRecordOk()]);
    const reason = new Error('already');
    await expect(putRecord(client(fake), INPUT, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(fake.requests).toHaveLength(0);
  });
});

// ---- clock skew ---------------------------------------------------------------------------------

const SERVER_NOW = Date.UTC(2026, 0, 15, 12, 39, 56);

function amz(ms: number): string {
  return new Date(ms).toISOString().replace(/[:-]|\.\d{3}/g, '');
}

function parseAmz(value: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value)!;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

/** AWS's message for a request signed outside the 5-minute window (as the fault proxy words it). */
function skewMessage(requestMs: number, serverMs: number): string {
  return requestMs > serverMs
    ? `Signature not yet current: ${amz(requestMs)} is still later than ${amz(serverMs + 300_000)} (${amz(serverMs)} + 5 min.)`
    : `Signature expired: ${amz(requestMs)} is now earlier than ${amz(serverMs - 300_000)} (${amz(serverMs)} - 5 min.)`;
}

function skewError(requestMs: number, serverMs: number, headers: Record<string, string> = {}): Response {
  return awsError(400, 'InvalidSignatureException', skewMessage(requestMs, serverMs), headers);
}

/** A fake Kinesis whose clock is `serverMs`: refuses requests dated more than 5 minutes off. */
function skewCheckingServer(serverMs: number, before?: (request: RecordedRequest) => Promise<void>): Reply {
  return async (request) => {
    await before?.(request);
    const requestMs = parseAmz(request.headers['x-amz-date']!);
    return Math.abs(requestMs - serverMs) > 300_000 ? skewError(requestMs, serverMs) : putRecordOk();
  };
}

describe('clock skew', () => {
  it('threshold is 5 minutes', () => {
    expect(CLOCK_SKEW_THRESHOLD_MS).toBe(300_000);
  });

  it('corrects a clock 1 h ahead from the message time, re-signs, and succeeds on attempt 2', async () => {
    const local = SERVER_NOW + 3_600_000;
    const fake = createFakeFetch([], { fallback: skewCheckingServer(SERVER_NOW) });
    const c = client(fake, { now: () => local });
    await putRecord(c, INPUT);

    expect(fake.requests.map((r) => r.headers['x-amz-date'])).toEqual([amz(local), amz(SERVER_NOW)]);
    expect(fake.requests[0]!.headers.authorization).not.toBe(fake.requests[1]!.headers.authorization);
    expect(getClockOffset(c)).toBe(-3_600_000);

    await putRecord(c, INPUT);
    expect(fake.requests).toHaveLength(3);
    expect(fake.requests[2]!.headers['x-amz-date']).toBe(amz(SERVER_NOW));
  });

  it('corrects a clock 1 h behind ("Signature expired")', async () => {
    const local = SERVER_NOW - 3_600_000;
    const fake = createFakeFetch([], { fallback: skewCheckingServer(SERVER_NOW) });
    const c = client(fake, { now: () => local });
    await putRecord(c, INPUT);
    expect(fake.requests).toHaveLength(2);
    expect(getClockOffset(c)).toBe(3_600_000);
  });

  it('uses the Date header when there is one', async () => {
    const local = SERVER_NOW + 3_600_000;
    const dateHeader = SERVER_NOW + 7_000;
    const fake = createFakeFetch([skewError(local, SERVER_NOW, { Date: new Date(dateHeader).toUTCString() }), putRecordOk()]);
    const c = client(fake, { now: () => local });
    await putRecord(c, INPUT);

    expect(getClockOffset(c)).toBe(dateHeader - local);
    expect(fake.requests[1]!.headers['x-amz-date']).toBe(amz(dateHeader));
  });

  it('does not take the offset from a Date header that came with Age (a cached answer)', async () => {
    const local = SERVER_NOW + 3_600_000;
    const fake = createFakeFetch([
      skewError(local, SERVER_NOW, { Date: new Date(SERVER_NOW - 86_400_000).toUTCString(), Age: '86400' }),
      putRecordOk(),
    ]);
    const c = client(fake, { now: () => local });
    await putRecord(c, INPUT);
    expect(getClockOffset(c)).toBe(SERVER_NOW - local);
  });

  it('leaves the offset alone when Age is set and the message has no time', async () => {
    const local = SERVER_NOW + 3_600_000;
    const fake = createFakeFetch([
      awsError(400, 'InvalidSignatureException', 'Signature expired', { Date: new Date(SERVER_NOW).toUTCString(), Age: '10' }),
      putRecordOk(),
    ]);
    const c = client(fake, { now: () => local });
    await expect(putRecord(c, INPUT)).rejects.toMatchObject({ code: 'InvalidSignatureException' });
    expect(getClockOffset(c)).toBe(0);
    expect(fake.requests).toHaveLength(1);
  });

  it.each([
    { skew: 299_999, corrected: false },
    { skew: -299_999, corrected: false },
    { skew: 300_000, corrected: true },
    { skew: -300_000, corrected: true },
  ])('a skew of $skew ms: corrected = $corrected', async ({ skew, corrected }) => {
    const local = SERVER_NOW + skew;
    const fake = createFakeFetch([skewError(local, SERVER_NOW), putRecordOk()]);
    const c = client(fake, { now: () => local });
    const result = putRecord(c, INPUT);

    if (corrected) {
      await result;
      expect(getClockOffset(c)).toBe(-skew);
      expect(fake.requests).toHaveLength(2);
    } else {
      await expect(result).rejects.toMatchObject({ code: 'InvalidSignatureException', kind: 'clock-skew' });
      expect(getClockOffset(c)).toBe(0);
      expect(fake.requests).toHaveLength(1);
    }
  });

  it('lets five concurrent skewed requests all succeed (aws-sdk-js-v3#8005)', async () => {
    const local = SERVER_NOW + 3_600_000;
    let release!: () => void;
    const allFiveSent = new Promise<void>((resolve) => (release = resolve));
    const fake = createFakeFetch([], {
      // The first five answers wait until all five requests were signed with the wrong clock.
      fallback: skewCheckingServer(SERVER_NOW, async (request) => {
        if (request.index === 4) release();
        if (request.index < 5) await allFiveSent;
      }),
    });
    const c = client(fake, { now: () => local });
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => putRecord(c, INPUT)));

    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(fake.requests).toHaveLength(10);
    expect(getClockOffset(c)).toBe(-3_600_000);
  });

  it('costs no retry quota and needs no backoff', async () => {
    const local = SERVER_NOW + 3_600_000;
    const fake = createFakeFetch([], { fallback: skewCheckingServer(SERVER_NOW) });
    const c = client(fake, { now: () => local }, { baseDelayMs: 60_000, random: () => ALMOST_ONE });
    const started = performance.now();
    await putRecord(c, INPUT);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(c.state.quota.available).toBe(500);
  });
});

// ---- credentials --------------------------------------------------------------------------------

function accessKeyOf(request: RecordedRequest): string {
  return /Credential=([^/]+)\//.exec(request.headers.authorization!)![1]!;
}

describe('expired credentials', () => {
  it('ExpiredTokenException forces one credential refresh and one retry with the new credentials', async () => {
    let issued = 0;
    const provider = vi.fn(async (): Promise<AwsCredentials> => {
      issued++;
      return { accessKeyId: `ASIA${issued}`, secretAccessKey: 'secret', sessionToken: `token-${issued}` };
    });
    const fake = createFakeFetch([awsError(400, 'ExpiredTokenException', 'The security token included in the request is expired'), putRecordOk()]);
    await putRecord(client(fake, { credentials: provider }), INPUT);

    expect(provider).toHaveBeenCalledTimes(2);
    expect(fake.requests.map(accessKeyOf)).toEqual(['ASIA1', 'ASIA2']);
    expect(fake.requests.map((r) => r.headers['x-amz-security-token'])).toEqual(['token-1', 'token-2']);
  });

  it('surfaces a second ExpiredTokenException', async () => {
    const provider = vi.fn(async (): Promise<AwsCredentials> => ({ accessKeyId: 'ASIA', secretAccessKey: 's', sessionToken: 't' }));
    const fake = createFakeFetch([], { fallback: awsError(400, 'ExpiredTokenException', 'The security token included in the request is expired') });
    const error = await putRecord(client(fake, { credentials: provider }, { maxAttempts: 5 }), INPUT).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(KinesisServiceError);
    expect(error).toMatchObject({ code: 'ExpiredTokenException', kind: 'expired-credentials' });
    expect(fake.requests).toHaveLength(2);
    expect(provider).toHaveBeenCalledTimes(2);
  });

  it('signs a retry after expiry with refreshed credentials', async () => {
    let now = SERVER_NOW;
    let issued = 0;
    const provider = vi.fn(async (): Promise<AwsCredentials> => {
      issued++;
      return { accessKeyId: `ASIA${issued}`, secretAccessKey: 's', sessionToken: `t${issued}`, expiration: new Date(now + 6 * 60_000) };
    });
    const fake = createFakeFetch([
      () => {
        now += 2 * 60_000; // the first attempt takes the credentials into their refresh window
        return raw(503, '');
      },
      putRecordOk(),
    ]);
    await putRecord(client(fake, { credentials: provider, now: () => now }), INPUT);
    expect(fake.requests.map(accessKeyOf)).toEqual(['ASIA1', 'ASIA2']);
  });
});

describe('credentials provider', () => {
  it('refreshes within 5 minutes of expiry, not before', async () => {
    let now = SERVER_NOW;
    let issued = 0;
    const provider = vi.fn(async (): Promise<AwsCredentials> => ({
      accessKeyId: `ASIA${++issued}`,
      secretAccessKey: 's',
      expiration: new Date(SERVER_NOW + 10 * 60_000),
    }));
    const cache = createCredentialsCache(provider, () => now);

    expect((await cache.get()).accessKeyId).toBe('ASIA1');
    now = SERVER_NOW + 10 * 60_000 - CREDENTIAL_REFRESH_WINDOW_MS - 1;
    expect((await cache.get()).accessKeyId).toBe('ASIA1');
    now += 1;
    expect((await cache.get()).accessKeyId).toBe('ASIA2');
    expect(provider).toHaveBeenCalledTimes(2);
    expect(CREDENTIAL_REFRESH_WINDOW_MS).toBe(300_000);
  });

  it('keeps credentials without expiration until forced', async () => {
    let issued = 0;
    const cache = createCredentialsCache(async () => ({ accessKeyId: `A${++issued}`, secretAccessKey: 's' }), () => 0);
    expect((await cache.get()).accessKeyId).toBe('A1');
    expect((await cache.get()).accessKeyId).toBe('A1');
    expect((await cache.get({ force: true })).accessKeyId).toBe('A2');
  });

  it('shares one refresh between concurrent calls', async () => {
    let resolve!: (c: AwsCredentials) => void;
    const provider = vi.fn(() => new Promise<AwsCredentials>((r) => (resolve = r)));
    const fake = createFakeFetch([], { fallback: putRecordOk() });
    const c = client(fake, { credentials: provider });
    const calls = Array.from({ length: 5 }, () => putRecord(c, INPUT));
    await until(() => provider.mock.calls.length > 0);
    resolve({ accessKeyId: 'ASIASHARED', secretAccessKey: 's', sessionToken: 't' });
    await Promise.all(calls);

    expect(provider).toHaveBeenCalledTimes(1);
    expect(fake.requests.map(accessKeyOf)).toEqual(Array(5).fill('ASIASHARED'));
  });

  it('rejects a provider result without keys, and tries again on the next call', async () => {
    const provider = vi
      .fn<() => Promise<AwsCredentials>>()
      .mockResolvedValueOnce({ accessKeyId: '', secretAccessKey: 's' })
      .mockResolvedValueOnce({ accessKeyId: 'A', secretAccessKey: 's' });
    const cache = createCredentialsCache(provider, () => 0);
    await expect(cache.get()).rejects.toThrow(TypeError);
    expect((await cache.get()).accessKeyId).toBe('A');
  });
});

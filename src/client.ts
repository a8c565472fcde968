/**
 * The client: configuration, and `send()`, the one path every operation takes:
 * validate → JSON → sign → fetch → parse → typed errors, wrapped in the retry ladder.
 *
 * Wire protocol: AWS JSON 1.1, `POST /` with `X-Amz-Target: Kinesis_20131202.<Operation>`
 * (https://docs.aws.amazon.com/kinesis/latest/APIReference/CommonParameters.html), signed with
 * SigV4 by aws4fetch's signer. aws4fetch is used to sign only: this module owns fetch, timeouts and
 * retries, because `AwsClient.fetch()` does not retry HTTP 400 throttling or network errors.
 * This is the only module that imports aws4fetch.
 */
import { AwsV4Signer } from 'aws4fetch';
import { createCredentialsCache, type CredentialsCache, type CredentialsInput } from './credentials.ts';
import {
  KinesisError,
  KinesisNetworkError,
  KinesisRetryQuotaExceededError,
  KinesisServiceError,
  KinesisTimeoutError,
  KinesisValidationError,
  sanitizeFaultName,
} from './errors.ts';
import { sleep } from './internal/sleep.ts';
import { encodeUtf8 } from './internal/utf8.ts';
import { resolveRecordLimits, type RecordLimits } from './limits.ts';
import { decideRetry, parseRetryAfter, resolveRetryOptions, RetryQuota, type ResolvedRetryOptions, type RetryOptions } from './retry.ts';

const TARGET_PREFIX = 'Kinesis_20131202';
const CONTENT_TYPE = 'application/x-amz-json-1.1';
const SIGNING_SERVICE = 'kinesis';

/** A clock more than this far off the service's gets corrected (the SDKs' `isClockSkewed` threshold). */
export const CLOCK_SKEW_THRESHOLD_MS = 300_000;

export interface KinesisClientConfig {
  /** AWS region, e.g. `us-east-1`. Always used for signing, also with a custom `endpoint`. */
  region: string;
  /** Static credentials, or an async provider whose result is refreshed before `expiration`. */
  credentials: CredentialsInput;
  /**
   * Service URL.
   * @default `https://kinesis.${region}.amazonaws.com`
   */
  endpoint?: string;
  /**
   * The fetch to call, read at call time (so a test or a polyfill installed later is honoured).
   * @default globalThis.fetch
   */
  fetch?: typeof fetch;
  /** Retry behaviour; see {@link RetryOptions}. */
  retry?: RetryOptions;
  /**
   * Time limit of one attempt (request and response body), in ms. A timed-out attempt is retried.
   * @default 10000
   */
  timeoutMs?: number;
  /**
   * The clock, in epoch ms. Inject a fixed one to pin signatures in tests.
   * @default Date.now
   */
  now?: () => number;
  /** Record and request size limits; raise them for streams with a larger `MaxRecordSizeInKiB`. */
  limits?: Partial<RecordLimits>;
  /**
   * In a web page, long-term IAM user keys (`AKIA…` without a session token) are readable by anyone
   * who opens the page, so the client refuses them there. Set this only for pages that are not
   * public (an internal dashboard on a trusted machine).
   * @default false
   */
  allowLongTermCredentialsInBrowser?: boolean;
}

/** A configured client. Pass it to the operation functions (`putRecords(client, …)`). */
export interface KinesisClient {
  readonly region: string;
  readonly endpoint: string;
  readonly limits: RecordLimits;
  /** @internal state shared by every call of this client. */
  readonly state: ClientState;
}

interface ClientState {
  config: KinesisClientConfig;
  credentials: CredentialsCache;
  retry: ResolvedRetryOptions;
  quota: RetryQuota;
  timeoutMs: number;
  now: () => number;
  /** Correction added to `now()` when signing, learnt from the service's clock. */
  clockOffsetMs: number;
  /** aws4fetch's derived-key cache, keyed by (secret, date, region, service). */
  signingKeys: Map<string, ArrayBuffer>;
}

/** Per-call options. */
export interface CallOptions {
  /** Cancels the request and any pending backoff. The call rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * What an operation module tells `send()`: how to check its input and its response. Most operations
 * build this from their zod schemas (`schemaOperation()`, which loads them on the first call); the
 * write path has plain validators (`put-validation.ts`).
 */
export interface OperationSpec {
  name: string;
  /**
   * The caller's input → the request's JSON, as text or as its UTF-8 bytes (blobs as base64,
   * timestamps as epoch seconds); throws `KinesisValidationError`.
   */
  input: (input: unknown, limits: RecordLimits) => string | Uint8Array<ArrayBuffer>;
  /**
   * A 2xx response's parsed JSON → the output; `undefined` when the operation has none. The service
   * may send `null` for an absent member: the output function treats those as absent ({@link deleteNulls}).
   */
  output: ((json: unknown) => unknown) | undefined;
  /** Loads what `input` and `output` need; called before each use, and cheap once loaded. */
  load?: () => Promise<void>;
}

/**
 * Creates a Kinesis client. It holds configuration and a little state (credentials cache, clock
 * offset, retry quota); it is cheap and has no connections to close.
 *
 * @example
 * ```ts
 * import { createKinesisClient, putRecord } from 'kinesis-edge';
 * const client = createKinesisClient({ region: 'us-east-1', credentials: { accessKeyId, secretAccessKey } });
 * const { ShardId, SequenceNumber } = await putRecord(client, { StreamName: 'clicks', PartitionKey: 'user-1', Data: 'hello' });
 * ```
 */
export function createKinesisClient(config: KinesisClientConfig): KinesisClient {
  if (typeof config?.region !== 'string' || !/^[a-z0-9-]+$/.test(config.region)) {
    throw new TypeError('createKinesisClient: region must be an AWS region name such as "us-east-1"');
  }
  const now = config.now ?? Date.now;
  const endpoint = normaliseEndpoint(config.endpoint ?? `https://kinesis.${config.region}.amazonaws.com`);
  const timeoutMs = config.timeoutMs ?? 10_000;
  if (!(timeoutMs > 0)) throw new RangeError('createKinesisClient: timeoutMs must be a positive number');
  const retry = resolveRetryOptions(config.retry);
  refuseLongTermKeysInPages(config);
  return {
    region: config.region,
    endpoint,
    limits: resolveRecordLimits(config.limits),
    state: {
      config,
      credentials: createCredentialsCache(config.credentials, now),
      retry,
      quota: new RetryQuota(retry.quota),
      timeoutMs,
      now,
      clockOffsetMs: 0,
      signingKeys: new Map(),
    },
  };
}

/**
 * Long-term access keys start with `AKIA` (temporary ones with `ASIA`):
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-prefixes
 * A `document` means a page, where shipped keys are public; Workers, Deno and Node have none.
 */
function refuseLongTermKeysInPages(config: KinesisClientConfig): void {
  const { credentials } = config;
  if (typeof credentials === 'function' || config.allowLongTermCredentialsInBrowser) return;
  const inPage = typeof (globalThis as { document?: unknown }).document !== 'undefined';
  if (inPage && credentials?.accessKeyId?.startsWith('AKIA') && !credentials.sessionToken) {
    throw new TypeError(
      'createKinesisClient: long-term AWS keys (AKIA…) in a web page are visible to every visitor. ' +
        'Send events to an ingest endpoint (see worker-example/) or use temporary credentials; ' +
        'set allowLongTermCredentialsInBrowser to override.',
    );
  }
}

function normaliseEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new TypeError(`createKinesisClient: endpoint is not a URL: ${endpoint}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError(`createKinesisClient: endpoint must be http(s): ${endpoint}`);
  }
  return url.origin + '/';
}

/** The client's current clock correction in ms (positive when the local clock is behind). */
export function getClockOffset(client: KinesisClient): number {
  return client.state.clockOffsetMs;
}

// ---- validation ----------------------------------------------------------------------------------

/**
 * Validate an input as `send()` would and return the request body it would send (AWS JSON 1.1:
 * blobs as base64, timestamps as epoch seconds), without sending anything.
 */
export async function requestBody(client: KinesisClient, operation: OperationSpec, input: unknown): Promise<string | Uint8Array<ArrayBuffer>> {
  if (operation.load) await operation.load();
  return operation.input(input, client.limits);
}

/**
 * The service may send `null` for an absent member: delete those in place so the output schemas
 * see them as absent. (A walk is several times faster than a `JSON.parse` reviver.)
 */
export function deleteNulls(value: unknown): void {
  if (Array.isArray(value)) {
    for (const item of value) if (item !== null && typeof item === 'object') deleteNulls(item);
  } else if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    for (const key in object) {
      const member = object[key];
      if (member === null) delete object[key];
      else if (typeof member === 'object') deleteNulls(member);
    }
  }
}

// ---- one attempt -----------------------------------------------------------------------------------

function amzDate(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/[:-]|\.\d{3}/g, '');
}

async function signRequest(client: KinesisClient, target: string, body: string | Uint8Array<ArrayBuffer>): Promise<{ url: string; headers: Headers }> {
  const { state } = client;
  const credentials = await state.credentials.get();
  const signer = new AwsV4Signer({
    url: client.endpoint,
    method: 'POST',
    headers: { 'content-type': CONTENT_TYPE, 'x-amz-target': target },
    body,
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    sessionToken: credentials.sessionToken,
    // Always explicit: aws4fetch guesses `data-kinesis` for account endpoints and nothing for localhost.
    service: SIGNING_SERVICE,
    region: client.region,
    datetime: amzDate(state.now() + state.clockOffsetMs),
    cache: state.signingKeys,
  });
  const signed = await signer.sign();
  return { url: signed.url.toString(), headers: signed.headers };
}

/** Sign a Kinesis request exactly as `send()` does, without sending it (for tests and proxies). */
export async function signKinesisRequest<Body extends string | Uint8Array<ArrayBuffer>>(
  client: KinesisClient,
  operation: string,
  body: Body,
): Promise<{ method: 'POST'; url: string; headers: Headers; body: Body }> {
  const { url, headers } = await signRequest(client, `${TARGET_PREFIX}.${operation}`, body);
  return { method: 'POST', url, headers, body };
}

async function attemptOnce(
  client: KinesisClient,
  operation: OperationSpec,
  body: Uint8Array<ArrayBuffer>,
  signal: AbortSignal | undefined,
): Promise<AttemptResult<unknown>> {
  const { state } = client;
  const { url, headers } = await signRequest(client, `${TARGET_PREFIX}.${operation.name}`, body);
  // The signal may have aborted while signing; its 'abort' event is gone by now.
  if (signal?.aborted) throw signal.reason;

  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), state.timeoutMs);
  const onAbort = () => timeout.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  const doFetch = state.config.fetch ?? globalThis.fetch;
  let response: Response;
  let text: string;
  try {
    response = await doFetch(url, { method: 'POST', headers, body, signal: timeout.signal });
    text = await response.text();
  } catch (cause) {
    if (signal?.aborted) throw signal.reason;
    if (timeout.signal.aborted) return { ok: false, error: new KinesisTimeoutError(operation.name, state.timeoutMs, cause) };
    return { ok: false, error: new KinesisNetworkError(operation.name, cause) };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }

  if (response.ok) {
    if (!operation.output) return { ok: true, value: undefined };
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new KinesisValidationError(operation.name, 'output', [{ path: '', rule: `response body is not JSON (${snippet(text)})` }]);
    }
    return { ok: true, value: operation.output(json) };
  }
  return { ok: false, error: serviceError(operation.name, response, text, state.now()), response };
}

function snippet(text: string): string {
  const clean = text.replace(/\s+/g, ' ').trim();
  return clean.length > 120 ? `${clean.slice(0, 120)}…` : clean || 'empty';
}

/** Build the typed error for a non-2xx response; an empty or non-JSON body still gives a useful one. */
export function serviceError(operation: string, response: Response, text: string, nowMs: number): KinesisServiceError {
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = text ? JSON.parse(text) : {};
    if (parsed && typeof parsed === 'object') body = parsed as Record<string, unknown>;
  } catch {
    // Not JSON (a proxy's HTML page, a truncated body): the header and status still say something.
  }
  const rawCode =
    response.headers.get('x-amzn-ErrorType') ??
    (typeof body.__type === 'string' ? body.__type : undefined) ??
    (typeof body.code === 'string' ? body.code : undefined);
  const code = rawCode ? sanitizeFaultName(rawCode) : response.status === 429 ? 'TooManyRequestsException' : `Http${response.status}`;
  const message =
    (typeof body.message === 'string' && body.message) ||
    (typeof body.Message === 'string' && body.Message) ||
    (rawCode ? '' : `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''} with ${text ? `body: ${snippet(text)}` : 'an empty body'}`);
  return new KinesisServiceError({
    code,
    status: response.status,
    requestId: response.headers.get('x-amzn-RequestId') ?? response.headers.get('x-amz-request-id') ?? undefined,
    message,
    operation,
    retryAfterMs: parseRetryAfter(response.headers.get('retry-after'), nowMs),
  });
}

/**
 * The service's clock, from the response's `Date` header (unless a cache served it: `Age`), or
 * from the time in an "expired / not yet current" message: `(20150830T123600Z + 5 min.)`.
 */
export function serverTimeFromSkewError(error: KinesisServiceError, response: Response | undefined): number | undefined {
  const date = response?.headers.get('date');
  if (date && !response?.headers.get('age')) {
    const ms = Date.parse(date);
    if (!Number.isNaN(ms)) return ms;
  }
  const match = /\((\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z\s*[-+]\s*\d+\s*min\.?\)/.exec(error.serviceMessage);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s] = match;
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
}

// ---- send --------------------------------------------------------------------------------------------

/** What one attempt of a call produced: a value, or the error (and response) to retry on. */
export type AttemptResult<T> = { ok: true; value: T } | { ok: false; error: KinesisError; response?: Response };

/**
 * The retry loop every call shares (`send()`, and the event stream's `openEventStream()`): runs
 * `attempt` until it succeeds, correcting the clock offset and refreshing expired credentials on
 * the way, per the client's retry ladder and quota. An attempt throws what must not be retried.
 */
export async function withRetries<T>(
  client: KinesisClient,
  operation: string,
  signal: AbortSignal | undefined,
  attempt: () => Promise<AttemptResult<T>>,
): Promise<T> {
  const { state } = client;
  let spent = 0;
  let refreshedCredentials = false;

  for (let attemptNumber = 1; ; attemptNumber++) {
    if (signal?.aborted) throw signal.reason;
    const signedWithOffset = state.clockOffsetMs;
    const result = await attempt();
    if (result.ok) {
      state.quota.release(spent);
      return result.value;
    }
    const { error, response } = result;

    if (error instanceof KinesisServiceError && error.kind === 'clock-skew') {
      const serverMs = serverTimeFromSkewError(error, response);
      const offset = serverMs === undefined ? undefined : serverMs - state.now();
      // Only a real skew is worth a retry: the offset this attempt was signed with must be off by
      // the threshold. (A concurrent call may already have corrected the shared offset.)
      if (offset === undefined || Math.abs(offset - signedWithOffset) < CLOCK_SKEW_THRESHOLD_MS) throw error;
      if (Math.abs(offset - state.clockOffsetMs) >= CLOCK_SKEW_THRESHOLD_MS) state.clockOffsetMs = offset;
    }
    if (error instanceof KinesisServiceError && error.kind === 'expired-credentials') {
      if (refreshedCredentials) throw error;
      refreshedCredentials = true;
      await state.credentials.get({ force: true });
    }

    const decision = decideRetry(error, attemptNumber, state.retry, state.quota);
    if (!decision.retry) {
      if (decision.quotaExhausted) throw new KinesisRetryQuotaExceededError(operation, error);
      throw error;
    }
    spent += decision.cost;
    if (decision.delayMs > 0) await sleep(decision.delayMs, signal);
  }
}

/**
 * Validate, sign, send and parse one operation call, retrying per the client's retry options.
 * Operation modules call this; apps call the operation functions.
 */
export async function send(client: KinesisClient, operation: OperationSpec, input: unknown, options: CallOptions = {}): Promise<unknown> {
  const { signal } = options;
  // UTF-8 bytes once, for both the signature's body hash and fetch (each would encode a string again).
  const text = await requestBody(client, operation, input);
  const body = typeof text === 'string' ? encodeUtf8(text) : text;
  return withRetries(client, operation.name, signal, () => attemptOnce(client, operation, body, signal));
}

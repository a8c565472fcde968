// A real HTTP proxy between a client and the local Kinesis that injects faults from a programmable
// plan: partially failed PutRecords batches, throttles, arbitrary statuses, dropped connections
// (before or after the upstream committed), delays, and AWS's request-date check. Error shapes
// follow the Kinesis JSON protocol: `{"__type": ..., "message": ...}` plus `x-amzn-ErrorType`
// (https://docs.aws.amazon.com/kinesis/latest/APIReference/CommonErrors.html).
import { randomBytes, randomUUID } from 'node:crypto';
import {
  Agent as HttpAgent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { seededRandom } from './seeded-random.ts';

/** Fault kinds the proxy can inject. */
export type FaultType = 'partialFailure' | 'mismatchedCount' | 'throttle' | 'status' | 'drop' | 'delay' | 'skewDate';

/** Error codes a real PutRecords result entry can carry. */
export type PutRecordsEntryErrorCode = 'ProvisionedThroughputExceededException' | 'InternalFailure';

/** Which requests a rule applies to, and how often. Rules are tried in order; one fault per request. */
export interface FaultMatch {
  /** Operation name(s) from `X-Amz-Target` (e.g. `'PutRecords'`). @default any operation */
  operation?: string | readonly string[];
  /** Extra predicate over the logged request. @default none */
  when?: (request: ProxiedRequest) => boolean;
  /**
   * How many matching requests this rule faults before it is spent.
   * @default 1, or unlimited for `skewDate` and for rules with a `probability`
   */
  times?: number;
  /** Chance (0..1) that a matching request is faulted, drawn from the proxy's seeded PRNG. @default 1 */
  probability?: number;
  /** Waits this long (cancellable) before applying the fault. @default 0 */
  delayMs?: number;
  /** A name shown in the request log. @default undefined */
  label?: string;
}

/**
 * PutRecords: forwards only some records upstream and answers 200 with the upstream's results
 * merged back into the original positions; the others are reported failed and are really not
 * stored.
 */
export interface PartialFailureFault extends FaultMatch {
  fault: 'partialFailure';
  /** Share of the records to fail; the indexes are drawn from the seeded PRNG. @default 0.5 */
  failRatio?: number;
  /** Exact indexes to fail; overrides `failRatio`. @default undefined */
  failIndexes?: readonly number[];
  /** Codes for failed entries, picked per entry with the PRNG. @default ['ProvisionedThroughputExceededException'] */
  errorCodes?: readonly PutRecordsEntryErrorCode[];
}

/** PutRecords (or any operation answering `Records`): forwarded, but the answer has `delta` more or fewer entries. */
export interface MismatchedCountFault extends FaultMatch {
  fault: 'mismatchedCount';
  /** Entries to add (copies of the last one) or remove from the end of `Records`. @default -1 */
  delta?: number;
}

/** Answers a throttling error without forwarding. */
export interface ThrottleFault extends FaultMatch {
  fault: 'throttle';
  /** The `__type` and `x-amzn-ErrorType`. @default 'ProvisionedThroughputExceededException' */
  errorType?: 'ProvisionedThroughputExceededException' | 'LimitExceededException' | (string & {});
  /** @default AWS's "Rate exceeded for shard … in stream … under account …." wording */
  message?: string;
  /** @default 400 */
  status?: number;
}

/** Answers an arbitrary status, body and headers without forwarding. */
export interface StatusFault extends FaultMatch {
  fault: 'status';
  status: number;
  /** A string or bytes are sent as is; an object as JSON with the Kinesis content type. @default '' (empty body) */
  body?: string | Uint8Array | Record<string, unknown>;
  /** E.g. `{ 'Retry-After': '1' }`; `Content-Type` only if given (or the body is an object). @default {} */
  headers?: Record<string, string>;
}

/** Destroys the client's socket without (a complete) answer. */
export interface DropFault extends FaultMatch {
  fault: 'drop';
  /**
   * `beforeForward`: nothing reaches upstream. `afterForward`: upstream answered (e.g. stored the
   * records) but the client never hears. `midResponse`: upstream answered; the client gets the
   * status, headers and half the body.
   * @default 'beforeForward'
   */
  phase?: 'beforeForward' | 'afterForward' | 'midResponse';
}

/** Waits, then forwards. Cancelled (the request is not forwarded) if the client goes away or the proxy closes. */
export interface DelayFault extends FaultMatch {
  fault: 'delay';
  ms: number;
  /** `afterForward` forwards at once and holds the upstream's answer instead. @default 'beforeForward' */
  phase?: 'beforeForward' | 'afterForward';
}

/**
 * AWS's request-date check: a request whose `X-Amz-Date` (or `Date`) is more than `toleranceMs`
 * from the proxy's clock is answered 400 `InvalidSignatureException`; others are forwarded.
 * Put it first in the plan: AWS checks the signature before anything else.
 */
export interface SkewDateFault extends FaultMatch {
  fault: 'skewDate';
  /** @default 300_000 (5 minutes, as AWS) */
  toleranceMs?: number;
  /** Added to the real time to get the proxy's clock (simulates a server clock that is off). @default 0 */
  offsetMs?: number;
  /** Whether the error response carries a `Date` header with the proxy's clock. @default true */
  sendDate?: boolean;
}

/** One entry of a fault plan. */
export type FaultRule =
  | PartialFailureFault
  | MismatchedCountFault
  | ThrottleFault
  | StatusFault
  | DropFault
  | DelayFault
  | SkewDateFault;

/** The fault a request received. */
export interface AppliedFault {
  type: FaultType;
  /** Position of the rule in the plan passed to `setFaults`. */
  ruleIndex: number;
  label: string | undefined;
  /** partialFailure: indexes reported failed (not stored). */
  failedIndexes?: number[];
  /** mismatchedCount: entries upstream answered, and entries the client got. */
  upstreamCount?: number;
  returnedCount?: number;
  /** skewDate: the InvalidSignatureException message. */
  message?: string;
}

/** What happened to a request, as far as the client is concerned. */
export type ProxiedOutcome = 'pending' | 'answered' | 'dropped' | 'clientAborted' | 'proxyClosed' | 'upstreamError';

/** A log entry for every request the proxy saw, updated as it is handled. */
export interface ProxiedRequest {
  /** 0-based arrival order since the last `reset()` / `clearRequests()`. */
  seq: number;
  method: string;
  path: string;
  /** Operation from `X-Amz-Target` (`Kinesis_20131202.PutRecords` → `PutRecords`). */
  operation: string | undefined;
  /** Lower-case names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  rawBody: Buffer;
  /** Parsed JSON body, `undefined` if empty or not JSON. */
  body: any;
  receivedAt: number;
  fault: AppliedFault | undefined;
  /** Whether (part of) the request reached upstream. */
  forwarded: boolean;
  /** The JSON actually sent upstream when it differs from `body` (partialFailure). */
  forwardedBody?: any;
  upstreamStatus?: number;
  /** Status sent to the client; undefined if it got none. */
  status?: number;
  outcome: ProxiedOutcome;
  /** Resolves when the proxy is done with the request. */
  settled: Promise<void>;
}

/** Options for {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** Seed of the mulberry32 PRNG used for probabilities and partial-failure picks. @default 0x5eed */
  seed?: number;
  /**
   * Forward the client's `Host` header (what it signed) instead of the upstream's host.
   * kinesis-local does not verify signatures, so either works.
   * @default true
   */
  preserveHost?: boolean;
}

/** A running proxy. */
export interface FaultProxy {
  /** Base URL clients use instead of the upstream endpoint, e.g. `http://127.0.0.1:40123`. */
  url: string;
  port: number;
  upstream: string;
  /** Live log of every request since the last `reset()` / `clearRequests()`. */
  readonly requests: readonly ProxiedRequest[];
  /** Replaces the fault plan (budgets start afresh); the log and PRNG are kept. */
  setFaults(rules: readonly FaultRule[]): void;
  /** Clears the plan and the log and re-seeds the PRNG. */
  reset(): void;
  clearRequests(): void;
  /** Resolves when every request seen so far is settled, or rejects after `timeoutMs`. @default 5_000 */
  idle(timeoutMs?: number): Promise<void>;
  /** Cancels delays, destroys open sockets and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** AWS's account id in documentation examples, used when the request names no ARN. */
const EXAMPLE_ACCOUNT = '123456789012';
const KINESIS_CONTENT_TYPE = 'application/x-amz-json-1.1';
// What kinesis-local (and AWS) expose to browsers; synthesized answers must carry it too or a
// page sees a network error instead of the fault.
const CORS_EXPOSE_HEADERS = 'x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date';
// RFC 9110 §7.6.1 connection-specific fields, never forwarded by a proxy.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** `yyyymmddThhmmssZ`, the `X-Amz-Date` format. */
function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** Parses `X-Amz-Date` (`20261201T000000Z`), else an HTTP `Date`; NaN when neither parses. */
export function parseRequestDate(headers: Record<string, string>): number {
  const amz = headers['x-amz-date'];
  if (amz !== undefined) {
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amz.trim());
    if (!m) return Number.NaN;
    return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  const date = headers.date;
  return date === undefined ? Number.NaN : Date.parse(date);
}

/**
 * The message AWS gives for a request date outside the allowed window, or undefined if the
 * date is inside it (or missing, which is a different error that upstream reports).
 * Format as returned by the service:
 * `Signature expired: 20261201T000000Z is now earlier than 20261201T001000Z (20261201T001500Z - 5 min.)`.
 */
export function skewMessage(requestMs: number, nowMs: number, toleranceMs = 300_000): string | undefined {
  if (Number.isNaN(requestMs)) return undefined;
  const window = `${toleranceMs / 60_000} min.`;
  if (requestMs < nowMs - toleranceMs) {
    return `Signature expired: ${formatAmzDate(requestMs)} is now earlier than ${formatAmzDate(nowMs - toleranceMs)} (${formatAmzDate(nowMs)} - ${window})`;
  }
  if (requestMs > nowMs + toleranceMs) {
    return `Signature not yet current: ${formatAmzDate(requestMs)} is still later than ${formatAmzDate(nowMs + toleranceMs)} (${formatAmzDate(nowMs)} + ${window})`;
  }
  return undefined;
}

interface RuleState {
  rule: FaultRule;
  index: number;
  remaining: number;
}

interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

class Cancelled extends Error {}

/**
 * Starts a fault-injecting proxy on a free 127.0.0.1 port in front of `upstream`.
 * @example
 * const proxy = await startFaultProxy(inject('kinesisEndpoint'));
 * proxy.setFaults([{ fault: 'partialFailure', operation: 'PutRecords', failRatio: 0.5 }]);
 * // point the client at proxy.url, then inspect proxy.requests
 * await proxy.close();
 */
export async function startFaultProxy(upstream: string, options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const upstreamUrl = new URL(upstream);
  const isHttps = upstreamUrl.protocol === 'https:';
  const basePath = upstreamUrl.pathname.replace(/\/$/, '');
  const agent = isHttps
    ? new HttpsAgent({ keepAlive: true, rejectUnauthorized: false })
    : new HttpAgent({ keepAlive: true });
  const seed = options.seed ?? 0x5eed;
  const preserveHost = options.preserveHost ?? true;

  let random = seededRandom(seed);
  let rules: RuleState[] = [];
  let log: ProxiedRequest[] = [];
  let seq = 0;
  let closed = false;
  const inFlight = new Set<AbortController>();
  const sockets = new Set<Socket>();

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;

  function pickRule(entry: ProxiedRequest): { state: RuleState; skew?: string } | undefined {
    if (entry.method === 'OPTIONS') return undefined; // CORS preflight: always passed through
    for (const state of rules) {
      const { rule } = state;
      if (state.remaining <= 0) continue;
      if (rule.operation !== undefined) {
        const ops = typeof rule.operation === 'string' ? [rule.operation] : rule.operation;
        if (entry.operation === undefined || !ops.includes(entry.operation)) continue;
      }
      if (rule.when && !rule.when(entry)) continue;
      let skew: string | undefined;
      if (rule.fault === 'skewDate') {
        skew = skewMessage(parseRequestDate(entry.headers), Date.now() + (rule.offsetMs ?? 0), rule.toleranceMs);
        if (skew === undefined) continue;
      }
      if (rule.probability !== undefined && rule.probability < 1 && !(random() < rule.probability)) continue;
      state.remaining--;
      return { state, skew };
    }
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const controller = new AbortController();
    inFlight.add(controller);
    let settle!: () => void;
    const headers = flattenHeaders(req.headers);
    const target = headers['x-amz-target'];
    const entry: ProxiedRequest = {
      seq: seq++,
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      operation: target === undefined ? undefined : target.slice(target.lastIndexOf('.') + 1),
      headers,
      rawBody: Buffer.alloc(0),
      body: undefined,
      receivedAt: Date.now(),
      fault: undefined,
      forwarded: false,
      outcome: 'pending',
      settled: new Promise<void>((resolve) => (settle = resolve)),
    };
    log.push(entry);
    res.once('close', () => {
      if (!res.writableFinished) controller.abort(new Cancelled('client went away'));
    });
    try {
      if (closed) throw new Cancelled('proxy closed');
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      entry.rawBody = Buffer.concat(chunks);
      entry.body = parseJson(entry.rawBody);

      const picked = pickRule(entry);
      if (picked === undefined) {
        await passThrough(entry, entry.rawBody, res, controller.signal);
      } else {
        const { state, skew } = picked;
        entry.fault = { type: state.rule.fault, ruleIndex: state.index, label: state.rule.label };
        if (state.rule.delayMs) await sleep(state.rule.delayMs, controller.signal);
        await applyFault(state.rule, entry, req, res, controller.signal, skew);
      }
    } catch (error) {
      if (controller.signal.aborted || error instanceof Cancelled || req.socket.destroyed) {
        entry.outcome = closed ? 'proxyClosed' : 'clientAborted';
        res.destroy();
      } else if (!res.headersSent) {
        sendRaw(res, entry, 502, `fault-proxy: ${String(error)}`, { 'Content-Type': 'text/plain; charset=utf-8' });
        entry.outcome = 'upstreamError';
      } else {
        entry.outcome = 'upstreamError';
        res.destroy();
      }
    } finally {
      inFlight.delete(controller);
      settle();
    }
  }

  async function applyFault(
    rule: FaultRule,
    entry: ProxiedRequest,
    req: IncomingMessage,
    res: ServerResponse,
    signal: AbortSignal,
    skew: string | undefined,
  ): Promise<void> {
    switch (rule.fault) {
      case 'partialFailure':
        return partialFailure(rule, entry, res, signal);
      case 'mismatchedCount': {
        const up = await forwardBuffered(entry, entry.rawBody, signal);
        const parsed = up.status === 200 ? parseJson(up.body) : undefined;
        if (!Array.isArray(parsed?.Records)) return relay(res, entry, up);
        const records: unknown[] = parsed.Records;
        const delta = rule.delta ?? -1;
        const changed =
          delta < 0
            ? records.slice(0, Math.max(0, records.length + delta))
            : [...records, ...Array.from({ length: delta }, () => records[records.length - 1] ?? {})];
        entry.fault!.upstreamCount = records.length;
        entry.fault!.returnedCount = changed.length;
        return relay(res, entry, { ...up, body: Buffer.from(JSON.stringify({ ...parsed, Records: changed })) });
      }
      case 'throttle': {
        const errorType = rule.errorType ?? 'ProvisionedThroughputExceededException';
        const stream = streamNameOf(entry.body);
        const account = accountOf(entry.body);
        const message =
          rule.message ??
          (errorType === 'ProvisionedThroughputExceededException'
            ? `Rate exceeded for shard shardId-000000000000 in stream ${stream} under account ${account}.`
            : `Rate exceeded for stream ${stream} under account ${account}.`);
        return sendAwsError(res, entry, rule.status ?? 400, errorType, message);
      }
      case 'status': {
        const headers: Record<string, string> = {};
        let body: Buffer;
        if (rule.body === undefined) body = Buffer.alloc(0);
        else if (typeof rule.body === 'string') body = Buffer.from(rule.body);
        else if (rule.body instanceof Uint8Array) body = Buffer.from(rule.body);
        else {
          body = Buffer.from(JSON.stringify(rule.body));
          headers['Content-Type'] = KINESIS_CONTENT_TYPE;
        }
        return sendRaw(res, entry, rule.status, body, { ...headers, ...rule.headers });
      }
      case 'drop': {
        const phase = rule.phase ?? 'beforeForward';
        if (phase === 'beforeForward') return drop(req, entry);
        const up = await forwardBuffered(entry, entry.rawBody, signal);
        if (phase === 'afterForward') return drop(req, entry);
        res.writeHead(up.status, withCors(entry, responseHeaders(up.headers, up.body.length)));
        entry.status = up.status;
        const half = up.body.subarray(0, Math.floor(up.body.length / 2));
        await new Promise<void>((resolve) => res.write(half, () => resolve()));
        return drop(req, entry);
      }
      case 'delay': {
        if ((rule.phase ?? 'beforeForward') === 'beforeForward') {
          await sleep(rule.ms, signal);
          return passThrough(entry, entry.rawBody, res, signal);
        }
        const up = await forwardBuffered(entry, entry.rawBody, signal);
        await sleep(rule.ms, signal);
        return relay(res, entry, up);
      }
      case 'skewDate': {
        const now = Date.now() + (rule.offsetMs ?? 0);
        entry.fault!.message = skew;
        const dateHeader: Record<string, string> = rule.sendDate === false ? {} : { Date: new Date(now).toUTCString() };
        if (rule.sendDate === false) res.sendDate = false;
        return sendAwsError(res, entry, 400, 'InvalidSignatureException', skew ?? 'Signature expired', dateHeader);
      }
    }
  }

  async function partialFailure(
    rule: PartialFailureFault,
    entry: ProxiedRequest,
    res: ServerResponse,
    signal: AbortSignal,
  ): Promise<void> {
    const records: unknown[] | undefined = Array.isArray(entry.body?.Records) ? entry.body.Records : undefined;
    if (records === undefined) {
      entry.fault!.failedIndexes = [];
      return relay(res, entry, await forwardBuffered(entry, entry.rawBody, signal));
    }
    const n = records.length;
    const failed = new Set<number>();
    if (rule.failIndexes !== undefined) {
      for (const i of rule.failIndexes) if (Number.isInteger(i) && i >= 0 && i < n) failed.add(i);
    } else {
      const count = Math.min(n, Math.max(0, Math.round(n * (rule.failRatio ?? 0.5))));
      const order = Array.from({ length: n }, (_, i) => i);
      for (let i = 0; i < count; i++) {
        const j = i + Math.floor(random() * (n - i));
        [order[i], order[j]] = [order[j]!, order[i]!];
        failed.add(order[i]!);
      }
    }
    const failedIndexes = [...failed].sort((a, b) => a - b);
    entry.fault!.failedIndexes = failedIndexes;
    const codes = rule.errorCodes?.length ? rule.errorCodes : (['ProvisionedThroughputExceededException'] as const);
    const stream = streamNameOf(entry.body);
    const account = accountOf(entry.body);
    const failedEntry = (): { ErrorCode: string; ErrorMessage: string } => {
      const code = codes.length === 1 ? codes[0]! : codes[Math.floor(random() * codes.length)]!;
      return {
        ErrorCode: code,
        ErrorMessage:
          code === 'InternalFailure'
            ? 'Internal service failure.'
            : `Rate exceeded for shard shardId-000000000000 in stream ${stream} under account ${account}.`,
      };
    };
    const kept = Array.from({ length: n }, (_, i) => i).filter((i) => !failed.has(i));

    if (kept.length === 0) {
      const body = {
        EncryptionType: 'NONE',
        FailedRecordCount: n,
        Records: records.map(() => failedEntry()),
      };
      return sendRaw(res, entry, 200, JSON.stringify(body), awsHeaders());
    }
    const subset = failed.size === 0 ? entry.body : { ...entry.body, Records: kept.map((i) => records[i]) };
    if (failed.size > 0) entry.forwardedBody = subset;
    const up = await forwardBuffered(entry, Buffer.from(JSON.stringify(subset)), signal);
    const parsed = up.status === 200 ? parseJson(up.body) : undefined;
    if (!Array.isArray(parsed?.Records) || parsed.Records.length !== kept.length) {
      // Upstream refused the subset (e.g. ResourceNotFoundException): the client sees that instead.
      entry.fault!.failedIndexes = [];
      return relay(res, entry, up);
    }
    const merged: unknown[] = new Array(n);
    kept.forEach((original, j) => (merged[original] = parsed.Records[j]));
    for (const i of failedIndexes) merged[i] = failedEntry();
    const body = {
      ...parsed,
      FailedRecordCount: (typeof parsed.FailedRecordCount === 'number' ? parsed.FailedRecordCount : 0) + failed.size,
      Records: merged,
    };
    return relay(res, entry, { ...up, body: Buffer.from(JSON.stringify(body)) });
  }

  function drop(req: IncomingMessage, entry: ProxiedRequest): void {
    entry.outcome = 'dropped';
    req.socket.destroy();
  }

  function upstreamOptions(entry: ProxiedRequest, body: Buffer, signal: AbortSignal) {
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(entry.headers)) {
      if (!HOP_BY_HOP.has(name) && name !== 'content-length') headers[name] = value;
    }
    headers['content-length'] = String(body.length);
    if (!preserveHost) headers.host = upstreamUrl.host;
    return {
      protocol: upstreamUrl.protocol,
      hostname: upstreamUrl.hostname,
      port: upstreamUrl.port,
      method: entry.method,
      path: basePath + entry.path,
      headers,
      agent,
      signal,
    };
  }

  function openUpstream(entry: ProxiedRequest, body: Buffer, signal: AbortSignal): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const options = upstreamOptions(entry, body, signal);
      const upstreamReq = isHttps ? httpsRequest(options, resolve) : httpRequest(options, resolve);
      upstreamReq.once('error', reject);
      entry.forwarded = true;
      upstreamReq.end(body);
    });
  }

  async function forwardBuffered(entry: ProxiedRequest, body: Buffer, signal: AbortSignal): Promise<UpstreamResponse> {
    const upstreamRes = await openUpstream(entry, body, signal);
    const chunks: Buffer[] = [];
    for await (const chunk of upstreamRes) chunks.push(chunk as Buffer);
    entry.upstreamStatus = upstreamRes.statusCode ?? 502;
    return { status: entry.upstreamStatus, headers: rawHeaderObject(upstreamRes.rawHeaders), body: Buffer.concat(chunks) };
  }

  async function passThrough(
    entry: ProxiedRequest,
    body: Buffer,
    res: ServerResponse,
    signal: AbortSignal,
  ): Promise<void> {
    const upstreamRes = await openUpstream(entry, body, signal);
    entry.upstreamStatus = upstreamRes.statusCode ?? 502;
    const headers = rawHeaderObject(upstreamRes.rawHeaders);
    for (const name of Object.keys(headers)) if (HOP_BY_HOP.has(name.toLowerCase())) delete headers[name];
    res.writeHead(entry.upstreamStatus, headers);
    entry.status = entry.upstreamStatus;
    for await (const chunk of upstreamRes) {
      if (!res.write(chunk)) await new Promise<void>((resolve) => res.once('drain', resolve));
    }
    await new Promise<void>((resolve) => res.end(resolve));
    entry.outcome = 'answered';
  }

  function relay(res: ServerResponse, entry: ProxiedRequest, up: UpstreamResponse): void {
    entry.status = up.status;
    entry.outcome = 'answered';
    res.writeHead(up.status, withCors(entry, responseHeaders(up.headers, up.body.length)));
    res.end(up.body);
  }

  function sendAwsError(
    res: ServerResponse,
    entry: ProxiedRequest,
    status: number,
    errorType: string,
    message: string,
    extra: Record<string, string> = {},
  ): void {
    sendRaw(res, entry, status, JSON.stringify({ __type: errorType, message }), {
      ...awsHeaders(),
      'x-amzn-ErrorType': errorType,
      ...extra,
    });
  }

  function sendRaw(
    res: ServerResponse,
    entry: ProxiedRequest,
    status: number,
    body: string | Buffer,
    headers: Record<string, string>,
  ): void {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    entry.status = status;
    entry.outcome = 'answered';
    res.writeHead(status, withCors(entry, { ...headers, 'Content-Length': String(bytes.length) }));
    res.end(bytes);
  }

  function withCors(entry: ProxiedRequest, headers: Record<string, string | string[]>) {
    if (entry.headers.origin === undefined) return headers;
    const lower = new Set(Object.keys(headers).map((name) => name.toLowerCase()));
    const cors: Record<string, string> = {};
    if (!lower.has('access-control-allow-origin')) cors['Access-Control-Allow-Origin'] = '*';
    if (!lower.has('access-control-expose-headers')) cors['Access-Control-Expose-Headers'] = CORS_EXPOSE_HEADERS;
    return { ...cors, ...headers };
  }

  function sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(new Cancelled('aborted'));
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(new Cancelled('aborted'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    upstream,
    get requests() {
      return log;
    },
    setFaults(next) {
      rules = next.map((rule, index) => ({
        rule,
        index,
        remaining:
          rule.times ?? (rule.fault === 'skewDate' || rule.probability !== undefined ? Number.POSITIVE_INFINITY : 1),
      }));
    },
    reset() {
      rules = [];
      log = [];
      seq = 0;
      random = seededRandom(seed);
    },
    clearRequests() {
      log = [];
      seq = 0;
    },
    async idle(timeoutMs = 5_000) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`fault-proxy: requests still in flight after ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([Promise.all(log.map((entry) => entry.settled)), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    close() {
      closing ??= (async () => {
        closed = true;
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const controller of inFlight) controller.abort(new Cancelled('proxy closed'));
        for (const socket of sockets) socket.destroy();
        agent.destroy();
        await stopped;
      })();
      return closing;
    },
  };
}

function flattenHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

// Keeps the upstream's header-name casing (rawHeaders) so clients see what kinesis-local sent.
function rawHeaderObject(raw: string[]): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const existing = headers[name];
    headers[name] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
  }
  return headers;
}

function responseHeaders(headers: Record<string, string | string[]>, length: number): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (!HOP_BY_HOP.has(lower) && lower !== 'content-length') out[name] = value;
  }
  out['Content-Length'] = String(length);
  return out;
}

function awsHeaders(): Record<string, string> {
  return {
    'Content-Type': KINESIS_CONTENT_TYPE,
    'x-amzn-RequestId': randomUUID(),
    'x-amz-id-2': randomBytes(72).toString('base64'),
  };
}

function parseJson(bytes: Buffer): any {
  if (bytes.length === 0) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

function streamNameOf(body: any): string {
  if (typeof body?.StreamName === 'string') return body.StreamName;
  if (typeof body?.StreamARN === 'string') return body.StreamARN.split('/').pop() ?? 'unknown';
  return 'unknown';
}

function accountOf(body: any): string {
  const arn = body?.StreamARN;
  if (typeof arn === 'string') return arn.split(':')[4] ?? EXAMPLE_ACCOUNT;
  return EXAMPLE_ACCOUNT;
}

/**
 * The edge ingest Worker: `POST /collect` takes a JSON array of tracker events
 * (`src/tracker/event.ts`), validates each, enriches the valid ones, writes them to Kinesis and
 * answers per event only after Kinesis has answered. `GET /health` reports the stream's status.
 *
 * With `SESSION_SECRET` set, `/collect` also wants a session token (`?token=`, session.ts) that
 * `POST /session` mints for an allowed origin, after a Turnstile challenge when
 * `TURNSTILE_SECRET_KEY` is set too. The token travels in the URL because `navigator.sendBeacon`,
 * the tracker's last resort while a page unloads, cannot set headers.
 *
 * With `DELIVERY=queue` (wrangler.jsonc `env.queue`), /collect sends the events to a Queue instead
 * and answers once the Queue has them; `queue()` writes the delivered batches to Kinesis (queue.ts).
 *
 * Order of the checks in /collect, cheapest first: route, origin allow-list, preflight, method,
 * configuration (fail closed), rate limit, session token, content type, body size (while reading),
 * JSON, events.
 */
import type { CollectResponse } from '../../src/tracker/event.ts';
import { TRACKER_EVENT_LIMITS } from '../../src/tracker/event.ts';
import { discardBody, readCappedBody } from './body.ts';
import { allowedOrigin, corsHeaders, parseAllowedOrigins, preflightHeaders } from './cors.ts';
import type { Env } from './env.ts';
import { MAX_EVENTS_PER_REQUEST, validateEvent } from './events.ts';
import { describeError, logEvent, streamStatus, writeRecords, type OutgoingRecord, type WriteResult } from './kinesis.ts';
import { consumeBatch, enqueueRecords } from './queue.ts';
import { verifySessionToken, mintSessionToken } from './session.ts';
import { MAX_USER_AGENT_LENGTH, positiveInt, readSessionSettings, readSettings, type IngestedEvent } from './settings.ts';
import { verifyTurnstile } from './turnstile.ts';

const BASE_HEADERS: Record<string, string> = {
  'Content-Type': 'application/json; charset=utf-8',
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
};

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...BASE_HEADERS, ...headers } });
}

/**
 * The rate limiter's key: SHA-256 of client IP and user agent. Only the digest reaches the
 * limiter; the IP is neither logged nor stored nor forwarded.
 */
async function clientKey(request: Request): Promise<string> {
  const ip = request.headers.get('CF-Connecting-IP') ?? '';
  const ua = request.headers.get('User-Agent') ?? '';
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`${ip}\n${ua}`));
  return [...new Uint8Array(digest, 0, 16)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

const UNAVAILABLE = { error: 'service unavailable' };

type Refuse = (status: number, body: unknown, headers: Record<string, string>) => Promise<Response>;

/** A refusal sent before the body is parsed drains (a bounded part of) it first; see discardBody. */
function refuser(request: Request, maxBodyBytes: number): Refuse {
  return async (status, body, headers) => {
    await discardBody(request, maxBodyBytes);
    return json(status, body, headers);
  };
}

/**
 * What every POST route checks first, cheapest first: the origin allow-list (403 without CORS
 * headers), the preflight (204), the method (405). Either the answer, or the allowed origin and
 * its CORS headers.
 */
async function checkPost(
  request: Request,
  env: Env,
  refuse: Refuse,
): Promise<{ answer: Response } | { answer?: undefined; origin: string; cors: Record<string, string> }> {
  const origin = allowedOrigin(request, parseAllowedOrigins(env.ALLOWED_ORIGINS));
  // Responses differ by Origin: tell caches, also on refusals.
  if (origin === undefined) return { answer: await refuse(403, { error: 'origin not allowed' }, { Vary: 'Origin' }) };
  if (request.method === 'OPTIONS') {
    return { answer: new Response(null, { status: 204, headers: { ...preflightHeaders(origin), Vary: 'Origin' } }) };
  }
  const cors = { ...corsHeaders(origin), Vary: 'Origin' };
  if (request.method !== 'POST') return { answer: await refuse(405, { error: 'method not allowed' }, { ...cors, Allow: 'POST, OPTIONS' }) };
  return { origin, cors };
}

async function collect(request: Request, env: Env): Promise<Response> {
  const maxBodyBytes = positiveInt(env.MAX_BODY_BYTES, TRACKER_EVENT_LIMITS.requestBytes);
  const refuse = refuser(request, maxBodyBytes);
  const post = await checkPost(request, env, refuse);
  if (post.answer) return post.answer;
  const { origin, cors } = post;

  // Queue delivery needs no AWS credentials here (the consumer holds them), only the binding.
  const queue = env.DELIVERY === 'queue' ? env.EVENTS_QUEUE : undefined;
  const settings = readSettings(env);
  const configured = env.DELIVERY === 'queue' ? queue !== undefined : settings !== undefined;
  const sessions = readSessionSettings(env);
  if (!configured || env.RATE_LIMITER === undefined || sessions.mode === 'misconfigured') {
    logEvent('error', sessions.mode === 'misconfigured' ? `not configured: ${sessions.reason}` : 'not configured: secrets, vars, the rate limiter or the queue binding are missing');
    return refuse(503, UNAVAILABLE, cors);
  }

  const period = positiveInt(env.RATE_LIMIT_PERIOD_SECONDS, 60);
  const { success } = await env.RATE_LIMITER.limit({ key: await clientKey(request) });
  if (!success) return refuse(429, { error: 'too many requests' }, { ...cors, 'Retry-After': String(period) });

  if (sessions.mode === 'on') {
    const token = new URL(request.url).searchParams.get('token');
    const verdict = await verifySessionToken(sessions.secret, token, origin, Date.now());
    // The tracker keeps the events of a 401 and sends them again, with a new token.
    if (verdict !== 'ok') return refuse(401, { error: `session token ${verdict}` }, cors);
  }

  const contentType = (request.headers.get('Content-Type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (contentType !== 'text/plain' && contentType !== 'application/json') {
    return refuse(415, { error: 'send a JSON array as text/plain or application/json' }, cors);
  }

  const body = await readCappedBody(request, maxBodyBytes);
  if (!body.ok) return json(413, { error: 'request body too large' }, cors);

  let batch: unknown;
  try {
    batch = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(body.bytes));
  } catch {
    return json(400, { error: 'malformed JSON' }, cors);
  }
  if (!Array.isArray(batch) || batch.length === 0) return json(400, { error: 'expected a non-empty JSON array of events' }, cors);
  if (batch.length > MAX_EVENTS_PER_REQUEST) return json(413, { error: `more than ${MAX_EVENTS_PER_REQUEST} events` }, cors);

  const receivedAt = Date.now();
  const country = typeof request.cf?.country === 'string' ? request.cf.country : null;
  const userAgent = request.headers.get('User-Agent')?.slice(0, MAX_USER_AGENT_LENGTH) ?? null;
  const response: CollectResponse = { accepted: [], rejected: [], retry: [] };
  const records: OutgoingRecord[] = [];
  const seen = new Set<string>();
  for (const item of batch) {
    const verdict = validateEvent(item, receivedAt);
    if (!verdict.ok) {
      response.rejected.push({ id: verdict.id, reason: verdict.reason });
      continue;
    }
    // A repeated id inside one request is written once (at-least-once across requests: consumers dedupe by id).
    if (seen.has(verdict.event.id)) continue;
    seen.add(verdict.event.id);
    const ingested: IngestedEvent = { ...verdict.event, receivedAt, country, userAgent };
    records.push({ id: verdict.event.id, partitionKey: verdict.event.sessionId, data: JSON.stringify(ingested) });
  }

  let outcome: WriteResult;
  try {
    outcome = queue !== undefined ? await enqueueRecords(queue, records) : await writeRecords(settings!, records);
  } catch (error) {
    logEvent('error', queue !== undefined ? 'queue send failed' : 'kinesis write failed', describeError(error));
    outcome = { stored: [], retry: records.map((r) => r.id), invalid: [] };
  }
  response.accepted = outcome.stored;
  response.retry = outcome.retry;
  for (const id of outcome.invalid) response.rejected.push({ id, reason: 'record refused by the stream' });

  if (response.accepted.length === 0 && response.retry.length > 0) {
    // Nothing stored: a 5xx makes the tracker back off before resending the batch.
    return json(503, { ...UNAVAILABLE, ...response }, { ...cors, 'Retry-After': '1' });
  }
  if (response.accepted.length === 0 && response.retry.length === 0) return json(400, response, cors);
  return json(200, response, cors);
}

/** Longest `/session` request body: `{"turnstile":"<at most 2,048 characters>"}`. */
const MAX_SESSION_BODY_BYTES = 4096;

/**
 * `POST /session` → `{ token, expiresAt }` for the page's origin. With Turnstile on, the body is
 * `{"turnstile": "<the widget's token>"}`; a missing, spent (`timeout-or-duplicate`) or foreign
 * token is a 401 naming Siteverify's error codes.
 */
async function session(request: Request, env: Env): Promise<Response> {
  const refuse = refuser(request, MAX_SESSION_BODY_BYTES);
  const sessions = readSessionSettings(env);
  if (sessions.mode === 'off') return refuse(404, { error: 'not found' }, {});
  const post = await checkPost(request, env, refuse);
  if (post.answer) return post.answer;
  const { origin, cors } = post;
  if (sessions.mode === 'misconfigured' || env.RATE_LIMITER === undefined) {
    logEvent('error', sessions.mode === 'misconfigured' ? `not configured: ${sessions.reason}` : 'not configured: the rate limiter is missing');
    return refuse(503, UNAVAILABLE, cors);
  }
  const period = positiveInt(env.RATE_LIMIT_PERIOD_SECONDS, 60);
  const { success } = await env.RATE_LIMITER.limit({ key: `session:${await clientKey(request)}` });
  if (!success) return refuse(429, { error: 'too many requests' }, { ...cors, 'Retry-After': String(period) });

  if (sessions.turnstile !== undefined) {
    const body = await readCappedBody(request, MAX_SESSION_BODY_BYTES);
    if (!body.ok) return json(413, { error: 'request body too large' }, cors);
    let turnstileToken: unknown;
    try {
      turnstileToken = (JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(body.bytes)) as { turnstile?: unknown } | null)?.turnstile;
    } catch {
      return json(400, { error: 'malformed JSON' }, cors);
    }
    const verdict = await verifyTurnstile(sessions.turnstile.secret, turnstileToken, new URL(origin).hostname, sessions.turnstile.verifyUrl);
    if (!verdict.ok && verdict.unavailable) {
      logEvent('error', 'turnstile siteverify unavailable', { codes: verdict.codes.join(',') });
      return json(503, UNAVAILABLE, { ...cors, 'Retry-After': '5' });
    }
    if (!verdict.ok) return json(401, { error: 'turnstile check failed', codes: verdict.codes }, cors);
  } else {
    await discardBody(request, MAX_SESSION_BODY_BYTES);
  }
  return json(200, await mintSessionToken(sessions.secret, origin, Date.now(), sessions.ttlSeconds), cors);
}

async function health(request: Request, env: Env): Promise<Response> {
  const origin = allowedOrigin(request, parseAllowedOrigins(env.ALLOWED_ORIGINS));
  const cors: Record<string, string> = origin === undefined ? { Vary: 'Origin' } : { ...corsHeaders(origin), Vary: 'Origin' };
  if (request.method !== 'GET' && request.method !== 'HEAD') return json(405, { error: 'method not allowed' }, { ...cors, Allow: 'GET, HEAD' });
  const settings = readSettings(env);
  if (settings === undefined || env.RATE_LIMITER === undefined) return json(503, { status: 'unavailable' }, cors);
  const { success } = await env.RATE_LIMITER.limit({ key: `health:${await clientKey(request)}` });
  if (!success) return json(429, { error: 'too many requests' }, { ...cors, 'Retry-After': String(positiveInt(env.RATE_LIMIT_PERIOD_SECONDS, 60)) });
  const status = await streamStatus(settings);
  if (status === undefined) return json(503, { status: 'unavailable' }, cors);
  const ok = status === 'ACTIVE' || status === 'UPDATING';
  return json(ok ? 200 : 503, { status: ok ? 'ok' : 'unavailable', stream: status }, cors);
}

export default {
  async fetch(request, env): Promise<Response> {
    const { pathname } = new URL(request.url);
    try {
      if (pathname === '/collect') return await collect(request, env);
      if (pathname === '/session') return await session(request, env);
      if (pathname === '/health') return await health(request, env);
      return json(404, { error: 'not found' });
    } catch (error) {
      logEvent('error', 'unhandled error', describeError(error));
      return json(500, { error: 'internal error' });
    }
  },
  async queue(batch, env): Promise<void> {
    await consumeBatch(batch, readSettings(env));
  },
} satisfies ExportedHandler<Env>;

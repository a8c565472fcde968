// The ingest Worker's session tokens and Turnstile check (worker-example/src/session.ts and
// turnstile.ts), inside workerd under `wrangler dev`, with real HTTP: TEST-CHECKLIST item 54.
// Siteverify is a local stand-in that behaves as Cloudflare documents it
// (https://developers.cloudflare.com/turnstile/get-started/server-side-validation/): tokens are
// single use, a replay answers `timeout-or-duplicate`, and the answer names the solving hostname.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startIngestWorker, type IngestWorker } from '../../worker-example/dev.mjs';
import { mintSessionToken } from '../../worker-example/src/session.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { createTestStream } from '../support/kinesis-local.ts';
import { makeEvent, storedEvents } from './events.ts';

const ORIGIN = 'http://127.0.0.1:8787';
const OTHER_ORIGIN = 'https://shop.example';
const SESSION_SECRET = `session-secret-${randomUUID()}`;
const TURNSTILE_SECRET = `turnstile-secret-${randomUUID()}`;
const TTL_SECONDS = 600;

/** What the Siteverify stand-in was asked, for the assertions on what the Worker sends. */
const siteverifyRequests: Record<string, unknown>[] = [];

/**
 * Siteverify as documented: `pass:<hostname>:<nonce>` is a token solved on <hostname>, valid once;
 * `down` makes the service fail (HTTP 500); anything else is invalid.
 */
function startSiteverify(): Promise<{ url: string; server: Server }> {
  const spent = new Set<string>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const request = JSON.parse(body) as { secret?: string; response?: string };
      siteverifyRequests.push(request);
      const reply = (status: number, answer: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(answer));
      };
      if (request.response === 'down') return reply(500, {});
      if (request.secret !== TURNSTILE_SECRET) return reply(200, { success: false, 'error-codes': ['invalid-input-secret'] });
      const [kind, hostname] = String(request.response).split(':');
      if (kind !== 'pass') return reply(200, { success: false, 'error-codes': ['invalid-input-response'] });
      if (spent.has(request.response!)) return reply(200, { success: false, 'error-codes': ['timeout-or-duplicate'] });
      spent.add(request.response!);
      return reply(200, { success: true, 'error-codes': [], challenge_ts: new Date().toISOString(), hostname });
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/siteverify`, server })));
}

let kinesisEndpoint: string;
let streamName: string;
let proxy: FaultProxy;
let siteverify: { url: string; server: Server };
let worker: IngestWorker;
let misconfigured: IngestWorker;

beforeAll(async () => {
  kinesisEndpoint = inject('kinesisEndpoint');
  streamName = await createTestStream(kinesisEndpoint);
  proxy = await startFaultProxy(kinesisEndpoint);
  siteverify = await startSiteverify();
  [worker, misconfigured] = await Promise.all([
    startIngestWorker({
      kinesisEndpoint: proxy.url,
      streamName,
      allowedOrigins: [ORIGIN, OTHER_ORIGIN],
      secrets: { SESSION_SECRET, TURNSTILE_SECRET_KEY: TURNSTILE_SECRET },
      vars: { TURNSTILE_VERIFY_URL: siteverify.url, SESSION_TTL_SECONDS: String(TTL_SECONDS) },
    }),
    // A Turnstile key without a session secret protects nothing: the Worker must refuse to run open.
    startIngestWorker({
      kinesisEndpoint: proxy.url,
      streamName,
      allowedOrigins: ORIGIN,
      secrets: { TURNSTILE_SECRET_KEY: TURNSTILE_SECRET },
      vars: { TURNSTILE_VERIFY_URL: siteverify.url },
    }),
  ]);
}, 90_000);

afterAll(async () => {
  await Promise.all([worker?.stop(), misconfigured?.stop()]);
  await proxy?.close();
  await new Promise((resolve) => siteverify?.server.close(resolve));
});

async function call(path: string, init: { origin?: string; body?: string; target?: IngestWorker } = {}) {
  const response = await fetch(`${(init.target ?? worker).url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'text/plain;charset=UTF-8', Origin: init.origin ?? ORIGIN, 'User-Agent': `session-test/${randomUUID()}` },
    body: init.body ?? '',
    signal: AbortSignal.timeout(20_000),
  });
  const text = await response.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: response.status, headers: response.headers, body };
}

/** A session token from the Worker, after a fresh Turnstile challenge solved on `origin`'s host. */
async function session(origin = ORIGIN): Promise<{ token: string; expiresAt: number }> {
  const answer = await call('/session', { origin, body: JSON.stringify({ turnstile: `pass:${new URL(origin).hostname}:${randomUUID()}` }) });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body;
}

function collect(token: string | undefined, events = [makeEvent()], origin = ORIGIN) {
  return call(token === undefined ? '/collect' : `/collect?token=${encodeURIComponent(token)}`, { origin, body: JSON.stringify(events) });
}

function putRecordsSince(seq: number): number {
  return proxy.requests.filter((request) => request.seq >= seq && request.operation === 'PutRecords').length;
}

describe('ingest Worker session tokens', () => {
  it('mints a token after a Turnstile challenge; /collect with it stores the events', async () => {
    const before = siteverifyRequests.length;
    const startedAt = Date.now();
    const { token, expiresAt } = await session();
    // The Worker sent Siteverify its secret and the widget's token, and no client IP.
    expect(siteverifyRequests.slice(before)).toEqual([{ secret: TURNSTILE_SECRET, response: expect.stringMatching(/^pass:127\.0\.0\.1:/) }]);
    expect(expiresAt).toBeGreaterThanOrEqual(Math.floor(startedAt / 1000) * 1000 + (TTL_SECONDS - 1) * 1000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + TTL_SECONDS * 1000);

    const events = [makeEvent(), makeEvent()];
    const answer = await collect(token, events);
    expect(answer.status).toBe(200);
    expect(answer.body.accepted.sort()).toEqual(events.map((event) => event.id).sort());
    expect((await storedEvents(kinesisEndpoint, streamName, events.map((event) => event.id))).length).toBe(2);
  });

  it('answers 401 to /collect without a token, and forwards nothing', async () => {
    const seq = proxy.requests.length;
    const answer = await collect(undefined);
    expect(answer.status).toBe(401);
    expect(answer.body).toEqual({ error: 'session token missing' });
    // The tracker must be able to read the 401 (to keep its events): CORS headers are there.
    expect(answer.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(putRecordsSince(seq)).toBe(0);
  });

  it('answers 401 to a tampered, a malformed, an expired or another origin\'s token', async () => {
    const seq = proxy.requests.length;
    const { token } = await session();
    const [payload, mac] = token.split('.');
    // Same MAC, payload claiming the other origin: the signature no longer matches.
    const forged = Buffer.from(JSON.stringify({ o: OTHER_ORIGIN, e: Math.floor(Date.now() / 1000) + 600 })).toString('base64url');
    const forgedAnswer = await collect(`${forged}.${mac}`, undefined, OTHER_ORIGIN);
    expect(forgedAnswer.status).toBe(401);
    expect(forgedAnswer.body).toEqual({ error: 'session token bad-signature' });
    const flipped = await collect(`${payload}.${mac!.slice(0, -2)}${mac!.endsWith('AA') ? 'BA' : 'AA'}`);
    expect(flipped.status).toBe(401);
    expect(flipped.body).toEqual({ error: 'session token bad-signature' });
    const malformed = await collect('not-a-token');
    expect(malformed.status).toBe(401);
    expect(malformed.body).toEqual({ error: 'session token malformed' });
    // Correctly signed (the test holds the secret) but an hour old.
    const old = await mintSessionToken(SESSION_SECRET, ORIGIN, Date.now() - 3_600_000, 60);
    const expired = await collect(old.token);
    expect(expired.status).toBe(401);
    expect(expired.body).toEqual({ error: 'session token expired' });
    // Minted for ORIGIN, sent from OTHER_ORIGIN (both allowed).
    const wrongOrigin = await collect(token, undefined, OTHER_ORIGIN);
    expect(wrongOrigin.status).toBe(401);
    expect(wrongOrigin.body).toEqual({ error: 'session token wrong-origin' });
    expect(putRecordsSince(seq)).toBe(0);
    // The genuine token still works from its own origin.
    expect((await collect(token)).status).toBe(200);
  });

  it('refuses a replayed Turnstile token with timeout-or-duplicate', async () => {
    const turnstile = `pass:127.0.0.1:${randomUUID()}`;
    const first = await call('/session', { body: JSON.stringify({ turnstile }) });
    expect(first.status).toBe(200);
    const replay = await call('/session', { body: JSON.stringify({ turnstile }) });
    expect(replay.status).toBe(401);
    expect(replay.body).toEqual({ error: 'turnstile check failed', codes: ['timeout-or-duplicate'] });
  });

  it('refuses a missing, an invalid, or another site\'s Turnstile token', async () => {
    const missing = await call('/session', { body: '{}' });
    expect(missing.status).toBe(401);
    expect(missing.body).toEqual({ error: 'turnstile check failed', codes: ['missing-input-response'] });
    const invalid = await call('/session', { body: JSON.stringify({ turnstile: 'forged' }) });
    expect(invalid.status).toBe(401);
    expect(invalid.body).toEqual({ error: 'turnstile check failed', codes: ['invalid-input-response'] });
    // Solved on another site that embeds the same sitekey.
    const foreign = await call('/session', { body: JSON.stringify({ turnstile: `pass:evil.example:${randomUUID()}` }) });
    expect(foreign.status).toBe(401);
    expect(foreign.body.codes).toEqual(['hostname-mismatch']);
    expect((await call('/session', { body: 'not json' })).status).toBe(400);
  });

  it('fails closed with 503 when Siteverify is down', async () => {
    const answer = await call('/session', { body: JSON.stringify({ turnstile: 'down' }) });
    expect(answer.status).toBe(503);
    expect(answer.body).toEqual({ error: 'service unavailable' });
  });

  it('answers 403 without CORS headers to /session from an origin not in the allow-list', async () => {
    const answer = await call('/session', { origin: 'https://evil.example', body: JSON.stringify({ turnstile: `pass:evil.example:${randomUUID()}` }) });
    expect(answer.status).toBe(403);
    expect(answer.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('fails closed when TURNSTILE_SECRET_KEY is set without SESSION_SECRET', async () => {
    const seq = proxy.requests.length;
    expect((await call('/collect', { target: misconfigured, body: JSON.stringify([makeEvent()]) })).status).toBe(503);
    expect((await call('/session', { target: misconfigured, body: JSON.stringify({ turnstile: `pass:127.0.0.1:${randomUUID()}` }) })).status).toBe(503);
    expect(putRecordsSince(seq)).toBe(0);
    // The reason is logged for the operator (wrangler relays workerd's console a little later).
    await expect.poll(() => misconfigured.output(), { timeout: 10_000 }).toContain('TURNSTILE_SECRET_KEY is set without SESSION_SECRET');
  });
});

// The edge ingest Worker (worker-example/) inside workerd, run by `wrangler dev`, against the local
// Kinesis through the fault proxy, with real HTTP requests. Covers TEST-CHECKLIST items 6 (what a
// page's request headers cannot change upstream), 7 and 51-60. Two Workers for the whole file: a
// configured one, and one without secrets.
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseJsonc, startIngestWorker, type IngestWorker } from '../../worker-example/dev.mjs';
import type { TrackerEvent } from '../../src/tracker/event.ts';
import { parseRequestDate, startFaultProxy, type FaultProxy, type ProxiedRequest } from '../support/fault-proxy.ts';
import { createTestStream } from '../support/kinesis-local.ts';
import { makeEvent, storedEvents as readBack } from './events.ts';

const ORIGIN = 'http://127.0.0.1:8787';
// Temporary credentials, so the session token's handling is covered too.
const CREDENTIALS = {
  accessKeyId: 'ASIAWORKERTEST',
  secretAccessKey: `worker-test-secret-${randomUUID()}`,
  sessionToken: `worker-test-token-${randomUUID()}`,
};
const RATE_LIMIT = 20;
// Above the default (64 KiB, the tracker's keepalive budget) so that 500 small events fit: the
// event-count cap is reached before the byte cap.
const MAX_BODY_BYTES = 96 * 1024;
// Addresses a client could claim; none may reach a record, an upstream request or a log.
const SPOOFED_IPS = ['203.0.113.7', '198.51.100.9', '192.0.2.44'];
const EXAMPLE_ACCOUNT = '123456789012';

let kinesisEndpoint: string;
let streamName: string;
let proxy: FaultProxy;
let worker: IngestWorker;
let unconfigured: IngestWorker;

beforeAll(async () => {
  kinesisEndpoint = inject('kinesisEndpoint');
  streamName = await createTestStream(kinesisEndpoint, { shardCount: 2 });
  proxy = await startFaultProxy(kinesisEndpoint);
  [worker, unconfigured] = await Promise.all([
    startIngestWorker({
      kinesisEndpoint: proxy.url,
      streamName,
      allowedOrigins: [ORIGIN, 'https://shop.example'],
      credentials: CREDENTIALS,
      rateLimit: { limit: RATE_LIMIT, period: 60 },
      maxBodyBytes: MAX_BODY_BYTES,
      country: 'NL',
    }),
    startIngestWorker({
      kinesisEndpoint: proxy.url,
      streamName,
      allowedOrigins: ORIGIN,
      credentials: null,
      // Lookalike names in vars must not be taken for credentials.
      // (wrangler prints vars at start-up, one more reason why credentials are never vars).
      vars: { AWS_ACCESS_KEY: 'AKIDFROMVARS', AWS_SECRET_KEY: 'secret-from-vars', ACCESS_KEY_ID: 'AKIDFROMVARS' },
    }),
  ]);
}, 90_000);

// Every Kinesis operation the Worker called during this file, for the IAM policy check.
const operationsCalled = new Set<string>();
afterEach(() => {
  for (const request of proxy?.requests ?? []) operationsCalled.add(request.operation ?? '(none)');
});

afterAll(async () => {
  await Promise.all([worker?.stop(), unconfigured?.stop()]);
  await proxy?.close();
});

/** Every test has its own user agent, hence its own rate-limit bucket. */
function agent(): string {
  return `worker-test/${randomUUID()}`;
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

async function post(body: string, init: { origin?: string | null; headers?: Record<string, string>; target?: IngestWorker; path?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { 'Content-Type': 'text/plain;charset=UTF-8', 'User-Agent': agent(), ...init.headers };
  const origin = init.origin === undefined ? ORIGIN : init.origin;
  if (origin !== null) headers.Origin = origin;
  const send = async () =>
    answer(await fetch(`${(init.target ?? worker).url}${init.path ?? '/collect'}`, { method: 'POST', headers, body, signal: AbortSignal.timeout(20_000) }));
  const result = await send();
  return isDevProxyHiccup(result) ? send() : result;
}

/**
 * wrangler dev's local proxy answers this 503 itself when its connection to workerd breaks, e.g.
 * right after the Worker answered 413 while the proxy was still uploading the body. It never
 * reaches the Worker (Cloudflare's edge has no such proxy), so the request is simply sent again.
 */
function isDevProxyHiccup(result: Answer): boolean {
  return result.status === 503 && result.text.startsWith('Your worker restarted mid-request');
}

async function answer(response: Response): Promise<Answer> {
  const text = await response.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, text, body };
}

function corsHeaderNames(headers: Headers): string[] {
  return [...headers.keys()].filter((name) => name.startsWith('access-control-'));
}

/** Records of the test stream whose event id is one of these. */
function storedEvents(ids: readonly string[]): ReturnType<typeof readBack> {
  return readBack(kinesisEndpoint, streamName, ids);
}

function putRecordsRequests(): ProxiedRequest[] {
  return proxy.requests.filter((r) => r.operation === 'PutRecords');
}

/**
 * Checks a SigV4 `Authorization` header against the bytes the proxy received, with node:crypto
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html).
 */
function verifySignature(request: ProxiedRequest, secret: string): boolean {
  const auth = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
    request.headers.authorization ?? '',
  );
  if (!auth) return false;
  const [, , date, region, service, signedHeaders, signature] = auth as unknown as string[];
  const names = signedHeaders!.split(';');
  const canonicalHeaders = names.map((name) => `${name}:${(request.headers[name] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalRequest = [
    request.method,
    request.path,
    '',
    canonicalHeaders,
    signedHeaders,
    createHash('sha256').update(request.rawBody).digest('hex'),
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', request.headers['x-amz-date'], scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  let key: Buffer = createHmac('sha256', `AWS4${secret}`).update(date!).digest();
  for (const part of [region!, service!, 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  return createHmac('sha256', key).update(stringToSign).digest('hex') === signature;
}

describe('CORS', () => {
  it('refuses an origin outside the allow-list with 403 and no CORS headers', async () => {
    for (const origin of ['https://evil.example', 'http://127.0.0.1:8788', `${ORIGIN}.evil.example`, 'null', ORIGIN.toUpperCase()]) {
      const result = await post(JSON.stringify([makeEvent()]), { origin });
      expect(result.status, origin).toBe(403);
      expect(corsHeaderNames(result.headers), origin).toEqual([]);
    }
  });

  it('drains a refused body within the cap, so the next request on the connection reaches the Worker', async () => {
    const big = JSON.stringify([makeEvent({ properties: { pad: 'x'.repeat(8000) } })]).padEnd(MAX_BODY_BYTES - 1024, ' ');
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      for (const [origin, body] of [['https://evil.example', big], [ORIGIN, '[]']] as const) {
        const response = await fetch(`${worker.url}/collect`, { method: 'POST', headers: { Origin: origin, 'Content-Type': 'text/plain', 'User-Agent': agent() }, body });
        await response.arrayBuffer();
        statuses.push(response.status);
      }
    }
    expect(statuses.filter((status, i) => status !== (i % 2 === 0 ? 403 : 400))).toEqual([]);
  });

  it('refuses a request without Origin', async () => {
    const result = await post(JSON.stringify([makeEvent()]), { origin: null });
    expect(result.status).toBe(403);
    expect(corsHeaderNames(result.headers)).toEqual([]);
  });

  it('answers an allowed origin with its exact origin and Vary: Origin', async () => {
    for (const origin of [ORIGIN, 'https://shop.example']) {
      const result = await post(JSON.stringify([makeEvent()]), { origin });
      expect(result.status).toBe(200);
      expect(result.headers.get('access-control-allow-origin')).toBe(origin);
      expect(result.headers.get('vary')).toMatch(/\bOrigin\b/);
      expect(result.headers.get('access-control-allow-credentials')).toBeNull();
    }
  });

  it('answers a preflight with 204 and only the allowed methods and headers', async () => {
    const response = await fetch(`${worker.url}/collect`, {
      method: 'OPTIONS',
      headers: {
        Origin: ORIGIN,
        'Access-Control-Request-Method': 'PUT',
        'Access-Control-Request-Headers': 'content-type, x-evil, authorization',
      },
    });
    await response.arrayBuffer();
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(response.headers.get('access-control-allow-methods')).toBe('POST, OPTIONS');
    expect(response.headers.get('access-control-allow-headers')).toBe('Content-Type');
    expect(response.headers.get('vary')).toMatch(/\bOrigin\b/);
  });

  it('refuses a preflight from an unknown origin with 403 and no CORS headers', async () => {
    const response = await fetch(`${worker.url}/collect`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' },
    });
    await response.arrayBuffer();
    expect(response.status).toBe(403);
    expect(corsHeaderNames(response.headers)).toEqual([]);
  });

  it('exposes Retry-After to the page and refuses other methods with 405', async () => {
    const response = await fetch(`${worker.url}/collect`, { method: 'PUT', headers: { Origin: ORIGIN }, body: '[]' });
    await response.arrayBuffer();
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST, OPTIONS');
    expect(response.headers.get('access-control-expose-headers')).toBe('Retry-After');
  });
});

describe('request body', () => {
  it('answers 413 for a declared Content-Length over the cap', async () => {
    const body = JSON.stringify([makeEvent({ properties: { pad: 'x'.repeat(7000) } })]).padEnd(MAX_BODY_BYTES + 1, ' ');
    const result = await post(body);
    expect(result.status).toBe(413);
    expect(result.headers.get('access-control-allow-origin')).toBe(ORIGIN);
  });

  it('answers 413 for a chunked body while it is still being sent, before parsing it', async () => {
    // No Content-Length; not JSON; and the stream never ends: only a cap enforced while reading
    // can answer, and answering 413 (not 400) shows the parser never ran.
    const url = new URL(worker.url);
    const started = Date.now();
    const send = () => new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: '/collect',
          headers: { Origin: ORIGIN, 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked', 'User-Agent': agent() },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          // The server answers and closes while we are still writing: the reset may cut the body
          // short, but the status line already arrived.
          res.on('error', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      // A reset before any response line is the dev proxy dropping the connection: try again.
      req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? resolve({ status: 0, body: '' }) : reject(error)));
      let sent = 0;
      const timer = setInterval(() => {
        if (sent > 4 * MAX_BODY_BYTES) return; // then stall, never end
        req.write('{'.repeat(4096));
        sent += 4096;
      }, 2);
      req.once('close', () => clearInterval(timer));
      setTimeout(() => {
        clearInterval(timer);
        req.destroy(new Error('no answer within 10 s'));
      }, 10_000).unref();
    });
    let result = await send();
    for (let i = 0; i < 3 && (result.status === 0 || isDevProxyHiccup({ status: result.status, text: result.body } as Answer)); i++) result = await send();
    expect(result.status).toBe(413);
    // The body may be cut by the reset that follows an early answer; when it arrived, it is generic.
    if (result.body.endsWith('}')) expect(JSON.parse(result.body)).toEqual({ error: 'request body too large' });
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('accepts 500 events in one request and refuses 501 with 413', async () => {
    const sessionId = randomUUID().slice(0, 4);
    const prefix = randomUUID().slice(0, 4);
    const small = (i: number) => ({ id: `${prefix}${i}`, type: 'page', name: '/', ts: Date.now(), anonymousId: 'a', sessionId, url: '', referrer: '', viewport: { w: 1, h: 1 }, properties: {} });
    const many = Array.from({ length: 501 }, (_, i) => small(i));
    expect(JSON.stringify(many).length).toBeLessThan(MAX_BODY_BYTES);
    const tooMany = await post(JSON.stringify(many));
    expect(tooMany.status).toBe(413);
    expect(tooMany.body).toEqual({ error: 'more than 500 events' });

    proxy.clearRequests();
    const ok = await post(JSON.stringify(many.slice(0, 500)));
    expect(ok.status).toBe(200);
    expect(ok.body.accepted).toHaveLength(500);
    // One PutRecords for 500 events: one subrequest.
    expect(putRecordsRequests()).toHaveLength(1);
  });

  it.each<[string, string | Uint8Array<ArrayBuffer>, Record<string, string>]>([
    ['malformed JSON', '[{"id": ', { error: 'malformed JSON' }],
    ['invalid UTF-8', new Uint8Array([0x5b, 0x22, 0xff, 0xfe, 0x22, 0x5d]), { error: 'malformed JSON' }],
    ['an object instead of an array', '{"id":"x"}', { error: 'expected a non-empty JSON array of events' }],
    ['an empty array', '[]', { error: 'expected a non-empty JSON array of events' }],
    ['an empty body', '', { error: 'malformed JSON' }],
  ])('answers %s with 400 and a generic body', async (_name, body, expected) => {
    const response = await fetch(`${worker.url}/collect`, {
      method: 'POST',
      headers: { Origin: ORIGIN, 'Content-Type': 'text/plain', 'User-Agent': agent() },
      body,
    });
    const result = await answer(response);
    expect(result.status).toBe(400);
    expect(result.body).toEqual(expected);
  });

  it('refuses a content type other than text/plain or application/json with 415', async () => {
    const result = await post(JSON.stringify([makeEvent()]), { headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(result.status).toBe(415);
    const json = await post(JSON.stringify([makeEvent()]), { headers: { 'Content-Type': 'application/json' } });
    expect(json.status).toBe(200);
  });
});

describe('per-event validation', () => {
  const deep = (levels: number): Record<string, unknown> => {
    let value: Record<string, unknown> = {};
    for (let i = 1; i < levels; i++) value = { a: value };
    return value;
  };

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['a missing field', { name: undefined }, /^name: is required/],
    ['an extra field', { ip: '203.0.113.7' }, /^unknown field: ip/],
    ['an unknown type', { type: 'pageview' }, /^type: not one of/],
    ['an id over 64 characters', { id: 'i'.repeat(65) }, /^id: too long \(max 64\)/],
    ['a name over 128 characters', { name: 'n'.repeat(129) }, /^name: too long \(max 128\)/],
    ['a url over 2048 characters', { url: `https://x.example/${'u'.repeat(2040)}` }, /^url: too long \(max 2048\)/],
    ['a referrer over 2048 characters', { referrer: 'r'.repeat(2049) }, /^referrer: too long/],
    ['a userId over 256 characters', { userId: 'u'.repeat(257) }, /^userId: too long/],
    ['a fractional ts', { ts: 1.5 }, /^ts: /],
    ['a ts 25 h in the past', { ts: Date.now() - 25 * 3_600_000 }, /^ts: more than 24 h/],
    ['a ts 25 h in the future', { ts: Date.now() + 25 * 3_600_000 }, /^ts: more than 24 h/],
    ['a negative viewport', { viewport: { w: -1, h: 1 } }, /^viewport\.w: too small/],
    ['properties as an array', { properties: [1, 2] }, /^properties: /],
    ['properties as null', { properties: null }, /^properties: /],
    ['properties over 8 KiB', { properties: { pad: 'p'.repeat(8200) } }, /^properties: larger than 8192 bytes/],
    ['properties nested 9 deep', { properties: deep(9) }, /^properties: nested deeper than 8/],
  ])('rejects %s and still accepts its valid siblings', async (_name, overrides, reason) => {
    const bad = makeEvent(overrides as Partial<TrackerEvent>);
    if ('name' in overrides && overrides.name === undefined) delete (bad as Partial<TrackerEvent>).name;
    const good = makeEvent();
    const result = await post(JSON.stringify([good, bad]));
    expect(result.status).toBe(200);
    expect(result.body.accepted).toEqual([good.id]);
    expect(result.body.retry).toEqual([]);
    expect(result.body.rejected).toHaveLength(1);
    const expectedId = typeof bad.id === 'string' && bad.id.length <= 64 ? bad.id : '';
    expect(result.body.rejected[0].id).toBe(expectedId);
    expect(result.body.rejected[0].reason).toMatch(reason);
    expect(result.body.rejected[0].reason.length).toBeLessThan(200);
  });

  it('accepts every field at its maximum', async () => {
    const event = makeEvent({
      id: 'i'.repeat(64),
      name: 'n'.repeat(128),
      url: 'u'.repeat(2048),
      referrer: 'r'.repeat(2048),
      userId: 'x'.repeat(256),
      ts: Date.now() - 23 * 3_600_000,
      properties: { pad: 'p'.repeat(8192 - '{"pad":""}'.length), },
      viewport: { w: 100_000, h: 0 },
    });
    const result = await post(JSON.stringify([event]));
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ accepted: [event.id], rejected: [], retry: [] });
  });

  it('answers 400 with per-event reasons when no event is valid, and stores nothing', async () => {
    proxy.clearRequests();
    const bad = [makeEvent({ type: 'nope' as never }), { id: 42 }, 'not an event'];
    const result = await post(JSON.stringify(bad));
    expect(result.status).toBe(400);
    expect(result.body.accepted).toEqual([]);
    expect(result.body.retry).toEqual([]);
    expect(result.body.rejected.map((r: { id: string }) => r.id)).toEqual([bad[0] && (bad[0] as TrackerEvent).id, '', '']);
    expect(result.body.rejected[2].reason).toMatch(/^event: expected object/);
    expect(putRecordsRequests()).toHaveLength(0);
  });

  it('writes a repeated id of one request once and reports it accepted once', async () => {
    const event = makeEvent();
    const result = await post(JSON.stringify([event, { ...event }, event]));
    expect(result.status).toBe(200);
    expect(result.body.accepted).toEqual([event.id]);
    expect(await storedEvents([event.id])).toHaveLength(1);
  });

  it('has no dedupe window across requests: the same id sent twice is accepted twice and stored twice, with that id (at-least-once; consumers dedupe by id)', async () => {
    // The tracker's replay of a batch whose answer it never read: same event, same id, new request.
    const event = makeEvent();
    const first = await post(JSON.stringify([event]));
    const second = await post(JSON.stringify([event]));
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ accepted: [event.id], rejected: [], retry: [] });
    expect(second.status).toBe(200);
    expect(second.body).toEqual({ accepted: [event.id], rejected: [], retry: [] });
    const stored = await storedEvents([event.id]);
    expect(stored).toHaveLength(2);
    // Two copies of the same event, so a consumer keyed by id sees one: only the enrichment differs.
    for (const { record, event: copy } of stored) {
      const { receivedAt: _receivedAt, country: _country, userAgent: _userAgent, ...sent } = copy;
      expect(sent).toEqual(event);
      expect(record.PartitionKey).toBe(event.sessionId);
    }
  });
});

describe('records in the stream', () => {
  it('land with the enrichment, keyed by session id, and without any client address', async () => {
    const userAgent = `Mozilla/5.0 (worker-test) ${randomUUID()}`;
    const events = [makeEvent({ userId: 'user-7' }), makeEvent({ type: 'page', name: '/pricing' }), makeEvent({ type: 'click', name: 'buy' })];
    const before = Date.now();
    const result = await post(JSON.stringify(events), {
      headers: {
        'User-Agent': userAgent,
        'X-Forwarded-For': `${SPOOFED_IPS[0]}, ${SPOOFED_IPS[1]}`,
        'CF-Connecting-IP': SPOOFED_IPS[2]!,
        'X-Real-IP': SPOOFED_IPS[0]!,
        Cookie: 'session=secret-cookie',
      },
    });
    const after = Date.now();
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ accepted: events.map((e) => e.id), rejected: [], retry: [] });

    const stored = await storedEvents(events.map((e) => e.id));
    expect(stored).toHaveLength(3);
    for (const { record, event } of stored) {
      const sent = events.find((e) => e.id === event.id)!;
      expect(record.PartitionKey).toBe(sent.sessionId);
      const { receivedAt, country, userAgent: ua, ...rest } = event;
      expect(rest).toEqual(sent);
      expect(receivedAt).toBeGreaterThanOrEqual(before - 1_000);
      expect(receivedAt).toBeLessThanOrEqual(after + 1_000);
      expect(country).toBe('NL');
      expect(ua).toBe(userAgent);
      const data = Buffer.from(record.Data, 'base64').toString('utf8');
      for (const ip of [...SPOOFED_IPS, '127.0.0.1']) expect(data).not.toContain(ip);
      expect(data).not.toContain('secret-cookie');
    }
  });

  it('sends upstream only headers it created, signed over the exact bytes (no client IP, cookie or client SigV4 headers)', async () => {
    proxy.clearRequests();
    const events = [makeEvent(), makeEvent()];
    const result = await post(JSON.stringify(events), {
      headers: {
        'X-Forwarded-For': SPOOFED_IPS[0]!,
        'CF-Connecting-IP': SPOOFED_IPS[1]!,
        Cookie: 'a=b',
        Authorization: 'Bearer client-token',
        // What a page could send to steer the signed request: the signer owns every one of them.
        'X-Amz-Date': '19990101T000000Z',
        'X-Amz-Security-Token': 'client-token',
        'X-Amz-Target': 'Kinesis_20131202.DeleteStream',
        'X-Amz-Content-Sha256': '0000',
      },
    });
    const sentAt = Date.now();
    expect(result.status).toBe(200);
    await proxy.idle();
    // Nothing but the one PutRecords: the page's X-Amz-Target did not become an operation.
    expect(proxy.requests.map((r) => r.headers['x-amz-target'])).toEqual(['Kinesis_20131202.PutRecords']);
    const [upstream] = putRecordsRequests();
    expect(upstream).toBeDefined();
    // verifySignature anchors the whole header: a client value joined to it (`Bearer …, AWS4-…`) fails.
    expect(verifySignature(upstream!, CREDENTIALS.secretAccessKey)).toBe(true);
    expect(upstream!.headers.authorization).toMatch(new RegExp(`^AWS4-HMAC-SHA256 Credential=${CREDENTIALS.accessKeyId}/\\d{8}/us-east-1/kinesis/aws4_request, ?SignedHeaders=`));
    expect(upstream!.headers.authorization).not.toContain('client-token');
    // The Worker's clock, not 1999: a valid signature over the page's date would still be refused by AWS.
    const amzDate = upstream!.headers['x-amz-date']!;
    expect(amzDate).toMatch(/^\d{8}T\d{6}Z$/);
    expect(Math.abs(parseRequestDate(upstream!.headers) - sentAt)).toBeLessThan(5 * 60_000);
    expect(upstream!.headers.authorization).toContain(`Credential=${CREDENTIALS.accessKeyId}/${amzDate.slice(0, 8)}/`);
    // The configured session token, alone (a repeated header would arrive joined with `, `).
    expect(upstream!.headers['x-amz-security-token']).toBe(CREDENTIALS.sessionToken);
    expect(upstream!.headers.authorization).toMatch(/SignedHeaders=[^,]*x-amz-security-token/);
    // The signer hashes the body itself for kinesis and sends no hash header; the page's must not pass.
    expect(upstream!.headers['x-amz-content-sha256']).toBeUndefined();
    expect(JSON.stringify(upstream!.headers)).not.toContain('19990101');
    for (const name of ['cf-connecting-ip', 'x-forwarded-for', 'x-real-ip', 'cookie', 'origin', 'referer', 'forwarded']) {
      expect(upstream!.headers[name], name).toBeUndefined();
    }
    // CF-Worker names the calling Worker's zone; Cloudflare adds it to every subrequest.
    const allowed = new Set(['cf-worker', 'x-amz-security-token', 'host', 'content-type', 'content-length', 'x-amz-target', 'x-amz-date', 'authorization', 'accept-encoding', 'connection', 'user-agent', 'accept']);
    expect(Object.keys(upstream!.headers).filter((name) => !allowed.has(name))).toEqual([]);
    const wire = JSON.stringify(upstream!.headers) + upstream!.rawBody.toString('utf8');
    for (const ip of SPOOFED_IPS) expect(wire).not.toContain(ip);
    expect(upstream!.body.Records).toHaveLength(2);
  });
});

describe('rate limiting', () => {
  it('answers 429 with Retry-After once a client passes the limit, and not another client', async () => {
    // The local limiter counts in fixed 60 s windows: do not start right before a window ends.
    const intoWindow = Date.now() % 60_000;
    if (intoWindow > 55_000) await new Promise((resolve) => setTimeout(resolve, 60_500 - intoWindow));
    const ua = agent();
    const statuses: number[] = [];
    let limited: Answer | undefined;
    for (let i = 0; i < RATE_LIMIT + 1; i++) {
      // Cheap requests: the limiter runs before the body is read.
      const result = await post('[]', { headers: { 'User-Agent': ua } });
      statuses.push(result.status);
      if (result.status === 429) limited = result;
    }
    expect(statuses.slice(0, RATE_LIMIT).every((s) => s === 400)).toBe(true);
    expect(statuses[RATE_LIMIT]).toBe(429);
    expect(limited!.headers.get('retry-after')).toBe('60');
    expect(limited!.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(limited!.body).toEqual({ error: 'too many requests' });

    const other = await post(JSON.stringify([makeEvent()]), { headers: { 'User-Agent': agent() } });
    expect(other.status).toBe(200);
  });
});

describe('failing closed and generic errors', () => {
  it('answers 503 with a generic body when its secrets are missing, ignoring lookalike vars', async () => {
    proxy.clearRequests();
    const result = await post(JSON.stringify([makeEvent()]), { target: unconfigured });
    expect(result.status).toBe(503);
    expect(result.body).toEqual({ error: 'service unavailable' });
    const health = await answer(await fetch(`${unconfigured.url}/health`));
    expect(health.status).toBe(503);
    expect(health.body).toEqual({ status: 'unavailable' });
    expect(proxy.requests).toHaveLength(0);
  });

  it('keeps credentials out of the committed vars', () => {
    const config = parseJsonc(readFileSync(new URL('../../worker-example/wrangler.jsonc', import.meta.url), 'utf8'));
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) expect(config.vars).not.toHaveProperty(name);
    return expect(startIngestWorker({ streamName: 's', allowedOrigins: ORIGIN, vars: { AWS_SECRET_ACCESS_KEY: 'x' } })).rejects.toThrow(/is a secret/);
  });

  it('answers 503 with retry ids and no upstream detail when Kinesis keeps throttling', async () => {
    proxy.reset();
    proxy.setFaults([{ fault: 'throttle', operation: 'PutRecords', times: 100 }]);
    try {
      const events = [makeEvent(), makeEvent()];
      const result = await post(JSON.stringify(events));
      expect(result.status).toBe(503);
      expect(result.headers.get('retry-after')).toBe('1');
      expect(result.body).toEqual({ error: 'service unavailable', accepted: [], rejected: [], retry: events.map((e) => e.id) });
      for (const leak of [EXAMPLE_ACCOUNT, streamName, 'Rate exceeded', 'Throughput', 'shardId', 'arn:aws']) expect(result.text).not.toContain(leak);
      // One producer request per attempt, each tried twice by the client: far under 50 subrequests.
      expect(putRecordsRequests().length).toBeGreaterThanOrEqual(2);
      expect(putRecordsRequests().length).toBeLessThanOrEqual(6);
    } finally {
      proxy.reset();
    }
  });

  it('answers 503 without the ARN when the stream does not exist', async () => {
    proxy.reset();
    const arn = `arn:aws:kinesis:us-east-1:${EXAMPLE_ACCOUNT}:stream/${streamName}`;
    proxy.setFaults([
      {
        fault: 'status',
        status: 400,
        times: 100,
        body: { __type: 'ResourceNotFoundException', message: `Stream ${streamName} under account ${EXAMPLE_ACCOUNT} not found (${arn}).` },
        headers: { 'x-amzn-ErrorType': 'ResourceNotFoundException' },
      },
    ]);
    try {
      const event = makeEvent();
      const result = await post(JSON.stringify([event]));
      expect(result.status).toBe(503);
      expect(result.body.retry).toEqual([event.id]);
      for (const leak of [EXAMPLE_ACCOUNT, streamName, 'ResourceNotFound', 'arn:']) expect(result.text).not.toContain(leak);
      const health = await answer(await fetch(`${worker.url}/health`, { headers: { 'User-Agent': agent() } }));
      expect(health.status).toBe(503);
      expect(health.text).toBe('{"status":"unavailable"}');
    } finally {
      proxy.reset();
    }
  });

  it('answers 503 with retry ids when Kinesis cannot be reached', async () => {
    proxy.reset();
    proxy.setFaults([{ fault: 'drop', times: 100 }]);
    try {
      const event = makeEvent();
      const result = await post(JSON.stringify([event]));
      expect(result.status).toBe(503);
      expect(result.body).toEqual({ error: 'service unavailable', accepted: [], rejected: [], retry: [event.id] });
    } finally {
      proxy.reset();
    }
  });

  it('resends only the failed entries, then answers every event accepted', async () => {
    proxy.reset();
    proxy.setFaults([{ fault: 'partialFailure', operation: 'PutRecords', failIndexes: [1, 3], errorCodes: ['ProvisionedThroughputExceededException', 'InternalFailure'] }]);
    try {
      const events = Array.from({ length: 5 }, () => makeEvent());
      const result = await post(JSON.stringify(events));
      expect(result.status).toBe(200);
      expect([...result.body.accepted].sort()).toEqual(events.map((e) => e.id).sort());
      const requests = putRecordsRequests();
      expect(requests).toHaveLength(2);
      const resent = requests[1]!.body.Records.map((r: { Data: string }) => JSON.parse(Buffer.from(r.Data, 'base64').toString()).id);
      expect(resent.sort()).toEqual([events[1]!.id, events[3]!.id].sort());
      const stored = await storedEvents(events.map((e) => e.id));
      expect(stored.map((s) => s.event.id).sort()).toEqual(events.map((e) => e.id).sort());
    } finally {
      proxy.reset();
    }
  });

  it('answers an entry that keeps failing as retry, never as accepted, within the attempt budget', async () => {
    proxy.reset();
    proxy.setFaults([{ fault: 'partialFailure', operation: 'PutRecords', failIndexes: [0], times: 100 }]);
    try {
      const events = [makeEvent(), makeEvent(), makeEvent()];
      const result = await post(JSON.stringify(events));
      expect(result.status).toBe(200);
      expect(result.body.retry).toEqual([events[0]!.id]);
      expect([...result.body.accepted].sort()).toEqual([events[1]!.id, events[2]!.id].sort());
      expect(putRecordsRequests()).toHaveLength(3);
      expect((await storedEvents([events[0]!.id]))).toHaveLength(0);
    } finally {
      proxy.reset();
    }
  });
});

describe('health', () => {
  it('reports the stream status without naming the stream', async () => {
    const result = await answer(await fetch(`${worker.url}/health`, { headers: { 'User-Agent': agent() } }));
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ status: 'ok', stream: 'ACTIVE' });
    expect(result.text).not.toContain(streamName);
  });

  it('answers unknown paths with 404', async () => {
    const result = await answer(await fetch(`${worker.url}/nope`));
    expect(result.status).toBe(404);
  });
});

describe('IAM policy (worker-example/iam-policy.json)', () => {
  const policy = JSON.parse(readFileSync(new URL('../../worker-example/iam-policy.json', import.meta.url), 'utf8'));
  const statements: { Effect: string; Action: string[]; Resource: string }[] = policy.Statement;

  it('allows only PutRecords and DescribeStreamSummary, on one stream ARN, without wildcards', () => {
    const actions = statements.flatMap((statement) => statement.Action).sort();
    expect(actions).toEqual(['kinesis:DescribeStreamSummary', 'kinesis:PutRecords']);
    const resources = new Set(statements.map((statement) => statement.Resource));
    expect(resources.size).toBe(1);
    expect([...resources][0]).toMatch(/^arn:aws:kinesis:[a-z0-9-]+:\d{12}:stream\/[a-zA-Z0-9_.-]+$/);
    for (const statement of statements) expect(statement.Effect).toBe('Allow');
  });

  it('covers every operation the Worker called in this file', () => {
    expect(operationsCalled.size).toBeGreaterThan(0);
    const allowed = new Set(statements.flatMap((statement) => statement.Action).map((action) => action.replace('kinesis:', '')));
    expect([...operationsCalled].filter((operation) => !allowed.has(operation))).toEqual([]);
  });
});

describe('logs', () => {
  it('never contain secrets, signatures, the account, the stream, upstream messages or client addresses, in any case', async () => {
    // wrangler relays workerd's console a little later: wait for the failure tests' lines to arrive.
    await expect.poll(() => worker.output(), { timeout: 10_000 }).toContain('kinesis record not stored');
    const logs = worker.output() + unconfigured.output();
    // In any case: a header dump may write `authorization:`, `Authorization:` or `"authorization":`.
    expect(logs).not.toMatch(/authorization"?\s*:/i);
    const lower = logs.toLowerCase();
    for (const leak of [CREDENTIALS.secretAccessKey, CREDENTIALS.sessionToken, 'AWS4-HMAC-SHA256 Credential=', 'AWS4-HMAC-SHA256', 'Signature=', 'X-Amz-Security-Token', EXAMPLE_ACCOUNT, 'Rate exceeded', 'client-token', ...SPOOFED_IPS]) {
      expect(lower, leak).not.toContain(leak.toLowerCase());
    }
    // wrangler's start-up table prints every var with its value (`env.STREAM_NAME ("…")  Environment
    // Variable`): that line is wrangler's, not the Worker's, and vars are not secret.
    const workerLines = logs.split('\n').filter((line) => !/^\s*env\.\w+ \(".*"\)\s+Environment Variable\b/.test(line));
    expect(workerLines.join('\n').toLowerCase()).not.toContain(streamName.toLowerCase());
  });
});

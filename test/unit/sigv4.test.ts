// SigV4: AWS's published vectors through aws4fetch's AwsV4Signer (the signer src/client.ts uses),
// then the client's own signing path (signKinesisRequest and send), checked against an
// independent SigV4 implementation on node:crypto written here from the AWS docs
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html).
// Vectors: test/fixtures/sigv4/ (see its README for their origin).
import { createHash, createHmac } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AwsV4Signer } from 'aws4fetch';
import { describe, expect, it } from 'vitest';
import { createKinesisClient, putRecord, signKinesisRequest, type KinesisClientConfig } from '../../src/index.ts';
import { awsError, createFakeFetch, putRecordOk } from '../support/fake-fetch.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/sigv4/', import.meta.url));
const CLASSIC = join(FIXTURES, 'aws-sig-v4-test-suite');
const CRT = join(FIXTURES, 'aws-signing-test-suite', 'v4');
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const ACCESS_KEY = 'AKIDEXAMPLE';

interface ParsedRequest {
  method: string;
  /** The request target exactly as written (may contain spaces, dot segments, raw UTF-8). */
  path: string;
  /** Header lines in order, names as written; continuation lines joined with `\n`. */
  headers: [string, string][];
  body: string;
}

/** Parses a `.req` / `request.txt`: request line, header lines (continuations start with whitespace), blank line, body. */
function parseRequest(text: string): ParsedRequest {
  const lines = text.split('\n');
  const requestLine = lines[0]!;
  const method = requestLine.slice(0, requestLine.indexOf(' '));
  const path = requestLine.slice(requestLine.indexOf(' ') + 1, requestLine.lastIndexOf(' HTTP/'));
  const headers: [string, string][] = [];
  let i = 1;
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') {
      i++;
      break;
    }
    if (/^\s/.test(line)) {
      headers.at(-1)![1] += `\n${line}`;
      continue;
    }
    const colon = line.indexOf(':');
    headers.push([line.slice(0, colon), line.slice(colon + 1)]);
  }
  return { method, path, headers, body: lines.slice(i).join('\n') };
}

/**
 * fetch `Headers` for a parsed request: repeated names become one comma-joined value (SigV4's
 * canonical form; `Headers.append` would join with ", "). Host is left out: aws4fetch signs the URL's.
 */
function toFetchHeaders(request: ParsedRequest): { host: string; headers: Headers } {
  const grouped = new Map<string, string[]>();
  for (const [name, value] of request.headers) {
    const key = name.toLowerCase();
    grouped.set(key, [...(grouped.get(key) ?? []), value.trim()]);
  }
  const headers = new Headers();
  for (const [name, values] of grouped) if (name !== 'host') headers.set(name, values.join(','));
  return { host: grouped.get('host')![0]!, headers };
}

function read(path: string): string {
  return readFileSync(path, 'utf8');
}

/** Every classic case: `<dir>/<name>/<name>.req`, also nested one level (normalize-path/, post-sts-token/). */
function classicCases(): { name: string; dir: string }[] {
  const found: { name: string; dir: string }[] = [];
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (!statSync(path).isDirectory()) continue;
      if (existsSync(join(path, `${entry}.req`))) found.push({ name: entry, dir: path });
      else visit(path);
    }
  };
  visit(CLASSIC);
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

const MULTILINE = 'get-header-value-multiline';
const classic = classicCases();

describe('aws-sig-v4-test-suite (classic) through AwsV4Signer', () => {
  it('finds all 31 cases', () => {
    expect(classic).toHaveLength(31);
  });

  it.each(classic.filter((c) => c.name !== MULTILINE))('$name: canonical request, string to sign and Authorization match', async ({ name, dir }) => {
    const request = parseRequest(read(join(dir, `${name}.req`)));
    const authz = read(join(dir, `${name}.authz`));
    const scope = /Credential=[^/]+\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request/.exec(authz)!;
    const datetime = request.headers.find(([n]) => n.toLowerCase() === 'x-amz-date')![1];
    const { host, headers } = toFetchHeaders(request);
    const signer = new AwsV4Signer({
      url: `https://${host}${request.path}`,
      method: request.method,
      headers,
      body: request.body === '' ? undefined : request.body,
      accessKeyId: ACCESS_KEY,
      secretAccessKey: SECRET,
      region: scope[2],
      service: scope[3],
      datetime,
      allHeaders: true,
      singleEncode: true,
    });

    expect(await signer.canonicalString()).toBe(read(join(dir, `${name}.creq`)));
    expect(await signer.stringToSign()).toBe(read(join(dir, `${name}.sts`)));
    expect(await signer.authHeader()).toBe(authz);
  });

  it(`${MULTILINE}: is not representable with fetch Headers (a value with a line break is refused)`, () => {
    const { dir } = classic.find((c) => c.name === MULTILINE)!;
    const request = parseRequest(read(join(dir, `${MULTILINE}.req`)));
    const [name, value] = request.headers.find(([n]) => n === 'My-Header1')!;

    expect(value).toBe('value1\n  value2\n     value3');
    expect(() => new Headers([[name, value]])).toThrow(TypeError);
    expect(() => new Headers().append(name, value)).toThrow(TypeError);
  });
});

interface CrtContext {
  credentials: { access_key_id: string; secret_access_key: string; token?: string };
  expiration_in_seconds: number;
  normalize: boolean;
  region: string;
  service: string;
  sign_body: boolean;
  omit_session_token?: boolean;
  timestamp: string;
}

/**
 * CRT cases whose path the fetch/aws4fetch stack cannot keep as written, so their expected
 * (unnormalized) canonical request cannot be produced:
 * - `dot`: the WHATWG URL parser (used by `fetch` and by aws4fetch's `new URL`) removes `.` and `..`
 *   segments, so fetch would never send `/example/..`; the request itself is not representable.
 * - `slashes`: `new URL` keeps `//`, but aws4fetch collapses repeated slashes for every service
 *   except s3 (`pathname.replace(/\/+/g, '/')`), as the classic suite's normalize-path expects.
 * Kinesis always signs the path `/`, so neither matters to this client.
 */
const CRT_UNREPRESENTABLE: Record<string, 'dot' | 'slashes'> = {
  'get-relative-relative-unnormalized': 'dot',
  'get-relative-unnormalized': 'dot',
  'get-slash-dot-slash-unnormalized': 'dot',
  'get-slash-pointless-dot-unnormalized': 'dot',
  'get-slash-unnormalized': 'slashes',
  'get-slashes-unnormalized': 'slashes',
};

const crtCases = readdirSync(CRT)
  .filter((name) => existsSync(join(CRT, name, 'context.json')))
  .sort()
  .map((name) => ({ name, dir: join(CRT, name), context: JSON.parse(read(join(CRT, name, 'context.json'))) as CrtContext }));

function crtSigner(dir: string, context: CrtContext, mode: 'header' | 'query'): AwsV4Signer {
  const request = parseRequest(read(join(dir, 'request.txt')));
  const { host, headers } = toFetchHeaders(request);
  const url = new URL(`https://${host}${request.path}`);
  if (mode === 'query') url.searchParams.set('X-Amz-Expires', String(context.expiration_in_seconds));
  // sign_body: the CRT signer adds and signs x-amz-content-sha256; aws4fetch uses that header as the payload hash.
  if (context.sign_body && mode === 'header') {
    headers.set('x-amz-content-sha256', createHash('sha256').update(request.body).digest('hex'));
  }
  return new AwsV4Signer({
    url: url.toString(),
    method: request.method,
    headers,
    body: request.body === '' ? undefined : request.body,
    accessKeyId: context.credentials.access_key_id,
    secretAccessKey: context.credentials.secret_access_key,
    sessionToken: context.credentials.token,
    // omit_session_token: the token is added after signing (post-sts-header-after).
    appendSessionToken: context.omit_session_token === true,
    region: context.region,
    service: context.service,
    datetime: context.timestamp.replace(/[-:]/g, ''),
    signQuery: mode === 'query',
    allHeaders: true,
    singleEncode: true,
  });
}

describe('aws-signing-test-suite v4 (CRT) through AwsV4Signer', () => {
  const representable = crtCases.filter((c) => c.name !== MULTILINE && !(c.name in CRT_UNREPRESENTABLE));
  const table = representable.flatMap((c) => (['header', 'query'] as const).map((mode) => ({ ...c, mode })));

  it('has 38 cases with a context.json, 31 of them representable', () => {
    expect(crtCases).toHaveLength(38);
    expect(representable).toHaveLength(31);
  });

  it.each(table)('$name ($mode): canonical request, string to sign and signature match', async ({ dir, context, mode }) => {
    const signer = crtSigner(dir, context, mode);

    expect(await signer.canonicalString()).toBe(read(join(dir, `${mode}-canonical-request.txt`)));
    expect(await signer.stringToSign()).toBe(read(join(dir, `${mode}-string-to-sign.txt`)));
    expect(await signer.signature()).toBe(read(join(dir, `${mode}-signature.txt`)).trim());
  });

  it('get-vanilla-with-session-token signs host;x-amz-date;x-amz-security-token (signature 07ec1639…)', async () => {
    const c = crtCases.find((x) => x.name === 'get-vanilla-with-session-token')!;
    const signer = crtSigner(c.dir, c.context, 'header');
    const { headers } = await signer.sign();

    expect(signer.signedHeaders).toBe('host;x-amz-date;x-amz-security-token');
    expect(headers.get('x-amz-security-token')).toBe(c.context.credentials.token);
    expect(headers.get('authorization')).toMatch(/SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639/);
  });

  it.each(Object.entries(CRT_UNREPRESENTABLE).map(([name, reason]) => ({ name, reason })))(
    '$name is not representable ($reason): the signed path differs from the vector',
    async ({ name, reason }) => {
      const c = crtCases.find((x) => x.name === name)!;
      expect(c.context.normalize).toBe(false);
      const request = parseRequest(read(join(c.dir, 'request.txt')));
      const parsedPath = new URL(`https://example.amazonaws.com${request.path}`).pathname;
      if (reason === 'dot') expect(parsedPath).not.toBe(request.path);
      else expect(parsedPath).toBe(request.path);

      const signer = crtSigner(c.dir, c.context, 'header');
      const expected = read(join(c.dir, 'header-canonical-request.txt'));
      expect(expected.split('\n')[1]).toBe(request.path);
      expect((await signer.canonicalString()).split('\n')[1]).not.toBe(request.path);
    },
  );

  it(`${MULTILINE} is not representable with fetch Headers either`, () => {
    const c = crtCases.find((x) => x.name === MULTILINE)!;
    const request = parseRequest(read(join(c.dir, 'request.txt')));
    const [name, value] = request.headers.find(([n]) => n.toLowerCase() === 'my-header1')!;
    expect(value).toContain('\n');
    expect(() => new Headers([[name, value]])).toThrow(TypeError);
  });
});

// ---- the client's own signing path -----------------------------------------------------------------

interface Verified {
  region: string;
  service: string;
  date: string;
  signedHeaders: string;
  canonicalRequest: string;
  /** Signature recomputed here over the given body. */
  expected: string;
  /** Signature in the Authorization header. */
  actual: string;
}

/** Independent SigV4 check (node:crypto), over the request exactly as it would be sent. */
function verifySigV4(request: { method: string; url: string; headers: Headers; body: string }, secret: string): Verified {
  const authorization = request.headers.get('authorization') ?? '';
  const m = /^AWS4-HMAC-SHA256 Credential=[^/]+\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
    authorization,
  );
  if (!m) throw new Error(`not a SigV4 Authorization header: ${authorization}`);
  const [, date, region, service, signedHeaders, actual] = m as unknown as [string, string, string, string, string, string];
  const url = new URL(request.url);
  const amzDate = request.headers.get('x-amz-date')!;
  const canonicalHeaders = signedHeaders
    .split(';')
    .map((name) => `${name}:${name === 'host' ? url.host : (request.headers.get(name) ?? '').trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const sha256 = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');
  const canonicalRequest = [request.method, url.pathname, url.search.slice(1), canonicalHeaders, signedHeaders, sha256(request.body)].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
  const expected = createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest('hex');
  return { region, service, date, signedHeaders, canonicalRequest, expected, actual };
}

const BODY = JSON.stringify({ StreamName: 'clicks', Records: [{ Data: 'AP8Q', PartitionKey: 'user-1' }] });
const PINNED = Date.UTC(2026, 0, 15, 12, 34, 56);

function client(overrides: Partial<KinesisClientConfig> = {}) {
  return createKinesisClient({
    region: 'us-east-1',
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET },
    now: () => PINNED,
    ...overrides,
  });
}

describe('signKinesisRequest', () => {
  it.each([
    { endpoint: 'https://123456789012.data-kinesis.us-east-1.amazonaws.com', host: '123456789012.data-kinesis.us-east-1.amazonaws.com' },
    { endpoint: 'http://127.0.0.1:4567', host: '127.0.0.1:4567' },
    { endpoint: 'https://kinesis.us-east-1.amazonaws.com', host: 'kinesis.us-east-1.amazonaws.com' },
  ])('signs for kinesis/us-east-1 at $endpoint, verifiable over the exact body', async ({ endpoint, host }) => {
    const signed = await signKinesisRequest(client({ endpoint }), 'PutRecords', BODY);
    const check = verifySigV4(signed, SECRET);

    expect(signed.url).toBe(`${endpoint}/`);
    expect(new URL(signed.url).host).toBe(host);
    expect(signed.headers.get('authorization')).toContain(`Credential=${ACCESS_KEY}/20260115/us-east-1/kinesis/aws4_request`);
    expect(check).toMatchObject({ region: 'us-east-1', service: 'kinesis', date: '20260115' });
    expect(check.actual).toBe(check.expected);
    expect(check.canonicalRequest.split('\n').at(-1)).toBe(createHash('sha256').update(BODY).digest('hex'));
  });

  it('signs the target and date, and sends the JSON 1.1 content type', async () => {
    const signed = await signKinesisRequest(client(), 'PutRecords', BODY);
    const { signedHeaders } = verifySigV4(signed, SECRET);

    expect(signed.method).toBe('POST');
    expect(signedHeaders.split(';')).toEqual(expect.arrayContaining(['host', 'x-amz-date', 'x-amz-target']));
    expect(signed.headers.get('x-amz-target')).toBe('Kinesis_20131202.PutRecords');
    expect(signed.headers.get('content-type')).toBe('application/x-amz-json-1.1');
    expect(signed.headers.get('x-amz-date')).toBe('20260115T123456Z');
    expect(signed.headers.has('x-amz-security-token')).toBe(false);
  });

  it('signs x-amz-security-token for temporary credentials', async () => {
    const token = 'FwoGZXIvYXdzEXAMPLE//token+with/base64=';
    const signed = await signKinesisRequest(
      client({ credentials: { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: SECRET, sessionToken: token } }),
      'PutRecords',
      BODY,
    );
    const check = verifySigV4(signed, SECRET);

    expect(signed.headers.get('x-amz-security-token')).toBe(token);
    expect(check.signedHeaders.split(';')).toContain('x-amz-security-token');
    expect(check.actual).toBe(check.expected);
  });

  it('gives the same signature for the same clock and a different one for another datetime', async () => {
    const first = await signKinesisRequest(client(), 'PutRecords', BODY);
    const again = await signKinesisRequest(client(), 'PutRecords', BODY);
    const later = await signKinesisRequest(client({ now: () => PINNED + 1000 }), 'PutRecords', BODY);

    expect(again.headers.get('authorization')).toBe(first.headers.get('authorization'));
    expect(later.headers.get('x-amz-date')).toBe('20260115T123457Z');
    expect(later.headers.get('authorization')).not.toBe(first.headers.get('authorization'));
  });

  it('detects a body changed after signing', async () => {
    const signed = await signKinesisRequest(client(), 'PutRecords', BODY);
    const tampered = verifySigV4({ ...signed, body: BODY.replace('user-1', 'user-2') }, SECRET);

    expect(tampered.expected).not.toBe(tampered.actual);
  });

  it('derives a new signing key when the UTC day rolls over (cache keyed by secret, date, region, service)', async () => {
    let now = Date.UTC(2026, 0, 15, 23, 59, 59);
    const c = client({ now: () => now });
    const before = await signKinesisRequest(c, 'PutRecords', BODY);
    now += 1000;
    const after = await signKinesisRequest(c, 'PutRecords', BODY);

    expect(before.headers.get('authorization')).toContain('/20260115/us-east-1/kinesis/aws4_request');
    expect(after.headers.get('authorization')).toContain('/20260116/us-east-1/kinesis/aws4_request');
    expect(verifySigV4(after, SECRET).actual).toBe(verifySigV4(after, SECRET).expected);
    expect([...c.state.signingKeys.keys()].sort()).toEqual([
      `${SECRET},20260115,us-east-1,kinesis`,
      `${SECRET},20260116,us-east-1,kinesis`,
    ]);
  });
});

describe('send() signing', () => {
  it('sends a body whose hash and signature verify, byte for byte', async () => {
    const fake = createFakeFetch([putRecordOk()]);
    const c = client({ endpoint: 'https://123456789012.data-kinesis.us-east-1.amazonaws.com', fetch: fake });
    await putRecord(c, { StreamName: 'clicks', PartitionKey: 'é😀', Data: new Uint8Array([0, 255, 16]) });

    const [sent] = fake.requests;
    const check = verifySigV4({ method: sent!.method, url: sent!.url, headers: new Headers(sent!.headers), body: sent!.body }, SECRET);
    expect(check.service).toBe('kinesis');
    expect(check.actual).toBe(check.expected);
  });

  it('signs every retry again with a new x-amz-date', async () => {
    let now = PINNED;
    const advance = (reply: Response) => () => {
      now += 2_000;
      return reply;
    };
    const fake = createFakeFetch([advance(awsError(500, 'InternalFailure')), advance(awsError(503, 'ServiceUnavailable')), putRecordOk()]);
    const c = client({ fetch: fake, now: () => now, retry: { baseDelayMs: 1, random: () => 0 } });
    await putRecord(c, { StreamName: 'clicks', PartitionKey: 'k', Data: 'x' });

    const dates = fake.requests.map((r) => r.headers['x-amz-date']);
    const signatures = fake.requests.map((r) => r.headers.authorization);
    expect(dates).toEqual(['20260115T123456Z', '20260115T123458Z', '20260115T123500Z']);
    expect(new Set(signatures).size).toBe(3);
    for (const r of fake.requests) {
      const check = verifySigV4({ method: r.method, url: r.url, headers: new Headers(r.headers), body: r.body }, SECRET);
      expect(check.actual).toBe(check.expected);
    }
  });
});

// fromCognitoIdentityPool: a page's temporary credentials from a Cognito identity pool, against a
// local Cognito Identity stand-in over real HTTP (test/support/cognito-identity-local.ts), and
// used by the client to write to kinesis-local. TEST-CHECKLIST 38: when GetCredentialsForIdentity
// answers ResourceNotFoundException, the cached IdentityId is cleared, GetId is called again and
// the request succeeds.
import { afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import {
  createKinesisClient,
  fromCognitoIdentityPool,
  KinesisNetworkError,
  KinesisServiceError,
  KinesisValidationError,
  putRecord,
  type CognitoIdentityPoolOptions,
  type IdentityIdStorage,
} from '../../src/index.ts';
import { startCognitoIdentityLocal, type CognitoIdentityLocal } from '../support/cognito-identity-local.ts';
import { createTestStream, readAllRecords } from '../support/kinesis-local.ts';

const kinesisEndpoint = inject('kinesisEndpoint');
const STORAGE_KEY_PREFIX = 'kinesis-edge:cognito-identity:';
let cognito: CognitoIdentityLocal;
let streamName: string;

beforeAll(async () => {
  streamName = await createTestStream(kinesisEndpoint);
});

beforeEach(async () => {
  cognito = await startCognitoIdentityLocal();
});

afterEach(async () => {
  await cognito.close();
});


/** A `Storage`-like map, as `localStorage` would be. */
function memoryStorage(initial: Record<string, string> = {}): IdentityIdStorage & { map: Map<string, string> } {
  const map = new Map(Object.entries(initial));
  return {
    map,
    getItem: (key) => map.get(key) ?? null,
    setItem: (key, value) => void map.set(key, value),
    removeItem: (key) => void map.delete(key),
  };
}

function provider(options: Partial<CognitoIdentityPoolOptions> = {}) {
  return fromCognitoIdentityPool({ identityPoolId: cognito.identityPoolId, endpoint: cognito.url, random: () => 0, ...options });
}

/** A Kinesis client on kinesis-local whose fetch keeps the headers of every Kinesis request. */
function kinesisClientWith(credentials: ReturnType<typeof provider>) {
  const sent: Headers[] = [];
  const client = createKinesisClient({
    region: 'us-east-1',
    endpoint: kinesisEndpoint,
    credentials,
    fetch: (url, init) => {
      sent.push(new Headers(init?.headers));
      return fetch(url, init);
    },
  });
  return { client, sent };
}

describe('fromCognitoIdentityPool: options', () => {
  it.each([
    ['a pool id without a region', { identityPoolId: 'not-a-pool-id' }, 'identityPoolId', 'must match'],
    ['a pool id of the wrong kind', { identityPoolId: 'us-east-1:NOT_HEX' }, 'identityPoolId', 'must match'],
    ['a pool id longer than 55', { identityPoolId: `us-east-1:${'a'.repeat(50)}` }, 'identityPoolId', 'length must be between 1 and 55'],
    ['a pool id whose prefix is no region, and no region', { identityPoolId: 'local:0123abcd' }, 'region', 'is required'],
    ['eleven logins', { logins: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`idp${i}.example`, 'token'])) }, 'logins', 'at most 10'],
    ['an empty login token', { logins: { 'accounts.google.com': '' } }, 'logins.accounts.google.com', 'length 1 to 50000'],
    ['a short role ARN', { customRoleArn: 'arn:aws:iam::1' }, 'customRoleArn', 'length 20 to 2048'],
    ['zero attempts', { maxAttempts: 0 }, 'maxAttempts', 'at least 1'],
    ['a storage without removeItem', { storage: { getItem: () => null, setItem: () => undefined } as unknown as IdentityIdStorage }, 'storage', 'removeItem'],
  ])('refuses %s, naming the field, before any request', (_name, options, path, rule) => {
    let error: unknown;
    try {
      provider(options as Partial<CognitoIdentityPoolOptions>);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(KinesisValidationError);
    const issue = (error as KinesisValidationError).issues.find((i) => i.path === path);
    expect(issue?.rule).toContain(rule);
    expect(cognito.requests).toHaveLength(0);
  });
});

describe('fromCognitoIdentityPool: the authflow', () => {
  it('gets an identity, then credentials for it, unsigned, and keeps the id in storage', async () => {
    const storage = memoryStorage();
    const credentials = provider({ storage });
    expect(credentials.identityId).toBeUndefined();

    const got = await credentials();

    expect(cognito.requests.map((r) => r.operation)).toEqual(['GetId', 'GetCredentialsForIdentity']);
    for (const request of cognito.requests) {
      expect(request.headers['x-amz-target']).toBe(`AWSCognitoIdentityService.${request.operation}`);
      expect(request.headers['content-type']).toBe('application/x-amz-json-1.1');
      // Public API calls: nothing signed, no credentials of any kind on the wire.
      expect(request.headers.authorization).toBeUndefined();
      expect(request.headers['x-amz-security-token']).toBeUndefined();
    }
    expect(cognito.requests[0]!.body).toEqual({ IdentityPoolId: cognito.identityPoolId });
    const issued = cognito.issued.at(-1)!;
    expect(cognito.requests[1]!.body).toEqual({ IdentityId: issued.identityId });
    expect(got).toEqual({
      accessKeyId: issued.accessKeyId,
      secretAccessKey: issued.secretAccessKey,
      sessionToken: issued.sessionToken,
      expiration: new Date(issued.expiration * 1000),
    });
    expect(credentials.identityId).toBe(issued.identityId);
    expect(storage.map.get(STORAGE_KEY_PREFIX + cognito.identityPoolId)).toBe(issued.identityId);

    // A second provider on the same storage (the next page load) reuses the identity.
    await provider({ storage })();
    expect(cognito.count('GetId')).toBe(1);
    expect(cognito.count('GetCredentialsForIdentity')).toBe(2);
    expect(cognito.issued.at(-1)!.identityId).toBe(issued.identityId);
  });

  it('signs Kinesis requests with the temporary credentials, and the record is stored', async () => {
    const credentials = provider();
    const { client, sent } = kinesisClientWith(credentials);

    const out = await putRecord(client, { StreamName: streamName, PartitionKey: 'cognito-visitor', Data: 'from a page' });

    const issued = cognito.issued.at(-1)!;
    expect(sent).toHaveLength(1);
    expect(sent[0]!.get('x-amz-security-token')).toBe(issued.sessionToken);
    expect(sent[0]!.get('authorization')).toContain(`Credential=${issued.accessKeyId}/`);
    const stored = await readAllRecords(kinesisEndpoint, streamName);
    expect(stored.find((r) => r.SequenceNumber === out.SequenceNumber)?.Data).toBe(btoa('from a page'));
  });

  it('clears a cached identity that Cognito no longer knows, gets a new one, and the request succeeds (checklist 38)', async () => {
    // A returning visitor: the id from an earlier visit is in storage, and has since been deleted.
    const stale = `${cognito.region}:00000000-0000-4000-8000-000000000000`;
    const storage = memoryStorage({ [STORAGE_KEY_PREFIX + cognito.identityPoolId]: stale });
    const credentials = provider({ storage });
    expect(credentials.identityId).toBe(stale);
    const { client, sent } = kinesisClientWith(credentials);

    const out = await putRecord(client, { StreamName: streamName, PartitionKey: 'returning-visitor', Data: 'after reset' });

    expect(cognito.requests.map((r) => `${r.operation} ${String(r.body.IdentityId ?? '')}`)).toEqual([
      `GetCredentialsForIdentity ${stale}`,
      'GetId ',
      `GetCredentialsForIdentity ${cognito.issued[0]!.identityId}`,
    ]);
    const fresh = cognito.issued[0]!.identityId;
    expect(fresh).not.toBe(stale);
    expect(credentials.identityId).toBe(fresh);
    expect(storage.map.get(STORAGE_KEY_PREFIX + cognito.identityPoolId)).toBe(fresh);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.get('x-amz-security-token')).toBe(cognito.issued[0]!.sessionToken);
    expect(out.SequenceNumber).toMatch(/^\d+$/);
  });

  it('renews a lost identity once per call: a second ResourceNotFoundException is surfaced, not looped on', async () => {
    const credentials = provider();
    await credentials();
    cognito.failNext('GetCredentialsForIdentity', { status: 400, type: 'ResourceNotFoundException', message: 'Identity not found.' });
    cognito.failNext('GetCredentialsForIdentity', { status: 400, type: 'ResourceNotFoundException', message: 'Identity not found.' });

    const error = await credentials().catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(KinesisServiceError);
    expect(error).toMatchObject({ code: 'ResourceNotFoundException', operation: 'GetCredentialsForIdentity', status: 400 });
    expect(cognito.count('GetId')).toBe(2);
    expect(cognito.count('GetCredentialsForIdentity')).toBe(3);
  });

  it('surfaces an unknown pool from GetId at once, without retrying', async () => {
    const credentials = provider({ identityPoolId: `${cognito.region}:0123abcd-0000-0000-0000-000000000000` });
    const error = await credentials().catch((caught: unknown) => caught);
    expect(error).toMatchObject({ name: 'KinesisServiceError', code: 'ResourceNotFoundException', operation: 'GetId' });
    expect(cognito.requests).toHaveLength(1);
  });

  it('retries throttling and 5xx (an empty or HTML body too), not NotAuthorizedException', async () => {
    cognito.failNext('GetId', { status: 400, type: 'TooManyRequestsException', message: 'Rate exceeded' });
    cognito.failNext('GetId', { status: 503, rawBody: '<html>busy</html>' });
    await provider()();
    expect(cognito.count('GetId')).toBe(3);
    expect(cognito.count('GetCredentialsForIdentity')).toBe(1);

    cognito.failNext('GetCredentialsForIdentity', { status: 500, rawBody: '' });
    cognito.failNext('GetCredentialsForIdentity', { status: 500, rawBody: '' });
    cognito.failNext('GetCredentialsForIdentity', { status: 500, rawBody: '' });
    const exhausted = await provider({ maxAttempts: 3 })().catch((caught: unknown) => caught);
    expect(exhausted).toMatchObject({ name: 'KinesisServiceError', code: 'Http500', status: 500, operation: 'GetCredentialsForIdentity' });
    expect(cognito.count('GetCredentialsForIdentity')).toBe(4);

    const before = cognito.requests.length;
    cognito.failNext('GetId', { status: 400, type: 'NotAuthorizedException', message: 'Unauthenticated access is not supported for this identity pool.' });
    const refused = await provider()().catch((caught: unknown) => caught);
    expect(refused).toMatchObject({ name: 'KinesisServiceError', code: 'NotAuthorizedException', retryable: false });
    expect(cognito.requests.length - before).toBe(1);
  });

  it('turns a refused connection into a KinesisNetworkError after its attempts', async () => {
    const url = cognito.url;
    await cognito.close();
    const error = await fromCognitoIdentityPool({ identityPoolId: cognito.identityPoolId, endpoint: url, random: () => 0, maxAttempts: 2 })().catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(KinesisNetworkError);
    expect((error as KinesisNetworkError).operation).toBe('GetId');
    cognito = await startCognitoIdentityLocal(); // for afterEach
  });

  it('lets concurrent first calls share one GetId (one identity per visitor)', async () => {
    const credentials = provider();
    const all = await Promise.all(Array.from({ length: 5 }, () => credentials()));
    expect(cognito.count('GetId')).toBe(1);
    expect(new Set(cognito.issued.map((c) => c.identityId)).size).toBe(1);
    expect(all.every((c) => c.sessionToken?.startsWith('session-'))).toBe(true);
  });

  it('is asked again by the client as the credentials near expiry, keeping the identity', async () => {
    // Credentials that live 60 s are inside the client's 5-minute refresh window at once: each
    // call refreshes, which shows who refreshes (the client's cache) and what (only credentials).
    cognito.credentialsLifetimeSeconds = 60;
    const credentials = provider();
    const { client, sent } = kinesisClientWith(credentials);
    for (let i = 0; i < 3; i++) await putRecord(client, { StreamName: streamName, PartitionKey: `k${i}`, Data: `r${i}` });
    expect(cognito.count('GetId')).toBe(1);
    expect(cognito.count('GetCredentialsForIdentity')).toBe(3);
    expect(sent.map((h) => h.get('x-amz-security-token'))).toEqual(cognito.issued.map((c) => c.sessionToken));

    // Hour-long credentials are kept: two more calls, no more Cognito requests.
    cognito.credentialsLifetimeSeconds = 3600;
    const steady = kinesisClientWith(provider());
    for (let i = 0; i < 2; i++) await putRecord(steady.client, { StreamName: streamName, PartitionKey: `s${i}`, Data: `s${i}` });
    expect(cognito.count('GetCredentialsForIdentity')).toBe(4);
  });

  it('sends the logins of a signed-in visitor, asking a logins function on each refresh', async () => {
    let calls = 0;
    const credentials = provider({ logins: () => ({ 'accounts.google.com': `id-token-${++calls}` }), customRoleArn: 'arn:aws:iam::123456789012:role/clicks' });
    await credentials();
    await credentials();
    expect(cognito.requests.map((r) => r.body.Logins)).toEqual([
      { 'accounts.google.com': 'id-token-1' },
      { 'accounts.google.com': 'id-token-1' },
      { 'accounts.google.com': 'id-token-2' },
    ]);
    expect(cognito.requests[1]!.body.CustomRoleArn).toBe('arn:aws:iam::123456789012:role/clicks');

    const bad = provider({ logins: () => ({ 'accounts.google.com': '' }) });
    await expect(bad()).rejects.toThrow(/logins\(\)\.accounts\.google\.com: must be a token string/);
  });

  it('works without storage when storage throws (private modes), and ignores a stored value that is no identity id', async () => {
    const throwing: IdentityIdStorage = {
      getItem: () => {
        throw new Error('SecurityError');
      },
      setItem: () => {
        throw new Error('QuotaExceededError');
      },
      removeItem: () => {
        throw new Error('SecurityError');
      },
    };
    const credentials = provider({ storage: throwing });
    await credentials();
    await credentials();
    expect(cognito.count('GetId')).toBe(1);
    credentials.forgetIdentity();
    await credentials();
    expect(cognito.count('GetId')).toBe(2);

    const tampered = memoryStorage({ [STORAGE_KEY_PREFIX + cognito.identityPoolId]: '"><script>' });
    await provider({ storage: tampered })();
    expect(cognito.requests.at(-2)!.operation).toBe('GetId');
    expect(tampered.map.get(STORAGE_KEY_PREFIX + cognito.identityPoolId)).toBe(cognito.issued.at(-1)!.identityId);
  });

  it('refuses an answer without usable credentials as an unexpected response', async () => {
    cognito.failNext('GetCredentialsForIdentity', { status: 200, rawBody: JSON.stringify({ IdentityId: 'x', Credentials: { AccessKeyId: 'ASIA' } }) });
    const error = await provider()().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KinesisValidationError);
    expect(error).toMatchObject({ source: 'output', operation: 'GetCredentialsForIdentity' });
    expect((error as KinesisValidationError).issues.map((i) => i.path)).toEqual([
      'Credentials.SecretKey',
      'Credentials.SessionToken',
      'Credentials.Expiration',
    ]);
  });
});

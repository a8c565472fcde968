/**
 * Temporary AWS credentials for a web page from an Amazon Cognito identity pool, as a
 * {@link CredentialsProvider} for `createKinesisClient({ credentials })`.
 *
 * This is for pages that write to Kinesis themselves. The ingest Worker (worker-example/) is the
 * better path for clickstream: the page then holds no AWS credentials at all. When a page must
 * sign its own requests, an identity pool's role gives it short-lived, narrowly scoped keys instead
 * of long-term ones (which the client refuses in a page by default).
 *
 * The flow is Cognito's "enhanced (simplified) authflow": `GetId` gives the visitor an identity id
 * once; `GetCredentialsForIdentity` turns it into credentials for the pool's role, again each time
 * they near their expiry (the client's credentials cache decides when). Both are public API calls:
 * they are not signed.
 * https://docs.aws.amazon.com/cognito/latest/developerguide/authentication-flow.html
 * https://docs.aws.amazon.com/cognitoidentity/latest/APIReference/API_GetId.html
 * https://docs.aws.amazon.com/cognitoidentity/latest/APIReference/API_GetCredentialsForIdentity.html
 *
 * The identity id is kept (in memory, and in `storage` when given, so a returning visitor keeps
 * theirs). When Cognito no longer knows it (`ResourceNotFoundException`: the identity was deleted,
 * or it belongs to another pool) it is forgotten, a new one is fetched with `GetId`, and the call
 * goes on with it: one such renewal per call, so a pool that keeps refusing cannot loop.
 */
import { serviceError } from './client.ts';
import type { AwsCredentials, CredentialsProvider } from './credentials.ts';
import { KinesisNetworkError, KinesisServiceError, KinesisTimeoutError, KinesisValidationError, type KinesisError, type ValidationIssue } from './errors.ts';
import { sleep } from './internal/sleep.ts';
import { backoffDelay } from './retry.ts';

/** Where the identity id is remembered between page loads; `localStorage` fits. */
export interface IdentityIdStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface CognitoIdentityPoolOptions {
  /** The pool's id, `<region>:<GUID>`, e.g. `us-east-1:0d9f2c4e-…`. */
  identityPoolId: string;
  /**
   * The pool's region.
   * @default the region prefix of `identityPoolId`
   */
  region?: string;
  /**
   * Tokens of the identity providers the visitor signed in with (`{ 'accounts.google.com': idToken }`),
   * for an authenticated identity; a function is called on each refresh, so it can hand over a
   * renewed token. Leave out for an unauthenticated (guest) identity.
   */
  logins?: CognitoLogins | (() => CognitoLogins | Promise<CognitoLogins>);
  /** A role of the pool to assume instead of its default, for authenticated identities with role rules. */
  customRoleArn?: string;
  /** Keeps the identity id between page loads (e.g. `localStorage`); failures to write it are ignored. */
  storage?: IdentityIdStorage;
  /**
   * The Cognito Identity endpoint.
   * @default `https://cognito-identity.<region>.amazonaws.com`
   */
  endpoint?: string;
  /** Read at call time, like the Kinesis client's. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Per attempt. @default 10000 */
  timeoutMs?: number;
  /**
   * Attempts per Cognito call, the first included, for throttling (`TooManyRequestsException`),
   * 5xx, network errors and timeouts; other faults are thrown at once.
   * @default 3
   */
  maxAttempts?: number;
  /** Random number source in [0, 1) for the backoff's jitter. @default Math.random */
  random?: () => number;
}

/** Identity provider name → token, as `Logins` in the Cognito API. */
export type CognitoLogins = Record<string, string>;

/** A credentials provider that also tells which Cognito identity it speaks for. */
export interface CognitoCredentialsProvider extends CredentialsProvider {
  /** The visitor's identity id once known (a stable, anonymous id for analytics), else undefined. */
  readonly identityId: string | undefined;
  /** Forgets the identity id (here and in `storage`): the next call starts a new identity. */
  forgetIdentity(): void;
}

const OPERATION = 'fromCognitoIdentityPool';
const TARGET_PREFIX = 'AWSCognitoIdentityService';
const CONTENT_TYPE = 'application/x-amz-json-1.1';
const STORAGE_KEY_PREFIX = 'kinesis-edge:cognito-identity:';
// Constraints of the Cognito Identity API reference (GetId, GetCredentialsForIdentity).
const IDENTITY_ID_PATTERN = /^[\w-]+:[0-9a-f-]+$/;
const IDENTITY_ID_MAX_LENGTH = 55;
const REGION_PATTERN = /^[a-z]{2}(-[a-z]+)+-\d+$/;
const MAX_LOGINS = 10;
const LOGIN_NAME_MAX_LENGTH = 128;
const LOGIN_TOKEN_MAX_LENGTH = 50_000;
const ROLE_ARN_MIN_LENGTH = 20;
const ROLE_ARN_MAX_LENGTH = 2048;
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_ATTEMPTS = 3;
const BASE_DELAY_MS = 100;
const THROTTLING_BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 5_000;

/** An identity or identity pool id, `<region>:<GUID>`, within the API's length limit. */
function isIdentityId(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= IDENTITY_ID_MAX_LENGTH && IDENTITY_ID_PATTERN.test(value);
}

function checkLogins(logins: unknown, path: string, issues: ValidationIssue[]): void {
  if (typeof logins !== 'object' || logins === null || Array.isArray(logins)) {
    issues.push({ path, rule: 'must be an object of provider name → token, or a function returning one' });
    return;
  }
  const entries = Object.entries(logins);
  if (entries.length > MAX_LOGINS) issues.push({ path, rule: `must have at most ${MAX_LOGINS} entries` });
  for (const [name, token] of entries) {
    if (name.length < 1 || name.length > LOGIN_NAME_MAX_LENGTH) {
      issues.push({ path: `${path}.${name}`, rule: `provider name length must be between 1 and ${LOGIN_NAME_MAX_LENGTH}` });
    }
    if (typeof token !== 'string' || token.length < 1 || token.length > LOGIN_TOKEN_MAX_LENGTH) {
      issues.push({ path: `${path}.${name}`, rule: `must be a token string of length 1 to ${LOGIN_TOKEN_MAX_LENGTH}` });
    }
  }
}

function checkOptions(options: CognitoIdentityPoolOptions): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const { identityPoolId, region, customRoleArn, timeoutMs, maxAttempts, storage } = options;
  if (typeof identityPoolId !== 'string') {
    issues.push({ path: 'identityPoolId', rule: identityPoolId === undefined ? 'is required' : 'must be a string' });
  } else {
    if (identityPoolId.length < 1 || identityPoolId.length > IDENTITY_ID_MAX_LENGTH) {
      issues.push({ path: 'identityPoolId', rule: `length must be between 1 and ${IDENTITY_ID_MAX_LENGTH}` });
    }
    if (!IDENTITY_ID_PATTERN.test(identityPoolId)) issues.push({ path: 'identityPoolId', rule: `must match ${IDENTITY_ID_PATTERN.source}` });
  }
  if (region !== undefined) {
    if (typeof region !== 'string' || !REGION_PATTERN.test(region)) issues.push({ path: 'region', rule: `must match ${REGION_PATTERN.source}` });
  } else if (typeof identityPoolId === 'string' && !REGION_PATTERN.test(identityPoolId.split(':')[0]!)) {
    issues.push({ path: 'region', rule: 'is required when identityPoolId does not start with a region' });
  }
  if (options.logins !== undefined && typeof options.logins !== 'function') checkLogins(options.logins, 'logins', issues);
  if (customRoleArn !== undefined && (typeof customRoleArn !== 'string' || customRoleArn.length < ROLE_ARN_MIN_LENGTH || customRoleArn.length > ROLE_ARN_MAX_LENGTH)) {
    issues.push({ path: 'customRoleArn', rule: `must be a string of length ${ROLE_ARN_MIN_LENGTH} to ${ROLE_ARN_MAX_LENGTH}` });
  }
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs > 0)) issues.push({ path: 'timeoutMs', rule: 'must be a positive number' });
  if (maxAttempts !== undefined && !(Number.isInteger(maxAttempts) && maxAttempts >= 1)) issues.push({ path: 'maxAttempts', rule: 'must be an integer of at least 1' });
  if (storage !== undefined && (typeof storage?.getItem !== 'function' || typeof storage.setItem !== 'function' || typeof storage.removeItem !== 'function')) {
    issues.push({ path: 'storage', rule: 'must have getItem, setItem and removeItem' });
  }
  return issues;
}

/** The credentials of a GetCredentialsForIdentity answer, or the issues that make it unusable. */
function readCredentials(json: unknown): AwsCredentials | ValidationIssue[] {
  const credentials = (json as { Credentials?: Record<string, unknown> } | null)?.Credentials;
  if (typeof credentials !== 'object' || credentials === null) return [{ path: 'Credentials', rule: 'is required' }];
  const { AccessKeyId, SecretKey, SessionToken, Expiration } = credentials;
  const issues: ValidationIssue[] = [];
  for (const [name, value] of [['AccessKeyId', AccessKeyId], ['SecretKey', SecretKey], ['SessionToken', SessionToken]] as const) {
    if (typeof value !== 'string' || !value) issues.push({ path: `Credentials.${name}`, rule: 'must be a non-empty string' });
  }
  // A JSON 1.1 timestamp: seconds since the epoch, possibly fractional.
  if (typeof Expiration !== 'number' || !Number.isFinite(Expiration)) issues.push({ path: 'Credentials.Expiration', rule: 'must be a timestamp (epoch seconds)' });
  if (issues.length) return issues;
  return {
    accessKeyId: AccessKeyId as string,
    secretAccessKey: SecretKey as string,
    sessionToken: SessionToken as string,
    expiration: new Date((Expiration as number) * 1000),
  };
}

/**
 * A credentials provider backed by a Cognito identity pool.
 *
 * ```ts
 * const client = createKinesisClient({
 *   region: 'us-east-1',
 *   credentials: fromCognitoIdentityPool({ identityPoolId: 'us-east-1:0d9f…', storage: localStorage }),
 * });
 * ```
 *
 * Options are checked here, before any request: a bad one throws a `KinesisValidationError`
 * naming it. Cognito faults surface as `KinesisServiceError` (operation `GetId` or
 * `GetCredentialsForIdentity`), failed connections and timeouts as `KinesisNetworkError` and
 * `KinesisTimeoutError`, after the retries described at `maxAttempts`.
 */
export function fromCognitoIdentityPool(options: CognitoIdentityPoolOptions): CognitoCredentialsProvider {
  const issues = checkOptions(options);
  if (issues.length) throw new KinesisValidationError(OPERATION, 'input', issues);
  const { identityPoolId, storage, customRoleArn } = options;
  const region = options.region ?? identityPoolId.split(':')[0]!;
  const endpoint = options.endpoint ?? `https://cognito-identity.${region}.amazonaws.com/`;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const random = options.random ?? Math.random;
  const storageKey = STORAGE_KEY_PREFIX + identityPoolId;

  let identityId: string | undefined;
  /** One GetId at a time: concurrent first calls share it instead of creating several identities. */
  let pendingIdentity: Promise<string> | undefined;

  /** Runs one storage call; storage can throw (blocked cookies, private modes): the id then lives in memory only. */
  const inStorage = <T>(use: (store: IdentityIdStorage) => T): T | undefined => {
    if (storage === undefined) return undefined;
    try {
      return use(storage);
    } catch {
      return undefined;
    }
  };

  const remembered = (): string | undefined => {
    if (identityId !== undefined) return identityId;
    const stored = inStorage((store) => store.getItem(storageKey));
    // A stored value that is not an identity id (edited, or written by something else) is not sent.
    if (isIdentityId(stored)) identityId = stored;
    return identityId;
  };

  const forget = (stale?: string): void => {
    // Another call may already have replaced the stale id: keep the new one.
    if (stale !== undefined && identityId !== undefined && identityId !== stale) return;
    identityId = undefined;
    inStorage((store) => store.removeItem(storageKey));
  };

  const resolveLogins = async (): Promise<CognitoLogins | undefined> => {
    if (typeof options.logins !== 'function') return options.logins;
    const logins = await options.logins();
    const loginIssues: ValidationIssue[] = [];
    checkLogins(logins, 'logins()', loginIssues);
    if (loginIssues.length) throw new KinesisValidationError(OPERATION, 'input', loginIssues);
    return logins;
  };

  /** One Cognito call, with retries for throttling, 5xx, network errors and timeouts. */
  const call = async (operation: 'GetId' | 'GetCredentialsForIdentity', input: Record<string, unknown>): Promise<unknown> => {
    const body = JSON.stringify(input);
    for (let attempt = 1; ; attempt++) {
      let error: KinesisError;
      const timeout = new AbortController();
      const timer = setTimeout(() => timeout.abort(), timeoutMs);
      try {
        const doFetch = options.fetch ?? globalThis.fetch;
        const response = await doFetch(endpoint, {
          method: 'POST',
          headers: { 'content-type': CONTENT_TYPE, 'x-amz-target': `${TARGET_PREFIX}.${operation}` },
          body,
          signal: timeout.signal,
        });
        const text = await response.text();
        if (response.ok) {
          try {
            return text ? JSON.parse(text) : {};
          } catch {
            throw new KinesisValidationError(operation, 'output', [{ path: '', rule: 'response body is not JSON' }]);
          }
        }
        error = serviceError(operation, response, text, Date.now());
      } catch (cause) {
        if (cause instanceof KinesisValidationError) throw cause;
        error = timeout.signal.aborted ? new KinesisTimeoutError(operation, timeoutMs, cause) : new KinesisNetworkError(operation, cause);
      } finally {
        clearTimeout(timer);
      }
      // The client's fault classes fit Cognito's too: its throttling fault, TooManyRequestsException
      // (HTTP 400), is a throttling fault by name; 5xx, network errors and timeouts are transient.
      // These calls are unsigned, so clock skew and expired credentials cannot be their faults.
      const throttled = error instanceof KinesisServiceError && error.kind === 'throttling';
      if (!error.retryable || attempt >= maxAttempts) throw error;
      await sleep(backoffDelay(attempt, throttled ? THROTTLING_BASE_DELAY_MS : BASE_DELAY_MS, MAX_DELAY_MS, random));
    }
  };

  const getIdentityId = (logins: CognitoLogins | undefined): Promise<string> => {
    const known = remembered();
    if (known !== undefined) return Promise.resolve(known);
    pendingIdentity ??= (async () => {
      try {
        const output = await call('GetId', { IdentityPoolId: identityPoolId, ...(logins && { Logins: logins }) });
        const id = (output as { IdentityId?: unknown } | null)?.IdentityId;
        if (!isIdentityId(id)) {
          throw new KinesisValidationError('GetId', 'output', [{ path: 'IdentityId', rule: `must match ${IDENTITY_ID_PATTERN.source}` }]);
        }
        identityId = id;
        inStorage((store) => store.setItem(storageKey, id));
        return id;
      } finally {
        pendingIdentity = undefined;
      }
    })();
    return pendingIdentity;
  };

  const credentialsFor = async (id: string, logins: CognitoLogins | undefined): Promise<AwsCredentials> => {
    const output = await call('GetCredentialsForIdentity', {
      IdentityId: id,
      ...(logins && { Logins: logins }),
      ...(customRoleArn !== undefined && { CustomRoleArn: customRoleArn }),
    });
    const credentials = readCredentials(output);
    if (Array.isArray(credentials)) throw new KinesisValidationError('GetCredentialsForIdentity', 'output', credentials);
    return credentials;
  };

  const provider = async (): Promise<AwsCredentials> => {
    const logins = await resolveLogins();
    const id = await getIdentityId(logins);
    try {
      return await credentialsFor(id, logins);
    } catch (error) {
      if (!(error instanceof KinesisServiceError && error.code === 'ResourceNotFoundException')) throw error;
      // The identity is gone (deleted, or from another pool): start a new one, once.
      forget(id);
      return credentialsFor(await getIdentityId(logins), logins);
    }
  };

  return Object.defineProperties(provider, {
    identityId: { get: () => remembered(), enumerable: true },
    forgetIdentity: { value: () => forget(), enumerable: true },
  }) as CognitoCredentialsProvider;
}

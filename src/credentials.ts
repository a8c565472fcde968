/**
 * AWS credentials: a static set, or an async provider (Cognito, STS via your backend, a Worker
 * secret) whose result is cached until shortly before it expires. Concurrent calls share one
 * refresh, so a burst of requests at expiry makes one provider call, not one each.
 */

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** Present for temporary credentials (STS, Cognito); signed as `X-Amz-Security-Token`. */
  sessionToken?: string;
  /** When temporary credentials stop working. Without it, a provider's result is kept until forced out. */
  expiration?: Date;
}

/** Returns fresh credentials. Called again before `expiration`, or when the service says they expired. */
export type CredentialsProvider = () => Promise<AwsCredentials>;

export type CredentialsInput = AwsCredentials | CredentialsProvider;

/** Refresh this long before `expiration`, so a request signed now is not rejected in flight. */
export const CREDENTIAL_REFRESH_WINDOW_MS = 5 * 60 * 1000;

export interface CredentialsCache {
  /** Current credentials; refreshes first when they are missing, about to expire, or `force` is set. */
  get(options?: { force?: boolean }): Promise<AwsCredentials>;
}

function checkCredentials(value: unknown): AwsCredentials {
  const c = value as Partial<AwsCredentials> | null | undefined;
  if (!c || typeof c.accessKeyId !== 'string' || !c.accessKeyId || typeof c.secretAccessKey !== 'string' || !c.secretAccessKey) {
    throw new TypeError('credentials must have a non-empty accessKeyId and secretAccessKey');
  }
  if (c.sessionToken !== undefined && typeof c.sessionToken !== 'string') {
    throw new TypeError('credentials.sessionToken must be a string');
  }
  if (c.expiration !== undefined && !(c.expiration instanceof Date && !Number.isNaN(c.expiration.getTime()))) {
    throw new TypeError('credentials.expiration must be a valid Date');
  }
  return c as AwsCredentials;
}

export function createCredentialsCache(input: CredentialsInput, now: () => number): CredentialsCache {
  if (typeof input !== 'function') {
    const fixed = checkCredentials(input);
    return { get: async () => fixed };
  }
  const provider = input;
  let current: AwsCredentials | undefined;
  let pending: Promise<AwsCredentials> | undefined;

  const isFresh = (c: AwsCredentials | undefined): c is AwsCredentials =>
    c !== undefined && (c.expiration === undefined || c.expiration.getTime() - now() > CREDENTIAL_REFRESH_WINDOW_MS);

  const refresh = (): Promise<AwsCredentials> => {
    pending ??= (async () => {
      try {
        current = checkCredentials(await provider());
        return current;
      } finally {
        pending = undefined;
      }
    })();
    return pending;
  };

  return {
    get: ({ force = false } = {}) => {
      if (!force && isFresh(current)) return Promise.resolve(current);
      return refresh();
    },
  };
}

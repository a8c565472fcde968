/**
 * The error family of kinesis-edge.
 *
 * One base class, {@link KinesisError}, and a few subclasses that say what kind of thing went wrong:
 * the service answered with a fault ({@link KinesisServiceError}), the network failed
 * ({@link KinesisNetworkError}), an attempt ran out of time ({@link KinesisTimeoutError}), an input
 * or a response broke the API's rules ({@link KinesisValidationError}), or retries were cut off by
 * the retry quota ({@link KinesisRetryQuotaExceededError}).
 *
 * Guards (`isKinesisServiceError`, ...) check `instanceof` first and then `name`, so they keep
 * working when an app ends up with two copies of this package in one bundle (ky does the same:
 * https://github.com/sindresorhus/ky/blob/main/source/utils/type-guards.ts).
 */

/**
 * Fault names from the Kinesis API model (`smithy.api#error` shapes) plus the common AWS JSON
 * protocol faults any AWS service may return. Unknown names are still accepted as `string`.
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/CommonErrors.html
 */
export type KinesisFaultName =
  | 'AccessDeniedException'
  | 'DryRunOperationException'
  | 'ExpiredIteratorException'
  | 'ExpiredNextTokenException'
  | 'InternalFailureException'
  | 'InvalidArgumentException'
  | 'KMSAccessDeniedException'
  | 'KMSDisabledException'
  | 'KMSInvalidStateException'
  | 'KMSNotFoundException'
  | 'KMSOptInRequired'
  | 'KMSThrottlingException'
  | 'LimitExceededException'
  | 'ProvisionedThroughputExceededException'
  | 'ResourceInUseException'
  | 'ResourceNotFoundException'
  | 'ValidationException'
  | 'ThrottlingException'
  | 'ServiceUnavailable'
  | 'ServiceUnavailableException'
  | 'InternalFailure'
  | 'InternalServerError'
  | 'InvalidSignatureException'
  | 'SignatureDoesNotMatch'
  | 'RequestExpired'
  | 'RequestTimeTooSkewed'
  | 'ExpiredTokenException'
  | 'UnrecognizedClientException'
  | 'IncompleteSignature'
  | 'MissingAuthenticationTokenException'
  | 'SerializationException'
  | 'UnknownOperationException'
  | (string & {});

/** How the retry ladder treats a fault. */
export type FaultKind = 'throttling' | 'transient' | 'clock-skew' | 'expired-credentials' | 'fatal';

/**
 * Faults that mean "slow down". Kinesis answers HTTP 400 for most of them, so they must be matched
 * by name, not by status (aws4fetch's own retry only looks at 5xx and 429).
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html#API_PutRecords_Errors
 * https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
 */
const THROTTLING_FAULTS: ReadonlySet<string> = new Set([
  'ProvisionedThroughputExceededException',
  'LimitExceededException',
  'KMSThrottlingException',
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'SlowDown',
  'TransactionInProgressException',
  'EC2ThrottledException',
  'BandwidthLimitExceeded',
  'PriorRequestNotComplete',
]);

/** Faults that are worth another try after a short pause. */
const TRANSIENT_FAULTS: ReadonlySet<string> = new Set([
  'InternalFailure',
  'InternalFailureException',
  'InternalServerError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'RequestTimeout',
  'RequestTimeoutException',
]);

/** The service refused the signature because our clock is off from its clock. */
const CLOCK_SKEW_FAULTS: ReadonlySet<string> = new Set([
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'AuthFailure',
  'RequestExpired',
  'RequestInTheFuture',
  'RequestTimeTooSkewed',
]);

const EXPIRED_CREDENTIAL_FAULTS: ReadonlySet<string> = new Set(['ExpiredTokenException', 'ExpiredToken']);

/** Decide how a service fault is retried, from its name and HTTP status. */
export function classifyFault(code: string, status: number, message = ''): FaultKind {
  if (THROTTLING_FAULTS.has(code) || status === 429) return 'throttling';
  if (CLOCK_SKEW_FAULTS.has(code) && /expired|not yet current|skew|in the future/i.test(message)) return 'clock-skew';
  if (EXPIRED_CREDENTIAL_FAULTS.has(code)) return 'expired-credentials';
  if (TRANSIENT_FAULTS.has(code) || status >= 500) return 'transient';
  return 'fatal';
}

interface ErrorOptionsWithCause {
  cause?: unknown;
}

/** Base class of every error kinesis-edge throws. */
export class KinesisError extends Error {
  override name = 'KinesisError';
  /** The API operation, e.g. `PutRecords`, when the error belongs to one. */
  readonly operation: string | undefined;
  /** Whether the client's retry ladder treats this error as worth another attempt. */
  readonly retryable: boolean;

  constructor(message: string, options: ErrorOptionsWithCause & { operation?: string; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.operation = options.operation;
    this.retryable = options.retryable ?? false;
  }
}

/** The service answered with a fault. */
export class KinesisServiceError extends KinesisError {
  override name = 'KinesisServiceError';
  /** The fault name, sanitised: `com.amazonaws.kinesis.v20131202#Foo` and `Foo:http://…` both give `Foo`. */
  readonly code: KinesisFaultName;
  readonly status: number;
  readonly requestId: string | undefined;
  /** The service's own message, as sent. */
  readonly serviceMessage: string;
  readonly kind: FaultKind;
  /** The parsed `Retry-After` header in milliseconds, when the response had one. */
  readonly retryAfterMs: number | undefined;

  constructor(init: {
    code: string;
    status: number;
    requestId?: string;
    message: string;
    operation: string;
    retryAfterMs?: number;
  }) {
    const kind = classifyFault(init.code, init.status, init.message);
    const request = init.requestId ? `, request ${init.requestId}` : '';
    const detail = init.message ? `: ${init.message}` : '';
    super(`${init.operation} failed: ${init.code} (${init.status}${request})${detail}`, {
      operation: init.operation,
      retryable: kind !== 'fatal',
    });
    this.code = init.code;
    this.status = init.status;
    this.requestId = init.requestId;
    this.serviceMessage = init.message;
    this.kind = kind;
    this.retryAfterMs = init.retryAfterMs;
  }
}

/** `fetch` itself failed: DNS, refused or reset connection, CORS refusal, offline. */
export class KinesisNetworkError extends KinesisError {
  override name = 'KinesisNetworkError';
  constructor(operation: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`${operation} failed: network error (${reason})`, { operation, retryable: true, cause });
  }
}

/** One attempt took longer than the client's `timeoutMs`. */
export class KinesisTimeoutError extends KinesisError {
  override name = 'KinesisTimeoutError';
  readonly timeoutMs: number;
  constructor(operation: string, timeoutMs: number, cause?: unknown) {
    super(`${operation} failed: no response within ${timeoutMs} ms`, { operation, retryable: true, cause });
    this.timeoutMs = timeoutMs;
  }
}

/** The retry quota is spent: the client stopped retrying to keep an outage from becoming a retry storm. */
export class KinesisRetryQuotaExceededError extends KinesisError {
  override name = 'KinesisRetryQuotaExceededError';
  constructor(operation: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`${operation} failed and the retry quota is exhausted, so it was not retried: ${reason}`, {
      operation,
      retryable: false,
      cause,
    });
  }
}

/** One broken rule, at one place in the input or response. */
export interface ValidationIssue {
  /** Dotted path with indexes, e.g. `Records[3].PartitionKey`; empty for the whole value. */
  path: string;
  /** The rule broken, in words, e.g. `length must be at most 256`. */
  rule: string;
}

/**
 * An input broke the API's constraints (thrown before any request is sent), or a response did not
 * have the shape the API promises (`source: 'output'`).
 */
export class KinesisValidationError extends KinesisError {
  override name = 'KinesisValidationError';
  readonly source: 'input' | 'output';
  readonly issues: readonly ValidationIssue[];
  constructor(operation: string, source: 'input' | 'output', issues: readonly ValidationIssue[]) {
    const list = issues.map((i) => `${i.path || '(root)'}: ${i.rule}`).join('; ');
    const what = source === 'input' ? 'invalid input' : 'unexpected response';
    super(`${operation}: ${what}: ${list}`, { operation, retryable: false });
    this.source = source;
    this.issues = issues;
  }
}

function hasName(error: unknown, names: readonly string[]): boolean {
  return typeof error === 'object' && error !== null && names.includes((error as { name?: unknown }).name as string);
}

/**
 * True for any error thrown by kinesis-edge, also one from another copy of the package: every
 * class of the family (here, in the producer, the event stream) is named `Kinesis…Error`.
 */
export function isKinesisError(error: unknown): error is KinesisError {
  if (error instanceof KinesisError) return true;
  const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  return typeof name === 'string' && /^Kinesis[A-Za-z]*Error$/.test(name);
}

/** True when the service answered with a fault; narrow further with `error.code`. */
export function isKinesisServiceError(error: unknown): error is KinesisServiceError {
  return error instanceof KinesisServiceError || hasName(error, ['KinesisServiceError']);
}

export function isKinesisNetworkError(error: unknown): error is KinesisNetworkError {
  return error instanceof KinesisNetworkError || hasName(error, ['KinesisNetworkError']);
}

export function isKinesisTimeoutError(error: unknown): error is KinesisTimeoutError {
  return error instanceof KinesisTimeoutError || hasName(error, ['KinesisTimeoutError']);
}

export function isKinesisValidationError(error: unknown): error is KinesisValidationError {
  return error instanceof KinesisValidationError || hasName(error, ['KinesisValidationError']);
}

export function isKinesisRetryQuotaExceededError(error: unknown): error is KinesisRetryQuotaExceededError {
  return error instanceof KinesisRetryQuotaExceededError || hasName(error, ['KinesisRetryQuotaExceededError']);
}

/**
 * Reduce a wire fault name to its short form, as the AWS SDKs do
 * (aws-sdk-js-v3 `packages/core/src/submodules/protocols/json/parseJsonBody.ts`, `sanitizeErrorCode`):
 * cut everything after `:`, keep what follows `#`.
 */
export function sanitizeFaultName(raw: string): string {
  let name = raw;
  const colon = name.indexOf(':');
  if (colon >= 0) name = name.slice(0, colon);
  const hash = name.indexOf('#');
  if (hash >= 0) name = name.slice(hash + 1);
  return name.trim();
}

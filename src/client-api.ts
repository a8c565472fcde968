/**
 * `kinesis-edge/client`: the API client on its own — every operation, paginators, waiters and the
 * error classes — for apps that call the API and use neither the producer, the consumer nor
 * enhanced fan-out. The package root re-exports all of this too; importing this subpath instead
 * loads about a third of the code, which is what a Node process pays at start-up
 * (bench/RESULTS.md, cold import). Bundlers drop what an app does not use either way.
 */
export { createKinesisClient, getClockOffset, signKinesisRequest } from './client.ts';
export type { CallOptions, KinesisClient, KinesisClientConfig } from './client.ts';
export type { AwsCredentials, CredentialsInput, CredentialsProvider } from './credentials.ts';
export {
  KinesisError,
  KinesisNetworkError,
  KinesisRetryQuotaExceededError,
  KinesisServiceError,
  KinesisTimeoutError,
  KinesisValidationError,
  isKinesisError,
  isKinesisNetworkError,
  isKinesisRetryQuotaExceededError,
  isKinesisServiceError,
  isKinesisTimeoutError,
  isKinesisValidationError,
} from './errors.ts';
export type { FaultKind, KinesisFaultName, ValidationIssue } from './errors.ts';
export { DEFAULT_RECORD_LIMITS, MAX_RECORDS_PER_PUT_RECORDS } from './limits.ts';
export type { RecordLimits } from './limits.ts';
export type { RetryOptions } from './retry.ts';
export * from './operations/index.ts';
export * from './paginate.ts';
export * from './wait.ts';
export type * from './shapes.ts';

/**
 * kinesis-edge: an Amazon Kinesis Data Streams client for browsers, Cloudflare Workers, Deno, Bun
 * and Node, over fetch and WebCrypto. Re-exports only.
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
export * from './producer/index.ts';
export * from './consumer/index.ts';
export * from './event-stream/index.ts';

/**
 * kinesis-edge: an Amazon Kinesis Data Streams client for browsers, Cloudflare Workers, Deno, Bun
 * and Node, over fetch and WebCrypto. Re-exports only: the API client (also its own subpath,
 * `kinesis-edge/client`), the producer, the consumer and enhanced fan-out.
 */
export * from './client-api.ts';
export * from './producer/index.ts';
export * from './consumer/index.ts';
export * from './event-stream/index.ts';
export { fromCognitoIdentityPool } from './credentials-cognito.ts';
export type { CognitoCredentialsProvider, CognitoIdentityPoolOptions, CognitoLogins, IdentityIdStorage } from './credentials-cognito.ts';

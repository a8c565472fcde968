// Types for local-kinesis.mjs (plain JavaScript so that Node 20 runs it without a TypeScript step).

/** A free loopback port (listens on 127.0.0.1:0 and closes again). */
export declare function freePort(): Promise<number>;

/** kinesis-local's package directory (holding main.js and server.json). */
export declare function kinesisLocalDir(): string;

/** A SigV4-shaped `Authorization` header that kinesis-local accepts (it never verifies signatures). */
export declare const DUMMY_AUTHORIZATION: string;

export interface LocalKinesisOptions {
  /**
   * kinesis-local configuration variables; they override the defaults. The parent's environment
   * is not inherited (apart from `PATH`).
   */
  env?: Record<string, string>;
  /** Node options for the child, e.g. `--max-old-space-size=6144`. */
  nodeArgs?: string[];
  /** How long to wait for it to answer ListStreams. @default 30_000 */
  startTimeoutMs?: number;
  /** @deprecated the older name of `startTimeoutMs` */
  timeoutMs?: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL. @default 1_000 */
  stopTimeoutMs?: number;
  /** Tries with fresh ports when a port was taken between choosing and binding it. @default 3 */
  portAttempts?: number;
}

export interface LocalKinesis {
  /** Plain-HTTP endpoint, e.g. `http://127.0.0.1:41234`. */
  endpoint: string;
  port: number;
  /** The TLS port (self-signed certificate from kinesis-local/server.json). */
  tlsPort: number;
  pid: number;
  /** The last 64 KiB of the child's stdout and stderr. */
  output(): string;
  /** SIGTERM, then SIGKILL after `stopTimeoutMs`. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the embedded local Kinesis on free loopback ports; resolves once it answers ListStreams. */
export declare function startLocalKinesis(options?: LocalKinesisOptions): Promise<LocalKinesis>;

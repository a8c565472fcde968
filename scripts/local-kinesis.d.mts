// Types for local-kinesis.mjs (plain JavaScript so that Node 20 runs it without a TypeScript step).

/** A free loopback port (listens on 127.0.0.1:0 and closes again). */
export declare function freePort(): Promise<number>;

/** Starts the embedded local Kinesis on a free loopback port; `stop()` ends it. */
export declare function startLocalKinesis(options?: { env?: Record<string, string>; timeoutMs?: number }): Promise<{ endpoint: string; stop: () => Promise<void> }>;

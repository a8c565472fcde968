// Types for dev.mjs (plain JavaScript so that Node 20 runs it without a TypeScript step).

/** Credentials the local Kinesis accepts (it checks that requests are signed, not by whom). */
export declare const LOCAL_CREDENTIALS: Readonly<{ accessKeyId: string; secretAccessKey: string }>;

export interface IngestWorkerOptions {
  /** `KINESIS_ENDPOINT`, e.g. the local Kinesis. */
  kinesisEndpoint?: string;
  /** `STREAM_NAME`. */
  streamName: string;
  /** `ALLOWED_ORIGINS`. */
  allowedOrigins: string | string[];
  /** @default a free port */
  port?: number;
  /** @default 'us-east-1' */
  region?: string;
  /**
   * Written to `.dev.vars` as the Worker's secrets; `null` starts it without secrets.
   * @default LOCAL_CREDENTIALS
   */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | null;
  /** Further secrets for `.dev.vars`: the session and Turnstile ones (session.ts, turnstile.ts). */
  secrets?: { SESSION_SECRET?: string; TURNSTILE_SECRET_KEY?: string };
  /** The `ratelimits` binding. @default { limit: 600, period: 60 } */
  rateLimit?: { limit: number; period: 10 | 60 };
  /** `MAX_BODY_BYTES`. @default the Worker's 65536 */
  maxBodyBytes?: number;
  /** Country in `request.cf`. @default wrangler dev's placeholder ("US") */
  country?: string;
  /** Further vars (never secrets). */
  vars?: Record<string, string>;
  /** Run wrangler.jsonc's `env.queue` variant: `DELIVERY=queue` with its queue producer and consumer bindings. */
  queue?: boolean;
  /** With `queue`: overrides for the consumer's settings, e.g. a short retry ladder in a test. */
  queueConsumer?: { max_retries?: number; max_batch_timeout?: number };
  /** @default 60000 */
  startTimeoutMs?: number;
  /** Receives wrangler's output as it comes. */
  onOutput?: (text: string) => void;
}

export interface IngestWorker {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  pid: number;
  /** The last 256 KiB of wrangler's output (including the Worker's console). */
  output(): string;
  /** Stops wrangler and workerd and removes the generated directory. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the ingest Worker with `wrangler dev` on 127.0.0.1 and resolves once it answers. */
export declare function startIngestWorker(options: IngestWorkerOptions): Promise<IngestWorker>;

export interface DemoPage {
  html: string;
  trackerJs: string;
}

/** Bundles the tracker for the demo page (an IIFE exposing `window.KinesisEdgeTracker`). */
export declare function buildDemoPage(): Promise<DemoPage>;

export interface DemoServer {
  /** `http://127.0.0.1:<port>/` */
  url: string;
  /** `http://127.0.0.1:<port>` */
  origin: string;
  port: number;
  stop(): Promise<void>;
}

/** Serves the demo page, `/tracker.js` and `/config.js` on 127.0.0.1. */
export declare function startDemoServer(options: { collectUrl: string; port?: number; page?: DemoPage }): Promise<DemoServer>;

/** A free loopback port. */
export declare function freePort(): Promise<number>;

/** Parses wrangler's JSON-with-comments configuration. */
export declare function parseJsonc(text: string): any;

/** Bundles the Worker's entry into one ESM file, as wrangler would. */
export declare function bundleWorker(entry: string, outfile: string): Promise<void>;

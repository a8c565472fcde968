// Types for clickstream-demo.mjs (plain JavaScript so that Node 20 runs it without a build step).

export interface ClickstreamDemoOptions {
  /** The built package (`dist/index.js`), or anything with the same exports. */
  lib: any;
  /** Port of the demo page. @default a free one */
  port?: number;
  /** Stop after this many records were shown. @default Infinity */
  stopAfter?: number;
  /** @default 'clickstream' */
  streamName?: string;
  /** Aborting stops the tail and everything the demo started (what Ctrl-C does). */
  signal?: AbortSignal;
  /** @default console.log */
  log?: (line: string) => void;
}

/** Runs the clickstream demo until `signal` aborts or `stopAfter` records were shown, then stops everything. */
export declare function runClickstreamDemo(options: ClickstreamDemoOptions): Promise<void>;

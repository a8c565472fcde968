#!/usr/bin/env node
// The clickstream demo: the embedded local Kinesis, a stream, the edge ingest Worker under
// `wrangler dev` pointed at it, the demo page with the tracker, and a live tail of the records as
// they land in the stream (read with the consumer). Prints the URL to open; Ctrl-C stops
// everything.
//
// Flags: --port N     serve the demo page on this port (default: a free one)
//        --records N  stop by itself after N records were read (used by the test suite)
import { fileURLToPath } from 'node:url';
import { startDemoServer, startIngestWorker, freePort, LOCAL_CREDENTIALS } from '../worker-example/dev.mjs';
import { startLocalKinesis } from './local-kinesis.mjs';

/**
 * Runs the demo until `signal` aborts or `stopAfter` records were shown.
 * @param {{ lib: any, port?: number, stopAfter?: number, streamName?: string, signal?: AbortSignal, log?: (line: string) => void }} options
 *   `lib` is the built package (`dist/index.js`).
 */
export async function runClickstreamDemo(options) {
  const { lib, stopAfter = Infinity, streamName = 'clickstream', log = console.log } = options;
  const { createKinesisClient, createStream, waitForStreamActive, readStream, recordJson } = lib;
  if (typeof readStream !== 'function') throw new Error('the built package has no readStream: run `npm run build`');
  const cleanups = [];
  const controller = new AbortController();
  const relay = () => controller.abort();
  options.signal?.addEventListener('abort', relay, { once: true });
  try {
    const local = await startLocalKinesis();
    cleanups.push(() => local.stop());
    // kinesis-local checks that requests are signed, not who signed them.
    const client = createKinesisClient({ region: 'us-east-1', endpoint: local.endpoint, credentials: LOCAL_CREDENTIALS });
    // The page's origin must be allowed by the Worker, and the page must know the Worker's URL.
    const workerPort = await freePort();
    const collectUrl = `http://127.0.0.1:${workerPort}/collect`;
    const demo = await startDemoServer({ collectUrl, port: options.port });
    cleanups.push(() => demo.stop());
    const starting = startIngestWorker({ kinesisEndpoint: local.endpoint, streamName, allowedOrigins: demo.origin, port: workerPort });
    starting.catch(() => {}); // awaited below, after the stream is created
    cleanups.push(() => starting.then((worker) => worker.stop()));
    await createStream(client, { StreamName: streamName, ShardCount: 2 });
    await waitForStreamActive(client, { StreamName: streamName }, { intervalMs: 100, timeoutMs: 30_000 });
    await starting;

    log(`local Kinesis   ${local.endpoint}  (stream "${streamName}", 2 shards)`);
    log(`ingest Worker   ${collectUrl}  (wrangler dev, workerd)`);
    log(`demo page       ${demo.url}`);
    log(`\nOpen ${demo.url} and click around; events appear here as they land in Kinesis. Ctrl-C to stop.\n`);

    let shown = 0;
    if (shown >= stopAfter) return;
    for await (const record of readStream(client, { streamName, from: { type: 'TRIM_HORIZON' }, signal: controller.signal, maxIdleDelayMs: 1_000 })) {
      const event = recordJson(record);
      const where = (() => {
        try {
          return new URL(event.url).pathname;
        } catch {
          return event.url;
        }
      })();
      log(
        `${record.shardId}  ${String(record.sequenceNumber).slice(-8)}  ${event.type.padEnd(8)} ${String(event.name).padEnd(16)} ${where.padEnd(14)} ` +
          `session ${String(event.sessionId).slice(0, 8)}  ${event.country ?? '--'}  id ${event.id}`,
      );
      if (++shown >= stopAfter) break;
    }
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  } finally {
    options.signal?.removeEventListener('abort', relay);
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  }
}

async function main() {
  const args = process.argv.slice(2);
  const flag = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : undefined;
  };
  const lib = await import('../dist/index.js').catch(() => {
    console.error('kinesis-edge is not built: run `npm run build` first (npm start does it for you).');
    process.exit(1);
  });
  const controller = new AbortController();
  const stop = () => {
    if (controller.signal.aborted) process.exit(130);
    console.log('\nstopping…');
    controller.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    await runClickstreamDemo({ lib, port: flag('--port'), stopAfter: flag('--records'), signal: controller.signal });
    console.log('stopped the Worker, the demo page and the local Kinesis; bye');
  } catch (error) {
    console.error(error);
    process.exitCode = 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();

#!/usr/bin/env node
// What one POST /collect of 100 events costs the edge ingest Worker, run locally by `wrangler dev`
// (workerd) against the local Kinesis. Exports runWorkerBench() for bench/run.mjs; run alone it
// prints its Markdown section.
//
// CPU time comes from /proc: the user + system time of every workerd process of the dev server,
// before and after a series of requests. Inside a Worker, Date.now() and performance.now() only
// advance on I/O (a Spectre mitigation), so the Worker cannot time its own CPU. The figure holds
// workerd's HTTP parsing, gzip and wrangler's local proxy too: an upper bound of what Cloudflare
// would bill as CPU time (the free plan allows 10 ms per request:
// https://developers.cloudflare.com/workers/platform/limits/#cpu-time).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startIngestWorker, LOCAL_CREDENTIALS } from '../worker-example/dev.mjs';
import { startLocalKinesis } from '../scripts/local-kinesis.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ORIGIN = 'http://127.0.0.1:9';
// /proc/<pid>/stat times are in clock ticks; Linux exposes USER_HZ = 100 to user space.
const TICK_MS = 10;

/** Sum of utime + stime (ms) of the workerd processes in process group `pgid`. */
function workerdCpuMs(pgid) {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp … utime(14) stime(15): split after the last ')' since comm may hold spaces.
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (comm !== 'workerd' || Number(fields[2]) !== pgid) continue;
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * TICK_MS;
}

/** A realistic tracker event (about 300 bytes of JSON), the shape of src/tracker/event.ts. */
function trackerEvent(i, run) {
  return {
    id: `${run}-${i}-${Math.random().toString(36).slice(2, 10)}`,
    type: i % 3 === 0 ? 'page' : 'click',
    name: i % 3 === 0 ? '/pricing' : 'buy',
    ts: Date.now(),
    anonymousId: 'c5b1a3e2-7f7d-4f4e-9a51-1d0f4b5c9e21',
    sessionId: `session-${run % 8}`,
    url: 'https://shop.example/pricing?utm_source=newsletter',
    referrer: 'https://shop.example/',
    viewport: { w: 1280, h: 720 },
    properties: { text: 'Buy now', sku: `A${i}` },
  };
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))];
}

async function series(url, count, makeBody) {
  const wall = [];
  for (let run = 0; run < count; run++) {
    const body = makeBody(run);
    const started = performance.now();
    const response = await fetch(url, { method: 'POST', headers: { Origin: ORIGIN, 'Content-Type': 'text/plain' }, body });
    await response.arrayBuffer();
    wall.push(performance.now() - started);
    if (![200, 400, 404].includes(response.status)) throw new Error(`unexpected ${response.status} from ${url}`);
  }
  return wall.sort((a, b) => a - b);
}

/**
 * Runs the Worker benchmark and returns a Markdown section.
 * @param {{ quick?: boolean }} [options]
 * @returns {Promise<string>}
 */
export async function runWorkerBench(options = {}) {
  const requests = options.quick ? 20 : 100;
  const lib = await import(join(root, 'dist/index.js'));
  const local = await startLocalKinesis();
  let worker;
  try {
    const client = lib.createKinesisClient({ region: 'us-east-1', endpoint: local.endpoint, credentials: LOCAL_CREDENTIALS });
    const streamName = 'bench-worker';
    await lib.createStream(client, { StreamName: streamName, ShardCount: 4 });
    await lib.waitForStreamActive(client, { StreamName: streamName }, { intervalMs: 100, timeoutMs: 30_000 });
    worker = await startIngestWorker({
      kinesisEndpoint: local.endpoint,
      streamName,
      allowedOrigins: ORIGIN,
      rateLimit: { limit: 1_000_000, period: 60 },
    });
    const collect = `${worker.url}/collect`;
    const batch = (size) => (run) => JSON.stringify(Array.from({ length: size }, (_, i) => trackerEvent(i, run)));
    const bodyBytes = batch(100)(0).length;

    const measure = async (url, makeBody) => {
      await series(url, 5, makeBody); // warm-up: JIT, connections, signing-key cache
      const cpuBefore = workerdCpuMs(worker.pid);
      const wall = await series(url, requests, makeBody);
      const cpu = (workerdCpuMs(worker.pid) - cpuBefore) / requests;
      return { p50: percentile(wall, 0.5), p95: percentile(wall, 0.95), cpu };
    };
    const rows = [
      ['100 events (validate, enrich, 1 PutRecords)', await measure(collect, batch(100))],
      ['1 event', await measure(collect, batch(1))],
      ['1 invalid event (400, no Kinesis call)', await measure(collect, () => JSON.stringify([{ ...trackerEvent(0, 0), type: 'nope' }]))],
      ['unknown route (404): the local stack alone', await measure(`${worker.url}/nothing`, () => '')],
    ];
    const fmt = (n) => n.toFixed(1);
    return [
      '## Edge ingest Worker: cost of a 100-event request',
      '',
      `\`wrangler dev\` (workerd, local mode) against the local Kinesis, ${requests} sequential requests per row after 5 warm-up requests.`,
      `A 100-event body is ${(bodyBytes / 1024).toFixed(1)} KiB. CPU is the user + system time of the workerd processes per request,`,
      "read from /proc: it includes workerd's HTTP handling and wrangler's local proxy, so it is an upper bound of the",
      "Worker's billed CPU time (free plan: 10 ms per request). Wall time includes the local Kinesis round trip.",
      '',
      '| Request | Wall p50 (ms) | Wall p95 (ms) | workerd CPU per request (ms) |',
      '| --- | ---: | ---: | ---: |',
      ...rows.map(([name, r]) => `| ${name} | ${fmt(r.p50)} | ${fmt(r.p95)} | ${fmt(r.cpu)} |`),
      '',
      'Subrequests per request: 1 PutRecords (up to 6 with throttling: 3 producer attempts × 2 client attempts), under the free plan\'s 50.',
      '',
    ].join('\n');
  } finally {
    await worker?.stop();
    await local.stop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(await runWorkerBench({ quick: process.argv.includes('--quick') }));
}

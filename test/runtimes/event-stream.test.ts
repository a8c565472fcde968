// Enhanced fan-out in each runtime: test/runtimes/efo/efo-check.mjs, bundled from the sources,
// subscribes to a shard of kinesis-local through the runtime's own fetch and ReadableStream.
// It shows that Node, Deno, workerd and Chromium stream the event-stream body as it arrives
// (kinesis-local sends an event a second; a buffering runtime would deliver nothing for 5 minutes).
// Missing runtimes fail in CI and are skipped elsewhere, as in the contract matrix.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bundleEntry, fetchFromWorkerd, runDeno, runInChromium, runNode } from './support/harness.ts';
import { chromiumBinary, denoBinary, requireRuntime, workerdAvailable } from './support/runtimes.ts';

interface EfoReport {
  runtime: string;
  ok: boolean;
  received: string[];
  firstEventMs: number;
  deliveryMs: number[];
  error?: string;
}

const RESULT_PREFIX = 'KINESIS_EDGE_EFO ';
const endpoint = inject('kinesisEndpoint');
const source = fileURLToPath(new URL('./efo/', import.meta.url));
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kinesis-edge-efo-'));
  await writeFile(join(dir, 'efo.mjs'), await bundleEntry(source, 'cli.mjs', 'workerd'));
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function fromOutput(stdout: string, stderr: string): EfoReport {
  const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
  if (line === undefined) throw new Error(`no result line\nstdout: ${stdout}\nstderr: ${stderr}`);
  return JSON.parse(line.slice(RESULT_PREFIX.length)) as EfoReport;
}

function expectStreamed(report: EfoReport, runtimePrefix: string): void {
  expect(report.error).toBeUndefined();
  expect(report.runtime.startsWith(runtimePrefix), report.runtime).toBe(true);
  expect(report.received).toEqual(['one', 'two', 'three']);
  // kinesis-local sends an event a second: streamed, each record arrives within a few seconds.
  expect(report.firstEventMs).toBeLessThan(5_000);
  for (const ms of report.deliveryMs) expect(ms).toBeLessThan(5_000);
}

describe('SubscribeToShard streams in every runtime', () => {
  it('streams in Node', async () => {
    const result = await runNode(dir, 'efo.mjs', [endpoint]);
    expectStreamed(fromOutput(result.stdout, result.stderr), 'node ');
  }, 90_000);

  it('streams in Deno', async ({ skip }) => {
    const deno = requireRuntime('Deno', denoBinary(), skip);
    const result = await runDeno(deno, dir, 'efo.mjs', [endpoint]);
    expectStreamed(fromOutput(result.stdout, result.stderr), 'deno ');
  }, 90_000);

  it('streams in workerd', async ({ skip }) => {
    requireRuntime('workerd', workerdAvailable(), skip);
    const script = await bundleEntry(source, 'worker.mjs', 'workerd');
    const { status, text } = await fetchFromWorkerd(script, `http://efo.test/?endpoint=${encodeURIComponent(endpoint)}`);
    expect(status, text).toBe(200);
    expectStreamed(JSON.parse(text) as EfoReport, 'workerd');
  }, 90_000);

  it('streams in Chromium, cross-origin', async ({ skip }) => {
    const chromium = requireRuntime('Chromium', chromiumBinary(), skip);
    const bundle = await bundleEntry(source, 'browser.mjs', 'browser');
    const { value, log } = await runInChromium(
      chromium,
      {
        '/': { type: 'text/html', body: '<!doctype html><meta charset="utf-8"><script type="module" src="/efo.js"></script>' },
        '/efo.js': { type: 'text/javascript', body: bundle },
      },
      `/?endpoint=${encodeURIComponent(endpoint)}`,
      '__efo',
    );
    expect(value, log.join('\n')).toBeDefined();
    expectStreamed(value as EfoReport, 'chromium ');
  }, 90_000);
});

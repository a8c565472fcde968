// The runtime matrix: test/runtimes/fixture/contract.mjs, run on the packed package in Node,
// Deno, Bun, workerd and Chromium against the kinesis-local of vitest's global setup.
// A runtime that is missing fails in CI and is skipped (with the install command) elsewhere.
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { bundleEntry, fetchFromWorkerd, runBun, runDeno, runInChromium, runNode } from './support/harness.ts';
import { describeRun, preparePackedFixture, type PackedFixture, type RunResult } from './support/packed-fixture.ts';
import { bunBinary, chromiumBinary, denoBinary, requireRuntime, workerdAvailable } from './support/runtimes.ts';

interface ContractReport {
  runtime: string;
  endpoint: string;
  passed: number;
  failed: number;
  steps: Array<{ name: string; ok: boolean; ms: number; error?: string }>;
  pageOrigin?: string;
  isSecureContext?: boolean;
}

const RESULT_PREFIX = 'KINESIS_EDGE_CONTRACT ';
/** The steps of contract.mjs; a runtime that reports fewer ran an old or partial suite. */
const EXPECTED_STEPS = [
  'runtime has WebCrypto and fetch',
  'create stream',
  'put with the client (putRecords)',
  'put with the producer (createProducer)',
  'read back (ListShards, GetShardIterator, GetRecords)',
  'read back with the consumer (readStream)',
  'session credentials from an async provider',
  'typed service error (ResourceNotFoundException)',
  'validation error names the field and sends nothing',
  'delete stream',
];

const endpoint = inject('kinesisEndpoint');
let fixture: PackedFixture;

beforeAll(async () => {
  fixture = await preparePackedFixture();
}, 180_000);

function reportFromOutput(label: string, result: RunResult): ContractReport {
  const line = result.stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
  if (line === undefined) throw new Error(`${describeRun(label, result)}\n(no ${RESULT_PREFIX.trim()} line)`);
  return JSON.parse(line.slice(RESULT_PREFIX.length)) as ContractReport;
}

function expectContractPassed(report: ContractReport, runtimePrefix: string): void {
  const failures = report.steps.filter((s) => !s.ok).map((s) => `  ✗ ${s.name}: ${s.error}`);
  expect(failures, `${report.runtime}: failed contract steps:\n${failures.join('\n')}`).toEqual([]);
  expect(report.steps.map((s) => s.name)).toEqual(EXPECTED_STEPS);
  expect(report.runtime.startsWith(runtimePrefix), `ran in ${report.runtime}`).toBe(true);
}

describe.concurrent('runtime contract on the packed package', () => {
  it('passes in Node', async () => {
    const result = await runNode(fixture.dir, 'run-cli.mjs', [endpoint]);
    const report = reportFromOutput('node run-cli.mjs', result);
    expectContractPassed(report, 'node ');
    expect(result.code).toBe(0);
  }, 90_000);

  it('passes in Deno', async ({ skip }) => {
    const deno = requireRuntime('Deno', denoBinary(), skip);
    const result = await runDeno(deno, fixture.dir, 'run-cli.mjs', [endpoint]);
    const report = reportFromOutput('deno run run-cli.mjs', result);
    expectContractPassed(report, 'deno ');
    expect(result.code).toBe(0);
  }, 90_000);

  it('passes in Bun', async ({ skip }) => {
    const bun = requireRuntime('Bun', bunBinary(), skip);
    const result = await runBun(bun, fixture.dir, 'run-cli.mjs', [endpoint]);
    const report = reportFromOutput('bun run run-cli.mjs', result);
    expectContractPassed(report, 'bun ');
    expect(result.code).toBe(0);
  }, 90_000);

  it('passes in workerd (a module Worker bundled like wrangler does)', async ({ skip }) => {
    requireRuntime('workerd', workerdAvailable(), skip);
    const script = await bundleEntry(fixture.dir, 'worker.mjs', 'workerd');
    const { status, text } = await fetchFromWorkerd(script, `http://contract.test/?endpoint=${encodeURIComponent(endpoint)}`);
    expect(status, text).toBe(200);
    expectContractPassed(JSON.parse(text) as ContractReport, 'workerd');
  }, 90_000);

  it('passes in Chromium, cross-origin, in a secure context', async ({ skip }) => {
    const chromium = requireRuntime('Chromium', chromiumBinary(), skip);
    const bundle = await bundleEntry(fixture.dir, 'browser.mjs', 'browser');
    const { value, log } = await runInChromium(
      chromium,
      {
        '/': { type: 'text/html', body: '<!doctype html><meta charset="utf-8"><script type="module" src="/contract.js"></script>' },
        '/contract.js': { type: 'text/javascript', body: bundle },
      },
      `/?endpoint=${encodeURIComponent(endpoint)}`,
      '__contract',
    );
    const report = value as ContractReport;
    expect(report.steps, log.join('\n')).toBeDefined();
    expectContractPassed(report, 'chromium ');
    // Page and Kinesis on different origins: every call went through a CORS preflight.
    expect(report.pageOrigin).not.toBe(new URL(endpoint).origin);
    expect(report.isSecureContext).toBe(true);
  }, 90_000);
});

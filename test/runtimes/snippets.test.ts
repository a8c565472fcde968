// The documentation's runtime snippets are programs: every fenced block tagged `runtime=<name>`
// in the files of DOCS runs in that runtime, on the packed package, against kinesis-local, and
// must leave its record in the stream. What the test changes in a snippet before running it is
// written in an HTML comment at the top of the runtimes section, so readers of the source can see it.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestStream, readAllRecords } from '../support/kinesis-local.ts';
import { bundleEntry, fetchFromWorkerd, runBun, runDeno, runInChromium, runNode } from './support/harness.ts';
import { describeRun, preparePackedFixture, REPO_ROOT, type PackedFixture, type RunResult } from './support/packed-fixture.ts';
import { bunBinary, chromiumBinary, denoBinary, requireRuntime, workerdAvailable } from './support/runtimes.ts';

/** Markdown files whose `runtime=` snippets are executed. */
const DOCS = ['README.md'];

/** Every runtime the docs must show; a snippet lost in an edit fails the test. */
const RUNTIMES = ['node', 'bun', 'deno', 'workerd', 'browser-bundle', 'browser-importmap'] as const;
type Runtime = (typeof RUNTIMES)[number];

interface Snippet {
  runtime: Runtime;
  language: string;
  code: string;
  /** `README.md:42`, for test names and failures. */
  where: string;
}

const CREDENTIAL_ENV = { AWS_ACCESS_KEY_ID: 'AKIDSNIPPETTEST', AWS_SECRET_ACCESS_KEY: 'snippet-test-secret' };
const WORKER_EVENT = { user: 'user-1', page: '/' };

async function extractSnippets(): Promise<Snippet[]> {
  const snippets: Snippet[] = [];
  for (const doc of DOCS) {
    const text = await readFile(join(REPO_ROOT, doc), 'utf8');
    for (const match of text.matchAll(/^```(\w+) runtime=([\w-]+)[^\n]*\n([\s\S]*?)^```/gm)) {
      const runtime = match[2] as Runtime;
      if (!RUNTIMES.includes(runtime)) throw new Error(`${doc}: unknown snippet runtime "${runtime}" (known: ${RUNTIMES.join(', ')})`);
      const line = text.slice(0, match.index).split('\n').length;
      snippets.push({ runtime, language: match[1]!, code: match[3]!, where: `${doc}:${line}` });
    }
  }
  return snippets;
}

/** Points a snippet at kinesis-local and a fresh stream; fails when a snippet lost the hooks. */
function localise(snippet: Snippet, endpoint: string, streamName: string): string {
  const regionHook = /region: 'us-east-1',/g;
  const streamHook = /'clicks'/g;
  expect(snippet.code, `${snippet.where} must configure region: 'us-east-1',`).toMatch(regionHook);
  expect(snippet.code, `${snippet.where} must write to the stream 'clicks'`).toMatch(streamHook);
  return snippet.code
    .replace(regionHook, `region: 'us-east-1', endpoint: ${JSON.stringify(endpoint)},`)
    .replace(streamHook, JSON.stringify(streamName));
}

const endpoint = inject('kinesisEndpoint');
const snippets = await extractSnippets();
let fixture: PackedFixture;
let snippetDir: string;

beforeAll(async () => {
  fixture = await preparePackedFixture();
  snippetDir = join(fixture.dir, 'snippets');
  await mkdir(snippetDir, { recursive: true });
}, 180_000);

async function writeSnippet(code: string, extension: string): Promise<string> {
  const name = `snippet-${randomUUID().slice(0, 8)}.${extension}`;
  await writeFile(join(snippetDir, name), code);
  return `snippets/${name}`;
}

function expectExitedCleanly(label: string, result: RunResult): void {
  expect(result.code, describeRun(label, result)).toBe(0);
}

/** The page-side runner: imports the snippet module and reports how its top-level await ended. */
const PAGE_RUNNER =
  "<script type=\"module\">globalThis.__snippet = import('/snippet.js').then(() => ({ ok: true }), (e) => ({ ok: false, error: String(e?.stack ?? e) }));</script>";

function temporaryCredentialsFile(): { type: string; body: string } {
  return {
    type: 'application/json',
    body: JSON.stringify({
      accessKeyId: 'ASIASNIPPETTEST',
      secretAccessKey: 'snippet-test-secret',
      sessionToken: 'snippet-session-token',
      expiration: new Date(Date.now() + 3_600_000).toISOString(),
    }),
  };
}

async function runSnippet(snippet: Snippet, code: string, skip: (note: string) => never): Promise<void> {
  switch (snippet.runtime) {
    case 'node': {
      const file = await writeSnippet(code, 'mjs');
      expectExitedCleanly(`node ${file}`, await runNode(fixture.dir, file, [], CREDENTIAL_ENV));
      return;
    }
    case 'bun': {
      const bun = requireRuntime('Bun', bunBinary(), skip);
      const file = await writeSnippet(code, snippet.language === 'js' ? 'mjs' : 'ts');
      expectExitedCleanly(`bun ${file}`, await runBun(bun, fixture.dir, file, [], CREDENTIAL_ENV));
      return;
    }
    case 'deno': {
      const deno = requireRuntime('Deno', denoBinary(), skip);
      const file = await writeSnippet(code, snippet.language === 'js' ? 'mjs' : 'ts');
      const result = await runDeno(deno, fixture.dir, file, [], { env: CREDENTIAL_ENV, allowEnv: Object.keys(CREDENTIAL_ENV) });
      expectExitedCleanly(`deno run ${file}`, result);
      return;
    }
    case 'workerd': {
      requireRuntime('workerd', workerdAvailable(), skip);
      const file = await writeSnippet(code, snippet.language === 'js' ? 'mjs' : 'ts');
      const script = await bundleEntry(fixture.dir, file, 'workerd');
      const { status, text } = await fetchFromWorkerd(script, 'http://worker.test/', {
        bindings: CREDENTIAL_ENV,
        method: 'POST',
        body: JSON.stringify(WORKER_EVENT),
        headers: { 'content-type': 'application/json' },
      });
      expect(status, text).toBeGreaterThanOrEqual(200);
      expect(status, text).toBeLessThan(300);
      return;
    }
    case 'browser-bundle': {
      const chromium = requireRuntime('Chromium', chromiumBinary(), skip);
      const file = await writeSnippet(code, snippet.language === 'js' ? 'mjs' : 'ts');
      const bundle = await bundleEntry(fixture.dir, file, 'browser');
      const { value, log } = await runInChromium(
        chromium,
        {
          '/': { type: 'text/html', body: `<!doctype html><meta charset="utf-8">${PAGE_RUNNER}` },
          '/snippet.js': { type: 'text/javascript', body: bundle },
          '/kinesis-credentials': temporaryCredentialsFile(),
        },
        '/',
        '__snippet',
      );
      expect(value, log.join('\n')).toEqual({ ok: true });
      return;
    }
    case 'browser-importmap': {
      const chromium = requireRuntime('Chromium', chromiumBinary(), skip);
      // The page keeps the snippet's import map; its inline module moves to /snippet.js so the
      // runner can await it (import maps apply to every module of the document).
      const module = /<script type="module">([\s\S]*?)<\/script>/.exec(code);
      expect(module, `${snippet.where} has no <script type="module">`).not.toBeNull();
      const page = code.replace(module![0], PAGE_RUNNER);
      const { value, log } = await runInChromium(
        chromium,
        {
          '/': { type: 'text/html', body: `<!doctype html><meta charset="utf-8">${page}` },
          '/snippet.js': { type: 'text/javascript', body: module![1]! },
          '/kinesis-credentials': temporaryCredentialsFile(),
        },
        '/',
        '__snippet',
        { '/node_modules/': join(fixture.dir, 'node_modules') },
      );
      expect(value, log.join('\n')).toEqual({ ok: true });
      return;
    }
  }
}

describe.concurrent('documentation snippets', () => {
  it('cover every runtime', () => {
    const shown = new Set(snippets.map((s) => s.runtime));
    expect(RUNTIMES.filter((r) => !shown.has(r)), `runtimes without a snippet in ${DOCS.join(', ')}`).toEqual([]);
  });

  it.for(snippets)('$runtime snippet ($where) runs and stores its record', { timeout: 120_000 }, async (snippet, { skip }) => {
    const streamName = await createTestStream(endpoint, { streamName: `snippet-${snippet.runtime}-${randomUUID().slice(0, 8)}` });
    await runSnippet(snippet, localise(snippet, endpoint, streamName), skip);
    const records = await readAllRecords(endpoint, streamName);
    expect(records.map((r) => r.PartitionKey)).toEqual(['user-1']);
  });
});

// @vitest-environment happy-dom
// Bundle test for `kinesis-edge/tracker` (the idea of zod's packages/treeshake/bundle-size.test.ts):
// a page importing only createTracker gets the tracker alone, minified, within a gzip ceiling,
// and never signing code, zod, or Node built-ins. The ceiling is raised only in the commit that
// causes the growth, saying why.
import { build } from 'esbuild';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';

// The target: "the tracker alone at most 2.5 KB gzip". Measured 2352 B when written. Raised
// to 2,700 when each page load got an outbox key of its own, taking over the outboxes of pages
// that are gone (2,428 B before, 2,657 B after): the shared key lost one tab's events, since
// localStorage has no lock across tabs (test/unit/tracker-invariants.test.ts). 2,693 B with the
// request timeout, the unload flush past an oversized event and the stored-outbox fallback; 2,711 B
// once a page's writes after pagehide keep its outbox marked gone (test/e2e/clickstream.test.ts).
// Then trimmed to 2,613 B (no Content-Type of its own: fetch sends a string body as text/plain;
// sampling from the session id's random digits instead of a hash of it; Blob for UTF-8 lengths) and
// the ceiling lowered to 2,650. The 2.5 KB is exceeded by about 110 B, the cost of not
// losing a tab's events; said in the closing note.
const GZIP_CEILING_BYTES = 2_650;
// A path, not `new URL('../..', import.meta.url)`: under happy-dom, URL is the DOM's.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

let code = '';
let inputs: string[] = [];

beforeAll(async () => {
  const result = await build({
    stdin: { contents: "export { createTracker } from './src/tracker/index.ts';", resolveDir: root, loader: 'ts' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    metafile: true,
    absWorkingDir: root,
    logLevel: 'silent',
  });
  code = result.outputFiles[0]!.text;
  inputs = Object.keys(result.metafile.inputs).filter((input) => input !== '<stdin>');
});

describe('tracker bundle', () => {
  it(`is at most ${GZIP_CEILING_BYTES} bytes minified and gzipped`, () => {
    const gzipped = gzipSync(code).length;
    expect(gzipped).toBeGreaterThan(1_000);
    expect(gzipped).toBeLessThanOrEqual(GZIP_CEILING_BYTES);
  });

  it('pulls in nothing from outside src/tracker/', () => {
    expect(inputs.length).toBeGreaterThan(0);
    for (const input of inputs) expect(input).toMatch(/^src\/tracker\//);
  });

  it.each(['AWS4-HMAC-SHA256', 'zod', 'node:', 'Buffer', 'process.'])('contains no %s', (needle) => {
    expect(code).not.toContain(needle);
  });

  it('has no module-scope side effects: an unused import bundles to nothing', async () => {
    const result = await build({
      stdin: { contents: "import './src/tracker/index.ts';", resolveDir: root, loader: 'ts' },
      bundle: true,
      minify: true,
      format: 'esm',
      write: false,
      absWorkingDir: root,
      // Without this, package.json's "sideEffects": false alone would drop the import and the
      // test would prove nothing.
      ignoreAnnotations: true,
      logLevel: 'silent',
    });
    expect(result.outputFiles[0]!.text.trim()).toBe('');
  });
});

// What an app pays for kinesis-edge: small apps (test/runtimes/fixture/apps/) bundled for the
// browser from the packed package with esbuild, minified, then gzipped. Modelled on zod's
// packages/treeshake/bundle-size.test.ts.
//
// Each ceiling is the size measured when it was set plus about 10%. When a change makes a bundle
// outgrow its ceiling, first check that the growth is wanted (a tree-shaking regression is not);
// then raise the ceiling in that same commit, to the new measured size + ~10%, and say in the
// commit message what grew and why. Never raise a ceiling in an unrelated commit.
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { preparePackedFixture, REPO_ROOT, type PackedFixture } from './support/packed-fixture.ts';

interface App {
  name: string;
  entry: string;
  /** The package subpaths the app imports; together the apps must cover every export. */
  imports: string[];
  /** Ceiling for the minified + gzipped bundle, in bytes. */
  maxGzipBytes: number;
  /** Strings that show code this app must not carry. */
  mustNotContain?: string[];
  /**
   * No module of the app may be wrapped in esbuild's lazy-init code (`__esm`), which it adds to
   * everything a dynamic import reaches statically: a chunk of the client imported by the lazily
   * loaded zod schemas wraps the client and aws4fetch (vite.config.ts, the base64 chunk).
   */
  noLazyInit?: boolean;
}

const APPS: App[] = [
  {
    name: 'put-only app (createKinesisClient + putRecords)',
    entry: 'apps/put-only.mjs',
    imports: ['.'],
    // measured 9_156 (client, errors, retry, signer, the plain PutRecords validator; no zod; was
    // 9_361 while esbuild wrapped the client and aws4fetch in lazy-init code, see noLazyInit)
    maxGzipBytes: 9_450,
    // Consumer operations: a page that only produces must not ship them.
    mustNotContain: ['GetRecords', 'GetShardIterator', 'SubscribeToShard'],
    noLazyInit: true,
  },
  {
    name: 'producer app (createProducer)',
    entry: 'apps/producer.mjs',
    imports: ['.'],
    // measured 27_785 (the put-only app plus batching, rate limits, shard map, aggregation, and
    // ListShards with zod/mini; was 25_176 when PutRecords was validated by zod too, before the write
    // path got its own validator so that put-only apps carry no zod)
    maxGzipBytes: 30_500,
    mustNotContain: ['GetRecords', 'GetShardIterator', 'SubscribeToShard'],
  },
  {
    name: 'consumer app (readStream)',
    entry: 'apps/consumer.mjs',
    imports: ['.'],
    // measured 22_619 (client, GetRecords/GetShardIterator/ListShards, lineage, checkpoints, KPL
    // deaggregation; +1.3 KB since the schemas load through a dynamic import, which esbuild inlines
    // as lazily initialised modules)
    maxGzipBytes: 24_900,
    // A polling reader neither produces nor carries the enhanced fan-out (event stream) reader.
    mustNotContain: ['PutRecords', 'createProducer', 'SubscribeToShard'],
  },
  {
    name: 'client-only script (kinesis-edge/client)',
    entry: 'apps/client-only.mjs',
    imports: ['./client'],
    // measured 18_320 (client, ListStreams paginator, DescribeStreamSummary and PutRecords, the
    // zod/mini schemas of the first two)
    maxGzipBytes: 18_900,
    // The subpath has no producer, consumer or enhanced fan-out to leak.
    mustNotContain: ['createProducer', 'KinesisProducerError', 'SubscribeToShard', 'GetRecords'],
  },
  {
    name: 'tracker (kinesis-edge/tracker)',
    entry: 'apps/tracker.mjs',
    imports: ['./tracker'],
    // measured 2_409 (the tracker with click capture; test/unit/tracker-size.test.ts holds its
    // sources to 2_500 without it, 2_700 with it); 2_661 since each page load has an outbox of its
    // own and takes over those of pages that are gone (2_474 B before), with the request timeout,
    // the stored-outbox fallback and the trims that followed
    maxGzipBytes: 2_750,
    // It posts to the ingest Worker: no signing, no validation library, no Kinesis client.
    mustNotContain: ['AWS4-HMAC-SHA256', 'x-amz-target', 'PutRecords', 'zod'],
  },
  {
    name: 'whole library (import * as all)',
    entry: 'apps/whole-library.mjs',
    imports: ['.'],
    // measured 46_873 (all 44 operations, their schemas, paginators and waiters, producer, consumer,
    // enhanced fan-out with the event-stream decoder; +5 KB since the plain write-path validator and
    // the lazily loaded schema modules)
    maxGzipBytes: 51_500,
  },
];

/**
 * Node-only names that must never reach a browser bundle. Patterns, not substrings, so that
 * `ArrayBuffer` is not a `Buffer` and `x.process.y` is not the global.
 */
const NEVER_IN_A_BROWSER_BUNDLE: Array<[label: string, pattern: RegExp]> = [
  ['a node: import', /["'`]node:/],
  ['the Buffer global', /(?<![\w$])Buffer\b/],
  ['process.', /(?<![\w$.])process\./],
  ['require(', /(?<![\w$.])require\(/],
];

let fixture: PackedFixture;
beforeAll(async () => {
  fixture = await preparePackedFixture();
}, 180_000);

async function bundleForBrowser(entry: string, minify = true): Promise<string> {
  const result = await build({
    entryPoints: [join(fixture.dir, entry)],
    absWorkingDir: fixture.dir,
    bundle: true,
    minify,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

describe('browser bundles of the packed package', () => {
  it('cover every entry point of the exports map', async () => {
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
    const entryPoints = Object.keys(pkg.exports).filter((key) => key !== './package.json');
    const covered = new Set(APPS.flatMap((app) => app.imports));
    const uncovered = entryPoints.filter((key) => !covered.has(key));
    expect(uncovered, 'add an app with a size ceiling for each new entry point').toEqual([]);
  });

  it.each(APPS)('$name stays under its gzip ceiling and carries no Node code', async (app) => {
    const code = await bundleForBrowser(app.entry);
    const gzipBytes = gzipSync(code, { level: 9 }).length;
    console.info(`${app.name}: ${code.length} B minified, ${gzipBytes} B gzipped (ceiling ${app.maxGzipBytes})`);
    const found = NEVER_IN_A_BROWSER_BUNDLE.filter(([, pattern]) => pattern.test(code)).map(([label]) => label);
    expect(found, 'Node-only code in a browser bundle').toEqual([]);
    const unwanted = (app.mustNotContain ?? []).filter((text) => code.includes(text));
    expect(unwanted, `code this app does not use was bundled`).toEqual([]);
    expect(gzipBytes, `${app.name} grew past its ceiling: see the comment at the top of this file`).toBeLessThanOrEqual(app.maxGzipBytes);
    if (app.noLazyInit) {
      const readable = await bundleForBrowser(app.entry, false);
      const wrapped = [...readable.matchAll(/^var (init_\w+) = __esm\(/gm)].map((match) => match[1]);
      expect(wrapped, 'modules wrapped in lazy-init code').toEqual([]);
    }
  });
});

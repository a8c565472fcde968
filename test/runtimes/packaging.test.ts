// Packaging to the ecosystem's standards, checked on the tarball `npm pack` makes: publint,
// "Are the Types Wrong?" (attw), what the tarball holds, and jsr.json for Deno users.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { formatMessage } from 'publint/utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { denoBinary, requireRuntime } from './support/runtimes.ts';
import { describeRun, preparePackedFixture, REPO_ROOT, run, type PackedFixture } from './support/packed-fixture.ts';

interface PackageJson {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
}

interface JsrJson {
  name: string;
  version: string;
  exports: Record<string, string>;
  imports?: Record<string, string>;
  publish?: { include?: string[]; exclude?: string[] };
}

const readJson = async <T>(path: string): Promise<T> => JSON.parse(await readFile(path, 'utf8')) as T;

let fixture: PackedFixture;
/** The package as installed from the tarball: exactly the files `npm pack` put in it. */
let installed: string;
let pkg: PackageJson;

beforeAll(async () => {
  fixture = await preparePackedFixture();
  installed = join(fixture.dir, 'node_modules/kinesis-edge');
  pkg = await readJson<PackageJson>(join(REPO_ROOT, 'package.json'));
}, 180_000);

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(relative(dir, join(entry.parentPath, entry.name)));
  }
  return out.sort();
}

/** The export targets of one subpath: `{ types, default }` or a string. */
function targets(value: string | Record<string, string>): string[] {
  return typeof value === 'string' ? [value] : Object.values(value);
}

describe('npm package', () => {
  it('passes publint with no errors, warnings or suggestions', async () => {
    const { publint } = await import('publint');
    const tarball = await readFile(fixture.tarball);
    const result = await publint({
      pack: { tarball: tarball.buffer.slice(tarball.byteOffset, tarball.byteOffset + tarball.byteLength) },
      level: 'suggestion',
      strict: true,
    });
    const messages = result.messages.map((m) => `${m.type}: ${formatMessage(m, result.pkg, { color: false })}`);
    expect(messages).toEqual([]);
  });

  it('passes "Are the Types Wrong?" (esm-only profile) for every entry point', async () => {
    // The package is ESM only (STYLE.md), so attw's esm-only profile, which ignores `require()`
    // from CommonJS (node16-cjs: an ESM-only package by design) and `moduleResolution: node10`
    // (predates `exports`, so it cannot see subpaths like kinesis-edge/tracker).
    // attw type-checks with its own pinned TypeScript 5 (a dependency of @arethetypeswrong/core).
    const result = await run(
      process.execPath,
      [join(REPO_ROOT, 'node_modules/@arethetypeswrong/cli/dist/index.js'), fixture.tarball, '--profile', 'esm-only', '--format', 'json'],
      { cwd: fixture.dir, timeoutMs: 60_000 },
    );
    const report = JSON.parse(result.stdout) as {
      analysis: { entrypoints: Record<string, unknown> };
      problems: Record<string, Array<{ kind: string; entrypoint: string; resolutionKind?: string }>>;
    };
    const problems = Object.values(report.problems)
      .flat()
      .filter((p) => p.resolutionKind !== 'node16-cjs' && p.resolutionKind !== 'node10')
      .map((p) => `${p.kind} at ${p.entrypoint} (${p.resolutionKind ?? 'any resolution'})`);
    expect(problems, result.stderr).toEqual([]);
    expect(result.code, describeRun('attw', result)).toBe(0);
    const expected = Object.keys(pkg.exports).filter((key) => key !== './package.json');
    expect(Object.keys(report.analysis.entrypoints).filter((key) => key !== './package.json').sort()).toEqual(expected.sort());
  });

  it('holds every file its exports name, the licence files, and no tests or tooling', async () => {
    const files = await listFiles(installed);
    for (const [subpath, value] of Object.entries(pkg.exports)) {
      for (const target of targets(value)) {
        expect(files, `exports["${subpath}"] names ${target}`).toContain(target.replace(/^\.\//, ''));
      }
    }
    for (const required of ['package.json', 'README.md', 'LICENSE', 'NOTICE', 'dist/index.js', 'dist/index.d.ts']) {
      expect(files).toContain(required);
    }
    const strays = files.filter((f) => /^(test|bench|codegen|scripts|worker-example|\.ci|node_modules)\//.test(f) || f.endsWith('.tgz'));
    expect(strays).toEqual([]);
  });

  it('ships the sources its source maps point at', async () => {
    const files = new Set(await listFiles(installed));
    const missing: string[] = [];
    for (const map of [...files].filter((f) => f.endsWith('.js.map'))) {
      const { sources } = await readJson<{ sources: string[] }>(join(installed, map));
      for (const source of sources) {
        const path = relative(installed, join(installed, map, '..', source));
        if (!files.has(path)) missing.push(`${map} → ${source}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('keeps Node types out of the declaration files', async () => {
    // The d.ts must type-check in a browser or Worker project without @types/node.
    const offenders: string[] = [];
    for (const file of (await listFiles(installed)).filter((f) => f.endsWith('.d.ts'))) {
      const text = await readFile(join(installed, file), 'utf8');
      if (/reference types="node"|from ['"]node:|\bNodeJS\.|(?<![\w$])Buffer\b/.test(text)) offenders.push(file);
    }
    expect(offenders).toEqual([]);
  });
});

describe('jsr.json', () => {
  it('has the version of package.json', async () => {
    const jsr = await readJson<JsrJson>(join(REPO_ROOT, 'jsr.json'));
    expect(jsr.version).toBe(pkg.version);
    expect(jsr.name).toMatch(/^@[a-z0-9-]+\/kinesis-edge$/);
  });

  it('exports the source of every npm entry point, and only existing files', async () => {
    const jsr = await readJson<JsrJson>(join(REPO_ROOT, 'jsr.json'));
    const npmSubpaths = Object.keys(pkg.exports).filter((key) => key !== './package.json');
    expect(Object.keys(jsr.exports).sort()).toEqual(npmSubpaths.sort());
    for (const [subpath, target] of Object.entries(jsr.exports)) {
      expect(existsSync(join(REPO_ROOT, target)), `jsr.json exports["${subpath}"] = ${target} does not exist`).toBe(true);
      // dist/<x>.js on npm is built from src/<x>.ts: both registries must serve the same module.
      const npmTarget = targets(pkg.exports[subpath]!).find((t) => t.endsWith('.js'));
      expect(npmTarget?.replace(/^\.\/dist\/(.*)\.js$/, './src/$1.ts'), `exports["${subpath}"]`).toBe(target);
    }
  });

  it('maps every bare import of src/ to its npm dependency, at the same version range', async () => {
    const jsr = await readJson<JsrJson>(join(REPO_ROOT, 'jsr.json'));
    const imports = jsr.imports ?? {};
    const specifiers = new Set<string>();
    for (const file of (await listFiles(join(REPO_ROOT, 'src'))).filter((f) => f.endsWith('.ts'))) {
      const text = await readFile(join(REPO_ROOT, 'src', file), 'utf8');
      for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"\n]*?from\s*['"]([^'"./][^'"]*)['"]/g)) specifiers.add(match[1]!);
    }
    expect([...specifiers].sort()).not.toEqual([]);
    for (const specifier of specifiers) {
      const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
      const range = pkg.dependencies?.[name];
      expect(range, `src imports "${specifier}" but package.json has no dependency "${name}"`).toBeDefined();
      // Deno import maps: an exact key, or a "name/" prefix key for subpaths such as zod/mini.
      const mapped = specifier === name ? imports[name] : imports[`${name}/`];
      const expected = specifier === name ? `npm:${name}@${range}` : `npm:/${name}@${range}/`;
      expect(mapped, `jsr.json imports must map "${specifier}"`).toBe(expected);
    }
  });

  it('passes `deno publish --dry-run` (offline, dependencies from node_modules)', async ({ skip }) => {
    const deno = requireRuntime('Deno', denoBinary(), skip);
    // Without --allow-slow-types: every symbol of the public API has an explicit type
    // (https://jsr.io/docs/about-slow-types); the generated schemas are in a module of their own,
    // src/shape-schemas.ts, which no public module re-exports.
    const result = await run(
      deno,
      ['publish', '--dry-run', '--allow-dirty', '--node-modules-dir=manual', '--config', 'jsr.json'],
      {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_DIR: join(REPO_ROOT, 'test/.tmp/deno') },
        timeoutMs: 120_000,
      },
    );
    expect(result.code, describeRun('deno publish --dry-run', result)).toBe(0);
    expect(result.stdout + result.stderr).toContain('Dry run complete');
  }, 150_000);
});

// Packs the built package exactly as `npm publish` would (`npm pack`) and installs the tarball
// into a copy of test/runtimes/fixture/, so every runtime test imports what a user installs:
// `exports`, `files` and `dependencies` are all on the line.
//
// Several test files need the same install, and vitest runs them in parallel workers; the copy
// is keyed by the tarball's hash (npm pack writes fixed mtimes, so equal inputs give equal
// tarballs) and built once under a mkdir lock.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const FIXTURE_SOURCE = join(REPO_ROOT, 'test/runtimes/fixture');
const TMP_ROOT = join(REPO_ROOT, 'test/.tmp/runtimes');
const LOCK_STALE_MS = 180_000;

export interface PackedFixture {
  /** The installed fixture directory; `kinesis-edge` resolves from here. */
  dir: string;
  /** The tarball `npm pack` produced (inside `dir`). */
  tarball: string;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

/** Runs a command with a hard time limit; kills its whole process group when the limit passes. */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr, timedOut, ms: Date.now() - started });
    });
  });
}

/** Formats a failed command for an assertion message. */
export function describeRun(label: string, result: RunResult): string {
  const how = result.timedOut ? 'timed out' : `exited with ${result.code ?? result.signal}`;
  return `${label} ${how} after ${result.ms} ms\n--- stdout ---\n${result.stdout.slice(-8000)}\n--- stderr ---\n${result.stderr.slice(-8000)}`;
}

/**
 * The environment for a nested npm: without what `npm test` / `npx` export about the repo's own
 * package (npm_config_local_prefix, npm_package_*, INIT_CWD), so it only ever works on `cwd`.
 */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key === 'INIT_CWD' || key === 'npm_config_local_prefix' || key.startsWith('npm_package_') || key.startsWith('npm_lifecycle_')) continue;
    env[key] = value;
  }
  return env;
}

async function runNpm(args: readonly string[], cwd: string, timeoutMs: number): Promise<RunResult> {
  const result = await run('npm', args, { cwd, timeoutMs, env: npmEnv() });
  if (result.code !== 0) throw new Error(describeRun(`npm ${args.join(' ')}`, result));
  return result;
}

async function hashFixtureSources(hash: ReturnType<typeof createHash>, dir: string, prefix = ''): Promise<void> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    if (entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await hashFixtureSources(hash, path, `${prefix}${entry.name}/`);
    else hash.update(`${prefix}${entry.name}\0`).update(await readFile(path)).update('\0');
  }
}

/** `npm pack` into a fresh temp dir; returns the tarball path. */
export async function packPackage(): Promise<string> {
  if (!existsSync(join(REPO_ROOT, 'dist/index.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first (`npm test` builds before running vitest).');
  }
  await mkdir(TMP_ROOT, { recursive: true });
  const dest = await mkdtemp(join(TMP_ROOT, 'pack-'));
  const result = await runNpm(['pack', '--ignore-scripts', '--json', '--pack-destination', dest], REPO_ROOT, 60_000);
  const [info] = JSON.parse(result.stdout) as [{ filename: string }];
  return join(dest, info.filename);
}

let cached: Promise<PackedFixture> | undefined;

/** Packs the package and returns an installed fixture for it (built once per tarball). */
export function preparePackedFixture(): Promise<PackedFixture> {
  cached ??= prepare();
  return cached;
}

async function prepare(): Promise<PackedFixture> {
  const packed = await packPackage();
  const hash = createHash('sha256').update(await readFile(packed));
  await hashFixtureSources(hash, FIXTURE_SOURCE);
  const key = hash.digest('hex').slice(0, 16);
  const dir = join(TMP_ROOT, `fixture-${key}`);
  const lock = `${dir}.lock`;
  try {
    return await installOnce(packed, dir, lock);
  } finally {
    await rm(join(packed, '..'), { recursive: true, force: true });
  }
}

async function installOnce(packed: string, dir: string, lock: string): Promise<PackedFixture> {
  const tarball = join(dir, 'kinesis-edge.tgz');
  const ready = join(dir, '.ready');
  const deadline = Date.now() + LOCK_STALE_MS;
  for (;;) {
    if (existsSync(ready)) return { dir, tarball };
    try {
      await mkdir(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = Date.now() - (await stat(lock).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > LOCK_STALE_MS || Date.now() > deadline) await rm(lock, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    if (existsSync(ready)) return { dir, tarball };
    await rm(dir, { recursive: true, force: true });
    await cp(FIXTURE_SOURCE, dir, { recursive: true });
    await cp(packed, tarball);
    // The tarball's own dependencies (aws4fetch, zod) come from npm's cache when it has them.
    await runNpm(
      ['install', '--no-save', '--no-audit', '--no-fund', '--no-package-lock', '--prefer-offline', '--ignore-scripts', './kinesis-edge.tgz'],
      dir,
      120_000,
    );
    await writeFile(ready, new Date().toISOString());
    await removeOldFixtures(dir);
    return { dir, tarball };
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** Fixtures of older tarballs, unused for an hour (another run may still be using a newer one). */
async function removeOldFixtures(keep: string): Promise<void> {
  for (const name of await readdir(TMP_ROOT)) {
    const dir = join(TMP_ROOT, name);
    if (!name.startsWith('fixture-') || name.endsWith('.lock') || dir === keep) continue;
    const ready = await stat(join(dir, '.ready')).catch(() => undefined);
    if (ready !== undefined && Date.now() - ready.mtimeMs > 3_600_000) await rm(dir, { recursive: true, force: true });
  }
}

// Running a script of the installed fixture in each runtime, with bounded time. Shared by the
// contract matrix and the documentation snippet tests.
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { build } from 'esbuild';
import { run, type RunResult } from './packed-fixture.ts';

/** Time limit for one runtime's child process. */
export const RUNTIME_TIMEOUT_MS = 60_000;

/** The Chromium flags for a headless run that never reaches beyond loopback. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * A compatibility date workerd 1.20260426 supports; Workers pin one in wrangler config. Keep it
 * equal to worker-example's `compatibility_date` when that moves.
 */
export const WORKERD_COMPATIBILITY_DATE = '2025-12-01';

function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NO_COLOR: '1', ...extra };
}

/** `node <file> ...args` in `dir`. */
export function runNode(dir: string, file: string, args: string[] = [], env: Record<string, string> = {}): Promise<RunResult> {
  return run(process.execPath, [file, ...args], { cwd: dir, env: childEnv(env), timeoutMs: RUNTIME_TIMEOUT_MS });
}

/**
 * `deno run` with network access to loopback only, no prompts, and a DENO_DIR inside the fixture.
 * Deno 2 resolves bare specifiers from the fixture's package.json + node_modules ("byonm").
 */
export function runDeno(
  deno: string,
  dir: string,
  file: string,
  args: string[] = [],
  options: { env?: Record<string, string>; allowEnv?: string[] } = {},
): Promise<RunResult> {
  // --node-modules-dir=manual: modules (also `npm:` specifiers) come from the fixture's
  // node_modules only; Deno never downloads one.
  const flags = ['run', '--no-prompt', '--node-modules-dir=manual', '--allow-net=127.0.0.1,localhost'];
  if (options.allowEnv?.length) flags.push(`--allow-env=${options.allowEnv.join(',')}`);
  return run(deno, [...flags, file, ...args], {
    cwd: dir,
    env: childEnv({ DENO_DIR: join(dir, '.deno'), DENO_NO_UPDATE_CHECK: '1', ...options.env }),
    timeoutMs: RUNTIME_TIMEOUT_MS,
  });
}

/** `bun run --no-install`: modules come from node_modules only, never auto-installed. */
export function runBun(bun: string, dir: string, file: string, args: string[] = [], env: Record<string, string> = {}): Promise<RunResult> {
  return run(bun, ['run', '--no-install', file, ...args], {
    cwd: dir,
    env: childEnv({ BUN_INSTALL_CACHE_DIR: join(dir, '.bun-cache'), DO_NOT_TRACK: '1', ...env }),
    timeoutMs: RUNTIME_TIMEOUT_MS,
  });
}

/** Bundles one entry of the fixture with esbuild, as a browser app or a Worker would be. */
export async function bundleEntry(dir: string, entry: string, target: 'browser' | 'workerd'): Promise<string> {
  const result = await build({
    entryPoints: [join(dir, entry)],
    absWorkingDir: dir,
    bundle: true,
    write: false,
    format: 'esm',
    target: 'es2022',
    logLevel: 'silent',
    // wrangler's conditions for Workers; the browser build takes esbuild's defaults.
    ...(target === 'workerd'
      ? { platform: 'neutral' as const, conditions: ['workerd', 'worker', 'browser'], mainFields: ['browser', 'module', 'main'] }
      : { platform: 'browser' as const }),
  });
  return result.outputFiles[0]!.text;
}

/**
 * Loads a module Worker into workerd (miniflare) and sends it one request.
 * @returns the response status and body text.
 */
export async function fetchFromWorkerd(
  script: string,
  url: string,
  options: { bindings?: Record<string, string>; method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; text: string }> {
  const { Miniflare } = await import('miniflare');
  const mf = new Miniflare({ modules: true, script, compatibilityDate: WORKERD_COMPATIBILITY_DATE, bindings: options.bindings ?? {} });
  try {
    const response = await mf.dispatchFetch(url, {
      method: options.method ?? 'GET',
      ...(options.body === undefined ? {} : { body: options.body }),
      headers: options.headers ?? {},
      signal: AbortSignal.timeout(RUNTIME_TIMEOUT_MS),
    });
    return { status: response.status, text: await response.text() };
  } finally {
    await mf.dispose();
  }
}

/** A file the page server answers with. */
export interface PageFile {
  type: string;
  body: string | Buffer;
}

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.cjs': 'text/javascript',
  '.json': 'application/json',
  '.map': 'application/json',
  '.html': 'text/html',
};

/**
 * Serves fixed files on 127.0.0.1:<free port>, plus directories mounted under a URL prefix
 * (`{ '/node_modules/': '/abs/node_modules' }`); anything else is a 404.
 */
export async function servePage(
  files: Record<string, PageFile>,
  mounts: Record<string, string> = {},
): Promise<{ origin: string; server: Server }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const notFound = () => res.writeHead(404, { 'content-type': 'text/plain' }).end(`no ${path}`);
    const file = files[path];
    if (file) {
      res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body);
      return;
    }
    const prefix = Object.keys(mounts).find((p) => path.startsWith(p));
    if (prefix === undefined) return void notFound();
    const root = mounts[prefix]!;
    const target = resolve(root, path.slice(prefix.length));
    if (!target.startsWith(root + sep)) return void notFound();
    readFile(target).then(
      (body) => res.writeHead(200, { 'content-type': CONTENT_TYPES[extname(target)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(body),
      notFound,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { origin: `http://127.0.0.1:${port}`, server };
}

/**
 * Opens `path` of a page served from one loopback origin in headless Chromium and awaits the
 * promise the page stores in `globalThis[resultGlobal]`. Page errors and console errors are
 * returned with the value, for failure messages.
 */
export async function runInChromium(
  chromiumPath: string,
  files: Record<string, PageFile>,
  path: string,
  resultGlobal: string,
  mounts: Record<string, string> = {},
): Promise<{ value: unknown; origin: string; log: string[] }> {
  const { chromium } = await import('playwright-core');
  const { origin, server } = await servePage(files, mounts);
  const browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS, timeout: RUNTIME_TIMEOUT_MS });
  const log: string[] = [];
  try {
    const page = await browser.newPage();
    page.on('console', (message) => log.push(`console.${message.type()}: ${message.text()}`));
    page.on('pageerror', (error) => log.push(`pageerror: ${error.message}`));
    page.on('requestfailed', (request) => log.push(`requestfailed: ${request.method()} ${request.url()} ${request.failure()?.errorText ?? ''}`));
    await page.goto(origin + path, { timeout: RUNTIME_TIMEOUT_MS });
    await page.waitForFunction((name) => (globalThis as Record<string, unknown>)[name] !== undefined, resultGlobal, {
      timeout: RUNTIME_TIMEOUT_MS,
    });
    const value = await page.evaluate((name) => (globalThis as Record<string, unknown>)[name], resultGlobal);
    return { value, origin, log };
  } catch (error) {
    throw new Error(`Chromium run of ${path} failed: ${String(error)}\n${log.join('\n')}`, { cause: error });
  } finally {
    await browser.close();
    await new Promise((resolve) => server.close(resolve));
  }
}

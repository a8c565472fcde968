// Local runs of the ingest Worker and the demo page, shared by `npm start` and the tests (so the
// demo and the tests run the same code). Plain JavaScript for Node 20, no TypeScript step.
//
// startIngestWorker() runs `wrangler dev` on a generated configuration: the committed
// wrangler.jsonc with the caller's vars and rate limit, in a private directory under
// worker-example/.wrangler/dev/ that also holds the `.dev.vars` secrets file. Several Workers can
// therefore run at once with different settings, and nothing secret is written next to the
// committed configuration. With `queue: true` it is the Queue variant instead: the vars and
// `queues` bindings of wrangler.jsonc's `env.queue` (wrangler dev runs the queue locally).
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { startServerProcess, withFreshPorts } from '../scripts/child-process.mjs';
import { freePort } from '../scripts/local-kinesis.mjs';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(HERE);
const require = createRequire(import.meta.url);

/** Credentials the local Kinesis accepts: it checks that requests are signed, not by whom. */
export const LOCAL_CREDENTIALS = Object.freeze({ accessKeyId: 'AKIDLOCALDEMO', secretAccessKey: 'local-demo-secret' });

const OUTPUT_LIMIT = 256 * 1024;

// One free-port helper for the repo's tools (scripts/local-kinesis.mjs); re-exported for callers of this module.
export { freePort } from '../scripts/local-kinesis.mjs';

/**
 * JSON with comments (the wrangler.jsonc dialect: `//` and `/* *\/` comments, trailing commas) →
 * a value. Strings are copied untouched.
 * @param {string} text
 */
export function parseJsonc(text) {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 1;
    } else {
      out += c;
    }
  }
  return JSON.parse(out.replace(/,(\s*[}\]])/g, '$1'));
}

/** Names that must never be plain vars: they are secrets. */
const SECRET_NAMES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'SESSION_SECRET', 'TURNSTILE_SECRET_KEY'];

/** `KEY=value` lines for `.dev.vars` (dotenv syntax, values double-quoted). */
function dotenv(values) {
  return Object.entries(values)
    .map(([key, value]) => `${key}=${JSON.stringify(String(value))}\n`)
    .join('');
}

/**
 * Starts the ingest Worker with `wrangler dev` on 127.0.0.1 and resolves once it answers.
 *
 * @param {object} options
 * @param {string} [options.kinesisEndpoint] Kinesis endpoint for the Worker (`KINESIS_ENDPOINT`), e.g. the local Kinesis.
 * @param {string} options.streamName `STREAM_NAME`.
 * @param {string | string[]} options.allowedOrigins `ALLOWED_ORIGINS`.
 * @param {number} [options.port] @default a free port
 * @param {string} [options.region] @default 'us-east-1'
 * @param {{ accessKeyId: string, secretAccessKey: string, sessionToken?: string } | null} [options.credentials]
 *   Written to `.dev.vars` as the Worker's secrets; `null` starts it without secrets (it must fail closed).
 *   @default LOCAL_CREDENTIALS
 * @param {{ limit: number, period: 10 | 60 }} [options.rateLimit] The `ratelimits` binding. @default { limit: 600, period: 60 }
 * @param {number} [options.maxBodyBytes] `MAX_BODY_BYTES`. @default the Worker's 65536
 * @param {string} [options.country] Country in `request.cf` (wrangler dev's default placeholder says "US").
 * @param {Record<string, string>} [options.vars] Further vars (not secrets).
 * @param {boolean} [options.queue] Run the `env.queue` variant (`DELIVERY=queue`, the queue producer and consumer bindings).
 * @param {{ max_retries?: number, max_batch_timeout?: number }} [options.queueConsumer] Overrides for the queue consumer's settings (with `queue`).
 * @param {number} [options.startTimeoutMs] @default 60000
 * @param {(line: string) => void} [options.onOutput] Receives wrangler's output as it comes.
 * @returns {Promise<{ url: string, port: number, pid: number, output: () => string, stop: () => Promise<void> }>}
 * @example
 * const worker = await startIngestWorker({ kinesisEndpoint, streamName: 'clicks', allowedOrigins: 'http://127.0.0.1:8080' });
 * await fetch(`${worker.url}/collect`, { method: 'POST', headers: { Origin: 'http://127.0.0.1:8080', 'Content-Type': 'text/plain' }, body: '[]' });
 * await worker.stop();
 */
export function startIngestWorker(options) {
  // With a port of the caller's choosing, a clash is the caller's to handle.
  const attempts = options.port === undefined ? 3 : 1;
  return withFreshPorts(() => startIngestWorkerOnce(options), /Address already in use/, attempts);
}

/** One try of {@link startIngestWorker}. */
async function startIngestWorkerOnce(options) {
  const config = parseJsonc(await readFile(join(HERE, 'wrangler.jsonc'), 'utf8'));
  const port = options.port ?? (await freePort());
  const inspectorPort = await freePort();
  const origins = Array.isArray(options.allowedOrigins) ? options.allowedOrigins.join(',') : options.allowedOrigins;
  const variant = options.queue ? config.env?.queue : undefined;
  if (options.queue && !variant?.queues) throw new Error('startIngestWorker: wrangler.jsonc has no env.queue with queues bindings');
  const vars = {
    ...config.vars,
    ...variant?.vars,
    STREAM_NAME: options.streamName,
    AWS_REGION: options.region ?? 'us-east-1',
    ALLOWED_ORIGINS: origins,
    ...(options.kinesisEndpoint ? { KINESIS_ENDPOINT: options.kinesisEndpoint } : {}),
    ...(options.maxBodyBytes ? { MAX_BODY_BYTES: String(options.maxBodyBytes) } : {}),
    ...options.vars,
  };
  for (const name of SECRET_NAMES) {
    if (name in vars) throw new Error(`startIngestWorker: ${name} is a secret; pass it as credentials, not as a var`);
  }
  const rateLimit = options.rateLimit ?? { limit: 600, period: 60 };
  vars.RATE_LIMIT_PERIOD_SECONDS = String(rateLimit.period);

  const dir = join(HERE, '.wrangler', 'dev', `${port}-${randomBytes(4).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  // A snapshot of the sources, bundled here rather than by wrangler: wrangler watches what it
  // bundles and restarts the Worker mid-request when a source file changes.
  // It goes in a directory of its own: with no_bundle, wrangler watches the entry's directory and
  // would restart for every log or state file written next to it.
  await bundleWorker(join(HERE, config.main), join(dir, 'bundle', 'worker.js'));
  const generated = {
    ...config,
    $schema: undefined,
    env: undefined,
    // A test may shorten the consumer's retry ladder (max_retries, max_batch_timeout).
    ...(variant ? { queues: { ...variant.queues, consumers: variant.queues.consumers?.map((consumer) => ({ ...consumer, ...options.queueConsumer })) } } : {}),
    main: 'bundle/worker.js',
    no_bundle: true,
    vars,
    ratelimits: config.ratelimits.map((binding) => ({ ...binding, simple: rateLimit })),
  };
  await writeFile(join(dir, 'wrangler.json'), JSON.stringify(generated, null, 2));
  const credentials = options.credentials === undefined ? LOCAL_CREDENTIALS : options.credentials;
  for (const name of Object.keys(options.secrets ?? {})) {
    if (!SECRET_NAMES.includes(name) || name.startsWith('AWS_')) throw new Error(`startIngestWorker: unknown secret ${name} (AWS credentials go in credentials)`);
  }
  const secrets = {
    ...(credentials === null
      ? {}
      : {
          AWS_ACCESS_KEY_ID: credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
          ...(credentials.sessionToken ? { AWS_SESSION_TOKEN: credentials.sessionToken } : {}),
        }),
    ...options.secrets,
  };
  if (Object.keys(secrets).length > 0) await writeFile(join(dir, '.dev.vars'), dotenv(secrets), { mode: 0o600 });


  // No internet: never fetch the `request.cf` template or send metrics. A given country comes
  // from a local cf file instead (miniflare reads CLOUDFLARE_CF_FETCH_PATH when fetching is not
  // disabled, and does not refetch a file younger than 30 days).
  const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1', FORCE_COLOR: '0', WRANGLER_LOG_PATH: join(dir, 'logs') };
  for (const name of SECRET_NAMES) delete env[name];
  delete env.CLOUDFLARE_API_TOKEN;
  delete env.CLOUDFLARE_INCLUDE_PROCESS_ENV;
  if (options.country) {
    const cfPath = join(dir, 'cf.json');
    await writeFile(cfPath, JSON.stringify({ country: options.country, colo: 'LCL', asn: 0, httpProtocol: 'HTTP/1.1', tlsVersion: 'TLSv1.3' }));
    delete env.CLOUDFLARE_CF_FETCH_ENABLED;
    env.CLOUDFLARE_CF_FETCH_PATH = cfPath;
  } else {
    env.CLOUDFLARE_CF_FETCH_ENABLED = 'false';
  }

  const cli = join(dirname(require.resolve('wrangler/package.json')), 'wrangler-dist', 'cli.js');
  const args = [
    'dev',
    '--config', join(dir, 'wrangler.json'),
    '--ip', '127.0.0.1',
    '--port', String(port),
    '--inspector-ip', '127.0.0.1',
    '--inspector-port', String(inspectorPort),
    '--persist-to', join(dir, 'state'),
    '--show-interactive-dev-session=false',
    '--log-level', 'log',
  ];
  // The watchdog is the leader of a new process group holding wrangler and workerd: it forwards
  // SIGTERM for a clean stop, and kills the whole group if our process goes away (stdin closes),
  // so no workerd is left holding the port.
  const url = `http://127.0.0.1:${port}`;
  const readyLine = new RegExp(`Ready on ${url.replace(/[.]/g, '\\.')}\\b`);
  const server = await startServerProcess({
    name: `wrangler dev on ${url}`,
    watchdog: WATCHDOG,
    args: [cli, ...args],
    cwd: dir,
    env,
    detached: true,
    outputLimit: OUTPUT_LIMIT,
    onOutput: options.onOutput,
    // wrangler's own "Ready on <url>" first: with the port already taken (another server, or a
    // Worker started at the same moment on the same free port), the Worker answering there would be
    // the other one.
    isReady: async (text) => readyLine.test(text) && (await answers(`${url}/__ready`)),
    startTimeoutMs: options.startTimeoutMs ?? 60_000,
    pollMs: 200,
    stopTimeoutMs: 5_000,
    afterStop: () => rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {}),
  });
  return { url, port, ...server };
}

/**
 * Bundles the Worker as wrangler would (esbuild, ESM, the `workerd` / `worker` / `browser` export
 * conditions) into one file.
 * @param {string} entry
 * @param {string} outfile
 */
export async function bundleWorker(entry, outfile) {
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['browser', 'module', 'main'],
    sourcemap: 'linked',
    logLevel: 'silent',
  });
}

// Runs in the watchdog process: `node -e WATCHDOG <cli.js> <args…>`.
const WATCHDOG = `
const { spawn } = require('node:child_process');
const [cli, ...args] = process.argv.slice(1);
const killGroup = () => { try { process.kill(-process.pid, 'SIGKILL'); } catch {} process.exit(1); };
const child = spawn(process.execPath, ['--no-warnings', '--experimental-vm-modules', cli, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
child.on('exit', (code) => { process.exitCode = code ?? 1; killGroup(); });
process.on('SIGTERM', () => { child.kill('SIGTERM'); setTimeout(killGroup, 3000).unref(); });
process.on('SIGINT', () => { child.kill('SIGTERM'); setTimeout(killGroup, 3000).unref(); });
process.stdin.on('end', killGroup);
process.stdin.on('error', killGroup);
process.stdin.resume();
`;

/** Whether the Worker itself answers (our 404 JSON), not just wrangler's proxy. */
async function answers(url) {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    const text = await response.text();
    return response.status === 404 && text.includes('not found');
  } catch {
    return false;
  }
}

/**
 * Bundles the tracker (src/tracker/index.ts) for the demo page with esbuild, as one IIFE that
 * exposes `window.KinesisEdgeTracker` ({ createTracker, captureClicks, … }).
 * @returns {Promise<{ html: string, trackerJs: string }>}
 */
export async function buildDemoPage() {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [join(ROOT, 'src', 'tracker', 'index.ts')],
    bundle: true,
    format: 'iife',
    globalName: 'KinesisEdgeTracker',
    target: 'es2020',
    platform: 'browser',
    write: false,
    minify: false,
    logLevel: 'silent',
  });
  const trackerJs = result.outputFiles[0].text;
  const html = await readFile(join(HERE, 'demo', 'index.html'), 'utf8');
  return { html, trackerJs };
}

/**
 * Serves the demo page on 127.0.0.1: `/tracker.js`, `/config.js` (the collect URL) and the page
 * for every other path, so that SPA navigations survive a reload.
 * @param {{ collectUrl: string, port?: number, page?: { html: string, trackerJs: string } }} options
 * @returns {Promise<{ url: string, origin: string, port: number, stop: () => Promise<void> }>}
 * @example
 * const demo = await startDemoServer({ collectUrl: `${worker.url}/collect` });
 * console.log(`open ${demo.url}`);
 */
export async function startDemoServer(options) {
  const page = options.page ?? (await buildDemoPage());
  const configJs = `window.KINESIS_EDGE_DEMO = ${JSON.stringify({ endpoint: options.collectUrl })};\n`;
  const server = createHttpServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const headers = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, headers).end();
    } else if (path === '/tracker.js') {
      response.writeHead(200, { ...headers, 'Content-Type': 'text/javascript; charset=utf-8' }).end(page.trackerJs);
    } else if (path === '/config.js') {
      response.writeHead(200, { ...headers, 'Content-Type': 'text/javascript; charset=utf-8' }).end(configJs);
    } else if (path === '/favicon.ico') {
      response.writeHead(204, headers).end();
    } else {
      response.writeHead(200, { ...headers, 'Content-Type': 'text/html; charset=utf-8' }).end(page.html);
    }
  });
  const sockets = new Set();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/`,
    origin,
    port,
    stop: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

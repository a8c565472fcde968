// Starts the embedded local Kinesis (the kinesis-local npm package, an npm build of
// etspaceman/kinesis-mock) on free loopback ports: the one launcher for `npm start`, `npm run
// bench` and the test suite (test/support/kinesis-local.ts adds the tests' defaults).
// Configuration variables: node_modules/kinesis-local/README.md, "Service Configuration".
import { createRequire } from 'node:module';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { startServerProcess, withFreshPorts } from './child-process.mjs';

/** Ports this process handed out lately, and when: see {@link freePort}. */
const handedOut = new Map();
const HANDED_OUT_MS = 60_000;

/**
 * A free loopback port: listen on 127.0.0.1:0, note the port, close. The one copy of this for the
 * repo's tools and tests.
 *
 * Once closed, the port is free for anyone, and the system may give it again to the next caller
 * before the first one binds it (two servers started at once, as the tests do). So a port this
 * process handed out in the last minute is never handed out again; other processes can still take
 * it, which the launchers detect and retry (`withFreshPorts`).
 * @returns {Promise<number>}
 */
export async function freePort() {
  const now = Date.now();
  for (const [port, at] of handedOut) if (now - at > HANDED_OUT_MS) handedOut.delete(port);
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await listenOnce();
    if (!handedOut.has(port)) {
      handedOut.set(port, now);
      return port;
    }
  }
  throw new Error('freePort: the system kept offering ports handed out in the last minute');
}

function listenOnce() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/** kinesis-local's package directory (holding main.js and server.json). */
export function kinesisLocalDir() {
  return dirname(createRequire(import.meta.url).resolve('kinesis-local/main.js'));
}

/**
 * kinesis-local refuses a request without an `Authorization` header or without `X-Amz-Date`, but
 * never verifies the signature or the date, so this fixed header is enough for unsigned calls.
 * Shape: a SigV4 header as in the "Authorization header" example of the AWS SigV4 docs.
 */
export const DUMMY_AUTHORIZATION =
  'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0';

/** Defaults for tools: quick stream creation and deletion, warnings only. */
const DEFAULT_ENV = { CREATE_STREAM_DURATION: '50ms', DELETE_STREAM_DURATION: '50ms', LOG_LEVEL: 'WARN' };

// Runs in the child: `node -e WATCHDOG main.js`. It is kinesis-local itself (main.js is required
// into it) and kills itself when its stdin closes, i.e. when our process died without stopping it.
const WATCHDOG = [
  "process.stdin.on('end', () => process.kill(process.pid, 'SIGKILL'));",
  "process.stdin.on('error', () => process.kill(process.pid, 'SIGKILL'));",
  'process.stdin.resume();',
  'require(process.argv[1]);',
].join('\n');

/**
 * Starts kinesis-local and resolves once it answers ListStreams.
 * @param {{ env?: Record<string, string>, nodeArgs?: string[], startTimeoutMs?: number, timeoutMs?: number, stopTimeoutMs?: number, portAttempts?: number }} [options]
 *   `env` overrides the defaults; the parent's environment is not inherited (apart from `PATH`),
 *   so a developer's `AWS_REGION` cannot change the mock's default region. `timeoutMs` is the
 *   older name of `startTimeoutMs`.
 * @returns {Promise<{ endpoint: string, port: number, tlsPort: number, pid: number, output: () => string, stop: () => Promise<void> }>}
 */
export function startLocalKinesis(options = {}) {
  return withFreshPorts(() => startOnce(options), /EADDRINUSE/, Math.max(1, options.portAttempts ?? 3));
}

async function startOnce(options) {
  const dir = kinesisLocalDir();
  const port = await freePort();
  const tlsPort = await freePort();
  const server = await startServerProcess({
    name: `kinesis-local (ports ${port}/${tlsPort})`,
    watchdog: WATCHDOG,
    nodeArgs: options.nodeArgs,
    args: [join(dir, 'main.js')],
    cwd: dir,
    env: {
      ...(process.env.PATH === undefined ? {} : { PATH: process.env.PATH }),
      ...DEFAULT_ENV,
      ...options.env,
      KINESIS_MOCK_PLAIN_PORT: String(port),
      KINESIS_MOCK_TLS_PORT: String(tlsPort),
      // main.js resolves the certificate against the working directory and crashes without it.
      KINESIS_MOCK_CERT_PATH: options.env?.KINESIS_MOCK_CERT_PATH ?? join(dir, 'server.json'),
    },
    outputLimit: 64 * 1024,
    isReady: () => answersListStreams(port),
    startTimeoutMs: options.startTimeoutMs ?? options.timeoutMs ?? 30_000,
    pollMs: 100,
    stopTimeoutMs: options.stopTimeoutMs ?? 1_000,
  });
  return { endpoint: `http://127.0.0.1:${port}`, port, tlsPort, ...server };
}

// node:http without keep-alive: an idle keep-alive socket (fetch keeps one) would make
// kinesis-local's graceful SIGTERM shutdown wait for the client's idle timeout (about 4 s).
function answersListStreams(port) {
  return new Promise((resolve) => {
    const body = '{}';
    const date = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/',
        agent: false,
        timeout: 2_000,
        headers: {
          'Content-Type': 'application/x-amz-json-1.1',
          'X-Amz-Target': 'Kinesis_20131202.ListStreams',
          'X-Amz-Date': date,
          Authorization: DUMMY_AUTHORIZATION,
          'Content-Length': Buffer.byteLength(body),
          Connection: 'close',
        },
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode === 200));
        res.once('error', () => resolve(false));
      },
    );
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => resolve(false));
    req.end(body);
  });
}

// Starts the embedded local Kinesis (the kinesis-local npm package) on a free loopback port, for
// `npm start` and `npm run bench`. The test suite has its own, more thorough launcher in
// test/support/kinesis-local.ts (watchdog, output capture); this one only needs start and stop.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';

/**
 * A free loopback port: listen on 127.0.0.1:0, note the port, close. The one copy of this for the
 * repo's tools and tests (worker-example/dev.mjs re-exports it, test/support imports it).
 * @returns {Promise<number>}
 */
export function freePort() {
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

/**
 * @param {{ env?: Record<string, string>, timeoutMs?: number }} [options]
 * @returns {Promise<{ endpoint: string, stop: () => Promise<void> }>}
 */
export async function startLocalKinesis(options = {}) {
  const dir = dirname(createRequire(import.meta.url).resolve('kinesis-local/main.js'));
  const port = await freePort();
  const tlsPort = await freePort();
  const child = spawn(process.execPath, [join(dir, 'main.js')], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      KINESIS_MOCK_PLAIN_PORT: String(port),
      KINESIS_MOCK_TLS_PORT: String(tlsPort),
      KINESIS_MOCK_CERT_PATH: join(dir, 'server.json'),
      CREATE_STREAM_DURATION: '50ms',
      DELETE_STREAM_DURATION: '50ms',
      LOG_LEVEL: 'WARN',
      ...options.env,
    },
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output = (output + chunk).slice(-8192)));
  child.stderr.on('data', (chunk) => (output = (output + chunk).slice(-8192)));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    try {
      // Any HTTP answer means it is up (it refuses unsigned requests, which is fine here).
      await fetch(endpoint, { method: 'POST', signal: AbortSignal.timeout(1000) });
      break;
    } catch {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`kinesis-local did not start:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    endpoint,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}

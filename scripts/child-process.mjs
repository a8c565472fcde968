// The one way the repo's tools and tests run a server as a child process (kinesis-local, and
// `wrangler dev` for the ingest Worker): a Node watchdog as the child, the last part of its output
// kept for error messages, start-up polled until the server answers, and an idempotent stop.
// Plain JavaScript so that Node 20 runs it without a TypeScript step.
import { spawn } from 'node:child_process';

/**
 * Spawns `node -e <watchdog> <args…>` and waits until `isReady()` says the server answers.
 *
 * The watchdog script runs in the child and must kill what it started when its stdin closes: that
 * is how a child notices that its parent died without calling `stop()` (a SIGKILLed test runner),
 * so no orphan keeps a port.
 *
 * With `detached: true` the child leads a new process group (wrangler's CLI starts workerd below
 * it), and stop escalates to SIGKILL of the whole group.
 *
 * @param {object} options
 * @param {string} options.name What the errors call it, e.g. "kinesis-local".
 * @param {string} options.watchdog JavaScript for `node -e`; receives `args` as `process.argv.slice(1)`.
 * @param {string[]} options.args
 * @param {string[]} [options.nodeArgs] Node options placed before `-e`.
 * @param {string} options.cwd
 * @param {Record<string, string | undefined>} options.env The whole environment (nothing is inherited).
 * @param {boolean} [options.detached]
 * @param {number} options.outputLimit Characters of output kept.
 * @param {(text: string) => void} [options.onOutput] Receives the output as it comes.
 * @param {(output: string) => Promise<boolean>} options.isReady Given the output so far.
 * @param {number} options.startTimeoutMs
 * @param {number} options.pollMs
 * @param {number} options.stopTimeoutMs After SIGTERM, how long until SIGKILL.
 * @param {() => Promise<void>} [options.afterStop] Clean-up once the child is gone (also after a failed start).
 * @returns {Promise<{ pid: number, output: () => string, stop: () => Promise<void> }>}
 *   Rejects with an Error carrying the output when the child exits or does not answer in time.
 */
export async function startServerProcess(options) {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '-e', options.watchdog, ...options.args], {
    cwd: options.cwd,
    env: options.env,
    detached: options.detached ?? false,
    stdio: ['pipe', 'pipe', 'pipe'],
  });

  let output = '';
  const append = (text) => {
    output = (output + text).slice(-options.outputLimit);
    options.onOutput?.(text);
  };
  child.stdout.on('data', (chunk) => append(chunk.toString('utf8')));
  child.stderr.on('data', (chunk) => append(chunk.toString('utf8')));
  // The watchdog may be gone before we close its stdin: EPIPE is expected then.
  child.stdin.on('error', () => {});

  let exited = false;
  const exit = new Promise((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', (error) => {
      append(`\n[spawn error] ${String(error)}\n`);
      exited = true;
      resolve();
    });
  });

  const killAll = () => {
    try {
      if (options.detached) process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  };

  let stopping;
  const stop = () => {
    stopping ??= (async () => {
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(killAll, options.stopTimeoutMs);
        await exit;
        clearTimeout(timer);
      }
      // A detached group may outlive its leader; this is the belt to the watchdog's braces.
      if (options.detached) killAll();
      child.stdin.destroy();
      child.stdout.destroy();
      child.stderr.destroy();
      await options.afterStop?.();
    })();
    return stopping;
  };

  const deadline = Date.now() + options.startTimeoutMs;
  try {
    for (;;) {
      if (exited) throw new Error(`${options.name} exited during start-up:\n${output}`);
      if (await options.isReady(output)) break;
      if (Date.now() > deadline) throw new Error(`${options.name} did not answer within ${options.startTimeoutMs} ms:\n${output}`);
      await Promise.race([new Promise((resolve) => setTimeout(resolve, options.pollMs)), exit]);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { pid: child.pid ?? -1, output: () => output, stop };
}

/**
 * Retries `start` when it failed because a port was taken between choosing it and binding it (the
 * test suite starts many servers at once); any other failure is thrown at once.
 * @template T
 * @param {() => Promise<T>} start
 * @param {RegExp} portClash Matches the failure's message when the port was taken.
 * @param {number} attempts
 * @returns {Promise<T>}
 */
export async function withFreshPorts(start, portClash, attempts) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (error) {
      if (attempt >= attempts || !portClash.test(String(error?.message))) throw error;
    }
  }
}

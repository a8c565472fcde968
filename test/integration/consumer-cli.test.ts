// The `kinesis-edge` command line, bundled from src/cli.ts with esbuild (Node 20 cannot run .ts)
// and run as a child process against kinesis-local.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestStream, uniqueStreamName } from '../support/kinesis-local.ts';

const endpoint = inject('kinesisEndpoint');
const entry = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const cli = fileURLToPath(new URL('../.tmp/consumer-cli.mjs', import.meta.url));

const BASE_ENV = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  AWS_ENDPOINT_URL_KINESIS: endpoint,
};

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Started {
  /** Resolves when the child exits (killed after `timeoutMs`). */
  done: Promise<Run>;
  /** Resolves when stderr has matched `pattern`. */
  stderrMatches(pattern: RegExp): Promise<void>;
  kill(signal: NodeJS.Signals): void;
}

function start(args: string[], options: { stdin?: string; env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Started {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
  for (const [key, value] of Object.entries({ ...BASE_ENV, ...options.env })) if (value !== undefined) env[key] = value;
  const child = spawn(process.execPath, [cli, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const watchers: { pattern: RegExp; resolve: () => void }[] = [];
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const w of watchers.splice(0)) (w.pattern.test(stderr) ? w.resolve : () => watchers.push(w))();
  });
  child.stdin.on('error', () => {});
  if (options.stdin !== undefined) child.stdin.end(options.stdin);
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  const done = new Promise<Run>((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    done,
    stderrMatches: (pattern) =>
      pattern.test(stderr) ? Promise.resolve() : new Promise<void>((resolve) => watchers.push({ pattern, resolve })),
    kill: (signal) => child.kill(signal),
  };
}

const run = (args: string[], options?: Parameters<typeof start>[1]) => start(args, options).done;

describe('kinesis-edge CLI', () => {
  beforeAll(async () => {
    mkdirSync(fileURLToPath(new URL('../.tmp/', import.meta.url)), { recursive: true });
    await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', outfile: cli, logLevel: 'silent' });
  });

  it('put sends stdin lines as records and tail prints them, as text and as JSON lines', async () => {
    const stream = await createTestStream(endpoint, { shardCount: 2 });
    const lines = ['first', 'héllo 😀', '{"n":3}', 'fourth', 'fifth'];

    const put = await run(['put', stream], { stdin: `${lines.slice(0, 2).join('\n')}\n\n${lines.slice(2).join('\r\n')}\n` });
    expect(put).toMatchObject({ code: 0, stdout: '' });
    expect(put.stderr).toMatch(`put: 5 of 5 record(s) stored in ${stream} (1 empty line(s) skipped)`);

    const text = await run(['tail', stream, '--from', 'trim-horizon', '--max-records', '5']);
    expect(text.code).toBe(0);
    expect(text.stdout.trimEnd().split('\n').sort()).toEqual([...lines].sort());
    expect(text.stderr).toMatch(`tail: ${stream}, 2 open shard(s), from TRIM_HORIZON, until 5 record(s)`);

    const json = await run(['tail', stream, '--from=trim-horizon', '--format', 'json', '--max-records=5']);
    expect(json.code).toBe(0);
    const records = json.stdout.trimEnd().split('\n').map((line) => JSON.parse(line));
    expect(records.map((r) => r.data).sort()).toEqual([...lines].sort());
    for (const record of records) {
      expect(record).toEqual({
        shardId: expect.stringMatching(/^shardId-\d{12}$/),
        sequenceNumber: expect.stringMatching(/^\d+$/),
        partitionKey: expect.any(String),
        arrivalTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        data: expect.any(String),
      });
    }
  });

  it('tail from latest shows records put while it runs', async () => {
    const stream = await createTestStream(endpoint, { shardCount: 1 });
    const tail = start(['tail', stream, '--max-records', '2', '--format', 'text']);
    await tail.stderrMatches(/tail: /);
    // The reader may still be opening its iterators: put until it has seen two records.
    let exited = false;
    void tail.done.then(() => (exited = true));
    for (let i = 0; i < 30 && !exited; i++) {
      const put = await run(['put', stream, '--partition-key', 'same'], { stdin: `live-${i}\n` });
      expect(put.code).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    const result = await tail.done;
    expect(result.code).toBe(0);
    const shown = result.stdout.trimEnd().split('\n');
    expect(shown).toHaveLength(2);
    const [a, b] = shown.map((line) => Number(line.slice('live-'.length)));
    expect(b).toBe(a! + 1);
  });

  it('tail stops on Ctrl-C (SIGINT) with exit code 130 and no output', async () => {
    const stream = await createTestStream(endpoint, { shardCount: 2 });
    const tail = start(['tail', stream]);
    await tail.stderrMatches(/tail: /);
    await new Promise((resolve) => setTimeout(resolve, 300));
    tail.kill('SIGINT');
    const result = await tail.done;
    expect(result).toMatchObject({ code: 130, stdout: '' });
    expect(result.stderr).not.toMatch(/kinesis-edge:/);
  });

  it('streams lists the stream, as names or JSON lines', async () => {
    const stream = await createTestStream(endpoint, { shardCount: 1 });
    const text = await run(['streams']);
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')).toContain(stream);
    const json = await run(['streams', '--format', 'json']);
    expect(json.code).toBe(0);
    expect(json.stdout.trimEnd().split('\n').map((line) => JSON.parse(line))).toContainEqual(expect.objectContaining({ name: stream }));
  });

  it.each([['tail'], ['put']])('%s of a missing stream exits 1 saying the stream was not found', async (command) => {
    const missing = uniqueStreamName('missing');
    const result = await run([command, missing], { stdin: 'x\n' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^kinesis-edge: stream ${missing} not found \\(DescribeStreamSummary failed: ResourceNotFoundException`));
  });

  it('a stream name the API refuses exits 1 with the rule it breaks', async () => {
    const result = await run(['tail', 'bad name!']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('kinesis-edge: DescribeStreamSummary: invalid input: StreamName: must match ^[a-zA-Z0-9_.-]+$\n');
  });

  it('an unreachable endpoint exits 1 with a network error', async () => {
    const result = await run(['streams', '--endpoint', 'http://127.0.0.1:9'], { timeoutMs: 30_000 });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^kinesis-edge: ListStreams failed: network error/);
  });

  it.each([
    [[], /no command given/],
    [['nope'], /unknown command nope/],
    [['tail'], /tail needs a stream name/],
    [['tail', 's', '--from', 'yesterday'], /--from must be latest, trim-horizon or an ISO time/],
    [['tail', 's', '--format', 'xml'], /--format must be text or json/],
    [['tail', 's', '--max-records', '0'], /--max-records must be a positive integer/],
    [['tail', 's', '--verbose'], /unknown option --verbose/],
    [['put', 's', 'extra'], /unexpected argument: extra/],
  ])('usage error %j exits 2 with the usage', async (args, message) => {
    const result = await run(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/Usage:/);
  });

  it.each([
    [{ AWS_REGION: undefined }, /no region: pass --region or set AWS_REGION/],
    [{ AWS_SECRET_ACCESS_KEY: undefined }, /no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/],
    [{ AWS_ENDPOINT_URL_KINESIS: 'not a url' }, /endpoint is not a URL/],
  ])('configuration error %j exits 2 with a clear message', async (env, message) => {
    const result = await run(['streams'], { env });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/Usage:/);
  });

  it('--help prints the usage and exits 0', async () => {
    const result = await run(['--help']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^Usage:\n {2}kinesis-edge tail <stream>/);
  });
});

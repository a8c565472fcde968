/**
 * `kinesis-edge`: a command line for scripts, in Node.js 20+, Deno 2 and Bun.
 *
 *   kinesis-edge tail <stream> [--from latest|trim-horizon|<ISO time>] [--format text|json] [--max-records N]
 *   kinesis-edge put <stream> [--partition-key KEY]     (one record per line of standard input)
 *   kinesis-edge streams [--format text|json]
 *
 * Configuration comes from the usual AWS environment variables (AWS_REGION or AWS_DEFAULT_REGION,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ENDPOINT_URL_KINESIS or
 * AWS_ENDPOINT_URL) and the --region / --endpoint flags.
 * https://docs.aws.amazon.com/sdkref/latest/guide/settings-reference.html#EVarSettings
 *
 * This is the only module that touches the host process, and only through `globalThis.process`
 * (Node, Bun, and Deno 2 all provide it), typed here by the little it uses, so that no `node:`
 * import and no Node types are needed. It is an entry point: nothing imports it.
 */
import { createKinesisClient, type KinesisClient } from './client.ts';
import { readStream } from './consumer/read-stream.ts';
import { recordText, type ConsumerRecord } from './consumer/record.ts';
import type { StreamStartPosition } from './consumer/position.ts';
import { isKinesisError, isKinesisServiceError } from './errors.ts';
import { encodeBase64 } from './internal/base64.ts';
import { decodeUtf8 } from './internal/utf8.ts';
import { describeStreamSummary } from './operations/describe-stream-summary.ts';
import { listAllStreams } from './paginate.ts';
import { createProducer } from './producer/producer.ts';

interface OutputStream {
  write(chunk: string, callback?: (error?: Error | null) => void): boolean;
  once(event: 'drain', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error & { code?: string }) => void): unknown;
  isTTY?: boolean;
}

interface HostProcess {
  argv: string[];
  env: Record<string, string | undefined>;
  stdin: AsyncIterable<Uint8Array | string> & { destroy?(): unknown };
  stdout: OutputStream;
  stderr: OutputStream;
  exitCode?: number | string | undefined;
  on(event: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
  off(event: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
  exit(code?: number): unknown;
}

const USAGE = `Usage:
  kinesis-edge tail <stream> [--from latest|trim-horizon|<ISO time>] [--format text|json] [--max-records N]
      Print records as they arrive, from every shard (Ctrl-C to stop).
  kinesis-edge put <stream> [--partition-key KEY]
      Send each line of standard input as one record (random partition keys unless given).
  kinesis-edge streams [--format text|json]
      List the streams of the account and region.

Options for every command:
  --region REGION      AWS region (default: $AWS_REGION, then $AWS_DEFAULT_REGION)
  --endpoint URL       Kinesis endpoint (default: $AWS_ENDPOINT_URL_KINESIS, then $AWS_ENDPOINT_URL)
  -h, --help           Show this help

Credentials: $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY and, for temporary ones, $AWS_SESSION_TOKEN.
`;

/** An error the user can fix by changing the command line: exit 2 with the usage. */
class UsageError extends Error {}
/** Missing or bad configuration (region, credentials, endpoint): exit 2 without the usage. */
class ConfigError extends Error {}

interface Args {
  command: string | undefined;
  positional: string[];
  flags: Map<string, string>;
  help: boolean;
}

const VALUE_FLAGS = new Set(['from', 'format', 'max-records', 'partition-key', 'region', 'endpoint']);

function parseArgs(argv: readonly string[]): Args {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      help = true;
    } else if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    } else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      if (!VALUE_FLAGS.has(name)) throw new UsageError(`unknown option --${name}`);
      const value = eq < 0 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined || value === '') throw new UsageError(`--${name} needs a value`);
      flags.set(name, value);
    } else if (arg.startsWith('-') && arg !== '-') {
      throw new UsageError(`unknown option ${arg}`);
    } else {
      positional.push(arg);
    }
  }
  return { command: positional.shift(), positional, flags, help };
}

function makeClient(args: Args, env: HostProcess['env']): KinesisClient {
  const region = args.flags.get('region') ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION);
  if (!region) throw new ConfigError('no region: pass --region or set AWS_REGION');
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new ConfigError(
      'no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones); shared config files and profiles are not read',
    );
  }
  const endpoint = args.flags.get('endpoint') ?? (env.AWS_ENDPOINT_URL_KINESIS || env.AWS_ENDPOINT_URL || undefined);
  const sessionToken = env.AWS_SESSION_TOKEN || undefined;
  try {
    return createKinesisClient({
      region,
      endpoint,
      credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) },
    });
  } catch (error) {
    throw new ConfigError(error instanceof Error ? error.message : String(error));
  }
}

function oneStream(args: Args, command: string): string {
  const [stream, ...extra] = args.positional;
  if (!stream) throw new UsageError(`${command} needs a stream name`);
  if (extra.length) throw new UsageError(`unexpected argument: ${extra[0]}`);
  return stream;
}

function streamRef(stream: string): { streamName?: string; streamARN?: string } {
  return stream.startsWith('arn:') ? { streamARN: stream } : { streamName: stream };
}

function parseFrom(value: string | undefined): StreamStartPosition {
  if (value === undefined || value === 'latest') return { type: 'LATEST' };
  if (value === 'trim-horizon') return { type: 'TRIM_HORIZON' };
  const timestamp = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(timestamp.getTime())) {
    throw new UsageError(`--from must be latest, trim-horizon or an ISO time such as 2026-12-01T10:00:00Z, not ${value}`);
  }
  return { type: 'AT_TIMESTAMP', timestamp };
}

function parseFormat(value: string | undefined): 'text' | 'json' {
  if (value === undefined || value === 'text' || value === 'json') return value ?? 'text';
  throw new UsageError(`--format must be text or json, not ${value}`);
}

/** Resolves once the chunk is handed to the OS, waiting for `drain` when the stream is full. */
function write(out: OutputStream, chunk: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = out.write(chunk, (error) => (error ? reject(error) : undefined));
    if (ok) resolve();
    else out.once('drain', resolve);
  });
}

function describeError(error: unknown, stream: string | undefined): string {
  if (isKinesisServiceError(error) && error.code === 'ResourceNotFoundException' && stream !== undefined) {
    return `stream ${stream} not found (${error.message})`;
  }
  if (isKinesisError(error) || error instanceof Error) return error.message;
  return String(error);
}

/** Checks that the stream exists (and the credentials work) before any long work. */
async function checkStream(client: KinesisClient, stream: string, signal: AbortSignal) {
  const input = stream.startsWith('arn:') ? { StreamARN: stream } : { StreamName: stream };
  const { StreamDescriptionSummary } = await describeStreamSummary(client, input, { signal });
  return StreamDescriptionSummary;
}

function recordLine(record: ConsumerRecord, format: 'text' | 'json'): string {
  if (format === 'text') return `${recordText(record)}\n`;
  let data: { data: string } | { dataBase64: string };
  try {
    data = { data: decodeUtf8(record.data, { fatal: true }) };
  } catch {
    data = { dataBase64: encodeBase64(record.data) };
  }
  return `${JSON.stringify({
    shardId: record.shardId,
    sequenceNumber: record.sequenceNumber,
    ...(record.subSequenceNumber === undefined ? {} : { subSequenceNumber: record.subSequenceNumber }),
    partitionKey: record.partitionKey,
    ...(record.explicitHashKey === undefined ? {} : { explicitHashKey: record.explicitHashKey }),
    arrivalTime: record.arrivalTime.toISOString(),
    ...data,
  })}\n`;
}

async function tail(host: HostProcess, client: KinesisClient, args: Args, signal: AbortSignal): Promise<void> {
  const stream = oneStream(args, 'tail');
  const from = parseFrom(args.flags.get('from'));
  const format = parseFormat(args.flags.get('format'));
  const maxText = args.flags.get('max-records');
  const max = maxText === undefined ? Infinity : Number(maxText);
  if (!(Number.isInteger(max) || max === Infinity) || max < 1) throw new UsageError(`--max-records must be a positive integer, not ${maxText}`);

  const summary = await checkStream(client, stream, signal);
  const start = from.type === 'AT_TIMESTAMP' ? from.timestamp.toISOString() : from.type;
  await write(host.stderr, `tail: ${summary.StreamName}, ${summary.OpenShardCount} open shard(s), from ${start}${max < Infinity ? `, until ${max} record(s)` : ''}\n`);
  let count = 0;
  for await (const record of readStream(client, { ...streamRef(stream), from, signal })) {
    await write(host.stdout, recordLine(record, format));
    if (++count >= max) break;
  }
}

async function* lines(input: AsyncIterable<Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = '';
  for await (const chunk of input) {
    pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      yield pending.slice(0, newline).replace(/\r$/, '');
      pending = pending.slice(newline + 1);
    }
  }
  pending += decoder.decode();
  if (pending !== '') yield pending.replace(/\r$/, '');
}

async function put(host: HostProcess, client: KinesisClient, args: Args, signal: AbortSignal): Promise<number> {
  const stream = oneStream(args, 'put');
  const partitionKey = args.flags.get('partition-key');
  const summary = await checkStream(client, stream, signal);
  // A small buffer keeps standard input from racing ahead (each record's time to live runs from
  // its put), and a long time to live suits a script that waits for the end anyway.
  const producer = createProducer(client, { ...streamRef(stream), maxBufferedRecords: 2000, recordTtlMs: 300_000 });
  const progressEvery = 1000;
  let sent = 0;
  let stored = 0;
  let failed = 0;
  let skipped = 0;
  let firstError: unknown;
  let onSettled: (() => void) | undefined;
  const settle = () => {
    if (stored + failed === sent) onSettled?.();
  };
  const progress = () => `put: ${sent} record(s) sent, ${stored} stored${failed ? `, ${failed} failed` : ''}`;
  const isTty = host.stderr.isTTY === true;
  const timer = setInterval(() => {
    host.stderr.write(isTty ? `\r${progress()}` : `${progress()}\n`);
  }, progressEvery);
  try {
    try {
      for await (const line of lines(host.stdin)) {
        if (signal.aborted) break;
        if (line === '') {
          skipped++;
          continue;
        }
        if (!producer.hasCapacity) await producer.waitForCapacity();
        sent++;
        producer.put({ data: line, ...(partitionKey ? { partitionKey } : {}) }).then(
          () => {
            stored++;
            settle();
          },
          (error: unknown) => {
            failed++;
            firstError ??= error;
            settle();
          },
        );
      }
    } catch (error) {
      // Interrupted: standard input was closed under the loop; send what was read.
      if (!signal.aborted) throw error;
    }
    // Records already read are delivered, also after Ctrl-C.
    await producer.close();
    if (stored + failed < sent) await new Promise<void>((resolve) => (onSettled = resolve));
  } finally {
    clearInterval(timer);
  }
  const skippedNote = skipped ? ` (${skipped} empty line(s) skipped)` : '';
  await write(host.stderr, `${isTty ? '\r' : ''}put: ${stored} of ${sent} record(s) stored in ${summary.StreamName}${skippedNote}\n`);
  if (failed > 0) {
    await write(host.stderr, `kinesis-edge: ${failed} record(s) failed; first: ${describeError(firstError, stream)}\n`);
    return 1;
  }
  return 0;
}

async function streams(host: HostProcess, client: KinesisClient, args: Args, signal: AbortSignal): Promise<void> {
  if (args.positional.length) throw new UsageError(`unexpected argument: ${args.positional[0]}`);
  const format = parseFormat(args.flags.get('format'));
  for await (const summary of listAllStreams(client, {}, { signal })) {
    const line =
      format === 'text'
        ? summary.StreamName
        : JSON.stringify({ name: summary.StreamName, status: summary.StreamStatus, arn: summary.StreamARN, mode: summary.StreamModeDetails?.StreamMode });
    await write(host.stdout, `${line}\n`);
  }
}

/** Runs one command line; resolves with the exit code. */
async function main(host: HostProcess): Promise<number> {
  const controller = new AbortController();
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    controller.abort(new Error('interrupted'));
    // Unblocks a pending read of standard input (`put`).
    host.stdin.destroy?.();
  };
  host.on('SIGINT', onSignal);
  host.on('SIGTERM', onSignal);
  // A closed pipe (`| head`) ends the command quietly.
  const onPipeError = (error: Error & { code?: string }) => {
    if (error.code === 'EPIPE') controller.abort(error);
  };
  host.stdout.on('error', onPipeError);

  let args: Args | undefined;
  try {
    args = parseArgs(host.argv.slice(2));
    if (args.help || args.command === 'help') {
      await write(host.stdout, USAGE);
      return 0;
    }
    if (args.command === undefined) throw new UsageError('no command given');
    if (!['tail', 'put', 'streams'].includes(args.command)) throw new UsageError(`unknown command ${args.command}`);
    const client = makeClient(args, host.env);
    if (args.command === 'tail') await tail(host, client, args, controller.signal);
    else if (args.command === 'put') return await put(host, client, args, controller.signal);
    else await streams(host, client, args, controller.signal);
    return 0;
  } catch (error) {
    if (controller.signal.aborted) return interrupted ? 130 : 0;
    if (error instanceof UsageError) {
      await write(host.stderr, `kinesis-edge: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    if (error instanceof ConfigError) {
      await write(host.stderr, `kinesis-edge: ${error.message}\n`);
      return 2;
    }
    await write(host.stderr, `kinesis-edge: ${describeError(error, args?.positional[0])}\n`);
    return 1;
  } finally {
    host.off('SIGINT', onSignal);
    host.off('SIGTERM', onSignal);
  }
}

const host = (globalThis as { process?: HostProcess }).process;
if (host?.argv) {
  void main(host).then((code) => {
    // Every write was awaited, and nothing of ours is left running; exiting now saves the wait
    // for fetch's idle keep-alive connections to close (about half a second in Node).
    host.exitCode = code;
    host.exit(code);
  });
} else {
  throw new Error('kinesis-edge: this command line needs Node.js 20+, Deno 2 or Bun (a global `process`)');
}

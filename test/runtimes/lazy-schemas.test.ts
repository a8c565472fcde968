// zod is loaded on the first call of an operation that is validated by its schemas, never at import
// and never on the write path (PutRecord, PutRecords, the producer): see src/put-validation.ts and
// src/schema-validation.ts. Proven on the packed package installed WITHOUT zod: importing it and
// writing records must work, and the first DescribeStream must fail to load zod (and only then).
// (A producer that predicts shards calls ListShards, which does load zod: the probe turns that off.)
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, preparePackedFixture, run } from './support/packed-fixture.ts';

let dir: string;

beforeAll(async () => {
  const fixture = await preparePackedFixture();
  dir = await mkdtemp(join(tmpdir(), 'kinesis-edge-no-zod-'));
  // The package and aws4fetch, as npm installed them, and no zod at all.
  for (const name of ['kinesis-edge', 'aws4fetch']) {
    await mkdir(join(dir, 'node_modules', name), { recursive: true });
    await cp(join(fixture.dir, 'node_modules', name), join(dir, 'node_modules', name), { recursive: true });
  }
  await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n');
}, 180_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const SCRIPT = `
import { createKinesisClient, createProducer, putRecord, putRecords, describeStream } from 'kinesis-edge';

const sent = [];
// A stand-in for the service: answers PutRecord(s) and ListShards, records each target.
const fetch = async (url, init) => {
  const target = new Headers(init.headers).get('x-amz-target');
  sent.push(target.split('.')[1]);
  const body = JSON.parse(new TextDecoder().decode(init.body));
  const answer =
    target.endsWith('.PutRecords') ? { FailedRecordCount: 0, Records: body.Records.map((_, i) => ({ SequenceNumber: String(i + 1), ShardId: 'shardId-000000000000' })) } :
    target.endsWith('.PutRecord') ? { SequenceNumber: '1', ShardId: 'shardId-000000000000' } : {};
  return new Response(JSON.stringify(answer), { status: 200 });
};
const client = createKinesisClient({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 's' }, endpoint: 'http://127.0.0.1:9', fetch });

const many = await putRecords(client, { StreamName: 'clicks', Records: [{ PartitionKey: 'k', Data: 'a' }, { PartitionKey: 'k', Data: new Uint8Array([1]) }] });
const one = await putRecord(client, { StreamName: 'clicks', PartitionKey: 'k', Data: 'b' });
let invalid;
try { await putRecords(client, { StreamName: 'bad name', Records: [] }); } catch (error) { invalid = error.issues; }
const producer = createProducer(client, { streamName: 'clicks', predictShards: false, lingerMs: 0 });
const produced = await producer.put({ partitionKey: 'k', data: 'c' });
await producer.close();
let describeError;
try { await describeStream(client, { StreamName: 'clicks' }); } catch (error) { describeError = error.code ?? error.name; }
let zodResolvable = true;
try { import.meta.resolve('zod/mini'); } catch { zodResolvable = false; }
console.log(JSON.stringify({ zodResolvable, many: many.Records.length, one: one.SequenceNumber, invalid, produced, describeError, sent }));
`;

describe('the packed package without zod installed', () => {
  it('imports, validates and writes records; loads zod only for the first schema-validated call', async () => {
    await writeFile(join(dir, 'probe.mjs'), SCRIPT);
    const result = await run(process.execPath, ['probe.mjs'], { cwd: dir, timeoutMs: 30_000 });
    expect(result.code, describeRun('node probe.mjs', result)).toBe(0);
    const out = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(out.zodResolvable, `no zod may be installed above ${dir}`).toBe(false);
    expect(out.many).toBe(2);
    expect(out.one).toBe('1');
    // Validation of the write path works without zod, with the usual field paths and rules.
    expect(out.invalid).toEqual([
      { path: 'Records', rule: 'must have at least 1 items' },
      { path: 'StreamName', rule: 'must match ^[a-zA-Z0-9_.-]+$' },
    ]);
    expect(out.produced).toEqual({ shardId: 'shardId-000000000000', sequenceNumber: '1', attempts: 1 });
    // DescribeStream needs its schemas: loading them fails here, before any request is made.
    expect(out.describeError).toBe('ERR_MODULE_NOT_FOUND');
    expect(out.sent).toEqual(['PutRecords', 'PutRecord', 'PutRecords']);
  }, 60_000);
});

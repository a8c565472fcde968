#!/usr/bin/env node
// `npm start`: a live demo on the embedded local Kinesis. It starts kinesis-local on a free
// loopback port, creates a stream, writes records with the client every second, reads them back
// from every shard and prints each with its shard and sequence number. Ctrl-C stops everything.
//
// Flags: --records N  stop by itself after N records were read back (used by the test suite).
import { startLocalKinesis } from './local-kinesis.mjs';

const args = process.argv.slice(2);
const limitFlag = args.indexOf('--records');
const stopAfter = limitFlag >= 0 ? Number(args[limitFlag + 1]) : Infinity;

const lib = await import('../dist/index.js').catch(() => {
  console.error('kinesis-edge is not built: run `npm run build` first (npm start does it for you).');
  process.exit(1);
});
const { createKinesisClient, createStream, waitForStreamActive, putRecords, listShards, getShardIterator, getRecords } = lib;

const local = await startLocalKinesis();
const controller = new AbortController();
let stopping = false;
async function shutdown(code = 0) {
  if (stopping) return;
  stopping = true;
  controller.abort();
  await local.stop();
  console.log('\nstopped the local Kinesis; bye');
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

try {
  // kinesis-local checks that requests are signed, not who signed them.
  const client = createKinesisClient({
    region: 'us-east-1',
    endpoint: local.endpoint,
    credentials: { accessKeyId: 'AKIDLOCALDEMO', secretAccessKey: 'local-demo-secret' },
  });
  const StreamName = 'kinesis-edge-demo';
  await createStream(client, { StreamName, ShardCount: 2 });
  await waitForStreamActive(client, { StreamName }, { intervalMs: 100, timeoutMs: 30_000 });
  console.log(`local Kinesis at ${local.endpoint}; stream "${StreamName}" is ACTIVE with 2 shards`);
  console.log('writing a record per second and reading them back; Ctrl-C to stop\n');

  const { Shards = [] } = await listShards(client, { StreamName });
  const iterators = new Map();
  for (const shard of Shards) {
    const { ShardIterator } = await getShardIterator(client, { StreamName, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' });
    iterators.set(shard.ShardId, ShardIterator);
  }

  const pages = ['/', '/pricing', '/docs', '/blog/launch', '/signup'];
  const decoder = new TextDecoder();
  let sent = 0;
  let read = 0;
  while (!controller.signal.aborted && read < stopAfter) {
    const user = `user-${1 + (sent % 3)}`;
    const event = { type: 'page_view', user, path: pages[sent % pages.length], at: new Date().toISOString() };
    await putRecords(client, { StreamName, Records: [{ PartitionKey: user, Data: JSON.stringify(event) }] }, { signal: controller.signal });
    sent++;
    for (const [shardId, iterator] of iterators) {
      if (!iterator) continue;
      const page = await getRecords(client, { ShardIterator: iterator }, { signal: controller.signal });
      iterators.set(shardId, page.NextShardIterator);
      for (const record of page.Records) {
        read++;
        console.log(`${shardId}  seq ${record.SequenceNumber}  key ${record.PartitionKey}  ${decoder.decode(record.Data)}`);
      }
    }
    if (read < stopAfter) await new Promise((r) => setTimeout(r, 1000));
  }
  await shutdown(0);
} catch (error) {
  if (!controller.signal.aborted) {
    console.error(error);
    await shutdown(1);
  }
}

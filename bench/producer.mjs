// The producer benchmark of issue 3, called by bench/run.mjs: kinesis-edge's producer (plain and
// with KPL aggregation) side by side with a straightforward loop over the AWS SDK's
// PutRecordsCommand in 500-record batches, against the do-nothing endpoint (client cost only) and
// against kinesis-local; then the memory one buffered record costs while the endpoint never
// answers. Figures, not assertions: nothing here passes or fails.
import { createServer } from 'node:http';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench-secret' };
const RECORD_SIZES = [100, 1024];
/** The SDK loop's batch: PutRecords' 500-record maximum. */
const SDK_BATCH = 500;
/** Distinct payloads per record size; record i carries payload i % POOL. */
const POOL = 1024;
/** Distinct partition keys; record i has key `user-${i % KEYS}` (spread over every shard). */
const KEYS = 50_000;
const MEMORY_RECORDS = 50_000;
const MEMORY_RECORD_BYTES = 100;
/** The AWS SDK loop runs with this many batches in flight too: the producer's default maxInFlight. */
const PRODUCER_DEFAULT_MAX_IN_FLIGHT = 4;
/** The whole 128-bit hash key space, as ListShards reports a one-shard stream. */
const MAX_HASH_KEY = ((1n << 128n) - 1n).toString();

const keyFor = (i) => `user-${i % KEYS}`;

function payloadPool(bytes) {
  const pool = [];
  let x = 0x9e3779b9;
  for (let p = 0; p < POOL; p++) {
    const data = new Uint8Array(bytes);
    for (let j = 0; j < bytes; j++) {
      // xorshift32: bytes that do not repeat, as real payloads would not.
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      data[j] = x & 0xff;
    }
    pool.push(data);
  }
  return pool;
}

/**
 * `gc()` even when Node was started without --expose-gc (the flag can be set at run time; the
 * function then exists in a new context). Undefined when that fails.
 */
function findGc() {
  if (typeof globalThis.gc === 'function') return globalThis.gc;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc');
    return typeof gc === 'function' ? gc : undefined;
  } catch {
    return undefined;
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Settles like `promise`, or rejects after `ms` (the timer never outlives the race). */
async function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- contenders -------------------------------------------------------------------------------

/**
 * kinesis-edge: `put()` every record (waiting for capacity when the buffer is full, the documented
 * backpressure; without it the default 10,000-record buffer refuses the rest), then `close()`
 * (a flush that also refuses new records). Counts come from the producer's stats.
 */
async function runEdgeProducer(edge, client, streamName, options, count, pool, deadline) {
  const producer = edge.createProducer(client, { streamName, ...options });
  const ignore = () => {};
  let put = 0;
  for (; put < count; put++) {
    if (!producer.hasCapacity) {
      if (performance.now() > deadline) break;
      await producer.waitForCapacity();
    }
    // Failures are counted in the stats; the handler only keeps the rejection handled.
    producer.put({ partitionKey: keyFor(put), data: pool[put % POOL] }).then(ignore, ignore);
  }
  await producer.close();
  const stats = producer.stats();
  return {
    put,
    stored: stats.stored,
    failed: stats.failed,
    requests: stats.requests,
    retried: stats.retried,
    truncated: put < count,
    failures: Object.entries(stats.failedByReason).filter(([, n]) => n > 0).map(([reason, n]) => `${n} ${reason}`),
  };
}

/**
 * The AWS SDK: batches of 500 records, each sent with PutRecordsCommand and awaited, by
 * `concurrency` loops sharing one counter. No resubmission of failed entries (a straightforward
 * loop); they are counted.
 */
async function runSdkLoop(sdk, client, streamName, concurrency, count, pool, deadline) {
  let next = 0;
  let stored = 0;
  let failed = 0;
  let requests = 0;
  const loop = async () => {
    while (next < count && performance.now() <= deadline) {
      const start = next;
      const end = Math.min(count, start + SDK_BATCH);
      next = end;
      const Records = new Array(end - start);
      for (let i = start; i < end; i++) Records[i - start] = { PartitionKey: keyFor(i), Data: pool[i % POOL] };
      const out = await client.send(new sdk.PutRecordsCommand({ StreamName: streamName, Records }));
      requests++;
      const failedHere = out.FailedRecordCount ?? 0;
      failed += failedHere;
      stored += Records.length - failedHere;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { put: next, stored, failed, requests, retried: 0, truncated: next < count, failures: failed > 0 ? [`${failed} failed entries (not resent)`] : [] };
}

async function measure(gc, run) {
  gc?.();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await run();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    ...result,
    seconds,
    recordsPerSecond: result.stored / seconds,
    cpuMsPer1000: result.stored > 0 ? (cpu.user + cpu.system) / 1000 / (result.stored / 1000) : Number.NaN,
  };
}

/**
 * A fetch for the producer's client against the do-nothing endpoint, which answers ListShards
 * with `{}`: the listing is answered here instead, as one shard over the whole hash key range
 * named like the shard the endpoint reports for every record. The producer then predicts shards
 * (an MD5 per record) and aggregates across keys as it would on a real stream.
 */
function fetchWithOneShardListing(stream) {
  const listing = JSON.stringify({
    Shards: [
      {
        ShardId: 'shardId-000000000000',
        HashKeyRange: { StartingHashKey: '0', EndingHashKey: MAX_HASH_KEY },
        SequenceNumberRange: { StartingSequenceNumber: '49680721631307556702168416044959309240192869867364286466' },
      },
    ],
    StreamName: stream,
  });
  return (url, init) => {
    const target = init?.headers instanceof Headers ? init.headers.get('x-amz-target') : undefined;
    if (target?.endsWith('.ListShards')) {
      return Promise.resolve(new Response(listing, { status: 200, headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'bench' } }));
    }
    return fetch(url, init);
  };
}

const CONTENDERS = [
  { name: 'kinesis-edge producer', kind: 'edge', options: {} },
  { name: 'kinesis-edge producer, aggregation', kind: 'edge', options: { aggregation: true } },
  { name: 'aws-sdk loop, 1 in flight', kind: 'sdk', concurrency: 1 },
  { name: `aws-sdk loop, ${PRODUCER_DEFAULT_MAX_IN_FLIGHT} in flight`, kind: 'sdk', concurrency: PRODUCER_DEFAULT_MAX_IN_FLIGHT },
];
const EDGE_PLAIN = CONTENDERS[0].name;
const EDGE_AGG = CONTENDERS[1].name;
const SDK_SEQUENTIAL = CONTENDERS[2].name;
const SDK_CONCURRENT = CONTENDERS[3].name;

async function throughput({ root, nullEndpoint, localEndpoint, quick, gc }) {
  const edge = await import(join(root, 'dist/index.js'));
  const sdk = await import('@aws-sdk/client-kinesis');
  const { NodeHttpHandler } = await import('@smithy/node-http-handler');
  const pools = new Map(RECORD_SIZES.map((bytes) => [bytes, payloadPool(bytes)]));
  const sdkClient = (endpoint) =>
    new sdk.KinesisClient({
      region: REGION,
      endpoint,
      credentials: CREDENTIALS,
      // A request timeout bounds every loop in time; the default has none.
      requestHandler: new NodeHttpHandler({ connectionTimeout: 10_000, requestTimeout: 60_000 }),
    });

  const targets = [
    {
      label: 'do-nothing endpoint',
      count: quick ? 10_000 : 100_000,
      rounds: quick ? 1 : 3,
      // Enough for the JIT to settle: below ~20,000 records the producer's figures are mostly warm-up.
      warmUp: 20_000,
      budgetMs: 120_000,
      edgeClient: edge.createKinesisClient({ region: REGION, endpoint: nullEndpoint, credentials: CREDENTIALS, fetch: fetchWithOneShardListing('bench') }),
      // The do-nothing endpoint models no shard limits, so the producer's per-shard ceiling (the
      // service's 1,000 records/s and 1 MiB/s) is lifted here; it would measure the limiter.
      edgeOptions: { shardRate: { recordsPerSecond: Number.POSITIVE_INFINITY, bytesPerSecond: Number.POSITIVE_INFINITY } },
      sdkClient: sdkClient(nullEndpoint),
      prepare: async () => 'bench',
      cleanUp: async () => {},
    },
    {
      label: 'kinesis-local',
      count: quick ? 1_000 : 5_000,
      // Short runs against a server whose speed drifts: three, and the median.
      rounds: quick ? 1 : 3,
      // kinesis-local is itself slow to warm up: unwarmed, the first contender would pay for it.
      warmUp: quick ? 500 : 1_000,
      budgetMs: 180_000,
      edgeClient: edge.createKinesisClient({ region: REGION, endpoint: localEndpoint, credentials: CREDENTIALS }),
      edgeOptions: {},
      sdkClient: sdkClient(localEndpoint),
      ...localStreams(edge, localEndpoint),
    },
  ];

  const rows = [];
  try {
    for (const target of targets) {
      for (const bytes of RECORD_SIZES) {
        const pool = pools.get(bytes);
        const samples = new Map(CONTENDERS.map((c) => [c.name, []]));
        const runOnce = async (contender, count) => {
          const stream = await target.prepare();
          const deadline = performance.now() + target.budgetMs;
          try {
            return await measure(gc, () =>
              contender.kind === 'edge'
                ? runEdgeProducer(edge, target.edgeClient, stream, { ...target.edgeOptions, ...contender.options }, count, pool, deadline)
                : runSdkLoop(sdk, target.sdkClient, stream, contender.concurrency, count, pool, deadline),
            );
          } finally {
            await target.cleanUp(stream);
          }
        };
        if (target.warmUp) for (const contender of CONTENDERS) await runOnce(contender, target.warmUp);
        for (let round = 0; round < target.rounds; round++) {
          // In a rotated order each round, so that no contender always runs first or right after another.
          for (const contender of [...CONTENDERS.slice(round % CONTENDERS.length), ...CONTENDERS.slice(0, round % CONTENDERS.length)]) {
            let result;
            try {
              result = await runOnce(contender, target.count);
            } catch (error) {
              console.log(`producer  ${target.label}  ${bytes} B  ${contender.name}: failed: ${error.message}`);
              continue;
            }
            samples.get(contender.name).push(result);
            const extra = [result.truncated ? `stopped after ${result.put} (time budget)` : '', ...result.failures].filter(Boolean).join(', ');
            console.log(
              `producer  ${target.label}  ${String(bytes).padStart(4)} B  ${contender.name.padEnd(36)} ${result.recordsPerSecond.toFixed(0).padStart(8)} records/s  ${result.cpuMsPer1000.toFixed(2).padStart(6)} CPU ms/1k  ${result.requests} requests${extra ? `  (${extra})` : ''}`,
            );
          }
        }
        for (const contender of CONTENDERS) {
          const runs = samples.get(contender.name);
          if (runs.length === 0) continue;
          rows.push({
            target: target.label,
            bytes,
            name: contender.name,
            count: target.count,
            runs: runs.length,
            recordsPerSecond: median(runs.map((r) => r.recordsPerSecond)),
            minRecordsPerSecond: Math.min(...runs.map((r) => r.recordsPerSecond)),
            maxRecordsPerSecond: Math.max(...runs.map((r) => r.recordsPerSecond)),
            cpuMsPer1000: median(runs.map((r) => r.cpuMsPer1000)),
            requests: median(runs.map((r) => r.requests)),
            notes: [...new Set(runs.flatMap((r) => [r.truncated ? `stopped early at ${r.put}` : '', ...r.failures]).filter(Boolean))].join('; '),
          });
        }
      }
    }
  } finally {
    for (const target of targets) target.sdkClient.destroy();
  }
  return rows;
}

/** A fresh 4-shard stream per run (kinesis-local slows down as a stream grows), deleted afterwards. */
function localStreams(edge, endpoint) {
  const admin = edge.createKinesisClient({ region: REGION, endpoint, credentials: CREDENTIALS });
  let streamNo = 0;
  return {
    prepare: async () => {
      const StreamName = `bench-producer-${Date.now()}-${streamNo++}`;
      await edge.createStream(admin, { StreamName, ShardCount: 4 });
      await edge.waitForStreamActive(admin, { StreamName }, { intervalMs: 50, timeoutMs: 60_000 });
      return StreamName;
    },
    cleanUp: async (StreamName) => {
      await edge.deleteStream(admin, { StreamName, EnforceConsumerDeletion: true }).catch(() => {});
    },
  };
}

// ---- memory ---------------------------------------------------------------------------------------

/**
 * An endpoint that reads requests and holds them unanswered until `refuseAll()`, which answers
 * them (and any later request) with a fault no one retries, so every buffered record fails fast.
 */
function startHoldingEndpoint() {
  const held = new Set();
  let refusing = false;
  const refuse = (res) => {
    const body = JSON.stringify({ __type: 'ResourceNotFoundException', message: 'bench: the holding endpoint refuses once the measurement is over' });
    res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'bench', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const server = createServer((req, res) => {
    req.resume();
    if (refusing) req.once('end', () => refuse(res));
    else held.add(res);
    res.once('close', () => held.delete(res));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve({
        endpoint: `http://127.0.0.1:${server.address().port}`,
        held: () => held.size,
        refuseAll: () => {
          refusing = true;
          for (const res of [...held]) refuse(res);
        },
        close: () =>
          new Promise((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

const bytesNow = () => {
  const usage = process.memoryUsage();
  return { heap: usage.heapUsed, buffers: usage.arrayBuffers };
};

/**
 * Puts MEMORY_RECORDS records into a producer whose endpoint never answers, with unbounded buffer
 * limits, and measures what the process holds for them (after a full GC when one can be forced):
 * the producer's bookkeeping, its copy of the data, the caller's record object and key that it
 * keeps, and, for `put()`, the returned promise with one handler attached. Then the endpoint
 * refuses everything and the producer closes, so nothing stays pending.
 */
async function memoryPerRecord(edge, gc, style) {
  const server = await startHoldingEndpoint();
  const client = edge.createKinesisClient({ region: REGION, endpoint: server.endpoint, credentials: CREDENTIALS, timeoutMs: 60_000 });
  const pool = payloadPool(MEMORY_RECORD_BYTES);
  try {
    gc?.();
    gc?.();
    const before = bytesNow();
    let peakHeap = before.heap;
    const producer = edge.createProducer(client, {
      streamName: 'bench-memory',
      predictShards: false, // the listing would be held too; all records wait in one queue
      maxBufferedRecords: Number.POSITIVE_INFINITY,
      maxBufferedBytes: Number.POSITIVE_INFINITY,
    });
    const ignore = () => {};
    for (let i = 0; i < MEMORY_RECORDS; i++) {
      const record = { partitionKey: keyFor(i), data: pool[i % POOL] };
      if (style === 'put') producer.put(record).then(ignore, ignore);
      else producer.send(record);
      if (i % 5_000 === 4_999) peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
    }
    // Let the producer start its requests (their bodies are part of what a full buffer holds).
    for (let i = 0; i < 20 && server.held() < PRODUCER_DEFAULT_MAX_IN_FLIGHT; i++) await new Promise((r) => setTimeout(r, 25));
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
    gc?.();
    gc?.();
    const after = bytesNow();
    const stats = producer.stats();
    server.refuseAll();
    const closed = await within(producer.close(), 60_000, 'closing the memory benchmark producer');
    return {
      style,
      records: MEMORY_RECORDS,
      buffered: stats.bufferedRecords,
      inFlightRequests: stats.inFlightRequests,
      heapPerRecord: (after.heap - before.heap) / MEMORY_RECORDS,
      buffersPerRecord: (after.buffers - before.buffers) / MEMORY_RECORDS,
      peakHeapPerRecord: (peakHeap - before.heap) / MEMORY_RECORDS,
      closed,
    };
  } finally {
    await within(server.close(), 10_000, 'closing the holding endpoint').catch(() => {});
  }
}

// ---- report ---------------------------------------------------------------------------------------

const ratio = (a, b) => (a === undefined || b === undefined || !(b > 0) ? 'n/a' : `${(a / b).toFixed(2)}x`);
const integer = (n) => Math.round(n).toLocaleString('en-US');

function report({ rows, memory, quick, gc }) {
  const find = (target, bytes, name) => rows.find((r) => r.target === target && r.bytes === bytes && r.name === name);
  const targetLines = [];
  const ratioRows = [];
  for (const target of ['do-nothing endpoint', 'kinesis-local']) {
    for (const bytes of RECORD_SIZES) {
      const plain = find(target, bytes, EDGE_PLAIN)?.recordsPerSecond;
      const agg = find(target, bytes, EDGE_AGG)?.recordsPerSecond;
      const seq = find(target, bytes, SDK_SEQUENTIAL)?.recordsPerSecond;
      const par = find(target, bytes, SDK_CONCURRENT)?.recordsPerSecond;
      ratioRows.push(`| ${target} | ${bytes} B | ${ratio(plain, seq)} | ${ratio(plain, par)} | ${ratio(agg, seq)} | ${ratio(agg, par)} |`);
      targetLines.push(
        `- ${target}, ${bytes}-byte records: the producer moves ${ratio(plain, seq)} the SDK loop's records/s (${ratio(plain, par)} of the ${PRODUCER_DEFAULT_MAX_IN_FLIGHT}-in-flight loop; target ≥ 1x); with aggregation ${ratio(agg, seq)} (${ratio(agg, par)}; target ≥ 3x).`,
      );
    }
  }
  const nullCount = rows.find((r) => r.target === 'do-nothing endpoint')?.count;
  const localCount = rows.find((r) => r.target === 'kinesis-local')?.count;
  const nullRuns = rows.find((r) => r.target === 'do-nothing endpoint')?.runs;
  const localRuns = rows.find((r) => r.target === 'kinesis-local')?.runs;
  const table = rows.map(
    (r) =>
      `| ${r.target} | ${r.bytes} B | ${r.name} | ${integer(r.recordsPerSecond)}${r.runs > 1 ? ` (${integer(r.minRecordsPerSecond)}–${integer(r.maxRecordsPerSecond)})` : ''} | ${r.cpuMsPer1000.toFixed(2)} | ${integer(r.requests)} | ${r.notes || ''} |`,
  );
  const memoryRows = memory.map((m) =>
    m.error
      ? `| \`${m.style}()\` | not measured: ${m.error} | | | | |`
      : `| \`${m.style}()\` | ${integer(m.buffered)} of ${integer(m.records)} (${m.inFlightRequests} requests in flight) | ${integer(m.heapPerRecord)} | ${integer(m.buffersPerRecord)} | ${integer(m.heapPerRecord + m.buffersPerRecord)} | ${integer(m.peakHeapPerRecord)} |`,
  );
  return `## 4. Producer

Each contender sends the same records: record *i* has partition key \`user-(i mod ${KEYS.toLocaleString('en-US')})\` and one of ${POOL}
pseudo-random payloads of the row's size, built as it goes.

- **kinesis-edge producer**: \`createProducer(client, { streamName })\`, default options
  (\`lingerMs\` 100, \`maxInFlight\` ${PRODUCER_DEFAULT_MAX_IN_FLIGHT}, 10,000-record buffer), \`put()\` every record
  (awaiting \`waitForCapacity()\` whenever the buffer is full, else the default buffer would refuse
  the rest), then \`close()\`. The clock stops when \`close()\` resolves (every record has settled).
- **… aggregation**: the same with \`aggregation: true\` (KPL records of at most 51,200 bytes).
  Records/s count user records.
- **aws-sdk loop**: \`@aws-sdk/client-kinesis\` with \`NodeHttpHandler\`, batches of ${SDK_BATCH}
  records each sent with \`PutRecordsCommand\` and awaited, by 1 loop, or by ${PRODUCER_DEFAULT_MAX_IN_FLIGHT} loops sharing one
  counter (the producer's default \`maxInFlight\`). Failed entries are not resent (a straightforward
  loop); the notes column would count them.

Against the **do-nothing endpoint** (\`bench/null-endpoint.mjs\`, its own process, so the figures
are client cost): ${integer(nullCount ?? 0)} records per run, ${nullRuns ?? 0} run${nullRuns === 1 ? '' : 's'} per row after an untimed warm-up run of 20,000 records
(median, with the range when there are several). That endpoint answers ListShards with \`{}\`, so the
producer's client answers ListShards in-process with one shard over the whole hash key range (the
shard the endpoint names in every answer): the producer predicts shards (an MD5 per record) and
aggregates across keys as it would on a real stream. Its per-shard ceiling (the service's 1,000
records/s and 1 MiB/s) is lifted there (\`shardRate\` Infinity), since the endpoint has no shards to protect.
Against **kinesis-local**: ${integer(localCount ?? 0)} records per run, ${localRuns ?? 0} run${localRuns === 1 ? '' : 's'} per row (median) after an untimed warm-up run of ${quick ? 500 : '1,000'} records, a fresh 4-shard stream per run (deleted after it), all producer options
at their defaults (real ListShards, per-shard ceiling on). kinesis-local is far slower than the
clients, so those rows mostly measure kinesis-local and how many Kinesis records (and bytes) it is
given; in runs this short, the producer's fixed costs (its ListShards call, then hashing the records
already buffered and moving them to their shards' queues) weigh on its CPU per 1,000 records.
CPU is this process's user + system time (\`process.cpuUsage()\`) per 1,000 records stored; the endpoints run in other processes.

| target | record size | contender | user records/s | CPU ms per 1,000 records | PutRecords requests | notes |
| --- | --- | --- | --- | --- | --- | --- |
${table.join('\n')}

| target | record size | producer / SDK loop (1 in flight) | producer / SDK loop (${PRODUCER_DEFAULT_MAX_IN_FLIGHT} in flight) | aggregation / SDK loop (1) | aggregation / SDK loop (${PRODUCER_DEFAULT_MAX_IN_FLIGHT}) |
| --- | --- | --- | --- | --- | --- |
${ratioRows.join('\n')}

Against the targets (at least the SDK loop's throughput; with aggregation at least 3x its user records/s):

${targetLines.join('\n')}

Why the do-nothing rows fall short (CPU profiles, \`node --cpu-prof\`): the SDK loop does nothing per
record beyond serialising it, over Node's own HTTP client, which fetch-based code cannot use; the
producer keeps up to 10,000 records buffered, each with its bookkeeping, its copy of the data and a
promise, so about a fifth of its time goes to garbage collection (young-generation scavenges that
copy the buffered records), plus an MD5 per record to predict its shard. Against kinesis-local the
endpoint's own cost decides, and aggregation pays off where the endpoint's cost is per record: with
100-byte records it moves several times the SDK loop's user records; with 1 KiB records the bytes
are the cost, as on real Kinesis, whose shards take 1 MiB/s (about 1,000 such records) either way.

### Memory per buffered record

${integer(MEMORY_RECORDS)} records of ${MEMORY_RECORD_BYTES} bytes (keys \`user-0\` to \`user-${KEYS - 1}\`) put into a producer whose endpoint (an HTTP server in
this process) reads each request and never answers; buffer limits unbounded, \`predictShards: false\`.
Measured as the growth of \`heapUsed\` and \`arrayBuffers\` (\`process.memoryUsage()\`) ${gc ? 'after a forced full GC' : 'without a forced GC (none could be enabled; the figures include garbage)'};
it counts everything held for a record: the producer's bookkeeping, its copy of the data, the caller's record object and
key it keeps, the bodies of the ${PRODUCER_DEFAULT_MAX_IN_FLIGHT} requests in flight, and for \`put()\` the returned promise with one handler attached.
Peak is the highest \`heapUsed\` seen while putting, before GC. Afterwards the endpoint refuses every request and the producer closes, rejecting the records.

| style | records buffered | heap bytes per record | ArrayBuffer bytes per record | total bytes per record | peak heap bytes per record |
| --- | --- | --- | --- | --- | --- |
${memoryRows.join('\n')}

Command: \`npm run bench${quick ? ' -- --quick' : ''}\` (this section: \`bench/producer.mjs\`).
`;
}

/**
 * Runs the producer benchmark and returns its Markdown section for bench/RESULTS.md.
 * @param {{ root: string, nullEndpoint: string, localEndpoint: string, quick: boolean }} options
 */
export async function runProducerBench({ root, nullEndpoint, localEndpoint, quick }) {
  const gc = findGc();
  if (!gc) console.log('producer  no gc() available: runs and memory figures include garbage');
  const rows = await throughput({ root, nullEndpoint, localEndpoint, quick, gc });
  const edge = await import(join(root, 'dist/index.js'));
  const memory = [];
  for (const style of ['send', 'put']) {
    try {
      const m = await memoryPerRecord(edge, gc, style);
      memory.push(m);
      console.log(
        `producer  memory  ${style}()  ${m.buffered} buffered: ${m.heapPerRecord.toFixed(0)} heap + ${m.buffersPerRecord.toFixed(0)} ArrayBuffer bytes per record (peak heap ${m.peakHeapPerRecord.toFixed(0)}); closed: ${m.closed.stored} stored, ${m.closed.failed} failed`,
      );
    } catch (error) {
      memory.push({ style, error: error.message });
      console.log(`producer  memory  ${style}(): failed: ${error.message}`);
    }
  }
  return report({ rows, memory, quick, gc });
}

// Enhanced fan-out in one runtime: register a consumer, subscribe to a shard through `fetch`, put
// records while subscribed and take them from the event stream, then clean up. Runtime-neutral
// ESM, bundled from the sources by test/runtimes/event-stream.test.ts (the package's barrel does
// not export the event-stream module yet). A runtime that buffered a streamed response would
// deliver nothing until kinesis-local ends the subscription (5 minutes), so `firstEventMs` and
// `deliveryMs` show whether the body really streams.
import { createKinesisClient, createStream, deleteStream, putRecord, waitForStreamActive } from '../../../src/index.ts';
import { deregisterStreamConsumerAndWait, ensureStreamConsumer, subscribeToShard } from '../../../src/event-stream/index.ts';

export const RESULT_PREFIX = 'KINESIS_EDGE_EFO ';

export function describeRuntime() {
  const g = globalThis;
  if (g.Deno?.version) return `deno ${g.Deno.version.deno}`;
  if (g.navigator?.userAgent === 'Cloudflare-Workers') return 'workerd';
  if (typeof g.process?.versions?.node === 'string' && typeof g.window === 'undefined') return `node ${g.process.versions.node}`;
  const chrome = /(?:HeadlessChrome|Chrome)\/(\d+)/.exec(g.navigator?.userAgent ?? '');
  if (chrome) return `chromium ${chrome[1]}`;
  return g.navigator?.userAgent ?? 'unknown';
}

export async function runEfoCheck({ endpoint }) {
  const runtime = describeRuntime();
  const client = createKinesisClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDEFOTEST', secretAccessKey: 'efo-test-secret' },
    endpoint,
  });
  const streamName = `efo-${runtime.split(' ')[0]}-${Math.random().toString(36).slice(2, 10)}`;
  const report = { runtime, ok: false, received: [], firstEventMs: undefined, deliveryMs: [], error: undefined };
  let consumerArn;
  try {
    await createStream(client, { StreamName: streamName, ShardCount: 1 });
    await waitForStreamActive(client, { StreamName: streamName }, { intervalMs: 50, timeoutMs: 20_000 });
    consumerArn = (await ensureStreamConsumer(client, { StreamName: streamName, ConsumerName: 'efo-check' }, { intervalMs: 50, timeoutMs: 20_000 })).ConsumerARN;
    const started = Date.now();
    const putAt = new Map();
    const texts = ['one', 'two', 'three'];
    let putting;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('no records within 20 s')), 20_000);
    try {
      for await (const event of subscribeToShard(
        client,
        { ConsumerARN: consumerArn, ShardId: 'shardId-000000000000', StartingPosition: { Type: 'LATEST' } },
        { signal: controller.signal },
      )) {
        report.firstEventMs ??= Date.now() - started;
        putting ??= (async () => {
          for (const text of texts) {
            putAt.set(text, Date.now());
            await putRecord(client, { StreamName: streamName, PartitionKey: 'k', Data: text });
          }
        })();
        for (const record of event.Records) {
          const text = new TextDecoder().decode(record.Data);
          report.received.push(text);
          report.deliveryMs.push(Date.now() - putAt.get(text));
        }
        if (report.received.length >= texts.length) break;
      }
    } finally {
      clearTimeout(timer);
    }
    await putting;
    report.ok = report.received.join(',') === texts.join(',');
  } catch (error) {
    report.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } finally {
    try {
      if (consumerArn) await deregisterStreamConsumerAndWait(client, { ConsumerARN: consumerArn }, { intervalMs: 50, timeoutMs: 10_000 });
      await deleteStream(client, { StreamName: streamName, EnforceConsumerDeletion: true });
    } catch (error) {
      report.cleanupError = String(error);
    }
  }
  return report;
}

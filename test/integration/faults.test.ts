// The client's retry ladder against real faults: a real HTTP proxy (test/support/fault-proxy.ts)
// between the client and kinesis-local injects throttles, 5xx, dropped connections, slow answers
// and AWS's request-date check. The proxy's log counts what reached the wire. Expected behaviour:
// the Kinesis error table (https://docs.aws.amazon.com/kinesis/latest/APIReference/CommonErrors.html)
// and the SDKs' standard retry mode (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html).
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createKinesisClient,
  getClockOffset,
  KinesisNetworkError,
  KinesisServiceError,
  KinesisTimeoutError,
  putRecord,
  putRecords,
  type KinesisClientConfig,
  type RetryOptions,
} from '../../src/index.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { createTestStream, readAllRecords } from '../support/kinesis-local.ts';

const endpoint = inject('kinesisEndpoint');
let proxy: FaultProxy;
let streamName: string;

function proxied(overrides: Partial<KinesisClientConfig> = {}, retry: RetryOptions = {}) {
  return createKinesisClient({
    region: 'us-east-1',
    endpoint: proxy.url,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
    timeoutMs: 5_000,
    ...overrides,
    retry: { baseDelayMs: 1, throttlingBaseDelayMs: 1, ...retry },
  });
}

/** The operation's requests in the proxy log. */
function seen(operation = 'PutRecord') {
  return proxy.requests.filter((r) => r.operation === operation);
}

async function storedCount(data: string): Promise<number> {
  const records = await readAllRecords(endpoint, streamName);
  return records.filter((r) => Buffer.from(r.Data, 'base64').toString('utf8') === data).length;
}

const unique = (label: string) => `${label}-${Math.random().toString(36).slice(2)}`;

beforeAll(async () => {
  proxy = await startFaultProxy(endpoint, { seed: 7 });
  streamName = await createTestStream(endpoint, { shardCount: 1 });
});
afterEach(async () => {
  await proxy.idle();
  proxy.reset();
});
afterAll(async () => {
  await proxy.close();
});

describe('faults: retried until success', () => {
  it.each([
    { name: 'ProvisionedThroughputExceededException', errorType: 'ProvisionedThroughputExceededException' as const },
    { name: 'LimitExceededException', errorType: 'LimitExceededException' as const },
  ])('retries two $name throttles and stores the record once', async ({ errorType }) => {
    proxy.setFaults([{ fault: 'throttle', operation: 'PutRecord', errorType, times: 2 }]);
    const data = unique('throttled');
    const out = await putRecord(proxied(), { StreamName: streamName, PartitionKey: 'k', Data: data });

    expect(out.SequenceNumber).toMatch(/^\d+$/);
    expect(seen().map((r) => [r.fault?.type, r.status])).toEqual([
      ['throttle', 400],
      ['throttle', 400],
      [undefined, 200],
    ]);
    expect(await storedCount(data)).toBe(1);
  });

  it('retries a 500 with an empty body', async () => {
    proxy.setFaults([{ fault: 'status', operation: 'PutRecord', status: 500, times: 2 }]);
    await putRecord(proxied(), { StreamName: streamName, PartitionKey: 'k', Data: unique('500') });
    expect(seen().map((r) => r.status)).toEqual([500, 500, 200]);
    expect(seen().map((r) => r.forwarded)).toEqual([false, false, true]);
  });

  it('retries a 503 no sooner than its Retry-After', async () => {
    proxy.setFaults([{ fault: 'status', operation: 'PutRecord', status: 503, headers: { 'Retry-After': '1' }, times: 1 }]);
    await putRecord(proxied(), { StreamName: streamName, PartitionKey: 'k', Data: unique('503') });
    const [first, second] = seen();
    expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(1_000);
    expect(second!.receivedAt - first!.receivedAt).toBeLessThan(6_500);
  });

  it('retries a connection dropped before forwarding', async () => {
    proxy.setFaults([{ fault: 'drop', operation: 'PutRecord', times: 1 }]);
    const data = unique('dropped');
    await putRecord(proxied(), { StreamName: streamName, PartitionKey: 'k', Data: data });
    expect(seen().map((r) => r.outcome)).toEqual(['dropped', 'answered']);
    expect(await storedCount(data)).toBe(1);
  });

  it('retries a connection dropped mid-response', async () => {
    proxy.setFaults([{ fault: 'drop', operation: 'PutRecord', phase: 'midResponse', times: 1 }]);
    await putRecord(proxied(), { StreamName: streamName, PartitionKey: 'k', Data: unique('mid') });
    expect(seen().map((r) => r.outcome)).toEqual(['dropped', 'answered']);
  });

  it('stores a record twice when the connection drops after the service committed (at-least-once)', async () => {
    proxy.setFaults([{ fault: 'drop', operation: 'PutRecord', phase: 'afterForward', times: 1 }]);
    const data = unique('committed');
    await putRecord(proxied(), { StreamName: streamName, PartitionKey: 'k', Data: data });
    expect(seen().map((r) => [r.forwarded, r.outcome])).toEqual([
      [true, 'dropped'],
      [true, 'answered'],
    ]);
    expect(await storedCount(data)).toBe(2);
  });

  it('retries an attempt that answers after timeoutMs', async () => {
    proxy.setFaults([{ fault: 'delay', operation: 'PutRecord', ms: 2_000, times: 1 }]);
    await putRecord(proxied({ timeoutMs: 200 }), { StreamName: streamName, PartitionKey: 'k', Data: unique('slow-once') });
    expect(seen().map((r) => r.outcome)).toEqual(['clientAborted', 'answered']);
    expect(seen()[0]!.forwarded).toBe(false);
  });
});

describe('faults: attempts run out', () => {
  it('returns the typed network error when every connection drops', async () => {
    proxy.setFaults([{ fault: 'drop', operation: 'PutRecord', times: Number.POSITIVE_INFINITY }]);
    const error = await putRecord(proxied({}, { maxAttempts: 3 }), { StreamName: streamName, PartitionKey: 'k', Data: 'x' }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(KinesisNetworkError);
    expect(error).toMatchObject({ operation: 'PutRecord', retryable: true });
    expect((error as Error).cause).toBeInstanceOf(Error);
    expect(seen().map((r) => r.outcome)).toEqual(['dropped', 'dropped', 'dropped']);
  });

  it('throws KinesisTimeoutError after every attempt outlived timeoutMs, forwarding nothing', async () => {
    proxy.setFaults([{ fault: 'delay', operation: 'PutRecord', ms: 3_000, times: Number.POSITIVE_INFINITY }]);
    const started = Date.now();
    const error = await putRecord(proxied({ timeoutMs: 150 }, { maxAttempts: 2 }), { StreamName: streamName, PartitionKey: 'k', Data: 'x' }).catch(
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(KinesisTimeoutError);
    expect(error).toMatchObject({ timeoutMs: 150 });
    expect(Date.now() - started).toBeLessThan(2_500);
    await proxy.idle();
    expect(seen().map((r) => [r.outcome, r.forwarded])).toEqual([
      ['clientAborted', false],
      ['clientAborted', false],
    ]);
  });

  it('stops at maxAttempts under constant throttling, with the service error', async () => {
    proxy.setFaults([{ fault: 'throttle', operation: 'PutRecord', times: Number.POSITIVE_INFINITY }]);
    const error = await putRecord(proxied({}, { maxAttempts: 4 }), { StreamName: streamName, PartitionKey: 'k', Data: 'x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KinesisServiceError);
    expect(error).toMatchObject({ code: 'ProvisionedThroughputExceededException', status: 400, retryable: true });
    expect(seen()).toHaveLength(4);
  });
});

describe('faults: not retried', () => {
  it.each(['ValidationException', 'AccessDeniedException', 'KMSAccessDeniedException', 'SerializationException'])(
    'sends one request for a 400 %s',
    async (code) => {
      proxy.setFaults([{ fault: 'status', operation: 'PutRecord', status: 400, body: { __type: code, message: `${code} from the proxy` }, times: Number.POSITIVE_INFINITY }]);
      const error = await putRecord(proxied(), { StreamName: streamName, PartitionKey: 'k', Data: 'x' }).catch((e: unknown) => e);
      expect(error).toMatchObject({ name: 'KinesisServiceError', code, status: 400, serviceMessage: `${code} from the proxy` });
      expect(seen()).toHaveLength(1);
    },
  );

  it("sends one request for kinesis-local's own ResourceNotFoundException", async () => {
    const error = await putRecord(proxied(), { StreamName: 'no-such-stream-here', PartitionKey: 'k', Data: 'x' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ResourceNotFoundException', status: 400 });
    expect(seen()).toHaveLength(1);
  });

  it('returns a partially failed PutRecords as is, in one request (resending entries is the producer’s job)', async () => {
    proxy.setFaults([{ fault: 'partialFailure', operation: 'PutRecords', failIndexes: [1, 3], errorCodes: ['ProvisionedThroughputExceededException'] }]);
    const out = await putRecords(proxied(), {
      StreamName: streamName,
      Records: [0, 1, 2, 3].map((i) => ({ PartitionKey: `k${i}`, Data: unique(`partial-${i}`) })),
    });
    expect(out.FailedRecordCount).toBe(2);
    expect(out.Records.map((r) => r.ErrorCode)).toEqual([undefined, 'ProvisionedThroughputExceededException', undefined, 'ProvisionedThroughputExceededException']);
    expect(out.Records[0]!.SequenceNumber).toMatch(/^\d+$/);
    expect(seen('PutRecords')).toHaveLength(1);
  });
});

describe('faults: clock skew', () => {
  it.each([
    { name: 'with a Date header', sendDate: true },
    { name: 'from the message time alone', sendDate: false },
  ])('corrects a server clock 1 h behind $name, then signs right the first time', async ({ sendDate }) => {
    proxy.setFaults([{ fault: 'skewDate', offsetMs: -3_600_000, sendDate }]);
    const client = proxied();
    await putRecord(client, { StreamName: streamName, PartitionKey: 'k', Data: unique('skew') });

    expect(seen().map((r) => [r.fault?.type, r.status])).toEqual([
      ['skewDate', 400],
      [undefined, 200],
    ]);
    expect(Math.abs(getClockOffset(client) + 3_600_000)).toBeLessThan(5_000);

    await putRecord(client, { StreamName: streamName, PartitionKey: 'k', Data: unique('skew-after') });
    expect(seen()).toHaveLength(3);
    expect(seen()[2]!.status).toBe(200);
  });

  it('lets five concurrent calls on a skewed clock all succeed', async () => {
    proxy.setFaults([{ fault: 'skewDate', offsetMs: 3_600_000 }]);
    const client = proxied();
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => putRecord(client, { StreamName: streamName, PartitionKey: `k${i}`, Data: unique('skew-concurrent') })),
    );
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(seen().filter((r) => r.status === 200)).toHaveLength(5);
  });
});

// The fault proxy itself, driven with plain fetch against kinesis-local (see test/support).
// Response shapes come from kinesis-local and the Kinesis API reference (PutRecords,
// GetRecords); error shapes from the Kinesis JSON protocol (CommonErrors).
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { startFaultProxy, skewMessage, type FaultProxy } from '../support/fault-proxy.ts';
import { seededRandom } from '../support/seeded-random.ts';
import {
  amzDate,
  callKinesis,
  createTestStream,
  dummyKinesisHeaders,
  readAllRecords,
} from '../support/kinesis-local.ts';

const endpoint = inject('kinesisEndpoint');

const encode = (text: string): string => Buffer.from(text).toString('base64');
const decode = (data: string): string => Buffer.from(data, 'base64').toString('utf8');

function putRecordsInput(streamName: string, count: number, prefix = 'record') {
  return {
    StreamName: streamName,
    Records: Array.from({ length: count }, (_, i) => ({ Data: encode(`${prefix}-${i}`), PartitionKey: `pk-${i}` })),
  };
}

async function storedData(streamName: string): Promise<string[]> {
  return (await readAllRecords(endpoint, streamName)).map((record) => decode(record.Data)).sort();
}

describe('fault-proxy', () => {
  let proxy: FaultProxy;

  beforeAll(async () => {
    proxy = await startFaultProxy(endpoint, { seed: 42 });
  });
  afterEach(async () => {
    await proxy.idle();
    proxy.reset();
  });
  afterAll(async () => {
    await proxy.close();
  });

  describe('pass-through', () => {
    it('forwards requests and logs operation, parsed body and headers', async () => {
      const result = await callKinesis(proxy.url, 'ListStreams', { Limit: 5 });

      expect(result.status).toBe(200);
      expect(result.body).toMatchObject({ StreamNames: expect.any(Array) });
      expect(proxy.requests).toHaveLength(1);
      const [seen] = proxy.requests;
      expect(seen).toMatchObject({
        method: 'POST',
        operation: 'ListStreams',
        body: { Limit: 5 },
        forwarded: true,
        upstreamStatus: 200,
        status: 200,
        outcome: 'answered',
        fault: undefined,
      });
      expect(seen!.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 /);
    });

    it('passes a CORS preflight through to kinesis-local', async () => {
      const response = await fetch(proxy.url, {
        method: 'OPTIONS',
        headers: {
          Origin: 'http://example.test',
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'authorization,x-amz-target,content-type,x-amz-date',
        },
      });
      await response.arrayBuffer();

      expect(response.status).toBe(200);
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      expect(proxy.requests[0]).toMatchObject({ method: 'OPTIONS', operation: undefined, forwarded: true });
    });
  });

  describe('partialFailure', () => {
    it('stores exactly the records it reports as succeeded', async () => {
      const streamName = await createTestStream(endpoint, { shardCount: 2 });
      proxy.setFaults([{ fault: 'partialFailure', operation: 'PutRecords', failRatio: 0.5 }]);

      const result = await callKinesis(proxy.url, 'PutRecords', putRecordsInput(streamName, 10));

      expect(result.status).toBe(200);
      expect(result.body.FailedRecordCount).toBe(5);
      expect(result.body.Records).toHaveLength(10);
      const failedIndexes = proxy.requests[0]!.fault!.failedIndexes!;
      expect(failedIndexes).toHaveLength(5);
      const succeeded: string[] = [];
      result.body.Records.forEach((entry: any, i: number) => {
        if (failedIndexes.includes(i)) {
          expect(entry).toEqual({
            ErrorCode: 'ProvisionedThroughputExceededException',
            ErrorMessage: expect.stringMatching(/^Rate exceeded for shard shardId-\d{12} in stream /),
          });
        } else {
          expect(entry).toMatchObject({ SequenceNumber: expect.stringMatching(/^\d+$/), ShardId: expect.any(String) });
          succeeded.push(`record-${i}`);
        }
      });
      expect(await storedData(streamName)).toEqual(succeeded.sort());
      expect(proxy.requests[0]!.forwardedBody.Records).toHaveLength(5);
    });

    it('fails the given indexes with the given codes', async () => {
      const streamName = await createTestStream(endpoint);
      proxy.setFaults([
        { fault: 'partialFailure', operation: 'PutRecords', failIndexes: [0, 3], errorCodes: ['InternalFailure'] },
      ]);

      const result = await callKinesis(proxy.url, 'PutRecords', putRecordsInput(streamName, 4));

      expect(result.body.FailedRecordCount).toBe(2);
      expect(result.body.Records.map((entry: any) => entry.ErrorCode ?? 'ok')).toEqual([
        'InternalFailure',
        'ok',
        'ok',
        'InternalFailure',
      ]);
      expect(await storedData(streamName)).toEqual(['record-1', 'record-2']);
    });

    it('answers without forwarding when every record fails', async () => {
      const streamName = await createTestStream(endpoint);
      proxy.setFaults([{ fault: 'partialFailure', operation: 'PutRecords', failRatio: 1 }]);

      const result = await callKinesis(proxy.url, 'PutRecords', putRecordsInput(streamName, 3));

      expect(result.status).toBe(200);
      expect(result.body.FailedRecordCount).toBe(3);
      expect(proxy.requests[0]!.forwarded).toBe(false);
      expect(await storedData(streamName)).toEqual([]);
    });
  });

  describe('mismatchedCount', () => {
    it('answers one entry fewer than it sent while storing all', async () => {
      const streamName = await createTestStream(endpoint);
      proxy.setFaults([{ fault: 'mismatchedCount', operation: 'PutRecords' }]);

      const result = await callKinesis(proxy.url, 'PutRecords', putRecordsInput(streamName, 3));

      expect(result.status).toBe(200);
      expect(result.body.Records).toHaveLength(2);
      expect(proxy.requests[0]!.fault).toMatchObject({ upstreamCount: 3, returnedCount: 2 });
      expect(await storedData(streamName)).toEqual(['record-0', 'record-1', 'record-2']);
    });
  });

  describe('throttle', () => {
    it.each([
      ['ProvisionedThroughputExceededException', /^Rate exceeded for shard shardId-000000000000 in stream .+ under account \d{12}\.$/],
      ['LimitExceededException', /^Rate exceeded for stream .+ under account \d{12}\.$/],
    ] as const)('answers 400 %s without forwarding', async (errorType, message) => {
      const streamName = await createTestStream(endpoint);
      proxy.setFaults([{ fault: 'throttle', operation: 'PutRecords', errorType }]);

      const result = await callKinesis(proxy.url, 'PutRecords', putRecordsInput(streamName, 2));

      expect(result.status).toBe(400);
      expect(result.headers.get('x-amzn-errortype')).toBe(errorType);
      expect(result.headers.get('content-type')).toBe('application/x-amz-json-1.1');
      expect(result.body).toEqual({ __type: errorType, message: expect.stringMatching(message) });
      expect(proxy.requests[0]).toMatchObject({ forwarded: false, status: 400, fault: { type: 'throttle' } });
      expect(await storedData(streamName)).toEqual([]);
    });

    it('spends its budget, then passes requests through', async () => {
      proxy.setFaults([{ fault: 'throttle', operation: 'ListStreams', times: 2 }]);

      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await callKinesis(proxy.url, 'ListStreams', {})).status);

      expect(statuses).toEqual([400, 400, 200]);
    });

    it('draws probabilistic faults from the seed, the same way each time', async () => {
      const pattern = async (): Promise<boolean[]> => {
        const seeded = await startFaultProxy(endpoint, { seed: 7 });
        try {
          seeded.setFaults([{ fault: 'throttle', operation: 'ListStreams', probability: 0.5 }]);
          for (let i = 0; i < 12; i++) await callKinesis(seeded.url, 'ListStreams', {});
          return seeded.requests.map((request) => request.fault !== undefined);
        } finally {
          await seeded.close();
        }
      };
      const random = seededRandom(7);
      const expected = Array.from({ length: 12 }, () => random() < 0.5);

      expect(await pattern()).toEqual(expected);
      expect(expected).toContain(true);
      expect(expected).toContain(false);
    });

    it('adds CORS headers to its own answers when the request has an Origin', async () => {
      proxy.setFaults([{ fault: 'throttle', operation: 'ListStreams' }]);

      const result = await callKinesis(proxy.url, 'ListStreams', {}, { headers: { Origin: 'http://example.test' } });

      expect(result.headers.get('access-control-allow-origin')).toBe('*');
      expect(result.headers.get('access-control-expose-headers')).toContain('x-amzn-ErrorType');
    });
  });

  describe('status', () => {
    it.each([
      ['an empty body', 503, undefined, ''],
      ['a non-JSON body', 502, '<html><body>Bad Gateway</body></html>', '<html><body>Bad Gateway</body></html>'],
      ['a JSON body', 500, { __type: 'InternalFailure' }, '{"__type":"InternalFailure"}'],
    ] as const)('answers %s with the given status and headers', async (_name, status, body, text) => {
      proxy.setFaults([{ fault: 'status', operation: 'ListStreams', status, body, headers: { 'Retry-After': '1' } }]);

      const result = await callKinesis(proxy.url, 'ListStreams', {});

      expect(result.status).toBe(status);
      expect(result.text).toBe(text);
      expect(result.headers.get('retry-after')).toBe('1');
      expect(proxy.requests[0]!.forwarded).toBe(false);
    });
  });

  describe('drop', () => {
    it('stores the records when it drops the connection after forwarding', async () => {
      const streamName = await createTestStream(endpoint);
      proxy.setFaults([{ fault: 'drop', operation: 'PutRecords', phase: 'afterForward' }]);

      await expect(callKinesis(proxy.url, 'PutRecords', putRecordsInput(streamName, 3))).rejects.toThrow(TypeError);

      await proxy.idle();
      expect(proxy.requests[0]).toMatchObject({ forwarded: true, upstreamStatus: 200, outcome: 'dropped' });
      expect(proxy.requests[0]!.status).toBeUndefined();
      expect(await storedData(streamName)).toEqual(['record-0', 'record-1', 'record-2']);
    });

    it('stores nothing when it drops the connection before forwarding', async () => {
      const streamName = await createTestStream(endpoint);
      proxy.setFaults([{ fault: 'drop', operation: 'PutRecords' }]);

      await expect(callKinesis(proxy.url, 'PutRecords', putRecordsInput(streamName, 3))).rejects.toThrow(TypeError);

      expect(proxy.requests[0]).toMatchObject({ forwarded: false, outcome: 'dropped' });
      expect(await storedData(streamName)).toEqual([]);
    });

    it('cuts the body in half in midResponse', async () => {
      proxy.setFaults([{ fault: 'drop', operation: 'ListStreams', phase: 'midResponse' }]);

      const response = await fetch(proxy.url, { method: 'POST', headers: dummyKinesisHeaders('ListStreams'), body: '{}' });

      expect(response.status).toBe(200);
      await expect(response.text()).rejects.toThrow();
    });
  });

  describe('delay', () => {
    it('forwards after the delay', async () => {
      proxy.setFaults([{ fault: 'delay', operation: 'ListStreams', ms: 300 }]);

      const started = performance.now();
      const result = await callKinesis(proxy.url, 'ListStreams', {});

      expect(result.status).toBe(200);
      expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    });

    it('never forwards when the client times out during the delay', async () => {
      const streamName = await createTestStream(endpoint);
      proxy.setFaults([{ fault: 'delay', operation: 'PutRecords', ms: 5_000 }]);

      await expect(
        callKinesis(proxy.url, 'PutRecords', putRecordsInput(streamName, 2), { timeoutMs: 150 }),
      ).rejects.toThrow(/timeout|aborted/i);

      await proxy.idle(2_000);
      expect(proxy.requests[0]).toMatchObject({ forwarded: false, outcome: 'clientAborted' });
      expect(await storedData(streamName)).toEqual([]);
    });

    it('commits upstream and holds the answer past the client timeout in afterForward', async () => {
      const streamName = await createTestStream(endpoint);
      proxy.setFaults([{ fault: 'delay', operation: 'PutRecords', ms: 5_000, phase: 'afterForward' }]);

      await expect(
        callKinesis(proxy.url, 'PutRecords', putRecordsInput(streamName, 2), { timeoutMs: 300 }),
      ).rejects.toThrow(/timeout|aborted/i);

      await proxy.idle(2_000);
      expect(proxy.requests[0]).toMatchObject({ forwarded: true, upstreamStatus: 200, outcome: 'clientAborted' });
      expect(await storedData(streamName)).toEqual(['record-0', 'record-1']);
    });

    it('is cancelled by close()', async () => {
      const own = await startFaultProxy(endpoint);
      own.setFaults([{ fault: 'delay', ms: 20_000 }]);
      const pending = callKinesis(own.url, 'ListStreams', {});
      const outcome = pending.then(
        () => 'answered',
        () => 'failed',
      );
      while (own.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));

      const started = performance.now();
      await own.close();

      expect(await outcome).toBe('failed');
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(own.requests[0]).toMatchObject({ forwarded: false, outcome: 'proxyClosed' });
    });
  });

  describe('skewDate', () => {
    it('formats the messages as AWS does', () => {
      const now = Date.UTC(2026, 11, 1, 0, 15, 0);

      expect(skewMessage(Date.UTC(2026, 11, 1, 0, 0, 0), now)).toBe(
        'Signature expired: 20261201T000000Z is now earlier than 20261201T001000Z (20261201T001500Z - 5 min.)',
      );
      expect(skewMessage(Date.UTC(2026, 11, 1, 0, 30, 0), now)).toBe(
        'Signature not yet current: 20261201T003000Z is still later than 20261201T002000Z (20261201T001500Z + 5 min.)',
      );
      expect(skewMessage(Date.UTC(2026, 11, 1, 0, 11, 0), now)).toBeUndefined();
    });

    it.each([
      ['10 minutes behind', -10 * 60_000, /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 5 min\.\)$/],
      ['10 minutes ahead', 10 * 60_000, /^Signature not yet current: \d{8}T\d{6}Z is still later than \d{8}T\d{6}Z \(\d{8}T\d{6}Z \+ 5 min\.\)$/],
    ] as const)('rejects a request date %s with the proxy time in Date', async (_name, offset, message) => {
      proxy.setFaults([{ fault: 'skewDate' }]);
      const skewed = new Date(Date.now() + offset);

      const result = await callKinesis(proxy.url, 'ListStreams', {}, { headers: { 'X-Amz-Date': amzDate(skewed) } });

      expect(result.status).toBe(400);
      expect(result.body).toEqual({ __type: 'InvalidSignatureException', message: expect.stringMatching(message) });
      expect(result.body.message).toContain(amzDate(skewed));
      expect(result.headers.get('x-amzn-errortype')).toBe('InvalidSignatureException');
      const serverDate = Date.parse(result.headers.get('date') ?? '');
      expect(Math.abs(serverDate - Date.now())).toBeLessThan(5_000);
      expect(proxy.requests[0]!.forwarded).toBe(false);
    });

    it('forwards a request whose date is within the window', async () => {
      proxy.setFaults([{ fault: 'skewDate' }]);

      const result = await callKinesis(proxy.url, 'ListStreams', {});

      expect(result.status).toBe(200);
      expect(proxy.requests[0]!.fault).toBeUndefined();
    });

    it('omits the Date header when told to', async () => {
      proxy.setFaults([{ fault: 'skewDate', sendDate: false }]);

      const result = await callKinesis(proxy.url, 'ListStreams', {}, {
        headers: { 'X-Amz-Date': amzDate(new Date(Date.now() - 3_600_000)) },
      });

      expect(result.status).toBe(400);
      expect(result.headers.get('date')).toBeNull();
    });

    it('uses its own clock offset for the window', async () => {
      proxy.setFaults([{ fault: 'skewDate', offsetMs: 3_600_000 }]);

      const result = await callKinesis(proxy.url, 'ListStreams', {});

      expect(result.status).toBe(400);
      expect(result.body.message).toMatch(/^Signature expired: /);
      expect(Date.parse(result.headers.get('date') ?? '') - Date.now()).toBeGreaterThan(3_590_000);
    });
  });
});

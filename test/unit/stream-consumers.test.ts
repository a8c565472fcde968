// ensureStreamConsumer / deregisterStreamConsumerAndWait against a scripted consumer registry.
// Shapes: API_RegisterStreamConsumer, API_DescribeStreamConsumer, API_DescribeStreamSummary.
import { describe, expect, it } from 'vitest';
import { createKinesisClient } from '../../src/client.ts';
import { deregisterStreamConsumerAndWait, ensureStreamConsumer } from '../../src/event-stream/consumers.ts';
import { awsError, bodyText, json } from '../support/fake-fetch.ts';

const STREAM_ARN = 'arn:aws:kinesis:us-east-1:123456789012:stream/clicks';
const CONSUMER_ARN = `${STREAM_ARN}/consumer/dashboard:1700000000`;

type Status = 'CREATING' | 'ACTIVE' | 'DELETING' | undefined;

/** A registry whose consumer goes through `statuses` one DescribeStreamConsumer call at a time. */
function registry(initial: Status[], options: { registerFails?: string; deregisterFails?: string } = {}) {
  const statuses = [...initial];
  const calls: { operation: string; body: any }[] = [];
  let current: Status = statuses.shift();
  const description = (status: Status) => ({
    ConsumerARN: CONSUMER_ARN,
    ConsumerName: 'dashboard',
    ConsumerStatus: status,
    ConsumerCreationTimestamp: 1_700_000_000,
    StreamARN: STREAM_ARN,
  });
  const fetch = (async (_input: RequestInfo | URL, init?: RequestInit) => {
    const operation = String(new Headers(init?.headers).get('x-amz-target')).split('.')[1]!;
    const body = JSON.parse(bodyText(init?.body));
    calls.push({ operation, body });
    switch (operation) {
      case 'DescribeStreamSummary':
        return json({ StreamDescriptionSummary: { StreamName: 'clicks', StreamARN: STREAM_ARN, StreamStatus: 'ACTIVE', StreamModeDetails: { StreamMode: 'PROVISIONED' }, RetentionPeriodHours: 24, StreamCreationTimestamp: 1, EnhancedMonitoring: [], EncryptionType: 'NONE', OpenShardCount: 1, ConsumerCount: 1 } });
      case 'DescribeStreamConsumer': {
        const status = current;
        if (statuses.length) current = statuses.shift();
        return status === undefined ? awsError(400, 'ResourceNotFoundException', 'not found') : json({ ConsumerDescription: description(status) });
      }
      case 'RegisterStreamConsumer':
        if (options.registerFails) return awsError(400, options.registerFails, 'busy');
        current = 'CREATING';
        statuses.unshift('ACTIVE');
        return json({ Consumer: description('CREATING') });
      case 'DeregisterStreamConsumer':
        if (options.deregisterFails) return awsError(400, options.deregisterFails, 'no');
        current = 'DELETING';
        statuses.length = 0;
        statuses.push(undefined);
        return json({});
      default:
        return awsError(400, 'UnknownOperationException', operation);
    }
  }) as typeof globalThis.fetch;
  const client = createKinesisClient({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }, fetch, retry: { maxAttempts: 1 } });
  const operations = () => calls.map((c) => c.operation);
  return { client, calls, operations };
}

const FAST = { intervalMs: 1, timeoutMs: 2_000 };

describe('ensureStreamConsumer', () => {
  it('returns an ACTIVE consumer as it is, without registering', async () => {
    const { client, operations } = registry(['ACTIVE']);
    const consumer = await ensureStreamConsumer(client, { StreamARN: STREAM_ARN, ConsumerName: 'dashboard' }, FAST);
    expect(consumer.ConsumerARN).toBe(CONSUMER_ARN);
    expect(operations()).toEqual(['DescribeStreamConsumer']);
  });

  it('registers a missing consumer (looking the stream ARN up by name) and waits until it is ACTIVE', async () => {
    const { client, calls, operations } = registry([undefined]);
    const consumer = await ensureStreamConsumer(client, { StreamName: 'clicks', ConsumerName: 'dashboard', Tags: { team: 'web' } }, FAST);
    expect(consumer.ConsumerStatus).toBe('ACTIVE');
    expect(operations()).toEqual(['DescribeStreamSummary', 'DescribeStreamConsumer', 'RegisterStreamConsumer', 'DescribeStreamConsumer', 'DescribeStreamConsumer']);
    expect(calls[2]!.body).toEqual({ StreamARN: STREAM_ARN, ConsumerName: 'dashboard', Tags: { team: 'web' } });
  });

  it('reuses a consumer registered concurrently (ResourceInUseException on register)', async () => {
    const { client, operations } = registry([undefined, 'CREATING', 'ACTIVE'], { registerFails: 'ResourceInUseException' });
    const consumer = await ensureStreamConsumer(client, { StreamARN: STREAM_ARN, ConsumerName: 'dashboard' }, FAST);
    expect(consumer.ConsumerStatus).toBe('ACTIVE');
    expect(operations().filter((o) => o === 'RegisterStreamConsumer')).toHaveLength(1);
  });

  it('waits out a consumer being deleted, then registers a new one', async () => {
    const { client, operations } = registry(['DELETING', 'DELETING', undefined]);
    const consumer = await ensureStreamConsumer(client, { StreamARN: STREAM_ARN, ConsumerName: 'dashboard' }, FAST);
    expect(consumer.ConsumerStatus).toBe('ACTIVE');
    expect(operations().slice(0, 4)).toEqual(['DescribeStreamConsumer', 'DescribeStreamConsumer', 'DescribeStreamConsumer', 'RegisterStreamConsumer']);
  });

  it('gives up with a KinesisTimeoutError when the consumer never becomes ACTIVE', async () => {
    const { client } = registry(['CREATING']);
    await expect(ensureStreamConsumer(client, { StreamARN: STREAM_ARN, ConsumerName: 'dashboard' }, { intervalMs: 5, timeoutMs: 30 })).rejects.toMatchObject({
      name: 'KinesisTimeoutError',
    });
  });

  it('refuses both or neither of StreamARN and StreamName', async () => {
    const { client } = registry([]);
    await expect(ensureStreamConsumer(client, { StreamARN: STREAM_ARN, StreamName: 'clicks', ConsumerName: 'x' })).rejects.toThrow(/not both/);
    await expect(ensureStreamConsumer(client, { ConsumerName: 'x' })).rejects.toThrow(/StreamARN or StreamName is required/);
  });
});

describe('deregisterStreamConsumerAndWait', () => {
  it('deregisters by ARN and resolves once the consumer is gone', async () => {
    const { client, calls, operations } = registry(['ACTIVE']);
    await deregisterStreamConsumerAndWait(client, { ConsumerARN: CONSUMER_ARN }, FAST);
    expect(operations()).toEqual(['DeregisterStreamConsumer', 'DescribeStreamConsumer', 'DescribeStreamConsumer']);
    expect(calls[0]!.body).toEqual({ ConsumerARN: CONSUMER_ARN });
  });

  it('deregisters by stream name and consumer name', async () => {
    const { client, calls } = registry(['ACTIVE']);
    await deregisterStreamConsumerAndWait(client, { StreamName: 'clicks', ConsumerName: 'dashboard' }, FAST);
    expect(calls[1]!.body).toEqual({ StreamARN: STREAM_ARN, ConsumerName: 'dashboard' });
  });

  it('resolves at once for a consumer that does not exist', async () => {
    const { client, operations } = registry([], { deregisterFails: 'ResourceNotFoundException' });
    await deregisterStreamConsumerAndWait(client, { ConsumerARN: CONSUMER_ARN }, FAST);
    expect(operations()).toEqual(['DeregisterStreamConsumer']);
  });
});

/**
 * Waiters: poll until a stream or consumer reaches a state, with a time limit and an AbortSignal.
 * The intervals follow the SDK waiters' defaults for Kinesis (`StreamExists`: 10 s), scaled down
 * by default because most waits on a fresh stream end within seconds.
 */
import type { KinesisClient } from './client.ts';
import { isKinesisServiceError, KinesisTimeoutError } from './errors.ts';
import { sleep } from './internal/sleep.ts';
import { describeStreamConsumer } from './operations/describe-stream-consumer.ts';
import { describeStreamSummary } from './operations/describe-stream-summary.ts';
import type { ConsumerDescription, DescribeStreamConsumerInput, DescribeStreamSummaryInput, StreamDescriptionSummary } from './shapes.ts';

export interface WaitOptions {
  /**
   * Give up after this long, with a `KinesisTimeoutError`.
   * @default 300000 (5 minutes)
   */
  timeoutMs?: number;
  /**
   * Pause between polls.
   * @default 1000
   */
  intervalMs?: number;
  signal?: AbortSignal;
}

async function poll<T>(name: string, options: WaitOptions, check: () => Promise<T | undefined>): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 300_000;
  const intervalMs = options.intervalMs ?? 1_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const done = await check();
    if (done !== undefined) return done;
    const left = deadline - Date.now();
    if (left <= 0) throw new KinesisTimeoutError(name, timeoutMs);
    await sleep(Math.min(intervalMs, left), options.signal);
  }
}

/**
 * Resolves with the stream's summary once it is ACTIVE.
 * @example
 * ```ts
 * await createStream(client, { StreamName: 'clicks', ShardCount: 2 });
 * await waitForStreamActive(client, { StreamName: 'clicks' });
 * ```
 */
export function waitForStreamActive(client: KinesisClient, input: DescribeStreamSummaryInput, options: WaitOptions = {}): Promise<StreamDescriptionSummary> {
  return poll('waitForStreamActive', options, async () => {
    try {
      const { StreamDescriptionSummary: summary } = await describeStreamSummary(client, input, { signal: options.signal });
      return summary.StreamStatus === 'ACTIVE' ? summary : undefined;
    } catch (error) {
      // A stream just created may not be visible yet.
      if (isKinesisServiceError(error) && error.code === 'ResourceNotFoundException') return undefined;
      throw error;
    }
  });
}

/** Resolves once DescribeStreamSummary answers ResourceNotFoundException. */
export function waitForStreamDeleted(client: KinesisClient, input: DescribeStreamSummaryInput, options: WaitOptions = {}): Promise<void> {
  return poll('waitForStreamDeleted', options, async () => {
    try {
      await describeStreamSummary(client, input, { signal: options.signal });
      return undefined;
    } catch (error) {
      if (isKinesisServiceError(error) && error.code === 'ResourceNotFoundException') return true;
      throw error;
    }
  }).then(() => undefined);
}

/** Resolves with the consumer's description once it is ACTIVE (needed before SubscribeToShard). */
export function waitForConsumerActive(client: KinesisClient, input: DescribeStreamConsumerInput, options: WaitOptions = {}): Promise<ConsumerDescription> {
  return poll('waitForConsumerActive', options, async () => {
    const { ConsumerDescription: consumer } = await describeStreamConsumer(client, input, { signal: options.signal });
    return consumer.ConsumerStatus === 'ACTIVE' ? consumer : undefined;
  });
}

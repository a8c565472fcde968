/**
 * Enhanced fan-out consumers: register one (or reuse the one already registered under that name),
 * wait until it is ACTIVE, and deregister it.
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_RegisterStreamConsumer.html
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_DeregisterStreamConsumer.html
 *
 * A registered consumer is billed per shard-hour while it exists; deregister the ones you no
 * longer read with.
 */
import type { KinesisClient } from '../client.ts';
import { isKinesisServiceError, KinesisTimeoutError } from '../errors.ts';
import { sleep } from '../internal/sleep.ts';
import { deregisterStreamConsumer } from '../operations/deregister-stream-consumer.ts';
import { describeStreamConsumer } from '../operations/describe-stream-consumer.ts';
import { describeStreamSummary } from '../operations/describe-stream-summary.ts';
import { registerStreamConsumer } from '../operations/register-stream-consumer.ts';
import type { ConsumerDescription } from '../shapes.ts';
import { waitForConsumerActive, type WaitOptions } from '../wait.ts';

/** Which consumer: its name on a stream named by name or ARN. */
export interface StreamConsumerRef {
  /** The stream's ARN. Give this or `StreamName`. */
  StreamARN?: string;
  /** The stream's name, looked up with DescribeStreamSummary. Give this or `StreamARN`. */
  StreamName?: string;
  ConsumerName: string;
}

export interface EnsureStreamConsumerInput extends StreamConsumerRef {
  /** Tags for a consumer that gets registered now (an existing one keeps its tags). */
  Tags?: Record<string, string>;
}

async function streamArnOf(client: KinesisClient, ref: { StreamARN?: string; StreamName?: string }, caller: string, signal?: AbortSignal): Promise<string> {
  if (ref.StreamARN && ref.StreamName) throw new TypeError(`${caller}: give StreamARN or StreamName, not both`);
  if (ref.StreamARN) return ref.StreamARN;
  if (!ref.StreamName) throw new TypeError(`${caller}: StreamARN or StreamName is required`);
  const { StreamDescriptionSummary } = await describeStreamSummary(client, { StreamName: ref.StreamName }, { signal });
  return StreamDescriptionSummary.StreamARN;
}

async function describeOrUndefined(client: KinesisClient, streamArn: string, name: string, signal?: AbortSignal): Promise<ConsumerDescription | undefined> {
  try {
    const { ConsumerDescription } = await describeStreamConsumer(client, { StreamARN: streamArn, ConsumerName: name }, { signal });
    return ConsumerDescription;
  } catch (error) {
    if (isKinesisServiceError(error) && error.code === 'ResourceNotFoundException') return undefined;
    throw error;
  }
}

/**
 * Returns the ACTIVE consumer `ConsumerName` of the stream, registering it first when there is
 * none, and waiting while it is being created (or, when a previous one is being deleted, until it
 * is gone and a new one is active). Safe to call from several places at once: a concurrent
 * registration of the same name is reused.
 *
 * @example
 * ```ts
 * const { ConsumerARN } = await ensureStreamConsumer(client, { StreamName: 'clicks', ConsumerName: 'dashboard' });
 * ```
 */
export async function ensureStreamConsumer(client: KinesisClient, input: EnsureStreamConsumerInput, options: WaitOptions = {}): Promise<ConsumerDescription> {
  const caller = 'ensureStreamConsumer';
  const { signal } = options;
  const timeoutMs = options.timeoutMs ?? 300_000;
  const intervalMs = options.intervalMs ?? 1_000;
  const deadline = Date.now() + timeoutMs;
  const streamArn = await streamArnOf(client, input, caller, signal);
  const name = input.ConsumerName;

  for (;;) {
    const existing = await describeOrUndefined(client, streamArn, name, signal);
    if (existing?.ConsumerStatus === 'ACTIVE') return existing;
    if (existing === undefined) {
      try {
        await registerStreamConsumer(
          client,
          { StreamARN: streamArn, ConsumerName: name, ...(input.Tags ? { Tags: input.Tags } : {}) },
          { signal },
        );
      } catch (error) {
        // Someone registered it between our describe and register: use theirs.
        if (!(isKinesisServiceError(error) && error.code === 'ResourceInUseException')) throw error;
      }
    }
    if (existing?.ConsumerStatus !== 'DELETING') {
      const left = deadline - Date.now();
      if (left <= 0) throw new KinesisTimeoutError(caller, timeoutMs);
      return waitForConsumerActive(client, { StreamARN: streamArn, ConsumerName: name }, { signal, intervalMs, timeoutMs: left });
    }
    // DELETING: wait until it is gone, then register a new one.
    const left = deadline - Date.now();
    if (left <= 0) throw new KinesisTimeoutError(caller, timeoutMs);
    await sleep(Math.min(intervalMs, left), signal);
  }
}

/** Which consumer to deregister: by ARN, or by name on a stream. */
export type DeregisterConsumerRef = { ConsumerARN: string } | StreamConsumerRef;

/**
 * Deregisters a consumer and resolves once it is gone (DescribeStreamConsumer answers
 * ResourceNotFoundException). A consumer that does not exist resolves at once. Its open
 * subscriptions end with it.
 *
 * @example
 * ```ts
 * await deregisterStreamConsumerAndWait(client, { StreamName: 'clicks', ConsumerName: 'dashboard' });
 * ```
 */
export async function deregisterStreamConsumerAndWait(client: KinesisClient, ref: DeregisterConsumerRef, options: WaitOptions = {}): Promise<void> {
  const caller = 'deregisterStreamConsumerAndWait';
  const { signal } = options;
  const timeoutMs = options.timeoutMs ?? 300_000;
  const intervalMs = options.intervalMs ?? 1_000;
  const deadline = Date.now() + timeoutMs;
  const input =
    'ConsumerARN' in ref && ref.ConsumerARN
      ? { ConsumerARN: ref.ConsumerARN }
      : { StreamARN: await streamArnOf(client, ref as StreamConsumerRef, caller, signal), ConsumerName: (ref as StreamConsumerRef).ConsumerName };
  try {
    await deregisterStreamConsumer(client, input, { signal });
  } catch (error) {
    if (isKinesisServiceError(error) && error.code === 'ResourceNotFoundException') return;
    // ResourceInUseException: it is still being created or already being deleted; wait below.
    if (!(isKinesisServiceError(error) && error.code === 'ResourceInUseException')) throw error;
  }
  for (;;) {
    try {
      const { ConsumerDescription } = await describeStreamConsumer(client, input, { signal });
      if (ConsumerDescription.ConsumerStatus === 'ACTIVE') {
        // It was still CREATING when asked; now it can be deregistered.
        await deregisterStreamConsumer(client, input, { signal }).catch((error: unknown) => {
          if (!(isKinesisServiceError(error) && (error.code === 'ResourceInUseException' || error.code === 'ResourceNotFoundException'))) throw error;
        });
      }
    } catch (error) {
      if (isKinesisServiceError(error) && error.code === 'ResourceNotFoundException') return;
      throw error;
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new KinesisTimeoutError(caller, timeoutMs);
    await sleep(Math.min(intervalMs, left), signal);
  }
}

/**
 * The Queue scale path (`DELIVERY=queue`, README "Scale path"): `POST /collect` sends the accepted
 * records to a Cloudflare Queue and answers once the Queue has them; the same script's `queue()`
 * handler writes each delivered batch to Kinesis through the producer, acks the stored messages
 * and retries the others (after `max_retries` they go to the dead-letter queue), so nothing is
 * dropped silently.
 *
 * Queue limits (https://developers.cloudflare.com/queues/platform/limits/): at most 100 messages
 * and 256 KB per `sendBatch`, 128 KB per message. One event is at most a few KiB (8 KiB of
 * properties, 2 KiB URLs), far under the message limit.
 */
import { utf8Length } from './events.ts';
import { describeError, logEvent, writeRecords, type KinesisSettings, type OutgoingRecord, type WriteResult } from './kinesis.ts';

/** Most messages one `sendBatch` takes. */
export const QUEUE_BATCH_MESSAGES = 100;
/** Most bytes one `sendBatch` takes (256 KB). */
export const QUEUE_BATCH_BYTES = 256_000;
/** Bytes counted per message on top of its JSON body (an estimate of the Queue's own overhead). */
const MESSAGE_OVERHEAD_BYTES = 100;
/** Most records one PutRecords takes. */
export const PUT_RECORDS_MAX = 500;
/** Seconds before a message Kinesis did not store is delivered again. */
export const RETRY_DELAY_SECONDS = 1;

/**
 * Splits records into `sendBatch` calls within the Queue's limits, in order.
 * @example
 * queueBatches(records).length; // 1 for up to 100 small records
 */
export function queueBatches(records: readonly OutgoingRecord[]): OutgoingRecord[][] {
  const batches: OutgoingRecord[][] = [];
  let current: OutgoingRecord[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = utf8Length(JSON.stringify(record)) + MESSAGE_OVERHEAD_BYTES;
    if (current.length > 0 && (current.length >= QUEUE_BATCH_MESSAGES || bytes + size > QUEUE_BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(record);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/**
 * Sends the records to the Queue. `stored` are the ids the Queue accepted (it is durable); a
 * failed `sendBatch` puts its ids in `retry` (the page sends them again).
 */
export async function enqueueRecords(queue: Queue<OutgoingRecord>, records: readonly OutgoingRecord[]): Promise<WriteResult> {
  const result: WriteResult = { stored: [], retry: [], invalid: [] };
  for (const batch of queueBatches(records)) {
    try {
      await queue.sendBatch(batch.map((record) => ({ body: record, contentType: 'json' as const })));
      for (const record of batch) result.stored.push(record.id);
    } catch (error) {
      logEvent('error', 'queue send failed', { ...describeError(error), records: batch.length });
      for (const record of batch) result.retry.push(record.id);
    }
  }
  return result;
}

function isOutgoingRecord(value: unknown): value is OutgoingRecord {
  if (typeof value !== 'object' || value === null) return false;
  const { id, partitionKey, data } = value as Record<string, unknown>;
  return typeof id === 'string' && typeof partitionKey === 'string' && partitionKey !== '' && typeof data === 'string';
}

/**
 * The consumer: writes a delivered batch to Kinesis (session id as partition key, at most 500
 * records per write), acks the messages whose record is stored and retries every other one.
 * `settings` undefined (secrets missing) retries the whole batch.
 */
export async function consumeBatch(batch: MessageBatch<unknown>, settings: KinesisSettings | undefined): Promise<void> {
  if (settings === undefined) {
    logEvent('error', 'not configured: secrets or vars are missing; queue batch retried', { messages: batch.messages.length });
    batch.retryAll({ delaySeconds: RETRY_DELAY_SECONDS });
    return;
  }
  // Keyed by message id, not event id: the same event may sit in two messages (a page resent it).
  const byMessage = new Map<string, Message<unknown>>();
  const records: OutgoingRecord[] = [];
  for (const message of batch.messages) {
    if (!isOutgoingRecord(message.body)) {
      // Cannot become valid: retried until max_retries moves it to the dead-letter queue.
      logEvent('error', 'malformed queue message retried', { message: message.id, attempts: message.attempts });
      message.retry({ delaySeconds: RETRY_DELAY_SECONDS });
      continue;
    }
    byMessage.set(message.id, message);
    records.push({ id: message.id, partitionKey: message.body.partitionKey, data: message.body.data });
  }
  let acked = 0;
  let retried = 0;
  for (let start = 0; start < records.length; start += PUT_RECORDS_MAX) {
    const chunk = records.slice(start, start + PUT_RECORDS_MAX);
    let outcome: WriteResult;
    try {
      outcome = await writeRecords(settings, chunk);
    } catch (error) {
      logEvent('error', 'kinesis write failed', describeError(error));
      outcome = { stored: [], retry: chunk.map((r) => r.id), invalid: [] };
    }
    for (const id of outcome.stored) {
      byMessage.get(id)?.ack();
      acked++;
    }
    for (const id of [...outcome.retry, ...outcome.invalid]) {
      byMessage.get(id)?.retry({ delaySeconds: RETRY_DELAY_SECONDS });
      retried++;
    }
    if (outcome.invalid.length > 0) logEvent('error', 'records refused by the stream; retried toward the dead-letter queue', { records: outcome.invalid.length });
  }
  if (retried > 0) logEvent('warn', 'queue messages retried', { acked, retried });
}

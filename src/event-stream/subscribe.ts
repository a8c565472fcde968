/**
 * SubscribeToShard: https://docs.aws.amazon.com/kinesis/latest/APIReference/API_SubscribeToShard.html
 *
 * The one streaming operation: the answer is an `application/vnd.amazon.eventstream` body that
 * carries `SubscribeToShardEvent`s for up to 5 minutes. The request is signed and retried like any
 * other call (`send()` in client.ts); only the response is read as a stream instead of as JSON.
 *
 * Runtimes: the body is read through `fetch`'s `ReadableStream`; Node (undici), Deno, workerd and
 * Chromium stream it as it arrives (test/runtimes/event-stream.test.ts checks each against
 * kinesis-local, which serves HTTP/1.1 chunked). AWS documents the events as sent "over an HTTP/2
 * connection"; browsers and Deno negotiate HTTP/2 by themselves, while Node's built-in `fetch`
 * speaks HTTP/1.1 unless given an undici `Agent({ allowH2: true })` as dispatcher (pass such a
 * `fetch` in the client config). Whether AWS also answers over HTTP/1.1 is not verified here. A
 * service worker or proxy that buffers responses holds every event until the subscription ends
 * (up to 5 minutes): read the stream directly.
 */
import {
  serviceError,
  signKinesisRequest,
  requestBody,
  withRetries,
  type AttemptResult,
  type CallOptions,
  type KinesisClient,
} from '../client.ts';
import {
  KinesisNetworkError,
  KinesisServiceError,
  KinesisTimeoutError,
  KinesisValidationError,
  isKinesisError,
  sanitizeFaultName,
} from '../errors.ts';
import { decodeUtf8 } from '../internal/utf8.ts';
import { parseSubscribeToShardEvent } from '../get-records-validation.ts';
import { schemaOperation } from '../schema-validation.ts';
import type { ChildShard, KinesisRecord, ShardIteratorType } from '../shapes.ts';
import { decodeEventStream, type EventStreamMessage } from './decoder.ts';

const OPERATION = 'SubscribeToShard';
const EVENT_STREAM_CONTENT_TYPE = 'application/vnd.amazon.eventstream';

/** Where a subscription starts. `SequenceNumber` goes with the `*_SEQUENCE_NUMBER` types, `Timestamp` with `AT_TIMESTAMP`. */
export interface StartingPosition {
  Type: ShardIteratorType;
  SequenceNumber?: string;
  Timestamp?: Date;
}

export interface SubscribeToShardInput {
  /** From RegisterStreamConsumer (see {@link ensureStreamConsumer}); the consumer must be ACTIVE. */
  ConsumerARN: string;
  ShardId: string;
  StartingPosition: StartingPosition;
  StreamId?: string;
  DryRun?: boolean;
}

/** One event of a subscription. */
export interface SubscribeToShardEvent {
  /** The records since the previous event, in shard order; often empty. */
  Records: KinesisRecord[];
  /**
   * Where a new subscription continues (`AFTER_SEQUENCE_NUMBER`); it moves on even when no records
   * arrive, so it is the position to checkpoint. The API marks it required, but the last event of a
   * closed shard may leave it out (the KCL treats `null` with `ChildShards` as the shard's end).
   */
  ContinuationSequenceNumber?: string;
  /** How far the subscription is behind the newest record, in ms (0: caught up). */
  MillisBehindLatest: number;
  /** Set on the last event of a closed shard: the shards that continue its hash range. */
  ChildShards?: ChildShard[];
}

// The input schema (and zod) is loaded on the first subscription; events are parsed in plain code.
const loadSchemas = () => import('./schemas.ts');
const SUBSCRIBE_TO_SHARD = /* @__PURE__ */ schemaOperation(
  OPERATION,
  () => loadSchemas().then((schemas) => ({ input: schemas.SubscribeToShardInputSchema(), output: undefined })),
  // Events carry GetRecords' records: parsed in plain code like GetRecords answers.
  parseSubscribeToShardEvent,
);

/** Options of {@link subscribeToShard}. */
export interface SubscribeToShardOptions extends CallOptions {
  /**
   * Longest wait for the next message before the subscription is given up with a retryable
   * `KinesisTimeoutError` (a silent connection is as good as a dead one). Time the caller spends
   * holding an event does not count.
   * @default 30000
   */
  idleTimeoutMs?: number;
  /**
   * Largest event stream message, in bytes.
   * @default DEFAULT_MAX_MESSAGE_BYTES (16 MiB + 16)
   */
  maxMessageBytes?: number;
}

/** @see SubscribeToShardOptions.idleTimeoutMs */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

/**
 * Subscribes to one shard through an enhanced fan-out consumer and yields its events until the
 * service ends the subscription (after 5 minutes, or at the end of a closed shard: the last event
 * then has `ChildShards`). Renew it from the last `ContinuationSequenceNumber`; the stream readers
 * ({@link readShardEnhanced}, {@link readStreamEnhanced}) do that for you.
 *
 * Errors: a non-200 answer throws `KinesisServiceError` as any call does (retried first per the
 * client's retry options); an `exception` message in the stream throws `KinesisServiceError` with
 * the fault name (`ResourceInUseException` when the consumer already has a subscription to this
 * shard); a corrupt or cut body throws `KinesisEventStreamError` or `KinesisNetworkError`.
 * Breaking out of `for await` or aborting `signal` cancels the body, which releases the connection.
 *
 * @example
 * ```ts
 * const consumer = await ensureStreamConsumer(client, { StreamName: 'clicks', ConsumerName: 'dashboard' });
 * for await (const event of subscribeToShard(client, {
 *   ConsumerARN: consumer.ConsumerARN,
 *   ShardId: 'shardId-000000000000',
 *   StartingPosition: { Type: 'LATEST' },
 * })) {
 *   for (const record of event.Records) console.log(record.SequenceNumber, new TextDecoder().decode(record.Data));
 * }
 * ```
 */
export async function* subscribeToShard(
  client: KinesisClient,
  input: SubscribeToShardInput,
  options: SubscribeToShardOptions = {},
): AsyncGenerator<SubscribeToShardEvent, void, undefined> {
  const body = await requestBody(client, SUBSCRIBE_TO_SHARD, input);
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  if (!(idleTimeoutMs > 0)) throw new RangeError('subscribeToShard: idleTimeoutMs must be a positive number');
  const outer = options.signal;
  if (outer?.aborted) throw outer.reason;

  // Owns the connection: aborted when the caller aborts, when the stream goes idle, and at the end.
  const session = new AbortController();
  const relay = () => session.abort(outer!.reason);
  outer?.addEventListener('abort', relay, { once: true });
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  let idledOut = false;
  const disarm = () => {
    if (idleTimer !== undefined) clearTimeout(idleTimer);
  };
  const arm = () => {
    disarm();
    idleTimer = setTimeout(() => {
      idledOut = true;
      session.abort(new KinesisTimeoutError(OPERATION, idleTimeoutMs));
    }, idleTimeoutMs);
  };

  try {
    const response = await openEventStream(client, OPERATION, body, session.signal);
    const requestId = response.headers.get('x-amzn-RequestId') ?? undefined;
    arm();
    try {
      for await (const message of decodeEventStream(response.body!, {
        operation: OPERATION,
        maxMessageBytes: options.maxMessageBytes,
        signal: session.signal,
      })) {
        const event = readMessage(message, response.status, requestId);
        if (event === undefined) {
          arm();
          continue;
        }
        disarm();
        yield event;
        arm();
      }
    } catch (error) {
      if (outer?.aborted) throw outer.reason;
      if (idledOut) throw new KinesisTimeoutError(OPERATION, idleTimeoutMs, error);
      if (isKinesisError(error)) throw error;
      // The body failed mid-stream: a reset connection, a proxy that gave up.
      throw new KinesisNetworkError(OPERATION, error);
    }
  } finally {
    disarm();
    outer?.removeEventListener('abort', relay);
    session.abort();
  }
}

function stringHeader(message: EventStreamMessage, name: string): string | undefined {
  const header = message.headers[name];
  return header?.type === 'string' ? header.value : undefined;
}

function parsePayload(message: EventStreamMessage, what: string): unknown {
  const text = decodeUtf8(message.payload);
  try {
    // `null` members: the event parser drops them; an exception payload is only read for its message.
    return text ? (JSON.parse(text) as unknown) : {};
  } catch {
    throw new KinesisValidationError(OPERATION, 'output', [{ path: '', rule: `${what} payload is not JSON (${text.slice(0, 120)})` }]);
  }
}

/** The event a message carries, `undefined` for one to skip, or throws the fault it reports. */
function readMessage(message: EventStreamMessage, status: number, requestId: string | undefined): SubscribeToShardEvent | undefined {
  const messageType = stringHeader(message, ':message-type');
  if (messageType === 'event') {
    // `initial-response` (an empty output structure) and event types added later are skipped.
    if (stringHeader(message, ':event-type') !== 'SubscribeToShardEvent') return undefined;
    return SUBSCRIBE_TO_SHARD.output!(parsePayload(message, 'SubscribeToShardEvent')) as SubscribeToShardEvent;
  }
  if (messageType === 'exception') {
    // A modeled fault: `:exception-type` names it, the payload is `{"message": …}`.
    const payload = parsePayload(message, 'exception') as { message?: unknown; Message?: unknown } | undefined;
    const text = typeof payload?.message === 'string' ? payload.message : typeof payload?.Message === 'string' ? payload.Message : '';
    throw new KinesisServiceError({
      code: sanitizeFaultName(stringHeader(message, ':exception-type') ?? 'UnknownException'),
      status,
      requestId,
      message: text,
      operation: OPERATION,
    });
  }
  if (messageType === 'error') {
    // An unmodeled fault: everything is in the headers.
    throw new KinesisServiceError({
      code: sanitizeFaultName(stringHeader(message, ':error-code') ?? 'InternalFailure'),
      status,
      requestId,
      message: stringHeader(message, ':error-message') ?? '',
      operation: OPERATION,
    });
  }
  return undefined;
}

/**
 * Signs and sends an operation whose answer is an event stream, with `send()`'s retries (backoff,
 * retry quota, clock-skew correction, one credentials refresh), and returns the 200 response with
 * its body unread. `connection` stays tied to the response: aborting it cancels the request, the
 * backoff or the body, and the call rejects with its reason.
 */
export function openEventStream(
  client: KinesisClient,
  operation: string,
  body: string | Uint8Array<ArrayBuffer>,
  connection: AbortSignal,
): Promise<Response> {
  const { state } = client;
  return withRetries(client, operation, connection, async (): Promise<AttemptResult<Response>> => {
    const { url, headers } = await signKinesisRequest(client, operation, body);
    headers.set('accept', EVENT_STREAM_CONTENT_TYPE);
    if (connection.aborted) throw connection.reason;

    // One controller per attempt: tied to `connection`, and to a timer until the headers arrive.
    const attemptController = new AbortController();
    const link = () => attemptController.abort(connection.reason);
    connection.addEventListener('abort', link, { once: true });
    const timer = setTimeout(() => attemptController.abort(new KinesisTimeoutError(operation, state.timeoutMs)), state.timeoutMs);
    const doFetch = state.config.fetch ?? globalThis.fetch;
    let response: Response | undefined;
    try {
      response = await doFetch(url, { method: 'POST', headers, body, signal: attemptController.signal });
      if (response.ok) {
        const type = response.headers.get('content-type') ?? '';
        if (!type.includes(EVENT_STREAM_CONTENT_TYPE) || !response.body) {
          const text = await response.text();
          throw new KinesisValidationError(operation, 'output', [
            { path: '', rule: `response is not an event stream (content-type ${type || 'missing'}): ${text.slice(0, 120) || 'empty'}` },
          ]);
        }
        return { ok: true, value: response };
      }
      const text = await response.text();
      connection.removeEventListener('abort', link);
      return { ok: false, error: serviceError(operation, response, text, state.now()), response };
    } catch (cause) {
      connection.removeEventListener('abort', link);
      if (cause instanceof KinesisValidationError) throw cause;
      if (connection.aborted) throw connection.reason;
      const error = attemptController.signal.aborted
        ? new KinesisTimeoutError(operation, state.timeoutMs, cause)
        : new KinesisNetworkError(operation, cause);
      return { ok: false, error };
    } finally {
      clearTimeout(timer);
    }
  });
}

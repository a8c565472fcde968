// Builders for SubscribeToShard responses in unit tests: event stream messages shaped as AWS
// sends them (headers per https://smithy.io/2.0/aws/amazon-eventstream.html; payload members per
// https://docs.aws.amazon.com/kinesis/latest/APIReference/API_SubscribeToShardEvent.html), and a
// Response whose body streams them and then closes, fails, hangs or is cut mid-message.
import { encodeEventStreamMessage } from '../../src/event-stream/decoder.ts';
import { encodeUtf8 } from '../../src/internal/utf8.ts';
import { bodyText } from './fake-fetch.ts';

const str = (value: string) => ({ type: 'string', value }) as const;

/** A wire record: base64 data, arrival time in epoch seconds. */
export function wireRecord(sequenceNumber: string, data: string, partitionKey = 'pk'): Record<string, unknown> {
  return {
    SequenceNumber: sequenceNumber,
    Data: btoa(data),
    PartitionKey: partitionKey,
    ApproximateArrivalTimestamp: 1_700_000_000.5,
    EncryptionType: 'NONE',
  };
}

/** A `SubscribeToShardEvent` message. `continuation: null` marks the end of a closed shard. */
export function eventMessage(
  records: Record<string, unknown>[],
  continuation: string | null,
  extra: { millisBehindLatest?: number; childShards?: unknown[] | null } = {},
): Uint8Array {
  return encodeEventStreamMessage({
    headers: { ':message-type': str('event'), ':event-type': str('SubscribeToShardEvent'), ':content-type': str('application/json') },
    payload: encodeUtf8(
      JSON.stringify({
        Records: records,
        ContinuationSequenceNumber: continuation,
        MillisBehindLatest: extra.millisBehindLatest ?? 0,
        ChildShards: extra.childShards ?? null,
      }),
    ),
  });
}

/** The `initial-response` AWS sends first (an empty output structure). */
export function initialResponse(): Uint8Array {
  return encodeEventStreamMessage({
    headers: { ':message-type': str('event'), ':event-type': str('initial-response'), ':content-type': str('application/json') },
    payload: encodeUtf8('{}'),
  });
}

/** A modeled fault in the stream, as kinesis-local and AWS send it. */
export function exceptionMessage(type: string, message: string): Uint8Array {
  return encodeEventStreamMessage({
    headers: { ':message-type': str('exception'), ':exception-type': str(type), ':content-type': str('application/json') },
    payload: encodeUtf8(JSON.stringify({ message })),
  });
}

/** An unmodeled fault: code and message in headers. */
export function errorMessage(code: string, message: string): Uint8Array {
  return encodeEventStreamMessage({
    headers: { ':message-type': str('error'), ':error-code': str(code), ':error-message': str(message) },
  });
}

/** A child shard as the last event of a closed shard lists it. */
export function childShard(shardId: string, parents: string[]): Record<string, unknown> {
  return { ShardId: shardId, ParentShards: parents, HashKeyRange: { StartingHashKey: '0', EndingHashKey: '340282366920938463463374607431768211455' } };
}

export interface StreamedResponse {
  response: Response;
  /** Whether the client cancelled the body (released the connection). */
  readonly cancelled: boolean;
}

/**
 * A 200 event stream response whose body sends `messages`, one chunk each (or all bytes in
 * `chunkSize` pieces), then: `close` (the subscription ended), `hang` (stays open), `error`
 * (the connection reset) or `cut` (stops halfway through one more message, then closes).
 */
export function eventStreamResponse(
  messages: Uint8Array[],
  options: { then?: 'close' | 'hang' | 'error' | 'cut'; requestId?: string; delayMs?: number } = {},
): StreamedResponse {
  const then = options.then ?? 'close';
  const queue = [...messages];
  if (then === 'cut') {
    const extra = eventMessage([wireRecord('999', 'never delivered')], '999');
    queue.push(extra.subarray(0, Math.floor(extra.length / 2)));
  }
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
      const next = queue.shift();
      if (next) return controller.enqueue(next);
      if (then === 'close' || then === 'cut') return controller.close();
      if (then === 'error') return controller.error(new TypeError('terminated'));
      return new Promise<void>(() => {});
    },
    cancel() {
      cancelled = true;
    },
  });
  const response = new Response(body, {
    status: 200,
    headers: { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-RequestId': options.requestId ?? 'req-stream' },
  });
  return {
    response,
    get cancelled() {
      return cancelled;
    },
  };
}

/** One request a {@link streamingFetch} saw. */
export interface StreamingRequest {
  operation: string | undefined;
  headers: Record<string, string>;
  json: any;
  signal: AbortSignal | undefined;
}

export type StreamingReply = Response | Error | ((request: StreamingRequest) => Response | Error | Promise<Response | Error>);

/**
 * A fake `fetch` for streaming answers. Unlike test/support/fake-fetch.ts it hands back the very
 * Response it was given (a clone would tee the body, so cancelling the client's branch would not
 * reach the source). Like a real fetch, it rejects with the signal's reason when aborted before
 * the answer; after that, the body is the reply's to end.
 */
export function streamingFetch(replies: StreamingReply[]): typeof fetch & { requests: StreamingRequest[]; push(...more: StreamingReply[]): void } {
  const queue = [...replies];
  const requests: StreamingRequest[] = [];
  const fake = async (_input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => (headers[name] = value));
    const target = headers['x-amz-target'];
    const request: StreamingRequest = {
      operation: target?.slice(target.lastIndexOf('.') + 1),
      headers,
      json: init.body ? JSON.parse(bodyText(init.body)) : undefined,
      signal: init.signal ?? undefined,
    };
    requests.push(request);
    const signal = init.signal ?? undefined;
    if (signal?.aborted) throw signal.reason;
    const reply = queue.shift();
    if (reply === undefined) throw new Error(`streamingFetch: no reply scripted for request #${requests.length - 1}`);
    const outcome = await new Promise<Response | Error>((resolve, reject) => {
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      Promise.resolve(typeof reply === 'function' ? reply(request) : reply).then(resolve, reject);
    });
    if (outcome instanceof Error) throw outcome;
    return outcome;
  };
  return Object.assign(fake, { requests, push: (...more: StreamingReply[]) => void queue.push(...more) }) as never;
}

/**
 * The `application/vnd.amazon.eventstream` framing: a streaming decoder over a fetch body and an
 * encoder (for tests and local servers). SubscribeToShard answers with this format.
 *
 * A message is a 12-byte prelude (total length u32 BE, headers length u32 BE, CRC32 of those 8
 * bytes), the headers, the payload, and a CRC32 of everything before it. Headers are a 1-byte name
 * length, the UTF-8 name, a 1-byte type and a typed value.
 * https://smithy.io/2.0/aws/amazon-eventstream.html
 * https://docs.aws.amazon.com/AmazonS3/latest/API/RESTSelectObjectAppendix.html
 * https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html#streaming-event-stream
 *
 * The decoder keeps the chunks it was given and copies each byte at most once (a message that lies
 * inside one chunk is a view of it), so its work is linear in the stream's length however the
 * stream is cut. Both CRCs are verified; a corrupt or truncated stream throws
 * {@link KinesisEventStreamError}, it never just stops.
 */
import { KinesisError } from '../errors.ts';
import { crc32 } from '../internal/crc32.ts';
import { decodeUtf8, encodeUtf8 } from '../internal/utf8.ts';

/** One header value, tagged with its wire type. */
export type EventStreamHeaderValue =
  | { type: 'boolean'; value: boolean }
  | { type: 'byte'; value: number }
  | { type: 'short'; value: number }
  | { type: 'integer'; value: number }
  | { type: 'long'; value: bigint }
  | { type: 'binary'; value: Uint8Array }
  | { type: 'string'; value: string }
  | { type: 'timestamp'; value: Date }
  | { type: 'uuid'; value: string };

/** Headers by name (a null-prototype object, so any name is safe). */
export type EventStreamHeaders = Record<string, EventStreamHeaderValue>;

/** One decoded message. */
export interface EventStreamMessage {
  headers: EventStreamHeaders;
  /** A view of the received bytes; copy it to keep it beyond the next message. */
  payload: Uint8Array;
}

/** What made a stream unreadable. */
export type EventStreamFault =
  /** The prelude's CRC32 does not match its first 8 bytes. */
  | 'prelude-crc'
  /** The message's CRC32 does not match the message. */
  | 'message-crc'
  /** The body ended inside a message. */
  | 'truncated'
  /** The prelude announces a message or a header section larger than allowed. */
  | 'too-large'
  /** The prelude's lengths contradict each other. */
  | 'bad-length'
  /** The header section cannot be parsed (unknown type, a value past its end, an empty name). */
  | 'bad-headers';

const RETRYABLE_FAULTS: ReadonlySet<EventStreamFault> = /* @__PURE__ */ new Set(['prelude-crc', 'message-crc', 'truncated']);

/**
 * An event stream body that is corrupt or ends inside a message. Transport damage (a CRC mismatch,
 * truncation) is `retryable`: a new subscription from the last continuation point reads past it.
 */
export class KinesisEventStreamError extends KinesisError {
  override name = 'KinesisEventStreamError';
  readonly fault: EventStreamFault;
  /** Byte offset in the body of the message that failed. */
  readonly offset: number;
  constructor(fault: EventStreamFault, detail: string, options: { offset: number; operation?: string; cause?: unknown }) {
    const where = options.operation ? `${options.operation} failed: ` : '';
    super(`${where}event stream is unreadable (${fault}) at byte ${options.offset}: ${detail}`, {
      operation: options.operation,
      retryable: RETRYABLE_FAULTS.has(fault),
      cause: options.cause,
    });
    this.fault = fault;
    this.offset = options.offset;
  }
}

/** True for a {@link KinesisEventStreamError}, also one from another copy of this package. */
export function isKinesisEventStreamError(error: unknown): error is KinesisEventStreamError {
  return (
    error instanceof KinesisEventStreamError ||
    (typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'KinesisEventStreamError')
  );
}

const PRELUDE_BYTES = 12;
const CRC_BYTES = 4;
/** Prelude and message CRC: the bytes of a message that are neither headers nor payload. */
export const EVENT_STREAM_FRAMING_BYTES = PRELUDE_BYTES + CRC_BYTES;
/**
 * Largest message accepted by default: 16 MiB of headers and payload plus the framing, the limit of
 * AWS's C event-stream library (`AWS_EVENT_STREAM_MAX_MESSAGE_SIZE`). The Smithy spec lets clients
 * accept more; the limit is here to bound memory, so raise it for very large records.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024 + EVENT_STREAM_FRAMING_BYTES;
/** Largest header section: 128 KiB, the spec's limit. */
export const DEFAULT_MAX_HEADERS_BYTES = 128 * 1024;
/** Longest string or byte-array header value the spec allows (2^15 - 1). */
const MAX_HEADER_VALUE_BYTES = 32_767;

export interface EventStreamDecoderOptions {
  /**
   * Largest message, framing included, in bytes.
   * @default DEFAULT_MAX_MESSAGE_BYTES (16 MiB + 16)
   */
  maxMessageBytes?: number;
  /**
   * Largest header section, in bytes.
   * @default DEFAULT_MAX_HEADERS_BYTES (128 KiB)
   */
  maxHeadersBytes?: number;
  /** Named in error messages, e.g. `SubscribeToShard`. */
  operation?: string;
}

/** A push decoder: feed it chunks as they arrive, get whole messages back. */
export interface EventStreamDecoder {
  /** Adds a chunk; returns the messages it completed (none, one or several). */
  push(chunk: Uint8Array): EventStreamMessage[];
  /** The body ended: throws `truncated` when a message was left incomplete. */
  end(): void;
  /** Bytes held that do not yet form a whole message. */
  readonly bufferedBytes: number;
}

/**
 * A decoder that is fed chunks by hand; {@link decodeEventStream} drives one from a `ReadableStream`.
 *
 * @example
 * ```ts
 * const decoder = createEventStreamDecoder();
 * for (const chunk of chunks) for (const message of decoder.push(chunk)) handle(message);
 * decoder.end();
 * ```
 */
export function createEventStreamDecoder(options: EventStreamDecoderOptions = {}): EventStreamDecoder {
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const maxHeadersBytes = options.maxHeadersBytes ?? DEFAULT_MAX_HEADERS_BYTES;
  const operation = options.operation;
  let chunks: Uint8Array[] = [];
  let head = 0;
  let headOffset = 0;
  let buffered = 0;
  /** Body offset of the first byte held. */
  let consumed = 0;
  /** Body offset of the message being read, for error reports. */
  let messageStart = 0;
  /** Length of the message being assembled, once its prelude has been read. */
  let expected: { total: number; headers: number } | undefined;
  const prelude = new Uint8Array(PRELUDE_BYTES);

  const fail = (fault: EventStreamFault, detail: string): never => {
    throw new KinesisEventStreamError(fault, detail, { offset: messageStart, operation });
  };

  // Copies the first `into.length` held bytes into `into` without consuming them.
  const peek = (into: Uint8Array) => {
    let filled = 0;
    for (let i = head, offset = headOffset; filled < into.length; i++, offset = 0) {
      const chunk = chunks[i]!;
      const n = Math.min(chunk.length - offset, into.length - filled);
      into.set(chunk.subarray(offset, offset + n), filled);
      filled += n;
    }
  };

  // Removes and returns the first `n` held bytes: a view when they lie in one chunk, else one copy.
  const take = (n: number): Uint8Array => {
    const first = chunks[head]!;
    let out: Uint8Array;
    if (first.length - headOffset >= n) {
      out = first.subarray(headOffset, headOffset + n);
      headOffset += n;
    } else {
      out = new Uint8Array(n);
      let filled = 0;
      while (filled < n) {
        const chunk = chunks[head]!;
        const k = Math.min(chunk.length - headOffset, n - filled);
        out.set(chunk.subarray(headOffset, headOffset + k), filled);
        filled += k;
        headOffset += k;
        if (headOffset === chunk.length) {
          head++;
          headOffset = 0;
        }
      }
    }
    if (head < chunks.length && headOffset === chunks[head]!.length) {
      head++;
      headOffset = 0;
    }
    buffered -= n;
    consumed += n;
    // Drop consumed chunks now and then, so the array does not grow with the stream.
    if (head === chunks.length) {
      chunks = [];
      head = 0;
    } else if (head > 64 && head * 2 > chunks.length) {
      chunks = chunks.slice(head);
      head = 0;
    }
    return out;
  };

  const readPrelude = () => {
    peek(prelude);
    const view = new DataView(prelude.buffer);
    const total = view.getUint32(0);
    const headers = view.getUint32(4);
    const stated = view.getUint32(8);
    const actual = crc32(prelude.subarray(0, 8));
    if (stated !== actual) fail('prelude-crc', `the prelude states CRC32 ${hex(stated)} but its bytes give ${hex(actual)}`);
    if (total < EVENT_STREAM_FRAMING_BYTES) fail('bad-length', `a message of ${total} bytes is shorter than its framing (16 bytes)`);
    if (headers > total - EVENT_STREAM_FRAMING_BYTES) {
      fail('bad-length', `${headers} bytes of headers do not fit in a message of ${total} bytes`);
    }
    if (headers > maxHeadersBytes) fail('too-large', `${headers} bytes of headers exceed the limit of ${maxHeadersBytes}`);
    if (total > maxMessageBytes) fail('too-large', `a message of ${total} bytes exceeds the limit of ${maxMessageBytes}`);
    expected = { total, headers };
  };

  const readMessage = (bytes: Uint8Array, headersLength: number): EventStreamMessage => {
    const total = bytes.length;
    const view = new DataView(bytes.buffer, bytes.byteOffset, total);
    const stated = view.getUint32(total - CRC_BYTES);
    // The prelude's CRC is the running CRC of its first 8 bytes: continue from it.
    const actual = crc32(bytes.subarray(8, total - CRC_BYTES), view.getUint32(8));
    if (stated !== actual) fail('message-crc', `the message states CRC32 ${hex(stated)} but its bytes give ${hex(actual)}`);
    const headerEnd = PRELUDE_BYTES + headersLength;
    return {
      headers: parseHeaders(bytes.subarray(PRELUDE_BYTES, headerEnd), (detail) => fail('bad-headers', detail)),
      payload: bytes.subarray(headerEnd, total - CRC_BYTES),
    };
  };

  return {
    push(chunk) {
      const out: EventStreamMessage[] = [];
      if (chunk.length === 0) return out;
      chunks.push(chunk);
      buffered += chunk.length;
      for (;;) {
        if (expected === undefined) {
          messageStart = consumed;
          if (buffered < PRELUDE_BYTES) break;
          readPrelude();
        }
        const { total, headers } = expected!;
        if (buffered < total) break;
        const message = readMessage(take(total), headers);
        expected = undefined;
        out.push(message);
      }
      return out;
    },
    end() {
      if (buffered === 0) return;
      if (expected === undefined) fail('truncated', `the body ended ${buffered} bytes into a 12-byte prelude`);
      fail('truncated', `the body ended ${buffered} bytes into a message of ${expected!.total} bytes`);
    },
    get bufferedBytes() {
      return buffered;
    },
  };
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

function uuidString(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) out += '-';
    out += bytes[i]!.toString(16).padStart(2, '0');
  }
  return out;
}

function parseHeaders(bytes: Uint8Array, fail: (detail: string) => never): EventStreamHeaders {
  const headers: EventStreamHeaders = Object.create(null) as EventStreamHeaders;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  let at = 0;
  const need = (n: number, name: string) => {
    if (at + n > bytes.length) fail(`header ${JSON.stringify(name)} runs past the end of the header section`);
  };
  while (at < bytes.length) {
    const nameLength = bytes[at++]!;
    if (nameLength === 0) fail(`a header at byte ${at - 1} of the header section has an empty name`);
    need(nameLength + 1, '');
    const name = decodeUtf8(bytes.subarray(at, at + nameLength));
    at += nameLength;
    const type = bytes[at++]!;
    let value: EventStreamHeaderValue;
    switch (type) {
      case 0:
      case 1:
        value = { type: 'boolean', value: type === 0 };
        break;
      case 2:
        need(1, name);
        value = { type: 'byte', value: view.getInt8(at) };
        at += 1;
        break;
      case 3:
        need(2, name);
        value = { type: 'short', value: view.getInt16(at) };
        at += 2;
        break;
      case 4:
        need(4, name);
        value = { type: 'integer', value: view.getInt32(at) };
        at += 4;
        break;
      case 5:
        need(8, name);
        value = { type: 'long', value: view.getBigInt64(at) };
        at += 8;
        break;
      case 6:
      case 7: {
        need(2, name);
        const length = view.getUint16(at);
        at += 2;
        need(length, name);
        const slice = bytes.subarray(at, at + length);
        value = type === 6 ? { type: 'binary', value: slice } : { type: 'string', value: decodeUtf8(slice) };
        at += length;
        break;
      }
      case 8:
        need(8, name);
        value = { type: 'timestamp', value: new Date(Number(view.getBigInt64(at))) };
        at += 8;
        break;
      case 9:
        need(16, name);
        value = { type: 'uuid', value: uuidString(bytes.subarray(at, at + 16)) };
        at += 16;
        break;
      default:
        fail(`header ${JSON.stringify(name)} has unknown value type ${type}`);
    }
    headers[name] = value!;
  }
  return headers;
}

/**
 * Decodes an event stream body message by message. Reading stops (and the body is cancelled, which
 * releases the connection) when the caller breaks out of `for await`, when `signal` aborts, or on
 * the first error. A body that ends inside a message throws `truncated`.
 *
 * @example
 * ```ts
 * const response = await fetch(url, init);
 * for await (const message of decodeEventStream(response.body!)) {
 *   console.log(message.headers[':event-type']?.value, decodeUtf8(message.payload));
 * }
 * ```
 */
export async function* decodeEventStream(
  body: ReadableStream<Uint8Array>,
  options: EventStreamDecoderOptions & { signal?: AbortSignal } = {},
): AsyncGenerator<EventStreamMessage, void, undefined> {
  const decoder = createEventStreamDecoder(options);
  const { signal } = options;
  const reader = body.getReader();
  let finished = false;
  // A read pending when the signal aborts is settled by cancelling the body.
  const onAbort = () => void reader.cancel(signal!.reason).catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      const { done, value } = await reader.read();
      if (signal?.aborted) throw signal.reason;
      if (done) {
        finished = true;
        decoder.end();
        return;
      }
      for (const message of decoder.push(value)) {
        // One read can hold several messages (a reader that fell behind): none of the rest is
        // handed out once the signal aborted.
        if (signal?.aborted) throw signal.reason;
        yield message;
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

// ---- encoding ------------------------------------------------------------------------------------

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function encodeHeaderValue(name: string, header: EventStreamHeaderValue): Uint8Array {
  const bad = (rule: string): never => {
    throw new RangeError(`encodeEventStreamMessage: header ${JSON.stringify(name)} ${rule}`);
  };
  const fixed = (tag: number, size: number, write: (view: DataView) => void) => {
    const out = new Uint8Array(1 + size);
    out[0] = tag;
    write(new DataView(out.buffer, 1));
    return out;
  };
  const { value } = header;
  switch (header.type) {
    case 'boolean':
      return Uint8Array.of(header.value ? 0 : 1);
    case 'byte':
      if (!Number.isInteger(value) || header.value < -128 || header.value > 127) bad('must be an integer from -128 to 127');
      return fixed(2, 1, (v) => v.setInt8(0, header.value));
    case 'short':
      if (!Number.isInteger(value) || header.value < -32768 || header.value > 32767) bad('must be an integer from -32768 to 32767');
      return fixed(3, 2, (v) => v.setInt16(0, header.value));
    case 'integer':
      if (!Number.isInteger(value) || header.value < -(2 ** 31) || header.value > 2 ** 31 - 1) bad('must be a 32-bit integer');
      return fixed(4, 4, (v) => v.setInt32(0, header.value));
    case 'long':
      if (typeof header.value !== 'bigint' || BigInt.asIntN(64, header.value) !== header.value) bad('must be a 64-bit bigint');
      return fixed(5, 8, (v) => v.setBigInt64(0, header.value));
    case 'binary':
    case 'string': {
      const bytes = header.type === 'binary' ? header.value : encodeUtf8(header.value);
      if (bytes.length > MAX_HEADER_VALUE_BYTES) bad(`is ${bytes.length} bytes long; at most ${MAX_HEADER_VALUE_BYTES} are allowed`);
      const out = new Uint8Array(3 + bytes.length);
      out[0] = header.type === 'binary' ? 6 : 7;
      new DataView(out.buffer).setUint16(1, bytes.length);
      out.set(bytes, 3);
      return out;
    }
    case 'timestamp': {
      const ms = header.value instanceof Date ? header.value.getTime() : Number.NaN;
      if (!Number.isFinite(ms)) bad('must be a valid Date');
      return fixed(8, 8, (v) => v.setBigInt64(0, BigInt(ms)));
    }
    case 'uuid': {
      if (typeof header.value !== 'string' || !UUID_PATTERN.test(header.value)) bad('must be a UUID such as 3bfdac5c-fe6c-4029-83bf-c1de7819f531');
      const digits = header.value.replace(/-/g, '');
      const out = new Uint8Array(17);
      out[0] = 9;
      for (let i = 0; i < 16; i++) out[1 + i] = Number.parseInt(digits.slice(2 * i, 2 * i + 2), 16);
      return out;
    }
    default:
      return bad(`has unknown type ${JSON.stringify((header as { type?: unknown }).type)}`);
  }
}

/**
 * Encodes one message, CRCs included. Used by tests and handy for a local server that speaks the
 * format. Header values that the spec forbids (a name over 255 bytes, a string over 32767 bytes)
 * throw `RangeError`.
 *
 * @example
 * ```ts
 * const bytes = encodeEventStreamMessage({
 *   headers: { ':message-type': { type: 'string', value: 'event' }, ':event-type': { type: 'string', value: 'SubscribeToShardEvent' } },
 *   payload: new TextEncoder().encode('{"Records":[]}'),
 * });
 * ```
 */
export function encodeEventStreamMessage(message: { headers?: EventStreamHeaders; payload?: Uint8Array }): Uint8Array {
  const parts: Uint8Array[] = [];
  let headersLength = 0;
  for (const name of Object.keys(message.headers ?? {})) {
    const nameBytes = encodeUtf8(name);
    if (nameBytes.length < 1 || nameBytes.length > 255) {
      throw new RangeError(`encodeEventStreamMessage: header name ${JSON.stringify(name)} must be 1 to 255 bytes of UTF-8`);
    }
    const value = encodeHeaderValue(name, message.headers![name]!);
    parts.push(Uint8Array.of(nameBytes.length), nameBytes, value);
    headersLength += 1 + nameBytes.length + value.length;
  }
  const payload = message.payload ?? new Uint8Array(0);
  const total = EVENT_STREAM_FRAMING_BYTES + headersLength + payload.length;
  if (total > 0xffffffff) throw new RangeError('encodeEventStreamMessage: the message exceeds 4 GiB');
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, total);
  view.setUint32(4, headersLength);
  view.setUint32(8, crc32(out.subarray(0, 8)));
  let at = PRELUDE_BYTES;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  out.set(payload, at);
  view.setUint32(total - CRC_BYTES, crc32(out.subarray(8, total - CRC_BYTES), view.getUint32(8)));
  return out;
}

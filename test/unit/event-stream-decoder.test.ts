import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_HEADERS_BYTES,
  DEFAULT_MAX_MESSAGE_BYTES,
  KinesisEventStreamError,
  createEventStreamDecoder,
  decodeEventStream,
  encodeEventStreamMessage,
  isKinesisEventStreamError,
  type EventStreamHeaders,
  type EventStreamMessage,
} from '../../src/event-stream/decoder.ts';
import { KinesisError, isKinesisError } from '../../src/errors.ts';
import { crc32 } from '../../src/internal/crc32.ts';
import { decodeUtf8, encodeUtf8 } from '../../src/internal/utf8.ts';
import { randomBytes, randomInt, seededRandom } from '../support/seeded-random.ts';

const str = (value: string) => ({ type: 'string', value }) as const;

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Builds a message by hand, independently of the encoder: prelude, CRCs and header bytes. */
function handBuilt(headerBytes: number[], payload: number[]): Uint8Array {
  const total = 16 + headerBytes.length + payload.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, total);
  view.setUint32(4, headerBytes.length);
  view.setUint32(8, crc32(out.subarray(0, 8)));
  out.set(headerBytes, 12);
  out.set(payload, 12 + headerBytes.length);
  view.setUint32(total - 4, crc32(out.subarray(0, total - 4)));
  return out;
}

const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));
const name = (text: string) => [text.length, ...ascii(text)];

function decodeAll(chunks: readonly Uint8Array[]): EventStreamMessage[] {
  const decoder = createEventStreamDecoder();
  const out: EventStreamMessage[] = [];
  for (const chunk of chunks) out.push(...decoder.push(chunk));
  decoder.end();
  return out;
}

function catchError(fn: () => unknown): KinesisEventStreamError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(KinesisEventStreamError);
    return error as KinesisEventStreamError;
  }
  throw new Error('expected an error');
}

function streamOf(chunks: readonly Uint8Array[], onCancel?: (reason: unknown) => void): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]!);
      else controller.close();
    },
    cancel: onCancel,
  });
}

// A SubscribeToShard event as kinesis-local 0.6.2 sends it (headers and payload captured from its
// plain port; see test/integration/subscribe-to-shard.test.ts).
const KINESIS_EVENT_HEADERS: EventStreamHeaders = {
  ':message-type': str('event'),
  ':event-type': str('SubscribeToShardEvent'),
  ':content-type': str('application/json'),
};
const KINESIS_EVENT_PAYLOAD =
  '{"Records":[{"ApproximateArrivalTimestamp":1796084876.181,"Data":"aGVsbG8=","EncryptionType":"NONE","PartitionKey":"a","SequenceNumber":"49680721805788587135472011504334769005393683962698661890"}],"ContinuationSequenceNumber":"49680721805788587135472011504334769005393683962698661890","MillisBehindLatest":0,"ChildShards":null}';

// Nine messages of assorted shapes: empty, headers only, payload only, a large one.
const random = seededRandom(0xe5e5);
const multi = [
  encodeEventStreamMessage({}),
  encodeEventStreamMessage({ headers: KINESIS_EVENT_HEADERS, payload: encodeUtf8(KINESIS_EVENT_PAYLOAD) }),
  encodeEventStreamMessage({ headers: { ':message-type': str('event'), ':event-type': str('initial-response') }, payload: encodeUtf8('{}') }),
  encodeEventStreamMessage({ payload: randomBytes(random, 1) }),
  encodeEventStreamMessage({ headers: { u: { type: 'uuid', value: '3bfdac5c-fe6c-4029-83bf-c1de7819f531' } } }),
  encodeEventStreamMessage({ payload: randomBytes(random, 5000) }),
  encodeEventStreamMessage({ headers: { l: { type: 'long', value: -1n }, ts: { type: 'timestamp', value: new Date(1) } }, payload: randomBytes(random, 17) }),
  encodeEventStreamMessage({ headers: { ':message-type': str('exception'), ':exception-type': str('ResourceInUseException') }, payload: encodeUtf8('{"message":"busy"}') }),
  encodeEventStreamMessage({ payload: randomBytes(random, 300) }),
];
const whole = concat(multi);
// Compared by headers, length and CRC32 of the payload: spreading 6 KB into arrays for each of
// thousands of cuts would cost more than the decoding under test.
const plain = (messages: EventStreamMessage[]) =>
  messages.map((m) => ({ headers: { ...m.headers }, length: m.payload.length, crc: crc32(m.payload) }));
const expected = plain(decodeAll(multi));

describe('createEventStreamDecoder', () => {
  // Header layouts from the Smithy event stream spec (https://smithy.io/2.0/aws/amazon-eventstream.html).
  it.each([
    ['bool true', [...name('t'), 0], { t: { type: 'boolean', value: true } }],
    ['bool false', [...name('f'), 1], { f: { type: 'boolean', value: false } }],
    ['byte', [...name('b'), 2, 0xff], { b: { type: 'byte', value: -1 } }],
    ['short', [...name('s'), 3, 0x80, 0x00], { s: { type: 'short', value: -32768 } }],
    ['integer', [...name('i'), 4, 0x7f, 0xff, 0xff, 0xff], { i: { type: 'integer', value: 2147483647 } }],
    ['long', [...name('l'), 5, 0x80, 0, 0, 0, 0, 0, 0, 1], { l: { type: 'long', value: -(2n ** 63n) + 1n } }],
    ['byte array', [...name('ba'), 6, 0, 3, 1, 2, 3], { ba: { type: 'binary', value: Uint8Array.of(1, 2, 3) } }],
    ['string', [...name('st'), 7, 0, 2, ...ascii('hi')], { st: { type: 'string', value: 'hi' } }],
    ['empty string', [...name('e'), 7, 0, 0], { e: { type: 'string', value: '' } }],
    [
      'timestamp',
      [...name('ts'), 8, 0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00],
      { ts: { type: 'timestamp', value: new Date(0x018bcfe56800) } },
    ],
    [
      'uuid',
      [...name('u'), 9, 0x3b, 0xfd, 0xac, 0x5c, 0xfe, 0x6c, 0x40, 0x29, 0x83, 0xbf, 0xc1, 0xde, 0x78, 0x19, 0xf5, 0x31],
      { u: { type: 'uuid', value: '3bfdac5c-fe6c-4029-83bf-c1de7819f531' } },
    ],
    [
      'several',
      [...name(':message-type'), 7, 0, 5, ...ascii('event'), ...name('n'), 2, 7],
      { ':message-type': { type: 'string', value: 'event' }, n: { type: 'byte', value: 7 } },
    ],
    ['no headers', [], {}],
  ])('decodes a %s header', (_label, headerBytes, expected) => {
    const bytes = handBuilt(headerBytes, ascii('{}'));
    const [message] = decodeAll([bytes]);
    expect({ ...message!.headers }).toEqual(expected);
    expect(decodeUtf8(message!.payload)).toBe('{}');
  });

  it.each([
    ['every header type', {
      t: { type: 'boolean', value: true },
      f: { type: 'boolean', value: false },
      b: { type: 'byte', value: 127 },
      s: { type: 'short', value: 1234 },
      i: { type: 'integer', value: -5 },
      l: { type: 'long', value: 2n ** 62n },
      ba: { type: 'binary', value: Uint8Array.of(0, 255) },
      st: { type: 'string', value: 'żółw 🐢' },
      ts: { type: 'timestamp', value: new Date('2024-05-06T07:08:09.123Z') },
      u: { type: 'uuid', value: '00112233-4455-6677-8899-aabbccddeeff' },
    }],
    ['Kinesis event headers', KINESIS_EVENT_HEADERS],
  ] as [string, EventStreamHeaders][])('round-trips %s through the encoder', (_label, headers) => {
    const payload = encodeUtf8(KINESIS_EVENT_PAYLOAD);
    const [message] = decodeAll([encodeEventStreamMessage({ headers, payload })]);
    expect({ ...message!.headers }).toEqual(headers);
    expect(decodeUtf8(message!.payload)).toBe(KINESIS_EVENT_PAYLOAD);
  });

  it('decodes a message with no headers and an empty payload (16 bytes)', () => {
    const bytes = encodeEventStreamMessage({});
    expect(bytes.length).toBe(16);
    const [message] = decodeAll([bytes]);
    expect(Object.keys(message!.headers)).toEqual([]);
    expect(message!.payload.length).toBe(0);
  });

  it('keeps a header named __proto__ as data', () => {
    const [message] = decodeAll([handBuilt([...name('__proto__'), 0], [])]);
    expect(message!.headers['__proto__']).toEqual({ type: 'boolean', value: true });
  });

  it('decodes a message of exactly the maximum size, with headers of exactly the maximum size', () => {
    // A string header with a 1-byte name takes 5 bytes besides its value: 3 of 32767 and one of
    // 32751 make exactly 128 KiB.
    const headers: EventStreamHeaders = { a: str('a'.repeat(32_767)), b: str('b'.repeat(32_767)), c: str('c'.repeat(32_767)), d: str('d'.repeat(32_751)) };
    const payload = new Uint8Array(DEFAULT_MAX_MESSAGE_BYTES - 16 - DEFAULT_MAX_HEADERS_BYTES).fill(7);
    const bytes = encodeEventStreamMessage({ headers, payload });
    expect(bytes.length).toBe(DEFAULT_MAX_MESSAGE_BYTES);
    expect(new DataView(bytes.buffer).getUint32(4)).toBe(DEFAULT_MAX_HEADERS_BYTES);
    const [message] = decodeAll([bytes.subarray(0, 100_000), bytes.subarray(100_000)]);
    expect(message!.payload.length).toBe(payload.length);
    expect(message!.headers.d).toEqual(headers.d);
  });

  it('refuses a message over the maximum size from its prelude, before buffering it', () => {
    const prelude = new Uint8Array(12);
    const view = new DataView(prelude.buffer);
    view.setUint32(0, DEFAULT_MAX_MESSAGE_BYTES + 1);
    view.setUint32(4, 0);
    view.setUint32(8, crc32(prelude.subarray(0, 8)));
    const error = catchError(() => createEventStreamDecoder().push(prelude));
    expect(error.fault).toBe('too-large');
    expect(error.retryable).toBe(false);
  });

  it('refuses headers over the maximum size, and honours raised limits', () => {
    const big = encodeEventStreamMessage({ headers: { a: str('x'.repeat(30_000)), b: str('y'.repeat(30_000)) }, payload: new Uint8Array(10) });
    expect(catchError(() => createEventStreamDecoder({ maxHeadersBytes: 50_000 }).push(big)).fault).toBe('too-large');
    expect(catchError(() => createEventStreamDecoder({ maxMessageBytes: 1000 }).push(big)).fault).toBe('too-large');
    expect(createEventStreamDecoder({ maxHeadersBytes: 70_000 }).push(big)).toHaveLength(1);
  });

  it('decodes several messages from one chunk, and returns payload views without copying', () => {
    const messages = [0, 1, 2].map((i) => encodeEventStreamMessage({ headers: { i: { type: 'integer', value: i } }, payload: Uint8Array.of(i, i) }));
    const stream = concat(messages);
    const decoded = createEventStreamDecoder().push(stream);
    expect(decoded.map((m) => m.headers.i!.value)).toEqual([0, 1, 2]);
    expect(decoded[2]!.payload.buffer).toBe(stream.buffer);
  });

  it('decodes the same messages whichever single byte offset the stream is cut at', () => {
    for (let cut = 0; cut <= whole.length; cut++) {
      expect(plain(decodeAll([whole.subarray(0, cut), whole.subarray(cut)])), `cut at ${cut}`).toEqual(expected);
    }
  });

  it('decodes the same messages when every chunk is one byte', () => {
    expect(plain(decodeAll(Array.from(whole, (b) => Uint8Array.of(b))))).toEqual(expected);
  });

  it('decodes the same messages under 200 seeded random chunkings', () => {
    const rnd = seededRandom(42);
    for (let round = 0; round < 200; round++) {
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < whole.length; ) {
        const size = rnd() < 0.3 ? randomInt(rnd, 0, 3) : randomInt(rnd, 1, 800);
        chunks.push(whole.subarray(at, at + size));
        at += size;
      }
      expect(plain(decodeAll(chunks)), `round ${round}`).toEqual(expected);
    }
  });

  it('does linear work on a stream cut into 1-byte chunks (no re-copying of held bytes)', () => {
    const big = encodeEventStreamMessage({ payload: new Uint8Array(500_000).fill(3) });
    const decoder = createEventStreamDecoder();
    const started = performance.now();
    let count = 0;
    for (let i = 0; i < big.length; i++) count += decoder.push(big.subarray(i, i + 1)).length;
    decoder.end();
    expect(count).toBe(1);
    // Quadratic copying of 500 KB would take minutes; linear work takes well under a few seconds.
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it.each([
    ['the first prelude byte', 0, 'prelude-crc'],
    ['a prelude length byte', 5, 'prelude-crc'],
    ['the prelude CRC', 9, 'prelude-crc'],
    ['a header byte', 14, 'message-crc'],
    ['a payload byte', -6, 'message-crc'],
    ['the message CRC', -1, 'message-crc'],
  ] as const)('refuses a message with a flipped bit in %s', (_label, index, fault) => {
    const bytes = encodeEventStreamMessage({ headers: KINESIS_EVENT_HEADERS, payload: encodeUtf8('{"Records":[]}') }).slice();
    const at = index < 0 ? bytes.length + index : index;
    bytes[at]! ^= 0x10;
    const error = catchError(() => decodeAll([bytes]));
    expect(error.fault).toBe(fault);
    expect(error.retryable).toBe(true);
    expect(error.offset).toBe(0);
  });

  it('reports the body offset of the corrupt message', () => {
    const second = encodeEventStreamMessage({ payload: Uint8Array.of(1, 2, 3) }).slice();
    second[second.length - 2]! ^= 1;
    const error = catchError(() => decodeAll([multi[1]!, second]));
    expect(error.offset).toBe(multi[1]!.length);
    expect(error.message).toMatch(/message-crc.*at byte \d+: the message states CRC32 0x[0-9a-f]{8} but its bytes give 0x[0-9a-f]{8}/);
  });

  it.each([
    ['mid-prelude', 7, /7 bytes into a 12-byte prelude/],
    ['right after the prelude', 12, /12 bytes into a message of/],
    ['mid-headers', 20, /20 bytes into a message of/],
    ['mid-payload', -10, /bytes into a message of/],
    ['one byte short', -1, /bytes into a message of/],
  ] as const)('refuses a stream truncated %s', (_label, cut, detail) => {
    const bytes = encodeEventStreamMessage({ headers: KINESIS_EVENT_HEADERS, payload: encodeUtf8(KINESIS_EVENT_PAYLOAD) });
    const error = catchError(() => decodeAll([multi[0]!, bytes.subarray(0, cut < 0 ? bytes.length + cut : cut)]));
    expect(error.fault).toBe('truncated');
    expect(error.offset).toBe(multi[0]!.length);
    expect(error.message).toMatch(detail);
  });

  it.each([
    ['an unknown value type', [...name('x'), 10], /unknown value type 10/],
    ['a value past the header section', [...name('x'), 7, 0, 9, 1, 2], /runs past the end/],
    ['a name past the header section', [5, 0x61], /runs past the end/],
    ['an empty name', [0, 0], /empty name/],
    ['a truncated long', [...name('x'), 5, 1, 2, 3], /runs past the end/],
  ])('refuses a header section with %s', (_label, headerBytes, detail) => {
    const error = catchError(() => decodeAll([handBuilt(headerBytes, [])]));
    expect(error.fault).toBe('bad-headers');
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(detail);
  });

  it.each([
    ['shorter than its framing', 15, 0],
    ['with more header bytes than fit', 20, 5],
  ])('refuses a prelude announcing a message %s', (_label, total, headers) => {
    const prelude = new Uint8Array(12);
    const view = new DataView(prelude.buffer);
    view.setUint32(0, total);
    view.setUint32(4, headers);
    view.setUint32(8, crc32(prelude.subarray(0, 8)));
    expect(catchError(() => createEventStreamDecoder().push(prelude)).fault).toBe('bad-length');
  });

  it('is a KinesisError, named in messages by operation, with a guard that survives two copies', () => {
    const error = catchError(() => createEventStreamDecoder({ operation: 'SubscribeToShard' }).push(new Uint8Array(12).fill(9)));
    expect(error).toBeInstanceOf(KinesisError);
    expect(isKinesisError(error)).toBe(true);
    expect(error.operation).toBe('SubscribeToShard');
    expect(error.message).toMatch(/^SubscribeToShard failed: event stream is unreadable \(prelude-crc\) at byte 0/);
    expect(isKinesisEventStreamError(error)).toBe(true);
    expect(isKinesisEventStreamError({ name: 'KinesisEventStreamError' })).toBe(true);
    expect(isKinesisEventStreamError(new Error('x'))).toBe(false);
  });
});

describe('decodeEventStream', () => {
  it('yields the messages of a ReadableStream', async () => {
    const out: EventStreamMessage[] = [];
    for await (const message of decodeEventStream(streamOf([whole.subarray(0, 30), whole.subarray(30)]))) out.push(message);
    expect(plain(out)).toEqual(expected);
  });

  it('throws on a truncated body instead of stopping', async () => {
    const iterate = async () => {
      for await (const _ of decodeEventStream(streamOf([whole.subarray(0, whole.length - 3)]))) void _;
    };
    await expect(iterate()).rejects.toMatchObject({ name: 'KinesisEventStreamError', fault: 'truncated' });
  });

  it('cancels the body when the caller breaks out', async () => {
    let cancelled = false;
    const body = streamOf(multi, () => (cancelled = true));
    for await (const _ of decodeEventStream(body)) break;
    expect(cancelled).toBe(true);
    expect(body.locked).toBe(false);
  });

  it('cancels a pending read when the signal aborts', async () => {
    let cancelReason: unknown;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(multi[0]!);
      },
      cancel(reason) {
        cancelReason = reason;
      },
    });
    const controller = new AbortController();
    const seen: EventStreamMessage[] = [];
    const done = (async () => {
      for await (const message of decodeEventStream(body, { signal: controller.signal })) {
        seen.push(message);
        setTimeout(() => controller.abort(new Error('stop')), 10);
      }
    })();
    await expect(done).rejects.toThrow('stop');
    expect(seen).toHaveLength(1);
    expect(cancelReason).toBeDefined();
  });
});

describe('encodeEventStreamMessage', () => {
  it.each([
    ['a name over 255 bytes', { ['n'.repeat(256)]: str('x') }, /1 to 255 bytes/],
    ['an empty name', { '': str('x') }, /1 to 255 bytes/],
    ['a string over 32767 bytes', { s: str('x'.repeat(32_768)) }, /at most 32767/],
    ['a byte out of range', { b: { type: 'byte', value: 128 } }, /-128 to 127/],
    ['a long out of range', { l: { type: 'long', value: 2n ** 63n } }, /64-bit/],
    ['an invalid date', { t: { type: 'timestamp', value: new Date(Number.NaN) } }, /valid Date/],
    ['a malformed uuid', { u: { type: 'uuid', value: 'not-a-uuid' } }, /UUID/],
  ] as [string, EventStreamHeaders, RegExp][])('refuses %s', (_label, headers, message) => {
    expect(() => encodeEventStreamMessage({ headers })).toThrow(message);
  });

  it('writes the bytes laid out by hand', () => {
    const bytes = encodeEventStreamMessage({ headers: { t: { type: 'boolean', value: true } }, payload: Uint8Array.of(0x7b, 0x7d) });
    expect([...bytes]).toEqual([...handBuilt([...name('t'), 0], ascii('{}'))]);
  });
});

// Cross-check with the AWS SDK's codec, which ships with @aws-sdk/client-kinesis as part of
// @smithy/core (formerly @smithy/eventstream-codec). Skipped when it is not installed.
interface SmithyCodec {
  encode(message: { headers: Record<string, unknown>; body: Uint8Array }): Uint8Array;
  decode(message: Uint8Array): { headers: Record<string, { type: string; value: unknown }>; body: Uint8Array };
}
type SmithyModule = {
  EventStreamCodec: new (toUtf8: (b: Uint8Array) => string, fromUtf8: (s: string) => Uint8Array) => SmithyCodec;
  Int64: { fromNumber(n: number): unknown };
};
const smithyId = '@smithy/core/event-streams';
const smithy = (await import(/* @vite-ignore */ smithyId).catch(() => undefined)) as SmithyModule | undefined;

describe.skipIf(!smithy)('cross-check with @smithy/core event-streams', () => {
  const codec = () => new smithy!.EventStreamCodec(decodeUtf8, encodeUtf8);
  const smithyHeaders = () => ({
    ':message-type': { type: 'string', value: 'event' },
    t: { type: 'boolean', value: true },
    f: { type: 'boolean', value: false },
    b: { type: 'byte', value: -3 },
    s: { type: 'short', value: 300 },
    i: { type: 'integer', value: -70000 },
    l: { type: 'long', value: smithy!.Int64.fromNumber(-1234567890123) },
    ba: { type: 'binary', value: Uint8Array.of(9, 8, 7) },
    ts: { type: 'timestamp', value: new Date('2020-01-02T03:04:05.678Z') },
    u: { type: 'uuid', value: 'a1b2c3d4-e5f6-4789-8abc-def012345678' },
  });
  const ours: EventStreamHeaders = {
    ':message-type': str('event'),
    t: { type: 'boolean', value: true },
    f: { type: 'boolean', value: false },
    b: { type: 'byte', value: -3 },
    s: { type: 'short', value: 300 },
    i: { type: 'integer', value: -70000 },
    l: { type: 'long', value: -1234567890123n },
    ba: { type: 'binary', value: Uint8Array.of(9, 8, 7) },
    ts: { type: 'timestamp', value: new Date('2020-01-02T03:04:05.678Z') },
    u: { type: 'uuid', value: 'a1b2c3d4-e5f6-4789-8abc-def012345678' },
  };

  it('decodes what the SDK encodes', () => {
    const bytes = codec().encode({ headers: smithyHeaders(), body: encodeUtf8(KINESIS_EVENT_PAYLOAD) });
    const [message] = decodeAll([bytes]);
    expect({ ...message!.headers }).toEqual(ours);
    expect(decodeUtf8(message!.payload)).toBe(KINESIS_EVENT_PAYLOAD);
  });

  it('encodes byte for byte what the SDK encodes, and the SDK decodes it', () => {
    const payload = encodeUtf8(KINESIS_EVENT_PAYLOAD);
    const bytes = encodeEventStreamMessage({ headers: ours, payload });
    expect([...bytes]).toEqual([...codec().encode({ headers: smithyHeaders(), body: payload })]);
    const decoded = codec().decode(bytes);
    expect(decoded.headers[':message-type']!.value).toBe('event');
    expect(decoded.headers.u!.value).toBe('a1b2c3d4-e5f6-4789-8abc-def012345678');
    expect(decodeUtf8(decoded.body)).toBe(KINESIS_EVENT_PAYLOAD);
  });
});

/**
 * The producer: buffers records, cuts them into PutRecords requests, resends exactly the entries
 * that failed, adapts its rate per shard, and settles every `put()` exactly once.
 *
 * Retry layering. Each request goes through the client's own retry ladder (throttling, 5xx,
 * network errors, timeouts, clock skew, expired credentials: `client.retry.maxAttempts`, 3 by
 * default, and the client's retry quota). What the client gives up on comes back here: a
 * retryable failure puts the records back in the queue behind a full-jitter backoff of their
 * bucket (or of the whole stream), until the record's time to live; the client's attempts do not
 * multiply with ours because ours are bounded by time, not by a count. A 200 answer with failed
 * entries is never retried by the client (it is a success to it); here only the failed entries
 * go out again. For a producer-only client, `retry: { maxAttempts: 2 }` keeps one request's worst
 * case short while the producer's backoff takes over.
 *
 * Timers. There is at most one timer, for the next moment something can happen (a linger ending,
 * a backoff ending, a record expiring), and none once the buffer is empty: a Cloudflare Worker can
 * `ctx.waitUntil(producer.flush())` and leave nothing behind.
 *
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html
 * https://docs.aws.amazon.com/streams/latest/dev/developing-producers-with-kpl.html
 */
import type { KinesisClient } from '../client.ts';
import {
  classifyFault,
  isKinesisServiceError,
  isKinesisValidationError,
  KinesisServiceError,
  KinesisValidationError,
  type ValidationIssue,
} from '../errors.ts';
import { partitionKeyHashHigh } from '../internal/hash-key.ts';
import { utf8ByteLength } from '../internal/utf8.ts';
import { checkRecordBytes } from '../record-size.ts';
import { backoffDelay } from '../retry.ts';
import { checkPutRecordsEntry, streamIdentityIssues } from '../put-validation.ts';
import type { PutRecordsOutput } from '../shapes.ts';
import { buildBatch, entryCount, type Aggregate, type Batch } from './batch.ts';
import { DataCopier } from './data-copy.ts';
import { KinesisProducerError, type ProducerFailureReason } from './errors.ts';
import { KeyCache, type KnownKey } from './key-cache.ts';
import { resolveProducerOptions, type ProducerOptions, type ProducerRetryEvent, type ResolvedProducerOptions } from './options.ts';
import { RecordQueue, type Bucket } from './queue.ts';
import { AdaptiveRateLimiter } from './rate-limiter.ts';
import { explicitHashKeyOf, type BufferedRecord, type FlushTicket, type ProducerRecord, type PutResolve, type PutResult, type RecordExtra } from './record.ts';
import { bodyFrame, sendBatch, type BodyFrame } from './request.ts';
import { recordHashKey, ShardMap } from './shard-map.ts';

/** What one `flush()` or `close()` saw settle. */
export interface FlushResult {
  /** Records put before the flush that were stored. */
  stored: number;
  /** Records put before the flush that failed (each also rejected its `put()` / reached `onFailure`). */
  failed: number;
}

/** Counters and gauges of a producer, for metrics and tests. */
export interface ProducerStats {
  /** Records held: queued, waiting for a retry, or in flight (bounded by `maxBufferedRecords`). */
  bufferedRecords: number;
  /** Their bytes (partition keys + data; bounded by `maxBufferedBytes`). */
  bufferedBytes: number;
  /** Of those, records in a request right now. */
  inFlightRecords: number;
  inFlightRequests: number;
  /** Records held by `whenFull: 'wait'` until there is room; not part of the buffer. */
  waitingRecords: number;
  /** Records accepted by `put()` / `send()` (refused ones are not counted). */
  accepted: number;
  stored: number;
  failed: number;
  failedByReason: Readonly<Record<ProducerFailureReason, number>>;
  /** Times a record went back to the queue. */
  retried: number;
  /** PutRecords requests sent (the client's own retries of one request are not counted). */
  requests: number;
  /** Requests whose answer reported throttled entries, or that failed throttled. */
  throttledRequests: number;
  /** Open shards known from ListShards, or undefined while shards are not predicted. */
  shards: number | undefined;
}

/** A producer; see {@link createProducer}. */
export interface Producer {
  /**
   * Buffers a record; the promise settles exactly once: with where the record was stored, or
   * with a {@link KinesisProducerError} whose `reason` says why not. A record that breaks the
   * PutRecords rules or can never fit is refused at once (a rejected promise, nothing buffered).
   */
  put(record: ProducerRecord): Promise<PutResult>;
  /**
   * Fire and forget: like `put()`, but failures go only to `onFailure` (and the stats), so no
   * promise can be left rejected and unhandled.
   */
  send(record: ProducerRecord): void;
  /**
   * Sends everything buffered now, without lingering, and resolves (never rejects) once every
   * record put before the call has settled.
   */
  flush(): Promise<FlushResult>;
  /** Refuses new records (reason `closed`), then flushes. Records already put are still delivered. */
  close(): Promise<FlushResult>;
  /**
   * Whether the buffer has room: no record is waiting, and both the record and the byte limit are
   * not reached yet. A record larger than the bytes left still waits (or is refused with
   * `buffer-full`), so a `send()` loop may see one record wait at a time.
   */
  readonly hasCapacity: boolean;
  /** Resolves when {@link hasCapacity} is true: backpressure for loops that use `send()`. */
  waitForCapacity(): Promise<void>;
  readonly isClosed: boolean;
  stats(): ProducerStats;
}

/** The bucket of records whose shard is not known (no shard map yet, or prediction off). */
const STREAM_BUCKET = '(stream)';
/** Partition keys remembered per generation of the key cache (at most twice this many held). */
const KNOWN_KEYS = 2048;
const EMPTY = new Uint8Array(0);
/**
 * Records wait this long (at most) for the first shard listing: without shards the first burst
 * could not be limited per shard, and aggregation could pack only records with the same key.
 */
const FIRST_SHARD_MAP_WAIT_MS = 1_000;
/** When nothing else would wake a stalled buffer, look again this soon (a safety net, not a poll). */
const STALL_RECHECK_MS = 50;
/** The code a user record goes again with when its aggregate landed on a shard not known to hold it (the KPL's "Wrong Shard"). */
const WRONG_SHARD = 'WrongShard';

const NO_FAILURES: Record<ProducerFailureReason, number> = {
  invalid: 0,
  'too-large': 0,
  'buffer-full': 0,
  closed: 0,
  expired: 0,
  rejected: 0,
  'retries-exhausted': 0,
};

/** The resolve function of the promise {@link captureResolve} was last the executor of. */
let capturedResolve: PutResolve | undefined;

/**
 * A Promise executor that keeps the resolve function for the caller (it runs synchronously).
 * The reject function is not kept: see {@link rejectThrough}.
 */
function captureResolve(resolve: PutResolve): void {
  capturedResolve = resolve;
}

/**
 * Rejects a `put()` promise through its resolve function: a promise resolved with a thenable that
 * rejects, rejects with the same reason (one microtask later; no rejected promise is made, so none
 * is ever briefly unhandled). Why not keep the reject function: every buffered record would hold
 * it, a field and a function object (~70 B without pointer compression) that each young-generation
 * GC copies while the record waits; failures are rare and pay this small object instead.
 */
function rejectThrough(resolve: PutResolve, error: unknown): void {
  resolve({ then: (_onFulfilled: unknown, onRejected: (reason: unknown) => void) => onRejected(error) } as PromiseLike<never>);
}

/**
 * The UTF-8 length of a partition key of 1 to 256 ASCII characters, else -1. Such a key passes
 * every PutRecords rule for a partition key (1 to 256 characters, well-formed UTF-16: see
 * `checkPartitionKey` in put-validation.ts), so the full check can be skipped; keys come this way
 * far more often than they repeat within the key cache.
 */
function asciiKeyBytes(key: string): number {
  const length = key.length;
  if (length === 0 || length > 256) return -1;
  for (let i = 0; i < length; i++) if (key.charCodeAt(i) >= 0x80) return -1;
  return length;
}

/** A record refused by the PutRecords rules (`cause`): `too-large` when the size rule broke, else `invalid`. */
function refused(record: ProducerRecord, cause: unknown): KinesisProducerError {
  const tooLarge = isKinesisValidationError(cause) && cause.issues.some((issue) => issue.path === 'Data');
  return new KinesisProducerError({
    reason: tooLarge ? 'too-large' : 'invalid',
    record,
    detail: cause instanceof Error ? cause.message : String(cause),
    cause,
  });
}

/**
 * The open shard of a record: from the top 32 bits of its hash key when they decide it (almost
 * always), else from the whole key (an explicit hash key, or a key on a range boundary).
 * `hashHigh` is those bits for a partition key, undefined for an explicit hash key.
 */
function shardOf(map: ShardMap, record: BufferedRecord, hashHigh: number | undefined): string | undefined {
  if (hashHigh !== undefined) {
    const shardId = map.shardForHigh(hashHigh);
    if (shardId !== undefined) return shardId;
  }
  return map.shardFor(recordHashKey({ partitionKey: record.partitionKey, explicitHashKey: explicitHashKeyOf(record) }));
}

/**
 * Creates a producer that batches records into PutRecords requests for one stream.
 *
 * Delivery is at least once: a record whose request's outcome is unknown (a dropped connection, a
 * timeout, an answer that does not match the request) is sent again and may be stored twice, so
 * give records an id and deduplicate downstream. Every `put()` settles exactly once.
 *
 * In a Cloudflare Worker, create the producer per request (or flush it in every request) and hand
 * the flush to the runtime: `ctx.waitUntil(producer.flush())`.
 *
 * @example
 * ```ts
 * import { createKinesisClient, createProducer } from 'kinesis-edge';
 * const client = createKinesisClient({ region: 'us-east-1', credentials });
 * const producer = createProducer(client, { streamName: 'clicks', lingerMs: 50 });
 * const { shardId, sequenceNumber } = await producer.put({ partitionKey: 'user-1', data: JSON.stringify(event) });
 * producer.send({ data: 'fire and forget' }); // failures go to options.onFailure
 * await producer.close();
 * ```
 */
export function createProducer(client: KinesisClient, options: ProducerOptions): Producer {
  if (options.streamName === undefined && options.streamARN === undefined) {
    throw new TypeError('createProducer: streamName or streamARN is required');
  }
  const stream: { StreamName?: string; StreamARN?: string } = {};
  if (options.streamName !== undefined) stream.StreamName = options.streamName;
  if (options.streamARN !== undefined) stream.StreamARN = options.streamARN;
  // Refuse a malformed stream name or ARN now, with the same rules PutRecords applies.
  const streamIssues = streamIdentityIssues(stream);
  if (streamIssues.length) throw new KinesisValidationError('PutRecords', 'input', streamIssues);
  const config = resolveProducerOptions(client, options);
  return new KinesisProducer(client, stream, config, options).facade;
}

class KinesisProducer {
  readonly facade: Producer;
  readonly #client: KinesisClient;
  /** What surrounds the records in each request body: `{"Records":[` … `],"StreamName":…}`. */
  readonly #frame: BodyFrame;
  readonly #config: ResolvedProducerOptions;
  readonly #hooks: Pick<ProducerOptions, 'onRetry' | 'onFailure' | 'onShardMapError' | 'partitionKey'>;
  readonly #shardMap: ShardMap | undefined;
  readonly #buckets = new Map<string, Bucket>();
  #bucketOrder: Bucket[] = [];
  #roundRobin = 0;
  /** Whole-stream pause after a failed request, and its consecutive failures. */
  #gateUntil = 0;
  #gateFailures = 0;
  /** Partition keys with records in flight (per-key ordering). */
  readonly #busyKeys = new Map<string, number>();
  /** Records held by `whenFull: 'wait'`, in put order. */
  #waiting: BufferedRecord[] = [];
  #waitingHead = 0;
  #capacityWaiters: (() => void)[] = [];
  #seq = 0;
  /** Partition keys seen recently (validated, their UTF-8 length and hash key). */
  readonly #keys = new KeyCache(KNOWN_KEYS);
  /** Where the copies of records' data go. */
  readonly #copier = new DataCopier();
  #bufferedRecords = 0;
  #bufferedBytes = 0;
  #inFlightRecords = 0;
  #inFlightRequests = 0;
  #flushing = 0;
  #closed = false;
  #pumpQueued = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  /** The latest time seen, from `now()` or from a timer that fired (see {@link #clock}). */
  #lastNow = Number.NEGATIVE_INFINITY;
  readonly #stats = {
    accepted: 0,
    stored: 0,
    failed: 0,
    failedByReason: { ...NO_FAILURES },
    retried: 0,
    requests: 0,
    throttledRequests: 0,
  };

  constructor(
    client: KinesisClient,
    stream: { StreamName?: string; StreamARN?: string },
    config: ResolvedProducerOptions,
    options: ProducerOptions,
  ) {
    this.#client = client;
    this.#frame = bodyFrame(stream);
    this.#config = config;
    this.#hooks = {
      onRetry: options.onRetry,
      onFailure: options.onFailure,
      onShardMapError: options.onShardMapError,
      partitionKey: options.partitionKey,
    };
    this.#shardMap = config.predictShards
      ? new ShardMap({
          client,
          stream,
          now: () => this.#clock(),
          onLoaded: () => this.#rebucket(),
          onError: (error, disabled) => {
            this.#callHook(() => this.#hooks.onShardMapError?.(error, disabled));
            this.#schedulePump();
          },
        })
      : undefined;
    const self = this;
    this.facade = {
      put: (record) => self.#put(record),
      send: (record) => self.#send(record),
      // Neither leaves a request or timer behind once it resolves (a Worker's ctx.waitUntil, a
      // Node process that should exit): flush() also waits for a shard listing in progress, which
      // a long-lived producer keeps; close() aborts it, since no record is left to use it.
      flush: () =>
        self.#flush().then((result) => {
          const listing = self.#shardMap?.idle();
          return listing === undefined ? result : listing.then(() => result);
        }),
      close: () => {
        self.#closed = true;
        return self.#flush().then((result) => {
          self.#shardMap?.stop();
          return result;
        });
      },
      get hasCapacity() {
        return self.#hasCapacity();
      },
      waitForCapacity: () => self.#waitForCapacity(),
      get isClosed() {
        return self.#closed;
      },
      stats: () => self.#snapshot(),
    };
  }

  // ---- accepting records -------------------------------------------------------------------------

  #put(record: ProducerRecord): Promise<PutResult> {
    const prepared = this.#prepare(record);
    if (prepared instanceof KinesisProducerError) {
      this.#report(prepared);
      return Promise.reject(prepared);
    }
    // A shared executor, not a closure per put(): it only hands over the resolve function.
    const promise = new Promise<PutResult>(captureResolve);
    prepared.resolve = capturedResolve;
    capturedResolve = undefined;
    try {
      this.#accept(prepared);
    } catch (error) {
      // As a throw inside an executor would: the promise rejects (unless settled), put() does not throw.
      const resolve = prepared.resolve;
      prepared.resolve = undefined;
      if (resolve !== undefined) rejectThrough(resolve, error);
    }
    return promise;
  }

  #send(record: ProducerRecord): void {
    const prepared = this.#prepare(record);
    if (prepared instanceof KinesisProducerError) this.#report(prepared);
    else this.#accept(prepared);
  }

  /** Validates and copies a record, or says why it is refused. Nothing is buffered here. */
  #prepare(record: ProducerRecord): BufferedRecord | KinesisProducerError {
    if (this.#closed) return new KinesisProducerError({ reason: 'closed', record });
    if (typeof record !== 'object' || record === null) {
      return new KinesisProducerError({ reason: 'invalid', record, detail: 'a record must be an object with `data`' });
    }
    const raw = record.data;
    // The data is copied (strings encoded) once the record passes: the caller may reuse its buffer.
    let dataBytes: number;
    if (typeof raw === 'string') dataBytes = utf8ByteLength(raw);
    else if (raw instanceof Uint8Array) dataBytes = raw.length;
    else return new KinesisProducerError({ reason: 'invalid', record, detail: 'data must be a Uint8Array or a string' });

    let partitionKey = record.partitionKey;
    try {
      partitionKey ??= this.#hooks.partitionKey?.(record) ?? this.#randomKey();
    } catch (cause) {
      return new KinesisProducerError({ reason: 'invalid', record, detail: 'the partitionKey option threw', cause });
    }
    const explicitHashKey = record.explicitHashKey;
    // Without an explicitHashKey the entry rules depend on the partition key alone. A short ASCII
    // key passes them and its UTF-8 length is its length (see asciiKeyBytes): seeing that costs
    // less than a cache lookup, so only other keys go through the key cache, where a key that
    // passed recently passes again.
    let keyBytes = -1;
    let known: KnownKey | undefined;
    if (explicitHashKey === undefined && typeof partitionKey === 'string') {
      keyBytes = asciiKeyBytes(partitionKey);
      if (keyBytes < 0) {
        known = this.#keys.get(partitionKey);
        if (known !== undefined) keyBytes = known.keyBytes;
      }
    }
    if (keyBytes < 0) {
      try {
        // The core rules, so that a record the producer accepts is one PutRecords accepts.
        const issues: ValidationIssue[] = [];
        checkPutRecordsEntry({ Data: EMPTY, PartitionKey: partitionKey, ExplicitHashKey: explicitHashKey }, '', issues);
        if (issues.length) throw new KinesisValidationError('PutRecords', 'input', issues);
        keyBytes = utf8ByteLength(partitionKey);
        if (explicitHashKey === undefined) known = this.#keys.add(partitionKey, keyBytes);
      } catch (cause) {
        return refused(record, cause);
      }
    }
    const size = keyBytes + dataBytes;
    // checkRecordBytes allocates (an empty list when the record fits): asked only for the message.
    if (size > this.#client.limits.maxRecordBytes) {
      return refused(record, new KinesisValidationError('PutRecords', 'input', checkRecordBytes(size, this.#client.limits)));
    }
    const config = this.#config;
    if (size > config.maxBatchBytes || size > config.maxBufferedBytes) {
      const limit = Math.min(config.maxBatchBytes, config.maxBufferedBytes);
      return new KinesisProducerError({ reason: 'too-large', record, detail: `partition key + data is ${size} bytes, more than the producer's limit of ${limit}` });
    }
    const copier = this.#copier;
    const chunk = typeof raw === 'string' ? copier.copyText(raw, dataBytes, this.#bufferedBytes) : copier.copy(raw, this.#bufferedBytes);
    const now = this.#clock();
    if (this.#epoch === undefined) this.#epoch = now;
    // The difference of two clock readings is a heap number even when it is a small integer;
    // `| 0` makes it one V8 stores in the field itself (a fractional or huge one is kept as it is).
    const elapsed = now - this.#epoch;
    const putAt = (elapsed | 0) === elapsed ? elapsed | 0 : elapsed;
    return {
      seq: this.#seq++,
      source: record,
      partitionKey,
      chunk,
      offset: copier.lastOffset,
      keyBytes,
      size,
      putAt,
      state: 'waiting',
      bucket: undefined,
      attempts: 0,
      extra: explicitHashKey === undefined ? undefined : { explicitHashKey, lastError: undefined, lastCode: undefined },
      resolve: undefined,
    };
  }

  /** The clock reading `record.putAt` counts from (the first record's put). */
  #epoch: number | undefined;

  #putAt(record: BufferedRecord): number {
    return this.#epoch! + record.putAt;
  }

  /** When the record expires (the same sum as `putAt + recordTtlMs` on the clock). */
  #deadline(record: BufferedRecord): number {
    return this.#epoch! + record.putAt + this.#config.recordTtlMs;
  }

  #extra(record: BufferedRecord): RecordExtra {
    return (record.extra ??= { explicitHashKey: undefined, lastError: undefined, lastCode: undefined });
  }

  /** Keeps a retryable fault as the cause of a later `expired` / `retries-exhausted` failure. */
  #noteFault(record: BufferedRecord, code: string, error: unknown): void {
    const extra = this.#extra(record);
    extra.lastCode = code;
    extra.lastError = error;
  }

  #randomKey(): string {
    return Math.floor(this.#config.random() * 0x20000000000000).toString(36);
  }

  #accept(record: BufferedRecord): void {
    this.#stats.accepted++;
    if (this.#waitingHead < this.#waiting.length || !this.#hasRoom(record.size)) {
      if (this.#config.whenFull === 'reject') {
        this.#stats.accepted--;
        this.#fail(record, 'buffer-full');
        return;
      }
      this.#waiting.push(record);
      this.#schedulePump();
      return;
    }
    this.#admit(record);
  }

  #hasRoom(size: number): boolean {
    return this.#bufferedRecords + 1 <= this.#config.maxBufferedRecords && this.#bufferedBytes + size <= this.#config.maxBufferedBytes;
  }

  #hasCapacity(): boolean {
    return this.#waitingHead >= this.#waiting.length && this.#bufferedRecords < this.#config.maxBufferedRecords && this.#bufferedBytes < this.#config.maxBufferedBytes;
  }

  #waitForCapacity(): Promise<void> {
    if (this.#hasCapacity()) return Promise.resolve();
    return new Promise((resolve) => this.#capacityWaiters.push(resolve));
  }

  #admit(record: BufferedRecord): void {
    this.#bufferedRecords++;
    this.#bufferedBytes += record.size;
    const bucket = this.#bucketFor(record);
    record.bucket = bucket;
    bucket.queue.push(record);
    this.#schedulePump();
  }

  #admitWaiting(now: number): void {
    const waiting = this.#waiting;
    while (this.#waitingHead < waiting.length) {
      const record = waiting[this.#waitingHead]!;
      if (this.#deadline(record) <= now) {
        this.#waitingHead++;
        this.#fail(record, 'expired', { detail: 'it waited for buffer space past its time to live' });
        continue;
      }
      if (!this.#hasRoom(record.size)) break;
      this.#waitingHead++;
      this.#admit(record);
    }
    if (this.#waitingHead === waiting.length) {
      this.#waiting = [];
      this.#waitingHead = 0;
    } else if (this.#waitingHead > 1024 && this.#waitingHead * 2 > waiting.length) {
      this.#waiting = waiting.slice(this.#waitingHead);
      this.#waitingHead = 0;
    }
  }

  // ---- buckets -----------------------------------------------------------------------------------

  #bucketFor(record: BufferedRecord): Bucket {
    const map = this.#shardMap;
    if (map !== undefined && map.isReady) {
      const shardId = shardOf(map, record, explicitHashKeyOf(record) === undefined ? this.#hashHigh(record) : undefined);
      if (shardId !== undefined) return this.#bucket(shardId, true);
    }
    return this.#bucket(STREAM_BUCKET, false);
  }

  /**
   * The top 32 bits of the partition key's MD5 hash key (see `partitionKeyHashHigh`). Not kept on
   * the record (a field in every buffered record): computed when the record is bucketed, again
   * only if it is bucketed again (a retry, a new shard map), and kept for cached keys.
   */
  #hashHigh(record: BufferedRecord): number {
    const key = record.partitionKey;
    // Only keys that are not short ASCII go through the key cache (see #prepare); their UTF-8
    // length exceeds their length.
    const known = record.keyBytes === key.length ? undefined : this.#keys.get(key);
    if (known === undefined) return partitionKeyHashHigh(key);
    return (known.hashHigh ??= partitionKeyHashHigh(key));
  }

  #bucket(id: string, isShard: boolean): Bucket {
    let bucket = this.#buckets.get(id);
    if (bucket === undefined) {
      const ceiling = isShard
        ? this.#config.shardRate
        : { recordsPerSecond: Number.POSITIVE_INFINITY, bytesPerSecond: Number.POSITIVE_INFINITY };
      bucket = { id, isShard, stale: false, queue: new RecordQueue(), limiter: new AdaptiveRateLimiter(ceiling, this.#clock()) };
      this.#buckets.set(id, bucket);
      this.#bucketOrder.push(bucket);
    }
    return bucket;
  }

  /** A new shard map: move queued records to the buckets of their shards. */
  #rebucket(): void {
    // One pass per queue: take out what moves, then merge each destination's arrivals by put order.
    const arrivals = new Map<Bucket, BufferedRecord[]>();
    for (const bucket of [...this.#bucketOrder]) {
      bucket.queue.removeWhere((record) => {
        if (record.state !== 'queued') return false;
        const to = this.#bucketFor(record);
        if (to === bucket) return false;
        record.bucket = to;
        let list = arrivals.get(to);
        if (list === undefined) arrivals.set(to, (list = []));
        list.push(record);
        return true;
      });
    }
    this.#arrive(arrivals);
    this.#dropEmptyBuckets();
    this.#schedulePump();
  }

  /** Queues moved records in their new buckets, by put order. */
  #arrive(arrivals: Map<Bucket, BufferedRecord[]>): void {
    for (const [to, records] of arrivals) {
      // Records from several buckets: each bucket's share is in put order, the whole may not be.
      records.sort((a, b) => a.seq - b.seq);
      to.queue.insertAll(records);
    }
  }

  /** Retried records bound for another bucket (see {@link #retry}), moved by {@link #applyMoves}. */
  #moves: { record: BufferedRecord; from: Bucket; to: Bucket }[] = [];

  /** Moves the retried records {@link #retry} set aside: one pass per queue they leave. */
  #applyMoves(): void {
    const moves = this.#moves;
    if (moves.length === 0) return;
    this.#moves = [];
    const leaving = new Map<Bucket, Set<BufferedRecord>>();
    const arrivals = new Map<Bucket, BufferedRecord[]>();
    for (const { record, from, to } of moves) {
      if (record.state === 'done') continue; // settled meanwhile (an internal error failed it)
      let set = leaving.get(from);
      if (set === undefined) leaving.set(from, (set = new Set()));
      set.add(record);
      record.bucket = to;
      let list = arrivals.get(to);
      if (list === undefined) arrivals.set(to, (list = []));
      list.push(record);
    }
    for (const [from, records] of leaving) from.queue.removeWhere((record) => records.has(record));
    this.#arrive(arrivals);
  }

  /** Drops empty buckets of the stream and of closed shards; an open shard's keeps its learnt rate. */
  #dropEmptyBuckets(): void {
    const map = this.#shardMap;
    this.#bucketOrder = this.#bucketOrder.filter((bucket) => {
      const keep = !bucket.queue.isEmpty || (bucket.isShard && map?.hasShard(bucket.id) === true);
      if (!keep) this.#buckets.delete(bucket.id);
      return keep;
    });
  }

  // ---- the pump ----------------------------------------------------------------------------------

  #schedulePump(): void {
    if (this.#pumpQueued) return;
    this.#pumpQueued = true;
    queueMicrotask(() => {
      this.#pumpQueued = false;
      this.#pump();
    });
  }

  /**
   * The producer's clock: `now()`, but never going back, and at least the time of the last timer
   * that fired. A runtime whose clock stands still between I/O (Cloudflare Workers) may report an
   * earlier `now()` when a timer fires; what was due then must still go, and expire, on time.
   */
  #clock(): number {
    const now = this.#config.now();
    if (now > this.#lastNow) this.#lastNow = now;
    return this.#lastNow;
  }

  /** Admits, expires, sends what is due and sets the next wake-up; `firedAt` is a timer's time. */
  #pump(firedAt = Number.NEGATIVE_INFINITY): void {
    if (firedAt > this.#lastNow) this.#lastNow = firedAt;
    const now = this.#clock();
    this.#admitWaiting(now);
    this.#expireQueued(now);
    const map = this.#shardMap;
    if (map !== undefined && !map.isReady && this.#bufferedRecords > 0) map.refresh();
    this.#sendReady(now);
    this.#notifyCapacity();
    this.#scheduleWake(now);
  }

  #expireQueued(now: number): void {
    for (const bucket of this.#bucketOrder) {
      const first = bucket.queue.firstQueued();
      if (first === undefined || this.#deadline(first) > now) continue;
      const expired: BufferedRecord[] = [];
      // Deadlines grow with put order, so the scan stops at the first queued record still alive.
      for (const record of bucket.queue.records()) {
        if (record.state !== 'queued') continue;
        if (this.#deadline(record) > now) break;
        expired.push(record);
      }
      for (const record of expired) this.#fail(record, 'expired', { code: record.extra?.lastCode, cause: record.extra?.lastError });
    }
  }

  /** Whether buckets should send without lingering. */
  #urgent(now: number): boolean {
    if (this.#flushing > 0 || this.#closed) return true;
    // Only the records of buckets whose limiter lets them go now can fill a request. Records that
    // wait for a throttled shard do not count: a throttled shard's backlog would otherwise make
    // every other shard's records go the moment they arrive, each in a request of its own.
    let queued = 0;
    let sendable = 0;
    let sendableBytes = 0;
    for (const bucket of this.#bucketOrder) {
      const { queue } = bucket;
      if (queue.queued === 0) continue;
      queued += queue.queued;
      if (this.#availableAt(bucket, now) > now) continue;
      sendable += queue.queued;
      sendableBytes += queue.queuedBytes;
    }
    const config = this.#config;
    if (sendableBytes >= config.maxBatchBytes || (config.aggregateMaxBytes === undefined && sendable >= config.maxBatchRecords)) return true;
    // A full buffer admits no record until some are sent, so lingering cannot fill a request any
    // further: it would only idle (with aggregation, whose requests hold far more than the buffer,
    // every full buffer used to wait out the whole linger). That holds when what may go now is
    // most of the buffer. When most of it waits for throttled shards, their slow drain frees room a
    // record or a few at a time and the other shards' records trickle in: sent on arrival, each
    // would make a request of its own (tens to hundreds a second). Those linger as usual.
    return !this.#hasCapacity() && sendable * 2 >= queued;
  }

  /** When a bucket's oldest queued record has lingered long enough. */
  #lingerEnds(bucket: Bucket, urgent: boolean, now: number): number {
    const first = bucket.queue.firstQueued();
    if (first === undefined) return Number.POSITIVE_INFINITY;
    if (!bucket.isShard && this.#shardMap?.isFirstLoading === true) return this.#putAt(first) + FIRST_SHARD_MAP_WAIT_MS;
    if (urgent) return now;
    // A record that was sent before has lingered already.
    return first.attempts > 0 ? now : this.#putAt(first) + this.#config.lingerMs;
  }

  /** When the bucket's limiter allows a worthwhile request for what the bucket holds. */
  #availableAt(bucket: Bucket, now: number): number {
    const { queued, queuedBytes } = bucket.queue;
    const aggregate = this.#config.aggregateMaxBytes;
    // Aggregated, many user records make one Kinesis record: count what they will become.
    const records = aggregate === undefined ? queued : Math.max(1, Math.ceil(queuedBytes / aggregate));
    return bucket.limiter.availableAt(now, records, queuedBytes);
  }

  #sendReady(now: number): void {
    const config = this.#config;
    while (this.#inFlightRequests < config.maxInFlight && now >= this.#gateUntil) {
      const urgent = this.#urgent(now);
      const ready: Bucket[] = [];
      const others: Bucket[] = [];
      const order = this.#bucketOrder;
      const count = order.length;
      for (let i = 0; i < count; i++) {
        const bucket = order[(this.#roundRobin + i) % count]!;
        if (bucket.queue.queued === 0) continue;
        if (this.#lingerEnds(bucket, urgent, now) <= now && this.#availableAt(bucket, now) <= now) ready.push(bucket);
        else others.push(bucket);
      }
      if (ready.length === 0) return;
      this.#roundRobin = (this.#roundRobin + 1) % Math.max(1, count);
      // Buckets whose linger has not ended yet may fill the rest of the request.
      const batch = buildBatch(ready.concat(others), {
        now,
        maxRecords: config.maxBatchRecords,
        maxBytes: config.maxBatchBytes,
        maxRecordBytes: config.maxRecordBytes,
        perKey: config.perKey,
        busyKeys: this.#busyKeys,
        aggregateMaxBytes: config.aggregateMaxBytes,
      });
      if (batch.records.length === 0) return;
      this.#dispatch(batch);
    }
  }

  #scheduleWake(now: number): void {
    if (this.#bufferedRecords === 0 && this.#waitingHead >= this.#waiting.length) {
      this.#clearTimer();
      return;
    }
    let at = Number.POSITIVE_INFINITY;
    if (this.#waitingHead < this.#waiting.length) at = this.#deadline(this.#waiting[this.#waitingHead]!);
    const canSend = this.#inFlightRequests < this.#config.maxInFlight;
    const urgent = canSend && this.#urgent(now);
    let stalled = false;
    for (const bucket of this.#bucketOrder) {
      const first = bucket.queue.firstQueued();
      if (first === undefined) continue;
      at = Math.min(at, this.#deadline(first));
      if (!canSend) continue; // a request's completion runs the pump
      const sendAt = Math.max(this.#lingerEnds(bucket, urgent, now), this.#availableAt(bucket, now), this.#gateUntil);
      if (sendAt > now) at = Math.min(at, sendAt);
      // Ready, yet nothing went: its keys wait for requests in flight, whose completion runs the pump.
      else if (this.#inFlightRequests === 0) stalled = true;
    }
    if (stalled) at = Math.min(at, now + STALL_RECHECK_MS);
    if (at === Number.POSITIVE_INFINITY) this.#clearTimer();
    else this.#setTimer(at, now);
  }

  #setTimer(at: number, now: number): void {
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    this.#clearTimer();
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      this.#pump(at);
    }, Math.max(0, at - now));
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  // ---- one request -------------------------------------------------------------------------------

  #dispatch(batch: Batch): void {
    this.#inFlightRequests++;
    this.#inFlightRecords += batch.records.length;
    this.#stats.requests++;
    const perKey = this.#config.perKey;
    for (const record of batch.records) {
      record.bucket!.queue.markInFlight(record);
      record.attempts++;
      if (perKey) this.#busyKeys.set(record.partitionKey, (this.#busyKeys.get(record.partitionKey) ?? 0) + 1);
    }
    // The body is written from the batch (see request.ts); the records were checked at put().
    sendBatch(this.#client, this.#frame, batch)
      .then(
        (output) => {
          this.#finish(batch);
          this.#onAnswer(batch, output);
        },
        (error: unknown) => {
          this.#finish(batch);
          this.#onRequestError(batch, error);
        },
      )
      .catch((error: unknown) => this.#onInternalError(batch, error))
      .finally(() => this.#schedulePump());
  }

  /** The request is over: its bookkeeping goes before its records settle (and wake a flush). */
  #finish(batch: Batch): void {
    this.#inFlightRequests--;
    this.#inFlightRecords -= batch.records.length;
    if (!this.#config.perKey) return;
    for (const record of batch.records) {
      const left = (this.#busyKeys.get(record.partitionKey) ?? 1) - 1;
      if (left > 0) this.#busyKeys.set(record.partitionKey, left);
      else this.#busyKeys.delete(record.partitionKey);
    }
  }

  #onAnswer(batch: Batch, output: PutRecordsOutput): void {
    const now = this.#clock();
    const results = output.Records;
    const entries = entryCount(batch);
    if (results.length !== entries) {
      // Which answer belongs to which record is unknown: all go again (at least once).
      this.#retryAll(batch, now, 'unknown-outcome', undefined, `ResponseCount${results.length}of${entries}`);
      return;
    }
    this.#gateFailures = 0;
    const throttled = new Set<Bucket>();
    const failed = new Set<Bucket>();
    const codes: Record<string, number> = {};
    let retried = 0;
    let staleMap = false;
    let wrongShard: Error | undefined;
    const aggregates = batch.aggregates;
    for (let i = 0; i < results.length; i++) {
      const result = results[i]!;
      // The i-th Kinesis record: a buffered record of its own, or an aggregate of some.
      const aggregate = aggregates?.[i];
      const plain = aggregate === undefined ? batch.records[i]! : undefined;
      const bucket = aggregate === undefined ? plain!.bucket! : aggregate.bucket;
      const { ErrorCode: code, ShardId: shardId, SequenceNumber: sequenceNumber } = result;
      if (code === undefined && shardId !== undefined && sequenceNumber !== undefined) {
        bucket.limiter.onSuccess();
        const moved = bucket.isShard && shardId !== bucket.id;
        if (moved) {
          staleMap = true;
          bucket.stale = true;
        }
        if (plain !== undefined) {
          this.#succeed(plain, { shardId, sequenceNumber, attempts: plain.attempts });
          continue;
        }
        const records = aggregate!.records;
        for (let index = 0; index < records.length; index++) {
          const record = records[index]!;
          // Cut with a stale map, the aggregate may hold records of several shards (a split), yet
          // it was stored whole on the shard of its own hash key, where the KCL drops each user
          // record whose hash key is outside the shard: those would be reported stored and never
          // read. As the KPL does, they go again, unless the map shows they belong there.
          // https://github.com/awslabs/amazon-kinesis-producer/blob/master/aws/kinesis/core/retrier.cc (succeed_if_correct_shard)
          // https://github.com/awslabs/amazon-kinesis-client/issues/343
          if (moved && aggregate!.aggregated && !this.#belongsTo(shardId, record, aggregate!)) {
            wrongShard ??= new Error(`stored in an aggregated record on ${shardId}, a shard the producer's shard map does not show holding its hash key (the stream was resharded)`);
            codes[WRONG_SHARD] = (codes[WRONG_SHARD] ?? 0) + 1;
            this.#noteFault(record, WRONG_SHARD, wrongShard);
            if (this.#retry(record, now)) retried++;
            continue;
          }
          const stored: PutResult = aggregate!.aggregated
            ? { shardId, sequenceNumber, attempts: record.attempts, subSequenceNumber: index }
            : { shardId, sequenceNumber, attempts: record.attempts };
          this.#succeed(record, stored);
        }
        continue;
      }
      const records = plain !== undefined ? [plain] : aggregate!.records;
      const name = code ?? 'MissingResult';
      const kind = code === undefined ? 'transient' : classifyFault(code, 200, result.ErrorMessage ?? '');
      const cause = new KinesisServiceError({
        code: name,
        status: 200,
        message: result.ErrorMessage ?? (code === undefined ? 'the answer entry has neither ErrorCode nor SequenceNumber' : ''),
        operation: 'PutRecords',
      });
      if (kind === 'fatal') {
        for (const record of records) this.#fail(record, 'rejected', { code, detail: result.ErrorMessage, cause });
        continue;
      }
      (kind === 'throttling' ? throttled : failed).add(bucket);
      codes[name] = (codes[name] ?? 0) + records.length;
      for (const record of records) {
        this.#noteFault(record, name, cause);
        if (this.#retry(record, now)) retried++;
      }
    }
    this.#applyMoves();
    if (staleMap) this.#shardMap?.invalidate();
    if (throttled.size > 0) this.#stats.throttledRequests++;
    const config = this.#config;
    for (const bucket of throttled) {
      bucket.limiter.onThrottle(now, backoffDelay(bucket.limiter.failures + 1, config.throttlingBaseDelayMs, config.maxDelayMs, config.random));
    }
    for (const bucket of failed) {
      if (throttled.has(bucket)) continue;
      bucket.limiter.onFailure(now, backoffDelay(bucket.limiter.failures + 1, config.baseDelayMs, config.maxDelayMs, config.random));
    }
    if (retried > 0) this.#emitRetry({ reason: 'partial-failure', records: retried, codes });
  }

  /**
   * Whether a user record of an aggregate stored on `shardId` is sure to be in that shard's hash key
   * range: it has the aggregate's own hash key (which placed it), or the shard map places it there.
   */
  #belongsTo(shardId: string, record: BufferedRecord, aggregate: Aggregate): boolean {
    const explicitHashKey = explicitHashKeyOf(record);
    if (aggregate.explicitHashKey !== undefined ? explicitHashKey === aggregate.explicitHashKey : explicitHashKey === undefined && record.partitionKey === aggregate.partitionKey) {
      return true;
    }
    const map = this.#shardMap;
    return map !== undefined && map.isReady && shardOf(map, record, explicitHashKey === undefined ? this.#hashHigh(record) : undefined) === shardId;
  }

  #onRequestError(batch: Batch, error: unknown): void {
    const now = this.#clock();
    if (isKinesisValidationError(error) && error.source === 'input') {
      this.#failAll(batch, 'invalid', { detail: error.message, cause: error });
      return;
    }
    if (isKinesisServiceError(error) && error.kind === 'fatal') {
      this.#failAll(batch, 'rejected', { code: error.code, detail: error.serviceMessage, cause: error });
      return;
    }
    // Throttling, 5xx, network errors, timeouts, an exhausted retry quota, an unreadable answer:
    // the records may or may not be stored, and another try may work.
    const throttling = isKinesisServiceError(error) && error.kind === 'throttling';
    if (throttling) {
      this.#stats.throttledRequests++;
      const config = this.#config;
      for (const bucket of new Set(batch.records.map((record) => record.bucket!))) {
        bucket.limiter.onThrottle(now, backoffDelay(bucket.limiter.failures + 1, config.throttlingBaseDelayMs, config.maxDelayMs, config.random));
      }
    }
    const code = isKinesisServiceError(error) ? error.code : error instanceof Error ? error.name : 'Error';
    this.#retryAll(batch, now, 'request-failed', error, code, throttling);
  }

  /** A bug in this module must not leave promises pending: fail what is still in flight. */
  #onInternalError(batch: Batch, error: unknown): void {
    for (const record of batch.records) {
      if (record.state === 'in-flight') this.#fail(record, 'rejected', { detail: 'internal producer error', cause: error });
    }
  }

  #retryAll(batch: Batch, now: number, reason: ProducerRetryEvent['reason'], error: unknown, code: string, throttling = false): void {
    const config = this.#config;
    this.#gateFailures++;
    const base = throttling ? config.throttlingBaseDelayMs : config.baseDelayMs;
    this.#gateUntil = Math.max(this.#gateUntil, now + backoffDelay(this.#gateFailures, base, config.maxDelayMs, config.random));
    let retried = 0;
    for (const record of batch.records) {
      this.#noteFault(record, code, error);
      if (this.#retry(record, now)) retried++;
    }
    this.#applyMoves();
    if (retried > 0) this.#emitRetry({ reason, records: retried, codes: { [code]: retried }, error });
  }

  /** Puts a failed record back in its queue, unless it expired or ran out of attempts. */
  #retry(record: BufferedRecord, now: number): boolean {
    if (this.#deadline(record) <= now) {
      this.#fail(record, 'expired', { code: record.extra?.lastCode, cause: record.extra?.lastError });
      return false;
    }
    if (record.attempts >= this.#config.maxAttempts) {
      this.#fail(record, 'retries-exhausted', { code: record.extra?.lastCode, cause: record.extra?.lastError });
      return false;
    }
    this.#stats.retried++;
    const from = record.bucket!;
    const to = this.#bucketFor(record);
    if (to === from) from.queue.markQueued(record);
    // Another bucket (the shard map changed): moved with the rest of the answer's, in one pass.
    else this.#moves.push({ record, from, to });
    return true;
  }

  #failAll(batch: Batch, reason: ProducerFailureReason, extra: { code?: string; detail?: string; cause?: unknown }): void {
    for (const record of batch.records) this.#fail(record, reason, extra);
  }

  // ---- settling ----------------------------------------------------------------------------------

  #release(record: BufferedRecord): void {
    if (record.state === 'queued' || record.state === 'in-flight') {
      record.bucket?.queue.markDone(record);
      this.#bufferedRecords--;
      this.#bufferedBytes -= record.size;
    }
    record.state = 'done';
    // Once: #succeed and #fail return early for a record already done.
    if (record.chunk !== undefined) {
      this.#copier.release(record.chunk);
      record.chunk = undefined;
    }
  }

  #succeed(record: BufferedRecord, result: PutResult): void {
    if (record.state === 'done') return;
    this.#release(record);
    this.#stats.stored++;
    if (this.#tickets.length > 0) this.#tick(record, true);
    const resolve = record.resolve;
    record.resolve = undefined;
    resolve?.(result);
  }

  #fail(record: BufferedRecord, reason: ProducerFailureReason, extra: { code?: string; detail?: string; cause?: unknown } = {}): void {
    if (record.state === 'done') return;
    this.#release(record);
    const error = new KinesisProducerError({ reason, record: record.source, attempts: record.attempts, ...extra });
    if (this.#tickets.length > 0) this.#tick(record, false);
    const resolve = record.resolve;
    record.resolve = undefined;
    if (resolve !== undefined) rejectThrough(resolve, error);
    this.#report(error);
  }

  /** Counts a failure and tells `onFailure`. */
  #report(error: KinesisProducerError): void {
    this.#stats.failed++;
    this.#stats.failedByReason[error.reason]++;
    this.#callHook(() => this.#hooks.onFailure?.(error));
  }

  #emitRetry(event: ProducerRetryEvent): void {
    this.#callHook(() => this.#hooks.onRetry?.(event));
  }

  #callHook(call: () => void): void {
    try {
      call();
    } catch {
      // A hook's own failure must not break delivery; hooks are for observing.
    }
  }

  #notifyCapacity(): void {
    if (this.#capacityWaiters.length === 0 || !this.#hasCapacity()) return;
    const waiters = this.#capacityWaiters;
    this.#capacityWaiters = [];
    for (const resolve of waiters) resolve();
  }

  // ---- flush -------------------------------------------------------------------------------------

  /**
   * Flushes still waiting, oldest first. A flush waits for the records unsettled when it was
   * called, which are exactly the unsettled records put before it (`seq` below its `before`):
   * each settling record counts for the flushes it is older than, and a flush costs nothing per
   * record (it used to add itself to a list on every buffered record).
   */
  #tickets: FlushTicket[] = [];

  /** A record settled: counts it for the flushes waiting for it. */
  #tick(record: BufferedRecord, stored: boolean): void {
    const tickets = this.#tickets;
    let finished = false;
    for (const ticket of tickets) {
      if (record.seq >= ticket.before) continue;
      if (stored) ticket.stored++;
      else ticket.failed++;
      if (--ticket.remaining === 0) {
        finished = true;
        ticket.done();
      }
    }
    if (finished) this.#tickets = this.#tickets.filter((ticket) => ticket.remaining > 0);
  }

  #flush(): Promise<FlushResult> {
    // Every record not settled yet: waiting for room, queued or in flight.
    let pending = this.#waiting.length - this.#waitingHead;
    for (const bucket of this.#bucketOrder) for (const _record of bucket.queue.records()) pending++;
    if (pending === 0) {
      this.#schedulePump();
      return Promise.resolve({ stored: 0, failed: 0 });
    }
    this.#flushing++;
    return new Promise<FlushResult>((resolve) => {
      const ticket: FlushTicket = {
        before: this.#seq,
        remaining: pending,
        stored: 0,
        failed: 0,
        done: () => {
          this.#flushing--;
          resolve({ stored: ticket.stored, failed: ticket.failed });
        },
      };
      this.#tickets.push(ticket);
      this.#schedulePump();
    });
  }

  #snapshot(): ProducerStats {
    const stats = this.#stats;
    return {
      bufferedRecords: this.#bufferedRecords,
      bufferedBytes: this.#bufferedBytes,
      inFlightRecords: this.#inFlightRecords,
      inFlightRequests: this.#inFlightRequests,
      waitingRecords: this.#waiting.length - this.#waitingHead,
      accepted: stats.accepted,
      stored: stats.stored,
      failed: stats.failed,
      failedByReason: { ...stats.failedByReason },
      retried: stats.retried,
      requests: stats.requests,
      throttledRequests: stats.throttledRequests,
      shards: this.#shardMap?.shardCount,
    };
  }
}

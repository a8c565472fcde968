/**
 * Checkpoints: the last processed position per shard, so that reading resumes after it.
 *
 * A store is two functions. Any key-value storage works; keep one store (or one key prefix) per
 * stream *and* per application reading it, as the KCL keeps one lease table per application.
 *
 * @example Cloudflare Durable Objects (strongly consistent; the better choice on Workers)
 * ```ts
 * const store: CheckpointStore = {
 *   get: (shardId) => this.ctx.storage.get<Checkpoint>(`clicks/${shardId}`),
 *   set: (shardId, sequenceNumber, subSequenceNumber) =>
 *     this.ctx.storage.put(`clicks/${shardId}`, { sequenceNumber, subSequenceNumber }),
 * };
 * ```
 *
 * @example Cloudflare KV (eventually consistent and limited to one write per key per second:
 * checkpoint per batch, and run a single reader per stream)
 * ```ts
 * const store: CheckpointStore = {
 *   get: async (shardId) => (await env.CHECKPOINTS.get(`clicks/${shardId}`, 'json')) ?? undefined,
 *   set: (shardId, sequenceNumber, subSequenceNumber) =>
 *     env.CHECKPOINTS.put(`clicks/${shardId}`, JSON.stringify({ sequenceNumber, subSequenceNumber })),
 * };
 * ```
 *
 * @example Deno KV
 * ```ts
 * const kv = await Deno.openKv();
 * const store: CheckpointStore = {
 *   get: async (shardId) => (await kv.get<Checkpoint>(['checkpoints', 'clicks', shardId])).value ?? undefined,
 *   set: async (shardId, sequenceNumber, subSequenceNumber) => {
 *     await kv.set(['checkpoints', 'clicks', shardId], { sequenceNumber, subSequenceNumber });
 *   },
 * };
 * ```
 *
 * @example localStorage (or any `getItem` / `setItem` storage)
 * ```ts
 * const store = createStorageCheckpointStore(localStorage, { prefix: 'clicks:' });
 * ```
 */
import type { ConsumerRecord } from './record.ts';
import type { StartPosition } from './position.ts';

/**
 * The `sequenceNumber` a checkpoint holds once its shard is closed and fully processed: a reader
 * resuming from it skips the shard and goes on with its children. (The KCL uses the same word.)
 */
export const SHARD_END = 'SHARD_END';

/** A stored position: the last processed record of a shard, or {@link SHARD_END}. */
export interface Checkpoint {
  sequenceNumber: string;
  /** The user record's index inside a KPL aggregated record; absent for a plain record. */
  subSequenceNumber?: number;
}

type MaybePromise<T> = T | Promise<T>;

/** Where checkpoints are kept. Both functions may be synchronous or return a promise. */
export interface CheckpointStore {
  /** The checkpoint of `shardId`, or `undefined` when there is none. */
  get(shardId: string): MaybePromise<Checkpoint | undefined>;
  /** Records that everything in `shardId` up to and including this position is processed. */
  set(shardId: string, sequenceNumber: string, subSequenceNumber?: number): MaybePromise<void>;
  /** Every checkpoint held, when the storage can enumerate them. */
  list?(): MaybePromise<Map<string, Checkpoint>>;
}

function makeCheckpoint(sequenceNumber: string, subSequenceNumber: number | undefined): Checkpoint {
  if (typeof sequenceNumber !== 'string' || (sequenceNumber !== SHARD_END && !/^\d+$/.test(sequenceNumber))) {
    throw new TypeError(`checkpoint: sequenceNumber must be a string of digits or SHARD_END, got ${String(sequenceNumber)}`);
  }
  if (subSequenceNumber === undefined) return { sequenceNumber };
  if (!Number.isInteger(subSequenceNumber) || subSequenceNumber < 0) {
    throw new TypeError(`checkpoint: subSequenceNumber must be a non-negative integer, got ${String(subSequenceNumber)}`);
  }
  return { sequenceNumber, subSequenceNumber };
}

/** A {@link CheckpointStore} whose functions answer synchronously. */
export interface MemoryCheckpointStore extends CheckpointStore {
  get(shardId: string): Checkpoint | undefined;
  set(shardId: string, sequenceNumber: string, subSequenceNumber?: number): void;
  list(): Map<string, Checkpoint>;
}

/**
 * A store in memory: for tests, and for a reader whose progress need not survive a restart.
 *
 * @example
 * ```ts
 * const checkpoints = createMemoryCheckpointStore();
 * for await (const record of readStream(client, { streamName: 'clicks', from: { type: 'TRIM_HORIZON' }, checkpoints })) { … }
 * ```
 */
export function createMemoryCheckpointStore(initial?: Iterable<[string, Checkpoint]>): MemoryCheckpointStore {
  const entries = new Map<string, Checkpoint>();
  for (const [shardId, cp] of initial ?? []) entries.set(shardId, makeCheckpoint(cp.sequenceNumber, cp.subSequenceNumber));
  return {
    get: (shardId) => entries.get(shardId),
    set: (shardId, sequenceNumber, subSequenceNumber) => {
      entries.set(shardId, makeCheckpoint(sequenceNumber, subSequenceNumber));
    },
    list: () => new Map(entries),
  };
}

/** The part of the Web Storage API (`localStorage`, `sessionStorage`) that a checkpoint store needs. */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  /** Enables `list()` together with {@link key}. */
  readonly length?: number;
  key?(index: number): string | null;
}

export interface StorageCheckpointStoreOptions {
  /**
   * Put before each shard id to make the key. Include the stream and the application name when
   * one storage serves several readers.
   * @default 'kinesis-edge:checkpoint:'
   */
  prefix?: string;
}

/** Parses a stored JSON checkpoint; `undefined` for anything that is not one. */
export function parseCheckpoint(text: string | null | undefined): Checkpoint | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as Partial<Checkpoint> | null;
    if (!value || typeof value.sequenceNumber !== 'string') return undefined;
    return makeCheckpoint(value.sequenceNumber, value.subSequenceNumber ?? undefined);
  } catch {
    return undefined;
  }
}

/**
 * A store over a `localStorage`-like storage: one JSON value per shard, e.g.
 * `kinesis-edge:checkpoint:shardId-000000000000` → `{"sequenceNumber":"4958…","subSequenceNumber":2}`.
 * A value that does not parse is treated as no checkpoint.
 *
 * @example
 * ```ts
 * const checkpoints = createStorageCheckpointStore(localStorage, { prefix: 'clicks:dashboard:' });
 * ```
 */
export function createStorageCheckpointStore(storage: KeyValueStorage, options: StorageCheckpointStoreOptions = {}): CheckpointStore {
  const prefix = options.prefix ?? 'kinesis-edge:checkpoint:';
  const store: CheckpointStore = {
    get: (shardId) => parseCheckpoint(storage.getItem(prefix + shardId)),
    set: (shardId, sequenceNumber, subSequenceNumber) => {
      storage.setItem(prefix + shardId, JSON.stringify(makeCheckpoint(sequenceNumber, subSequenceNumber)));
    },
  };
  if (typeof storage.key === 'function' && typeof storage.length === 'number') {
    store.list = () => {
      const out = new Map<string, Checkpoint>();
      for (let i = 0; i < (storage.length ?? 0); i++) {
        const key = storage.key!(i);
        if (key === null || !key.startsWith(prefix)) continue;
        const cp = parseCheckpoint(storage.getItem(key));
        if (cp) out.set(key.slice(prefix.length), cp);
      }
      return out;
    };
  }
  return store;
}

/**
 * Marks `record` (and everything before it in its shard) as processed.
 *
 * @example
 * ```ts
 * for await (const record of readStream(client, { streamName: 'clicks', from: { type: 'LATEST' }, checkpoints, checkpointing: 'manual' })) {
 *   await handle(record);
 *   await checkpointRecord(checkpoints, record);
 * }
 * ```
 */
export async function checkpointRecord(store: CheckpointStore, record: ConsumerRecord): Promise<void> {
  await store.set(record.shardId, record.sequenceNumber, record.subSequenceNumber);
}

/** The position to resume from after `checkpoint`; `undefined` for {@link SHARD_END}. */
export function startPositionAfter(checkpoint: Checkpoint): StartPosition | undefined {
  if (checkpoint.sequenceNumber === SHARD_END) return undefined;
  return checkpoint.subSequenceNumber === undefined
    ? { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: checkpoint.sequenceNumber }
    : { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: checkpoint.sequenceNumber, subSequenceNumber: checkpoint.subSequenceNumber };
}

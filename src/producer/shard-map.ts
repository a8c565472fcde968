/**
 * Shard prediction: which shard a record lands on, from its hash key and the hash key ranges that
 * ListShards reports. Kinesis hashes the partition key with MD5 (read as an unsigned 128-bit
 * big-endian integer) unless the record has an ExplicitHashKey.
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecordsRequestEntry.html
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_ListShards.html
 */
import type { KinesisClient } from '../client.ts';
import { isKinesisServiceError } from '../errors.ts';
import { findShardForHashKey, partitionKeyToHashKey, type ShardWithHashKeyRange } from '../internal/hash-key.ts';
import { listShards } from '../operations/list-shards.ts';
import type { ListShardsInput, Shard } from '../shapes.ts';

/**
 * The hash key Kinesis uses to place a record: the explicit hash key when given, else the MD5 of
 * the partition key's UTF-8 bytes.
 *
 * @example
 * recordHashKey({ partitionKey: 'a' }); // 16955237001963240173058271559858726497n
 */
export function recordHashKey(key: { partitionKey?: string; explicitHashKey?: string }): bigint {
  if (key.explicitHashKey !== undefined) return BigInt(key.explicitHashKey);
  if (key.partitionKey === undefined) throw new TypeError('recordHashKey: a partitionKey or an explicitHashKey is required');
  return partitionKeyToHashKey(key.partitionKey);
}

/**
 * The shard a record with this partition key (or explicit hash key) lands on, among `shards` as
 * ListShards returns them; `undefined` when no shard's range holds its hash key. An open shard is
 * preferred over a closed parent that covers the same range.
 *
 * @example
 * const shards = await Array.fromAsync(listAllShards(client, { StreamName: 'clicks' }));
 * predictShard(shards, 'user-1')?.ShardId; // 'shardId-000000000001'
 * predictShard(shards, { explicitHashKey: '0' })?.ShardId; // 'shardId-000000000000'
 */
export function predictShard<T extends ShardWithHashKeyRange>(
  shards: readonly T[],
  key: string | { partitionKey?: string; explicitHashKey?: string },
): T | undefined {
  const hashKey = typeof key === 'string' ? partitionKeyToHashKey(key) : recordHashKey(key);
  return findShardForHashKey(shards, hashKey);
}

/** After this long a failed or stale shard map may be listed again. */
const MIN_REFRESH_INTERVAL_MS = 1_000;
const RETRY_AFTER_ERROR_MS = 5_000;

/** The low 96 bits of a hash key. */
const LOW_96_BITS = (1n << 96n) - 1n;

interface OpenRange {
  shardId: string;
  start: bigint;
  end: bigint;
  /**
   * The top 32 bits of `start` and `end`, and whether every key with those top bits is inside
   * the range on that side (the other 96 bits of `start` all zero, of `end` all ones, as with
   * shards split at powers of two, or one shard over the whole key space).
   */
  startHigh: number;
  endHigh: number;
  startHighInside: boolean;
  endHighInside: boolean;
}

function openRange(shardId: string, start: bigint, end: bigint): OpenRange {
  return {
    shardId,
    start,
    end,
    startHigh: Number(start >> 96n),
    endHigh: Number(end >> 96n),
    startHighInside: (start & LOW_96_BITS) === 0n,
    endHighInside: (end & LOW_96_BITS) === LOW_96_BITS,
  };
}

/**
 * The producer's view of the stream's shards, listed with ListShards when first needed and again
 * after a record lands on a shard other than the predicted one (a reshard). It never uses a timer:
 * the producer asks it to refresh when it is due. A fault that retrying cannot fix (for example an
 * IAM policy without `kinesis:ListShards`) turns prediction off for good; the producer then limits
 * its rate per stream.
 */
export class ShardMap {
  #ranges: OpenRange[] | undefined;
  #loading: Promise<void> | undefined;
  #nextAttemptAt = 0;
  #disabled = false;
  #failed = false;
  /** Aborts the listing in progress (its request, or its retry's backoff) when the producer closes. */
  readonly #abort = new AbortController();
  /** Increases each time a new map is installed. */
  version = 0;

  readonly #client: KinesisClient;
  readonly #stream: Pick<ListShardsInput, 'StreamName' | 'StreamARN'>;
  readonly #now: () => number;
  readonly #onLoaded: () => void;
  readonly #onError: (error: unknown, disabled: boolean) => void;

  constructor(init: {
    client: KinesisClient;
    stream: Pick<ListShardsInput, 'StreamName' | 'StreamARN'>;
    now: () => number;
    onLoaded: () => void;
    onError: (error: unknown, disabled: boolean) => void;
  }) {
    this.#client = init.client;
    this.#stream = init.stream;
    this.#now = init.now;
    this.#onLoaded = init.onLoaded;
    this.#onError = init.onError;
  }

  get isReady(): boolean {
    return this.#ranges !== undefined;
  }

  get isDisabled(): boolean {
    return this.#disabled;
  }

  get isLoading(): boolean {
    return this.#loading !== undefined;
  }

  /** Whether the first listing is still running (no map yet, and no listing has failed). */
  get isFirstLoading(): boolean {
    return this.#loading !== undefined && this.version === 0 && !this.#failed;
  }

  /** Number of open shards, when known. */
  get shardCount(): number | undefined {
    return this.#ranges?.length;
  }

  /** The open shard holding `hashKey`, or undefined while no map is known. */
  shardFor(hashKey: bigint): string | undefined {
    const ranges = this.#ranges;
    if (ranges === undefined) return undefined;
    // Binary search: ranges are sorted by start and do not overlap.
    let low = 0;
    let high = ranges.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      const range = ranges[mid]!;
      if (hashKey < range.start) high = mid - 1;
      else if (hashKey > range.end) low = mid + 1;
      else return range.shardId;
    }
    return undefined;
  }

  /**
   * The open shard holding every hash key whose top 32 bits are `high` (see
   * `partitionKeyHashHigh`), or undefined when those bits do not decide it: no map yet, no range,
   * or `high` on a range boundary that the low bits decide (about 2^-32 of keys per boundary);
   * then ask {@link shardFor} with the whole key.
   */
  shardForHigh(high: number): string | undefined {
    const ranges = this.#ranges;
    if (ranges === undefined) return undefined;
    let low = 0;
    let top = ranges.length - 1;
    while (low <= top) {
      const mid = (low + top) >> 1;
      const range = ranges[mid]!;
      if (high < range.startHigh) top = mid - 1;
      else if (high > range.endHigh) low = mid + 1;
      else if ((high > range.startHigh || range.startHighInside) && (high < range.endHigh || range.endHighInside)) return range.shardId;
      else return undefined;
    }
    return undefined;
  }

  /** Whether `shardId` is an open shard of the current map. */
  hasShard(shardId: string): boolean {
    return this.#ranges?.some((range) => range.shardId === shardId) ?? false;
  }

  /** Lists the shards unless a listing is running, prediction is off, or the last try was too recent. */
  refresh(): void {
    if (this.#disabled || this.#loading !== undefined || this.#now() < this.#nextAttemptAt) return;
    this.#nextAttemptAt = this.#now() + MIN_REFRESH_INTERVAL_MS;
    this.#loading = this.#load().finally(() => {
      this.#loading = undefined;
    });
  }

  /** Resolves when no listing is running (a listing never rejects: its faults go to `onError`). */
  idle(): Promise<void> {
    return this.#loading ?? Promise.resolve();
  }

  /**
   * The producer closed: a listing in progress is aborted (the request and any retry's backoff,
   * with their timers) and none starts again. Nothing is reported for the aborted listing.
   */
  stop(): void {
    this.#disabled = true;
    this.#abort.abort();
  }

  /** Marks the map stale (a record landed on an unexpected shard) and refreshes when allowed. */
  invalidate(): void {
    this.refresh();
  }

  async #load(): Promise<void> {
    try {
      const open: OpenRange[] = [];
      // Paged by hand rather than with paginate.ts, so that a producer-only bundle carries only
      // the operations it calls. After the first page ListShards takes only the NextToken.
      const all: Shard[] = [];
      let request: ListShardsInput = { ...this.#stream };
      for (let page = 0; page < 1_000; page++) {
        const answer = await listShards(this.#client, request, { signal: this.#abort.signal });
        all.push(...(answer.Shards ?? []));
        if (!answer.NextToken) break;
        request = { NextToken: answer.NextToken };
      }
      for (const shard of all) {
        if (shard.SequenceNumberRange?.EndingSequenceNumber !== undefined) continue;
        open.push(openRange(shard.ShardId, BigInt(shard.HashKeyRange.StartingHashKey), BigInt(shard.HashKeyRange.EndingHashKey)));
      }
      open.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
      if (open.length === 0) throw new Error(`ListShards returned no open shard for ${this.#stream.StreamName ?? this.#stream.StreamARN}`);
      this.#ranges = open;
      this.version++;
      this.#onLoaded();
    } catch (error) {
      if (this.#abort.signal.aborted) return;
      // Retrying cannot fix a missing permission or a missing stream; anything else may pass.
      this.#failed = true;
      const fatal = isKinesisServiceError(error) && error.kind === 'fatal';
      if (fatal) this.#disabled = true;
      this.#nextAttemptAt = this.#now() + RETRY_AFTER_ERROR_MS;
      this.#onError(error, fatal);
    }
  }
}

/**
 * One bucket's records in put order. A record stays at its place from `put()` until it settles:
 * while it is in flight it is only skipped, and a record sent again after a retryable failure is
 * simply `queued` again at its old place, so retried records go out before newer ones and a
 * partition key's records keep their order.
 */
import type { AdaptiveRateLimiter } from './rate-limiter.ts';
import type { BufferedRecord } from './record.ts';

export class RecordQueue {
  #items: BufferedRecord[] = [];
  #head = 0;
  /** No record before this index is queued (a hint for `firstQueued()`; 0 when unsure). */
  #firstQueuedFrom = 0;
  /** Settled records still in `#items`, dropped by `compact()`. */
  #settled = 0;
  /** Records here in state `queued`, and their bytes. */
  queued = 0;
  queuedBytes = 0;

  /** Appends a record newer than every record here, as `queued`. */
  push(record: BufferedRecord): void {
    this.#items.push(record);
    record.state = 'queued';
    this.queued++;
    this.queuedBytes += record.size;
  }

  /** A queued record goes out in a request. */
  markInFlight(record: BufferedRecord): void {
    if (record.state === 'queued') {
      this.queued--;
      this.queuedBytes -= record.size;
    }
    record.state = 'in-flight';
  }

  /** A record in flight failed and waits here again, at its old place. */
  markQueued(record: BufferedRecord): void {
    if (record.state !== 'queued') {
      this.queued++;
      this.queuedBytes += record.size;
    }
    record.state = 'queued';
    this.#firstQueuedFrom = 0;
  }

  /** A record settled: it is skipped from now on and dropped by `compact()`. */
  markDone(record: BufferedRecord): void {
    if (record.state === 'queued') {
      this.queued--;
      this.queuedBytes -= record.size;
    }
    record.state = 'done';
    this.#settled++;
  }

  /**
   * Inserts queued records, sorted by put order, by put order: one merge pass, not a search and a
   * splice per record (a new shard map may move a whole buffer).
   */
  insertAll(records: readonly BufferedRecord[]): void {
    if (records.length === 0) return;
    for (const record of records) {
      record.state = 'queued';
      this.queued++;
      this.queuedBytes += record.size;
    }
    const items = this.#items;
    const head = this.#head;
    if (head >= items.length || items[items.length - 1]!.seq < records[0]!.seq) {
      // All newer than what is here (the usual case): append.
      for (const record of records) items.push(record);
      return;
    }
    const merged: BufferedRecord[] = new Array(items.length - head + records.length);
    let i = head;
    let j = 0;
    let k = 0;
    while (i < items.length && j < records.length) merged[k++] = items[i]!.seq < records[j]!.seq ? items[i++]! : records[j++]!;
    while (i < items.length) merged[k++] = items[i++]!;
    while (j < records.length) merged[k++] = records[j++]!;
    this.#items = merged;
    this.#head = 0;
    this.#firstQueuedFrom = 0;
  }

  /**
   * Takes out, in one pass, every unsettled record (queued or in flight) that `take` selects
   * (moves to another bucket), and tells how many it took.
   */
  removeWhere(take: (record: BufferedRecord) => boolean): number {
    this.compact();
    const items = this.#items;
    const kept: BufferedRecord[] = [];
    let taken = 0;
    for (let i = this.#head; i < items.length; i++) {
      const record = items[i]!;
      if (record.state !== 'done' && take(record)) {
        taken++;
        if (record.state === 'queued') {
          this.queued--;
          this.queuedBytes -= record.size;
        }
      } else {
        kept.push(record);
      }
    }
    if (taken > 0) {
      this.#items = kept;
      this.#head = 0;
      this.#firstQueuedFrom = 0;
    }
    return taken;
  }

  /** Unsettled records (queued or in flight) from the oldest, skipping settled ones. */
  *records(): Generator<BufferedRecord> {
    this.compact();
    const items = this.#items;
    for (let i = this.#head; i < items.length; i++) {
      const record = items[i]!;
      if (record.state === 'queued' || record.state === 'in-flight') yield record;
    }
  }

  /**
   * Calls `visit` with each queued record from the oldest, until it returns false. Unlike
   * {@link records}, it starts at the first queued record: the records in flight before it (a whole
   * request or more) are not walked past for each batch. A loop over indexes, not a generator:
   * each step of a generator allocates a result object, once per record sent.
   */
  scanQueued(visit: (record: BufferedRecord) => boolean): void {
    this.compact();
    if (this.firstQueued() === undefined) return;
    const items = this.#items;
    for (let i = this.#firstQueuedFrom; i < items.length; i++) {
      const record = items[i]!;
      if (record.state === 'queued' && !visit(record)) return;
    }
  }

  /** The oldest queued record, if any. */
  firstQueued(): BufferedRecord | undefined {
    if (this.queued === 0) return undefined;
    const items = this.#items;
    // Records in flight sit before the queued ones: start where the last search ended.
    for (let i = Math.max(this.#head, this.#firstQueuedFrom); i < items.length; i++) {
      const record = items[i]!;
      if (record.state === 'queued') {
        this.#firstQueuedFrom = i;
        return record;
      }
    }
    return undefined;
  }

  get isEmpty(): boolean {
    this.compact();
    return this.#head >= this.#items.length;
  }

  /**
   * Drops settled records: from the front at once, and from the middle (records sent out of order,
   * as per-key ordering does) once they are a good share, so that their data is not kept alive.
   */
  compact(): void {
    const items = this.#items;
    let head = this.#head;
    while (head < items.length && items[head]!.state === 'done') {
      head++;
      this.#settled--;
    }
    if (head === items.length) {
      this.#items = [];
      this.#head = 0;
      this.#firstQueuedFrom = 0;
      this.#settled = 0;
      return;
    }
    this.#head = head;
    const live = items.length - head;
    if (this.#settled > 64 && this.#settled * 4 > live) {
      this.#items = items.slice(head).filter((record) => record.state !== 'done');
      this.#head = 0;
      this.#firstQueuedFrom = 0;
      this.#settled = 0;
    } else if (head > 1024 && head * 2 > items.length) {
      this.#items = items.slice(head);
      this.#head = 0;
      this.#firstQueuedFrom = 0;
    }
  }

  get length(): number {
    return this.#items.length - this.#head;
  }
}

/** A bucket: the records bound for one shard (or for the stream while shards are unknown), and its limiter. */
export interface Bucket {
  readonly id: string;
  readonly queue: RecordQueue;
  readonly limiter: AdaptiveRateLimiter;
  /** Whether the bucket's records are known to share a shard (false for the stream-wide bucket). */
  readonly isShard: boolean;
}

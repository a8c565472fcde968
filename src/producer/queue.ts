/**
 * One bucket's records in put order. A record stays at its place from `put()` until it settles:
 * while it is in flight it is only skipped, and a record sent again after a retryable failure is
 * simply `queued` again at its old place, so retried records go out before newer ones and a
 * partition key's records keep their order.
 */
import type { AdaptiveRateLimiter } from './rate-limiter.ts';
import type { BufferedRecord } from './record.ts';

/** Slots of a new queue's ring; it doubles when full. */
const MIN_CAPACITY = 16;

/**
 * A ring of slots, not an array with a moving head: records settle at the front as fast as they
 * arrive at the back, and an array had to grow past the live records and then be sliced down
 * again, copying every live record about twice and leaving its old backing stores (large objects
 * at 10,000 records) to the GC: about 55 B of garbage per record in the producer benchmark. A ring
 * reuses its slots; it is copied only when it doubles, or when it shrinks after a burst.
 */
export class RecordQueue {
  /** `capacity` slots (a power of two); the records are the `#length` from slot `#head` on, wrapping. */
  #slots: (BufferedRecord | undefined)[] = new Array(MIN_CAPACITY);
  #mask = MIN_CAPACITY - 1;
  #head = 0;
  #length = 0;
  /** No record before this position (counted from the head) is queued: a hint for `firstQueued()`, 0 when unsure. */
  #firstQueuedFrom = 0;
  /** Settled records still held, dropped by `compact()`. */
  #settled = 0;
  /** Records here in state `queued`, and their bytes. */
  queued = 0;
  queuedBytes = 0;

  /** The record at `position` (0 is the oldest). */
  #at(position: number): BufferedRecord {
    return this.#slots[(this.#head + position) & this.#mask]!;
  }

  /** Puts a record in the slot after the newest, doubling the ring when it is full. */
  #append(record: BufferedRecord): void {
    if (this.#length > this.#mask) this.#resize(2 * (this.#mask + 1));
    this.#slots[(this.#head + this.#length) & this.#mask] = record;
    this.#length++;
  }

  /** Appends a record newer than every record here, as `queued`. */
  push(record: BufferedRecord): void {
    this.#append(record);
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
    const length = this.#length;
    if (length === 0 || this.#at(length - 1).seq < records[0]!.seq) {
      // All newer than what is here (the usual case): append.
      for (const record of records) this.#append(record);
      return;
    }
    const total = length + records.length;
    const slots: (BufferedRecord | undefined)[] = new Array(capacityFor(total));
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < length && j < records.length) slots[k++] = this.#at(i).seq < records[j]!.seq ? this.#at(i++) : records[j++]!;
    while (i < length) slots[k++] = this.#at(i++);
    while (j < records.length) slots[k++] = records[j++]!;
    this.#replace(slots, total);
  }

  /**
   * Takes out, in one pass, every unsettled record (queued or in flight) that `take` selects
   * (moves to another bucket), and tells how many it took.
   */
  removeWhere(take: (record: BufferedRecord) => boolean): number {
    this.compact();
    let taken = 0;
    let kept = 0;
    for (let i = 0; i < this.#length; i++) {
      const record = this.#at(i);
      if (record.state !== 'done' && take(record)) {
        taken++;
        if (record.state === 'queued') {
          this.queued--;
          this.queuedBytes -= record.size;
        }
      } else {
        this.#slots[(this.#head + kept++) & this.#mask] = record;
      }
    }
    if (taken > 0) this.#truncate(kept);
    return taken;
  }

  /** Unsettled records (queued or in flight) from the oldest, skipping settled ones. */
  *records(): Generator<BufferedRecord> {
    this.compact();
    for (let i = 0; i < this.#length; i++) {
      const record = this.#at(i);
      if (record.state === 'queued' || record.state === 'in-flight') yield record;
    }
  }

  /**
   * Calls `visit` with each queued record from the oldest, until it returns false. Unlike
   * {@link records}, it starts at the first queued record: the records in flight before it (a whole
   * request or more) are not walked past for each batch. A loop over positions, not a generator:
   * each step of a generator allocates a result object, once per record sent.
   */
  scanQueued(visit: (record: BufferedRecord) => boolean): void {
    this.compact();
    if (this.firstQueued() === undefined) return;
    for (let i = this.#firstQueuedFrom; i < this.#length; i++) {
      const record = this.#at(i);
      if (record.state === 'queued' && !visit(record)) return;
    }
  }

  /** The oldest queued record, if any. */
  firstQueued(): BufferedRecord | undefined {
    if (this.queued === 0) return undefined;
    // Records in flight sit before the queued ones: start where the last search ended.
    for (let i = this.#firstQueuedFrom; i < this.#length; i++) {
      const record = this.#at(i);
      if (record.state === 'queued') {
        this.#firstQueuedFrom = i;
        return record;
      }
    }
    return undefined;
  }

  get isEmpty(): boolean {
    this.compact();
    return this.#length === 0;
  }

  /**
   * Drops settled records: from the front at once, and from the middle (records sent out of order,
   * as per-key ordering does) once they are a good share, so that their data is not kept alive.
   */
  compact(): void {
    const slots = this.#slots;
    let dropped = 0;
    while (dropped < this.#length && slots[this.#head]!.state === 'done') {
      slots[this.#head] = undefined;
      this.#head = (this.#head + 1) & this.#mask;
      dropped++;
    }
    if (dropped > 0) {
      this.#length -= dropped;
      this.#settled -= dropped;
      this.#firstQueuedFrom = Math.max(0, this.#firstQueuedFrom - dropped);
    }
    if (this.#settled > 64 && this.#settled * 4 > this.#length - this.#settled) {
      // In place: each live record moves down over the settled ones before it.
      let kept = 0;
      for (let i = 0; i < this.#length; i++) {
        const record = this.#at(i);
        if (record.state !== 'done') this.#slots[(this.#head + kept++) & this.#mask] = record;
      }
      this.#settled = 0;
      this.#truncate(kept);
    }
    // A burst grew the ring far beyond what it holds now: give the memory back.
    const capacity = this.#mask + 1;
    if (capacity > 1024 && this.#length * 8 < capacity) this.#resize(capacityFor(this.#length * 2));
  }

  get length(): number {
    return this.#length;
  }

  /** Keeps the first `length` records; the slots after them are cleared. */
  #truncate(length: number): void {
    for (let i = length; i < this.#length; i++) this.#slots[(this.#head + i) & this.#mask] = undefined;
    this.#length = length;
    this.#firstQueuedFrom = 0;
  }

  /** Copies the records, in order, into a ring of `capacity` slots. */
  #resize(capacity: number): void {
    const slots: (BufferedRecord | undefined)[] = new Array(capacity);
    for (let i = 0; i < this.#length; i++) slots[i] = this.#at(i);
    this.#replace(slots, this.#length);
  }

  #replace(slots: (BufferedRecord | undefined)[], length: number): void {
    this.#slots = slots;
    this.#mask = slots.length - 1;
    this.#head = 0;
    this.#length = length;
    this.#firstQueuedFrom = 0;
  }
}

/** The smallest power of two (at least {@link MIN_CAPACITY}) with room for `length` records. */
function capacityFor(length: number): number {
  let capacity = MIN_CAPACITY;
  while (capacity < length) capacity *= 2;
  return capacity;
}

/** A bucket: the records bound for one shard (or for the stream while shards are unknown), and its limiter. */
export interface Bucket {
  readonly id: string;
  readonly queue: RecordQueue;
  readonly limiter: AdaptiveRateLimiter;
  /** Whether the bucket's records are known to share a shard (false for the stream-wide bucket). */
  readonly isShard: boolean;
  /**
   * Set once one of its records landed on another shard: the shard has closed (a split or merge),
   * and its records may now belong to several shards, so they share an aggregate only with records
   * of the same hash key (as in the stream-wide bucket) until a new shard map moves them away.
   */
  stale: boolean;
}

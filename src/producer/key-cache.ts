/**
 * What the producer learnt about partition keys it saw recently: that the key passes the
 * PutRecords entry rules, its UTF-8 length, and (once shards are predicted) the top of its MD5 hash key.
 * Real traffic repeats keys (users, sessions, devices); a key seen again skips that work. Short
 * ASCII keys do not come here: the producer checks them in less time than a lookup takes (and a
 * cache of recent keys mostly misses with high-cardinality keys, as Kinesis advises using).
 *
 * Bounded with two generations instead of a true LRU: lookups and inserts go to the young map, a
 * hit in the old one is promoted, and when the young map is full it becomes the old one (what was
 * old is dropped). O(1) per operation, at most `2 * limit` keys held.
 */
export interface KnownKey {
  /** UTF-8 bytes of the key. */
  readonly keyBytes: number;
  /** The top 32 bits of its MD5 hash key, filled in the first time shards are predicted for the key. */
  hashHigh: number | undefined;
}

export class KeyCache {
  readonly #limit: number;
  #young = new Map<string, KnownKey>();
  #old = new Map<string, KnownKey>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  get(key: string): KnownKey | undefined {
    const young = this.#young.get(key);
    if (young !== undefined) return young;
    const old = this.#old.get(key);
    if (old !== undefined) this.#add(key, old);
    return old;
  }

  /** Records a key that passed validation. */
  add(key: string, keyBytes: number): KnownKey {
    const known: KnownKey = { keyBytes, hashHigh: undefined };
    this.#add(key, known);
    return known;
  }

  #add(key: string, known: KnownKey): void {
    if (this.#young.size >= this.#limit) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    this.#young.set(key, known);
  }
}

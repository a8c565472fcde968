/**
 * A rendezvous between many producers (one per shard) and one consumer: `put()` resolves only
 * when the consumer has taken the item, so each producer holds at most one item and nothing is
 * buffered beyond that, whatever the speed of the consumer (backpressure). Producers are served
 * first come, first served, which interleaves shards fairly.
 */

export interface Handoff<T> {
  /** Offers `item`; resolves when it is taken, rejects when the handoff is aborted. */
  put(item: T): Promise<void>;
  /** The next item; rejects with the failure or the abort reason. */
  take(): Promise<T>;
  /** Makes the pending and every later `take()` reject with `error` (first failure wins). */
  fail(error: unknown): void;
}

interface Offer<T> {
  item: T;
  resolve: () => void;
  reject: (reason: unknown) => void;
}

/** A handoff that rejects every pending and later call once `signal` aborts. */
export function createHandoff<T>(signal: AbortSignal): Handoff<T> {
  const offers: Offer<T>[] = [];
  let taker: { resolve: (item: T) => void; reject: (reason: unknown) => void } | undefined;
  let failure: { error: unknown } | undefined;

  const stop = (reason: unknown) => {
    for (const offer of offers.splice(0)) offer.reject(reason);
    const waiting = taker;
    taker = undefined;
    waiting?.reject(reason);
  };
  if (!signal.aborted) signal.addEventListener('abort', () => stop(signal.reason), { once: true });

  return {
    put(item) {
      if (signal.aborted) return Promise.reject(signal.reason);
      if (taker) {
        const waiting = taker;
        taker = undefined;
        waiting.resolve(item);
        return Promise.resolve();
      }
      return new Promise<void>((resolve, reject) => offers.push({ item, resolve, reject }));
    },
    take() {
      if (signal.aborted) return Promise.reject(signal.reason);
      if (failure) return Promise.reject(failure.error);
      const offer = offers.shift();
      if (offer) {
        offer.resolve();
        return Promise.resolve(offer.item);
      }
      return new Promise<T>((resolve, reject) => {
        taker = { resolve, reject };
      });
    },
    fail(error) {
      if (failure) return;
      failure = { error };
      const waiting = taker;
      taker = undefined;
      waiting?.reject(error);
    },
  };
}

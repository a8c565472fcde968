// A seeded PRNG (mulberry32) so that "random" test inputs and fault picks are the same on every run.
// https://gist.github.com/tommyettinger/46a874533244883189143505d203312c

/** Returns a function giving uniform numbers in [0, 1), fixed by `seed`. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `length` bytes from `random`. */
export function randomBytes(random: () => number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

/** An integer in [min, max]. */
export function randomInt(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/**
 * FNV-1a, 32 bits, with the offset basis mixed with `seed`: randomness for a fault or an answer
 * from what a call is rather than from when it arrived, so concurrency does not reorder the draws.
 * http://www.isthe.com/chongo/tech/comp/fnv/index.html
 */
export function hash32(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

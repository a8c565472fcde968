/**
 * Building blocks of the generated schemas in `shape-schemas.ts`: record data, timestamps, and the rules
 * that the API model cannot express.
 */
import * as z from 'zod/mini';
import { decodeBase64, encodeBase64 } from './internal/base64.ts';
// Nothing from internal/utf8.ts here, nor from any module of the write path: whatever the lazily
// loaded schemas import statically, esbuild wraps in lazy-init code (`__esm`) in every app that bundles
// it, a put-only page included. base64.ts has a chunk of its own for the same reason (vite.config.ts).

const MAX_HASH_KEY = 2n ** 128n - 1n;

/**
 * Build a value on first use and keep it. Every schema is wrapped in one, so importing the package
 * constructs nothing: an app pays only for the schemas of the operations it calls.
 */
export function lazySchema<T>(build: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= build());
}

/**
 * Record data on the way in: bytes as they are, or a string sent as its UTF-8 bytes, turned into
 * the wire's base64 here, exactly once. A string is never taken for base64.
 */
export const dataInput = /* @__PURE__ */ lazySchema(() => {
  const utf8 = new TextEncoder();
  return z.pipe(
    z.custom<Uint8Array | string>((value) => value instanceof Uint8Array || typeof value === 'string', {
      error: 'must be a Uint8Array or a string',
    }),
    z.transform((value): string => encodeBase64(typeof value === 'string' ? utf8.encode(value) : value)),
  );
});

/** Record data on the way out: the wire's base64 becomes bytes. */
export const dataOutput = /* @__PURE__ */ lazySchema(() =>
  z.pipe(
    z.string(),
    z.transform((value: string): Uint8Array => decodeBase64(value)),
  ),
);

/** Timestamps are sent as epoch seconds (AWS JSON 1.1). */
export const timestampInput = /* @__PURE__ */ lazySchema(() =>
  z.pipe(
    z.date({ error: 'must be a valid Date' }),
    z.transform((value: Date): number => value.getTime() / 1000),
  ),
);

/** Timestamps arrive as epoch seconds (a fraction is allowed); an ISO string is accepted too. */
export const timestampOutput = /* @__PURE__ */ lazySchema(() =>
  z.pipe(
    z.union([z.number(), z.string()]),
    z.transform((value: number | string): Date => (typeof value === 'number' ? new Date(Math.round(value * 1000)) : new Date(value))),
  ),
);

/**
 * At most 256 UTF-16 units, as the KPL (`String.length()`) and the service count a partition key;
 * zod's `maxLength` counts code points, which would let 129 emoji (258 units) through.
 */
export const partitionKeyMaxLengthCheck = /* @__PURE__ */ lazySchema(() =>
  z.refine<string>((value) => value.length <= 256, { error: 'length must be at most 256' }),
);

/**
 * A lone surrogate has no UTF-8 form: the service could not hash or store such a key. Checked with a
 * pattern over UTF-16 units (no `u` flag): each unit is a non-surrogate or half of a proper pair.
 */
export const isWellFormedCheck = /* @__PURE__ */ lazySchema(() =>
  z.refine<string>((value) => /^(?:[^\ud800-\udfff]|[\ud800-\udbff][\udc00-\udfff])*$/.test(value), {
    error: 'must be well-formed UTF-16 (no lone surrogates)',
  }),
);

/** The model's pattern allows 39 digits; a hash key is an unsigned 128-bit number. */
export const hashKeyRangeCheck = /* @__PURE__ */ lazySchema(() =>
  z.refine<string>((value) => !/^\d+$/.test(value) || BigInt(value) <= MAX_HASH_KEY, {
    error: 'must be at most 2^128 - 1 (340282366920938463463374607431768211455)',
  }),
);

/** Number of entries in a map (the model's `length` on `TagMap`). */
export function entryCountCheck(min: number, max: number) {
  return z.refine<Record<string, unknown>>(
    (value) => {
      const count = Object.keys(value).length;
      return count >= min && count <= max;
    },
    { error: `must have from ${min} to ${max} entries` },
  );
}

/** A union structure sets exactly one member. */
export const exactlyOneMemberCheck = /* @__PURE__ */ lazySchema(() =>
  z.refine<Record<string, unknown>>((value) => Object.values(value).filter((v) => v !== undefined).length === 1, {
    error: 'must set exactly one member',
  }),
);

/**
 * Operations that name a stream need one of StreamName or StreamARN: the API reference says so for
 * each of them, though the model marks both optional.
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html#API_PutRecords_RequestSyntax
 */
export function streamIdentityCheck(keys: readonly string[]) {
  return z.refine<Record<string, unknown>>((value) => keys.some((k) => value[k] !== undefined), {
    error: `one of ${keys.join(', ')} is required`,
  });
}

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findShardForHashKey, partitionKeyToHashKey } from '../../src/internal/hash-key.ts';
import { checkPutRecordsEntry } from '../../src/put-validation.ts';

/** The largest hash key, 2^128 - 1: hash keys range over [0, MAX_HASH_KEY]. */
const MAX_HASH_KEY = 2n ** 128n - 1n;

/** Whether the client's PutRecords validation accepts `value` as an entry's ExplicitHashKey. */
function isValidExplicitHashKey(value: string): boolean {
  const issues: { path: string; rule: string }[] = [];
  checkPutRecordsEntry({ PartitionKey: 'k', Data: 'x', ExplicitHashKey: value }, 'Records[0]', issues);
  return issues.length === 0;
}

// Derived by this project; see test/fixtures/kinesis/README.md.
interface Fixture {
  partition_keys: { name: string; partition_key: string; md5_hex: string; hash_key_decimal: string }[];
  explicit_hash_keys: { value: string; valid: boolean; note?: string }[];
  sequence_numbers: {
    value: string;
    digits: number;
    number_roundtrip: string;
    number_roundtrip_equal: boolean;
    bigint_roundtrip_equal: boolean;
  }[];
}
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/kinesis/partition-keys-and-numbers.json', import.meta.url), 'utf8'),
) as Fixture;

// PutRecordsResultEntry.SequenceNumber pattern (Kinesis API reference).
const SEQUENCE_NUMBER_PATTERN = /^(0|[1-9]\d{0,128})$/;

// Four shards splitting the key space evenly, as CreateStream with ShardCount 4 does.
const QUARTER = (MAX_HASH_KEY + 1n) / 4n;
const shard = (i: number, closed = false) => ({
  ShardId: `shardId-00000000000${i}`,
  HashKeyRange: {
    StartingHashKey: String(QUARTER * BigInt(i)),
    EndingHashKey: String(QUARTER * BigInt(i + 1) - 1n),
  },
  SequenceNumberRange: {
    StartingSequenceNumber: '49545115243490985018280067714973144582180062593244200961',
    ...(closed ? { EndingSequenceNumber: '49545115243490985018280067714973144582180062593244200999' } : {}),
  },
});
const FOUR_SHARDS = [0, 1, 2, 3].map((i) => shard(i));

describe('hash-key', () => {

  it.each(fixture.partition_keys.map((k) => [k.name, k] as const))(
    'maps the fixture key %s to its hash key',
    (_name, key) => {
      const hashKey = partitionKeyToHashKey(key.partition_key);
      expect(typeof hashKey).toBe('bigint');
      expect(hashKey.toString()).toBe(key.hash_key_decimal);
      expect(hashKey).toBe(BigInt(`0x${key.md5_hex}`));
    },
  );

  it('keeps the leading zero bits of a digest (empty key: d41d8cd9…)', () => {
    expect(partitionKeyToHashKey('')).toBe(0xd41d8cd98f00b204e9800998ecf8427en);
  });

  it.each(fixture.explicit_hash_keys.map((k) => [k.value, k.valid, k.note ?? '']))(
    'judges the fixture explicit hash key %j valid: %s %s',
    (value, valid) => {
      expect(isValidExplicitHashKey(value)).toBe(valid);
    },
  );

  it.each([
    ['1', true],
    ['99999999999999999999999999999999999999', true],
    ['340282366920938463463374607431768211454', true],
    ['00', false],
    ['+1', false],
    [' 1', false],
    ['1 ', false],
    ['1e3', false],
    ['1.0', false],
    ['0x10', false],
    ['١', false],
    ['999999999999999999999999999999999999999', false],
  ])('judges %j valid: %s', (value, valid) => {
    expect(isValidExplicitHashKey(value)).toBe(valid);
  });

  it.each([
    ['0', 0],
    [String(QUARTER - 1n), 0],
    [String(QUARTER), 1],
    [String(QUARTER * 2n), 2],
    [String(QUARTER * 3n - 1n), 2],
    [String(MAX_HASH_KEY), 3],
  ])('finds the shard for hash key %s: index %i', (hashKey, index) => {
    expect(findShardForHashKey(FOUR_SHARDS, BigInt(hashKey))).toBe(FOUR_SHARDS[index]);
  });

  it('finds the shard of each fixture partition key', () => {
    for (const key of fixture.partition_keys) {
      const hashKey = BigInt(key.hash_key_decimal);
      const found = findShardForHashKey(FOUR_SHARDS, partitionKeyToHashKey(key.partition_key));
      expect(found).toBe(FOUR_SHARDS[Number(hashKey / QUARTER)]);
    }
  });

  it('returns undefined for a key in no range', () => {
    expect(findShardForHashKey([shard(1), shard(2)], 0n)).toBeUndefined();
    expect(findShardForHashKey([], 0n)).toBeUndefined();
    expect(findShardForHashKey(FOUR_SHARDS, MAX_HASH_KEY + 1n)).toBeUndefined();
    expect(findShardForHashKey(FOUR_SHARDS, -1n)).toBeUndefined();
  });

  it('prefers an open child over its closed parent covering the same range', () => {
    const parent = {
      ...shard(9, true),
      HashKeyRange: { StartingHashKey: '0', EndingHashKey: String(MAX_HASH_KEY) },
    };
    const shards = [parent, ...FOUR_SHARDS];
    expect(findShardForHashKey(shards, QUARTER)).toBe(FOUR_SHARDS[1]);
    expect(findShardForHashKey([parent], QUARTER)).toBe(parent);
  });

  it('accepts shards without SequenceNumberRange', () => {
    const bare = [{ ShardId: 's', HashKeyRange: { StartingHashKey: '0', EndingHashKey: '10' } }];
    expect(findShardForHashKey(bare, 10n)).toBe(bare[0]);
  });

  describe('sequence numbers from the fixture', () => {
    const sorted = [...fixture.sequence_numbers.map((s) => s.value)].sort((a, b) =>
      a.length - b.length || (a < b ? -1 : a > b ? 1 : 0),
    );

    it.each(fixture.sequence_numbers.map((s) => [s.value, s] as const))(
      'round-trips %s as a string and a BigInt, not as a Number',
      (value, entry) => {
        expect(value).toMatch(SEQUENCE_NUMBER_PATTERN);
        expect(value.length).toBe(entry.digits);
        expect(BigInt(value).toString()).toBe(value);
        expect(entry.bigint_roundtrip_equal).toBe(true);
        expect(String(Number(value))).toBe(entry.number_roundtrip);
        expect(String(Number(value)) === value).toBe(entry.number_roundtrip_equal);
        expect(BigInt(Number(value))).not.toBe(BigInt(value));
      },
    );

    it('orders them the same by BigInt and by (length, then lexicographic)', () => {
      const byBigInt = [...sorted].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
      expect(byBigInt).toEqual(sorted);
    });
  });
});

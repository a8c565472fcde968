// Shard prediction. Kinesis maps a record to a shard by its hash key: the ExplicitHashKey when
// given, else the MD5 of the partition key's UTF-8 bytes read as an unsigned 128-bit big-endian
// integer. Each shard owns an inclusive range [StartingHashKey, EndingHashKey] of decimal strings.
// Hash keys exceed 2^53, so all arithmetic is BigInt.
// https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecordsRequestEntry.html
// https://docs.aws.amazon.com/kinesis/latest/APIReference/API_HashKeyRange.html

import { md5Words, md5WordsOfShortAscii } from './md5.ts';
import { encodeUtf8 } from './utf8.ts';

/**
 * The hash key Kinesis derives from a partition key: MD5 over its UTF-8 bytes, read as an
 * unsigned 128-bit big-endian integer.
 *
 * @example
 * partitionKeyToHashKey('a'); // 16955237001963240173058271559858726497n
 */
export function partitionKeyToHashKey(partitionKey: string): bigint {
  const words = keyWords(partitionKey);
  // The digest read big-endian: each little-endian word byte-swapped, word 0 highest.
  return (
    (BigInt(byteSwap(words[0]!)) << 96n) |
    (BigInt(byteSwap(words[1]!)) << 64n) |
    (BigInt(byteSwap(words[2]!)) << 32n) |
    BigInt(byteSwap(words[3]!))
  );
}

/**
 * The top 32 bits of {@link partitionKeyToHashKey}, as an unsigned number: enough to place almost
 * every key among shard ranges without building a BigInt (four conversions, three shifts and
 * three ors cost more than the MD5 of a short key).
 *
 * @example
 * partitionKeyHashHigh('a'); // 0x0cc175b9, i.e. Number(partitionKeyToHashKey('a') >> 96n)
 */
export function partitionKeyHashHigh(partitionKey: string): number {
  return byteSwap(keyWords(partitionKey)[0]!);
}

/** MD5 words of a partition key's UTF-8 bytes: short ASCII keys (most keys) without encoding them. */
function keyWords(partitionKey: string): Int32Array {
  return md5WordsOfShortAscii(partitionKey) ?? md5Words(encodeUtf8(partitionKey));
}

/** A 32-bit word with its bytes reversed, as an unsigned number. */
function byteSwap(word: number): number {
  return (((word & 0xff) << 24) | ((word & 0xff00) << 8) | ((word >>> 8) & 0xff00) | (word >>> 24)) >>> 0;
}

/** The fields of a ListShards `Shard` that {@link findShardForHashKey} reads. */
export interface ShardWithHashKeyRange {
  ShardId: string;
  HashKeyRange: { StartingHashKey: string; EndingHashKey: string };
  SequenceNumberRange?: { EndingSequenceNumber?: string };
}

/**
 * The shard whose hash key range contains `hashKey`, or `undefined` when none does.
 *
 * A closed parent shard (one with `SequenceNumberRange.EndingSequenceNumber`) covers the same
 * range as its children after a reshard, so an open shard is preferred when both match; a
 * closed one is returned only when no open shard covers the key.
 */
export function findShardForHashKey<T extends ShardWithHashKeyRange>(
  shards: readonly T[],
  hashKey: bigint,
): T | undefined {
  let closed: T | undefined;
  for (const shard of shards) {
    const range = shard.HashKeyRange;
    if (hashKey < BigInt(range.StartingHashKey) || hashKey > BigInt(range.EndingHashKey)) continue;
    if (shard.SequenceNumberRange?.EndingSequenceNumber === undefined) return shard;
    closed ??= shard;
  }
  return closed;
}

// The producer writes its PutRecords bodies from the batch itself (src/producer/request.ts) instead
// of going through putRecords() and its validator: the two must be the same bytes, for every kind of
// partition key (escapes, non-ASCII), explicit hash keys, data in shared chunks or arrays of its
// own, aggregated records, and each way of naming the stream.
import { describe, expect, it } from 'vitest';
import { encodeAggregatedRecord } from '../../src/internal/kpl.ts';
import { encodeUtf8 } from '../../src/internal/utf8.ts';
import { resolveRecordLimits } from '../../src/limits.ts';
import type { Aggregate, Batch } from '../../src/producer/batch.ts';
import { DataCopier } from '../../src/producer/data-copy.ts';
import type { Bucket } from '../../src/producer/queue.ts';
import { explicitHashKeyOf, type BufferedRecord } from '../../src/producer/record.ts';
import { bodyFrame, writeBatchBody, type StreamMembers } from '../../src/producer/request.ts';
import { validatePutRecordsInput } from '../../src/put-validation.ts';
import { randomBytes, seededRandom } from '../support/seeded-random.ts';

const limits = resolveRecordLimits(undefined);
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A buffered record as `put()` makes one: its data copied by a DataCopier (a shared chunk, or its own array). */
function buffered(copier: DataCopier, partitionKey: string, data: Uint8Array, explicitHashKey?: string): BufferedRecord {
  const chunk = copier.copy(data, 0);
  const keyBytes = encodeUtf8(partitionKey).length;
  return {
    seq: 0,
    source: { data, partitionKey, explicitHashKey },
    partitionKey,
    chunk,
    offset: copier.lastOffset,
    keyBytes,
    size: keyBytes + data.length,
    putAt: 0,
    state: 'in-flight',
    bucket: undefined,
    attempts: 1,
    extra: explicitHashKey === undefined ? undefined : { explicitHashKey, lastError: undefined, lastCode: undefined },
    resolve: undefined,
  };
}

const KEYS = ['user-1', 'k', 'a"quote', 'back\\slash', 'tab\there', 'nul\u0000', 'ключ', 'emoji 😀', '\u2028line sep', 'x'.repeat(256)];
const STREAMS: StreamMembers[] = [
  { StreamName: 'clicks' },
  { StreamARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/clicks' },
  { StreamName: 'clicks', StreamARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/clicks' },
];

function records(): BufferedRecord[] {
  const random = seededRandom(11);
  const copier = new DataCopier();
  return KEYS.flatMap((key, i) => [
    buffered(copier, key, randomBytes(random, i)), // 0..9 bytes: every base64 tail
    buffered(copier, key, randomBytes(random, 100 + i), i % 3 === 0 ? '340282366920938463463374607431768211455' : String(i)),
    buffered(copier, key, randomBytes(random, 3000)), // an array of its own
  ]);
}

describe('producer request body', () => {
  it.each(STREAMS)('writes what validatePutRecordsInput writes for plain records (%o)', (stream) => {
    const list = records();
    const batch: Batch = { records: list, aggregates: undefined, bytes: 0 };
    const expected = validatePutRecordsInput(
      {
        ...stream,
        Records: list.map((r) => ({
          Data: r.chunk!.bytes.subarray(r.offset, r.offset + r.size - r.keyBytes),
          PartitionKey: r.partitionKey,
          ...(explicitHashKeyOf(r) === undefined ? {} : { ExplicitHashKey: explicitHashKeyOf(r) }),
        })),
      },
      limits,
    );
    expect(text(writeBatchBody(batch, bodyFrame(stream)))).toBe(text(expected));
  });

  it('writes aggregated records, and an aggregate of one sent plain, as validatePutRecordsInput writes them', () => {
    const list = records();
    const bucket = {} as Bucket;
    const aggregate = (members: BufferedRecord[], aggregated: boolean): Aggregate => ({
      bucket,
      records: members,
      aggregated,
      partitionKey: members[0]!.partitionKey,
      keyBytes: members[0]!.keyBytes,
      explicitHashKey: explicitHashKeyOf(members[0]!),
      size: 0,
      users: members.map((r) => ({ partitionKey: r.partitionKey, explicitHashKey: explicitHashKeyOf(r), data: r.chunk!.bytes.subarray(r.offset, r.offset + r.size - r.keyBytes) })),
    });
    const aggregates = [aggregate(list.slice(0, 7), true), aggregate(list.slice(7, 8), false), aggregate(list.slice(8), true)];
    const batch: Batch = { records: list, aggregates, bytes: 0 };
    const stream = { StreamName: 'clicks' };
    const expected = validatePutRecordsInput(
      {
        ...stream,
        Records: aggregates.map((a) => ({
          Data: a.aggregated ? encodeAggregatedRecord(a.users!) : a.users![0]!.data,
          PartitionKey: a.partitionKey,
          ...(a.explicitHashKey === undefined ? {} : { ExplicitHashKey: a.explicitHashKey }),
        })),
      },
      limits,
    );
    expect(text(writeBatchBody(batch, bodyFrame(stream)))).toBe(text(expected));
  });
});

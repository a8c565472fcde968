/**
 * The producer's PutRecords call: the request body written straight from a batch.
 *
 * Why not `putRecords()`: its input is one `{ Data, PartitionKey }` object per record, with a view
 * of the record's data, and `validatePutRecordsInput` checks every entry again and measures it into
 * one more object before writing the body. The producer checked each record when it was put
 * (`checkPutRecordsEntry`, the size rules), each batch stays within the request limits (see
 * batch.ts), and the stream was checked by `createProducer`; so it writes the same JSON, with the
 * same entry writer (internal/put-records-entry.ts), from the buffered records (the data from its
 * place in the shared chunk), and sends it with the client's `send()`: the same signing, retries,
 * errors and answer checks.
 * test/unit/producer-request.test.ts holds the two bodies equal byte for byte.
 * https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html
 */
import { send, type KinesisClient, type OperationSpec } from '../client.ts';
import { BodyWriter } from '../internal/body-writer.ts';
import { putRecordsEntryBytes, writePutRecordsEntry } from '../internal/put-records-entry.ts';
import { utf8ByteLength } from '../internal/utf8.ts';
import { parsePutRecordsOutput } from '../put-validation.ts';
import type { PutRecordsOutput } from '../shapes.ts';
import { aggregateData, type Batch } from './batch.ts';
import { explicitHashKeyOf, type BufferedRecord } from './record.ts';

/** How the producer names its stream, as PutRecords members. */
export interface StreamMembers {
  StreamName?: string;
  StreamARN?: string;
}

/** What is around the records in every body of one producer: `{"Records":[` … `],"StreamName":…}`. */
export interface BodyFrame {
  readonly head: string;
  readonly tail: string;
  readonly tailBytes: number;
}

/** The frame of a producer's bodies; the stream members follow the records in the model's order. */
export function bodyFrame(stream: StreamMembers): BodyFrame {
  let tail = ']';
  // StreamARN before StreamName (StreamId, between them in the model, is not a producer option).
  if (stream.StreamARN !== undefined) tail += `,"StreamARN":${JSON.stringify(stream.StreamARN)}`;
  if (stream.StreamName !== undefined) tail += `,"StreamName":${JSON.stringify(stream.StreamName)}`;
  tail += '}';
  return { head: '{"Records":[', tail, tailBytes: utf8ByteLength(tail) };
}

/** Where a buffered record's data ends in its store. */
function dataEnd(record: BufferedRecord): number {
  return record.offset + record.size - record.keyBytes;
}

/** The PutRecords body of `batch`: the JSON `validatePutRecordsInput` writes for the same entries. */
export function writeBatchBody(batch: Batch, frame: BodyFrame): Uint8Array<ArrayBuffer> {
  const { records, aggregates } = batch;
  let length = frame.head.length + frame.tailBytes;
  let body: BodyWriter;
  if (aggregates === undefined) {
    length += Math.max(0, records.length - 1);
    for (const record of records) length += putRecordsEntryBytes(record.partitionKey, record.keyBytes, explicitHashKeyOf(record), record.size - record.keyBytes);
    body = new BodyWriter(length);
    body.ascii(frame.head);
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      if (i > 0) body.ascii(',');
      writePutRecordsEntry(body, record.partitionKey, record.keyBytes, explicitHashKeyOf(record), record.chunk!.bytes, record.offset, dataEnd(record));
    }
  } else {
    // Aggregates are encoded first: the body's length depends on theirs.
    const data = aggregates.map(aggregateData);
    length += Math.max(0, aggregates.length - 1);
    for (let i = 0; i < aggregates.length; i++) {
      const entry = aggregates[i]!;
      length += putRecordsEntryBytes(entry.partitionKey, entry.keyBytes, entry.explicitHashKey, data[i]!.length);
    }
    body = new BodyWriter(length);
    body.ascii(frame.head);
    for (let i = 0; i < aggregates.length; i++) {
      const entry = aggregates[i]!;
      const bytes = data[i]!;
      if (i > 0) body.ascii(',');
      writePutRecordsEntry(body, entry.partitionKey, entry.keyBytes, entry.explicitHashKey, bytes, 0, bytes.length);
    }
  }
  body.utf8(frame.tail, frame.tailBytes);
  return body.finish();
}

interface BatchRequest {
  batch: Batch;
  frame: BodyFrame;
}

/** PutRecords with the body written from a batch; the answer is checked as `putRecords()` checks it. */
const PRODUCER_PUT_RECORDS: OperationSpec = {
  name: 'PutRecords',
  input: (request) => writeBatchBody((request as BatchRequest).batch, (request as BatchRequest).frame),
  output: parsePutRecordsOutput,
};

/** Sends one batch as a PutRecords request, through the client's retries. */
export function sendBatch(client: KinesisClient, frame: BodyFrame, batch: Batch): Promise<PutRecordsOutput> {
  const request: BatchRequest = { batch, frame };
  return send(client, PRODUCER_PUT_RECORDS, request) as Promise<PutRecordsOutput>;
}

// A do-nothing Kinesis endpoint for client-cost benchmarks: it reads each request body and answers
// a canned success of the right size (PutRecords: one result entry per record sent; GetRecords:
// 10,000 records), without storing anything. Prints its port on stdout.
import { createServer } from 'node:http';

const SEQUENCE = '49680721631307556702168416044959309240192869867364286466';
const cache = new Map();
function putRecordsResponse(count) {
  let body = cache.get(count);
  if (!body) {
    const entry = { SequenceNumber: SEQUENCE, ShardId: 'shardId-000000000000' };
    body = JSON.stringify({ FailedRecordCount: 0, Records: Array.from({ length: count }, () => entry) });
    cache.set(count, body);
  }
  return body;
}

/**
 * A GetRecords answer of 10,000 records (the API's maximum per call) of 100 random bytes each, with
 * the members the service sends, built once: the read benchmark's canned answer.
 */
let getRecordsBody;
function getRecordsResponse() {
  if (!getRecordsBody) {
    let x = 0x2545f491;
    const records = Array.from({ length: 10_000 }, (_, i) => {
      const data = Buffer.alloc(100);
      for (let j = 0; j < data.length; j++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        data[j] = x & 0xff;
      }
      return { SequenceNumber: `4968072163130755670216841604495930924019286986736428${String(i).padStart(4, '0')}`, ApproximateArrivalTimestamp: 1764547200 + i / 1000, Data: data.toString('base64'), PartitionKey: `user-${i}` };
    });
    getRecordsBody = JSON.stringify({ Records: records, NextShardIterator: 'AAAAAAAAAAE=', MillisBehindLatest: 0 });
  }
  return getRecordsBody;
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const target = String(req.headers['x-amz-target'] ?? '');
    let body = '{}';
    if (target.endsWith('.PutRecords')) {
      // Count entries without a full parse: each entry has exactly one "PartitionKey".
      const text = Buffer.concat(chunks).toString('utf8');
      const count = text.split('"PartitionKey"').length - 1;
      body = putRecordsResponse(count);
    } else if (target.endsWith('.GetRecords')) {
      body = getRecordsResponse();
    } else if (target.endsWith('.PutRecord')) {
      body = JSON.stringify({ SequenceNumber: SEQUENCE, ShardId: 'shardId-000000000000' });
    }
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'bench', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));

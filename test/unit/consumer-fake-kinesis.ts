// An in-memory Kinesis behind an injected fetch, for the consumer's unit tests: ListShards,
// GetShardIterator and GetRecords over shards that can be split and merged, plus scripted faults.
// Wire shapes follow the Kinesis API reference (API_ListShards, API_GetShardIterator,
// API_GetRecords: `NextShardIterator` absent and `ChildShards` set at the end of a closed shard)
// and what kinesis-local answers (see test/support/kinesis-local.ts).
import { createKinesisClient, type KinesisClient } from '../../src/client.ts';
import { bodyText } from '../support/fake-fetch.ts';

const MAX_HASH = (1n << 128n) - 1n;

export interface FakeRecord {
  sequenceNumber: string;
  partitionKey: string;
  data: Uint8Array;
  arrival: number;
}

export interface FakeShard {
  id: string;
  parents: string[];
  start: bigint;
  end: bigint;
  records: FakeRecord[];
  closed: boolean;
  children: string[];
}

export interface FakeCall {
  operation: string;
  body: any;
  at: number;
}

export interface ScriptedFault {
  operation: string;
  status: number;
  type: string;
  message?: string;
  /** Only when this returns true for the request body. */
  when?: (body: any) => boolean;
}

export interface FakeKinesis {
  shards: Map<string, FakeShard>;
  calls: FakeCall[];
  /** Requests whose response has not been produced yet (with `latencyMs`), aborted ones excluded. */
  readonly openRequests: number;
  /** Faults answered, first matching first, each once. */
  faults: ScriptedFault[];
  /** Wait this long (setTimeout, honouring the request's signal) before answering. */
  latencyMs: number;
  /** Operations `latencyMs` applies to; all when undefined. */
  latencyOperations: string[] | undefined;
  /** The next this many GetRecords answers are empty pages behind the tip (a gap), iterator unchanged. */
  gapPages: number;
  fetch: typeof fetch;
  /** A client of this fake; `quota` is the client's retry quota (its default when undefined). */
  client(options?: { maxAttempts?: number; quota?: number }): KinesisClient;
  put(shardId: string, partitionKey: string, data: string | Uint8Array, arrival?: number): string;
  addShard(parents?: string[]): FakeShard;
  split(shardId: string): [FakeShard, FakeShard];
  merge(a: string, b: string): FakeShard;
  callsOf(operation: string): FakeCall[];
}

const encoder = new TextEncoder();
let sequence = 0n;
const nextSequenceNumber = () => String(49_000_000_000_000_000_000n + ++sequence);

function shardIdOf(n: number): string {
  return `shardId-${String(n).padStart(12, '0')}`;
}

function errorResponse(status: number, type: string, message = `${type} (fake)`): Response {
  return new Response(JSON.stringify({ __type: type, message }), {
    status,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-RequestId': 'fake-request' },
  });
}

function okResponse(body: unknown): Response {
  return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/x-amz-json-1.1' } });
}

/** A fake with `shardCount` open shards splitting the hash space evenly. */
export function createFakeKinesis(shardCount = 1): FakeKinesis {
  const shards = new Map<string, FakeShard>();
  const calls: FakeCall[] = [];
  let counter = 0;
  let open = 0;

  const make = (parents: string[], start: bigint, end: bigint): FakeShard => {
    const shard: FakeShard = { id: shardIdOf(counter++), parents, start, end, records: [], closed: false, children: [] };
    shards.set(shard.id, shard);
    return shard;
  };
  const step = (MAX_HASH + 1n) / BigInt(shardCount);
  for (let i = 0; i < shardCount; i++) {
    make([], step * BigInt(i), i === shardCount - 1 ? MAX_HASH : step * BigInt(i + 1) - 1n);
  }

  const get = (id: string): FakeShard => {
    const shard = shards.get(id);
    if (!shard) throw Object.assign(new Error(`no shard ${id}`), { fault: 'ResourceNotFoundException' });
    return shard;
  };

  const iteratorFor = (shard: FakeShard, index: number) => Buffer.from(JSON.stringify([shard.id, index])).toString('base64');

  const handle = (operation: string, body: any): Response => {
    const fault = fake.faults.findIndex((f) => f.operation === operation && (f.when ? f.when(body) : true));
    if (fault >= 0) {
      const [f] = fake.faults.splice(fault, 1);
      return errorResponse(f!.status, f!.type, f!.message);
    }
    switch (operation) {
      case 'ListShards':
        return okResponse({
          Shards: [...shards.values()].map((s) => ({
            ShardId: s.id,
            ...(s.parents[0] ? { ParentShardId: s.parents[0] } : {}),
            ...(s.parents[1] ? { AdjacentParentShardId: s.parents[1] } : {}),
            HashKeyRange: { StartingHashKey: String(s.start), EndingHashKey: String(s.end) },
            SequenceNumberRange: {
              StartingSequenceNumber: '1',
              ...(s.closed ? { EndingSequenceNumber: s.records.at(-1)?.sequenceNumber ?? '2' } : {}),
            },
          })),
        });
      case 'GetShardIterator': {
        const shard = shards.get(body.ShardId);
        if (!shard) return errorResponse(400, 'ResourceNotFoundException', `Shard ${body.ShardId} not found`);
        let index: number;
        switch (body.ShardIteratorType) {
          case 'TRIM_HORIZON':
            index = 0;
            break;
          case 'LATEST':
            index = shard.records.length;
            break;
          case 'AT_SEQUENCE_NUMBER':
          case 'AFTER_SEQUENCE_NUMBER': {
            const at = shard.records.findIndex((r) => BigInt(r.sequenceNumber) >= BigInt(body.StartingSequenceNumber));
            index = at < 0 ? shard.records.length : at;
            if (body.ShardIteratorType === 'AFTER_SEQUENCE_NUMBER' && shard.records[index]?.sequenceNumber === body.StartingSequenceNumber) index++;
            break;
          }
          case 'AT_TIMESTAMP': {
            const at = shard.records.findIndex((r) => r.arrival >= body.Timestamp * 1000);
            index = at < 0 ? shard.records.length : at;
            break;
          }
          default:
            return errorResponse(400, 'InvalidArgumentException', 'bad type');
        }
        return okResponse({ ShardIterator: iteratorFor(shard, index) });
      }
      case 'GetRecords': {
        if (fake.gapPages > 0) {
          fake.gapPages--;
          return okResponse({ Records: [], MillisBehindLatest: 5000, NextShardIterator: body.ShardIterator });
        }
        const [id, index] = JSON.parse(Buffer.from(body.ShardIterator, 'base64').toString()) as [string, number];
        const shard = get(id);
        const limit = body.Limit ?? 10_000;
        const page = shard.records.slice(index, index + limit);
        const next = index + page.length;
        const atEnd = shard.closed && next >= shard.records.length;
        return okResponse({
          Records: page.map((r) => ({
            SequenceNumber: r.sequenceNumber,
            PartitionKey: r.partitionKey,
            Data: Buffer.from(r.data).toString('base64'),
            ApproximateArrivalTimestamp: r.arrival / 1000,
          })),
          MillisBehindLatest: next >= shard.records.length ? 0 : 1000,
          ...(atEnd
            ? {
                ChildShards: shard.children.map((c) => {
                  const child = get(c);
                  return {
                    ShardId: child.id,
                    ParentShards: child.parents,
                    HashKeyRange: { StartingHashKey: String(child.start), EndingHashKey: String(child.end) },
                  };
                }),
              }
            : { NextShardIterator: iteratorFor(shard, next) }),
        });
      }
      default:
        return errorResponse(400, 'UnknownOperationException', operation);
    }
  };

  const fake: FakeKinesis = {
    shards,
    calls,
    get openRequests() {
      return open;
    },
    faults: [],
    latencyMs: 0,
    latencyOperations: undefined,
    gapPages: 0,
    async fetch(_input, init) {
      const operation = String(new Headers(init?.headers).get('x-amz-target')).split('.')[1]!;
      const body = JSON.parse(bodyText(init?.body));
      calls.push({ operation, body, at: Date.now() });
      const signal = init?.signal ?? undefined;
      if (fake.latencyMs > 0 && (fake.latencyOperations?.includes(operation) ?? true)) {
        open++;
        try {
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(resolve, fake.latencyMs);
            signal?.addEventListener('abort', () => {
              clearTimeout(timer);
              reject(signal.reason);
            }, { once: true });
          });
        } finally {
          open--;
        }
      }
      if (signal?.aborted) throw signal.reason;
      return handle(operation, body);
    },
    client(options = {}) {
      return createKinesisClient({
        region: 'us-east-1',
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
        endpoint: 'https://kinesis.us-east-1.amazonaws.com',
        fetch: fake.fetch,
        retry: { maxAttempts: options.maxAttempts ?? 1, ...(options.quota === undefined ? {} : { quota: options.quota }) },
      });
    },
    put(shardId, partitionKey, data, arrival = Date.now()) {
      const shard = get(shardId);
      if (shard.closed) throw new Error(`${shardId} is closed`);
      const sequenceNumber = nextSequenceNumber();
      shard.records.push({ sequenceNumber, partitionKey, data: typeof data === 'string' ? encoder.encode(data) : data, arrival });
      return sequenceNumber;
    },
    addShard(parents = []) {
      return make(parents, 0n, MAX_HASH);
    },
    split(shardId) {
      const parent = get(shardId);
      parent.closed = true;
      const middle = (parent.start + parent.end) / 2n;
      const a = make([parent.id], parent.start, middle);
      const b = make([parent.id], middle + 1n, parent.end);
      parent.children = [a.id, b.id];
      return [a, b];
    },
    merge(first, second) {
      const a = get(first);
      const b = get(second);
      a.closed = true;
      b.closed = true;
      const child = make([a.id, b.id], a.start < b.start ? a.start : b.start, a.end > b.end ? a.end : b.end);
      a.children = [child.id];
      b.children = [child.id];
      return child;
    },
    callsOf(operation) {
      return calls.filter((c) => c.operation === operation);
    },
  };
  return fake;
}

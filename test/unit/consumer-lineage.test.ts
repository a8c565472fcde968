// The shard graph rules (src/consumer/lineage.ts) and the rendezvous that merges shard readers
// (src/consumer/handoff.ts), without any I/O. Shard shapes follow ListShards / ChildShards in the
// Kinesis API reference.
import { describe, expect, it } from 'vitest';
import { SHARD_END, type Checkpoint } from '../../src/consumer/checkpoints.ts';
import { createHandoff } from '../../src/consumer/handoff.ts';
import { childShardInfo, createLineage, shardInfo, type ShardInfo } from '../../src/consumer/lineage.ts';
import type { StreamStartPosition } from '../../src/consumer/position.ts';

const info = (shardId: string, parentIds: string[] = [], closed = false): ShardInfo => ({ shardId, parentIds, closed });

/** Builds a graph, loads `checkpoints`, decides, and returns it. */
function plan(from: StreamStartPosition, shards: ShardInfo[], checkpoints: Record<string, Checkpoint> = {}) {
  const lineage = createLineage(from);
  for (const node of lineage.add(shards, true)) lineage.loaded(node, checkpoints[node.shardId]);
  lineage.decide();
  const view = () => Object.fromEntries([...lineage.nodes.values()].map((n) => [n.shardId, n.start ? `${n.state}:${n.start.type}` : n.state]));
  return { lineage, view };
}

// s0 split into s2 + s3; s1 and s2 merged into s4. s0, s1, s2 are closed.
const RESHARDED = [info('s0', [], true), info('s1', [], true), info('s2', ['s0'], true), info('s3', ['s0']), info('s4', ['s1', 's2'])];

describe('createLineage', () => {
  it('reads roots first and a child only once all its parents are done', () => {
    const { lineage, view } = plan({ type: 'TRIM_HORIZON' }, RESHARDED);
    expect(view()).toEqual({
      s0: 'waiting:TRIM_HORIZON',
      s1: 'waiting:TRIM_HORIZON',
      s2: 'waiting:TRIM_HORIZON',
      s3: 'waiting:TRIM_HORIZON',
      s4: 'waiting:TRIM_HORIZON',
    });
    const ids = () => lineage.takeReady().map((n) => n.shardId);
    expect(ids()).toEqual(['s0', 's1']);
    lineage.finish('s1');
    expect(ids()).toEqual([]);
    lineage.finish('s0');
    expect(ids()).toEqual(['s2', 's3']);
    lineage.finish('s2');
    expect(ids()).toEqual(['s4']);
    expect(lineage.isComplete()).toBe(false);
    lineage.finish('s3');
    lineage.finish('s4');
    expect(lineage.isComplete()).toBe(true);
  });

  it('starts open shards at LATEST and skips shards already closed', () => {
    const { lineage, view } = plan({ type: 'LATEST' }, RESHARDED);
    expect(view()).toEqual({ s0: 'skipped', s1: 'skipped', s2: 'skipped', s3: 'waiting:LATEST', s4: 'waiting:LATEST' });
    expect(lineage.takeReady().map((n) => n.shardId)).toEqual(['s3', 's4']);
  });

  it('reads a child from TRIM_HORIZON when its parent was read, also under LATEST', () => {
    const { lineage, view } = plan({ type: 'LATEST' }, [info('s0')]);
    lineage.takeReady();
    for (const node of lineage.add([childShardInfo({ ShardId: 's1', ParentShards: ['s0'], HashKeyRange: { StartingHashKey: '0', EndingHashKey: '1' } })], false)) {
      lineage.loaded(node, undefined);
    }
    lineage.decide();
    expect(view()).toEqual({ s0: 'reading:LATEST', s1: 'waiting:TRIM_HORIZON' });
  });

  it('reads a root that appears later from TRIM_HORIZON under LATEST', () => {
    const { lineage, view } = plan({ type: 'LATEST' }, [info('s0')]);
    for (const node of lineage.add([info('s9', [], true)], false)) lineage.loaded(node, undefined);
    lineage.decide();
    expect(view()).toMatchObject({ s9: 'waiting:TRIM_HORIZON' });
  });

  it('resumes after checkpoints, treats SHARD_END as done, and starts children of checkpointed parents at the timestamp under AT_TIMESTAMP', () => {
    // A resumed AT_TIMESTAMP run must not yield a child's records from before the timestamp, which
    // the first run skipped (consumer-invariants.test.ts and enhanced-invariants.test.ts found it).
    const timestamp = new Date('2026-12-01T00:00:00Z');
    const { lineage, view } = plan({ type: 'AT_TIMESTAMP', timestamp }, RESHARDED, {
      s0: { sequenceNumber: SHARD_END },
      s1: { sequenceNumber: '11', subSequenceNumber: 2 },
    });
    expect(view()).toEqual({
      s0: 'done',
      s1: 'waiting:AFTER_SEQUENCE_NUMBER',
      s2: 'waiting:AT_TIMESTAMP',
      s3: 'waiting:AT_TIMESTAMP',
      s4: 'waiting:AT_TIMESTAMP',
    });
    expect(lineage.nodes.get('s1')!.start).toEqual({ type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: '11', subSequenceNumber: 2 });
    expect(lineage.nodes.get('s4')!.start).toEqual({ type: 'AT_TIMESTAMP', timestamp });
    expect(lineage.takeReady().map((n) => n.shardId)).toEqual(['s1', 's2', 's3']);
  });

  it.each([{ type: 'TRIM_HORIZON' }, { type: 'LATEST' }] as const)('starts children of checkpointed parents at TRIM_HORIZON under $type', (from) => {
    const { view } = plan(from, RESHARDED, { s0: { sequenceNumber: SHARD_END }, s1: { sequenceNumber: '11', subSequenceNumber: 2 } });
    expect(view()).toEqual({
      s0: 'done',
      s1: 'waiting:AFTER_SEQUENCE_NUMBER',
      s2: 'waiting:TRIM_HORIZON',
      s3: 'waiting:TRIM_HORIZON',
      s4: 'waiting:TRIM_HORIZON',
    });
  });

  it('starts children of shards started at a timestamp at the same timestamp', () => {
    const timestamp = new Date('2026-12-01T00:00:00Z');
    const { view } = plan({ type: 'AT_TIMESTAMP', timestamp }, RESHARDED);
    expect(Object.values(view())).toEqual(Array(5).fill('waiting:AT_TIMESTAMP'));
  });

  it('ignores parents that are no longer listed (expired)', () => {
    const { lineage } = plan({ type: 'TRIM_HORIZON' }, [info('s5', ['gone-1', 'gone-2'])]);
    expect(lineage.takeReady().map((n) => n.shardId)).toEqual(['s5']);
    expect(lineage.hasUnknownParent(info('s6', ['s5', 'gone-1']))).toBe(true);
    expect(lineage.hasUnknownParent(info('s6', ['s5']))).toBe(false);
  });

  it('waits for a parent whose checkpoint is still loading', () => {
    const lineage = createLineage({ type: 'TRIM_HORIZON' });
    const [parent] = lineage.add([info('s0', [], true)], true);
    for (const node of lineage.add([info('s1', ['s0'])], false)) lineage.loaded(node, undefined);
    lineage.decide();
    expect(lineage.nodes.get('s1')!.state).toBe('undecided');
    lineage.loaded(parent!, { sequenceNumber: SHARD_END });
    lineage.decide();
    expect(lineage.takeReady().map((n) => n.shardId)).toEqual(['s1']);
  });

  it('adds a shard once, however often it is listed', () => {
    const lineage = createLineage({ type: 'TRIM_HORIZON' });
    expect(lineage.add([info('s0'), info('s0')], true)).toHaveLength(1);
    expect(lineage.add([info('s0')], false)).toHaveLength(0);
  });

  it('reads parents and the closed state from ListShards', () => {
    expect(
      shardInfo({
        ShardId: 's4',
        ParentShardId: 's1',
        AdjacentParentShardId: 's2',
        HashKeyRange: { StartingHashKey: '0', EndingHashKey: '9' },
        SequenceNumberRange: { StartingSequenceNumber: '1', EndingSequenceNumber: '5' },
      }),
    ).toEqual({ shardId: 's4', parentIds: ['s1', 's2'], closed: true });
    expect(shardInfo({ ShardId: 's0', HashKeyRange: { StartingHashKey: '0', EndingHashKey: '9' }, SequenceNumberRange: { StartingSequenceNumber: '1' } })).toEqual({
      shardId: 's0',
      parentIds: [],
      closed: false,
    });
  });
});

describe('createHandoff', () => {
  it('hands items over one at a time, first come first served, and resolves put only when taken', async () => {
    const handoff = createHandoff<string>(new AbortController().signal);
    const taken: string[] = [];
    const a = handoff.put('a').then(() => taken.push('a taken'));
    const b = handoff.put('b').then(() => taken.push('b taken'));
    await Promise.resolve();
    expect(taken).toEqual([]);
    expect(await handoff.take()).toBe('a');
    await a;
    expect(taken).toEqual(['a taken']);
    expect(await handoff.take()).toBe('b');
    await b;
    const waiting = handoff.take();
    await handoff.put('c');
    expect(await waiting).toBe('c');
  });

  it('rejects the taker with the first failure', async () => {
    const handoff = createHandoff<string>(new AbortController().signal);
    const waiting = handoff.take();
    handoff.fail(new Error('first'));
    handoff.fail(new Error('second'));
    await expect(waiting).rejects.toThrow('first');
    await expect(handoff.take()).rejects.toThrow('first');
  });

  it('rejects every pending and later call when the signal aborts', async () => {
    const controller = new AbortController();
    const handoff = createHandoff<string>(controller.signal);
    const put = handoff.put('x');
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(put).rejects.toBe(reason);
    await expect(handoff.take()).rejects.toBe(reason);
    await expect(handoff.put('y')).rejects.toBe(reason);
  });
});

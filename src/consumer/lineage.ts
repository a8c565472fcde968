/**
 * The shard graph of a stream and the rules that keep per-key order across resharding: a shard
 * is read only after all its parents (both, after a merge) are read to their end, and where each
 * shard starts. No I/O here; the stream reader feeds it shard lists, checkpoints and shard ends.
 *
 * After a split or merge the parent is closed and its hash range continues in the children, so a
 * key's older records are in the parent and its newer ones in a child.
 * https://docs.aws.amazon.com/streams/latest/dev/kinesis-using-sdk-java-after-resharding.html
 */
import type { ChildShard, Shard } from '../shapes.ts';
import { SHARD_END, startPositionAfter, type Checkpoint } from './checkpoints.ts';
import type { StartPosition, StreamStartPosition } from './position.ts';

/**
 * `loading`: checkpoint not read yet. `undecided`: waits for its parents' decisions.
 * `waiting`: will be read once its parents are finished. `reading`: being read.
 * `done`: read to its end (now or in an earlier run: SHARD_END). `skipped`: not read (closed
 * before a LATEST start).
 */
export type ShardState = 'loading' | 'undecided' | 'waiting' | 'reading' | 'done' | 'skipped';

export interface ShardInfo {
  shardId: string;
  parentIds: string[];
  /** Closed (has an ending sequence number) when listed. */
  closed: boolean;
}

export interface ShardNode extends ShardInfo {
  state: ShardState;
  /** Seen in the first listing of this run. */
  atStart: boolean;
  checkpoint: Checkpoint | undefined;
  /** Where reading starts; set when `waiting`. */
  start: StartPosition | undefined;
}

/** A listed shard's id, parents (both after a merge) and whether it is closed. */
export function shardInfo(shard: Shard): ShardInfo {
  const parentIds: string[] = [];
  if (shard.ParentShardId) parentIds.push(shard.ParentShardId);
  if (shard.AdjacentParentShardId) parentIds.push(shard.AdjacentParentShardId);
  return { shardId: shard.ShardId, parentIds, closed: shard.SequenceNumberRange.EndingSequenceNumber !== undefined };
}

/** A child named by GetRecords' `ChildShards` at the end of its parent: new, so open. */
export function childShardInfo(child: ChildShard): ShardInfo {
  return { shardId: child.ShardId, parentIds: [...child.ParentShards], closed: false };
}

/** The shard graph of one stream reader; see {@link createLineage}. */
export interface Lineage {
  readonly nodes: ReadonlyMap<string, ShardNode>;
  /** Adds the shards not known yet, in state `loading`, and returns them. */
  add(shards: readonly ShardInfo[], atStart: boolean): ShardNode[];
  /** Stores a loaded checkpoint (or its absence): the node becomes `undecided`. */
  loaded(node: ShardNode, checkpoint: Checkpoint | undefined): void;
  /** Decides every `undecided` node whose parents are decided. */
  decide(): void;
  /** The `waiting` nodes whose parents, and their ancestors, are all finished, now marked `reading`. */
  takeReady(): ShardNode[];
  /** A shard was read to its end. */
  finish(shardId: string): void;
  /** Some of `shard`'s parents are not in the graph. */
  hasUnknownParent(shard: ShardInfo): boolean;
  /** Every known shard is `done` or `skipped`. */
  isComplete(): boolean;
}

const isFinished = (node: ShardNode) => node.state === 'done' || node.state === 'skipped';
const isDecided = (node: ShardNode) => node.state !== 'loading' && node.state !== 'undecided';

/** A graph whose shards without a checkpoint start per `from`. */
export function createLineage(from: StreamStartPosition): Lineage {
  const nodes = new Map<string, ShardNode>();
  // Parents absent from the graph (expired beyond the retention period) do not hold children back.
  const presentParents = (node: ShardInfo) =>
    node.parentIds.map((id) => nodes.get(id)).filter((p): p is ShardNode => p !== undefined);

  const decideOne = (node: ShardNode): boolean => {
    const checkpoint = node.checkpoint;
    if (checkpoint) {
      const after = startPositionAfter(checkpoint);
      if (after === undefined || checkpoint.sequenceNumber === SHARD_END) node.state = 'done';
      else Object.assign(node, { state: 'waiting', start: after });
      return true;
    }
    const parents = presentParents(node);
    if (!parents.every(isDecided)) return false;
    const readParents = parents.filter((p) => p.state !== 'skipped');
    if (readParents.length > 0) {
      // Records of the children come after all of the parents', so a child read after its parents
      // starts at its oldest record (LATEST would lose what was put to it before it was reached).
      // Under AT_TIMESTAMP it starts at the timestamp, also when its parents finished in an earlier
      // run (SHARD_END): if a parent closed after the timestamp, every record of the child is after
      // it; if before, the child's records before it are out of range, and a resumed run yielded
      // them (found by test/unit/consumer-invariants.test.ts and enhanced-invariants.test.ts).
      Object.assign(node, { state: 'waiting', start: from.type === 'AT_TIMESTAMP' ? from : { type: 'TRIM_HORIZON' } });
      return true;
    }
    if (from.type === 'LATEST') {
      // LATEST applies to the shards open when reading starts; a shard that appears later is new,
      // so all of it is read.
      if (node.atStart && node.closed) node.state = 'skipped';
      else Object.assign(node, { state: 'waiting', start: node.atStart ? from : { type: 'TRIM_HORIZON' } });
      return true;
    }
    Object.assign(node, { state: 'waiting', start: from });
    return true;
  };

  return {
    nodes,
    add(shards, atStart) {
      const added: ShardNode[] = [];
      for (const info of shards) {
        if (nodes.has(info.shardId)) continue;
        const node: ShardNode = { ...info, state: 'loading', atStart, checkpoint: undefined, start: undefined };
        nodes.set(info.shardId, node);
        added.push(node);
      }
      return added;
    },
    loaded(node, checkpoint) {
      node.checkpoint = checkpoint;
      node.state = 'undecided';
    },
    decide() {
      for (let progress = true; progress; ) {
        progress = false;
        for (const node of nodes.values()) {
          if (node.state === 'undecided' && decideOne(node)) progress = true;
        }
      }
    },
    takeReady() {
      // Finished, and so are all its ancestors. A shard finished in an earlier run (SHARD_END) can
      // have an ancestor that is not: in manual mode a shard's SHARD_END waits for its last record
      // to be checkpointed, while its children are read on; a resumed reader then reads that
      // ancestor's tail again, and those records come before the children's (per-key order). Found
      // by test/unit/consumer-invariants.test.ts.
      const settled = new Map<string, boolean>();
      const isSettled = (node: ShardNode): boolean => {
        let value = settled.get(node.shardId);
        if (value === undefined) {
          settled.set(node.shardId, false); // a cycle in a malformed listing holds its shards back
          value = isFinished(node) && presentParents(node).every(isSettled);
          settled.set(node.shardId, value);
        }
        return value;
      };
      const ready: ShardNode[] = [];
      for (const node of nodes.values()) {
        if (node.state === 'waiting' && presentParents(node).every(isSettled)) {
          node.state = 'reading';
          ready.push(node);
        }
      }
      return ready;
    },
    finish(shardId) {
      const node = nodes.get(shardId);
      if (node) node.state = 'done';
    },
    hasUnknownParent(shard) {
      return shard.parentIds.some((id) => !nodes.has(id));
    },
    isComplete() {
      for (const node of nodes.values()) if (!isFinished(node)) return false;
      return true;
    },
  };
}

// RecordQueue keeps a bucket's records in put order in a ring of slots: records settle at the front,
// wrap around the ring's end, grow it, and settle out of order in the middle (per-key ordering).
import { describe, expect, it } from 'vitest';
import { RecordQueue } from '../../src/producer/queue.ts';
import type { BufferedRecord } from '../../src/producer/record.ts';

function record(seq: number): BufferedRecord {
  return { seq, size: 10, state: 'waiting' } as BufferedRecord;
}

const seqs = (queue: RecordQueue) => [...queue.records()].map((r) => r.seq);

describe('RecordQueue', () => {
  it('keeps put order while records settle at the front and the ring wraps and grows', () => {
    const queue = new RecordQueue();
    const live: BufferedRecord[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 7 + (round % 5) * 3; i++) {
        const r = record(next++);
        queue.push(r);
        live.push(r);
      }
      // The oldest few go out and settle.
      for (const r of live.splice(0, 5 + (round % 4))) {
        queue.markInFlight(r);
        queue.markDone(r);
      }
      expect(seqs(queue)).toEqual(live.map((r) => r.seq));
      expect(queue.queued).toBe(live.length);
      expect(queue.queuedBytes).toBe(live.length * 10);
      expect(queue.firstQueued()).toBe(live[0]);
    }
  });

  it('drops records settled in the middle, and scans queued records past those in flight', () => {
    const queue = new RecordQueue();
    const all = Array.from({ length: 1000 }, (_, i) => record(i));
    for (const r of all) queue.push(r);
    // Every third record settles (out of order), the first 100 are in flight.
    for (const r of all) if (r.seq % 3 === 1) queue.markDone(r);
    for (const r of all.slice(0, 100)) if (r.state === 'queued') queue.markInFlight(r);
    const unsettled = all.filter((r) => r.state !== 'done');
    expect(seqs(queue)).toEqual(unsettled.map((r) => r.seq));
    expect(queue.length).toBe(unsettled.length);
    const scanned: number[] = [];
    queue.scanQueued((r) => (scanned.push(r.seq), true));
    expect(scanned).toEqual(unsettled.filter((r) => r.state === 'queued').map((r) => r.seq));
    // A failed record waits again at its old place.
    queue.markQueued(all[0]!);
    expect(queue.firstQueued()).toBe(all[0]);
  });

  it('merges moved records by put order, takes records out, and gives memory back when emptied', () => {
    const queue = new RecordQueue();
    const all = Array.from({ length: 5000 }, (_, i) => record(i));
    for (const r of all) if (r.seq % 2 === 0) queue.push(r);
    queue.insertAll(all.filter((r) => r.seq % 2 === 1));
    expect(seqs(queue)).toEqual(all.map((r) => r.seq));
    expect(queue.removeWhere((r) => r.seq % 5 !== 0)).toBe(4000);
    expect(seqs(queue)).toEqual(all.filter((r) => r.seq % 5 === 0).map((r) => r.seq));
    for (const r of all) if (r.seq % 5 === 0) queue.markDone(r);
    expect(queue.isEmpty).toBe(true);
    const more = Array.from({ length: 20 }, (_, i) => record(5000 + i));
    for (const r of more) queue.push(r);
    expect(seqs(queue)).toEqual(more.map((r) => r.seq));
  });
});

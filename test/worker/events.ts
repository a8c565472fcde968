// Shared by the ingest Worker's test files: valid tracker events, and reading them back from the stream.
import { randomUUID } from 'node:crypto';
import type { TrackerEvent } from '../../src/tracker/event.ts';
import { readAllRecords, type StoredRecord } from '../support/kinesis-local.ts';

/** A valid event; the shape is the wire contract in src/tracker/event.ts. */
export function makeEvent(overrides: Partial<TrackerEvent> & Record<string, unknown> = {}): TrackerEvent {
  return {
    id: randomUUID(),
    type: 'track',
    name: 'button_click',
    ts: Date.now(),
    anonymousId: 'anon-1',
    sessionId: `session-${randomUUID().slice(0, 8)}`,
    url: 'https://shop.example/pricing',
    referrer: 'https://shop.example/',
    viewport: { w: 1280, h: 720 },
    properties: { plan: 'pro' },
    ...overrides,
  } as TrackerEvent;
}

/** Records of `streamName` whose data is an event with one of these ids. */
export async function storedEvents(
  kinesisEndpoint: string,
  streamName: string,
  ids: readonly string[],
): Promise<{ record: StoredRecord; event: any }[]> {
  const wanted = new Set(ids);
  const found: { record: StoredRecord; event: any }[] = [];
  for (const record of await readAllRecords(kinesisEndpoint, streamName, { maxPages: 100 })) {
    const event = JSON.parse(Buffer.from(record.Data, 'base64').toString('utf8'));
    if (wanted.has(event.id)) found.push({ record, event });
  }
  return found;
}

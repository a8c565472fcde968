// The `npm start` clickstream demo (scripts/clickstream-demo.mjs), run in-process on the library's
// sources: it starts the local Kinesis, the Worker and the demo page, tails the stream with the
// consumer, and stops everything when its signal aborts (what Ctrl-C does).
import { describe, expect, it } from 'vitest';
import * as client from '../../src/index.ts';
import * as consumer from '../../src/consumer/index.ts';
import { runClickstreamDemo } from '../../scripts/clickstream-demo.mjs';

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function refused(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return false;
  } catch {
    return true;
  }
}

describe('clickstream demo', () => {
  it('serves the page, tails events posted to the Worker, and stops everything on abort', { timeout: 120_000 }, async () => {
    const lines: string[] = [];
    const controller = new AbortController();
    const run = runClickstreamDemo({ lib: { ...client, ...consumer }, signal: controller.signal, log: (line) => lines.push(line) });
    run.catch(() => {});
    try {
      await until('the demo to print its URLs', () => lines.some((line) => line.startsWith('demo page')), 90_000);
      const pageUrl = /demo page\s+(\S+)/.exec(lines.join('\n'))![1]!;
      const collectUrl = /ingest Worker\s+(\S+)/.exec(lines.join('\n'))![1]!;
      const origin = new URL(pageUrl).origin;

      const html = await (await fetch(pageUrl)).text();
      expect(html).toContain('<script src="/tracker.js"></script>');
      expect(await (await fetch(`${origin}/tracker.js`)).text()).toContain('createTracker');
      expect(await (await fetch(`${origin}/config.js`)).text()).toContain(collectUrl);

      const ids = ['demo-1', 'demo-2', 'demo-3'];
      const events = ids.map((id, i) => ({
        id,
        type: 'track',
        name: `demo-event-${i}`,
        ts: Date.now(),
        anonymousId: 'anon',
        sessionId: `session-${i}`,
        url: `${origin}/pricing`,
        referrer: '',
        viewport: { w: 800, h: 600 },
        properties: {},
      }));
      const response = await fetch(collectUrl, { method: 'POST', headers: { Origin: origin, 'Content-Type': 'text/plain' }, body: JSON.stringify(events) });
      expect(await response.json()).toEqual({ accepted: ids, rejected: [], retry: [] });
      await until('the tail to show the three events', () => ids.every((id) => lines.some((line) => line.endsWith(`id ${id}`))), 20_000);
      expect(lines.find((line) => line.endsWith('id demo-2'))).toMatch(/^shardId-\d+ .* track +demo-event-1 +\/pricing/);

      controller.abort();
      await run;
      expect(await refused(pageUrl)).toBe(true);
      expect(await refused(collectUrl)).toBe(true);
    } finally {
      controller.abort();
      await run.catch(() => {});
    }
  });
});

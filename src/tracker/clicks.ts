// Click auto-capture for the tracker, in a module of its own so that a page that does not capture
// clicks does not carry it: `createTracker` only calls what `clicks` holds, and bundlers drop this
// module when nothing imports `captureClicks` (test/unit/tracker-size.test.ts measures both).
import type { TrackerProperties } from './event.ts';

/**
 * What {@link TrackerOptions.clicks} takes (made by {@link captureClicks}): given the tracker's way
 * to record a `click` event, the listener for clicks on `document`.
 */
export type ClickCapture = (record: (name: string, properties: TrackerProperties) => void) => (event: MouseEvent) => void;

/**
 * Records clicks on opted-in elements: those matching `selector`, by default `[data-track]`. The
 * event's name is the element's `data-track` value, else its id, else its tag name; its properties
 * are the element's text (first 64 characters) and its `data-track-*` attributes
 * (`data-track-plan="pro"` → `{ plan: 'pro' }`). A click inside an element counts for the
 * nearest matching ancestor. The tracker listens in the capture phase on `document`, so a handler
 * that stops propagation does not hide clicks.
 *
 * @example
 * import { captureClicks, createTracker } from 'kinesis-edge/tracker';
 *
 * createTracker({ endpoint: 'https://ingest.example.com/collect', clicks: captureClicks() });
 * // <button data-track="buy" data-track-sku="A1">Buy</button> is recorded when clicked.
 */
export const captureClicks =
  (selector = '[data-track]'): ClickCapture =>
  (record) =>
  (event) => {
    // `closest` is missing when the target is no Element (a click dispatched on `document`).
    const element = (event.target as Element).closest?.(selector) as HTMLElement | null;
    if (!element) return;
    const properties: TrackerProperties = { text: element.textContent!.trim().slice(0, 64) };
    for (const key in element.dataset)
      if (key.length > 5 && key.startsWith('track')) properties[key[5]!.toLowerCase() + key.slice(6)] = element.dataset[key];
    record(element.dataset.track || element.id || element.localName, properties);
  };

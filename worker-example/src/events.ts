/**
 * Validation of the tracker's events, one by one, against the wire contract in
 * `src/tracker/event.ts` (the tracker builds on the same file). Reasons are short, say which field
 * is wrong, and never echo more than a few characters of what the client sent.
 */
import * as z from 'zod/mini';
import { TRACKER_EVENT_LIMITS as LIMITS, type TrackerEvent } from '../../src/tracker/event.ts';

/** Most events one request may carry: one PutRecords call takes up to 500 records. */
export const MAX_EVENTS_PER_REQUEST = LIMITS.requestEvents;
/** Deepest nesting allowed inside `properties` (the object itself is depth 1). */
export const MAX_PROPERTIES_DEPTH = 8;

const boundedString = (min: number, max: number) => z.string().check(z.minLength(min), z.maxLength(max));
const viewportSide = z.int().check(z.gte(0), z.lte(LIMITS.viewportMax));

/** One event as the tracker sends it; unknown fields are refused. */
export const TrackerEventSchema = z.strictObject({
  id: boundedString(1, LIMITS.idLength),
  type: z.enum(['track', 'page', 'identify', 'click']),
  name: boundedString(1, LIMITS.nameLength),
  ts: z.int(),
  anonymousId: boundedString(1, LIMITS.idLength),
  sessionId: boundedString(1, LIMITS.idLength),
  userId: z.optional(boundedString(1, LIMITS.userIdLength)),
  url: boundedString(0, LIMITS.urlLength),
  referrer: boundedString(0, LIMITS.urlLength),
  viewport: z.strictObject({ w: viewportSide, h: viewportSide }),
  properties: z.record(z.string(), z.unknown()),
});

/** The verdict on one element of the request's array. */
export type EventVerdict = { ok: true; event: TrackerEvent } | { ok: false; id: string; reason: string };

/**
 * Checks one element: the schema, then the nesting and size of `properties`, then the clock.
 * `receivedAt` is the Worker's receipt time in epoch ms.
 */
export function validateEvent(value: unknown, receivedAt: number): EventVerdict {
  const id = idOf(value);
  const parsed = z.safeParse(TrackerEventSchema, value);
  if (!parsed.success) return { ok: false, id, reason: formatIssues(parsed.error.issues, value) };
  const event = parsed.data as TrackerEvent;
  if (!Object.prototype.toString.call(event.properties).includes('Object')) {
    return { ok: false, id, reason: 'properties: expected an object' };
  }
  if (depthExceeds(event.properties, MAX_PROPERTIES_DEPTH)) {
    return { ok: false, id, reason: `properties: nested deeper than ${MAX_PROPERTIES_DEPTH}` };
  }
  if (utf8Length(JSON.stringify(event.properties)) > LIMITS.propertiesBytes) {
    return { ok: false, id, reason: `properties: larger than ${LIMITS.propertiesBytes} bytes` };
  }
  if (Math.abs(event.ts - receivedAt) > LIMITS.clockSkewMs) {
    return { ok: false, id, reason: 'ts: more than 24 h away from the server clock' };
  }
  return { ok: true, event };
}

/** The event's id when it is a usable one, else `''` (the tracker cannot match it anyway). */
function idOf(value: unknown): string {
  const id = typeof value === 'object' && value !== null ? (value as { id?: unknown }).id : undefined;
  return typeof id === 'string' && id.length >= 1 && id.length <= LIMITS.idLength ? id : '';
}

const MAX_ISSUES = 3;

/** zod issues about `input` → `"url: too long (max 2048); unknown field: extra"`. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], input: unknown): string {
  const parts = issues.slice(0, MAX_ISSUES).map((issue) => formatIssue(issue, input));
  if (issues.length > MAX_ISSUES) parts.push(`and ${issues.length - MAX_ISSUES} more`);
  return parts.join('; ');
}

function formatIssue(issue: z.core.$ZodIssue, input: unknown): string {
  const path = issue.path.length === 0 ? 'event' : issue.path.map((p) => clip(String(p))).join('.');
  switch (issue.code) {
    case 'invalid_type':
      // zod leaves the offending input out of issues (reportInput is off), so look it up.
      return valueAt(input, issue.path) === undefined ? `${path}: is required` : `${path}: expected ${issue.expected}`;
    case 'too_big':
      return issue.origin === 'string' ? `${path}: too long (max ${String(issue.maximum)})` : `${path}: too large`;
    case 'too_small':
      return issue.origin === 'string' ? `${path}: too short` : `${path}: too small`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.slice(0, 3).map(clip).join(', ')}`;
    case 'invalid_value':
      return `${path}: not one of ${issue.values.map(String).join(', ')}`;
    default:
      return `${path}: invalid`;
  }
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** At most 32 characters of a client-chosen key, so a reason stays short. */
function clip(text: string): string {
  return text.length > 32 ? `${text.slice(0, 32)}…` : text;
}

/** Whether objects/arrays nest deeper than `max` (iterative: a hostile body cannot overflow the stack). */
export function depthExceeds(root: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(value) ? value : Object.values(value)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** UTF-8 byte length of a string (JSON output never holds lone surrogates). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

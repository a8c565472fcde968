/**
 * What the Worker reads from its environment, and the record shape it writes. Kept out of index.ts:
 * a Worker's main module may export only handlers.
 */
import type { TrackerEvent } from '../../src/tracker/event.ts';
import type { Env } from './env.ts';
import type { KinesisSettings } from './kinesis.ts';

/** Longest user agent copied into a record. */
export const MAX_USER_AGENT_LENGTH = 512;

/** What the Worker adds to each accepted event before it goes to Kinesis. */
export interface IngestedEvent extends TrackerEvent {
  /** Epoch ms when the Worker received the request. */
  receivedAt: number;
  /** ISO 3166-1 alpha-2 country from `request.cf.country`, or null when unknown. */
  country: string | null;
  /** The request's `User-Agent`, at most 512 characters, or null. */
  userAgent: string | null;
}

/** Reads the Kinesis settings; undefined when anything required is missing (the Worker fails closed). */
export function readSettings(env: Env): KinesisSettings | undefined {
  const accessKeyId = nonEmpty(env.AWS_ACCESS_KEY_ID);
  const secretAccessKey = nonEmpty(env.AWS_SECRET_ACCESS_KEY);
  const streamName = nonEmpty(env.STREAM_NAME);
  const region = nonEmpty(env.AWS_REGION);
  const endpoint = nonEmpty(env.KINESIS_ENDPOINT);
  if (!accessKeyId || !secretAccessKey || !streamName || !region) return undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^/?#\s]+\/?$/.test(endpoint)) return undefined;
  return { accessKeyId, secretAccessKey, sessionToken: nonEmpty(env.AWS_SESSION_TOKEN), streamName, region, endpoint };
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

export function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}


/**
 * What the Worker reads from its environment, and the record shape it writes. Kept out of index.ts:
 * a Worker's main module may export only handlers.
 */
import type { TrackerEvent } from '../../src/tracker/event.ts';
import type { Env } from './env.ts';
import type { KinesisSettings } from './kinesis.ts';
import { MIN_SESSION_SECRET_LENGTH } from './session.ts';
import { SITEVERIFY_URL } from './turnstile.ts';

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

/** Default session token lifetime: an hour, then the page asks `/session` again. */
export const DEFAULT_SESSION_TTL_SECONDS = 3600;

/** Session tokens: off, on (Turnstile optional), or misconfigured (the Worker then fails closed). */
export type SessionSettings =
  | { mode: 'off' }
  | { mode: 'misconfigured'; reason: string }
  | { mode: 'on'; secret: string; ttlSeconds: number; turnstile?: { secret: string; verifyUrl: string } };

export function readSessionSettings(env: Env): SessionSettings {
  const secret = nonEmpty(env.SESSION_SECRET);
  const turnstileSecret = nonEmpty(env.TURNSTILE_SECRET_KEY);
  if (secret === undefined) {
    // A Turnstile key without a session secret has nothing to protect: say so rather than run open.
    return turnstileSecret === undefined ? { mode: 'off' } : { mode: 'misconfigured', reason: 'TURNSTILE_SECRET_KEY is set without SESSION_SECRET' };
  }
  if (secret.length < MIN_SESSION_SECRET_LENGTH) {
    return { mode: 'misconfigured', reason: `SESSION_SECRET is shorter than ${MIN_SESSION_SECRET_LENGTH} characters` };
  }
  const ttlSeconds = positiveInt(env.SESSION_TTL_SECONDS, DEFAULT_SESSION_TTL_SECONDS);
  if (turnstileSecret === undefined) return { mode: 'on', secret, ttlSeconds };
  const verifyUrl = nonEmpty(env.TURNSTILE_VERIFY_URL) ?? SITEVERIFY_URL;
  return { mode: 'on', secret, ttlSeconds, turnstile: { secret: turnstileSecret, verifyUrl } };
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

export function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}


/**
 * Session tokens: short-lived proof that a page obtained `/session` from an allowed origin (after
 * a Turnstile challenge, when one is configured), bound to that origin. `/collect` takes events only
 * with a valid one when `SESSION_SECRET` is set.
 *
 * Why a token of our own rather than the Turnstile token itself: a Turnstile token is single use
 * and lives 300 s (https://developers.cloudflare.com/turnstile/get-started/server-side-validation/),
 * while a page sends many batches over a long visit. The page pays one challenge per session.
 *
 * Format: `<payload>.<mac>`, both base64url without padding; payload is the JSON
 * `{"o":"<origin>","e":<expiry, epoch seconds>}`, mac is HMAC-SHA256(SESSION_SECRET, payload)
 * (https://www.rfc-editor.org/rfc/rfc2104). Stateless: nothing is stored, so a token cannot be
 * revoked before it expires; rotate `SESSION_SECRET` to revoke them all.
 */

/** Shortest `SESSION_SECRET` accepted: 32 bytes, the HMAC-SHA256 output size (RFC 2104 §3). */
export const MIN_SESSION_SECRET_LENGTH = 32;
/** Longest token read from a request; a real one is about 120 characters. */
export const MAX_SESSION_TOKEN_LENGTH = 1024;

export type SessionVerdict = 'ok' | 'missing' | 'malformed' | 'bad-signature' | 'expired' | 'wrong-origin';

const encoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (key === undefined) {
    // One secret per deployment (two while it rotates): the map stays tiny.
    if (keys.size > 4) keys.clear();
    key = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    keys.set(secret, key);
  }
  return key;
}

function toBase64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  try {
    const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return undefined;
  }
}

/** A token for `origin`, valid for `ttlSeconds` from `nowMs`. */
export async function mintSessionToken(secret: string, origin: string, nowMs: number, ttlSeconds: number): Promise<{ token: string; expiresAt: number }> {
  const expires = Math.floor(nowMs / 1000) + ttlSeconds;
  const payload = toBase64Url(encoder.encode(JSON.stringify({ o: origin, e: expires })));
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(secret), encoder.encode(payload));
  return { token: `${payload}.${toBase64Url(new Uint8Array(mac))}`, expiresAt: expires * 1000 };
}

/**
 * Checks a token from a request of `origin`. The MAC is checked first (with `crypto.subtle.verify`,
 * which compares in constant time), so nothing of an unsigned payload is believed.
 */
export async function verifySessionToken(secret: string, token: string | null, origin: string, nowMs: number): Promise<SessionVerdict> {
  if (token === null || token === '') return 'missing';
  if (token.length > MAX_SESSION_TOKEN_LENGTH) return 'malformed';
  const [payload, mac, ...rest] = token.split('.');
  const macBytes = mac === undefined ? undefined : fromBase64Url(mac);
  if (payload === undefined || macBytes === undefined || rest.length > 0) return 'malformed';
  if (!(await crypto.subtle.verify('HMAC', await hmacKey(secret), macBytes, encoder.encode(payload)))) return 'bad-signature';
  let claims: unknown;
  try {
    claims = JSON.parse(new TextDecoder().decode(fromBase64Url(payload)));
  } catch {
    return 'malformed';
  }
  const { o, e } = (claims ?? {}) as { o?: unknown; e?: unknown };
  if (typeof o !== 'string' || typeof e !== 'number') return 'malformed';
  if (e * 1000 <= nowMs) return 'expired';
  if (o !== origin) return 'wrong-origin';
  return 'ok';
}

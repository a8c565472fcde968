/**
 * Server-side check of a Cloudflare Turnstile token with the Siteverify API
 * (https://developers.cloudflare.com/turnstile/get-started/server-side-validation/): a token is
 * single use (a replay answers `success: false` with `timeout-or-duplicate`), lives 300 s, is at
 * most 2,048 characters, and names the hostname the challenge was solved on.
 *
 * Fails closed: no answer, a slow answer or an unreadable one is a refusal ("unavailable"), never a
 * pass.
 */

export const SITEVERIFY_URL = 'https://challenges.cloudflare.com/turnstile/v0/siteverify';
/** Siteverify's documented maximum token length. */
export const MAX_TURNSTILE_TOKEN_LENGTH = 2048;
const SITEVERIFY_TIMEOUT_MS = 5_000;

export type TurnstileVerdict =
  | { ok: true }
  /** The token is missing, malformed, spent, expired, or was solved on another site. */
  | { ok: false; unavailable: false; codes: string[] }
  /** Siteverify could not be asked or gave no usable answer. */
  | { ok: false; unavailable: true; codes: string[] };

/**
 * Asks Siteverify about `token`, solved (it must say) on `expectedHostname`. The client's IP is not
 * sent (`remoteip` is optional): this Worker forwards no client IP anywhere.
 */
export async function verifyTurnstile(
  secret: string,
  token: unknown,
  expectedHostname: string,
  verifyUrl: string = SITEVERIFY_URL,
): Promise<TurnstileVerdict> {
  if (typeof token !== 'string' || token === '') return { ok: false, unavailable: false, codes: ['missing-input-response'] };
  if (token.length > MAX_TURNSTILE_TOKEN_LENGTH) return { ok: false, unavailable: false, codes: ['invalid-input-response'] };
  let answer: { success?: unknown; hostname?: unknown; 'error-codes'?: unknown };
  try {
    const response = await fetch(verifyUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ secret, response: token }),
      signal: AbortSignal.timeout(SITEVERIFY_TIMEOUT_MS),
    });
    if (!response.ok) return { ok: false, unavailable: true, codes: [`siteverify-http-${response.status}`] };
    answer = await response.json();
  } catch {
    return { ok: false, unavailable: true, codes: ['siteverify-unreachable'] };
  }
  const codes = Array.isArray(answer['error-codes']) ? answer['error-codes'].filter((code): code is string => typeof code === 'string') : [];
  if (answer.success !== true) return { ok: false, unavailable: false, codes: codes.length ? codes : ['not-successful'] };
  // A token solved on any site that embeds our sitekey would pass Siteverify: bind it to the origin.
  if (answer.hostname !== expectedHostname) return { ok: false, unavailable: false, codes: ['hostname-mismatch'] };
  return { ok: true };
}

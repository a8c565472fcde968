/**
 * CORS with an exact-origin allow-list
 * (https://fetch.spec.whatwg.org/#http-cors-protocol). Unknown origins get no CORS headers at all,
 * so a browser page on another origin cannot read any answer.
 */

/** Methods a preflight may allow: only what `/collect` implements. */
export const ALLOWED_METHODS = 'POST, OPTIONS';
/** Request headers a preflight may allow: `Content-Type` for `application/json` bodies. */
export const ALLOWED_HEADERS = 'Content-Type';
/** Preflight cache lifetime in seconds (Chromium caps it at 7200). */
export const PREFLIGHT_MAX_AGE = '600';

/** Parses `ALLOWED_ORIGINS` ("https://a.example, http://127.0.0.1:8080") into normalised origins. */
export function parseAllowedOrigins(value: string | undefined): Set<string> {
  const origins = new Set<string>();
  for (const part of (value ?? '').split(',')) {
    const trimmed = part.trim();
    if (trimmed === '') continue;
    try {
      const url = new URL(trimmed);
      // `null` origins (file:, sandboxed iframes) are never allowed.
      if (url.origin !== 'null') origins.add(url.origin);
    } catch {
      // A malformed entry allows nothing.
    }
  }
  return origins;
}

/** The request's `Origin` when it is in the allow-list (compared exactly), else undefined. */
export function allowedOrigin(request: Request, allowed: Set<string>): string | undefined {
  const origin = request.headers.get('Origin');
  return origin !== null && allowed.has(origin) ? origin : undefined;
}

/** Headers for an answer to an allowed origin. `Retry-After` is exposed for the tracker's 429 handling. */
export function corsHeaders(origin: string): Record<string, string> {
  return {
    'Access-Control-Allow-Origin': origin,
    'Access-Control-Expose-Headers': 'Retry-After',
  };
}

/** Headers for a preflight answer (204) to an allowed origin: the fixed lists, never an echo of the request. */
export function preflightHeaders(origin: string): Record<string, string> {
  return {
    'Access-Control-Allow-Origin': origin,
    'Access-Control-Allow-Methods': ALLOWED_METHODS,
    'Access-Control-Allow-Headers': ALLOWED_HEADERS,
    'Access-Control-Max-Age': PREFLIGHT_MAX_AGE,
  };
}

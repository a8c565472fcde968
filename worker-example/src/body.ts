/**
 * Reads a request body with a byte cap enforced while the stream is read, so a chunked body
 * without `Content-Length` cannot make the Worker buffer more than the cap (Workers have 128 MB
 * of memory: https://developers.cloudflare.com/workers/platform/limits/#memory).
 */

/** What {@link readCappedBody} found. */
export type CappedBody = { ok: true; bytes: Uint8Array } | { ok: false; reason: 'too-large' };

/**
 * Returns the body's bytes, or `too-large` as soon as the declared or the read length passes
 * `maxBytes` (the rest of the stream is cancelled, never read).
 */
export async function readCappedBody(request: Request, maxBytes: number): Promise<CappedBody> {
  const declared = request.headers.get('Content-Length');
  if (declared !== null && Number(declared) > maxBytes) {
    await request.body?.cancel().catch(() => {});
    return { ok: false, reason: 'too-large' };
  }
  if (request.body === null) return { ok: true, bytes: new Uint8Array(0) };
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      return { ok: false, reason: 'too-large' };
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return { ok: true, bytes: chunks[0]! };
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { ok: true, bytes };
}

/**
 * Reads and drops up to `maxBytes` of a body the Worker will not use, then cancels the rest.
 * Answering before the body is consumed leaves an HTTP/1.1 connection that cannot be reused; in
 * `wrangler dev` the next request on it then fails ("Your worker restarted mid-request", 503).
 * The cap keeps a refused client from making the Worker read more than an accepted one could.
 */
export async function discardBody(request: Request, maxBytes: number): Promise<void> {
  if (request.body === null || request.bodyUsed) return;
  const reader = request.body.getReader();
  let total = 0;
  try {
    while (total <= maxBytes) {
      const { done, value } = await reader.read();
      if (done) return;
      total += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The client went away: nothing left to drain.
  }
}

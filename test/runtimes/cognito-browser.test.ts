// fromCognitoIdentityPool in a real page (Debian's Chromium): the built package bundled for the
// browser, its unsigned Cognito calls crossing origins (CORS preflight for `X-Amz-Target`), the
// identity id kept in `localStorage`, and the page's record written to kinesis-local with the
// temporary credentials. A Cognito identity pool is how a page without an ingest Worker gets
// keys that are short-lived and scoped, instead of long-term ones.
import { build } from 'esbuild';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { startCognitoIdentityLocal, type CognitoIdentityLocal } from '../support/cognito-identity-local.ts';
import { createTestStream, readAllRecords } from '../support/kinesis-local.ts';
import { runInChromium } from './support/harness.ts';
import { chromiumBinary, requireRuntime } from './support/runtimes.ts';

const REPO_ROOT = join(import.meta.dirname, '../..');
const kinesisEndpoint = inject('kinesisEndpoint');
let cognito: CognitoIdentityLocal;

beforeEach(async () => {
  cognito = await startCognitoIdentityLocal();
});
afterEach(async () => {
  await cognito.close();
});

/** The page: two providers on one localStorage (a visit, then the next page load) and one record. */
function pageModule(options: { identityPoolId: string; cognitoEndpoint: string; kinesisEndpoint: string; streamName: string }): string {
  return `
import { createKinesisClient, fromCognitoIdentityPool, putRecord } from ${JSON.stringify(join(REPO_ROOT, 'dist/index.js'))};
const options = ${JSON.stringify(options)};
const pool = { identityPoolId: options.identityPoolId, endpoint: options.cognitoEndpoint, storage: localStorage };
globalThis.__result = (async () => {
  const first = fromCognitoIdentityPool(pool);
  const client = createKinesisClient({ region: 'us-east-1', endpoint: options.kinesisEndpoint, credentials: first });
  const out = await putRecord(client, { StreamName: options.streamName, PartitionKey: 'page-visitor', Data: 'clicked' });
  const nextPageLoad = fromCognitoIdentityPool(pool);
  await nextPageLoad();
  return { ok: true, sequenceNumber: out.SequenceNumber, first: first.identityId, next: nextPageLoad.identityId, stored: Object.entries(localStorage) };
})().catch((error) => ({ ok: false, error: String(error?.stack ?? error) }));
`;
}

describe('fromCognitoIdentityPool in Chromium', () => {
  it('gets credentials across origins, keeps the identity in localStorage, and writes the record', { timeout: 120_000 }, async ({ skip }) => {
    const chromium = requireRuntime('Chromium', chromiumBinary(), skip);
    const streamName = await createTestStream(kinesisEndpoint);
    const bundled = await build({
      stdin: {
        contents: pageModule({ identityPoolId: cognito.identityPoolId, cognitoEndpoint: cognito.url, kinesisEndpoint, streamName }),
        resolveDir: REPO_ROOT,
        loader: 'js',
      },
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      logLevel: 'silent',
    });

    const { value, log } = await runInChromium(
      chromium,
      {
        '/': { type: 'text/html', body: '<!doctype html><meta charset="utf-8"><script type="module" src="/page.js"></script>' },
        '/page.js': { type: 'text/javascript', body: bundled.outputFiles[0]!.text },
      },
      '/',
      '__result',
    );

    expect(value, log.join('\n')).toMatchObject({ ok: true });
    const result = value as { sequenceNumber: string; first: string; next: string; stored: [string, string][] };
    // One identity for both page loads, remembered under the pool's key.
    expect(cognito.count('GetId')).toBe(1);
    expect(cognito.count('GetCredentialsForIdentity')).toBe(2);
    expect(result.first).toBe(cognito.issued[0]!.identityId);
    expect(result.next).toBe(result.first);
    expect(result.stored).toEqual([[`kinesis-edge:cognito-identity:${cognito.identityPoolId}`, result.first]]);
    // The page is on another origin than the stand-in: Chromium asked before each POST.
    expect(cognito.preflights).toBeGreaterThanOrEqual(1);
    const stored = await readAllRecords(kinesisEndpoint, streamName);
    expect(stored.map((r) => [r.SequenceNumber, r.PartitionKey, atob(r.Data)])).toEqual([[result.sequenceNumber, 'page-visitor', 'clicked']]);
  });
});

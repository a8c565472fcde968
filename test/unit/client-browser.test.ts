// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest';
import { createKinesisClient } from '../../src/index.ts';

// TEST-CHECKLIST 28: long-term keys in a page are refused by default.
describe('createKinesisClient in a web page', () => {
  it('refuses long-term AKIA keys without a session token', () => {
    expect(() =>
      createKinesisClient({ region: 'us-east-1', credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'x' } }),
    ).toThrow(/long-term AWS keys/);
  });

  it('accepts temporary credentials, a provider, and an explicit override', () => {
    expect(() =>
      createKinesisClient({ region: 'us-east-1', credentials: { accessKeyId: 'ASIAIOSFODNN7EXAMPLE', secretAccessKey: 'x', sessionToken: 't' } }),
    ).not.toThrow();
    expect(() =>
      createKinesisClient({ region: 'us-east-1', credentials: async () => ({ accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'x' }) }),
    ).not.toThrow();
    expect(() =>
      createKinesisClient({
        region: 'us-east-1',
        credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'x' },
        allowLongTermCredentialsInBrowser: true,
      }),
    ).not.toThrow();
  });
});

describe('createKinesisClient outside a page', () => {
  it('accepts long-term keys where there is no document (Workers, Deno, Node)', async () => {
    const { document } = globalThis as { document?: unknown };
    const g = globalThis as { document?: unknown };
    delete g.document;
    try {
      expect(() =>
        createKinesisClient({ region: 'us-east-1', credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'x' } }),
      ).not.toThrow();
    } finally {
      g.document = document;
    }
  });
});

// The published types, as a TypeScript user meets them: test/runtimes/fixture/types/consumer.ts
// imports the packed package and is checked under `moduleResolution` bundler and node16 (tsc,
// strict, skipLibCheck off, no @types/node) and by `deno check`.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeRun, preparePackedFixture, REPO_ROOT, run, type PackedFixture } from './support/packed-fixture.ts';
import { denoBinary, requireRuntime } from './support/runtimes.ts';

let fixture: PackedFixture;
beforeAll(async () => {
  fixture = await preparePackedFixture();
}, 180_000);

const TSC = join(REPO_ROOT, 'node_modules/typescript/bin/tsc');

describe.concurrent('types of the packed package in a consumer project', () => {
  it.each(['bundler', 'node16'])('type-check under moduleResolution %s', async (resolution) => {
    const result = await run(process.execPath, [TSC, '-p', `types/tsconfig.${resolution}.json`], { cwd: fixture.dir, timeoutMs: 90_000 });
    expect(result.code, describeRun(`tsc (${resolution})`, result)).toBe(0);
  }, 120_000);

  it('type-check with deno check', async ({ skip }) => {
    const deno = requireRuntime('Deno', denoBinary(), skip);
    const result = await run(deno, ['check', 'types/consumer.ts'], {
      cwd: fixture.dir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_DIR: join(fixture.dir, '.deno') },
      timeoutMs: 90_000,
    });
    expect(result.code, describeRun('deno check', result)).toBe(0);
  }, 120_000);
});

// Where each runtime of the matrix comes from, and what to do when it is missing.
// Deno and Bun come from npm devDependencies (`deno`, `bun`) whose platform packages hold the
// real binaries; the wrapper packages' postinstall only copies or links them, so both places are
// tried (npm may stop running install scripts by default). Chromium is Debian's package;
// workerd comes with the `miniflare` devDependency.
import { existsSync, openSync, readSync, closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from './packed-fixture.ts';

const require = createRequire(join(REPO_ROOT, 'package.json'));

export interface RuntimeBinary {
  /** Absolute path of the executable, or undefined when it is missing. */
  path: string | undefined;
  /** What to run to get it, for the failure message. */
  install: string;
}

function packageDir(name: string): string | undefined {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    return undefined;
  }
}

/** True for an ELF executable (not a placeholder script that a skipped postinstall left). */
function isElf(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(4);
    readSync(fd, head, 0, 4, 0);
    return head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function firstElf(candidates: Array<string | undefined>): string | undefined {
  return candidates.find((path): path is string => path !== undefined && existsSync(path) && isElf(path));
}

function linuxSuffix(): string {
  return `${process.platform}-${process.arch}`;
}

/** Deno: `@deno/linux-x64-glibc/deno`, or the copy `deno`'s postinstall makes. `DENO_BIN` overrides. */
export function denoBinary(): RuntimeBinary {
  const platformDir = packageDir(`@deno/${linuxSuffix()}-glibc`) ?? packageDir(`@deno/${linuxSuffix()}`);
  const wrapperDir = packageDir('deno');
  return {
    path: firstElf([
      process.env.DENO_BIN,
      platformDir && join(platformDir, 'deno'),
      wrapperDir && join(wrapperDir, 'deno'),
    ]),
    install: 'npm ci (devDependency `deno`; the binary is in the optional dependency @deno/linux-x64-glibc)',
  };
}

/** Bun: `@oven/bun-linux-x64/bin/bun`, or `bun/bin/bun.exe` once `bun`'s postinstall moved it there. `BUN_BIN` overrides. */
export function bunBinary(): RuntimeBinary {
  const arch = process.arch === 'arm64' ? 'aarch64' : process.arch;
  const platformDir = packageDir(`@oven/bun-${process.platform}-${arch}`);
  const wrapperDir = packageDir('bun');
  return {
    path: firstElf([
      process.env.BUN_BIN,
      platformDir && join(platformDir, 'bin/bun'),
      wrapperDir && join(wrapperDir, 'bin/bun.exe'),
    ]),
    install: 'npm ci (devDependency `bun`; the binary is in the optional dependency @oven/bun-linux-x64)',
  };
}

/** Debian's Chromium (/usr/bin/chromium is its launcher script). `CHROMIUM_PATH` overrides. */
export function chromiumBinary(): RuntimeBinary {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium'];
  return {
    path: candidates.find((path): path is string => path !== undefined && path !== '' && existsSync(path)),
    install: 'apt-get update && apt-get install -y chromium',
  };
}

/** workerd, through miniflare (which resolves `workerd`'s platform binary itself). */
export function workerdAvailable(): RuntimeBinary {
  const dir = packageDir('workerd');
  const bin = packageDir(`@cloudflare/workerd-${process.platform}-${process.arch === 'x64' ? '64' : process.arch}`);
  return {
    path: dir && bin && packageDir('miniflare') ? join(bin, 'bin/workerd') : undefined,
    install: 'npm ci (devDependency `miniflare`, which brings `workerd` and @cloudflare/workerd-linux-64)',
  };
}

/**
 * What a test does when a runtime is missing: in CI (`CI` set) it fails, so a matrix that quietly
 * shrank cannot pass; on a developer's machine it is skipped with the install hint.
 */
export function requireRuntime(name: string, binary: RuntimeBinary, skip: (note: string) => never): string {
  if (binary.path !== undefined) return binary.path;
  const message = `${name} is not available, so the ${name} leg of the runtime matrix cannot run. Install it: ${binary.install}`;
  if (process.env.CI) throw new Error(message);
  return skip(message);
}

import { defineConfig } from 'vitest/config';

// One config for the library build (vite library mode, one output file per source module so
// users' bundlers can tree-shake) and for vitest.
export default defineConfig({
  build: {
    target: 'es2022',
    minify: false,
    sourcemap: true,
    emptyOutDir: true,
    lib: {
      entry: {
        index: 'src/index.ts',
        // DOM code lives only behind this subpath: `kinesis-edge/tracker`.
        'tracker/index': 'src/tracker/index.ts',
        // The command line (`npx kinesis-edge tail <stream>`); nothing in the library imports it.
        cli: 'src/cli.ts',
      },
      formats: ['es'],
    },
    rolldownOptions: {
      external: [/^aws4fetch/, /^zod/],
      output: {
        preserveModules: true,
        preserveModulesRoot: 'src',
        entryFileNames: '[name].js',
        banner: (chunk) => (chunk.name === 'cli' ? '#!/usr/bin/env node' : ''),
      },
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});

import { defineConfig } from 'vitest/config';

// One config for the library build (vite library mode) and for vitest.
//
// One unminified file per entry point, plus shared and lazily loaded chunks (the zod schemas of the
// operations that use them, loaded on first call). Not one file per source module: Node loads ES
// modules one file at a time, and the ~90 files of the library cost ~80 ms at import against ~20 ms
// for the bundled entry (bench/RESULTS.md, cold import). Bundlers still tree-shake the entry: its
// top-level statements are side-effect free (`sideEffects: false`, `@__PURE__` on generated calls),
// and `src/` ships with the package for the source maps.
export default defineConfig({
  build: {
    target: 'es2022',
    minify: false,
    sourcemap: true,
    emptyOutDir: true,
    lib: {
      entry: {
        index: 'src/index.ts',
        // The API client without producer, consumer and enhanced fan-out: `kinesis-edge/client`.
        'client-api': 'src/client-api.ts',
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
        entryFileNames: '[name].js',
        // Lazily loaded chunks keep their module's name (the schemas of one operation); shared
        // chunks get a neutral one, since they hold many modules.
        chunkFileNames: (chunk) => (chunk.isDynamicEntry ? 'chunks/[name]-[hash].js' : 'chunks/shared-[hash].js'),
        codeSplitting: {
          groups: [
            // base64 is the one module that both the client and the lazily loaded zod schemas import.
            // Left in the client's chunk, it made the schemas import that chunk, which dynamically
            // imports the schemas: esbuild then wrapped the client and aws4fetch in lazy-init code
            // (`__esm`, `init_*()` calls) in every app bundle, a put-only page included (~170 B gzip).
            { name: 'base64', test: /[\\/]src[\\/]internal[\\/]base64\.ts$/, priority: 2 },
            // The API client in one chunk: `kinesis-edge/client` (and the root) load it and base64,
            // instead of two chunks that differed only in what the CLI happens to use. Node loads
            // ES modules one file at a time, so a file fewer is start-up time saved. Everything in
            // src/ but the producer, consumer, enhanced fan-out, tracker, CLI, the zod side and
            // the byte codecs only they use. The Cognito credentials provider is exported from the root
            // only (it is for pages, which bundle): it stays out of what `kinesis-edge/client` loads.
            {
              name: 'client',
              priority: 1,
              test: (id) =>
                /[\\/]src[\\/]/.test(id) &&
                !/[\\/]src[\\/](producer|consumer|event-stream|tracker|schemas)[\\/]|[\\/]src[\\/](index|cli|shapes|shape-schemas|schema-helpers|credentials-cognito)\.ts$|[\\/]src[\\/]internal[\\/](kpl|crc32|md5|hash-key|base64)\.ts$/.test(id),
            },
          ],
        },
        // JSDoc lives in the .d.ts files and in src/; keeping it here only slows parsing at import.
        comments: { legal: true, annotation: true, jsdoc: false },
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

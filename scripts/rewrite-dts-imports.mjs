#!/usr/bin/env node
// tsc keeps `./x.ts` specifiers in emitted .d.ts files (rewriteRelativeImportExtensions only touches
// JS). Published declarations must point at the emitted files, so rewrite relative `.ts` imports
// to `.js` in every dist/**/*.d.ts.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const specifier = /(from\s+|import\s*\(\s*|import\s+)(['"])(\.{1,2}\/[^'"]+)\.ts\2/g;
let changed = 0;
function visit(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) visit(path);
    else if (entry.name.endsWith('.d.ts')) {
      const text = readFileSync(path, 'utf8');
      const next = text.replace(specifier, '$1$2$3.js$2');
      if (next !== text) {
        writeFileSync(path, next);
        changed++;
      }
    }
  }
}
visit(process.argv[2] ?? 'dist');
console.log(`rewrote .ts specifiers in ${changed} declaration files`);

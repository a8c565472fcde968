// Entry for Node and Deno: `<runtime> efo.js <endpoint>` prints one result line.
import { RESULT_PREFIX, runEfoCheck } from './efo-check.mjs';

const args = globalThis.Deno?.args ?? globalThis.process.argv.slice(2);
const report = await runEfoCheck({ endpoint: args[0] });
console.log(RESULT_PREFIX + JSON.stringify(report));

// The generated operation modules and shapes match codegen/kinesis-api-model.json, and every
// operation of the model (except SubscribeToShard, a streaming call with its own module) is a
// camelCase function of the public barrel.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as api from '../../src/index.ts';
import { ALL_OPERATIONS } from '../../src/operation-names.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const model = JSON.parse(readFileSync(join(ROOT, 'codegen/kinesis-api-model.json'), 'utf8')) as { operations: Record<string, unknown> };
const modelOperations = Object.keys(model.operations).sort();
const camel = (name: string) => name[0]!.toLowerCase() + name.slice(1);

function runCheck(root: string) {
  return spawnSync(process.execPath, [join(root, 'scripts/generate-operations.mjs'), '--check'], { encoding: 'utf8', timeout: 60_000 });
}

describe('codegen', () => {
  it('generate-operations --check exits 0: the committed files match the model', () => {
    const result = runCheck(ROOT);
    expect(result.stderr + result.stdout).not.toMatch(/differ|drift|stale/i);
    expect(result.status).toBe(0);
  });

  it('generate-operations --check exits 1 when a generated file was edited by hand', () => {
    const copy = mkdtempSync(join(tmpdir(), 'kinesis-edge-codegen-'));
    try {
      for (const dir of ['scripts', 'codegen', 'src']) cpSync(join(ROOT, dir), join(copy, dir), { recursive: true });
      const file = join(copy, 'src/operations/put-records.ts');
      writeFileSync(file, readFileSync(file, 'utf8').replace("name: 'PutRecords'", "name: 'PutRecordz'"));
      expect(runCheck(copy).status).toBe(1);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('lists the 45 operations of the model in ALL_OPERATIONS', () => {
    expect(modelOperations).toHaveLength(45);
    expect([...ALL_OPERATIONS].sort()).toEqual(modelOperations);
  });

  it.each(modelOperations.filter((op) => op !== 'SubscribeToShard'))('exports %s from src/index.ts as a camelCase function', (operation) => {
    const fn = (api as Record<string, unknown>)[camel(operation)];
    expect(typeof fn).toBe('function');
  });

  it('names each operation module after its API operation, with the API reference URL', () => {
    for (const operation of modelOperations.filter((op) => op !== 'SubscribeToShard')) {
      const file = operation.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
      const source = readFileSync(join(ROOT, 'src/operations', `${file}.ts`), 'utf8');
      expect(source).toContain(`'${operation}'`);
      expect(source).toContain(`https://docs.aws.amazon.com/kinesis/latest/APIReference/API_${operation}.html`);
    }
  });
});

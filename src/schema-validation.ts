/**
 * Operations validated by their generated zod/mini schemas (`shape-schemas.ts`): every operation except the
 * write path (`put-validation.ts`).
 *
 * The schemas, and zod with them, are loaded on an operation's first call (a dynamic `import()`), not
 * when the package is imported: an app that only writes records never loads zod, and one that does
 * pays for it once, when it first lists or describes something. Bundlers keep the dynamic import as a
 * separate chunk or inline it; either way nothing changes for the caller, since every call is async.
 */
import type * as z from 'zod/mini';
import { deleteNulls, type OperationSpec } from './client.ts';
import { KinesisValidationError, type ValidationIssue } from './errors.ts';
import type { RecordLimits } from './limits.ts';

type ZodIssue = {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
  expected?: string;
};

/** `Records[3].PartitionKey` from `['Records', 3, 'PartitionKey']`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** Our own wording for zod's issues (zod/mini carries no locale, and we never call `z.config()`). */
function toIssues(issues: readonly ZodIssue[], root: unknown): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys' && issue.keys) {
      for (const key of issue.keys) out.push({ path: formatPath([...issue.path, key]), rule: 'is not a field of this operation' });
      continue;
    }
    let rule = issue.message;
    if (issue.code === 'invalid_type' && rule === 'Invalid input') {
      rule = valueAt(root, issue.path) === undefined ? 'is required' : `must be ${issue.expected === 'array' ? 'an array' : `a ${issue.expected ?? 'value of another type'}`}`;
    }
    out.push({ path: formatPath(issue.path), rule });
  }
  return out;
}

/** Parse `value` with `schema`, throwing `KinesisValidationError` with readable issues (also for the event stream's events). */
export function parseWith(schema: z.ZodMiniType, value: unknown, operation: string, source: 'input' | 'output'): unknown {
  let result: ReturnType<z.ZodMiniType['safeParse']>;
  try {
    result = schema.safeParse(value);
  } catch (error) {
    // A transform threw (for example base64 that does not decode).
    throw new KinesisValidationError(operation, source, [
      { path: '', rule: error instanceof Error ? error.message : String(error) },
    ]);
  }
  if (!result.success) throw new KinesisValidationError(operation, source, toIssues(result.error.issues as unknown as ZodIssue[], value));
  return result.data;
}

/** An operation's schemas; `undefined` where the operation has no input or no output. */
export interface OperationSchemas {
  input: z.ZodMiniType | undefined;
  output: z.ZodMiniType | undefined;
}

/**
 * The {@link OperationSpec} of an operation validated by zod schemas that `loadSchemas` imports on
 * first use. (Not for the write path: see put-validation.ts.) `output` says whether the operation
 * has an output to check with its schema, or is the plain parser of a response too large for zod
 * (get-records-validation.ts).
 */
export function schemaOperation(
  name: string,
  loadSchemas: () => Promise<OperationSchemas>,
  output: boolean | ((json: unknown) => unknown),
): OperationSpec {
  let schemas: OperationSchemas | undefined;
  let loading: Promise<void> | undefined;
  const loaded = (): OperationSchemas => {
    if (!schemas) throw new Error(`${name}: schemas used before load()`);
    return schemas;
  };
  return {
    name,
    load: () =>
      (loading ??= loadSchemas().then(
        (value) => {
          schemas = value;
        },
        (error: unknown) => {
          loading = undefined; // a failed chunk load (offline page) may succeed next time
          throw error;
        },
      )),
    input: (input: unknown, _limits: RecordLimits) => {
      const schema = loaded().input;
      return JSON.stringify(schema ? parseWith(schema, input, name, 'input') : {});
    },
    output:
      typeof output === 'function'
        ? output
        : output
      ? (json: unknown) => {
          const schema = loaded().output;
          deleteNulls(json);
          return schema ? parseWith(schema, json, name, 'output') : undefined;
        }
      : undefined,
  };
}

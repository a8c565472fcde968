// Sequence numbers and hash keys stay strings (or BigInt): a JS number keeps about 16 significant
// digits, a sequence number has up to 129 (the API pattern; real ones have 56) and a hash key up to
// 39, so Number() changes them (test/fixtures/kinesis/partition-keys-and-numbers.json shows it).
// The project has no linter: this test is the lint rule. It parses every src/**/*.ts file with the
// oxc parser that vite ships (`parseSync`) and reports, for an expression that names a sequence
// number or a hash key:
//   - Number(), new Number(), parseInt(), parseFloat(), Number.parseInt/parseFloat() and Math.*()
//     applied to it;
//   - unary +, - or ~ applied to it;
//   - arithmetic that leaves a number unchanged and so only converts (* 1, / 1, - 0, | 0, >>> 0);
//   - a variable, parameter, property or function result with such a name typed `number`.
// The round trip through the checkpoint stores is in consumer-checkpoints.test.ts (56 digits).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSync } from 'vite';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface AstNode {
  type: string;
  start: number;
  end: number;
  [key: string]: unknown;
}

/** A name that speaks of a sequence number or a hash key (`SequenceNumber`, `explicitHashKey`, `HASH_KEY_PATTERN`, …). */
const SEQUENCE_OR_HASH_KEY = /sequence|hash_?key/i;
/**
 * Names that match and are numbers on purpose. `subSequenceNumber` is a user record's index inside
 * a KPL aggregated record (from 0, bounded by the records one aggregate holds), not a Kinesis
 * sequence number. A name ending in Index, Length, Count, Bytes or Size counts or locates hash keys
 * (e.g. the KPL hash key table's `explicitHashKeyIndex`) rather than holding one.
 */
const NUMBER_ON_PURPOSE = /subSequenceNumbers?$|(?:Index|Indexes|Indices|Length|Lengths|Count|Bytes|Size)$/i;

function isSequenceName(name: string): boolean {
  return SEQUENCE_OR_HASH_KEY.test(name) && !NUMBER_ON_PURPOSE.test(name);
}

function isNode(value: unknown): value is AstNode {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

function children(node: AstNode): AstNode[] {
  const out: AstNode[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === 'parent') continue;
    if (Array.isArray(value)) out.push(...value.filter(isNode));
    else if (isNode(value)) out.push(value);
  }
  return out;
}

/** Whether an expression names a sequence number or a hash key: an identifier, a property or a string key. */
function mentions(node: AstNode): boolean {
  if ((node.type === 'Identifier' || node.type === 'PrivateIdentifier') && isSequenceName(node.name as string)) return true;
  if (node.type === 'Literal' && typeof node.value === 'string' && isSequenceName(node.value)) return true;
  return children(node).some(mentions);
}

/** Whether a type is `number`, or a union or array that holds it. */
function isNumberType(type: AstNode | null | undefined): boolean {
  if (!type) return false;
  switch (type.type) {
    case 'TSNumberKeyword':
      return true;
    case 'TSUnionType':
      return (type.types as AstNode[]).some(isNumberType);
    case 'TSArrayType':
      return isNumberType(type.elementType as AstNode);
    case 'TSTypeOperator':
    case 'TSParenthesizedType':
      return isNumberType(type.typeAnnotation as AstNode);
    case 'TSTypeReference': {
      const name = (type.typeName as AstNode).name;
      const params = (type.typeArguments as { params: AstNode[] } | null)?.params ?? [];
      return (name === 'Array' || name === 'ReadonlyArray') && params.some(isNumberType);
    }
    default:
      return false;
  }
}

const CONVERTING_CALLEE = /^(?:Number|parseInt|parseFloat|Number\.parseInt|Number\.parseFloat|Math\.\w+)$/;
/** `x <op> literal` that leaves a number unchanged: used only to convert `x`. */
const IDENTITY = new Map<string, number>([
  ['*', 1],
  ['/', 1],
  ['-', 0],
  ['|', 0],
  ['>>>', 0],
]);

function isNumberLiteral(node: AstNode, value: number): boolean {
  return node.type === 'Literal' && node.value === value && node.bigint === undefined;
}

/** A declaration's name and type annotation(s), when it has both. */
function typedName(node: AstNode): { name: string; types: (AstNode | null)[] } | undefined {
  const annotation = (of: unknown): AstNode | null => ((of as { typeAnnotation?: AstNode } | null)?.typeAnnotation ?? null);
  const keyName = (key: unknown): string | undefined => (key as { name?: string } | null)?.name;
  switch (node.type) {
    case 'Identifier':
      return node.typeAnnotation ? { name: node.name as string, types: [annotation(node.typeAnnotation)] } : undefined;
    case 'TSPropertySignature':
    case 'PropertyDefinition':
    case 'AccessorProperty': {
      const name = keyName(node.key);
      return name !== undefined && node.typeAnnotation ? { name, types: [annotation(node.typeAnnotation)] } : undefined;
    }
    case 'FunctionDeclaration':
    case 'TSDeclareFunction': {
      const name = keyName(node.id);
      return name !== undefined && node.returnType ? { name, types: [annotation(node.returnType)] } : undefined;
    }
    case 'TSMethodSignature': {
      const name = keyName(node.key);
      return name !== undefined && node.returnType ? { name, types: [annotation(node.returnType)] } : undefined;
    }
    case 'MethodDefinition':
    case 'Property':
    case 'VariableDeclarator': {
      const name = keyName(node.type === 'VariableDeclarator' ? node.id : node.key);
      const fn = (node.type === 'VariableDeclarator' ? node.init : node.value) as AstNode | null;
      const returnType = fn && /Function/.test(fn.type) ? fn.returnType : undefined;
      return name !== undefined && returnType ? { name, types: [annotation(returnType)] } : undefined;
    }
    default:
      return undefined;
  }
}

/** Every place in `source` (TypeScript) that turns a sequence number or hash key into a JS number, as `line: rule: code`. */
function findNumberConversions(fileName: string, source: string): string[] {
  const parsed = parseSync(fileName, source);
  if (parsed.errors.length > 0) throw new Error(`${fileName}: ${parsed.errors[0]!.message}`);
  const findings: string[] = [];
  const report = (node: AstNode, rule: string): void => {
    const line = source.slice(0, node.start).split('\n').length;
    findings.push(`${line}: ${rule}: ${source.slice(node.start, node.end).replace(/\s+/g, ' ')}`);
  };
  const visit = (node: AstNode): void => {
    if (node.type === 'CallExpression' || node.type === 'NewExpression') {
      const callee = node.callee as AstNode;
      const name = source.slice(callee.start, callee.end).replace(/\s+/g, '');
      if (CONVERTING_CALLEE.test(name) && (node.arguments as AstNode[]).some(mentions)) report(node, `${name}()`);
    } else if (node.type === 'UnaryExpression' && ['+', '-', '~'].includes(node.operator as string)) {
      if (mentions(node.argument as AstNode)) report(node, `unary ${node.operator as string}`);
    } else if (node.type === 'BinaryExpression' && IDENTITY.has(node.operator as string)) {
      const identity = IDENTITY.get(node.operator as string)!;
      const left = node.left as AstNode;
      const right = node.right as AstNode;
      const converted = isNumberLiteral(right, identity) ? left : node.operator === '*' && isNumberLiteral(left, identity) ? right : undefined;
      if (converted && mentions(converted)) report(node, `${node.operator as string} ${identity}`);
    }
    const typed = typedName(node);
    if (typed && isSequenceName(typed.name) && typed.types.some(isNumberType)) report(node, 'typed number');
    for (const child of children(node)) visit(child);
  };
  visit(parsed.program as unknown as AstNode);
  return findings;
}

function sourceFiles(): string[] {
  return (readdirSync(join(ROOT, 'src'), { recursive: true }) as string[])
    .filter((file) => file.endsWith('.ts'))
    .map((file) => join('src', file).replaceAll('\\', '/'))
    .sort();
}

describe('no Number conversion of sequence numbers or hash keys', () => {
  it('finds none in src/**/*.ts', () => {
    const files = sourceFiles();
    // The walk reached the tree, the files that handle sequence numbers and hash keys included.
    expect(files.length).toBeGreaterThan(100);
    expect(files).toEqual(expect.arrayContaining(['src/consumer/checkpoints.ts', 'src/producer/shard-map.ts', 'src/internal/kpl.ts', 'src/put-validation.ts']));

    const findings = files.flatMap((file) => findNumberConversions(file, readFileSync(join(ROOT, file), 'utf8')).map((finding) => `${file}:${finding}`));
    expect(findings).toEqual([]);
  });

  it('reports each conversion in an example', () => {
    const example = [
      'const a = Number(record.SequenceNumber);', // 1
      'const b = parseInt(out.SequenceNumber, 10);', // 2
      "const c = Number.parseFloat(entry['ExplicitHashKey']);", // 3
      'const d = Math.max(first.sequenceNumber, last.sequenceNumber);', // 4
      'const e = +checkpoint.sequenceNumber;', // 5
      'const f = range.StartingHashKey * 1;', // 6
      'const g = SEQUENCE_NUMBER | 0;', // 7
      'let sequenceNumber: number;', // 8
      'interface Position { hashKey?: number | undefined }', // 9
      'function lastSequenceNumber(): number { return 0; }', // 10
      'class Reader { #sequenceNumbers: readonly number[] = []; }', // 11
      'const h = new Number(`${shard.EndingHashKey}`);', // 12
    ].join('\n');

    expect(findNumberConversions('example.ts', example).map((finding) => finding.slice(0, finding.indexOf(':')))).toEqual(
      ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'],
    );
  });

  it('leaves alone what keeps the digits, and numbers that are not sequence numbers or hash keys', () => {
    const example = [
      'if (BigInt(a.SequenceNumber) < BigInt(b.SequenceNumber)) swap();',
      'const high = Number(start >> 96n);', // the top 32 bits of a BigInt hash key: exact
      "const text = 'after ' + record.sequenceNumber;", // string concatenation
      'const key = `${shardId}:${sequenceNumber}`;',
      '// Number(sequenceNumber) would lose digits', // a comment
      'let subSequenceNumber: number | undefined;', // an index inside an aggregated record
      'let explicitHashKeyIndex: number;',
      'const hashKeyLengths: number[] = [];',
      'const seq: number = next++;', // put order
      'let sequenceNumber: string;',
      'const count = Number(records.length) * 1;',
    ].join('\n');

    expect(findNumberConversions('example.ts', example)).toEqual([]);
  });
});

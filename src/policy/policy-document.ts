/**
 * The policy document: parsing and validation (protocols.md "AWS IoT policy language").
 *
 * A document is `{"Version": "2012-10-17", "Statement": <statement or non-empty array>, "Id"?: string}`; any
 * other top-level key is rejected. Its size is limited like AWS: 2048 characters excluding whitespace, by
 * default. Validation is complete: every variable name, condition operator and condition key is checked here,
 * so a document the registry stored always compiles.
 */
import { jsonPathIndex, jsonPathKey, policyGrammarError, PolicyErrors } from './errors.ts';
import { compileStatement } from './policy-statement.ts';
import type { CompiledStatement, PolicyStatement } from './policy-statement.ts';

/** The only policy language version Gatehouse accepts (the one with policy variables). */
export const POLICY_VERSION = '2012-10-17';

/** AWS's limit on a policy document: characters excluding whitespace. */
export const DEFAULT_MAX_POLICY_DOCUMENT_SIZE = 2048;

/** A validated, normalized policy document (every list an array). `JSON.stringify` gives a valid document. */
export interface PolicyDocument {
  readonly Version: typeof POLICY_VERSION;
  readonly Id?: string;
  readonly Statement: readonly PolicyStatement[];
}

/** Options of {@link parsePolicyDocument}. */
export interface ParsePolicyDocumentOptions {
  /** Maximum size in characters, whitespace excluded (default {@link DEFAULT_MAX_POLICY_DOCUMENT_SIZE}). */
  readonly maxDocumentSize?: number;
}

const DOCUMENT_KEYS = new Set(['Version', 'Id', 'Statement']);

/**
 * Parses and validates a policy document given as a JSON string or as an already-parsed object, and returns it
 * normalized and frozen. Throws a `GatehouseError` from {@link PolicyErrors} with `details.path`.
 */
export function parsePolicyDocument(input: unknown, options: ParsePolicyDocumentOptions = {}): PolicyDocument {
  const limit = options.maxDocumentSize ?? DEFAULT_MAX_POLICY_DOCUMENT_SIZE;
  let value: unknown = input;
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else {
    try {
      text = JSON.stringify(input) ?? '';
    } catch (cause) {
      throw PolicyErrors.error('POLICY_DOCUMENT_INVALID', 'The policy document cannot be serialized as JSON.', { cause, details: { path: '$' } });
    }
  }
  const size = nonWhitespaceLength(text, limit);
  if (size > limit) {
    throw PolicyErrors.error('POLICY_DOCUMENT_TOO_LARGE', `The policy document is longer than ${limit} characters (whitespace excluded).`, {
      details: { path: '$', limit },
    });
  }
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (cause) {
      throw PolicyErrors.error('POLICY_DOCUMENT_MALFORMED_JSON', 'The policy document is not valid JSON.', { cause, details: { path: '$' } });
    }
  }
  return analyzePolicyDocument(value).document;
}

/** Counts non-whitespace characters, stopping early once past `limit`. */
function nonWhitespaceLength(text: string, limit: number): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code !== 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d && ++count > limit) return count;
  }
  return count;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates a parsed document; returns it normalized together with its compiled statements. */
export function analyzePolicyDocument(value: unknown): { document: PolicyDocument; statements: readonly CompiledStatement[] } {
  if (!isPlainObject(value)) policyGrammarError('POLICY_DOCUMENT_INVALID', 'The policy document must be a JSON object.', '$');
  for (const key of Object.keys(value)) {
    if (!DOCUMENT_KEYS.has(key)) policyGrammarError('POLICY_DOCUMENT_INVALID', `Unknown top-level key "${key}".`, jsonPathKey('$', key));
  }
  const version = value['Version'];
  if (version !== POLICY_VERSION) {
    policyGrammarError('POLICY_VERSION_UNSUPPORTED', version === undefined ? `Version is required ("${POLICY_VERSION}").` : `Version must be "${POLICY_VERSION}".`, '$.Version');
  }
  const id = value['Id'];
  if (id !== undefined && typeof id !== 'string') policyGrammarError('POLICY_DOCUMENT_INVALID', 'Id must be a string.', '$.Id');

  const rawStatements = value['Statement'];
  if (rawStatements === undefined) policyGrammarError('POLICY_STATEMENT_INVALID', 'Statement is required.', '$.Statement');
  const list: unknown[] = Array.isArray(rawStatements) ? rawStatements : [rawStatements];
  if (list.length === 0) policyGrammarError('POLICY_STATEMENT_INVALID', 'Statement must not be empty.', '$.Statement');

  const statements: PolicyStatement[] = [];
  const compiled: CompiledStatement[] = [];
  list.forEach((raw, index) => {
    const path = Array.isArray(rawStatements) ? jsonPathIndex('$.Statement', index) : '$.Statement';
    const result = compileStatement(raw, index, path);
    statements.push(result.statement);
    compiled.push(result.compiled);
  });

  const document: PolicyDocument = Object.freeze({
    Version: POLICY_VERSION,
    ...(id === undefined ? {} : { Id: id }),
    Statement: Object.freeze(statements),
  });
  return { document, statements: Object.freeze(compiled) };
}

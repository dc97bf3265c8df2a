/**
 * Error codes of the AWS IoT policy language (protocols.md "AWS IoT policy language").
 *
 * Every code is raised at parse/compile time (`parsePolicyDocument`, `compilePolicy`, `leastPrivilegeClaimPolicy`);
 * evaluation (`authorize`) never throws. Grammar errors carry `details.path`, the JSON path of the offending node
 * in the document as written (e.g. `$.Statement[1].Action[0]`, `$.Statement.Condition.Bool["iot:ClientId"]`).
 */
import { defineErrors } from '../errors/index.ts';

/** The registry of every `POLICY_*` code (style.md rule 6). */
export const PolicyErrors = defineErrors({
  // ── the document ────────────────────────────────────────────────────────────────────────────────────
  POLICY_DOCUMENT_MALFORMED_JSON: { kind: 'invalid', description: 'The policy document is not valid JSON.' },
  POLICY_DOCUMENT_TOO_LARGE: { kind: 'too_large', description: 'The policy document is longer than the limit (2048 characters excluding whitespace, by default).' },
  POLICY_DOCUMENT_INVALID: { kind: 'invalid', description: 'The policy document is not a JSON object, or has an unknown top-level key or a malformed Id.' },
  POLICY_VERSION_UNSUPPORTED: { kind: 'invalid', description: 'The policy Version is missing or is not "2012-10-17".' },
  // ── statements ──────────────────────────────────────────────────────────────────────────────────────
  POLICY_STATEMENT_INVALID: { kind: 'invalid', description: 'Statement is missing or empty, or a statement is not an object, has an unknown key or a malformed Sid.' },
  POLICY_EFFECT_INVALID: { kind: 'invalid', description: 'A statement Effect is missing or is not "Allow" or "Deny".' },
  POLICY_ACTION_INVALID: { kind: 'invalid', description: 'A statement has neither or both of Action/NotAction, or an action is not "*" or "iot:<name>" (wildcards allowed).' },
  POLICY_RESOURCE_INVALID: { kind: 'invalid', description: 'A statement has neither or both of Resource/NotResource, or a resource is not "*" or an AWS IoT ARN.' },
  // ── variables ───────────────────────────────────────────────────────────────────────────────────────
  POLICY_VARIABLE_MALFORMED: { kind: 'invalid', description: 'A "${" in a resource or condition value is not closed by "}".' },
  POLICY_VARIABLE_UNKNOWN: { kind: 'invalid', description: 'A policy variable names something Gatehouse does not know (e.g. ${aws:username} or a misspelt field).' },
  // ── conditions ──────────────────────────────────────────────────────────────────────────────────────
  POLICY_CONDITION_INVALID: { kind: 'invalid', description: 'A Condition block has the wrong shape, a value of the wrong type, or a multi-valued key without ForAnyValue:/ForAllValues:.' },
  POLICY_CONDITION_OPERATOR_UNSUPPORTED: { kind: 'invalid', description: 'A Condition uses an operator Gatehouse does not support (only String*, Bool and Null are).' },
  POLICY_CONDITION_KEY_UNSUPPORTED: { kind: 'invalid', description: 'A Condition tests a key Gatehouse does not provide (only the iot: policy variables are).' },
  // ── helpers ─────────────────────────────────────────────────────────────────────────────────────────
  POLICY_TEMPLATE_NAME_INVALID: { kind: 'invalid', description: 'The provisioning template name for a claim policy is not 1-36 characters of [0-9A-Za-z_-].' },
});

/** Every code of {@link PolicyErrors}. */
export type PolicyErrorCode = keyof typeof PolicyErrors.specs;

/** Raises a grammar error with the JSON path of the offending node in `details.path`. */
export function policyGrammarError(code: PolicyErrorCode, message: string, path: string): never {
  throw PolicyErrors.error(code, message, { details: { path } });
}

/** Appends a key to a JSON path: `.Key` for identifier-like keys, `["odd:key"]` otherwise. */
export function jsonPathKey(path: string, key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** Appends an array index to a JSON path. */
export function jsonPathIndex(path: string, index: number): string {
  return `${path}[${index}]`;
}

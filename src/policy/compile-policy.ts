/**
 * Compiling a policy once for every message it will decide on.
 *
 * The compiled form keeps, per statement: the action patterns reduced to a bit mask over the known actions; each
 * resource pattern split into literal, wildcard and variable tokens (see `policy-pattern.ts`); the distinct
 * variables the statement needs; and its compiled conditions. Deny and Allow statements are kept apart so that
 * `authorize` can look for a Deny first and stop at the first match of either.
 */
import { analyzePolicyDocument } from './policy-document.ts';
import type { PolicyDocument } from './policy-document.ts';
import type { CompiledStatement } from './policy-statement.ts';

/** A policy ready for `authorize`. Compile once (when the policy is loaded), reuse for every decision. */
export interface CompiledPolicy {
  /** The policy name, for explanations and logs. */
  readonly name: string | undefined;
  /** The normalized document it was compiled from. */
  readonly document: PolicyDocument;
  /** Every statement, in document order. */
  readonly statements: readonly CompiledStatement[];
  /** The Deny statements, in document order. */
  readonly denyStatements: readonly CompiledStatement[];
  /** The Allow statements, in document order. */
  readonly allowStatements: readonly CompiledStatement[];
}

/**
 * Compiles `doc` (as returned by `parsePolicyDocument`, or built by hand: it is validated again, so a
 * hand-built document with an unknown variable throws the same `PolicyErrors` as parsing would).
 */
export function compilePolicy(doc: PolicyDocument, name?: string): CompiledPolicy {
  const { document, statements } = analyzePolicyDocument(doc);
  return Object.freeze({
    name,
    document,
    statements,
    denyStatements: Object.freeze(statements.filter((s) => s.effect === 'Deny')),
    allowStatements: Object.freeze(statements.filter((s) => s.effect === 'Allow')),
  });
}

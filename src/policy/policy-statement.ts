/**
 * One policy statement: its grammar, normalized form and compiled form
 * (protocols.md "AWS IoT policy language").
 *
 * Grammar: `Effect` ("Allow" | "Deny"), exactly one of `Action` / `NotAction` (string or non-empty array of
 * `*` / `iot:<name>` patterns), exactly one of `Resource` / `NotResource` (string or non-empty array of `*` or
 * `arn:<partition>:iot:<region>:<account>:<kind>/<name>` patterns, each part but `iot` may use wildcards),
 * optional `Sid` (string) and optional `Condition` (see `policy-condition.ts`). Any other key is rejected.
 */
import { jsonPathIndex, jsonPathKey, policyGrammarError } from './errors.ts';
import type { PolicyErrorCode } from './errors.ts';
import { compileActionMask, isValidActionPattern } from './policy-actions.ts';
import { compileConditionBlock } from './policy-condition.ts';
import type { CompiledCondition, PolicyConditionBlock } from './policy-condition.ts';
import { compilePattern, globMatchesPlain } from './policy-pattern.ts';
import type { CompiledPattern } from './policy-pattern.ts';
import type { PolicyVariable } from './policy-variables.ts';

/** The effect of a statement. */
export type PolicyEffect = 'Allow' | 'Deny';

interface PolicyStatementBase {
  readonly Sid?: string;
  readonly Effect: PolicyEffect;
  readonly Condition?: PolicyConditionBlock;
}

/** The action element of a statement: exactly one of `Action` and `NotAction`. */
export type PolicyStatementActions =
  | { readonly Action: readonly string[]; readonly NotAction?: never }
  | { readonly NotAction: readonly string[]; readonly Action?: never };

/** The resource element of a statement: exactly one of `Resource` and `NotResource`. */
export type PolicyStatementResources =
  | { readonly Resource: readonly string[]; readonly NotResource?: never }
  | { readonly NotResource: readonly string[]; readonly Resource?: never };

/** A statement as normalized by `parsePolicyDocument`: every list is an array, Bool/Null values are strings. */
export type PolicyStatement = PolicyStatementBase & PolicyStatementActions & PolicyStatementResources;

/** A statement compiled for `authorize`. Built by `compilePolicy`; treat as opaque. */
export interface CompiledStatement {
  /** Position of the statement in the document. */
  readonly index: number;
  readonly sid: string | undefined;
  readonly effect: PolicyEffect;
  /** Bit mask over POLICY_ACTIONS of the actions the action patterns match. */
  readonly actionMask: number;
  /** The action patterns, for actions outside POLICY_ACTIONS. */
  readonly actionPatterns: readonly string[];
  readonly notAction: boolean;
  readonly resources: readonly CompiledPattern[];
  readonly notResource: boolean;
  /** Distinct variables of all resource patterns: all must resolve for the statement to apply. */
  readonly resourceVariables: readonly PolicyVariable[];
  readonly conditions: readonly CompiledCondition[];
  /** Distinct variables inside condition values: all must resolve for the statement to apply. */
  readonly conditionVariables: readonly PolicyVariable[];
}

const STATEMENT_KEYS = new Set(['Sid', 'Effect', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition']);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates the statement at `path`, returning its normalized and compiled forms. */
export function compileStatement(raw: unknown, index: number, path: string): { statement: PolicyStatement; compiled: CompiledStatement } {
  if (!isPlainObject(raw)) policyGrammarError('POLICY_STATEMENT_INVALID', 'A statement must be a JSON object.', path);
  for (const key of Object.keys(raw)) {
    if (!STATEMENT_KEYS.has(key)) {
      const hint = key === 'Principal' || key === 'NotPrincipal' ? ' (AWS IoT policies have no principal: attach the policy instead)' : '';
      policyGrammarError('POLICY_STATEMENT_INVALID', `Unknown statement key "${key}"${hint}.`, jsonPathKey(path, key));
    }
  }

  const sid = raw['Sid'];
  if (sid !== undefined && typeof sid !== 'string') policyGrammarError('POLICY_STATEMENT_INVALID', 'Sid must be a string.', jsonPathKey(path, 'Sid'));

  const effect = raw['Effect'];
  if (effect !== 'Allow' && effect !== 'Deny') {
    policyGrammarError('POLICY_EFFECT_INVALID', effect === undefined ? 'A statement needs an Effect.' : 'Effect must be "Allow" or "Deny".', jsonPathKey(path, 'Effect'));
  }

  const actionKey = exactlyOne(raw, 'Action', 'NotAction', 'POLICY_ACTION_INVALID', path);
  const actions = stringList(raw[actionKey], 'POLICY_ACTION_INVALID', actionKey, jsonPathKey(path, actionKey));
  actions.forEach((action, i) => {
    if (!isValidActionPattern(action)) {
      policyGrammarError('POLICY_ACTION_INVALID', `Action "${action}" is not "*" nor "iot:<name>" (wildcards * and ? allowed).`, elementPath(raw[actionKey], jsonPathKey(path, actionKey), i));
    }
  });

  const resourceKey = exactlyOne(raw, 'Resource', 'NotResource', 'POLICY_RESOURCE_INVALID', path);
  const resourceStrings = stringList(raw[resourceKey], 'POLICY_RESOURCE_INVALID', resourceKey, jsonPathKey(path, resourceKey));
  const resourceVariables: PolicyVariable[] = [];
  const resources = resourceStrings.map((resource, i) => {
    const resourcePath = elementPath(raw[resourceKey], jsonPathKey(path, resourceKey), i);
    validateResourceArn(resource, resourcePath);
    const pattern = compilePattern(resource, { wildcards: true }, resourcePath);
    for (const variable of pattern.variables) {
      if (!resourceVariables.some((v) => v.name === variable.name)) resourceVariables.push(variable);
    }
    return pattern;
  });

  const condition = raw['Condition'] === undefined ? undefined : compileConditionBlock(raw['Condition'], jsonPathKey(path, 'Condition'));

  const statement = Object.freeze({
    ...(sid === undefined ? {} : { Sid: sid }),
    Effect: effect,
    ...(actionKey === 'Action' ? { Action: Object.freeze(actions) } : { NotAction: Object.freeze(actions) }),
    ...(resourceKey === 'Resource' ? { Resource: Object.freeze(resourceStrings) } : { NotResource: Object.freeze(resourceStrings) }),
    ...(condition === undefined ? {} : { Condition: condition.block }),
  }) as PolicyStatement;

  const compiled: CompiledStatement = Object.freeze({
    index,
    sid,
    effect,
    actionMask: compileActionMask(actions),
    actionPatterns: Object.freeze(actions),
    notAction: actionKey === 'NotAction',
    resources: Object.freeze(resources),
    notResource: resourceKey === 'NotResource',
    resourceVariables: Object.freeze(resourceVariables),
    conditions: condition?.conditions ?? [],
    conditionVariables: condition?.valueVariables ?? [],
  });
  return { statement, compiled };
}

function exactlyOne<K extends string>(raw: Record<string, unknown>, a: K, b: K, code: PolicyErrorCode, path: string): K {
  const hasA = raw[a] !== undefined;
  const hasB = raw[b] !== undefined;
  if (hasA === hasB) {
    policyGrammarError(code, hasA ? `A statement cannot have both ${a} and ${b}.` : `A statement needs ${a} (or ${b}).`, hasA ? jsonPathKey(path, b) : path);
  }
  return hasA ? a : b;
}

function stringList(value: unknown, code: PolicyErrorCode, name: string, path: string): string[] {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value) || value.length === 0) policyGrammarError(code, `${name} must be a string or a non-empty array of strings.`, path);
  return value.map((item: unknown, i) => {
    if (typeof item !== 'string') policyGrammarError(code, `${name} must be a string or a non-empty array of strings.`, jsonPathIndex(path, i));
    return item;
  });
}

function elementPath(container: unknown, path: string, index: number): string {
  return Array.isArray(container) ? jsonPathIndex(path, index) : path;
}

const ARN_PARTITION = /^[a-z0-9*?-]+$/;
const ARN_SERVICE = /^[a-z*?]+$/;
const ARN_REGION = /^[a-z0-9*?-]+$/;
const ARN_ACCOUNT = /^[A-Za-z0-9*?_-]+$/;
const ARN_RESOURCE_KIND = /^[A-Za-z]+\/./;

/**
 * Checks a resource is `*` or `arn:<partition>:iot:<region>:<account>:<resource>`, where `<resource>` is
 * `<kind>/<name>` or contains a wildcard. Variables may appear only in `<resource>`.
 */
function validateResourceArn(resource: string, path: string): void {
  if (resource === '*') return;
  const fail = (why: string): never =>
    policyGrammarError('POLICY_RESOURCE_INVALID', `Resource "${resource}" ${why}; expected "*" or "arn:aws:iot:<region>:<account>:<kind>/<name>".`, path);
  if (!resource.startsWith('arn:')) fail('is not an ARN');
  const parts: string[] = [];
  let from = 0;
  for (let i = 0; i < 5; i++) {
    const colon = resource.indexOf(':', from);
    if (colon < 0) fail('has too few ARN parts');
    parts.push(resource.slice(from, colon));
    from = colon + 1;
  }
  const [, partition = '', service = '', region = '', account = ''] = parts;
  const rest = resource.slice(from);
  if (!ARN_PARTITION.test(partition)) fail('has an invalid partition');
  if (!ARN_SERVICE.test(service) || !globMatchesPlain(service, 'iot')) fail('is not an AWS IoT ARN');
  if (!ARN_REGION.test(region)) fail('has an invalid region');
  if (!ARN_ACCOUNT.test(account)) fail('has an invalid account');
  if (rest === '' || (!ARN_RESOURCE_KIND.test(rest) && !rest.includes('*') && !rest.includes('?'))) fail('has no "<kind>/<name>" resource');
}

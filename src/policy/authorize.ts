/**
 * Policy evaluation (protocols.md "AWS IoT policy language" → Evaluation).
 *
 * Implicit deny by default; a matching Allow grants; a matching Deny wins over everything. A statement matches
 * a request when its action element, its resource element and its conditions all match. Variables are
 * substituted as literals (see `policy-pattern.ts`), and:
 *
 * - A variable that cannot be resolved (absent or empty value, index out of range, empty `.List`) makes its
 *   statement not apply at all — neither Allow nor Deny — whichever element it sits in, and whether or not
 *   another pattern of the same statement would have matched.
 * - Unsafe values (security): for a `topic/…` or `topicfilter/…` request, an **Allow** statement whose resource
 *   variables resolve to a value containing `/`, `+` or `#` does not apply. Such a value would otherwise let a
 *   device choose a client id (or a CSR subject) that reaches into another device's subtree (`other/x`) or,
 *   on a topic filter, an MQTT wildcard (`+`, `#`). A **Deny** statement still applies, with the value taken
 *   literally: an unsafe value can never grant, only deny.
 *
 * The gateway must check `iot:Receive` on every delivered message, not only `iot:Subscribe` on the filter: a
 * Deny on `topicfilter/a/restricted/*` does not stop a subscription to `a/#`, while a Deny on
 * `topic/a/restricted/*` refuses each delivery under `a/restricted/`.
 *
 * `authorize` does not throw, builds no RegExp, concatenates no string and allocates nothing for requests on
 * the known actions.
 */
import type { CompiledPolicy } from './compile-policy.ts';
import { actionBit, actionPatternMatches } from './policy-actions.ts';
import type { PolicyAction } from './policy-actions.ts';
import { evaluateConditions } from './policy-condition.ts';
import type { PolicyContext } from './policy-context.ts';
import { MATCH, matchPattern, UNRESOLVED } from './policy-pattern.ts';
import type { CompiledStatement, PolicyEffect } from './policy-statement.ts';
import { resolveListVariable, resolveVariable } from './policy-variables.ts';
import type { PolicyVariable } from './policy-variables.ts';

/** What is being asked: an action on a resource given as its full ARN (see `resourceArn`). */
export interface AuthorizationRequest {
  readonly action: PolicyAction;
  /** The full ARN, e.g. `arn:aws:iot:us-east-1:123456789012:topic/a/b`. */
  readonly resource: string;
}

/** The outcome: granted, refused by a Deny, or refused because nothing allowed it. */
export type AuthorizationDecision = 'allow' | 'explicit-deny' | 'implicit-deny';

/** Names a statement of a compiled policy. */
export interface StatementReference {
  readonly policyName: string | undefined;
  /** Position of the statement in its document (0-based). */
  readonly statementIndex: number;
  readonly sid: string | undefined;
  readonly effect: PolicyEffect;
}

/** Why a statement whose action matched was not applied. */
export type StatementSkipReason = 'unresolved-variable' | 'unsafe-variable-value';

/** A statement that was set aside during evaluation, and the variable responsible. */
export interface SkippedStatement extends StatementReference {
  readonly reason: StatementSkipReason;
  readonly variable: string;
}

/** The decision with the statement that made it and the statements set aside on the way. */
export interface AuthorizationExplanation {
  readonly decision: AuthorizationDecision;
  /** The Deny or Allow statement that decided; undefined for an implicit deny. */
  readonly statement: StatementReference | undefined;
  /** Statements examined and set aside (Deny statements first, then Allow statements up to the decision). */
  readonly skipped: readonly SkippedStatement[];
}

/**
 * Decides `request` for a connection described by `context`, under every policy in force for it (the policies
 * attached to its certificate and to the thing groups of its thing). Never throws.
 */
export function authorize(policies: readonly CompiledPolicy[], request: AuthorizationRequest, context: PolicyContext): AuthorizationDecision {
  return evaluate(policies, request, context, undefined);
}

/**
 * Like {@link authorize}, but also says which statement decided and which were set aside because of their
 * variables: for logs, the console's "test authorization" and troubleshooting. Allocates; not for the hot path.
 */
export function explainAuthorization(policies: readonly CompiledPolicy[], request: AuthorizationRequest, context: PolicyContext): AuthorizationExplanation {
  const trace = new Trace();
  const decision = evaluate(policies, request, context, trace);
  return { decision, statement: trace.decidedBy, skipped: trace.skipped };
}

class Trace {
  decidedBy: StatementReference | undefined = undefined;
  readonly skipped: SkippedStatement[] = [];

  decide(policy: CompiledPolicy, statement: CompiledStatement): void {
    this.decidedBy = reference(policy, statement);
  }

  skip(policy: CompiledPolicy, statement: CompiledStatement, reason: StatementSkipReason, variable: string): void {
    this.skipped.push({ ...reference(policy, statement), reason, variable });
  }
}

function reference(policy: CompiledPolicy, statement: CompiledStatement): StatementReference {
  return { policyName: policy.name, statementIndex: statement.index, sid: statement.sid, effect: statement.effect };
}

function evaluate(policies: readonly CompiledPolicy[], request: AuthorizationRequest, context: PolicyContext, trace: Trace | undefined): AuthorizationDecision {
  const bit = actionBit(request.action);
  for (const policy of policies) {
    for (const statement of policy.denyStatements) {
      if (applies(policy, statement, bit, request, context, trace)) {
        trace?.decide(policy, statement);
        return 'explicit-deny';
      }
    }
  }
  for (const policy of policies) {
    for (const statement of policy.allowStatements) {
      if (applies(policy, statement, bit, request, context, trace)) {
        trace?.decide(policy, statement);
        return 'allow';
      }
    }
  }
  return 'implicit-deny';
}

function applies(
  policy: CompiledPolicy,
  statement: CompiledStatement,
  bit: number,
  request: AuthorizationRequest,
  context: PolicyContext,
  trace: Trace | undefined,
): boolean {
  // 1. Action element.
  const actionMatched = bit !== 0 ? (statement.actionMask & bit) !== 0 : statement.actionPatterns.some((p) => actionPatternMatches(p, request.action));
  if (actionMatched === statement.notAction) return false;

  // 2. Every variable of the statement must resolve (and, to grant on a topic, be safe).
  const grants = statement.effect === 'Allow';
  for (const variable of statement.resourceVariables) {
    const problem = checkVariable(variable, context, grants ? request.resource : undefined);
    if (problem !== undefined) {
      trace?.skip(policy, statement, problem, variable.name);
      return false;
    }
  }
  for (const variable of statement.conditionVariables) {
    if (checkVariable(variable, context, undefined) !== undefined) {
      trace?.skip(policy, statement, 'unresolved-variable', variable.name);
      return false;
    }
  }

  // 3. Resource element.
  let resourceMatched = false;
  for (const pattern of statement.resources) {
    const result = matchPattern(pattern, request.resource, context);
    if (result === UNRESOLVED) {
      trace?.skip(policy, statement, 'unresolved-variable', pattern.listVariables[0]?.name ?? pattern.source);
      return false;
    }
    if (result === MATCH) {
      resourceMatched = true;
      break;
    }
  }
  if (resourceMatched === statement.notResource) return false;

  // 4. Conditions.
  if (statement.conditions.length === 0) return true;
  const result = evaluateConditions(statement.conditions, context);
  if (result === UNRESOLVED) trace?.skip(policy, statement, 'unresolved-variable', statement.conditionVariables[0]?.name ?? 'Condition');
  return result === MATCH;
}

/**
 * Undefined when `variable` resolves — to values safe for `grantOn`, when given (the resource an Allow would
 * grant); otherwise why not.
 */
function checkVariable(variable: PolicyVariable, context: PolicyContext, grantOn: string | undefined): StatementSkipReason | undefined {
  if (variable.list) {
    const values = resolveListVariable(variable, context);
    if (values === undefined) return 'unresolved-variable';
    if (grantOn !== undefined) for (const value of values) if (isUnsafeTopicValue(value) && isTopicLikeResource(grantOn)) return 'unsafe-variable-value';
    return undefined;
  }
  const value = resolveVariable(variable, context);
  if (value === undefined) return 'unresolved-variable';
  return grantOn !== undefined && isUnsafeTopicValue(value) && isTopicLikeResource(grantOn) ? 'unsafe-variable-value' : undefined;
}

/** A value that would cross a topic level or carry an MQTT wildcard once substituted into a topic (filter). */
function isUnsafeTopicValue(value: string): boolean {
  return value.includes('/') || value.includes('+') || value.includes('#');
}

/**
 * True when the request resource is a `topic/…` or `topicfilter/…` ARN — or not an ARN at all, which is
 * treated the same way, conservatively.
 */
function isTopicLikeResource(resource: string): boolean {
  let colon = -1;
  for (let part = 0; part < 5; part++) {
    colon = resource.indexOf(':', colon + 1);
    if (colon < 0) return true;
  }
  return resource.startsWith('topic/', colon + 1) || resource.startsWith('topicfilter/', colon + 1);
}

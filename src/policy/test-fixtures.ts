/** Shared fixtures for the policy tests (not a test file itself, not exported from index.ts). */
import { authorize, compilePolicy, parsePolicyDocument, resourceArn } from './index.ts';
import type { AuthorizationDecision, CompiledPolicy, PolicyAction, PolicyContext, ResourceKind } from './index.ts';

export const REGION = 'us-east-1';
export const ACCOUNT = '123456789012';
/** The ARN prefix of the test tenant, without the trailing colon. */
export const ARN = `arn:aws:iot:${REGION}:${ACCOUNT}`;

/** A connection context: client `device-1`, no thing, no certificate, unless overridden. */
export function contextOf(overrides: Partial<PolicyContext> = {}): PolicyContext {
  return { clientId: 'device-1', isAttached: false, region: REGION, accountId: ACCOUNT, ...overrides };
}

/** Parses and compiles a document made of `statements`. */
export function policyOf(statements: unknown, name = 'test-policy'): CompiledPolicy {
  return compilePolicy(parsePolicyDocument({ Version: '2012-10-17', Statement: statements }), name);
}

/** The decision for `action` on `<kind>/<name>` in the test tenant. */
export function decide(
  policies: CompiledPolicy | readonly CompiledPolicy[],
  action: PolicyAction,
  kind: ResourceKind,
  name: string,
  context: PolicyContext = contextOf(),
): AuthorizationDecision {
  const list = Array.isArray(policies) ? (policies as readonly CompiledPolicy[]) : [policies as CompiledPolicy];
  return authorize(list, { action, resource: resourceArn(kind, name, context) }, context);
}

/**
 * `src/policy` — the AWS IoT policy language: parse, validate, compile, evaluate with variables
 * (protocols.md "AWS IoT policy language"). Pure: no I/O, no state beyond the compiled policies.
 *
 * Typical use: the registry calls `parsePolicyDocument` when a policy is stored; the gateway calls
 * `compilePolicy` once per policy version, builds one `PolicyContext` per connection, and calls `authorize` on
 * CONNECT (`iot:Connect`, `client/<id>`), PUBLISH (`iot:Publish`, and `iot:RetainPublish` when retained, on
 * `topic/<t>`), SUBSCRIBE (`iot:Subscribe`, `topicfilter/<f>`) and every delivery (`iot:Receive`, `topic/<t>`).
 */
export { PolicyErrors, type PolicyErrorCode } from './errors.ts';
export {
  parsePolicyDocument,
  POLICY_VERSION,
  DEFAULT_MAX_POLICY_DOCUMENT_SIZE,
  type PolicyDocument,
  type ParsePolicyDocumentOptions,
} from './policy-document.ts';
export type { PolicyStatement, PolicyEffect, PolicyStatementActions, PolicyStatementResources, CompiledStatement } from './policy-statement.ts';
export type { PolicyConditionBlock } from './policy-condition.ts';
export { compilePolicy, type CompiledPolicy } from './compile-policy.ts';
export {
  authorize,
  explainAuthorization,
  type AuthorizationRequest,
  type AuthorizationDecision,
  type AuthorizationExplanation,
  type StatementReference,
  type SkippedStatement,
  type StatementSkipReason,
} from './authorize.ts';
export { POLICY_ACTIONS, type PolicyAction } from './policy-actions.ts';
export {
  CERTIFICATE_NAME_FIELDS,
  CERTIFICATE_ALT_NAME_FIELDS,
  type PolicyContext,
  type PolicyThing,
  type PolicyCertificate,
  type CertificateNameValues,
} from './policy-context.ts';
export { resourceArn, type ResourceKind, type ResourceArnScope } from './resource-arn.ts';
export { leastPrivilegeClaimPolicy, type ClaimPolicyOptions } from './claim-policy.ts';

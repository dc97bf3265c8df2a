/**
 * Policy actions (protocols.md "AWS IoT policy language" → Actions).
 *
 * Action patterns in a policy are validated as `*` or `iot:<name>` with `*`/`?` wildcards; names are matched
 * case-insensitively, as in IAM. At compile time every statement's action patterns are reduced to a bit mask over
 * {@link POLICY_ACTIONS}, so `authorize` tests an action with one Map lookup and one AND.
 */
import { globMatchesPlain } from './policy-pattern.ts';

/**
 * The actions a Gatehouse component can ask `authorize` about. The first five are the MQTT data plane the
 * gateway checks (CONNECT, PUBLISH, SUBSCRIBE, every delivery, retained PUBLISH); the rest are the AWS IoT
 * data-plane actions that come with the same MQTT/HTTPS endpoints (retained-message API, shadows, jobs,
 * credential provider).
 */
export const POLICY_ACTIONS = [
  'iot:Connect',
  'iot:Publish',
  'iot:Subscribe',
  'iot:Receive',
  'iot:RetainPublish',
  'iot:GetRetainedMessage',
  'iot:ListRetainedMessages',
  'iot:GetThingShadow',
  'iot:UpdateThingShadow',
  'iot:DeleteThingShadow',
  'iot:DescribeJobExecution',
  'iot:GetPendingJobExecutions',
  'iot:StartNextPendingJobExecution',
  'iot:UpdateJobExecution',
  'iot:AssumeRoleWithCertificate',
] as const;

/** An action `authorize` decides on. */
export type PolicyAction = (typeof POLICY_ACTIONS)[number];

/** Bit of each known action in a statement's action mask (≤ 31 actions, so a small integer). */
const ACTION_BITS: ReadonlyMap<string, number> = new Map(POLICY_ACTIONS.map((action, index) => [action, 1 << index]));

/** The bit of `action` in an action mask, or 0 for a string outside {@link POLICY_ACTIONS}. */
export function actionBit(action: string): number {
  return ACTION_BITS.get(action) ?? 0;
}

/** True when `pattern` (an already-validated action pattern) matches `action`, ignoring case. */
export function actionPatternMatches(pattern: string, action: string): boolean {
  return globMatchesPlain(pattern.toLowerCase(), action.toLowerCase());
}

/** The bit mask of the known actions that at least one of `patterns` matches. */
export function compileActionMask(patterns: readonly string[]): number {
  let mask = 0;
  for (const action of POLICY_ACTIONS) {
    if (patterns.some((pattern) => actionPatternMatches(pattern, action))) mask |= actionBit(action);
  }
  return mask;
}

/** True when `value` is a valid action pattern: `*`, or `iot:` followed by letters, digits and wildcards. */
export function isValidActionPattern(value: string): boolean {
  return value === '*' || /^iot:[A-Za-z0-9*?]+$/i.test(value);
}

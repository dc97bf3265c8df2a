/**
 * Narrowing helpers for parsed JSON, and the CloudFormation rule that tells function calls from data:
 * an object whose key is `Ref` or starts with `Fn::` is an intrinsic function call.
 */

/** A plain JSON object (what JSON.parse gives for `{...}`). */
export function isJsonObject(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True when `value` is written as an intrinsic function call (`{"Ref": ...}`, `{"Fn::...": ...}`). */
export function isFunctionCall(value: unknown): value is Readonly<Record<string, unknown>> {
  return isJsonObject(value) && Object.keys(value).some(isFunctionKey);
}

/** True for the keys that make an object a function call: `Ref` and `Fn::*`. */
export function isFunctionKey(key: string): boolean {
  return key === 'Ref' || key.startsWith('Fn::');
}

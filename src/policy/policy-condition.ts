/**
 * The supported subset of the IAM `Condition` element, as AWS IoT policies use it (for example
 * `"Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}`).
 *
 * Supported:
 * - operators `StringEquals`, `StringNotEquals`, `StringEqualsIgnoreCase`, `StringNotEqualsIgnoreCase`,
 *   `StringLike`, `StringNotLike`, `Bool` — each optionally suffixed `IfExists` and prefixed `ForAnyValue:` or
 *   `ForAllValues:` — and `Null`;
 * - keys: the policy-variable names of `policy-variables.ts` (e.g. `iot:ClientId`,
 *   `iot:Connection.Thing.Attributes[site]`, `iot:Certificate.Subject.Organization.List`); a `.List` key needs
 *   `ForAnyValue:` or `ForAllValues:`;
 * - values: a string or a non-empty array of strings (`Bool`/`Null` also take JSON booleans). String-operator
 *   values may contain `${…}` variables (substituted as literals); `StringLike` values may contain `*` and `?`.
 *
 * Semantics are IAM's: operators AND together, keys within an operator AND together, the values of a key OR
 * together (a negated operator holds when the key matches none of them). A key with no value in the context
 * (absent or empty) makes positive operators false and negated operators true; `…IfExists` makes the operator
 * true; `ForAnyValue:` is false and `ForAllValues:` true on an empty set; `Null` tests exactly that absence.
 * Not supported (rejected at parse time): Numeric*, Date*, IpAddress, Arn*, Binary operators and `aws:*` keys
 * such as `aws:SourceIp`.
 */
import { jsonPathIndex, jsonPathKey, policyGrammarError } from './errors.ts';
import type { PolicyContext } from './policy-context.ts';
import { compilePattern, matchPattern, MATCH, NO_MATCH, UNRESOLVED } from './policy-pattern.ts';
import type { CompiledPattern, MatchResult } from './policy-pattern.ts';
import { parsePolicyVariable, resolveListVariable, resolveVariable } from './policy-variables.ts';
import type { PolicyVariable } from './policy-variables.ts';

/** A condition block as normalized by `parsePolicyDocument`: operator → key → values (always an array of strings). */
export type PolicyConditionBlock = Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>;

/** One operator applied to one key, compiled. */
export interface CompiledCondition {
  /** The operator as written (e.g. `ForAnyValue:StringLike`). */
  readonly operator: string;
  readonly test: 'string' | 'bool' | 'null';
  readonly negated: boolean;
  readonly ignoreCase: boolean;
  readonly ifExists: boolean;
  readonly set: 'single' | 'any' | 'all';
  readonly key: PolicyVariable;
  /** The values to compare with (string and bool tests). */
  readonly values: readonly CompiledPattern[];
  /** For `Null`: true when the condition expects the key to be absent. */
  readonly expectAbsent: boolean;
}

/** The compiled conditions of one statement, its normalized block, and the variables used inside its values. */
export interface CompiledConditionBlock {
  readonly conditions: readonly CompiledCondition[];
  readonly block: PolicyConditionBlock;
  readonly valueVariables: readonly PolicyVariable[];
}

const OPERATOR = /^(?:(ForAnyValue|ForAllValues):)?(StringEquals|StringNotEquals|StringEqualsIgnoreCase|StringNotEqualsIgnoreCase|StringLike|StringNotLike|Bool|Null)(IfExists)?$/;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates and compiles a statement's `Condition` element found at `path`. */
export function compileConditionBlock(value: unknown, path: string): CompiledConditionBlock {
  if (!isPlainObject(value) || Object.keys(value).length === 0) {
    policyGrammarError('POLICY_CONDITION_INVALID', 'Condition must be a non-empty object of operator → { key → value(s) }.', path);
  }
  const conditions: CompiledCondition[] = [];
  const valueVariables: PolicyVariable[] = [];
  const block: Record<string, Readonly<Record<string, readonly string[]>>> = {};

  for (const [operator, keys] of Object.entries(value)) {
    const operatorPath = jsonPathKey(path, operator);
    const parsed = OPERATOR.exec(operator);
    if (parsed === null) {
      policyGrammarError('POLICY_CONDITION_OPERATOR_UNSUPPORTED', `Condition operator "${operator}" is not supported (String*, Bool and Null are, with IfExists and ForAnyValue:/ForAllValues:).`, operatorPath);
    }
    const [, setName, base = '', ifExists] = parsed;
    if (base === 'Null' && (setName !== undefined || ifExists !== undefined)) {
      policyGrammarError('POLICY_CONDITION_OPERATOR_UNSUPPORTED', `Condition operator "${operator}" is not supported: Null takes neither IfExists nor a set qualifier.`, operatorPath);
    }
    if (!isPlainObject(keys) || Object.keys(keys).length === 0) {
      policyGrammarError('POLICY_CONDITION_INVALID', `Condition operator "${operator}" must map to a non-empty object of key → value(s).`, operatorPath);
    }
    const test = base === 'Bool' ? 'bool' : base === 'Null' ? 'null' : 'string';
    const normalizedKeys: Record<string, readonly string[]> = {};

    for (const [keyName, rawValues] of Object.entries(keys)) {
      const keyPath = jsonPathKey(operatorPath, keyName);
      const key = parsePolicyVariable(keyName);
      if (key === undefined) {
        policyGrammarError('POLICY_CONDITION_KEY_UNSUPPORTED', `Condition key "${keyName}" is not supported (only the iot: policy variables are).`, keyPath);
      }
      if (key.list && setName === undefined && test !== 'null') {
        policyGrammarError('POLICY_CONDITION_INVALID', `Condition key "${keyName}" is multi-valued: use ForAnyValue:${base} or ForAllValues:${base}.`, keyPath);
      }
      const strings = conditionValues(rawValues, test, keyPath);
      normalizedKeys[keyName] = Object.freeze(strings);

      const values: CompiledPattern[] = [];
      if (test !== 'null') {
        strings.forEach((text, index) => {
          const valuePath = Array.isArray(rawValues) ? jsonPathIndex(keyPath, index) : keyPath;
          const pattern = compilePattern(text, { wildcards: base === 'StringLike' || base === 'StringNotLike' }, valuePath);
          if (pattern.listVariables.length > 0) {
            policyGrammarError('POLICY_CONDITION_INVALID', 'A condition value cannot use a .List variable.', valuePath);
          }
          for (const variable of pattern.variables) {
            if (!valueVariables.some((v) => v.name === variable.name)) valueVariables.push(variable);
          }
          values.push(pattern);
        });
      } else if (strings.length !== 1) {
        policyGrammarError('POLICY_CONDITION_INVALID', 'Null takes exactly one value, "true" or "false".', keyPath);
      }

      conditions.push({
        operator,
        test,
        negated: base.includes('Not'),
        ignoreCase: base.endsWith('IgnoreCase') || test === 'bool',
        ifExists: ifExists !== undefined,
        set: setName === 'ForAnyValue' ? 'any' : setName === 'ForAllValues' ? 'all' : 'single',
        key,
        values: Object.freeze(values),
        expectAbsent: test === 'null' && strings[0] === 'true',
      });
    }
    block[operator] = Object.freeze(normalizedKeys);
  }
  return { conditions: Object.freeze(conditions), block: Object.freeze(block), valueVariables: Object.freeze(valueVariables) };
}

/** The values of one condition key as strings; booleans only for Bool/Null, which must be "true"/"false". */
function conditionValues(raw: unknown, test: 'string' | 'bool' | 'null', path: string): string[] {
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0) policyGrammarError('POLICY_CONDITION_INVALID', 'A condition key needs at least one value.', path);
  return list.map((item, index) => {
    const itemPath = Array.isArray(raw) ? jsonPathIndex(path, index) : path;
    if (test === 'string') {
      if (typeof item !== 'string') policyGrammarError('POLICY_CONDITION_INVALID', 'String condition values must be strings.', itemPath);
      return item;
    }
    const text = typeof item === 'boolean' ? String(item) : typeof item === 'string' ? item.toLowerCase() : undefined;
    if (text !== 'true' && text !== 'false') {
      policyGrammarError('POLICY_CONDITION_INVALID', `${test === 'bool' ? 'Bool' : 'Null'} condition values must be "true" or "false".`, itemPath);
    }
    return text;
  });
}

/**
 * Evaluates a statement's conditions (all must hold). Returns UNRESOLVED when a variable inside a condition value
 * cannot be resolved — the statement then does not apply.
 */
export function evaluateConditions(conditions: readonly CompiledCondition[], context: PolicyContext): MatchResult {
  for (const condition of conditions) {
    const result = evaluateCondition(condition, context);
    if (result !== MATCH) return result;
  }
  return MATCH;
}

function evaluateCondition(condition: CompiledCondition, context: PolicyContext): MatchResult {
  const key = condition.key;
  if (condition.test === 'null') {
    const present = key.list ? resolveListVariable(key, context) !== undefined : resolveVariable(key, context) !== undefined;
    return present === condition.expectAbsent ? NO_MATCH : MATCH;
  }
  if (key.list) {
    const set = resolveListVariable(key, context);
    if (set === undefined) return absent(condition);
    if (condition.set === 'all') {
      for (const value of set) {
        const result = testValue(condition, value, context);
        if (result !== MATCH) return result;
      }
      return MATCH;
    }
    for (const value of set) {
      const result = testValue(condition, value, context);
      if (result !== NO_MATCH) return result;
    }
    return NO_MATCH;
  }
  const value = resolveVariable(key, context);
  if (value === undefined) return absent(condition);
  // A single value is a one-element set: ForAnyValue and ForAllValues both reduce to testing it.
  return testValue(condition, value, context);
}

/** IAM's outcome for a key with no value in the context. */
function absent(condition: CompiledCondition): MatchResult {
  if (condition.ifExists) return MATCH;
  if (condition.set === 'any') return NO_MATCH;
  if (condition.set === 'all') return MATCH;
  return condition.negated ? MATCH : NO_MATCH;
}

/** Whether one context value satisfies the operator against the condition's values. */
function testValue(condition: CompiledCondition, value: string, context: PolicyContext): MatchResult {
  let matched = false;
  for (const pattern of condition.values) {
    const result = matchPattern(pattern, value, context, condition.ignoreCase);
    if (result === UNRESOLVED) return UNRESOLVED;
    if (result === MATCH) {
      matched = true;
      break;
    }
  }
  return matched !== condition.negated ? MATCH : NO_MATCH;
}

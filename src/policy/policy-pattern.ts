/**
 * Compiled resource patterns and the matcher behind `authorize` (protocols.md "AWS IoT policy language" →
 * Wildcards in policies).
 *
 * ## Compiled form
 *
 * A pattern such as `arn:aws:iot:*:123456789012:topic/dev/${iot:ClientId}/?x` is split once, at compile time,
 * into tokens:
 *
 *     literal "arn:aws:iot:" · STAR · literal ":123456789012:topic/dev/" · VAR iot:ClientId · literal "/" · ONE · literal "x"
 *
 * - `*` → STAR (any run of characters, `/` included); `?` → ONE (exactly one character, a whole code point);
 * - `${iot:…}` → VAR, a parsed {@link PolicyVariable} read from the context at evaluation time and compared as a
 *   LITERAL: a value of `*`, `?`, `+`, `#` or `a/b` matches only those very characters and never acts as a wildcard;
 * - `${*}`, `${?}`, `${$}` → the literal characters `*`, `?`, `$` (IAM escapes);
 * - MQTT `+` and `#` are ordinary literal characters.
 *
 * Patterns without variables are classified further so the common cases cost one string comparison:
 * `any` (bare `*`), `exact` (no wildcard), `prefix` (literal then a single trailing `*`), or `glob`.
 *
 * Matching never builds a RegExp nor concatenates the substituted pattern: the input is walked in place with the
 * classic star-backtracking algorithm (every non-star token has a fixed width once its variable is resolved, so
 * backtracking only ever re-extends the most recent star: O(pattern × input) in the worst case, no exponential
 * blow-up on hostile patterns such as `*a*a*a*a*b`).
 *
 * `.List` variables are matched by trying every value (and, with several distinct list variables, every
 * combination up to {@link MAX_LIST_COMBINATIONS}); a variable that appears twice takes the same value in both
 * places. The per-pattern choice counters are scratch state on the compiled pattern: matching is synchronous and
 * not re-entrant, which JavaScript's single thread guarantees.
 */
import { policyGrammarError } from './errors.ts';
import type { PolicyContext } from './policy-context.ts';
import { parsePolicyVariable, resolveListVariable, resolveVariable } from './policy-variables.ts';
import type { PolicyVariable } from './policy-variables.ts';

/** Result of matching one pattern: it matches, it does not, or a variable in it cannot be resolved. */
export type MatchResult = typeof MATCH | typeof NO_MATCH | typeof UNRESOLVED;
/** The pattern matches the input. */
export const MATCH = 1;
/** The pattern does not match the input. */
export const NO_MATCH = 0;
/** A variable of the pattern has no usable value: the statement holding it does not apply. */
export const UNRESOLVED = -1;

/** Upper bound on the value combinations tried for a pattern with several `.List` variables. */
export const MAX_LIST_COMBINATIONS = 1024;

const LITERAL = 0;
const STAR = 1;
const ONE = 2;
const VARIABLE = 3;

/** One token of a compiled pattern (see the module comment). */
export interface PatternToken {
  readonly type: typeof LITERAL | typeof STAR | typeof ONE | typeof VARIABLE;
  /** The literal text (LITERAL only). */
  readonly text: string;
  /** The variable (VARIABLE only). */
  readonly variable: PolicyVariable | undefined;
  /** Index into the pattern's list slots for a `.List` variable, else -1. */
  readonly listSlot: number;
}

/** A pattern compiled once and matched many times. */
export interface CompiledPattern {
  /** The pattern as written in the policy. */
  readonly source: string;
  readonly shape: 'any' | 'exact' | 'prefix' | 'glob';
  /** The literal of an `exact` or `prefix` pattern. */
  readonly literal: string;
  readonly tokens: readonly PatternToken[];
  /** Distinct variables, in order of first appearance. */
  readonly variables: readonly PolicyVariable[];
  /** Distinct `.List` variables; a token's `listSlot` indexes this array. */
  readonly listVariables: readonly PolicyVariable[];
  /** Scratch: the current value index of each list slot. */
  readonly listChoice: Int32Array;
  /** Scratch: the resolved values of each list slot during one match. */
  readonly listValues: (readonly string[] | undefined)[];
}

/** How to read a pattern. */
export interface CompilePatternOptions {
  /** Whether `*` and `?` are wildcards (resources, StringLike) or literal characters (StringEquals). */
  readonly wildcards: boolean;
}

/**
 * Compiles `source`. Throws `POLICY_VARIABLE_MALFORMED` for an unclosed `${` and `POLICY_VARIABLE_UNKNOWN` for a
 * variable name Gatehouse does not know, with `details.path` = `path`.
 */
export function compilePattern(source: string, options: CompilePatternOptions, path: string): CompiledPattern {
  const tokens: PatternToken[] = [];
  const variables: PolicyVariable[] = [];
  const listVariables: PolicyVariable[] = [];
  let literal = '';
  const flushLiteral = (): void => {
    if (literal !== '') tokens.push({ type: LITERAL, text: literal, variable: undefined, listSlot: -1 });
    literal = '';
  };

  for (let i = 0; i < source.length; i++) {
    const ch = source[i] ?? '';
    if (ch === '$' && source[i + 1] === '{') {
      const end = source.indexOf('}', i + 2);
      if (end < 0) policyGrammarError('POLICY_VARIABLE_MALFORMED', `Unclosed "\${" at character ${i + 1} of "${source}".`, path);
      const name = source.slice(i + 2, end);
      i = end;
      if (name === '*' || name === '?' || name === '$') {
        literal += name;
        continue;
      }
      const variable = parsePolicyVariable(name);
      if (variable === undefined) policyGrammarError('POLICY_VARIABLE_UNKNOWN', `Unknown policy variable "\${${name}}".`, path);
      let known = variables.find((v) => v.name === variable.name);
      if (known === undefined) {
        known = variable;
        variables.push(variable);
        if (variable.list) listVariables.push(variable);
      }
      flushLiteral();
      tokens.push({ type: VARIABLE, text: '', variable: known, listSlot: known.list ? listVariables.indexOf(known) : -1 });
    } else if (options.wildcards && ch === '*') {
      flushLiteral();
      // Consecutive stars match the same as one.
      if (tokens.at(-1)?.type !== STAR) tokens.push({ type: STAR, text: '', variable: undefined, listSlot: -1 });
    } else if (options.wildcards && ch === '?') {
      flushLiteral();
      tokens.push({ type: ONE, text: '', variable: undefined, listSlot: -1 });
    } else {
      literal += ch;
    }
  }
  flushLiteral();

  return {
    source,
    ...classify(tokens),
    tokens: Object.freeze(tokens),
    variables: Object.freeze(variables),
    listVariables: Object.freeze(listVariables),
    listChoice: new Int32Array(listVariables.length),
    listValues: listVariables.map(() => undefined),
  };
}

function classify(tokens: readonly PatternToken[]): Pick<CompiledPattern, 'shape' | 'literal'> {
  const [first, second] = tokens;
  if (tokens.length === 1 && first?.type === STAR) return { shape: 'any', literal: '' };
  if (tokens.length === 0) return { shape: 'exact', literal: '' };
  if (tokens.length === 1 && first?.type === LITERAL) return { shape: 'exact', literal: first.text };
  if (tokens.length === 2 && first?.type === LITERAL && second?.type === STAR) return { shape: 'prefix', literal: first.text };
  return { shape: 'glob', literal: '' };
}

/**
 * Matches `input` against `pattern`, reading variables from `context`. Returns {@link UNRESOLVED} when a variable
 * of the pattern cannot be resolved (or a `.List` pattern would need more than {@link MAX_LIST_COMBINATIONS}
 * tries). `ignoreCase` is for the `…IgnoreCase` condition operators only.
 */
export function matchPattern(pattern: CompiledPattern, input: string, context: PolicyContext, ignoreCase = false): MatchResult {
  switch (pattern.shape) {
    case 'any':
      return MATCH;
    case 'exact':
      return (ignoreCase ? equalsIgnoreCase(input, pattern.literal) : input === pattern.literal) ? MATCH : NO_MATCH;
    case 'prefix':
      return regionMatches(input, 0, pattern.literal, ignoreCase) ? MATCH : NO_MATCH;
    case 'glob':
      break;
  }
  const slots = pattern.listVariables.length;
  if (slots === 0) return globMatch(pattern, input, context, ignoreCase);

  let combinations = 1;
  for (let slot = 0; slot < slots; slot++) {
    const listVariable = pattern.listVariables[slot];
    const values = listVariable === undefined ? undefined : resolveListVariable(listVariable, context);
    if (values === undefined) return UNRESOLVED;
    pattern.listValues[slot] = values;
    pattern.listChoice[slot] = 0;
    combinations *= values.length;
  }
  if (combinations > MAX_LIST_COMBINATIONS) return UNRESOLVED;

  for (;;) {
    const result = globMatch(pattern, input, context, ignoreCase);
    if (result !== NO_MATCH) return result;
    // Odometer over the list slots.
    let slot = 0;
    for (; slot < slots; slot++) {
      const next = (pattern.listChoice[slot] ?? 0) + 1;
      if (next < (pattern.listValues[slot]?.length ?? 0)) {
        pattern.listChoice[slot] = next;
        break;
      }
      pattern.listChoice[slot] = 0;
    }
    if (slot === slots) return NO_MATCH;
  }
}

/** The text a non-star token stands for right now; undefined when its variable cannot be resolved. */
function tokenText(pattern: CompiledPattern, token: PatternToken, context: PolicyContext): string | undefined {
  if (token.type === LITERAL) return token.text;
  if (token.variable === undefined) return undefined;
  if (token.listSlot < 0) return resolveVariable(token.variable, context);
  return pattern.listValues[token.listSlot]?.[pattern.listChoice[token.listSlot] ?? 0];
}

function globMatch(pattern: CompiledPattern, input: string, context: PolicyContext, ignoreCase: boolean): MatchResult {
  const tokens = pattern.tokens;
  const end = input.length;
  let ti = 0;
  let pos = 0;
  let starTi = -1;
  let starPos = 0;
  // After a star: the text of the token that follows it (undefined when that is `?`), to jump with indexOf.
  let afterStar: string | undefined;
  for (;;) {
    const token = tokens[ti];
    if (token !== undefined) {
      if (token.type === STAR) {
        // A trailing star matches whatever is left (every variable before it has been resolved already).
        if (ti === tokens.length - 1) return MATCH;
        starTi = ti++;
        starPos = pos;
        const next = tokens[ti];
        afterStar = next === undefined || next.type === ONE ? undefined : tokenText(pattern, next, context);
        if (next !== undefined && next.type !== ONE && afterStar === undefined) return UNRESOLVED;
        continue;
      }
      if (token.type === ONE) {
        if (pos < end) {
          pos += codePointWidth(input, pos);
          ti++;
          continue;
        }
      } else {
        const text = tokenText(pattern, token, context);
        if (text === undefined) return UNRESOLVED;
        if (regionMatches(input, pos, text, ignoreCase)) {
          pos += text.length;
          ti++;
          continue;
        }
      }
    } else if (pos === end) {
      return MATCH;
    }
    // Mismatch: let the most recent star absorb more characters — up to the next place where the token after
    // it can match — and retry what follows it.
    if (starTi < 0 || starPos >= end) return NO_MATCH;
    if (afterStar === undefined || ignoreCase) {
      starPos++;
    } else {
      starPos = input.indexOf(afterStar, starPos + 1);
      if (starPos < 0) return NO_MATCH;
    }
    pos = starPos;
    ti = starTi + 1;
  }
}

function codePointWidth(input: string, pos: number): number {
  const code = input.charCodeAt(pos);
  if (code >= 0xd800 && code <= 0xdbff) {
    const low = input.charCodeAt(pos + 1);
    if (low >= 0xdc00 && low <= 0xdfff) return 2;
  }
  return 1;
}

/**
 * Whether `text` occurs in `input` at `pos`. Not `startsWith`: on Node 20 it compares character by character in
 * a slow builtin loop, several times slower than `lastIndexOf`, which here checks position `pos` first and only
 * scans backwards (natively) on a mismatch — and the first-character test rules out most mismatches before that.
 */
function regionMatches(input: string, pos: number, text: string, ignoreCase: boolean): boolean {
  const length = text.length;
  if (pos + length > input.length) return false;
  if (ignoreCase) return equalsIgnoreCase(input.slice(pos, pos + length), text);
  if (length === 0) return true;
  if (input.charCodeAt(pos) !== text.charCodeAt(0)) return false;
  return input.lastIndexOf(text, pos) === pos;
}

function equalsIgnoreCase(a: string, b: string): boolean {
  return a.length === b.length && (a === b || a.toLowerCase() === b.toLowerCase());
}

/**
 * Plain wildcard match of `input` against `pattern` (`*` and `?` only, no variables); for action names and
 * grammar checks at compile time. Not for the evaluation hot path.
 */
export function globMatchesPlain(pattern: string, input: string): boolean {
  return globMatch(compilePattern(pattern, { wildcards: true }, '$'), input, NO_CONTEXT, false) === MATCH;
}

const NO_CONTEXT: PolicyContext = Object.freeze({ clientId: '', isAttached: false, region: '', accountId: '' });

import { describe, expect, it } from 'vitest';
import type { PolicyContext } from './index.ts';
import { compilePattern, MATCH, matchPattern, MAX_LIST_COMBINATIONS, NO_MATCH, UNRESOLVED } from './policy-pattern.ts';
import { contextOf } from './test-fixtures.ts';

const wildcards = { wildcards: true } as const;

function matches(pattern: string, input: string, context: PolicyContext = contextOf()): boolean {
  const result = matchPattern(compilePattern(pattern, wildcards, '$'), input, context);
  expect(result).not.toBe(UNRESOLVED);
  return result === MATCH;
}

describe('compilePattern: compiled form', () => {
  it('classifies variable-free patterns so the common cases are one comparison', () => {
    expect(compilePattern('*', wildcards, '$').shape).toBe('any');
    expect(compilePattern('**', wildcards, '$').shape).toBe('any');
    expect(compilePattern('arn:aws:iot:r:1:topic/a', wildcards, '$')).toMatchObject({ shape: 'exact', literal: 'arn:aws:iot:r:1:topic/a' });
    expect(compilePattern('arn:aws:iot:r:1:topic/a/*', wildcards, '$')).toMatchObject({ shape: 'prefix', literal: 'arn:aws:iot:r:1:topic/a/' });
    expect(compilePattern('arn:aws:iot:*:1:topic/a', wildcards, '$').shape).toBe('glob');
    expect(compilePattern('topic/${iot:ClientId}', wildcards, '$').shape).toBe('glob');
    // Escapes fold into the literal.
    expect(compilePattern('a${*}b', wildcards, '$')).toMatchObject({ shape: 'exact', literal: 'a*b' });
    // Without wildcards (StringEquals), * and ? are literal.
    expect(compilePattern('a*?', { wildcards: false }, '$')).toMatchObject({ shape: 'exact', literal: 'a*?' });
  });

  it('splits literals, wildcards and variable slots, sharing one slot per distinct variable', () => {
    const pattern = compilePattern('t/${iot:ClientId}/?/*/${iot:ClientId}', wildcards, '$');
    expect(pattern.tokens.map((t) => [t.type, t.text, t.variable?.name])).toEqual([
      [0, 't/', undefined],
      [3, '', 'iot:ClientId'],
      [0, '/', undefined],
      [2, '', undefined],
      [0, '/', undefined],
      [1, '', undefined],
      [0, '/', undefined],
      [3, '', 'iot:ClientId'],
    ]);
    expect(pattern.variables.map((v) => v.name)).toEqual(['iot:ClientId']);
  });
});

describe('matchPattern: wildcards', () => {
  it('"*" matches any run of characters, "/" included, and the empty run', () => {
    expect(matches('topic/a/*', 'topic/a/b')).toBe(true);
    expect(matches('topic/a/*', 'topic/a/b/c/d')).toBe(true);
    expect(matches('topic/a/*', 'topic/a/')).toBe(true);
    expect(matches('topic/a/*', 'topic/a')).toBe(false);
    expect(matches('topic/a*', 'topic/a')).toBe(true);
    expect(matches('topic/a*', 'topic/abc/d')).toBe(true);
    expect(matches('topic/*/status', 'topic/x/y/z/status')).toBe(true);
    expect(matches('topic/*/status', 'topic/x/status/more')).toBe(false);
    expect(matches('*/status', 'anything/status')).toBe(true);
    expect(matches('a*b*c', 'aXbYbZc')).toBe(true);
    expect(matches('a*b*c', 'aXbYbZ')).toBe(false);
    expect(matches('a*ab', 'aaab')).toBe(true);
    expect(matches('a**b', 'ab')).toBe(true);
  });

  it('"?" matches exactly one character — "/" included, a whole code point for astral characters', () => {
    expect(matches('topic/a/?', 'topic/a/b')).toBe(true);
    expect(matches('topic/a/?', 'topic/a/bc')).toBe(false);
    expect(matches('topic/a/?', 'topic/a/')).toBe(false);
    expect(matches('a?b', 'a/b')).toBe(true);
    expect(matches('a??', 'abc')).toBe(true);
    expect(matches('x?y', 'x😀y')).toBe(true);
    expect(matches('x??y', 'x😀y')).toBe(false);
    expect(matches('x*?y', 'x😀y')).toBe(true);
    expect(matches('?*', '')).toBe(false);
  });

  it('MQTT "+" and "#" are literal characters in a policy', () => {
    expect(matches('topicfilter/a/+', 'topicfilter/a/+')).toBe(true);
    expect(matches('topicfilter/a/+', 'topicfilter/a/b')).toBe(false);
    expect(matches('topicfilter/a/#', 'topicfilter/a/#')).toBe(true);
    expect(matches('topicfilter/a/#', 'topicfilter/a/b/c')).toBe(false);
    expect(matches('topic/a/#', 'topic/a/b')).toBe(false);
    // …while a policy "*" covers filters that contain them.
    expect(matches('topicfilter/a/*', 'topicfilter/a/+/#')).toBe(true);
  });

  it('bare "*" matches everything; region and account parts may be wildcards', () => {
    expect(matches('*', '')).toBe(true);
    expect(matches('*', 'arn:aws:iot:eu-west-1:999:client/x')).toBe(true);
    expect(matches('arn:aws:iot:*:*:client/x', 'arn:aws:iot:eu-west-1:999:client/x')).toBe(true);
    expect(matches('arn:aws:iot:*:*:client/x', 'arn:aws:iot:eu-west-1:999:client/y')).toBe(false);
    expect(matches('arn:aws:iot:eu-*:123456789012:*', 'arn:aws:iot:eu-west-1:123456789012:topic/a')).toBe(true);
    expect(matches('arn:aws:iot:eu-*:123456789012:*', 'arn:aws:iot:us-east-1:123456789012:topic/a')).toBe(false);
  });

  it('is case-sensitive (topics and client ids are)', () => {
    expect(matches('topic/Room/*', 'topic/room/1')).toBe(false);
  });

  it('stays linear-ish on hostile patterns (no exponential backtracking)', () => {
    const hostile = compilePattern(`${'*a'.repeat(30)}*b`, wildcards, '$');
    expect(matchPattern(hostile, 'a'.repeat(10_000), contextOf())).toBe(NO_MATCH);
    const questions = compilePattern(`*${'?'.repeat(50)}b`, wildcards, '$');
    expect(matchPattern(questions, 'a'.repeat(5_000), contextOf())).toBe(NO_MATCH);
  });
});

describe('matchPattern: variables are literals', () => {
  const context = (clientId: string): PolicyContext => contextOf({ clientId });

  it('substitutes the value verbatim, wildcard characters included', () => {
    expect(matches('dev/${iot:ClientId}/*', 'dev/*/x', context('*'))).toBe(true);
    expect(matches('dev/${iot:ClientId}/*', 'dev/abc/x', context('*'))).toBe(false);
    expect(matches('dev/${iot:ClientId}', 'dev/a', context('?'))).toBe(false);
    expect(matches('dev/${iot:ClientId}', 'dev/?', context('?'))).toBe(true);
    expect(matches('dev/${iot:ClientId}/#', 'dev/x/#', context('+'))).toBe(false);
    expect(matches('x${iot:ClientId}y', 'x${iot:ClientId}y', context('c'))).toBe(false);
  });

  it('combines with wildcards around it', () => {
    expect(matches('*/${iot:ClientId}/?', 'a/b/d1/z', context('d1'))).toBe(true);
    expect(matches('*/${iot:ClientId}/?', 'a/b/d1/zz', context('d1'))).toBe(false);
    expect(matches('*${iot:ClientId}', 'xxd1d1', context('d1'))).toBe(true);
  });

  it('reports UNRESOLVED for a missing value, and for too many .List combinations', () => {
    const missing = compilePattern('t/${iot:Connection.Thing.ThingName}', wildcards, '$');
    expect(matchPattern(missing, 't/x', contextOf())).toBe(UNRESOLVED);
    const values = Array.from({ length: 40 }, (_, i) => `v${i}`);
    const many = contextOf({ certificate: { subject: { OrganizationalUnit: values, Organization: values }, issuer: {} } });
    expect(40 * 40).toBeGreaterThan(MAX_LIST_COMBINATIONS);
    const pair = compilePattern('${iot:Certificate.Subject.OrganizationalUnit.List}/${iot:Certificate.Subject.Organization.List}', wildcards, '$');
    expect(matchPattern(pair, 'v1/v2', many)).toBe(UNRESOLVED);
    const single = compilePattern('${iot:Certificate.Subject.OrganizationalUnit.List}/*', wildcards, '$');
    expect(matchPattern(single, 'v39/x', many)).toBe(MATCH);
  });

  it('matches case-insensitively only when asked (…IgnoreCase operators)', () => {
    const pattern = compilePattern('Dev-${iot:ClientId}', { wildcards: false }, '$');
    expect(matchPattern(pattern, 'dev-ABC', context('abc'), true)).toBe(MATCH);
    expect(matchPattern(pattern, 'dev-ABC', context('abc'), false)).toBe(NO_MATCH);
  });
});

describe('matchPattern: agrees with a reference RegExp on random patterns', () => {
  it('for 20k random pattern/input pairs (seeded)', () => {
    let seed = 0x2f6b_1d35;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return (seed >>> 8) % n;
    };
    const pick = (alphabet: string, min: number, max: number): string => {
      let out = '';
      for (let i = min + random(max - min + 1); i > 0; i--) out += alphabet[random(alphabet.length)] ?? '';
      return out;
    };
    const escape = (text: string): string => text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
    for (let i = 0; i < 20_000; i++) {
      const clientId = pick('ab/+*?', 1, 3);
      const raw = pick('ab/+*?V', 0, 8);
      const pattern = raw.replaceAll('V', '${iot:ClientId}');
      const input = pick('ab/+*?', 0, 10) + (random(2) === 0 ? clientId : '') + pick('ab/', 0, 3);
      const reference = new RegExp(
        `^${[...raw].map((ch) => (ch === '*' ? '[\\s\\S]*' : ch === '?' ? '[\\s\\S]' : ch === 'V' ? escape(clientId) : escape(ch))).join('')}$`,
      );
      const actual = matchPattern(compilePattern(pattern, wildcards, '$'), input, contextOf({ clientId }));
      if ((actual === MATCH) !== reference.test(input)) {
        throw new Error(`pattern ${JSON.stringify(pattern)} clientId ${JSON.stringify(clientId)} input ${JSON.stringify(input)}: got ${actual}`);
      }
    }
  });
});

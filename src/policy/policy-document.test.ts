import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../errors/index.ts';
import { compilePolicy, parsePolicyDocument, PolicyErrors } from './index.ts';
import type { PolicyDocument } from './index.ts';

const ARN = 'arn:aws:iot:us-east-1:123456789012';

/** Runs `fn`, expecting a policy error with `code` and `details.path` = `path`. */
function expectPolicyError(fn: () => unknown, code: string, path?: string): GatehouseError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(GatehouseError);
  const error = caught as GatehouseError;
  expect(error.code).toBe(code);
  expect(Object.hasOwn(PolicyErrors.specs, error.code)).toBe(true);
  if (path !== undefined) expect(error.details?.['path']).toBe(path);
  return error;
}

function doc(statement: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { Version: '2012-10-17', Statement: statement, ...extra };
}

const ALLOW_CONNECT = { Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/d1` };

describe('parsePolicyDocument: accepted documents', () => {
  it('accepts a JSON string and an object, and normalizes every list to an array', () => {
    const fromText = parsePolicyDocument(JSON.stringify(doc(ALLOW_CONNECT)));
    const fromObject = parsePolicyDocument(doc(ALLOW_CONNECT));
    const expected: PolicyDocument = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['iot:Connect'], Resource: [`${ARN}:client/d1`] }],
    };
    expect(fromText).toEqual(expected);
    expect(fromObject).toEqual(expected);
    expect(Object.isFrozen(fromText)).toBe(true);
    expect(Object.isFrozen(fromText.Statement[0])).toBe(true);
  });

  it('keeps Sid, Id, NotAction, NotResource and a normalized Condition; the result re-parses to itself', () => {
    const parsed = parsePolicyDocument(
      doc(
        [
          { Sid: 'one', Effect: 'Deny', NotAction: ['iot:Connect'], NotResource: `${ARN}:topic/ok/*` },
          { Effect: 'Allow', Action: '*', Resource: '*', Condition: { Bool: { 'iot:Connection.Thing.IsAttached': true } } },
        ],
        { Id: 'my-policy' },
      ),
    );
    expect(parsed).toEqual({
      Version: '2012-10-17',
      Id: 'my-policy',
      Statement: [
        { Sid: 'one', Effect: 'Deny', NotAction: ['iot:Connect'], NotResource: [`${ARN}:topic/ok/*`] },
        { Effect: 'Allow', Action: ['*'], Resource: ['*'], Condition: { Bool: { 'iot:Connection.Thing.IsAttached': ['true'] } } },
      ],
    });
    expect(parsePolicyDocument(JSON.stringify(parsed))).toEqual(parsed);
  });

  it('accepts iot:* and other iot: actions with wildcards, any case', () => {
    const parsed = parsePolicyDocument(doc({ Effect: 'Allow', Action: ['iot:*', 'iot:Get*', 'iot:?pdateThingShadow', 'IOT:publish', 'iot:DescribeJobExecution'], Resource: '*' }));
    expect(parsed.Statement[0]?.Action).toHaveLength(5);
  });

  it('accepts ARNs with wildcard region/account/partition and $aws topics', () => {
    parsePolicyDocument(
      doc({
        Effect: 'Allow',
        Action: 'iot:Publish',
        Resource: [
          'arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*',
          'arn:*:iot:us-*:12345678901?:topic/a',
          'arn:aws:iot:eu-west-1:123456789012:*',
          'arn:aws:*:eu-west-1:123456789012:topic/x',
          `${ARN}:topic/literal/+/#`,
        ],
      }),
    );
  });

  it('counts the size without whitespace (AWS: 2048 characters) and takes the limit as a parameter', () => {
    const statement = { Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/${'x'.repeat(1900)}` };
    const compactLength = JSON.stringify(doc(statement)).length;
    expect(compactLength).toBeLessThanOrEqual(2048);
    // Heavy indentation does not count.
    parsePolicyDocument(JSON.stringify(doc(statement), null, 40));
    const error = expectPolicyError(() => parsePolicyDocument(doc(statement), { maxDocumentSize: compactLength - 1 }), 'POLICY_DOCUMENT_TOO_LARGE', '$');
    expect(error.kind).toBe('too_large');
    parsePolicyDocument(doc(statement), { maxDocumentSize: compactLength });
    expectPolicyError(
      () => parsePolicyDocument(doc({ ...statement, Resource: `${ARN}:topic/${'x'.repeat(2100)}` })),
      'POLICY_DOCUMENT_TOO_LARGE',
    );
  });
});

describe('parsePolicyDocument: errors carry a code and a JSON path', () => {
  const cases: [string, unknown, string, string][] = [
    ['malformed JSON', '{"Version": "2012-10-17",', 'POLICY_DOCUMENT_MALFORMED_JSON', '$'],
    ['a JSON array', '[]', 'POLICY_DOCUMENT_INVALID', '$'],
    ['null', null, 'POLICY_DOCUMENT_INVALID', '$'],
    ['undefined', undefined, 'POLICY_DOCUMENT_INVALID', '$'],
    ['an unknown top-level key', doc(ALLOW_CONNECT, { Extra: 1 }), 'POLICY_DOCUMENT_INVALID', '$.Extra'],
    ['a non-string Id', doc(ALLOW_CONNECT, { Id: 5 }), 'POLICY_DOCUMENT_INVALID', '$.Id'],
    ['a missing Version', { Statement: ALLOW_CONNECT }, 'POLICY_VERSION_UNSUPPORTED', '$.Version'],
    ['the 2008 Version', { Version: '2008-10-17', Statement: ALLOW_CONNECT }, 'POLICY_VERSION_UNSUPPORTED', '$.Version'],
    ['a missing Statement', { Version: '2012-10-17' }, 'POLICY_STATEMENT_INVALID', '$.Statement'],
    ['an empty Statement', doc([]), 'POLICY_STATEMENT_INVALID', '$.Statement'],
    ['a statement that is a string', doc(['x']), 'POLICY_STATEMENT_INVALID', '$.Statement[0]'],
    ['an unknown statement key', doc([ALLOW_CONNECT, { ...ALLOW_CONNECT, Principal: '*' }]), 'POLICY_STATEMENT_INVALID', '$.Statement[1].Principal'],
    ['a non-string Sid', doc({ ...ALLOW_CONNECT, Sid: 1 }), 'POLICY_STATEMENT_INVALID', '$.Statement.Sid'],
    ['a missing Effect', doc({ Action: 'iot:Connect', Resource: '*' }), 'POLICY_EFFECT_INVALID', '$.Statement.Effect'],
    ['a lower-case Effect', doc([{ ...ALLOW_CONNECT, Effect: 'allow' }]), 'POLICY_EFFECT_INVALID', '$.Statement[0].Effect'],
    ['a missing Action', doc({ Effect: 'Allow', Resource: '*' }), 'POLICY_ACTION_INVALID', '$.Statement'],
    ['both Action and NotAction', doc({ ...ALLOW_CONNECT, NotAction: 'iot:Publish' }), 'POLICY_ACTION_INVALID', '$.Statement.NotAction'],
    ['an empty Action array', doc({ ...ALLOW_CONNECT, Action: [] }), 'POLICY_ACTION_INVALID', '$.Statement.Action'],
    ['a non-iot action', doc([ALLOW_CONNECT, { ...ALLOW_CONNECT, Action: ['iot:Connect', 's3:GetObject'] }]), 'POLICY_ACTION_INVALID', '$.Statement[1].Action[1]'],
    ['a non-string action', doc({ ...ALLOW_CONNECT, Action: ['iot:Connect', 7] }), 'POLICY_ACTION_INVALID', '$.Statement.Action[1]'],
    ['an action with a bad character', doc({ ...ALLOW_CONNECT, Action: 'iot:Pub lish' }), 'POLICY_ACTION_INVALID', '$.Statement.Action'],
    ['a missing Resource', doc({ Effect: 'Allow', Action: 'iot:Connect' }), 'POLICY_RESOURCE_INVALID', '$.Statement'],
    ['both Resource and NotResource', doc({ ...ALLOW_CONNECT, NotResource: '*' }), 'POLICY_RESOURCE_INVALID', '$.Statement.NotResource'],
    ['a resource that is not an ARN', doc({ ...ALLOW_CONNECT, Resource: ['*', 'topic/a'] }), 'POLICY_RESOURCE_INVALID', '$.Statement.Resource[1]'],
    ['an ARN of another service', doc({ ...ALLOW_CONNECT, Resource: 'arn:aws:s3:::bucket/x' }), 'POLICY_RESOURCE_INVALID', '$.Statement.Resource'],
    ['an ARN with too few parts', doc({ ...ALLOW_CONNECT, Resource: 'arn:aws:iot:us-east-1' }), 'POLICY_RESOURCE_INVALID', '$.Statement.Resource'],
    ['an ARN without a kind', doc({ ...ALLOW_CONNECT, Resource: `${ARN}:client` }), 'POLICY_RESOURCE_INVALID', '$.Statement.Resource'],
    ['an empty resource', doc({ ...ALLOW_CONNECT, Resource: '' }), 'POLICY_RESOURCE_INVALID', '$.Statement.Resource'],
    ['a variable in the region', doc({ ...ALLOW_CONNECT, Resource: 'arn:aws:iot:${iot:ClientId}:1:client/x' }), 'POLICY_RESOURCE_INVALID', '$.Statement.Resource'],
    ['an unknown variable', doc([ALLOW_CONNECT, { ...ALLOW_CONNECT, Resource: [`${ARN}:client/a`, `${ARN}:client/\${aws:username}`] }]), 'POLICY_VARIABLE_UNKNOWN', '$.Statement[1].Resource[1]'],
    ['a misspelt certificate field', doc({ ...ALLOW_CONNECT, Resource: `${ARN}:client/\${iot:Certificate.Subject.CN}` }), 'POLICY_VARIABLE_UNKNOWN', '$.Statement.Resource'],
    ['a wrongly cased variable', doc({ ...ALLOW_CONNECT, Resource: `${ARN}:client/\${iot:clientid}` }), 'POLICY_VARIABLE_UNKNOWN', '$.Statement.Resource'],
    ['index 0 (indexes are 1-based)', doc({ ...ALLOW_CONNECT, Resource: `${ARN}:client/\${iot:Certificate.Subject.CommonName.0}` }), 'POLICY_VARIABLE_UNKNOWN', '$.Statement.Resource'],
    ['an unclosed variable', doc({ ...ALLOW_CONNECT, Resource: `${ARN}:client/\${iot:ClientId` }), 'POLICY_VARIABLE_MALFORMED', '$.Statement.Resource'],
  ];
  it.each(cases)('rejects %s', (_label, input, code, path) => {
    expectPolicyError(() => parsePolicyDocument(input), code, path);
  });

  it('compilePolicy validates a hand-built document the same way', () => {
    const handBuilt = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['iot:Connect'], Resource: [`${ARN}:client/\${iot:Nope}`] }] } as PolicyDocument;
    expectPolicyError(() => compilePolicy(handBuilt), 'POLICY_VARIABLE_UNKNOWN', '$.Statement[0].Resource[0]');
  });
});

describe('parsePolicyDocument: Condition', () => {
  const withCondition = (condition: unknown): Record<string, unknown> => doc([{ ...ALLOW_CONNECT, Condition: condition }]);

  it('accepts the supported operators and keys', () => {
    parsePolicyDocument(
      withCondition({
        StringEquals: { 'iot:Connection.Thing.Attributes[site]': ['berlin', 'paris'], 'iot:Connection.Thing.ThingTypeName': 'sensor' },
        StringNotEqualsIgnoreCase: { 'iot:ClientId': '${iot:Connection.Thing.ThingName}' },
        StringLikeIfExists: { 'iot:Certificate.Subject.CommonName': 'dev-*' },
        'ForAnyValue:StringLike': { 'iot:Certificate.Subject.OrganizationalUnit.List': ['fleet-*'] },
        'ForAllValues:StringEquals': { 'iot:Certificate.Issuer.Organization.List': 'Example Corp' },
        Bool: { 'iot:Connection.Thing.IsAttached': ['true'] },
        Null: { 'iot:Connection.Thing.ThingTypeName': false },
      }),
    );
  });

  const cases: [string, unknown, string, string][] = [
    ['a non-object Condition', 'x', 'POLICY_CONDITION_INVALID', '$.Statement[0].Condition'],
    ['an empty Condition', {}, 'POLICY_CONDITION_INVALID', '$.Statement[0].Condition'],
    ['a numeric operator', { NumericEquals: { 'iot:ClientId': '1' } }, 'POLICY_CONDITION_OPERATOR_UNSUPPORTED', '$.Statement[0].Condition.NumericEquals'],
    ['IpAddress', { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } }, 'POLICY_CONDITION_OPERATOR_UNSUPPORTED', '$.Statement[0].Condition.IpAddress'],
    ['NullIfExists', { NullIfExists: { 'iot:ClientId': 'true' } }, 'POLICY_CONDITION_OPERATOR_UNSUPPORTED', '$.Statement[0].Condition.NullIfExists'],
    ['an aws: key', { StringEquals: { 'aws:SourceIp': 'x' } }, 'POLICY_CONDITION_KEY_UNSUPPORTED', '$.Statement[0].Condition.StringEquals["aws:SourceIp"]'],
    ['a .List key without a set operator', { StringEquals: { 'iot:Certificate.Subject.Organization.List': 'x' } }, 'POLICY_CONDITION_INVALID', '$.Statement[0].Condition.StringEquals["iot:Certificate.Subject.Organization.List"]'],
    ['a number value', { StringEquals: { 'iot:ClientId': 5 } }, 'POLICY_CONDITION_INVALID', '$.Statement[0].Condition.StringEquals["iot:ClientId"]'],
    ['an empty value list', { StringEquals: { 'iot:ClientId': [] } }, 'POLICY_CONDITION_INVALID', '$.Statement[0].Condition.StringEquals["iot:ClientId"]'],
    ['a Bool value other than true/false', { Bool: { 'iot:Connection.Thing.IsAttached': ['true', 'yes'] } }, 'POLICY_CONDITION_INVALID', '$.Statement[0].Condition.Bool["iot:Connection.Thing.IsAttached"][1]'],
    ['an operator mapping to a string', { StringEquals: 'x' }, 'POLICY_CONDITION_INVALID', '$.Statement[0].Condition.StringEquals'],
    ['an unknown variable in a value', { StringEquals: { 'iot:ClientId': ['a', '${iot:Bogus}'] } }, 'POLICY_VARIABLE_UNKNOWN', '$.Statement[0].Condition.StringEquals["iot:ClientId"][1]'],
    ['a .List variable in a value', { StringEquals: { 'iot:ClientId': '${iot:Certificate.Subject.Organization.List}' } }, 'POLICY_CONDITION_INVALID', '$.Statement[0].Condition.StringEquals["iot:ClientId"]'],
  ];
  it.each(cases)('rejects %s', (_label, condition, code, path) => {
    expectPolicyError(() => parsePolicyDocument(withCondition(condition)), code, path);
  });
});

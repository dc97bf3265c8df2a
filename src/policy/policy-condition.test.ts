import { describe, expect, it } from 'vitest';
import type { PolicyContext } from './index.ts';
import { ARN, contextOf, decide, policyOf } from './test-fixtures.ts';

/** Allow iot:Connect on any client under `condition`; returns whether `context` may connect. */
function allowedUnder(condition: unknown, context: PolicyContext): boolean {
  const policy = policyOf({ Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/*`, Condition: condition });
  return decide(policy, 'iot:Connect', 'client', context.clientId, context) === 'allow';
}

const thing = (attributes: Record<string, string>, thingTypeName?: string): PolicyContext =>
  contextOf({ clientId: 't1', isAttached: true, thing: { thingName: 't1', attributes, ...(thingTypeName === undefined ? {} : { thingTypeName }) } });

const certificate = (subject: Record<string, string[]>): PolicyContext => contextOf({ certificate: { subject, issuer: {} } });

describe('Condition: Bool', () => {
  it('tests iot:Connection.Thing.IsAttached (AWS example)', () => {
    const condition = { Bool: { 'iot:Connection.Thing.IsAttached': ['true'] } };
    expect(allowedUnder(condition, thing({}))).toBe(true);
    expect(allowedUnder(condition, contextOf())).toBe(false);
    expect(allowedUnder({ Bool: { 'iot:Connection.Thing.IsAttached': false } }, contextOf())).toBe(true);
  });
});

describe('Condition: string operators', () => {
  it('StringEquals: values OR together, keys AND together, * is literal', () => {
    const condition = { StringEquals: { 'iot:Connection.Thing.Attributes[site]': ['berlin', 'paris'], 'iot:Connection.Thing.ThingTypeName': 'meter' } };
    expect(allowedUnder(condition, thing({ site: 'paris' }, 'meter'))).toBe(true);
    expect(allowedUnder(condition, thing({ site: 'rome' }, 'meter'))).toBe(false);
    expect(allowedUnder(condition, thing({ site: 'paris' }, 'valve'))).toBe(false);
    expect(allowedUnder({ StringEquals: { 'iot:ClientId': 'dev-*' } }, contextOf({ clientId: 'dev-1' }))).toBe(false);
    expect(allowedUnder({ StringEquals: { 'iot:ClientId': 'dev-*' } }, contextOf({ clientId: 'dev-*' }))).toBe(true);
  });

  it('StringNotEquals holds when the value matches none of the listed values', () => {
    const condition = { StringNotEquals: { 'iot:Connection.Thing.Attributes[state]': ['blocked', 'retired'] } };
    expect(allowedUnder(condition, thing({ state: 'active' }))).toBe(true);
    expect(allowedUnder(condition, thing({ state: 'retired' }))).toBe(false);
  });

  it('StringLike / StringNotLike use * and ? wildcards', () => {
    expect(allowedUnder({ StringLike: { 'iot:ClientId': 'dev-??-*' } }, contextOf({ clientId: 'dev-eu-123' }))).toBe(true);
    expect(allowedUnder({ StringLike: { 'iot:ClientId': 'dev-??-*' } }, contextOf({ clientId: 'dev-e-123' }))).toBe(false);
    expect(allowedUnder({ StringNotLike: { 'iot:ClientId': 'test-*' } }, contextOf({ clientId: 'test-1' }))).toBe(false);
    expect(allowedUnder({ StringNotLike: { 'iot:ClientId': 'test-*' } }, contextOf({ clientId: 'prod-1' }))).toBe(true);
  });

  it('…IgnoreCase compares without case', () => {
    expect(allowedUnder({ StringEqualsIgnoreCase: { 'iot:ClientId': 'DEVICE-1' } }, contextOf({ clientId: 'device-1' }))).toBe(true);
    expect(allowedUnder({ StringNotEqualsIgnoreCase: { 'iot:ClientId': 'DEVICE-1' } }, contextOf({ clientId: 'device-1' }))).toBe(false);
  });

  it('values may use variables, substituted literally', () => {
    const condition = { StringEquals: { 'iot:ClientId': '${iot:Connection.Thing.ThingName}' } };
    expect(allowedUnder(condition, thing({}))).toBe(true);
    expect(allowedUnder(condition, contextOf({ clientId: 'x', isAttached: true, thing: { thingName: 't1', attributes: {} } }))).toBe(false);
    const like = { StringLike: { 'iot:ClientId': '${iot:Connection.Thing.ThingName}-*' } };
    expect(allowedUnder(like, contextOf({ clientId: 't1-sub', isAttached: true, thing: { thingName: 't1', attributes: {} } }))).toBe(true);
    expect(allowedUnder(like, contextOf({ clientId: 'tX-sub', isAttached: true, thing: { thingName: '*', attributes: {} } }))).toBe(false);
  });
});

describe('Condition: keys without a value (IAM semantics)', () => {
  const none = thing({});

  it('positive operators are false, negated operators true', () => {
    expect(allowedUnder({ StringEquals: { 'iot:Connection.Thing.Attributes[site]': 'x' } }, none)).toBe(false);
    expect(allowedUnder({ StringLike: { 'iot:Connection.Thing.ThingTypeName': '*' } }, none)).toBe(false);
    expect(allowedUnder({ StringNotEquals: { 'iot:Connection.Thing.Attributes[site]': 'x' } }, none)).toBe(true);
  });

  it('so a Deny with a negated operator still applies to a device without the value', () => {
    const policy = policyOf([
      { Effect: 'Allow', Action: 'iot:Publish', Resource: '*' },
      { Effect: 'Deny', Action: 'iot:Publish', Resource: '*', Condition: { StringNotEquals: { 'iot:Connection.Thing.ThingTypeName': 'sensor' } } },
    ]);
    expect(decide(policy, 'iot:Publish', 'topic', 'a', thing({}, 'sensor'))).toBe('allow');
    expect(decide(policy, 'iot:Publish', 'topic', 'a', thing({}, 'valve'))).toBe('explicit-deny');
    expect(decide(policy, 'iot:Publish', 'topic', 'a', thing({}))).toBe('explicit-deny');
  });

  it('…IfExists is true when the key has no value', () => {
    expect(allowedUnder({ StringEqualsIfExists: { 'iot:Connection.Thing.ThingTypeName': 'meter' } }, none)).toBe(true);
    expect(allowedUnder({ StringEqualsIfExists: { 'iot:Connection.Thing.ThingTypeName': 'meter' } }, thing({}, 'valve'))).toBe(false);
  });

  it('Null tests exactly the absence', () => {
    expect(allowedUnder({ Null: { 'iot:Connection.Thing.ThingTypeName': 'true' } }, none)).toBe(true);
    expect(allowedUnder({ Null: { 'iot:Connection.Thing.ThingTypeName': 'false' } }, none)).toBe(false);
    expect(allowedUnder({ Null: { 'iot:Connection.Thing.ThingTypeName': false } }, thing({}, 'meter'))).toBe(true);
  });
});

describe('Condition: multi-valued .List keys', () => {
  const ous = (...values: string[]): PolicyContext => certificate({ OrganizationalUnit: values });

  it('ForAnyValue: at least one value of the certificate satisfies the operator', () => {
    const condition = { 'ForAnyValue:StringLike': { 'iot:Certificate.Subject.OrganizationalUnit.List': ['fleet-*'] } };
    expect(allowedUnder(condition, ous('lab', 'fleet-7'))).toBe(true);
    expect(allowedUnder(condition, ous('lab', 'office'))).toBe(false);
    expect(allowedUnder(condition, certificate({}))).toBe(false);
  });

  it('ForAllValues: every value of the certificate satisfies the operator (IAM: also true for none)', () => {
    const condition = { 'ForAllValues:StringEquals': { 'iot:Certificate.Subject.OrganizationalUnit.List': ['a', 'b'] } };
    expect(allowedUnder(condition, ous('a', 'b'))).toBe(true);
    expect(allowedUnder(condition, ous('a'))).toBe(true);
    expect(allowedUnder(condition, ous('a', 'c'))).toBe(false);
    expect(allowedUnder(condition, certificate({}))).toBe(true);
    // The IAM-recommended guard against the empty set:
    expect(allowedUnder({ ...condition, Null: { 'iot:Certificate.Subject.OrganizationalUnit.List': 'false' } }, certificate({}))).toBe(false);
    expect(allowedUnder({ ...condition, Null: { 'iot:Certificate.Subject.OrganizationalUnit.List': 'false' } }, ous('b'))).toBe(true);
  });

  it('negated operators with set qualifiers', () => {
    const anyNot = { 'ForAnyValue:StringNotEquals': { 'iot:Certificate.Subject.OrganizationalUnit.List': 'a' } };
    expect(allowedUnder(anyNot, ous('a', 'b'))).toBe(true);
    expect(allowedUnder(anyNot, ous('a'))).toBe(false);
    const allNot = { 'ForAllValues:StringNotEquals': { 'iot:Certificate.Subject.OrganizationalUnit.List': 'a' } };
    expect(allowedUnder(allNot, ous('b', 'c'))).toBe(true);
    expect(allowedUnder(allNot, ous('b', 'a'))).toBe(false);
  });

  it('a single-valued key under a set qualifier is a one-element set', () => {
    expect(allowedUnder({ 'ForAnyValue:StringEquals': { 'iot:ClientId': ['a', 'device-1'] } }, contextOf())).toBe(true);
    expect(allowedUnder({ 'ForAllValues:StringEquals': { 'iot:ClientId': ['a'] } }, contextOf())).toBe(false);
  });
});

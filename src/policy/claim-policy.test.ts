import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../errors/index.ts';
import { compilePolicy, leastPrivilegeClaimPolicy, parsePolicyDocument } from './index.ts';
import { contextOf, decide } from './test-fixtures.ts';

describe('leastPrivilegeClaimPolicy', () => {
  const policy = compilePolicy(leastPrivilegeClaimPolicy('FleetTemplate_1'), 'claim');
  const claim = contextOf({ clientId: 'claim-client-17' });

  it('is a valid document that survives a JSON round trip', () => {
    const document = leastPrivilegeClaimPolicy('FleetTemplate_1');
    expect(parsePolicyDocument(JSON.stringify(document))).toEqual(document);
  });

  it('allows connecting with any client id', () => {
    expect(decide(policy, 'iot:Connect', 'client', 'claim-client-17', claim)).toBe('allow');
  });

  it('allows the fleet-provisioning topics of its template, in both formats, with their answers', () => {
    for (const topic of [
      '$aws/certificates/create/json',
      '$aws/certificates/create/cbor',
      '$aws/certificates/create-from-csr/json',
      '$aws/provisioning-templates/FleetTemplate_1/provision/json',
    ]) {
      expect(decide(policy, 'iot:Publish', 'topic', topic, claim), topic).toBe('allow');
      expect(decide(policy, 'iot:Receive', 'topic', `${topic}/accepted`, claim), topic).toBe('allow');
      expect(decide(policy, 'iot:Receive', 'topic', `${topic}/rejected`, claim), topic).toBe('allow');
      expect(decide(policy, 'iot:Subscribe', 'topicfilter', `${topic}/accepted`, claim), topic).toBe('allow');
      expect(decide(policy, 'iot:Subscribe', 'topicfilter', `${topic}/+`, claim), topic).toBe('allow');
    }
  });

  it('allows nothing else: other templates, shadows, other topics, retained publishes', () => {
    expect(decide(policy, 'iot:Publish', 'topic', '$aws/provisioning-templates/Other/provision/json', claim)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Publish', 'topic', '$aws/provisioning-templates/FleetTemplate_10/provision/json', claim)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', '$aws/provisioning-templates/+/provision/json/accepted', claim)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', '#', claim)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', '$aws/#', claim)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Publish', 'topic', '$aws/things/x/shadow/update', claim)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Publish', 'topic', 'telemetry', claim)).toBe('implicit-deny');
    expect(decide(policy, 'iot:RetainPublish', 'topic', '$aws/certificates/create/json', claim)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Receive', 'topic', '$aws/certificates/create', claim)).toBe('implicit-deny');
    // the answers are the service's: a claim publishing there would forge them for other devices
    expect(decide(policy, 'iot:Publish', 'topic', '$aws/certificates/create/json/accepted', claim)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Publish', 'topic', '$aws/certificates/create-from-csr/cbor/rejected', claim)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Publish', 'topic', '$aws/provisioning-templates/FleetTemplate_1/provision/json/accepted', claim)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Publish', 'topic', '$aws/certificates/create/xml', claim)).toBe('implicit-deny');
  });

  it('can be pinned to one region and account', () => {
    const pinned = compilePolicy(leastPrivilegeClaimPolicy('T', { region: 'eu-west-1', accountId: '111122223333' }));
    expect(decide(pinned, 'iot:Connect', 'client', 'c', contextOf({ region: 'eu-west-1', accountId: '111122223333' }))).toBe('allow');
    expect(decide(pinned, 'iot:Connect', 'client', 'c', contextOf())).toBe('implicit-deny');
  });

  it.each(['', 'a'.repeat(37), 'has space', 'a/b', 'x*'])('rejects template name %j', (name) => {
    expect(() => leastPrivilegeClaimPolicy(name)).toThrow(GatehouseError);
    try {
      leastPrivilegeClaimPolicy(name);
    } catch (error) {
      expect((error as GatehouseError).code).toBe('POLICY_TEMPLATE_NAME_INVALID');
    }
  });
});

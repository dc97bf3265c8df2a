import type tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { authorize, compilePolicy, parsePolicyDocument, resourceArn } from '../policy/index.ts';
import { DEFAULT_POLICY_REGION, accountIdOfTenant, policyCertificateOf, readsCertificateFields } from './policy-enforcer.ts';

describe('accountIdOfTenant', () => {
  it('is a stable 12-digit id, distinct per tenant', () => {
    const a = accountIdOfTenant('default');
    expect(a).toMatch(/^\d{12}$/);
    expect(accountIdOfTenant('default')).toBe(a);
    expect(accountIdOfTenant('acme')).not.toBe(a);
  });

  it('lets both bare-star, wildcard-ARN and exact-ARN policies match the ARNs the gateway builds', () => {
    const scope = { region: DEFAULT_POLICY_REGION, accountId: accountIdOfTenant('acme') };
    const context = { clientId: 'c1', isAttached: false, ...scope };
    const request = { action: 'iot:Publish' as const, resource: resourceArn('topic', 'a/b', scope) };
    for (const resource of ['*', 'arn:aws:iot:*:*:topic/a/*', `arn:aws:iot:${scope.region}:${scope.accountId}:topic/a/b`]) {
      const policy = compilePolicy(parsePolicyDocument({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: resource }] }));
      expect(authorize([policy], request, context)).toBe('allow');
    }
    const otherAccount = compilePolicy(parsePolicyDocument({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `arn:aws:iot:*:${accountIdOfTenant('default')}:topic/a/b` }] }));
    expect(authorize([otherAccount], request, context)).toBe('implicit-deny');
  });
});

describe('policyCertificateOf', () => {
  it('maps Node peer certificate names, multi-valued fields and alternative names', () => {
    const peer = {
      subject: { CN: 'dev-1', OU: ['a', 'b'] },
      issuer: { CN: 'Issuing CA', O: 'Gatehouse' },
      subjectaltname: 'DNS:dev-1.example, IP Address:10.0.0.1, email:d@example.com',
      serialNumber: '0A1B',
    } as unknown as tls.PeerCertificate;
    expect(policyCertificateOf(peer)).toEqual({
      subject: { CN: ['dev-1'], OU: ['a', 'b'] },
      issuer: { CN: ['Issuing CA'], O: ['Gatehouse'] },
      subjectAlternativeName: { DNSName: ['dev-1.example'], IPAddress: ['10.0.0.1'], RFC822Name: ['d@example.com'] },
      serialNumber: '0A1B',
    });
  });
});

describe('readsCertificateFields', () => {
  const compiled = (statement: Record<string, unknown>) => compilePolicy(parsePolicyDocument({ Version: '2012-10-17', Statement: [statement] }));

  it('is false for a policy without certificate variables', () => {
    expect(readsCertificateFields(compiled({ Effect: 'Allow', Action: 'iot:Publish', Resource: 'arn:aws:iot:*:*:topic/things/${iot:Connection.Thing.ThingName}/*' }))).toBe(false);
  });

  it('is true for a certificate variable in a resource, in a Deny, or in a condition', () => {
    expect(readsCertificateFields(compiled({ Effect: 'Allow', Action: 'iot:Publish', Resource: 'arn:aws:iot:*:*:topic/${iot:Certificate.Subject.CommonName}/*' }))).toBe(true);
    expect(readsCertificateFields(compiled({ Effect: 'Deny', Action: 'iot:Subscribe', Resource: 'arn:aws:iot:*:*:topicfilter/${iot:Certificate.SerialNumber}' }))).toBe(true);
    expect(readsCertificateFields(compiled({ Effect: 'Allow', Action: 'iot:Connect', Resource: '*', Condition: { StringEquals: { 'iot:ClientId': '${iot:Certificate.Subject.CommonName}' } } }))).toBe(true);
  });

  it('sees a variable that the stored JSON text spelled with escapes', () => {
    const text = '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:*:*:topic/${iot:Certificate\\u002eSubject\\u002eCommonName}"}]}';
    expect(text.includes('iot:Certificate.')).toBe(false);
    expect(readsCertificateFields(compilePolicy(parsePolicyDocument(text)))).toBe(true);
  });
});

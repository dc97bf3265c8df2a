import { describe, expect, it } from 'vitest';
import { authorize, explainAuthorization, resourceArn } from './index.ts';
import type { AuthorizationDecision, PolicyAction, PolicyContext } from './index.ts';
import { ACCOUNT, ARN, contextOf, decide, policyOf, REGION } from './test-fixtures.ts';

describe('authorize: evaluation order', () => {
  it('denies implicitly when nothing matches, and with no policy at all', () => {
    expect(decide([], 'iot:Connect', 'client', 'device-1')).toBe('implicit-deny');
    const policy = policyOf({ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/a` });
    expect(decide(policy, 'iot:Publish', 'topic', 'b')).toBe('implicit-deny');
    expect(decide(policy, 'iot:Subscribe', 'topic', 'a')).toBe('implicit-deny');
    expect(decide(policy, 'iot:Publish', 'topic', 'a')).toBe('allow');
  });

  it('lets an explicit Deny win over any Allow, in the same policy or another one, whatever the order', () => {
    const allow = policyOf({ Effect: 'Allow', Action: 'iot:*', Resource: '*' }, 'allow-all');
    const deny = policyOf({ Effect: 'Deny', Action: 'iot:Publish', Resource: `${ARN}:topic/secret/*` }, 'deny-secret');
    expect(decide([allow, deny], 'iot:Publish', 'topic', 'secret/x')).toBe('explicit-deny');
    expect(decide([deny, allow], 'iot:Publish', 'topic', 'secret/x')).toBe('explicit-deny');
    expect(decide([allow, deny], 'iot:Publish', 'topic', 'public/x')).toBe('allow');
    const both = policyOf([
      { Effect: 'Allow', Action: 'iot:Publish', Resource: '*' },
      { Effect: 'Deny', Action: 'iot:Publish', Resource: `${ARN}:topic/secret/*` },
    ]);
    expect(decide(both, 'iot:Publish', 'topic', 'secret/x')).toBe('explicit-deny');
  });

  it('matches actions case-insensitively and with wildcards', () => {
    const policy = policyOf({ Effect: 'Allow', Action: ['IOT:publish', 'iot:Sub*', 'iot:?eceive'], Resource: '*' });
    expect(decide(policy, 'iot:Publish', 'topic', 'a')).toBe('allow');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', 'a')).toBe('allow');
    expect(decide(policy, 'iot:Receive', 'topic', 'a')).toBe('allow');
    expect(decide(policy, 'iot:RetainPublish', 'topic', 'a')).toBe('implicit-deny');
    expect(decide(policy, 'iot:Connect', 'client', 'a')).toBe('implicit-deny');
  });

  it('also decides actions outside POLICY_ACTIONS (matched by pattern at run time)', () => {
    const policy = policyOf({ Effect: 'Allow', Action: 'iot:Custom*', Resource: '*' });
    const context = contextOf();
    const request = { action: 'iot:CustomThing' as PolicyAction, resource: resourceArn('topic', 'a', context) };
    expect(authorize([policy], request, context)).toBe('allow');
    expect(authorize([policy], { ...request, action: 'iot:Other' as PolicyAction }, context)).toBe('implicit-deny');
  });

  it('supports NotResource: the statement applies to every resource matching none of the patterns', () => {
    const allow = policyOf({ Effect: 'Allow', Action: 'iot:Publish', NotResource: [`${ARN}:topic/admin/*`, `${ARN}:topic/$aws/*`] });
    expect(decide(allow, 'iot:Publish', 'topic', 'a/b')).toBe('allow');
    expect(decide(allow, 'iot:Publish', 'topic', 'admin/reboot')).toBe('implicit-deny');
    expect(decide(allow, 'iot:Publish', 'topic', '$aws/things/x/shadow/update')).toBe('implicit-deny');

    const deny = policyOf([
      { Effect: 'Allow', Action: 'iot:Publish', Resource: '*' },
      { Effect: 'Deny', Action: 'iot:Publish', NotResource: `${ARN}:topic/device-1/*` },
    ]);
    expect(decide(deny, 'iot:Publish', 'topic', 'device-1/telemetry')).toBe('allow');
    expect(decide(deny, 'iot:Publish', 'topic', 'device-2/telemetry')).toBe('explicit-deny');
  });

  it('supports NotAction', () => {
    const policy = policyOf([
      { Effect: 'Allow', Action: 'iot:*', Resource: '*' },
      { Effect: 'Deny', NotAction: ['iot:Connect', 'iot:Receive'], Resource: '*' },
    ]);
    expect(decide(policy, 'iot:Connect', 'client', 'device-1')).toBe('allow');
    expect(decide(policy, 'iot:Receive', 'topic', 'a')).toBe('allow');
    expect(decide(policy, 'iot:Publish', 'topic', 'a')).toBe('explicit-deny');
  });

  it('matches only in the tenant the ARN names, unless region/account are wildcards', () => {
    const pinned = policyOf({ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/a` });
    const anywhere = policyOf({ Effect: 'Allow', Action: 'iot:Publish', Resource: 'arn:aws:iot:*:*:topic/a' });
    const elsewhere = contextOf({ region: 'eu-west-1', accountId: '999999999999' });
    expect(decide(pinned, 'iot:Publish', 'topic', 'a', elsewhere)).toBe('implicit-deny');
    expect(decide(anywhere, 'iot:Publish', 'topic', 'a', elsewhere)).toBe('allow');
  });

  it('never throws on odd requests', () => {
    const policy = policyOf({ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/\${iot:ClientId}/*` });
    const context = contextOf();
    expect(authorize([policy], { action: 'iot:Publish', resource: '' }, context)).toBe('implicit-deny');
    expect(authorize([policy], { action: 'iot:Publish', resource: 'not-an-arn' }, context)).toBe('implicit-deny');
  });
});

describe('authorize: AWS documentation examples', () => {
  it('client-specific topics with ${iot:ClientId}', () => {
    const policy = policyOf([
      { Effect: 'Allow', Action: ['iot:Connect'], Resource: [`${ARN}:client/\${iot:ClientId}`] },
      { Effect: 'Allow', Action: ['iot:Publish', 'iot:Receive'], Resource: [`${ARN}:topic/\${iot:ClientId}/*`] },
      { Effect: 'Allow', Action: ['iot:Subscribe'], Resource: [`${ARN}:topicfilter/\${iot:ClientId}/*`] },
    ]);
    expect(decide(policy, 'iot:Connect', 'client', 'device-1')).toBe('allow');
    expect(decide(policy, 'iot:Connect', 'client', 'device-2')).toBe('implicit-deny');
    expect(decide(policy, 'iot:Publish', 'topic', 'device-1/telemetry')).toBe('allow');
    expect(decide(policy, 'iot:Publish', 'topic', 'device-1/a/b/c')).toBe('allow');
    expect(decide(policy, 'iot:Publish', 'topic', 'device-2/telemetry')).toBe('implicit-deny');
    expect(decide(policy, 'iot:Publish', 'topic', 'device-10/telemetry')).toBe('implicit-deny');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', 'device-1/#')).toBe('allow');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', 'device-1/+/status')).toBe('allow');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', 'device-2/#')).toBe('implicit-deny');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', '#')).toBe('implicit-deny');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', '+/telemetry')).toBe('implicit-deny');
    expect(decide(policy, 'iot:Receive', 'topic', 'device-1/cmd')).toBe('allow');
    expect(decide(policy, 'iot:Receive', 'topic', 'device-2/cmd')).toBe('implicit-deny');
  });

  it('thing-name policies: connect only as the attached thing, shadow topics of that thing only', () => {
    const policy = policyOf([
      {
        Effect: 'Allow',
        Action: ['iot:Connect'],
        Resource: [`${ARN}:client/\${iot:Connection.Thing.ThingName}`],
        Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } },
      },
      { Effect: 'Allow', Action: ['iot:Publish'], Resource: [`${ARN}:topic/$aws/things/\${iot:Connection.Thing.ThingName}/shadow/update`] },
      { Effect: 'Allow', Action: ['iot:Subscribe'], Resource: [`${ARN}:topicfilter/$aws/things/\${iot:Connection.Thing.ThingName}/shadow/update/*`] },
      { Effect: 'Allow', Action: ['iot:Receive'], Resource: [`${ARN}:topic/$aws/things/\${iot:Connection.Thing.ThingName}/shadow/update/*`] },
    ]);
    const attached = contextOf({ clientId: 'lamp-7', isAttached: true, thing: { thingName: 'lamp-7', attributes: {} } });
    const unattached = contextOf({ clientId: 'lamp-7', isAttached: false });
    expect(decide(policy, 'iot:Connect', 'client', 'lamp-7', attached)).toBe('allow');
    expect(decide(policy, 'iot:Connect', 'client', 'lamp-8', attached)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Connect', 'client', 'lamp-7', unattached)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Publish', 'topic', '$aws/things/lamp-7/shadow/update', attached)).toBe('allow');
    expect(decide(policy, 'iot:Publish', 'topic', '$aws/things/lamp-8/shadow/update', attached)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Publish', 'topic', '$aws/things/lamp-7/shadow/update', unattached)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', '$aws/things/lamp-7/shadow/update/accepted', attached)).toBe('allow');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', '$aws/things/lamp-7/shadow/update/#', attached)).toBe('allow');
    expect(decide(policy, 'iot:Receive', 'topic', '$aws/things/lamp-7/shadow/update/delta', attached)).toBe('allow');
  });

  it('thing attributes and thing type, in the resource and in a condition', () => {
    const thing = { thingName: 'meter-1', thingTypeName: 'Thing_Type_Name', attributes: { attributeName: 'attributeValue', site: 'berlin' } };
    const context = contextOf({ clientId: 'meter-1', isAttached: true, thing });
    const byCondition = policyOf({
      Effect: 'Allow',
      Action: ['iot:Publish'],
      Resource: `${ARN}:topic/device/stats`,
      Condition: {
        StringEquals: { 'iot:Connection.Thing.Attributes[attributeName]': 'attributeValue', 'iot:Connection.Thing.ThingTypeName': 'Thing_Type_Name' },
        Bool: { 'iot:Connection.Thing.IsAttached': 'true' },
      },
    });
    expect(decide(byCondition, 'iot:Publish', 'topic', 'device/stats', context)).toBe('allow');
    expect(decide(byCondition, 'iot:Publish', 'topic', 'device/stats', contextOf({ ...context, thing: { ...thing, thingTypeName: 'Other' } }))).toBe('implicit-deny');

    const byResource = policyOf({ Effect: 'Allow', Action: ['iot:Publish'], Resource: `${ARN}:topic/\${iot:Connection.Thing.Attributes[site]}/*` });
    expect(decide(byResource, 'iot:Publish', 'topic', 'berlin/meter-1', context)).toBe('allow');
    expect(decide(byResource, 'iot:Publish', 'topic', 'paris/meter-1', context)).toBe('implicit-deny');
    // "If the device certificate is not associated with the thing, this variable won't be resolved."
    expect(decide(byResource, 'iot:Publish', 'topic', 'berlin/meter-1', contextOf({ clientId: 'meter-1' }))).toBe('implicit-deny');
  });

  it('certificate-subject policies, with .N and .List', () => {
    const context = contextOf({
      clientId: 'LightBulb Device Cert',
      certificate: {
        subject: { Country: ['US'], Organization: ['IoT Devices'], OrganizationalUnit: ['LightBulb', 'SmartHome'], State: ['NY'], CommonName: ['LightBulb Device Cert'] },
        issuer: { Country: ['US'], Organization: ['IoT Devices'], CommonName: ['IoT Devices Primary CA'] },
      },
    });
    const policy = policyOf([
      { Effect: 'Allow', Action: ['iot:Connect'], Resource: [`${ARN}:client/\${iot:Certificate.Subject.CommonName}`] },
      { Effect: 'Allow', Action: ['iot:Publish'], Resource: [`${ARN}:topic/\${iot:Certificate.Subject.Country}/\${iot:Certificate.Subject.OrganizationalUnit.List}/*`] },
      { Effect: 'Allow', Action: ['iot:Subscribe'], Resource: [`${ARN}:topicfilter/ou2/\${iot:Certificate.Subject.OrganizationalUnit.2}/*`] },
      {
        Effect: 'Allow',
        Action: ['iot:Receive'],
        Resource: [`${ARN}:topic/*`],
        Condition: { 'ForAllValues:StringEquals': { 'iot:Certificate.Subject.OrganizationalUnit.List': ['LightBulb', 'SmartHome', 'Garden'] } },
      },
    ]);
    expect(decide(policy, 'iot:Connect', 'client', 'LightBulb Device Cert', context)).toBe('allow');
    expect(decide(policy, 'iot:Publish', 'topic', 'US/LightBulb/on', context)).toBe('allow');
    expect(decide(policy, 'iot:Publish', 'topic', 'US/SmartHome/on', context)).toBe('allow');
    expect(decide(policy, 'iot:Publish', 'topic', 'US/Garden/on', context)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Publish', 'topic', 'FR/LightBulb/on', context)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', 'ou2/SmartHome/#', context)).toBe('allow');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', 'ou2/LightBulb/#', context)).toBe('implicit-deny');
    expect(decide(policy, 'iot:Receive', 'topic', 'anything', context)).toBe('allow');
    const outsider = contextOf({ certificate: { subject: { OrganizationalUnit: ['LightBulb', 'Kitchen'] }, issuer: {} } });
    expect(decide(policy, 'iot:Receive', 'topic', 'anything', outsider)).toBe('implicit-deny');
  });
});

describe('authorize: every variable form', () => {
  const full: PolicyContext = contextOf({
    clientId: 'client-9',
    isAttached: true,
    thing: { thingName: 'thing-9', thingTypeName: 'sensor', attributes: { site: 'berlin', 'odd.name@x': 'v' } },
    certificate: {
      subject: { CommonName: ['cn-9'], OrganizationalUnit: ['ou-a', 'ou-b', 'ou-c'], Organization: ['Acme'], Locality: ['Berlin'], EmailAddress: ['d@example.com'] },
      issuer: { CommonName: ['Acme CA'], Country: ['DE'] },
      subjectAlternativeName: { DNSName: ['d9.example.com', 'alt.example.com'], UniformResourceIdentifier: ['urn:dev:9'] },
      issuerAlternativeName: { RFC822Name: ['ca@example.com'] },
      serialNumber: '0a1b2c',
    },
  });

  const cases: [string, string][] = [
    ['iot:ClientId', 'client-9'],
    ['iot:Connection.Thing.ThingName', 'thing-9'],
    ['iot:Connection.Thing.ThingTypeName', 'sensor'],
    ['iot:Connection.Thing.IsAttached', 'true'],
    ['iot:Connection.Thing.Attributes[site]', 'berlin'],
    ['iot:Connection.Thing.Attributes[odd.name@x]', 'v'],
    ['iot:Certificate.Subject.CommonName', 'cn-9'],
    ['iot:Certificate.Subject.OrganizationalUnit', 'ou-a'],
    ['iot:Certificate.Subject.OrganizationalUnit.1', 'ou-a'],
    ['iot:Certificate.Subject.OrganizationalUnit.3', 'ou-c'],
    ['iot:Certificate.Subject.Locality', 'Berlin'],
    ['iot:Certificate.Subject.EmailAddress', 'd@example.com'],
    ['iot:Certificate.Issuer.CommonName', 'Acme CA'],
    ['iot:Certificate.Issuer.Country.1', 'DE'],
    ['iot:Certificate.SubjectAlternativeName.DNSName.2', 'alt.example.com'],
    ['iot:Certificate.SubjectAlternativeName.UniformResourceIdentifier', 'urn:dev:9'],
    ['iot:Certificate.IssuerAlternativeName.RFC822Name', 'ca@example.com'],
    ['iot:Certificate.SerialNumber', '0a1b2c'],
  ];
  it.each(cases)('${%s} resolves to %s', (variable, value) => {
    const policy = policyOf({ Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/v-\${${variable}}-v` });
    expect(decide(policy, 'iot:Connect', 'client', `v-${value}-v`, full)).toBe('allow');
    expect(decide(policy, 'iot:Connect', 'client', `v-${value}x-v`, full)).toBe('implicit-deny');
  });

  it('.List matches when any value does (and every value of the list)', () => {
    const policy = policyOf({ Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/\${iot:Certificate.Subject.OrganizationalUnit.List}` });
    for (const ou of ['ou-a', 'ou-b', 'ou-c']) expect(decide(policy, 'iot:Connect', 'client', ou, full)).toBe('allow');
    expect(decide(policy, 'iot:Connect', 'client', 'ou-d', full)).toBe('implicit-deny');
  });

  it('a variable used twice takes the same value in both places; two list variables try every combination', () => {
    const same = policyOf({ Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/\${iot:Certificate.Subject.OrganizationalUnit.List}:\${iot:Certificate.Subject.OrganizationalUnit.List}` });
    expect(decide(same, 'iot:Connect', 'client', 'ou-b:ou-b', full)).toBe('allow');
    expect(decide(same, 'iot:Connect', 'client', 'ou-a:ou-b', full)).toBe('implicit-deny');
    const pair = policyOf({ Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/\${iot:Certificate.Subject.OrganizationalUnit.List}:\${iot:Certificate.SubjectAlternativeName.DNSName.List}` });
    expect(decide(pair, 'iot:Connect', 'client', 'ou-c:alt.example.com', full)).toBe('allow');
    expect(decide(pair, 'iot:Connect', 'client', 'ou-c:nope.example.com', full)).toBe('implicit-deny');
  });

  it('IsAttached resolves to "false" when the certificate has no thing', () => {
    const policy = policyOf({ Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/attached-\${iot:Connection.Thing.IsAttached}` });
    expect(decide(policy, 'iot:Connect', 'client', 'attached-false')).toBe('allow');
  });

  it('accepts the short OpenSSL / @peculiar/x509 attribute names in the context as aliases (the AWS name wins)', () => {
    const policy = policyOf({ Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/\${iot:Certificate.Subject.CommonName}.\${iot:Certificate.Subject.OrganizationalUnit.2}.\${iot:Certificate.Issuer.Organization}` });
    const short = contextOf({ certificate: { subject: { CN: ['dev'], OU: ['a', 'b'] }, issuer: { O: ['Acme'] } } });
    expect(decide(policy, 'iot:Connect', 'client', 'dev.b.Acme', short)).toBe('allow');
    const both = contextOf({ certificate: { subject: { CN: ['short'], CommonName: ['long'], OU: ['a', 'b'] }, issuer: { O: ['Acme'] } } });
    expect(decide(policy, 'iot:Connect', 'client', 'long.b.Acme', both)).toBe('allow');
  });

  it('the IAM escapes ${*}, ${?}, ${$} stand for literal characters', () => {
    const policy = policyOf({ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/lit\${*}\${?}\${$}{x}` });
    expect(decide(policy, 'iot:Publish', 'topic', 'lit*?${x}')).toBe('allow');
    expect(decide(policy, 'iot:Publish', 'topic', 'litAB${x}')).toBe('implicit-deny');
  });
});

describe('authorize: a variable that cannot be resolved sets its statement aside (neither Allow nor Deny)', () => {
  const noThing = contextOf();

  it('an Allow does not apply — even for its other, variable-free resources, in either order', () => {
    for (const resources of [
      [`${ARN}:topic/public`, `${ARN}:topic/things/\${iot:Connection.Thing.ThingName}`],
      [`${ARN}:topic/things/\${iot:Connection.Thing.ThingName}`, `${ARN}:topic/public`],
    ]) {
      const policy = policyOf({ Effect: 'Allow', Action: 'iot:Publish', Resource: resources });
      expect(decide(policy, 'iot:Publish', 'topic', 'public', noThing)).toBe('implicit-deny');
    }
  });

  it('another statement still decides', () => {
    const policy = policyOf([
      { Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/things/\${iot:Connection.Thing.ThingName}` },
      { Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/public` },
    ]);
    expect(decide(policy, 'iot:Publish', 'topic', 'public', noThing)).toBe('allow');
  });

  it('a Deny does not apply either (Resource and NotResource)', () => {
    const policy = policyOf([
      { Effect: 'Allow', Action: 'iot:Publish', Resource: '*' },
      { Effect: 'Deny', Action: 'iot:Publish', Resource: `${ARN}:topic/\${iot:Connection.Thing.Attributes[zone]}/*` },
      { Effect: 'Deny', Action: 'iot:Publish', NotResource: `${ARN}:topic/\${iot:Connection.Thing.ThingName}/*` },
    ]);
    expect(decide(policy, 'iot:Publish', 'topic', 'red/x', noThing)).toBe('allow');
    const withThing = contextOf({ isAttached: true, thing: { thingName: 't1', attributes: { zone: 'red' } } });
    expect(decide(policy, 'iot:Publish', 'topic', 'red/x', withThing)).toBe('explicit-deny');
    expect(decide(policy, 'iot:Publish', 'topic', 't1/x', withThing)).toBe('allow');
    expect(decide(policy, 'iot:Publish', 'topic', 't2/x', withThing)).toBe('explicit-deny');
  });

  it('an Allow with NotResource does not apply (it would otherwise grant everything)', () => {
    const policy = policyOf({ Effect: 'Allow', Action: 'iot:Publish', NotResource: `${ARN}:topic/\${iot:Connection.Thing.ThingName}/private/*` });
    expect(decide(policy, 'iot:Publish', 'topic', 'anything', noThing)).toBe('implicit-deny');
  });

  it('counts as unresolvable: an empty value, a missing attribute (even one named like an Object property), an index past the end, an absent certificate', () => {
    const cases: [string, PolicyContext][] = [
      ['iot:ClientId', contextOf({ clientId: '' })],
      ['iot:Connection.Thing.ThingTypeName', contextOf({ thing: { thingName: 't', attributes: {} } })],
      ['iot:Connection.Thing.Attributes[constructor]', contextOf({ thing: { thingName: 't', attributes: {} } })],
      ['iot:Connection.Thing.Attributes[site]', contextOf({ thing: { thingName: 't', attributes: { site: '' } } })],
      ['iot:Certificate.Subject.OrganizationalUnit.3', contextOf({ certificate: { subject: { OrganizationalUnit: ['a', 'b'] }, issuer: {} } })],
      ['iot:Certificate.Subject.CommonName', contextOf({ certificate: { subject: { CommonName: [] }, issuer: {} } })],
      ['iot:Certificate.Subject.CommonName', contextOf()],
      ['iot:Certificate.Subject.Organization.List', contextOf({ certificate: { subject: { Organization: ['a', ''] }, issuer: {} } })],
      ['iot:Certificate.SubjectAlternativeName.DNSName', contextOf({ certificate: { subject: {}, issuer: {} } })],
      ['iot:Certificate.SerialNumber', contextOf({ certificate: { subject: {}, issuer: {} } })],
    ];
    for (const [variable, context] of cases) {
      const allow = policyOf({ Effect: 'Allow', Action: 'iot:Publish', Resource: [`${ARN}:topic/*`, `${ARN}:topic/x/\${${variable}}`] });
      expect(decide(allow, 'iot:Publish', 'topic', 'y', context), variable).toBe('implicit-deny');
    }
  });

  it('applies to variables inside condition values too', () => {
    const policy = policyOf({
      Effect: 'Allow',
      Action: 'iot:Connect',
      Resource: '*',
      Condition: { StringNotEquals: { 'iot:ClientId': '${iot:Connection.Thing.ThingName}' } },
    });
    expect(decide(policy, 'iot:Connect', 'client', 'device-1', noThing)).toBe('implicit-deny');
    const thing = contextOf({ clientId: 'device-1', isAttached: true, thing: { thingName: 'other', attributes: {} } });
    expect(decide(policy, 'iot:Connect', 'client', 'device-1', thing)).toBe('allow');
  });

  it('explainAuthorization names the statement that decided and the ones set aside', () => {
    const deny = policyOf([{ Sid: 'zone', Effect: 'Deny', Action: 'iot:Publish', Resource: `${ARN}:topic/\${iot:Connection.Thing.Attributes[zone]}/*` }], 'guard');
    const allow = policyOf([{ Sid: 'all', Effect: 'Allow', Action: 'iot:Publish', Resource: '*' }], 'open');
    const context = contextOf();
    const explanation = explainAuthorization([deny, allow], { action: 'iot:Publish', resource: resourceArn('topic', 'red/x', context) }, context);
    expect(explanation).toEqual({
      decision: 'allow',
      statement: { policyName: 'open', statementIndex: 0, sid: 'all', effect: 'Allow' },
      skipped: [{ policyName: 'guard', statementIndex: 0, sid: 'zone', effect: 'Deny', reason: 'unresolved-variable', variable: 'iot:Connection.Thing.Attributes[zone]' }],
    });
    const none = explainAuthorization([], { action: 'iot:Publish', resource: resourceArn('topic', 'x', context) }, context);
    expect(none).toEqual({ decision: 'implicit-deny', statement: undefined, skipped: [] });
  });
});

describe('authorize: security — variable values are literals and never widen a grant', () => {
  const clientPolicy = policyOf([
    { Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/\${iot:ClientId}` },
    { Effect: 'Allow', Action: ['iot:Publish', 'iot:Receive'], Resource: `${ARN}:topic/dev/\${iot:ClientId}/*` },
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: [`${ARN}:topicfilter/dev/\${iot:ClientId}/#`, `${ARN}:topicfilter/dev/\${iot:ClientId}/*`] },
  ]);
  const as = (clientId: string): PolicyContext => contextOf({ clientId });
  const subscribe = (clientId: string, filter: string): AuthorizationDecision => decide(clientPolicy, 'iot:Subscribe', 'topicfilter', filter, as(clientId));
  const publish = (clientId: string, topic: string): AuthorizationDecision => decide(clientPolicy, 'iot:Publish', 'topic', topic, as(clientId));

  it('a client id of "*" or "?" is not a policy wildcard', () => {
    expect(subscribe('*', 'dev/x/#')).toBe('implicit-deny');
    expect(subscribe('?', 'dev/x/#')).toBe('implicit-deny');
    expect(publish('*', 'dev/x/telemetry')).toBe('implicit-deny');
    expect(publish('?', 'dev/x/telemetry')).toBe('implicit-deny');
    expect(publish('*', 'dev/other-device/telemetry')).toBe('implicit-deny');
    // It still names itself, literally.
    expect(publish('*', 'dev/*/telemetry')).toBe('allow');
  });

  it('a client id of "+" or "#" does not widen a ${iot:ClientId} topic filter', () => {
    expect(subscribe('+', 'dev/+/#')).toBe('implicit-deny');
    expect(subscribe('+', 'dev/+/status')).toBe('implicit-deny');
    expect(subscribe('#', 'dev/#/#')).toBe('implicit-deny');
    const exact = policyOf({ Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${ARN}:topicfilter/dev/\${iot:ClientId}` });
    expect(decide(exact, 'iot:Subscribe', 'topicfilter', 'dev/#', as('#'))).toBe('implicit-deny');
    expect(decide(exact, 'iot:Subscribe', 'topicfilter', 'dev/+', as('+'))).toBe('implicit-deny');
    expect(decide(exact, 'iot:Subscribe', 'topicfilter', 'dev/ok', as('ok'))).toBe('allow');
  });

  it('a client id containing "/" cannot reach into another client\'s subtree', () => {
    expect(publish('other', 'dev/other/x/cmd')).toBe('allow');
    expect(publish('other/x', 'dev/other/x/cmd')).toBe('implicit-deny');
    expect(subscribe('other/x', 'dev/other/x/#')).toBe('implicit-deny');
    expect(decide(clientPolicy, 'iot:Receive', 'topic', 'dev/other/x/cmd', as('other/x'))).toBe('implicit-deny');
  });

  it('the same holds for values from the certificate (a CSR subject is chosen by the device)', () => {
    const policy = policyOf({ Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${ARN}:topicfilter/fleet/\${iot:Certificate.Subject.CommonName}/*` });
    const cn = (value: string): PolicyContext => contextOf({ certificate: { subject: { CommonName: [value] }, issuer: {} } });
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', 'fleet/+/#', cn('+'))).toBe('implicit-deny');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', 'fleet/a/b/#', cn('a/b'))).toBe('implicit-deny');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', 'fleet/x/#', cn('*'))).toBe('implicit-deny');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', 'fleet/d1/#', cn('d1'))).toBe('allow');
  });

  it('such a value still identifies the client itself on iot:Connect (client/…, not a topic)', () => {
    expect(decide(clientPolicy, 'iot:Connect', 'client', 'line-1/dev-7', as('line-1/dev-7'))).toBe('allow');
    expect(decide(clientPolicy, 'iot:Connect', 'client', 'line-1/dev-8', as('line-1/dev-7'))).toBe('implicit-deny');
    expect(decide(clientPolicy, 'iot:Connect', 'client', 'anything', as('*'))).toBe('implicit-deny');
  });

  it('an unsafe value can still deny, taken literally', () => {
    const policy = policyOf([
      { Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/*` },
      { Effect: 'Deny', Action: 'iot:Publish', Resource: `${ARN}:topic/secret/\${iot:ClientId}/*` },
    ]);
    expect(decide(policy, 'iot:Publish', 'topic', 'secret/a/b/x', as('a/b'))).toBe('explicit-deny');
    expect(decide(policy, 'iot:Publish', 'topic', 'secret/a/c/x', as('a/b'))).toBe('allow');
  });
});

describe('authorize: the Subscribe/Receive trap — the gateway must check iot:Receive per delivery', () => {
  const policy = policyOf([
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${ARN}:topicfilter/a/*` },
    { Effect: 'Allow', Action: 'iot:Receive', Resource: `${ARN}:topic/a/*` },
    { Effect: 'Deny', Action: 'iot:Subscribe', Resource: `${ARN}:topicfilter/a/restricted/*` },
    { Effect: 'Deny', Action: 'iot:Receive', Resource: `${ARN}:topic/a/restricted/*` },
  ]);

  it('a Deny on topicfilter/a/restricted/* alone does not stop a subscription to a/#', () => {
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', 'a/restricted/x')).toBe('explicit-deny');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', 'a/#')).toBe('allow');
    expect(decide(policy, 'iot:Subscribe', 'topicfilter', 'a/+/x')).toBe('allow');
  });

  it('authorize denies iot:Receive on each delivered topic under a/restricted/', () => {
    expect(decide(policy, 'iot:Receive', 'topic', 'a/restricted/x')).toBe('explicit-deny');
    expect(decide(policy, 'iot:Receive', 'topic', 'a/restricted/deep/er')).toBe('explicit-deny');
    expect(decide(policy, 'iot:Receive', 'topic', 'a/public')).toBe('allow');
  });

  it('without the topic/ Deny, the delivery would be allowed — the topicfilter/ Deny does not cover Receive', () => {
    const filterOnly = policyOf([
      { Effect: 'Allow', Action: ['iot:Subscribe', 'iot:Receive'], Resource: [`${ARN}:topicfilter/a/*`, `${ARN}:topic/a/*`] },
      { Effect: 'Deny', Action: ['iot:Subscribe', 'iot:Receive'], Resource: `${ARN}:topicfilter/a/restricted/*` },
    ]);
    expect(decide(filterOnly, 'iot:Receive', 'topic', 'a/restricted/x')).toBe('allow');
  });
});

describe('authorize: throughput sanity', () => {
  it('decides 100k requests against compiled policies', () => {
    const context = contextOf({
      clientId: 'sensor-42',
      isAttached: true,
      thing: { thingName: 'sensor-42', attributes: { site: 'berlin' } },
      certificate: { subject: { CommonName: ['sensor-42'], OrganizationalUnit: ['fleet-a', 'fleet-b'] }, issuer: {} },
    });
    const policies = [
      policyOf([
        { Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/\${iot:Connection.Thing.ThingName}`, Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } } },
        { Effect: 'Allow', Action: ['iot:Publish', 'iot:Receive'], Resource: [`${ARN}:topic/dt/\${iot:Connection.Thing.Attributes[site]}/\${iot:ClientId}/*`, `${ARN}:topic/$aws/things/\${iot:Connection.Thing.ThingName}/shadow/*`] },
        { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${ARN}:topicfilter/cmd/\${iot:Certificate.Subject.OrganizationalUnit.List}/*` },
      ]),
      policyOf([{ Effect: 'Deny', Action: 'iot:*', Resource: [`${ARN}:topic/dt/*/admin/*`, `${ARN}:topicfilter/*/admin/*`] }]),
    ];
    const requests = [
      { action: 'iot:Connect', resource: resourceArn('client', 'sensor-42', context), expected: 'allow' },
      { action: 'iot:Publish', resource: resourceArn('topic', 'dt/berlin/sensor-42/temperature', context), expected: 'allow' },
      { action: 'iot:Publish', resource: resourceArn('topic', 'dt/berlin/sensor-42/admin/x', context), expected: 'explicit-deny' },
      { action: 'iot:Receive', resource: resourceArn('topic', '$aws/things/sensor-42/shadow/update/delta', context), expected: 'allow' },
      { action: 'iot:Subscribe', resource: resourceArn('topicfilter', 'cmd/fleet-b/#', context), expected: 'allow' },
      { action: 'iot:Publish', resource: resourceArn('topic', 'dt/paris/sensor-42/temperature', context), expected: 'implicit-deny' },
    ] as const;
    const counts: Record<AuthorizationDecision, number> = { allow: 0, 'explicit-deny': 0, 'implicit-deny': 0 };
    const started = performance.now();
    for (let i = 0; i < 100_000; i++) {
      const request = requests[i % requests.length];
      if (request === undefined) throw new Error('unreachable');
      const decision = authorize(policies, request, context);
      if (decision !== request.expected) throw new Error(`request ${i % requests.length}: ${decision}`);
      counts[decision]++;
    }
    const elapsed = performance.now() - started;
    expect(counts.allow + counts['explicit-deny'] + counts['implicit-deny']).toBe(100_000);
    // Informational only (no timed assertion): typically a few tens of milliseconds.
    console.info(`policy: 100k decisions in ${elapsed.toFixed(1)} ms`);
  });
});

describe('resourceArn', () => {
  it('builds the ARN of each kind, verbatim', () => {
    const scope = { region: REGION, accountId: ACCOUNT };
    expect(resourceArn('client', 'c/1', scope)).toBe(`${ARN}:client/c/1`);
    expect(resourceArn('topicfilter', 'a/+/#', scope)).toBe(`${ARN}:topicfilter/a/+/#`);
    expect(resourceArn('thing', 't', { ...scope, partition: 'aws-cn' })).toBe(`arn:aws-cn:iot:${REGION}:${ACCOUNT}:thing/t`);
  });
});

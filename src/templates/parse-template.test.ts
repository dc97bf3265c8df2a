import { describe, expect, it } from 'vitest';
import { parseTemplate, type ProvisioningTemplateType } from './index.ts';
import {
  BULK_CSR_TEMPLATE,
  catchTemplateError,
  expectTemplateError,
  FLEET_TEMPLATE,
  JITP_TEMPLATE,
} from './template-fixtures.test-helpers.ts';

const FLEET = { type: 'FLEET_PROVISIONING' } as const;
const JITP = { type: 'JITP' } as const;

/** A minimal valid template with `resources` as its Resources section. */
function withResources(resources: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { Parameters: { Name: { Type: 'String' } }, ...extra, Resources: resources };
}

function thing(properties: Record<string, unknown>, rest: Record<string, unknown> = {}): Record<string, unknown> {
  return { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'Name' }, ...properties }, ...rest } };
}

describe('parseTemplate: AWS documentation examples are accepted unchanged', () => {
  it('accepts the JITP example (certificate pseudo parameters, PolicyDocument string)', () => {
    const template = parseTemplate(JSON.stringify(JITP_TEMPLATE), JITP);
    expect(template.type).toBe('JITP');
    expect(template.parameters.map((p) => p.name)).toEqual([
      'AWS::IoT::Certificate::CommonName',
      'AWS::IoT::Certificate::SerialNumber',
      'AWS::IoT::Certificate::Country',
      'AWS::IoT::Certificate::Id',
    ]);
    expect(template.resources.map((r) => [r.logicalId, r.kind])).toEqual([
      ['thing', 'thing'],
      ['certificate', 'certificate'],
      ['policy', 'policy'],
    ]);
  });

  it('accepts the fleet example (Mappings, Fn::FindInMap, Fn::Join, "Status": "Active", PolicyDocument object)', () => {
    const template = parseTemplate(FLEET_TEMPLATE, FLEET);
    expect(template.mappings).toEqual([['LocationTable', [['Seattle', [['LocationUrl', 'https://example.aws']]]]]]);
    expect(template.deviceConfiguration.map(([key]) => key)).toEqual(['FallbackUrl', 'LocationUrl']);
    const thingResource = template.resources.find((r) => r.kind === 'thing');
    expect(thingResource?.kind === 'thing' && thingResource.override).toEqual({
      attributes: 'MERGE',
      thingTypeName: 'REPLACE',
      thingGroups: 'DO_NOTHING',
    });
  });

  it('accepts the bulk-registration example (CSR) as a JITP-type template', () => {
    const template = parseTemplate(BULK_CSR_TEMPLATE, JITP);
    const certificate = template.resources.find((r) => r.kind === 'certificate');
    expect(certificate?.kind === 'certificate' && certificate.source.kind).toBe('csr');
    expect(template.parameters.find((p) => p.name === 'Location')?.default).toBe('WA');
  });

  it('accepts the upper-case OverrideSettings names of the prose (ATTRIBUTE_PAYLOAD, THING_GROUPS)', () => {
    const template = parseTemplate(withResources(thing({}, { OverrideSettings: { ATTRIBUTE_PAYLOAD: 'MERGE', THING_GROUPS: 'FAIL' } })), FLEET);
    const [resource] = template.resources;
    expect(resource?.kind === 'thing' && resource.override).toEqual({ attributes: 'MERGE', thingTypeName: 'DO_NOTHING', thingGroups: 'FAIL' });
  });

  it('accepts a Number parameter with a numeric default', () => {
    const template = parseTemplate({ Parameters: { Port: { Type: 'Number', Default: 8883 } }, Resources: {} }, FLEET);
    expect(template.parameters).toEqual([{ name: 'Port', type: 'Number', default: '8883' }]);
  });

  it('keeps the template name for generated policy names', () => {
    expect(parseTemplate(FLEET_TEMPLATE, { ...FLEET, name: 'bulb-fleet' }).name).toBe('bulb-fleet');
  });
});

describe('parseTemplate: the document', () => {
  it.each([
    ['not JSON', '{"Resources": '],
    ['a JSON array', '[]'],
    ['a JSON string', '"Resources"'],
  ])('rejects a body that is %s', (_, body) => {
    expectTemplateError(() => parseTemplate(body, FLEET), 'TEMPLATE_MALFORMED_JSON', '$');
  });

  it('rejects a body longer than 10240 characters by default, and honours maxLength', () => {
    const big = JSON.stringify({ Resources: {}, Parameters: { P: { Type: 'String', Default: 'x'.repeat(10300) } } });
    const error = expectTemplateError(() => parseTemplate(big, FLEET), 'TEMPLATE_TOO_LARGE', '$');
    expect(error.kind).toBe('too_large');
    expect(error.details?.['maxLength']).toBe(10240);
    expectTemplateError(() => parseTemplate(JITP_TEMPLATE, { ...JITP, maxLength: 100 }), 'TEMPLATE_TOO_LARGE', '$');
  });

  it('rejects absurd nesting', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 40; i += 1) deep = [deep];
    const error = catchTemplateError(() => parseTemplate({ Resources: {}, Mappings: { M: { K: { V: deep } } } }, FLEET));
    expect(error.code).toBe('TEMPLATE_NESTING_TOO_DEEP');
  });

  it('rejects an unknown template type and an invalid template name', () => {
    expectTemplateError(() => parseTemplate({ Resources: {} }, { type: 'BULK' as ProvisioningTemplateType }), 'TEMPLATE_TYPE_UNKNOWN');
    expectTemplateError(() => parseTemplate({ Resources: {} }, { ...FLEET, name: 'bad name' }), 'TEMPLATE_NAME_INVALID');
  });

  it('rejects unknown top-level sections', () => {
    expectTemplateError(() => parseTemplate({ Resources: {}, Outputs: {} }, FLEET), 'TEMPLATE_SECTION_UNKNOWN', '$.Outputs');
  });

  it('rejects DeviceConfiguration in a JITP template', () => {
    expectTemplateError(
      () => parseTemplate({ Resources: {}, DeviceConfiguration: { a: 'b' } }, JITP),
      'TEMPLATE_SECTION_UNKNOWN',
      '$.DeviceConfiguration',
    );
  });

  it('requires Resources to be an object, and other sections to be objects', () => {
    expectTemplateError(() => parseTemplate({ Parameters: {} }, FLEET), 'TEMPLATE_SECTION_INVALID', '$.Resources');
    expectTemplateError(() => parseTemplate({ Resources: [] }, FLEET), 'TEMPLATE_SECTION_INVALID', '$.Resources');
    expectTemplateError(() => parseTemplate({ Resources: {}, Parameters: [] }, FLEET), 'TEMPLATE_SECTION_INVALID', '$.Parameters');
    expectTemplateError(() => parseTemplate({ Resources: {}, Mappings: 'x' }, FLEET), 'TEMPLATE_SECTION_INVALID', '$.Mappings');
    expectTemplateError(() => parseTemplate({ Resources: {}, Conditions: [] }, FLEET), 'TEMPLATE_SECTION_INVALID', '$.Conditions');
  });
});

describe('parseTemplate: Parameters', () => {
  it.each([
    ['a missing Type', { P: {} }, "$.Parameters.P.Type"],
    ['an unsupported Type', { P: { Type: 'List<String>' } }, '$.Parameters.P.Type'],
    ['a non-object declaration', { P: 'String' }, '$.Parameters.P'],
    ['an unknown key', { P: { Type: 'String', AllowedValues: ['a'] } }, '$.Parameters.P.AllowedValues'],
    ['a Default that is an object', { P: { Type: 'String', Default: {} } }, '$.Parameters.P.Default'],
    ['a non-numeric Default of a Number', { P: { Type: 'Number', Default: 'ten' } }, '$.Parameters.P.Default'],
    ['a reserved AWS:: name', { 'AWS::Region': { Type: 'String' } }, "$.Parameters['AWS::Region']"],
    ['a Default for the certificate id', { 'AWS::IoT::Certificate::Id': { Type: 'String', Default: 'x' } }, "$.Parameters['AWS::IoT::Certificate::Id'].Default"],
  ])('rejects %s', (_, parameters, path) => {
    expectTemplateError(() => parseTemplate({ Parameters: parameters, Resources: {} }, FLEET), 'TEMPLATE_PARAMETER_INVALID', path);
  });
});

describe('parseTemplate: Mappings', () => {
  it('rejects intrinsic functions in Mappings', () => {
    expectTemplateError(
      () => parseTemplate({ Parameters: { P: { Type: 'String' } }, Mappings: { M: { K: { V: { Ref: 'P' } } } }, Resources: {} }, FLEET),
      'TEMPLATE_FUNCTION_NOT_ALLOWED',
      '$.Mappings.M.K.V',
    );
  });

  it('rejects mappings that are not two-level maps of strings', () => {
    expectTemplateError(() => parseTemplate({ Mappings: { M: ['a'] }, Resources: {} }, FLEET), 'TEMPLATE_MAPPING_INVALID', '$.Mappings.M');
    expectTemplateError(() => parseTemplate({ Mappings: { M: { K: 'v' } }, Resources: {} }, FLEET), 'TEMPLATE_MAPPING_INVALID', '$.Mappings.M.K');
    expectTemplateError(() => parseTemplate({ Mappings: { M: { K: { V: { a: 1 } } } }, Resources: {} }, FLEET), 'TEMPLATE_MAPPING_INVALID', '$.Mappings.M.K.V');
  });

  it('rejects Fn::FindInMap naming an undeclared map, or literal keys it lacks', () => {
    const findInMap = (args: unknown[]): Record<string, unknown> => ({
      Parameters: { Name: { Type: 'String' } },
      Mappings: { Table: { Seattle: { Url: 'https://example.aws' } } },
      Resources: thing({ AttributePayload: { url: { 'Fn::FindInMap': args } } }),
    });
    const base = "$.Resources.thing.Properties.AttributePayload.url['Fn::FindInMap']";
    expectTemplateError(() => parseTemplate(findInMap(['Nope', 'Seattle', 'Url']), FLEET), 'TEMPLATE_MAPPING_UNKNOWN', `${base}[0]`);
    expectTemplateError(() => parseTemplate(findInMap(['Table', 'Paris', 'Url']), FLEET), 'TEMPLATE_MAPPING_UNKNOWN', `${base}[1]`);
    expectTemplateError(() => parseTemplate(findInMap(['Table', 'Seattle', 'Nope']), FLEET), 'TEMPLATE_MAPPING_UNKNOWN', `${base}[2]`);
    expect(() => parseTemplate(findInMap(['Table', { Ref: 'Name' }, 'Url']), FLEET)).not.toThrow();
  });
});

describe('parseTemplate: Resources', () => {
  it('rejects unknown resource types', () => {
    expectTemplateError(
      () => parseTemplate({ Resources: { role: { Type: 'AWS::IAM::Role', Properties: {} } } }, FLEET),
      'TEMPLATE_RESOURCE_TYPE_UNKNOWN',
      '$.Resources.role.Type',
    );
  });

  it('rejects resources without a Type, with unknown keys, or that are not objects', () => {
    expectTemplateError(() => parseTemplate({ Resources: { r: { Properties: {} } } }, FLEET), 'TEMPLATE_RESOURCE_INVALID', '$.Resources.r');
    expectTemplateError(() => parseTemplate({ Resources: { r: 'thing' } }, FLEET), 'TEMPLATE_RESOURCE_INVALID', '$.Resources.r');
    expectTemplateError(
      () => parseTemplate(withResources(thing({}, { DependsOn: 'x' })), FLEET),
      'TEMPLATE_RESOURCE_INVALID',
      '$.Resources.thing.DependsOn',
    );
    expectTemplateError(
      () => parseTemplate(withResources({ Name: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: 'p' } } }), FLEET),
      'TEMPLATE_RESOURCE_INVALID',
      '$.Resources.Name',
    );
  });

  it('allows at most one thing and one certificate, but many policies', () => {
    const twoThings = { ...thing({}), other: { Type: 'AWS::IoT::Thing', Properties: { ThingName: 'b' } } };
    expectTemplateError(() => parseTemplate(withResources(twoThings), FLEET), 'TEMPLATE_RESOURCE_DUPLICATE', '$.Resources.other');
    const certificate = { Type: 'AWS::IoT::Certificate', Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' } } };
    expectTemplateError(
      () => parseTemplate(withResources({ c1: certificate, c2: certificate }), FLEET),
      'TEMPLATE_RESOURCE_DUPLICATE',
      '$.Resources.c2',
    );
    const policy = { Type: 'AWS::IoT::Policy', Properties: { PolicyName: 'p' } };
    expect(parseTemplate(withResources({ p1: policy, p2: policy }), FLEET).resources).toHaveLength(2);
  });

  it('rejects properties a type does not take (PackageVersions included)', () => {
    expectTemplateError(
      () => parseTemplate(withResources(thing({ PackageVersions: { p: 'v1' } })), FLEET),
      'TEMPLATE_PROPERTY_UNKNOWN',
      '$.Resources.thing.Properties.PackageVersions',
    );
    expectTemplateError(
      () => parseTemplate(withResources({ p: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: 'p', Tags: [] } } }), FLEET),
      'TEMPLATE_PROPERTY_UNKNOWN',
      '$.Resources.p.Properties.Tags',
    );
  });

  it('requires ThingName', () => {
    expectTemplateError(
      () => parseTemplate({ Resources: { thing: { Type: 'AWS::IoT::Thing', Properties: {} } } }, FLEET),
      'TEMPLATE_PROPERTY_MISSING',
      '$.Resources.thing.Properties.ThingName',
    );
  });

  it('checks literal names at parse time', () => {
    expectTemplateError(
      () => parseTemplate({ Resources: { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: 'has space' } } } }, FLEET),
      'TEMPLATE_THING_NAME_INVALID',
      '$.Resources.thing.Properties.ThingName',
    );
    expectTemplateError(
      () => parseTemplate(withResources(thing({ ThingGroups: ['ok', 'not/ok'] })), FLEET),
      'TEMPLATE_RESOURCE_NAME_INVALID',
      '$.Resources.thing.Properties.ThingGroups[1]',
    );
    expectTemplateError(
      () => parseTemplate(withResources(thing({ ThingTypeName: 'a b' })), FLEET),
      'TEMPLATE_RESOURCE_NAME_INVALID',
      '$.Resources.thing.Properties.ThingTypeName',
    );
    expectTemplateError(
      () => parseTemplate(withResources({ p: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: 'a b' } } }), FLEET),
      'TEMPLATE_RESOURCE_NAME_INVALID',
      '$.Resources.p.Properties.PolicyName',
    );
    expectTemplateError(
      () => parseTemplate(withResources(thing({ AttributePayload: { 'bad key': 'v' } })), FLEET),
      'TEMPLATE_ATTRIBUTE_INVALID',
      "$.Resources.thing.Properties.AttributePayload['bad key']",
    );
    expectTemplateError(
      () => parseTemplate(withResources(thing({ AttributePayload: { k: 'bad value' } })), FLEET),
      'TEMPLATE_ATTRIBUTE_INVALID',
      '$.Resources.thing.Properties.AttributePayload.k',
    );
  });

  it('rejects properties of the wrong shape', () => {
    expectTemplateError(
      () => parseTemplate(withResources(thing({ ThingGroups: 'one-group' })), FLEET),
      'TEMPLATE_PROPERTY_INVALID',
      '$.Resources.thing.Properties.ThingGroups',
    );
    expectTemplateError(
      () => parseTemplate(withResources(thing({ AttributePayload: ['a'] })), FLEET),
      'TEMPLATE_PROPERTY_INVALID',
      '$.Resources.thing.Properties.AttributePayload',
    );
    expectTemplateError(
      () => parseTemplate(withResources(thing({ BillingGroup: ['a'] })), FLEET),
      'TEMPLATE_PROPERTY_INVALID',
      '$.Resources.thing.Properties.BillingGroup',
    );
    expectTemplateError(
      () => parseTemplate(withResources({ thing: { Type: 'AWS::IoT::Thing', Properties: 'x' } }), FLEET),
      'TEMPLATE_RESOURCE_INVALID',
      '$.Resources.thing.Properties',
    );
  });

  describe('certificates', () => {
    const certificate = (properties: Record<string, unknown>): Record<string, unknown> =>
      withResources({ certificate: { Type: 'AWS::IoT::Certificate', Properties: properties } }, {
        Parameters: { Pem: { Type: 'String' }, Csr: { Type: 'String' }, Ca: { Type: 'String' } },
      });
    const path = '$.Resources.certificate.Properties';

    it('requires exactly one source', () => {
      expectTemplateError(() => parseTemplate(certificate({ Status: 'ACTIVE' }), JITP), 'TEMPLATE_CERTIFICATE_SOURCE_INVALID', path);
      expectTemplateError(
        () => parseTemplate(certificate({ CertificatePem: { Ref: 'Pem' }, CertificateSigningRequest: { Ref: 'Csr' } }), JITP),
        'TEMPLATE_CERTIFICATE_SOURCE_INVALID',
        path,
      );
      expectTemplateError(
        () => parseTemplate(certificate({ CertificateSigningRequest: { Ref: 'Csr' }, CACertificatePem: { Ref: 'Ca' } }), JITP),
        'TEMPLATE_CERTIFICATE_SOURCE_INVALID',
        `${path}.CACertificatePem`,
      );
      expect(parseTemplate(certificate({ CertificatePem: { Ref: 'Pem' }, CACertificatePem: { Ref: 'Ca' } }), JITP).resources).toHaveLength(1);
    });

    it('allows only CertificateId in fleet provisioning templates', () => {
      expectTemplateError(() => parseTemplate(certificate({ CertificateSigningRequest: { Ref: 'Csr' } }), FLEET), 'TEMPLATE_CERTIFICATE_SOURCE_INVALID', path);
    });

    it('checks a literal certificate id and status', () => {
      expectTemplateError(() => parseTemplate(certificate({ CertificateId: 'abc' }), JITP), 'TEMPLATE_CERTIFICATE_ID_INVALID', `${path}.CertificateId`);
      expectTemplateError(
        () => parseTemplate(certificate({ CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'REVOKED' }), JITP),
        'TEMPLATE_PROPERTY_INVALID',
        `${path}.Status`,
      );
    });
  });

  describe('policies', () => {
    const policy = (properties: Record<string, unknown>, rest: Record<string, unknown> = {}): Record<string, unknown> =>
      withResources({ policy: { Type: 'AWS::IoT::Policy', Properties: properties, ...rest } });

    it('rejects PolicyName together with PolicyDocument', () => {
      expectTemplateError(
        () => parseTemplate(policy({ PolicyName: 'p', PolicyDocument: '{}' }), FLEET),
        'TEMPLATE_POLICY_NAME_AND_DOCUMENT',
        '$.Resources.policy.Properties',
      );
    });

    it('requires one of them', () => {
      expectTemplateError(() => parseTemplate(policy({}), FLEET), 'TEMPLATE_PROPERTY_MISSING', '$.Resources.policy.Properties');
    });

    it('requires a PolicyDocument string to hold a JSON object', () => {
      const path = '$.Resources.policy.Properties.PolicyDocument';
      expectTemplateError(() => parseTemplate(policy({ PolicyDocument: '{"Version": ' }), FLEET), 'TEMPLATE_POLICY_DOCUMENT_INVALID', path);
      expectTemplateError(() => parseTemplate(policy({ PolicyDocument: '[1]' }), FLEET), 'TEMPLATE_POLICY_DOCUMENT_INVALID', path);
      expectTemplateError(() => parseTemplate(policy({ PolicyDocument: 42 }), FLEET), 'TEMPLATE_POLICY_DOCUMENT_INVALID', path);
    });

    it('rejects OverrideSettings on a policy', () => {
      expectTemplateError(
        () => parseTemplate(policy({ PolicyName: 'p' }, { OverrideSettings: { PolicyName: 'REPLACE' } }), FLEET),
        'TEMPLATE_OVERRIDE_INVALID',
        '$.Resources.policy.OverrideSettings',
      );
    });
  });

  describe('OverrideSettings', () => {
    it.each([
      ['an unknown action', { ThingGroups: 'IGNORE' }, '$.Resources.thing.OverrideSettings.ThingGroups'],
      ['MERGE for ThingTypeName', { ThingTypeName: 'MERGE' }, '$.Resources.thing.OverrideSettings.ThingTypeName'],
      ['an unknown property', { ThingName: 'REPLACE' }, '$.Resources.thing.OverrideSettings.ThingName'],
      ['the same property twice', { ThingGroups: 'FAIL', THING_GROUPS: 'FAIL' }, '$.Resources.thing.OverrideSettings.THING_GROUPS'],
      ['a non-object', 'REPLACE', '$.Resources.thing.OverrideSettings'],
    ])('rejects %s on a thing', (_, override, path) => {
      expectTemplateError(() => parseTemplate(withResources(thing({}, { OverrideSettings: override })), FLEET), 'TEMPLATE_OVERRIDE_INVALID', path);
    });

    it('allows only Status, without MERGE, on a certificate', () => {
      const certificate = (override: unknown): Record<string, unknown> =>
        withResources({
          certificate: {
            Type: 'AWS::IoT::Certificate',
            Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' } },
            OverrideSettings: override,
          },
        });
      expect(() => parseTemplate(certificate({ Status: 'REPLACE' }), FLEET)).not.toThrow();
      expectTemplateError(() => parseTemplate(certificate({ Status: 'MERGE' }), FLEET), 'TEMPLATE_OVERRIDE_INVALID', '$.Resources.certificate.OverrideSettings.Status');
      expectTemplateError(() => parseTemplate(certificate({ CertificateId: 'FAIL' }), FLEET), 'TEMPLATE_OVERRIDE_INVALID', '$.Resources.certificate.OverrideSettings.CertificateId');
    });
  });
});

describe('parseTemplate: intrinsic functions', () => {
  const attribute = (value: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> =>
    withResources(thing({ AttributePayload: { a: value } }), extra);
  const at = "$.Resources.thing.Properties.AttributePayload.a";

  it.each(['Fn::GetAtt', 'Fn::ImportValue', 'Fn::Base64', 'Fn::ToJsonString'])('rejects the unsupported function %s', (name) => {
    const error = expectTemplateError(() => parseTemplate(attribute({ [name]: ['x', 'y'] }), FLEET), 'TEMPLATE_FUNCTION_UNKNOWN', at);
    expect(error.details?.['function']).toBe(name);
  });

  it('rejects condition functions outside Conditions', () => {
    expectTemplateError(() => parseTemplate(attribute({ 'Fn::Equals': ['a', 'b'] }), FLEET), 'TEMPLATE_FUNCTION_NOT_ALLOWED', at);
  });

  it('rejects a function object with more than one key', () => {
    expectTemplateError(() => parseTemplate(attribute({ Ref: 'Name', Other: 1 }), FLEET), 'TEMPLATE_FUNCTION_ARGUMENTS', at);
  });

  it.each([
    ['Ref to a non-string', { Ref: ['Name'] }, `${at}.Ref`],
    ['Fn::Join without a list', { 'Fn::Join': '-' }, `${at}['Fn::Join']`],
    ['Fn::Join with a computed delimiter', { 'Fn::Join': [{ Ref: 'Name' }, ['a']] }, `${at}['Fn::Join'][0]`],
    ['Fn::Join of a string', { 'Fn::Join': ['-', 'abc'] }, `${at}['Fn::Join'][1]`],
    ['Fn::Select with a negative index', { 'Fn::Select': [-1, ['a']] }, `${at}['Fn::Select'][0]`],
    ['Fn::Select out of range of a literal list', { 'Fn::Select': [2, ['a', 'b']] }, `${at}['Fn::Select'][0]`],
    ['Fn::Split with an empty delimiter', { 'Fn::Split': ['', 'a,b'] }, `${at}['Fn::Split'][0]`],
    ['Fn::Split of a list', { 'Fn::Split': [',', ['a']] }, `${at}['Fn::Split'][1]`],
    ['Fn::FindInMap with two arguments', { 'Fn::FindInMap': ['a', 'b'] }, `${at}['Fn::FindInMap']`],
    ['Fn::Sub of a number', { 'Fn::Sub': 42 }, `${at}['Fn::Sub']`],
    ['Fn::Sub with a non-map of variables', { 'Fn::Sub': ['${x}', ['y']] }, `${at}['Fn::Sub'][1]`],
    ['Fn::If with two arguments', { 'Fn::If': ['c', 'a'] }, `${at}['Fn::If']`],
  ])('rejects %s', (_, value, path) => {
    expectTemplateError(() => parseTemplate(attribute(value), FLEET), 'TEMPLATE_FUNCTION_ARGUMENTS', path);
  });

  it('rejects a Ref to nothing declared', () => {
    const error = expectTemplateError(() => parseTemplate(attribute({ Ref: 'Nope' }), FLEET), 'TEMPLATE_REF_UNKNOWN', `${at}.Ref`);
    expect(error.details?.['name']).toBe('Nope');
  });

  it('rejects ${} names that are not declared, and attribute references', () => {
    expectTemplateError(() => parseTemplate(attribute({ 'Fn::Sub': 'x-${Nope}' }), FLEET), 'TEMPLATE_REF_UNKNOWN', `${at}['Fn::Sub']`);
    expectTemplateError(() => parseTemplate(attribute({ 'Fn::Sub': '${thing.Arn}' }), FLEET), 'TEMPLATE_REF_UNKNOWN', `${at}['Fn::Sub']`);
  });

  it('offers certificate subject fields undeclared in JITP only; the certificate id in both', () => {
    const ref = (name: string): Record<string, unknown> => attribute({ Ref: name });
    expect(() => parseTemplate(ref('AWS::IoT::Certificate::CommonName'), JITP)).not.toThrow();
    expectTemplateError(() => parseTemplate(ref('AWS::IoT::Certificate::CommonName'), FLEET), 'TEMPLATE_REF_UNKNOWN', `${at}.Ref`);
    expect(() => parseTemplate(ref('AWS::IoT::Certificate::Id'), FLEET)).not.toThrow();
  });

  it('allows Ref to resources, but not in cycles', () => {
    expect(() =>
      parseTemplate(withResources({ ...thing({}), p: { Type: 'AWS::IoT::Policy', Properties: { PolicyDocument: { 'Fn::Sub': '{"Resource": "${thing}"}' } } } }), FLEET),
    ).not.toThrow();
    const selfNamed = { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { 'Fn::Join': ['-', ['x', { Ref: 'thing' }]] } } } };
    expectTemplateError(() => parseTemplate({ Resources: selfNamed }, FLEET), 'TEMPLATE_REF_CIRCULAR', '$.Resources.thing');
    const mutual = {
      thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'p' } } },
      p: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: { 'Fn::Sub': '${thing}-policy' } } },
    };
    const error = expectTemplateError(() => parseTemplate({ Resources: mutual }, FLEET), 'TEMPLATE_REF_CIRCULAR', '$.Resources.thing');
    expect(error.details?.['cycle']).toEqual(['thing', 'p', 'thing']);
  });
});

describe('parseTemplate: Conditions (extension)', () => {
  const conditions = (section: unknown, resources: Record<string, unknown> = {}): Record<string, unknown> => ({
    Parameters: { Env: { Type: 'String', Default: 'dev' }, Name: { Type: 'String' } },
    Conditions: section,
    Resources: resources,
  });

  it('accepts Fn::Equals, Fn::Not, Fn::And, Fn::Or and Condition', () => {
    const template = parseTemplate(
      conditions({
        IsProd: { 'Fn::Equals': [{ Ref: 'Env' }, 'prod'] },
        IsNotProd: { 'Fn::Not': [{ Condition: 'IsProd' }] },
        Both: { 'Fn::And': [{ Condition: 'IsProd' }, { 'Fn::Equals': ['a', 'a'] }] },
        Either: { 'Fn::Or': [{ Condition: 'IsProd' }, { Condition: 'IsNotProd' }] },
      }),
      FLEET,
    );
    expect(template.conditions.map(([name]) => name)).toEqual(['IsProd', 'IsNotProd', 'Both', 'Either']);
  });

  it('rejects values that are not condition functions', () => {
    expectTemplateError(() => parseTemplate(conditions({ C: 'true' }), FLEET), 'TEMPLATE_CONDITION_INVALID', '$.Conditions.C');
    expectTemplateError(() => parseTemplate(conditions({ C: { 'Fn::Join': ['', []] } }), FLEET), 'TEMPLATE_CONDITION_INVALID', '$.Conditions.C');
    expectTemplateError(() => parseTemplate(conditions({ C: { 'Fn::Nope': [] } }), FLEET), 'TEMPLATE_FUNCTION_UNKNOWN', '$.Conditions.C');
    expectTemplateError(
      () => parseTemplate(conditions({ C: { 'Fn::And': [{ Condition: 'D' }] }, D: { 'Fn::Equals': ['a', 'b'] } }), FLEET),
      'TEMPLATE_FUNCTION_ARGUMENTS',
      "$.Conditions.C['Fn::And']",
    );
  });

  it('rejects references to undeclared conditions, everywhere', () => {
    expectTemplateError(
      () => parseTemplate(conditions({ C: { 'Fn::Not': [{ Condition: 'Nope' }] } }), FLEET),
      'TEMPLATE_CONDITION_UNKNOWN',
      "$.Conditions.C['Fn::Not'][0].Condition",
    );
    expectTemplateError(
      () => parseTemplate(conditions({}, { thing: { Type: 'AWS::IoT::Thing', Condition: 'Nope', Properties: { ThingName: 'a' } } }), FLEET),
      'TEMPLATE_CONDITION_UNKNOWN',
      '$.Resources.thing.Condition',
    );
    expectTemplateError(
      () => parseTemplate(conditions({}, { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { 'Fn::If': ['Nope', 'a', 'b'] } } } }), FLEET),
      'TEMPLATE_CONDITION_UNKNOWN',
      "$.Resources.thing.Properties.ThingName['Fn::If'][0]",
    );
  });

  it('rejects cycles of conditions', () => {
    const error = expectTemplateError(
      () => parseTemplate(conditions({ A: { 'Fn::Not': [{ Condition: 'B' }] }, B: { 'Fn::Not': [{ Condition: 'A' }] } }), FLEET),
      'TEMPLATE_CONDITION_CIRCULAR',
      '$.Conditions.A',
    );
    expect(error.details?.['cycle']).toEqual(['A', 'B', 'A']);
  });

  it('lets conditions reference parameters only', () => {
    expectTemplateError(
      () => parseTemplate(conditions({ C: { 'Fn::Equals': [{ Ref: 'thing' }, 'x'] } }, thing({})), FLEET),
      'TEMPLATE_REF_UNKNOWN',
      "$.Conditions.C['Fn::Equals'][0].Ref",
    );
    expectTemplateError(
      () => parseTemplate(conditions({ C: { 'Fn::Equals': [{ 'Fn::If': ['C', 'a', 'b'] }, 'x'] } }), FLEET),
      'TEMPLATE_FUNCTION_NOT_ALLOWED',
      "$.Conditions.C['Fn::Equals'][0]",
    );
  });
});

describe('parseTemplate: DeviceConfiguration', () => {
  it('accepts flat strings, numbers, booleans and functions', () => {
    const template = parseTemplate(
      { Parameters: { P: { Type: 'String' } }, Resources: {}, DeviceConfiguration: { a: 'x', b: 1, c: true, d: { Ref: 'P' } } },
      FLEET,
    );
    expect(template.deviceConfiguration.map(([key]) => key)).toEqual(['a', 'b', 'c', 'd']);
  });

  it.each([
    ['a nested object', { nested: { a: 'b' } }, '$.DeviceConfiguration.nested'],
    ['a list', { list: ['a'] }, '$.DeviceConfiguration.list'],
    ['null', { empty: null }, '$.DeviceConfiguration.empty'],
  ])('rejects %s', (_, section, path) => {
    expectTemplateError(() => parseTemplate({ Resources: {}, DeviceConfiguration: section }, FLEET), 'TEMPLATE_DEVICE_CONFIGURATION_INVALID', path);
  });
});

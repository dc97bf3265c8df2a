import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { evaluateTemplate, parseTemplate, type ProvisioningTemplate, type ResourcePlan } from './index.ts';
import {
  BULK_CSR_TEMPLATE,
  CERTIFICATE_ID,
  expectTemplateError,
  FLEET_TEMPLATE,
  JITP_TEMPLATE,
} from './template-fixtures.test-helpers.ts';

const FLEET = { type: 'FLEET_PROVISIONING' } as const;
const JITP = { type: 'JITP' } as const;

const CSR_PEM = '-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n';
const CERT_PEM = '-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Parses `body` and evaluates it with `parameters`. */
function run(
  body: object,
  parameters: Record<string, string>,
  type: 'FLEET_PROVISIONING' | 'JITP' = 'FLEET_PROVISIONING',
  certificateId: string | undefined = CERTIFICATE_ID,
): ResourcePlan {
  const template = parseTemplate(body, { type });
  return evaluateTemplate(template, certificateId === undefined ? { parameters } : { parameters, certificateId });
}

/** A template whose thing name is `value`, to exercise one function at a time. */
function thingNamed(value: unknown, extra: Record<string, unknown> = {}): object {
  return { ...extra, Resources: { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: value } } } };
}

describe('evaluateTemplate: AWS documentation examples', () => {
  it('evaluates the JITP example from the certificate fields', () => {
    const template = parseTemplate(JITP_TEMPLATE, JITP);
    const plan = evaluateTemplate(template, {
      parameters: {
        'AWS::IoT::Certificate::CommonName': 'bulb-0001',
        'AWS::IoT::Certificate::SerialNumber': '0A1B2C',
        'AWS::IoT::Certificate::Country': 'US',
        'AWS::IoT::Certificate::Organization': 'Acme', // not declared: tolerated, unused
      },
      certificateId: CERTIFICATE_ID,
    });
    const document = JSON.stringify(JSON.parse(JITP_TEMPLATE.Resources.policy.Properties.PolicyDocument));
    expect(plan).toEqual({
      templateType: 'JITP',
      parameters: {
        'AWS::IoT::Certificate::CommonName': 'bulb-0001',
        'AWS::IoT::Certificate::SerialNumber': '0A1B2C',
        'AWS::IoT::Certificate::Country': 'US',
        'AWS::IoT::Certificate::Id': CERTIFICATE_ID,
      },
      certificate: {
        logicalId: 'certificate',
        source: { kind: 'id', certificateId: CERTIFICATE_ID },
        status: 'ACTIVE',
        override: { status: 'DO_NOTHING' },
      },
      thing: {
        logicalId: 'thing',
        thingName: 'bulb-0001',
        attributes: { version: 'v1', serialNumber: '0A1B2C' },
        thingTypeName: 'lightBulb-versionA',
        thingGroups: ['v1-lightbulbs', 'US'],
        override: { attributes: 'REPLACE', thingTypeName: 'REPLACE', thingGroups: 'DO_NOTHING' },
      },
      policies: [{ logicalId: 'policy', policy: { kind: 'document', document, suggestedName: sha256(document) } }],
      deviceConfiguration: {},
    });
  });

  it('fails JITP when a declared certificate field is absent and has no default', () => {
    const template = parseTemplate(JITP_TEMPLATE, JITP);
    const error = expectTemplateError(
      () =>
        evaluateTemplate(template, {
          parameters: { 'AWS::IoT::Certificate::CommonName': 'bulb-0001', 'AWS::IoT::Certificate::SerialNumber': '1' },
          certificateId: CERTIFICATE_ID,
        }),
      'TEMPLATE_PARAMETER_MISSING',
      "$.Parameters['AWS::IoT::Certificate::Country']",
    );
    expect(error.details?.['parameter']).toBe('AWS::IoT::Certificate::Country');
  });

  it('evaluates the fleet example: Fn::Join, Fn::FindInMap in DeviceConfiguration, "Active", object PolicyDocument', () => {
    const template = parseTemplate(FLEET_TEMPLATE, { ...FLEET, name: 'bulb-fleet' });
    const plan = evaluateTemplate(template, {
      parameters: { ThingName: 'bulb-42', SerialNumber: 'SN42', DeviceLocation: 'Seattle' },
      certificateId: CERTIFICATE_ID.toUpperCase(),
    });
    const document = JSON.stringify(FLEET_TEMPLATE.Resources.policy.Properties.PolicyDocument);
    expect(plan.thing).toEqual({
      logicalId: 'thing',
      thingName: 'bulb-42',
      attributes: { version: 'v1', serialNumber: 'serialNumber' },
      thingTypeName: 'ThingPrefix_SN42',
      thingGroups: ['v1-lightbulbs', 'WA'],
      billingGroup: 'LightBulbBillingGroup',
      override: { attributes: 'MERGE', thingTypeName: 'REPLACE', thingGroups: 'DO_NOTHING' },
    });
    expect(plan.certificate).toEqual({
      logicalId: 'certificate',
      source: { kind: 'id', certificateId: CERTIFICATE_ID },
      status: 'ACTIVE',
      override: { status: 'DO_NOTHING' },
    });
    expect(plan.policies).toEqual([
      { logicalId: 'policy', policy: { kind: 'document', document, suggestedName: `bulb-fleet-${sha256(document)}` } },
    ]);
    expect(plan.deviceConfiguration).toEqual({ FallbackUrl: 'https://www.example.com/test-site', LocationUrl: 'https://example.aws' });
  });

  it('fails the fleet example for a location the map lacks', () => {
    const template = parseTemplate(FLEET_TEMPLATE, FLEET);
    expectTemplateError(
      () => evaluateTemplate(template, { parameters: { ThingName: 'b', SerialNumber: 's', DeviceLocation: 'Paris' }, certificateId: CERTIFICATE_ID }),
      'TEMPLATE_EVALUATION_FAILED',
      "$.DeviceConfiguration.LocationUrl['Fn::FindInMap'][1]",
    );
  });

  it('evaluates the bulk CSR example with its default Location', () => {
    const plan = run(BULK_CSR_TEMPLATE, { ThingName: 'bulb-7', SerialNumber: '7', CSR: CSR_PEM }, 'JITP', undefined);
    expect(plan.certificate).toEqual({
      logicalId: 'certificate',
      source: { kind: 'csr', csr: CSR_PEM },
      status: 'ACTIVE',
      override: { status: 'DO_NOTHING' },
    });
    expect(plan.thing?.thingGroups).toEqual(['v1-lightbulbs', 'WA']);
    expect(plan.policies).toEqual([{ logicalId: 'policy', policy: { kind: 'name', policyName: 'LightBulbPolicy' } }]);
  });

  it('produces a plan that survives JSON round trips unchanged (dry-run prints it)', () => {
    const plan = run(FLEET_TEMPLATE, { ThingName: 'bulb-42', SerialNumber: 'SN42', DeviceLocation: 'Seattle' });
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
  });

  it('is deterministic: the same input gives the same plan and the same policy name', () => {
    const template = parseTemplate(FLEET_TEMPLATE, { ...FLEET, name: 'bulb-fleet' });
    const input = { parameters: { ThingName: 'bulb-42', SerialNumber: 'SN42', DeviceLocation: 'Seattle' }, certificateId: CERTIFICATE_ID };
    expect(evaluateTemplate(template, input)).toEqual(evaluateTemplate(template, input));
  });
});

describe('evaluateTemplate: intrinsic functions', () => {
  it('Fn::Sub substitutes parameters, pseudo parameters, resources and variables, and keeps ${!literal}', () => {
    const body = {
      Parameters: { Serial: { Type: 'String' }, Site: { Type: 'String', Default: 'lab' } },
      Resources: {
        thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { 'Fn::Sub': 'bulb-${Serial}' } } },
        certificate: { Type: 'AWS::IoT::Certificate', Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' } } },
        policy: {
          Type: 'AWS::IoT::Policy',
          Properties: {
            PolicyDocument: {
              'Fn::Sub': [
                '{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"topic/${Area}/${thing}/${!iot:ClientId}"}],"Cert":"${AWS::IoT::Certificate::Id}"}',
                { Area: { 'Fn::Join': ['/', ['site', { Ref: 'Site' }]] } },
              ],
            },
          },
        },
      },
    };
    const plan = run(body, { Serial: '0042' });
    expect(plan.thing?.thingName).toBe('bulb-0042');
    const policy = plan.policies[0]?.policy;
    expect(policy?.kind === 'document' && JSON.parse(policy.document)).toEqual({
      Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: 'topic/site/lab/bulb-0042/${iot:ClientId}' }],
      Cert: CERTIFICATE_ID,
    });
  });

  it('Fn::Split and Fn::Select pick a piece of a parameter', () => {
    const body = thingNamed({ 'Fn::Select': [1, { 'Fn::Split': [':', { Ref: 'Id' }] }] }, { Parameters: { Id: { Type: 'String' } } });
    expect(run(body, { Id: 'acme:bulb-9:rev2' }).thing?.thingName).toBe('bulb-9');
  });

  it('Fn::Select takes its index from a parameter and fails out of range', () => {
    const body = thingNamed(
      { 'Fn::Select': [{ Ref: 'Index' }, { 'Fn::Split': [',', 'a,b,c'] }] },
      { Parameters: { Index: { Type: 'Number' } } },
    );
    expect(run(body, { Index: '2' }).thing?.thingName).toBe('c');
    const error = expectTemplateError(() => run(body, { Index: '3' }), 'TEMPLATE_EVALUATION_FAILED', "$.Resources.thing.Properties.ThingName['Fn::Select'][0]");
    expect(error.details).toMatchObject({ index: 3, length: 3 });
    expectTemplateError(() => run(body, { Index: 'two' }), 'TEMPLATE_PARAMETER_VALUE_INVALID', '$.Parameters.Index');
  });

  it('ThingGroups may be computed by Fn::Split; groups are deduplicated', () => {
    const body = {
      Parameters: { Groups: { Type: 'String' } },
      Resources: { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: 't', ThingGroups: { 'Fn::Split': [',', { Ref: 'Groups' }] } } } },
    };
    expect(run(body, { Groups: 'a,b,a' }).thing?.thingGroups).toEqual(['a', 'b']);
    expectTemplateError(() => run(body, { Groups: 'a,b c' }), 'TEMPLATE_RESOURCE_NAME_INVALID', '$.Resources.thing.Properties.ThingGroups');
  });

  it('Fn::FindInMap returns list values to Fn::Join', () => {
    const body = thingNamed(
      { 'Fn::Join': ['-', { 'Fn::FindInMap': ['Parts', { Ref: 'Model' }, 'Names'] }] },
      { Parameters: { Model: { Type: 'String' } }, Mappings: { Parts: { m1: { Names: ['lamp', 'one'] } } } },
    );
    expect(run(body, { Model: 'm1' }).thing?.thingName).toBe('lamp-one');
  });

  it('reports a list where a string is needed', () => {
    const body = thingNamed({ 'Fn::Split': [',', 'a,b'] });
    expectTemplateError(() => run(body, {}), 'TEMPLATE_EVALUATION_FAILED', '$.Resources.thing.Properties.ThingName');
  });

  it('a Ref to a resource yields its name or id', () => {
    const body = {
      Resources: {
        thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: 'bulb-1', AttributePayload: { cert: { Ref: 'certificate' } } } },
        certificate: { Type: 'AWS::IoT::Certificate', Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' } } },
        named: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: { 'Fn::Sub': '${thing}-policy' } } },
      },
      DeviceConfiguration: { thing: { Ref: 'thing' }, policy: { Ref: 'named' } },
    };
    const plan = run(body, {});
    expect(plan.thing?.attributes).toEqual({ cert: CERTIFICATE_ID });
    expect(plan.policies).toEqual([{ logicalId: 'named', policy: { kind: 'name', policyName: 'bulb-1-policy' } }]);
    expect(plan.deviceConfiguration).toEqual({ thing: 'bulb-1', policy: 'bulb-1-policy' });
  });
});

describe('evaluateTemplate: Conditions (extension)', () => {
  const body = {
    Parameters: { Env: { Type: 'String', Default: 'dev' }, Serial: { Type: 'String' } },
    Conditions: {
      IsProd: { 'Fn::Equals': [{ Ref: 'Env' }, 'prod'] },
      IsDev: { 'Fn::Not': [{ Condition: 'IsProd' }] },
      ProdLab: { 'Fn::And': [{ Condition: 'IsProd' }, { 'Fn::Equals': [{ Ref: 'Serial' }, 'lab'] }] },
      Any: { 'Fn::Or': [{ Condition: 'IsProd' }, { Condition: 'IsDev' }] },
    },
    Resources: {
      thing: {
        Type: 'AWS::IoT::Thing',
        Properties: {
          ThingName: { 'Fn::If': ['IsProd', { Ref: 'Serial' }, { 'Fn::Sub': 'dev-${Serial}' }] },
          ThingTypeName: { 'Fn::If': ['IsProd', 'bulb', { Ref: 'AWS::NoValue' }] },
          ThingGroups: ['all', { 'Fn::If': ['ProdLab', 'lab', { Ref: 'AWS::NoValue' }] }],
        },
      },
      prodPolicy: { Type: 'AWS::IoT::Policy', Condition: 'IsProd', Properties: { PolicyName: 'prod' } },
      devPolicy: { Type: 'AWS::IoT::Policy', Condition: 'IsDev', Properties: { PolicyName: 'dev' } },
    },
    DeviceConfiguration: { any: { 'Fn::If': ['Any', true, false] }, debug: { 'Fn::If': ['IsDev', 'on', { Ref: 'AWS::NoValue' }] } },
  };

  it('takes the false branches, skips resources whose condition is false, drops AWS::NoValue', () => {
    const plan = run(body, { Serial: '42' });
    expect(plan.thing).toMatchObject({ thingName: 'dev-42', thingGroups: ['all'] });
    expect(plan.thing && 'thingTypeName' in plan.thing).toBe(false);
    expect(plan.policies.map((p) => p.logicalId)).toEqual(['devPolicy']);
    expect(plan.deviceConfiguration).toEqual({ any: true, debug: 'on' });
  });

  it('takes the true branches', () => {
    const plan = run(body, { Serial: 'lab', Env: 'prod' });
    expect(plan.thing).toMatchObject({ thingName: 'lab', thingTypeName: 'bulb', thingGroups: ['all', 'lab'] });
    expect(plan.policies.map((p) => p.logicalId)).toEqual(['prodPolicy']);
    expect(plan.deviceConfiguration).toEqual({ any: true });
  });

  it('fails a Ref to a resource its condition left out', () => {
    const template = {
      Parameters: { On: { Type: 'String' } },
      Conditions: { Enabled: { 'Fn::Equals': [{ Ref: 'On' }, 'yes'] } },
      Resources: {
        thing: { Type: 'AWS::IoT::Thing', Condition: 'Enabled', Properties: { ThingName: 't' } },
        policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: { 'Fn::Sub': '${thing}-p' } } },
      },
    };
    expect(run(template, { On: 'yes' }).policies[0]?.policy).toEqual({ kind: 'name', policyName: 't-p' });
    expectTemplateError(() => run(template, { On: 'no' }), 'TEMPLATE_EVALUATION_FAILED', '$.Resources.policy.Properties.PolicyName');
  });
});

describe('evaluateTemplate: parameters', () => {
  const body = { Parameters: { Name: { Type: 'String' }, Site: { Type: 'String', Default: 'lab' } }, ...thingNamed({ Ref: 'Name' }) };

  it('uses defaults and reports every effective value', () => {
    expect(run(body, { Name: 'n1' }).parameters).toEqual({ Name: 'n1', Site: 'lab' });
    expect(run(body, { Name: 'n1', Site: 'plant' }).parameters).toEqual({ Name: 'n1', Site: 'plant' });
  });

  it('fails on a missing parameter, naming it', () => {
    const error = expectTemplateError(() => run(body, {}), 'TEMPLATE_PARAMETER_MISSING', '$.Parameters.Name');
    expect(error.details?.['parameter']).toBe('Name');
  });

  it('does not take a parameter from the object prototype', () => {
    const template = { Parameters: { constructor: { Type: 'String' } }, Resources: {} };
    expectTemplateError(() => run(template, {}), 'TEMPLATE_PARAMETER_MISSING', '$.Parameters.constructor');
  });

  it('ignores unknown parameters unless asked to refuse them', () => {
    const template = parseTemplate(body, FLEET);
    expect(evaluateTemplate(template, { parameters: { Name: 'n', Extra: 'x' } }).thing?.thingName).toBe('n');
    const error = expectTemplateError(
      () => evaluateTemplate(template, { parameters: { Name: 'n', Extra: 'x' } }, { rejectUnknownParameters: true }),
      'TEMPLATE_PARAMETER_UNKNOWN',
    );
    expect(error.details?.['parameter']).toBe('Extra');
    // the message names it too: a bulk task reports only code and message, for every line of an extra CSV column
    expect(error.message).toBe('The template does not declare the parameter "Extra"');
  });

  it('tolerates certificate fields in JITP even when refusing unknown parameters', () => {
    const template = parseTemplate(body, JITP);
    const plan = evaluateTemplate(
      template,
      { parameters: { Name: 'n', 'AWS::IoT::Certificate::Organization': 'Acme' } },
      { rejectUnknownParameters: true },
    );
    expect(plan.thing?.thingName).toBe('n');
  });

  it('limits parameter keys to 2048 and values to 4096 characters', () => {
    const template = parseTemplate(body, FLEET);
    expect(() => evaluateTemplate(template, { parameters: { Name: 'n', Site: 'x'.repeat(4096) } })).not.toThrow();
    const long = expectTemplateError(() => evaluateTemplate(template, { parameters: { Name: 'n', Site: 'x'.repeat(4097) } }), 'TEMPLATE_PARAMETER_TOO_LARGE');
    expect(long.kind).toBe('too_large');
    expectTemplateError(() => evaluateTemplate(template, { parameters: { Name: 'n', ['k'.repeat(2049)]: 'v' } }), 'TEMPLATE_PARAMETER_TOO_LARGE');
  });

  it('refuses non-string values (e.g. numbers decoded from CBOR)', () => {
    const template = parseTemplate(body, FLEET);
    const parameters = { Name: 7 } as unknown as Record<string, string>;
    expectTemplateError(() => evaluateTemplate(template, { parameters }), 'TEMPLATE_PARAMETER_VALUE_INVALID');
  });

  it('never lets the parameters name the certificate', () => {
    const template = parseTemplate(FLEET_TEMPLATE, FLEET);
    const parameters = { ThingName: 't', SerialNumber: 's', DeviceLocation: 'Seattle', 'AWS::IoT::Certificate::Id': 'f'.repeat(64) };
    expectTemplateError(() => evaluateTemplate(template, { parameters, certificateId: CERTIFICATE_ID }), 'TEMPLATE_PARAMETER_RESERVED');
    expectTemplateError(() => evaluateTemplate(template, { parameters }), 'TEMPLATE_PARAMETER_RESERVED');
    // The same value as the service's is harmless (a JITP flow may pass every field).
    expect(() =>
      evaluateTemplate(template, { parameters: { ...parameters, 'AWS::IoT::Certificate::Id': CERTIFICATE_ID }, certificateId: CERTIFICATE_ID }),
    ).not.toThrow();
  });

  it('fails when the certificate id is needed but not given', () => {
    const template = parseTemplate(FLEET_TEMPLATE, FLEET);
    expectTemplateError(
      () => evaluateTemplate(template, { parameters: { ThingName: 't', SerialNumber: 's', DeviceLocation: 'Seattle' } }),
      'TEMPLATE_PARAMETER_MISSING',
      '$.Resources.certificate.Properties.CertificateId',
    );
  });

  it('rejects a malformed certificate id from the caller', () => {
    const template = parseTemplate(FLEET_TEMPLATE, FLEET);
    expectTemplateError(
      () => evaluateTemplate(template, { parameters: { ThingName: 't', SerialNumber: 's', DeviceLocation: 'Seattle' }, certificateId: 'xyz' }),
      'TEMPLATE_CERTIFICATE_ID_INVALID',
    );
  });
});

describe('evaluateTemplate: certificates', () => {
  const byParameter = (type: 'FLEET_PROVISIONING' | 'JITP'): ProvisioningTemplate =>
    parseTemplate(
      {
        Parameters: { CertId: { Type: 'String' } },
        Resources: { certificate: { Type: 'AWS::IoT::Certificate', Properties: { CertificateId: { Ref: 'CertId' } } } },
      },
      { type },
    );

  it('refuses a template that names another certificate than the one provisioned', () => {
    const error = expectTemplateError(
      () => evaluateTemplate(byParameter('FLEET_PROVISIONING'), { parameters: { CertId: 'b'.repeat(64) }, certificateId: CERTIFICATE_ID }),
      'TEMPLATE_CERTIFICATE_ID_MISMATCH',
      '$.Resources.certificate.Properties.CertificateId',
    );
    expect(error.kind).toBe('forbidden');
  });

  it('refuses a fleet template whose certificate id would come from the device alone', () => {
    expectTemplateError(
      () => evaluateTemplate(byParameter('FLEET_PROVISIONING'), { parameters: { CertId: 'b'.repeat(64) } }),
      'TEMPLATE_PARAMETER_MISSING',
      '$.Resources.certificate',
    );
  });

  it('lets bulk registration (JITP type) name an existing certificate by parameter', () => {
    const plan = evaluateTemplate(byParameter('JITP'), { parameters: { CertId: 'B'.repeat(64) } });
    expect(plan.certificate?.source).toEqual({ kind: 'id', certificateId: 'b'.repeat(64) });
    expectTemplateError(
      () => evaluateTemplate(byParameter('JITP'), { parameters: { CertId: 'nope' } }),
      'TEMPLATE_CERTIFICATE_ID_INVALID',
      '$.Resources.certificate.Properties.CertificateId',
    );
  });

  it('registers a PEM with its CA, and checks the PEM kinds', () => {
    const body = {
      Parameters: { Pem: { Type: 'String' }, Ca: { Type: 'String' }, Status: { Type: 'String', Default: 'inactive' } },
      Resources: {
        certificate: {
          Type: 'AWS::IoT::Certificate',
          Properties: { CertificatePem: { Ref: 'Pem' }, CACertificatePem: { Ref: 'Ca' }, Status: { Ref: 'Status' } },
          OverrideSettings: { Status: 'REPLACE' },
        },
      },
    };
    expect(run(body, { Pem: CERT_PEM, Ca: CERT_PEM }, 'JITP', undefined).certificate).toEqual({
      logicalId: 'certificate',
      source: { kind: 'pem', certificatePem: CERT_PEM, caCertificatePem: CERT_PEM },
      status: 'INACTIVE',
      override: { status: 'REPLACE' },
    });
    expectTemplateError(
      () => run(body, { Pem: CSR_PEM, Ca: CERT_PEM }, 'JITP', undefined),
      'TEMPLATE_CERTIFICATE_SOURCE_INVALID',
      '$.Resources.certificate.Properties.CertificatePem',
    );
    expectTemplateError(
      () => run(body, { Pem: CERT_PEM, Ca: CERT_PEM, Status: 'REVOKED' }, 'JITP', undefined),
      'TEMPLATE_PROPERTY_INVALID',
      '$.Resources.certificate.Properties.Status',
    );
  });
});

describe('evaluateTemplate: names computed from parameters are checked', () => {
  const body = {
    Parameters: { Name: { Type: 'String' }, Value: { Type: 'String', Default: 'ok' }, Policy: { Type: 'String', Default: 'p' } },
    Resources: {
      thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'Name' }, AttributePayload: { a: { Ref: 'Value' } } } },
      policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: { Ref: 'Policy' } } },
    },
  };

  it.each([
    ['with a space', 'bulb 1'],
    ['empty', ''],
    ['too long', 'x'.repeat(129)],
    ['with a slash', '../other'],
  ])('rejects a thing name %s', (_, name) => {
    expectTemplateError(() => run(body, { Name: name }), 'TEMPLATE_THING_NAME_INVALID', '$.Resources.thing.Properties.ThingName');
  });

  it('accepts a 128-character thing name with colons, dashes and underscores', () => {
    const name = `a:b_c-${'x'.repeat(122)}`;
    expect(run(body, { Name: name }).thing?.thingName).toBe(name);
  });

  it('rejects bad attribute values and policy names', () => {
    expectTemplateError(() => run(body, { Name: 'n', Value: 'a b' }), 'TEMPLATE_ATTRIBUTE_INVALID', '$.Resources.thing.Properties.AttributePayload.a');
    expectTemplateError(() => run(body, { Name: 'n', Policy: 'a b' }), 'TEMPLATE_RESOURCE_NAME_INVALID', '$.Resources.policy.Properties.PolicyName');
  });

  it('rejects a computed policy document that is not a JSON object', () => {
    const template = {
      Parameters: { Part: { Type: 'String', Default: 'json' } },
      Resources: { policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyDocument: { 'Fn::Join': [' ', ['not', { Ref: 'Part' }]] } } } },
    };
    expectTemplateError(() => run(template, {}), 'TEMPLATE_POLICY_DOCUMENT_INVALID', '$.Resources.policy.Properties.PolicyDocument');
    const wrapped = { Resources: { policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyDocument: { 'Fn::Join': ['', ['{ "Version":', ' "2012-10-17" }']] } } } } };
    expect(run(wrapped, {}).policies[0]?.policy).toMatchObject({ document: '{"Version":"2012-10-17"}' });
  });

  it('refuses a whole policy document taken from a parameter', () => {
    const template = {
      Parameters: { Doc: { Type: 'String' } },
      Resources: { policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyDocument: { Ref: 'Doc' } } } },
    };
    expectTemplateError(() => run(template, { Doc: '{"Statement":[]}' }), 'TEMPLATE_POLICY_PARAMETER_UNSAFE', '$.Resources.policy.Properties.PolicyDocument');
  });

  it('rejects a computed DeviceConfiguration value that is a list', () => {
    const template = { Resources: {}, DeviceConfiguration: { list: { 'Fn::Split': [',', 'a,b'] } } };
    expectTemplateError(() => run(template, {}), 'TEMPLATE_DEVICE_CONFIGURATION_INVALID', '$.DeviceConfiguration.list');
  });
});

describe('evaluateTemplate: parameters inside policy documents cannot widen the policy', () => {
  const stringDocument = {
    Parameters: { Serial: { Type: 'String' } },
    Resources: {
      policy: {
        Type: 'AWS::IoT::Policy',
        Properties: {
          PolicyDocument: {
            'Fn::Sub': '{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:eu-west-1:1:topic/d/${Serial}"}]}',
          },
        },
      },
    },
  };
  const objectDocument = {
    Parameters: { Serial: { Type: 'String' } },
    Resources: {
      policy: {
        Type: 'AWS::IoT::Policy',
        Properties: {
          PolicyDocument: {
            Statement: [{ Effect: 'Allow', Action: 'iot:Subscribe', Resource: { 'Fn::Join': ['', ['topicfilter/d/', { Ref: 'Serial' }]] } }],
          },
        },
      },
    },
  };

  it('accepts an ordinary serial number', () => {
    const policy = run(stringDocument, { Serial: 'SN-42' }).policies[0]?.policy;
    expect(policy?.kind === 'document' && JSON.parse(policy.document)).toMatchObject({
      Statement: [{ Resource: 'arn:aws:iot:eu-west-1:1:topic/d/SN-42' }],
    });
  });

  it.each([
    ['a JSON injection', 'x"}],"Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*'],
    ['a wildcard', '*'],
    ['a one-character wildcard', 'SN-4?'],
    ['a policy variable', '${iot:ClientId}'],
    ['a backslash', 'a\\b'],
  ])('refuses %s in a string document', (_, serial) => {
    expectTemplateError(() => run(stringDocument, { Serial: serial }), 'TEMPLATE_POLICY_PARAMETER_UNSAFE', '$.Resources.policy.Properties.PolicyDocument');
  });

  it('refuses a wildcard in an object document too', () => {
    expectTemplateError(
      () => run(objectDocument, { Serial: '*' }),
      'TEMPLATE_POLICY_PARAMETER_UNSAFE',
      "$.Resources.policy.Properties.PolicyDocument.Statement[0].Resource['Fn::Join'][1][1]",
    );
    expect(run(objectDocument, { Serial: 'SN-42' }).policies[0]?.policy).toMatchObject({
      document: '{"Statement":[{"Effect":"Allow","Action":"iot:Subscribe","Resource":"topicfilter/d/SN-42"}]}',
    });
  });

  it('does not apply the check to names and conditions computed on the way', () => {
    // Policy "named" takes the part of Serial before "*", and its name is checked by the naming rules; the
    // document sees that name and a condition on Serial, never Serial itself.
    const body = {
      Parameters: { Serial: { Type: 'String' } },
      Conditions: { Special: { 'Fn::Equals': [{ Ref: 'Serial' }, '*'] } },
      Resources: {
        policy: {
          Type: 'AWS::IoT::Policy',
          Properties: {
            PolicyDocument: {
              'Fn::Sub': [
                '{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"topic/${named}/${Kind}"}]}',
                { Kind: { 'Fn::If': ['Special', 'special', 'plain'] } },
              ],
            },
          },
        },
        named: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: { 'Fn::Select': [0, { 'Fn::Split': ['*', { Ref: 'Serial' }] }] } } },
      },
    };
    const plan = run(body, { Serial: 'SN-42*junk' });
    expect(plan.policies.map((p) => p.policy)).toEqual([
      {
        kind: 'document',
        document: '{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"topic/SN-42/plain"}]}',
        suggestedName: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown,
      },
      { kind: 'name', policyName: 'SN-42' },
    ]);
  });
});

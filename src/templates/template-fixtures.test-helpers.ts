/**
 * Templates shaped like the examples of AWS's provisioning-template documentation (JITP, bulk registration,
 * fleet provisioning), and a helper to catch template errors. Test-only.
 */
import { expect } from 'vitest';
import { isGatehouseError, type GatehouseError } from '../errors/index.ts';

/** A JITP template in the shape of AWS's "Template example for just-in-time provisioning". */
export const JITP_TEMPLATE = {
  Parameters: {
    'AWS::IoT::Certificate::CommonName': { Type: 'String' },
    'AWS::IoT::Certificate::SerialNumber': { Type: 'String' },
    'AWS::IoT::Certificate::Country': { Type: 'String' },
    'AWS::IoT::Certificate::Id': { Type: 'String' },
  },
  Resources: {
    thing: {
      Type: 'AWS::IoT::Thing',
      Properties: {
        ThingName: { Ref: 'AWS::IoT::Certificate::CommonName' },
        AttributePayload: { version: 'v1', serialNumber: { Ref: 'AWS::IoT::Certificate::SerialNumber' } },
        ThingTypeName: 'lightBulb-versionA',
        ThingGroups: ['v1-lightbulbs', { Ref: 'AWS::IoT::Certificate::Country' }],
      },
      OverrideSettings: { AttributePayload: 'REPLACE', ThingTypeName: 'REPLACE', ThingGroups: 'DO_NOTHING' },
    },
    certificate: {
      Type: 'AWS::IoT::Certificate',
      Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' },
    },
    policy: {
      Type: 'AWS::IoT::Policy',
      Properties: {
        PolicyDocument:
          '{ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": ["iot:Publish"], "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/foo/bar"] }] }',
      },
    },
  },
} as const;

/** A fleet-provisioning template in the shape of AWS's "Fleet provisioning template example". */
export const FLEET_TEMPLATE = {
  Parameters: {
    ThingName: { Type: 'String' },
    SerialNumber: { Type: 'String' },
    DeviceLocation: { Type: 'String' },
  },
  Mappings: {
    LocationTable: {
      Seattle: { LocationUrl: 'https://example.aws' },
    },
  },
  Resources: {
    thing: {
      Type: 'AWS::IoT::Thing',
      Properties: {
        AttributePayload: { version: 'v1', serialNumber: 'serialNumber' },
        ThingName: { Ref: 'ThingName' },
        ThingTypeName: { 'Fn::Join': ['', ['ThingPrefix_', { Ref: 'SerialNumber' }]] },
        ThingGroups: ['v1-lightbulbs', 'WA'],
        BillingGroup: 'LightBulbBillingGroup',
      },
      OverrideSettings: { AttributePayload: 'MERGE', ThingTypeName: 'REPLACE', ThingGroups: 'DO_NOTHING' },
    },
    certificate: {
      Type: 'AWS::IoT::Certificate',
      Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'Active' },
    },
    policy: {
      Type: 'AWS::IoT::Policy',
      Properties: {
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: ['iot:Publish'], Resource: ['arn:aws:iot:us-east-1:123456789012:topic/foo/bar'] }],
        },
      },
    },
  },
  DeviceConfiguration: {
    FallbackUrl: 'https://www.example.com/test-site',
    LocationUrl: { 'Fn::FindInMap': ['LocationTable', { Ref: 'DeviceLocation' }, 'LocationUrl'] },
  },
} as const;

/** A bulk-registration template (JITP type) that issues the certificate from a CSR. */
export const BULK_CSR_TEMPLATE = {
  Parameters: {
    ThingName: { Type: 'String' },
    SerialNumber: { Type: 'String' },
    Location: { Type: 'String', Default: 'WA' },
    CSR: { Type: 'String' },
  },
  Resources: {
    thing: {
      Type: 'AWS::IoT::Thing',
      Properties: {
        ThingName: { Ref: 'ThingName' },
        AttributePayload: { version: 'v1', serialNumber: { Ref: 'SerialNumber' } },
        ThingTypeName: 'lightBulb-versionA',
        ThingGroups: ['v1-lightbulbs', { Ref: 'Location' }],
      },
    },
    certificate: {
      Type: 'AWS::IoT::Certificate',
      Properties: { CertificateSigningRequest: { Ref: 'CSR' }, Status: 'ACTIVE' },
    },
    policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: 'LightBulbPolicy' } },
  },
} as const;

/** A certificate id as Gatehouse and AWS write them: SHA-256 in lower-case hex. */
export const CERTIFICATE_ID = 'a3d49411f0eb731c7951aea729e7d56a35da77484d723dd10f780306d878daad';

/** Runs `action` and returns the GatehouseError it throws (fails the test if it throws nothing else). */
export function catchTemplateError(action: () => unknown): GatehouseError {
  try {
    action();
  } catch (error) {
    if (isGatehouseError(error)) return error;
    throw error;
  }
  throw new Error('expected a template error, but nothing was thrown');
}

/** Asserts that `action` fails with `code` at `path`. */
export function expectTemplateError(action: () => unknown, code: string, path?: string): GatehouseError {
  const error = catchTemplateError(action);
  expect({ code: error.code, path: error.details?.['path'] }).toEqual({ code, path });
  return error;
}

/**
 * The AWS IoT naming rules a template's resources must follow (AWS IoT API reference: CreateThing,
 * CreateThingType, CreateThingGroup, CreateBillingGroup, CreatePolicy, AttributePayload), and the certificate
 * pseudo parameters of JITP. Checked on every evaluated value, because fleet-provisioning parameters come from
 * the device and must not smuggle arbitrary strings into the registry.
 */
import { isJsonObject } from './json-value.ts';
import { clip, templateError } from './template-error.ts';

/** Thing, thing type, thing group and billing group names: 1–128 of `[a-zA-Z0-9:_-]`. */
export const THING_NAME_PATTERN = /^[a-zA-Z0-9:_-]{1,128}$/;
/** Policy names: 1–128 of `[\w+=,.@-]`. */
export const POLICY_NAME_PATTERN = /^[\w+=,.@-]{1,128}$/;
/** Attribute names: 1–128 of `[a-zA-Z0-9_.,@/:#-]`. */
export const ATTRIBUTE_NAME_PATTERN = /^[a-zA-Z0-9_.,@/:#-]{1,128}$/;
/** Attribute values: up to 800 of `[a-zA-Z0-9_.,@/:#=[\]-]` (empty allowed). */
export const ATTRIBUTE_VALUE_PATTERN = /^[a-zA-Z0-9_.,@/:#=[\]-]{0,800}$/;
const CERTIFICATE_STATUSES: ReadonlySet<string> = new Set(['ACTIVE', 'INACTIVE']);

/** Certificate ids: SHA-256 of the DER, 64 hexadecimal characters (as AWS certificateId). */
export const CERTIFICATE_ID_PATTERN = /^[0-9a-fA-F]{64}$/;
/** Template names: 1–36 of `[0-9A-Za-z_-]` (protocols.md, fleet provisioning). */
export const TEMPLATE_NAME_PATTERN = /^[0-9A-Za-z_-]{1,36}$/;

/** RegisterThing limits (protocols.md): parameter key ≤ 2048, value ≤ 4096 characters. */
export const MAX_PARAMETER_KEY_LENGTH = 2048;
export const MAX_PARAMETER_VALUE_LENGTH = 4096;
/** Template body limit (protocols.md): 10240 characters, unless the installation sets another (`templateMaxLength`). */
export const DEFAULT_MAX_TEMPLATE_LENGTH = 10240;
/**
 * `maxLength` for a body read back from the store to run it: it was checked against the installation's limit when it
 * was stored, and a limit lowered since must not break the templates that devices already use.
 */
export const STORED_TEMPLATE_MAX_LENGTH = Number.POSITIVE_INFINITY;

/** The certificate id pseudo parameter, filled only by the service. */
export const CERTIFICATE_ID_PARAMETER = 'AWS::IoT::Certificate::Id';
/** `AWS::NoValue` (CloudFormation pseudo parameter, Gatehouse extension). */
export const NO_VALUE_PARAMETER = 'AWS::NoValue';

/** The JITP pseudo parameters filled from the device certificate's subject (plus the id). */
export const CERTIFICATE_PARAMETERS: ReadonlySet<string> = new Set([
  'AWS::IoT::Certificate::Country',
  'AWS::IoT::Certificate::Organization',
  'AWS::IoT::Certificate::OrganizationalUnit',
  'AWS::IoT::Certificate::DistinguishedNameQualifier',
  'AWS::IoT::Certificate::StateName',
  'AWS::IoT::Certificate::CommonName',
  'AWS::IoT::Certificate::SerialNumber',
  CERTIFICATE_ID_PARAMETER,
]);

/** Checks a thing name (CreateThing rules). */
export function checkThingName(name: string, path: string): void {
  if (!THING_NAME_PATTERN.test(name)) {
    throw templateError('TEMPLATE_THING_NAME_INVALID', 'A thing name must be 1-128 characters of [a-zA-Z0-9:_-]', path, { thingName: clip(name) });
  }
}

/** Checks a thing type, thing group or billing group name. */
export function checkGroupLikeName(property: string): (name: string, path: string) => void {
  return (name, path) => {
    if (!THING_NAME_PATTERN.test(name)) {
      throw templateError('TEMPLATE_RESOURCE_NAME_INVALID', `${property} must be 1-128 characters of [a-zA-Z0-9:_-]`, path, { property, name: clip(name) });
    }
  };
}

/** Checks a policy name (CreatePolicy rules). */
export function checkPolicyName(name: string, path: string): void {
  if (!POLICY_NAME_PATTERN.test(name)) {
    throw templateError('TEMPLATE_RESOURCE_NAME_INVALID', 'PolicyName must be 1-128 characters of [A-Za-z0-9_+=,.@-]', path, {
      property: 'PolicyName',
      name: clip(name),
    });
  }
}

/** Checks a thing attribute value (AttributePayload rules). */
export function checkAttributeValue(value: string, path: string): void {
  if (!ATTRIBUTE_VALUE_PATTERN.test(value)) {
    throw templateError('TEMPLATE_ATTRIBUTE_INVALID', 'An attribute value must be at most 800 characters of [a-zA-Z0-9_.,@/:#=[]-]', path, {
      value: clip(value),
    });
  }
}

/** Checks a certificate id (64 hexadecimal characters). */
export function checkCertificateId(id: string, path: string): void {
  if (!CERTIFICATE_ID_PATTERN.test(id)) {
    throw templateError('TEMPLATE_CERTIFICATE_ID_INVALID', 'A certificate id must be 64 hexadecimal characters', path, { certificateId: clip(id) });
  }
}

/** Checks a certificate status (ACTIVE or INACTIVE, any case as in AWS's examples). */
export function checkCertificateStatus(status: string, path: string): void {
  if (!CERTIFICATE_STATUSES.has(status.toUpperCase())) {
    throw templateError('TEMPLATE_PROPERTY_INVALID', 'Status must be ACTIVE or INACTIVE', path, { property: 'Status', status: clip(status) });
  }
}

/** Compact forms of recently checked documents: a template evaluated per device (bulk, JITP) repeats the same text. */
const compactDocuments = new Map<string, string>();
const COMPACT_DOCUMENTS_MAX = 256;

/** Parses a policy document string into its compact form, or fails with TEMPLATE_POLICY_DOCUMENT_INVALID. */
export function checkPolicyDocument(text: string, path: string): string {
  const known = compactDocuments.get(text);
  if (known !== undefined) return known;
  const compact = compactPolicyDocument(text, path);
  if (compactDocuments.size >= COMPACT_DOCUMENTS_MAX) compactDocuments.clear();
  compactDocuments.set(text, compact);
  return compact;
}

function compactPolicyDocument(text: string, path: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw templateError('TEMPLATE_POLICY_DOCUMENT_INVALID', 'PolicyDocument is not valid JSON', path, {}, cause);
  }
  if (!isJsonObject(parsed)) {
    throw templateError('TEMPLATE_POLICY_DOCUMENT_INVALID', 'PolicyDocument must hold a JSON object', path);
  }
  return JSON.stringify(parsed);
}

import { RegistryErrors } from './errors.ts';

/** Alphabets and length limits of registry names (AWS IoT's, so names move between both unchanged). */
export const NAME_RULES = {
  thing: { pattern: /^[a-zA-Z0-9:_-]+$/, max: 128 },
  thingType: { pattern: /^[a-zA-Z0-9:_-]+$/, max: 128 },
  thingGroup: { pattern: /^[a-zA-Z0-9:_-]+$/, max: 128 },
  policy: { pattern: /^[\w+=,.@-]+$/, max: 128 },
  tenant: { pattern: /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, max: 63 },
  token: { pattern: /^[\w .@-]+$/, max: 128 },
  template: { pattern: /^[0-9A-Za-z_-]+$/, max: 36 },
} as const;

/** Kinds of named resource. */
export type NameKind = keyof typeof NAME_RULES;

/** Throws REGISTRY_NAME_INVALID unless `value` is a valid name of that kind. */
export function assertValidName(kind: NameKind, value: unknown, field: string = `${kind}Name`): string {
  const rule = NAME_RULES[kind];
  if (typeof value !== 'string' || value.length === 0 || value.length > rule.max || !rule.pattern.test(value)) {
    throw RegistryErrors.error(
      'REGISTRY_NAME_INVALID',
      `${field} must be 1-${rule.max} characters matching ${String(rule.pattern)}`,
      { details: { field } },
    );
  }
  return value;
}

const ATTRIBUTE_NAME = /^[a-zA-Z0-9_.,@/:#-]+$/;
const ATTRIBUTE_VALUE = /^[a-zA-Z0-9_.,@/:#=[\]-]*$/;

/** Validates a string attribute map (AWS limits: names ≤ 128, values ≤ 800, at most 50 attributes). */
export function assertValidAttributes(value: unknown, field = 'attributes'): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw RegistryErrors.error('REGISTRY_ATTRIBUTES_INVALID', `${field} must be an object of string values`, { details: { field } });
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > 50) {
    throw RegistryErrors.error('REGISTRY_ATTRIBUTES_INVALID', `${field} may hold at most 50 attributes`, { details: { field } });
  }
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (k.length > 128 || !ATTRIBUTE_NAME.test(k)) {
      throw RegistryErrors.error('REGISTRY_ATTRIBUTES_INVALID', `${field}: attribute name "${k.slice(0, 40)}" must be 1-128 characters of [a-zA-Z0-9_.,@/:#-]`, { details: { field, attribute: k.slice(0, 128) } });
    }
    if (typeof v !== 'string' || v.length > 800 || !ATTRIBUTE_VALUE.test(v)) {
      throw RegistryErrors.error('REGISTRY_ATTRIBUTES_INVALID', `${field}: value of "${k}" must be a string of at most 800 characters of [a-zA-Z0-9_.,@/:#=[]-]`, { details: { field, attribute: k } });
    }
    out[k] = v;
  }
  return out;
}

/** Throws unless `value` is a certificate id (64 lower-case hex). */
export function assertCertificateId(value: unknown, field = 'certificateId'): string {
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) {
    throw RegistryErrors.error('REGISTRY_CERTIFICATE_ID_INVALID', `${field} must be 64 lower-case hex characters`, { details: { field } });
  }
  return value;
}

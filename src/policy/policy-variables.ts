/**
 * Policy variables: their names, and how each is read from a {@link PolicyContext}
 * (protocols.md "AWS IoT policy language" → Variables).
 *
 * A name is parsed once, at compile time, into a {@link PolicyVariable} that says exactly where its value lives;
 * resolving it at evaluation time is a few property reads, with no allocation.
 *
 * Supported names (exact case):
 * - `iot:ClientId`
 * - `iot:Connection.Thing.ThingName`, `.ThingTypeName`, `.IsAttached` (`"true"`/`"false"`), `.Attributes[<name>]`
 * - `iot:Certificate.Subject.<Field>`, `iot:Certificate.Issuer.<Field>` — fields in {@link CERTIFICATE_NAME_FIELDS}
 * - `iot:Certificate.SubjectAlternativeName.<Field>`, `iot:Certificate.IssuerAlternativeName.<Field>` — fields in
 *   {@link CERTIFICATE_ALT_NAME_FIELDS}
 * - each certificate field also as `.<Field>.<N>` (1-based) and `.<Field>.List` (every value); the plain form is the
 *   first value, as in AWS
 * - `iot:Certificate.SerialNumber`
 */
import { CERTIFICATE_ALT_NAME_FIELDS, CERTIFICATE_NAME_FIELDS } from './policy-context.ts';
import type { CertificateNameValues, PolicyCertificate, PolicyContext } from './policy-context.ts';

/** Which values of a multi-valued certificate field a variable reads. */
export type CertificateFieldSelector =
  | { readonly kind: 'first' }
  | { readonly kind: 'index'; readonly index: number }
  | { readonly kind: 'list' };

/** Where the value of a policy variable lives, parsed from its name. */
export type PolicyVariableSource =
  | { readonly kind: 'clientId' }
  | { readonly kind: 'thingName' }
  | { readonly kind: 'thingTypeName' }
  | { readonly kind: 'isAttached' }
  | { readonly kind: 'thingAttribute'; readonly attribute: string }
  | {
      readonly kind: 'certificateField';
      readonly part: 'subject' | 'issuer' | 'subjectAlternativeName' | 'issuerAlternativeName';
      /** The AWS field name first, then its aliases. */
      readonly keys: readonly string[];
      readonly selector: CertificateFieldSelector;
    }
  | { readonly kind: 'certificateSerialNumber' };

/** A parsed policy variable. `list` is true for the `.List` forms, whose value is a set of strings. */
export interface PolicyVariable {
  /** The name as written in the policy, without `${` `}` (e.g. `iot:Connection.Thing.Attributes[site]`). */
  readonly name: string;
  readonly list: boolean;
  readonly source: PolicyVariableSource;
}

const CERTIFICATE_PARTS = {
  Subject: { part: 'subject', fields: CERTIFICATE_NAME_FIELDS },
  Issuer: { part: 'issuer', fields: CERTIFICATE_NAME_FIELDS },
  SubjectAlternativeName: { part: 'subjectAlternativeName', fields: CERTIFICATE_ALT_NAME_FIELDS },
  IssuerAlternativeName: { part: 'issuerAlternativeName', fields: CERTIFICATE_ALT_NAME_FIELDS },
} as const;

// AWS thing attribute names: [a-zA-Z0-9_.,@/:#-]+
const ATTRIBUTE_VARIABLE = /^iot:Connection\.Thing\.Attributes\[([a-zA-Z0-9_.,@/:#-]+)\]$/;
const CERTIFICATE_VARIABLE = /^iot:Certificate\.([A-Za-z]+)\.([A-Za-z0-9]+)(?:\.(List|[1-9][0-9]{0,3}))?$/;

/** Parses a variable name (without `${` `}`); undefined when Gatehouse does not know it. */
export function parsePolicyVariable(name: string): PolicyVariable | undefined {
  switch (name) {
    case 'iot:ClientId':
      return variable(name, { kind: 'clientId' });
    case 'iot:Connection.Thing.ThingName':
      return variable(name, { kind: 'thingName' });
    case 'iot:Connection.Thing.ThingTypeName':
      return variable(name, { kind: 'thingTypeName' });
    case 'iot:Connection.Thing.IsAttached':
      return variable(name, { kind: 'isAttached' });
    case 'iot:Certificate.SerialNumber':
      return variable(name, { kind: 'certificateSerialNumber' });
  }
  const attribute = ATTRIBUTE_VARIABLE.exec(name);
  if (attribute?.[1] !== undefined) return variable(name, { kind: 'thingAttribute', attribute: attribute[1] });

  const certificate = CERTIFICATE_VARIABLE.exec(name);
  if (certificate === null) return undefined;
  const [, partName = '', field = '', suffix] = certificate;
  if (!Object.hasOwn(CERTIFICATE_PARTS, partName)) return undefined;
  const part = CERTIFICATE_PARTS[partName as keyof typeof CERTIFICATE_PARTS];
  if (!Object.hasOwn(part.fields, field)) return undefined;
  const aliases = part.fields[field] ?? [];
  const selector: CertificateFieldSelector =
    suffix === undefined ? { kind: 'first' } : suffix === 'List' ? { kind: 'list' } : { kind: 'index', index: Number(suffix) };
  return {
    name,
    list: selector.kind === 'list',
    source: { kind: 'certificateField', part: part.part, keys: Object.freeze([field, ...aliases]), selector },
  };
}

function variable(name: string, source: PolicyVariableSource): PolicyVariable {
  return { name, list: false, source };
}

/** The values of a certificate field, looked up by AWS name then aliases; undefined when absent or empty. */
function certificateFieldValues(
  certificate: PolicyCertificate | undefined,
  part: 'subject' | 'issuer' | 'subjectAlternativeName' | 'issuerAlternativeName',
  keys: readonly string[],
): readonly string[] | undefined {
  if (certificate === undefined) return undefined;
  const record: CertificateNameValues | undefined = certificate[part];
  if (record === undefined) return undefined;
  for (const key of keys) {
    if (!Object.hasOwn(record, key)) continue;
    const values = record[key];
    if (Array.isArray(values) && values.length > 0) return values as readonly string[];
  }
  return undefined;
}

/** A usable string value: present, a string, not empty. */
function usable(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * The value of a single-valued variable (every form but `.List`), or undefined when it cannot be resolved
 * (absent, empty, out-of-range index). Never allocates.
 */
export function resolveVariable(variable: PolicyVariable, context: PolicyContext): string | undefined {
  const source = variable.source;
  switch (source.kind) {
    case 'clientId':
      return usable(context.clientId);
    case 'thingName':
      return usable(context.thing?.thingName);
    case 'thingTypeName':
      return usable(context.thing?.thingTypeName);
    case 'isAttached':
      return context.isAttached ? 'true' : 'false';
    case 'thingAttribute': {
      const attributes = context.thing?.attributes;
      return attributes !== undefined && Object.hasOwn(attributes, source.attribute) ? usable(attributes[source.attribute]) : undefined;
    }
    case 'certificateSerialNumber':
      return usable(context.certificate?.serialNumber);
    case 'certificateField': {
      const values = certificateFieldValues(context.certificate, source.part, source.keys);
      if (values === undefined) return undefined;
      switch (source.selector.kind) {
        case 'first':
          return usable(values[0]);
        case 'index':
          return usable(values[source.selector.index - 1]);
        case 'list':
          return undefined;
      }
    }
  }
}

/**
 * The values of a `.List` variable: the field's values when there is at least one and every one is a non-empty
 * string; otherwise undefined (unresolvable). Never allocates.
 */
export function resolveListVariable(variable: PolicyVariable, context: PolicyContext): readonly string[] | undefined {
  const source = variable.source;
  if (source.kind !== 'certificateField' || source.selector.kind !== 'list') return undefined;
  const values = certificateFieldValues(context.certificate, source.part, source.keys);
  if (values === undefined) return undefined;
  for (const value of values) if (usable(value) === undefined) return undefined;
  return values;
}

/**
 * Error codes of the provisioning-template language (protocols.md "AWS provisioning templates").
 *
 * Parse-time codes are raised by `parseTemplate` when a template is created; evaluation-time codes by
 * `evaluateTemplate` when a device is provisioned. Every error carries `details.path`, the JSON path of the
 * offending node in the template (e.g. `$.Resources.thing.Properties.ThingName`), when there is one.
 */
import { defineErrors } from '../errors/index.ts';

/** The registry of every `TEMPLATE_*` code (style.md rule 6). */
export const TemplateErrors = defineErrors({
  // ── parse time: the document ────────────────────────────────────────────────────────────────────────
  TEMPLATE_MALFORMED_JSON: { kind: 'invalid', description: 'The template body is not a JSON object.' },
  TEMPLATE_TOO_LARGE: { kind: 'too_large', description: 'The template body is longer than the limit (10240 characters by default).' },
  TEMPLATE_NESTING_TOO_DEEP: { kind: 'invalid', description: 'The template nests objects or arrays deeper than allowed.' },
  TEMPLATE_TYPE_UNKNOWN: { kind: 'invalid', description: 'The template type is neither FLEET_PROVISIONING nor JITP.' },
  TEMPLATE_NAME_INVALID: { kind: 'invalid', description: 'The template name is not 1-36 characters of [0-9A-Za-z_-].' },
  TEMPLATE_SECTION_UNKNOWN: { kind: 'invalid', description: 'The template has a top-level section that this template type does not allow.' },
  TEMPLATE_SECTION_INVALID: { kind: 'invalid', description: 'A template section is missing or has the wrong shape.' },
  // ── parse time: parameters, mappings, conditions ────────────────────────────────────────────────────
  TEMPLATE_PARAMETER_INVALID: { kind: 'invalid', description: 'A parameter declaration is invalid (type, default, name or unknown key).' },
  TEMPLATE_MAPPING_INVALID: { kind: 'invalid', description: 'The Mappings section is not a two-level map of literal values.' },
  TEMPLATE_MAPPING_UNKNOWN: { kind: 'invalid', description: 'Fn::FindInMap names a map, or literal keys, that the Mappings section does not declare.' },
  TEMPLATE_CONDITION_INVALID: { kind: 'invalid', description: 'A condition is not a condition function (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition).' },
  TEMPLATE_CONDITION_UNKNOWN: { kind: 'invalid', description: 'A Condition or Fn::If names a condition that the Conditions section does not declare.' },
  TEMPLATE_CONDITION_CIRCULAR: { kind: 'invalid', description: 'Conditions reference each other in a cycle.' },
  // ── parse time: resources ───────────────────────────────────────────────────────────────────────────
  TEMPLATE_RESOURCE_INVALID: { kind: 'invalid', description: 'A resource declaration is invalid (shape, unknown key, or a logical id that clashes with a parameter).' },
  TEMPLATE_RESOURCE_TYPE_UNKNOWN: { kind: 'invalid', description: 'A resource type is not AWS::IoT::Thing, AWS::IoT::Certificate or AWS::IoT::Policy.' },
  TEMPLATE_RESOURCE_DUPLICATE: { kind: 'invalid', description: 'The template declares more than one thing or more than one certificate.' },
  TEMPLATE_PROPERTY_UNKNOWN: { kind: 'invalid', description: 'A resource has a property that its type does not take.' },
  TEMPLATE_PROPERTY_MISSING: { kind: 'invalid', description: 'A resource lacks a required property.' },
  TEMPLATE_PROPERTY_INVALID: { kind: 'invalid', description: 'A resource property has a value of the wrong shape or outside its allowed values.' },
  TEMPLATE_POLICY_NAME_AND_DOCUMENT: { kind: 'invalid', description: 'A policy resource names both PolicyName and PolicyDocument.' },
  TEMPLATE_POLICY_DOCUMENT_INVALID: { kind: 'invalid', description: 'A PolicyDocument is not a JSON object (or a string holding one).' },
  TEMPLATE_POLICY_PARAMETER_UNSAFE: {
    kind: 'invalid',
    description: 'A parameter used inside a PolicyDocument holds a quote, backslash, control character, wildcard (* ?) or ${, which could widen the policy.',
  },
  TEMPLATE_CERTIFICATE_SOURCE_INVALID: { kind: 'invalid', description: 'A certificate resource does not name exactly one usable source (CertificateId, CertificatePem or CertificateSigningRequest).' },
  TEMPLATE_OVERRIDE_INVALID: { kind: 'invalid', description: 'OverrideSettings names an unknown property or action, or MERGE where it is not allowed.' },
  TEMPLATE_DEVICE_CONFIGURATION_INVALID: { kind: 'invalid', description: 'DeviceConfiguration is not a flat map of strings, numbers and booleans.' },
  // ── parse time: intrinsic functions ─────────────────────────────────────────────────────────────────
  TEMPLATE_FUNCTION_UNKNOWN: { kind: 'invalid', description: 'The template calls an intrinsic function that provisioning templates do not support.' },
  TEMPLATE_FUNCTION_NOT_ALLOWED: { kind: 'invalid', description: 'An intrinsic function is used where it is not allowed (e.g. a condition function in a property).' },
  TEMPLATE_FUNCTION_ARGUMENTS: { kind: 'invalid', description: 'An intrinsic function has arguments of the wrong number or shape.' },
  TEMPLATE_REF_UNKNOWN: { kind: 'invalid', description: 'A Ref or ${} names neither a parameter, a pseudo parameter nor a resource.' },
  TEMPLATE_REF_CIRCULAR: { kind: 'invalid', description: 'Resources reference each other in a cycle.' },
  // ── evaluation time ─────────────────────────────────────────────────────────────────────────────────
  TEMPLATE_PARAMETER_MISSING: { kind: 'invalid', description: 'A declared parameter has no value and no default.' },
  TEMPLATE_PARAMETER_UNKNOWN: { kind: 'invalid', description: 'A parameter was supplied that the template does not declare.' },
  TEMPLATE_PARAMETER_TOO_LARGE: { kind: 'too_large', description: 'A parameter key is longer than 2048 characters or its value longer than 4096.' },
  TEMPLATE_PARAMETER_VALUE_INVALID: { kind: 'invalid', description: 'A parameter value is not a string, or not a number for a Number parameter.' },
  TEMPLATE_PARAMETER_RESERVED: { kind: 'invalid', description: 'The parameters try to set AWS::IoT::Certificate::Id, which only the service fills.' },
  TEMPLATE_EVALUATION_FAILED: { kind: 'invalid', description: 'An intrinsic function failed (e.g. Fn::Select out of range, missing Fn::FindInMap key, wrong value type).' },
  TEMPLATE_THING_NAME_INVALID: { kind: 'invalid', description: 'The thing name is not 1-128 characters of [a-zA-Z0-9:_-].' },
  TEMPLATE_RESOURCE_NAME_INVALID: { kind: 'invalid', description: 'A thing type, thing group, billing group or policy name breaks its naming rule.' },
  TEMPLATE_ATTRIBUTE_INVALID: { kind: 'invalid', description: 'A thing attribute name or value breaks the AWS attribute rules.' },
  TEMPLATE_CERTIFICATE_ID_INVALID: { kind: 'invalid', description: 'A certificate id is not 64 hexadecimal characters.' },
  TEMPLATE_CERTIFICATE_ID_MISMATCH: { kind: 'forbidden', description: 'The template names a certificate other than the one being provisioned.' },
});

/** Every template error code. */
export type TemplateErrorCode = keyof typeof TemplateErrors.specs;

/**
 * The AWS IoT provisioning template language (protocols.md "AWS provisioning templates"): parse and validate
 * a template when it is created, evaluate it per request into a JSON `ResourcePlan` for the registry.
 * Pure: no I/O, no database, no logger.
 */
export { parseTemplate, type ParseTemplateOptions } from './parse-template.ts';
export { TemplateCache, DEFAULT_TEMPLATE_CACHE_SIZE } from './template-cache.ts';
export { evaluateTemplate, type EvaluateTemplateInput, type EvaluateTemplateOptions } from './evaluate-template.ts';
export { TemplateErrors, type TemplateErrorCode } from './errors.ts';
export {
  CERTIFICATE_ID_PARAMETER,
  CERTIFICATE_PARAMETERS,
  DEFAULT_MAX_TEMPLATE_LENGTH,
  STORED_TEMPLATE_MAX_LENGTH,
  MAX_PARAMETER_KEY_LENGTH,
  MAX_PARAMETER_VALUE_LENGTH,
  TEMPLATE_NAME_PATTERN,
} from './naming-rules.ts';
export type {
  CertificateOverride,
  ConditionExpression,
  MappingValue,
  NonMergeOverrideAction,
  OverrideAction,
  ProvisioningTemplate,
  ProvisioningTemplateType,
  RefTarget,
  SubPart,
  TemplateCertificateResource,
  TemplateCertificateSource,
  TemplateExpression,
  TemplateParameter,
  TemplateParameterType,
  TemplatePolicyResource,
  TemplateResource,
  TemplateResourceType,
  TemplateScalar,
  TemplateThingResource,
  ThingOverride,
} from './provisioning-template.ts';
export type {
  CertificatePlan,
  CertificatePlanSource,
  DeviceConfigurationValue,
  PlannedCertificateStatus,
  PolicyPlan,
  PolicyPlanSource,
  ResourcePlan,
  ThingPlan,
} from './resource-plan.ts';

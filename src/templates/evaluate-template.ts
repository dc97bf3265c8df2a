/**
 * `evaluateTemplate`: runs a parsed provisioning template against one request's parameters and returns the
 * `ResourcePlan` the registry applies (protocols.md "AWS provisioning templates").
 *
 * Parameters come from the device (fleet provisioning RegisterThing), the device certificate (JITP) or a bulk
 * file, so every computed name is checked against the AWS naming rules before it reaches the plan, and
 * `AWS::IoT::Certificate::Id` is only ever taken from the service (`input.certificateId`), never from them.
 * Pure: no I/O, and the same template and input always give the same plan.
 */
import { createHash } from 'node:crypto';
import { appendPath, ROOT_PATH } from './json-path.ts';
import { isJsonObject } from './json-value.ts';
import {
  CERTIFICATE_ID_PARAMETER,
  CERTIFICATE_ID_PATTERN,
  CERTIFICATE_PARAMETERS,
  checkAttributeValue,
  checkCertificateId,
  checkCertificateStatus,
  checkGroupLikeName,
  checkPolicyDocument,
  checkPolicyName,
  checkThingName,
  MAX_PARAMETER_KEY_LENGTH,
  MAX_PARAMETER_VALUE_LENGTH,
} from './naming-rules.ts';
import type {
  ConditionExpression,
  MappingValue,
  ProvisioningTemplate,
  RefTarget,
  TemplateCertificateResource,
  TemplateExpression,
  TemplatePolicyResource,
  TemplateResource,
  TemplateThingResource,
} from './provisioning-template.ts';
import type {
  CertificatePlan,
  CertificatePlanSource,
  DeviceConfigurationValue,
  PlannedCertificateStatus,
  PolicyPlan,
  PolicyPlanSource,
  ResourcePlan,
  ThingPlan,
} from './resource-plan.ts';
import { clip, templateError } from './template-error.ts';

/** What one provisioning request supplies. */
export interface EvaluateTemplateInput {
  /**
   * Parameter values: RegisterThing `parameters` (fleet), the certificate subject fields under their
   * `AWS::IoT::Certificate::*` names (JITP), or one line of a bulk file. Keys ≤ 2048, values ≤ 4096 characters.
   */
  readonly parameters: Readonly<Record<string, string>>;
  /** The certificate being provisioned (SHA-256 of its DER, hex); the only source of `AWS::IoT::Certificate::Id`. */
  readonly certificateId?: string;
}

/** Options of `evaluateTemplate`. */
export interface EvaluateTemplateOptions {
  /**
   * Refuse parameters the template does not declare (TEMPLATE_PARAMETER_UNKNOWN). Off by default, as AWS
   * ignores them; for JITP the `AWS::IoT::Certificate::*` fields are always tolerated.
   */
  readonly rejectUnknownParameters?: boolean;
}

/** `AWS::NoValue`: removes the enclosing property or list element. Never leaves this module. */
const NO_VALUE: unique symbol = Symbol('AWS::NoValue');

/** An evaluated value: a scalar, a list, an object (inline policy documents), or NO_VALUE. */
type Value = string | number | boolean | null | readonly Value[] | ValueObject | typeof NO_VALUE;
interface ValueObject {
  readonly [key: string]: Value;
}

const NUMBER_PATTERN = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;
/**
 * What a parameter may not hold inside a policy document: JSON structure (quote, backslash, control
 * characters), policy wildcards (`*`, `?`) and policy variables (`${`). A device-supplied serial number
 * interpolated into `topic/${SerialNumber}` must not turn into `topic/*`.
 */
const UNSAFE_IN_POLICY = /["\\\u0000-\u001f*?]|\$\{/;

/** Evaluates `template` for one request and returns the plan to apply. */
export function evaluateTemplate(
  template: ProvisioningTemplate,
  input: EvaluateTemplateInput,
  options: EvaluateTemplateOptions = {},
): ResourcePlan {
  const certificateId = normaliseCertificateId(input.certificateId);
  checkInputParameters(template, input.parameters, certificateId, options.rejectUnknownParameters ?? false);
  const parameters = resolveParameters(template, input.parameters, certificateId);
  const evaluator = new Evaluator(template, input.parameters, parameters, certificateId);
  return evaluator.plan();
}

function normaliseCertificateId(certificateId: string | undefined): string | undefined {
  if (certificateId === undefined) return undefined;
  if (!CERTIFICATE_ID_PATTERN.test(certificateId)) {
    throw templateError('TEMPLATE_CERTIFICATE_ID_INVALID', 'The certificate id of the request must be 64 hexadecimal characters', undefined, {
      certificateId: clip(certificateId),
    });
  }
  return certificateId.toLowerCase();
}

function checkInputParameters(
  template: ProvisioningTemplate,
  supplied: Readonly<Record<string, string>>,
  certificateId: string | undefined,
  rejectUnknown: boolean,
): void {
  const declared = new Set(template.parameters.map((parameter) => parameter.name));
  for (const [key, value] of Object.entries(supplied) as [string, unknown][]) {
    if (key.length > MAX_PARAMETER_KEY_LENGTH) {
      throw templateError('TEMPLATE_PARAMETER_TOO_LARGE', `A parameter name is longer than ${MAX_PARAMETER_KEY_LENGTH} characters`, undefined, {
        parameter: clip(key, 64),
        length: key.length,
      });
    }
    if (typeof value !== 'string') {
      throw templateError('TEMPLATE_PARAMETER_VALUE_INVALID', 'Parameter values must be strings', undefined, { parameter: clip(key) });
    }
    if (value.length > MAX_PARAMETER_VALUE_LENGTH) {
      throw templateError('TEMPLATE_PARAMETER_TOO_LARGE', `A parameter value is longer than ${MAX_PARAMETER_VALUE_LENGTH} characters`, undefined, {
        parameter: clip(key),
        length: value.length,
      });
    }
    if (key === CERTIFICATE_ID_PARAMETER) {
      if (certificateId === undefined || value.toLowerCase() !== certificateId) {
        throw templateError('TEMPLATE_PARAMETER_RESERVED', 'AWS::IoT::Certificate::Id is filled by the service and cannot be supplied', undefined, {
          parameter: key,
        });
      }
      continue;
    }
    const tolerated = template.type === 'JITP' && CERTIFICATE_PARAMETERS.has(key);
    if (rejectUnknown && !declared.has(key) && !tolerated) {
      throw templateError('TEMPLATE_PARAMETER_UNKNOWN', `The template does not declare the parameter ${JSON.stringify(clip(key, 64))}`, undefined, { parameter: clip(key) });
    }
  }
}

/** The effective value of every declared parameter; fails on the first one without value or default. */
function resolveParameters(
  template: ProvisioningTemplate,
  supplied: Readonly<Record<string, string>>,
  certificateId: string | undefined,
): Map<string, string> {
  const values = new Map<string, string>();
  for (const parameter of template.parameters) {
    const path = appendPath(appendPath(ROOT_PATH, 'Parameters'), parameter.name);
    const value =
      parameter.name === CERTIFICATE_ID_PARAMETER
        ? certificateId
        : Object.hasOwn(supplied, parameter.name)
          ? supplied[parameter.name]
          : parameter.default;
    if (value === undefined) {
      throw templateError('TEMPLATE_PARAMETER_MISSING', `The parameter ${clip(parameter.name, 100)} has no value and no default`, path, {
        parameter: parameter.name,
      });
    }
    if (parameter.type === 'Number' && !NUMBER_PATTERN.test(value)) {
      throw templateError('TEMPLATE_PARAMETER_VALUE_INVALID', `The parameter ${clip(parameter.name, 100)} must be a number`, path, {
        parameter: parameter.name,
      });
    }
    values.set(parameter.name, value);
  }
  return values;
}

function evaluationError(message: string, path: string, details: Readonly<Record<string, unknown>> = {}): Error {
  return templateError('TEMPLATE_EVALUATION_FAILED', message, path, details);
}

function describe(value: Value): string {
  if (value === NO_VALUE) return 'AWS::NoValue';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** One evaluation: caches conditions and resource identities, so each is computed once. */
class Evaluator {
  private readonly conditions: ReadonlyMap<string, ConditionExpression>;
  private readonly mappings: ReadonlyMap<string, ReadonlyMap<string, ReadonlyMap<string, MappingValue>>>;
  private readonly resources: ReadonlyMap<string, TemplateResource>;
  private readonly conditionValues = new Map<string, boolean>();
  private readonly identities = new Map<string, string>();
  private readonly identitiesInProgress = new Set<string>();
  private readonly policySources = new Map<string, PolicyPlanSource>();
  /** True while a PolicyDocument is being evaluated: parameters are then checked by UNSAFE_IN_POLICY. */
  private inPolicyDocument = false;

  constructor(
    private readonly template: ProvisioningTemplate,
    private readonly supplied: Readonly<Record<string, string>>,
    private readonly parameters: ReadonlyMap<string, string>,
    private readonly certificateId: string | undefined,
  ) {
    this.conditions = new Map(template.conditions);
    this.mappings = new Map(template.mappings.map(([name, map]) => [name, new Map(map.map(([key, entry]) => [key, new Map(entry)]))]));
    this.resources = new Map(template.resources.map((resource) => [resource.logicalId, resource]));
  }

  /** Builds the plan in the JITP order: certificate, thing, policies, then the device configuration. */
  plan(): ResourcePlan {
    const included = this.template.resources.filter((resource) => this.isIncluded(resource));
    let certificate: CertificatePlan | undefined;
    let thing: ThingPlan | undefined;
    const policies: PolicyPlan[] = [];
    for (const resource of included) {
      if (resource.kind === 'certificate') certificate = this.certificatePlan(resource);
    }
    for (const resource of included) {
      if (resource.kind === 'thing') thing = this.thingPlan(resource);
    }
    for (const resource of included) {
      if (resource.kind === 'policy') policies.push({ logicalId: resource.logicalId, policy: this.policySource(resource) });
    }
    return {
      templateType: this.template.type,
      parameters: Object.fromEntries(this.parameters),
      ...(certificate === undefined ? {} : { certificate }),
      ...(thing === undefined ? {} : { thing }),
      policies,
      deviceConfiguration: this.deviceConfiguration(),
    };
  }

  // ── resources ───────────────────────────────────────────────────────────────────────────────────────

  private isIncluded(resource: TemplateResource): boolean {
    return resource.condition === undefined || this.condition(resource.condition);
  }

  private certificatePlan(resource: TemplateCertificateResource): CertificatePlan {
    const source = this.certificateSource(resource);
    if (source.kind === 'id' && this.certificateId !== undefined && source.certificateId !== this.certificateId) {
      throw templateError(
        'TEMPLATE_CERTIFICATE_ID_MISMATCH',
        'The template names a certificate other than the one being provisioned',
        appendPath(appendPath(resource.path, 'Properties'), 'CertificateId'),
      );
    }
    if (source.kind === 'id' && this.certificateId === undefined && this.template.type === 'FLEET_PROVISIONING') {
      // A fleet device must not be able to name the certificate through its own parameters.
      throw templateError('TEMPLATE_PARAMETER_MISSING', 'Fleet provisioning needs the certificate id of the request', resource.path, {
        parameter: CERTIFICATE_ID_PARAMETER,
      });
    }
    let status: PlannedCertificateStatus = 'ACTIVE';
    if (resource.status !== undefined) {
      const value = this.optionalString(resource.status);
      if (value !== undefined) {
        checkCertificateStatus(value, resource.status.path);
        status = value.toUpperCase() === 'INACTIVE' ? 'INACTIVE' : 'ACTIVE';
      }
    }
    return { logicalId: resource.logicalId, source, status, override: { ...resource.override } };
  }

  private certificateSource(resource: TemplateCertificateResource): CertificatePlanSource {
    const { source } = resource;
    switch (source.kind) {
      case 'id': {
        const id = this.requiredString(source.certificateId, 'CertificateId');
        checkCertificateId(id, source.certificateId.path);
        return { kind: 'id', certificateId: id.toLowerCase() };
      }
      case 'pem': {
        const certificatePem = this.requiredString(source.certificatePem, 'CertificatePem');
        checkPem(certificatePem, /-----BEGIN CERTIFICATE-----/, source.certificatePem.path, 'CertificatePem');
        const caCertificatePem = source.caCertificatePem === undefined ? undefined : this.optionalString(source.caCertificatePem);
        if (caCertificatePem !== undefined && source.caCertificatePem !== undefined) {
          checkPem(caCertificatePem, /-----BEGIN CERTIFICATE-----/, source.caCertificatePem.path, 'CACertificatePem');
        }
        return { kind: 'pem', certificatePem, ...(caCertificatePem === undefined ? {} : { caCertificatePem }) };
      }
      case 'csr': {
        const csr = this.requiredString(source.csr, 'CertificateSigningRequest');
        checkPem(csr, /-----BEGIN (NEW )?CERTIFICATE REQUEST-----/, source.csr.path, 'CertificateSigningRequest');
        return { kind: 'csr', csr };
      }
    }
  }

  private thingPlan(resource: TemplateThingResource): ThingPlan {
    const thingName = this.thingName(resource);
    const attributes: [string, string][] = [];
    for (const [attribute, expression] of resource.attributes) {
      const value = this.optionalString(expression);
      if (value === undefined) continue;
      checkAttributeValue(value, expression.path);
      attributes.push([attribute, value]);
    }
    const thingTypeName = this.optionalName(resource.thingTypeName, 'ThingTypeName');
    const billingGroup = this.optionalName(resource.billingGroup, 'BillingGroup');
    return {
      logicalId: resource.logicalId,
      thingName,
      attributes: Object.fromEntries(attributes),
      ...(thingTypeName === undefined ? {} : { thingTypeName }),
      thingGroups: this.thingGroups(resource.thingGroups),
      ...(billingGroup === undefined ? {} : { billingGroup }),
      override: { ...resource.override },
    };
  }

  private thingName(resource: TemplateThingResource): string {
    const name = this.requiredString(resource.thingName, 'ThingName');
    checkThingName(name, resource.thingName.path);
    return name;
  }

  private optionalName(expression: TemplateExpression | undefined, property: string): string | undefined {
    if (expression === undefined) return undefined;
    const name = this.optionalString(expression);
    if (name !== undefined) checkGroupLikeName(property)(name, expression.path);
    return name;
  }

  private thingGroups(expression: TemplateExpression | undefined): string[] {
    if (expression === undefined) return [];
    const value = this.evaluate(expression);
    if (value === NO_VALUE) return [];
    const groups = new Set<string>();
    this.list(value, expression.path).forEach((item, i) => {
      const path = expression.kind === 'list' ? (expression.items[i]?.path ?? expression.path) : expression.path;
      const group = this.string(item, path);
      checkGroupLikeName('ThingGroups')(group, path);
      groups.add(group);
    });
    return [...groups];
  }

  private policySource(resource: TemplatePolicyResource): PolicyPlanSource {
    const cached = this.policySources.get(resource.logicalId);
    if (cached !== undefined) return cached;
    let source: PolicyPlanSource;
    if (resource.policy.kind === 'name') {
      const policyName = this.requiredString(resource.policy.policyName, 'PolicyName');
      checkPolicyName(policyName, resource.policy.policyName.path);
      source = { kind: 'name', policyName };
    } else {
      const document = this.policyDocument(resource.policy.document);
      const hash = createHash('sha256').update(document).digest('hex');
      source = { kind: 'document', document, suggestedName: this.template.name === undefined ? hash : `${this.template.name}-${hash}` };
    }
    this.policySources.set(resource.logicalId, source);
    return source;
  }

  private policyDocument(expression: TemplateExpression): string {
    const value = this.withPolicyCheck(true, () => this.evaluate(expression));
    if (value === NO_VALUE) {
      throw templateError('TEMPLATE_PROPERTY_MISSING', 'PolicyDocument evaluated to AWS::NoValue', expression.path, { property: 'PolicyDocument' });
    }
    if (typeof value === 'string') return checkPolicyDocument(value, expression.path);
    if (isJsonObject(value)) return JSON.stringify(value);
    throw templateError('TEMPLATE_POLICY_DOCUMENT_INVALID', 'PolicyDocument must be a JSON object or a string holding one', expression.path);
  }

  /** What a `Ref` to a resource yields: a thing's name, a certificate's id, a policy's name. */
  private resourceIdentity(logicalId: string, path: string): string {
    const cached = this.identities.get(logicalId);
    if (cached !== undefined) return cached;
    const resource = this.resources.get(logicalId);
    if (resource === undefined) throw templateError('TEMPLATE_REF_UNKNOWN', 'Ref names an unknown resource', path, { name: logicalId });
    if (!this.isIncluded(resource)) {
      throw evaluationError('Ref names a resource that its condition left out', path, { name: logicalId });
    }
    if (this.identitiesInProgress.has(logicalId)) {
      throw templateError('TEMPLATE_REF_CIRCULAR', 'Resources reference each other in a cycle', path, { name: logicalId });
    }
    this.identitiesInProgress.add(logicalId);
    // Names and ids are checked by their own rules; parameters feeding them are not policy text.
    const identity = this.withPolicyCheck(false, () => this.computeIdentity(resource, logicalId, path));
    this.identitiesInProgress.delete(logicalId);
    this.identities.set(logicalId, identity);
    return identity;
  }

  private computeIdentity(resource: TemplateResource, logicalId: string, path: string): string {
    switch (resource.kind) {
      case 'thing':
        return this.thingName(resource);
      case 'certificate': {
        const source = this.certificateSource(resource);
        if (source.kind === 'id') return source.certificateId;
        if (this.certificateId !== undefined) return this.certificateId;
        throw evaluationError('The certificate id is not known before the certificate is registered', path, { name: logicalId });
      }
      case 'policy': {
        const source = this.policySource(resource);
        return source.kind === 'name' ? source.policyName : source.suggestedName;
      }
    }
  }

  /** Runs `action` with the policy-document check of parameters on or off, then restores it. */
  private withPolicyCheck<T>(enabled: boolean, action: () => T): T {
    const previous = this.inPolicyDocument;
    this.inPolicyDocument = enabled;
    try {
      return action();
    } finally {
      this.inPolicyDocument = previous;
    }
  }

  // ── device configuration ────────────────────────────────────────────────────────────────────────────

  private deviceConfiguration(): Record<string, DeviceConfigurationValue> {
    const entries: [string, DeviceConfigurationValue][] = [];
    for (const [key, expression] of this.template.deviceConfiguration) {
      const value = this.evaluate(expression);
      if (value === NO_VALUE) continue;
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
        throw templateError('TEMPLATE_DEVICE_CONFIGURATION_INVALID', `DeviceConfiguration values must be scalars, not ${describe(value)}`, expression.path, {
          key: clip(key),
        });
      }
      entries.push([key, value]);
    }
    return Object.fromEntries(entries);
  }

  // ── conditions ──────────────────────────────────────────────────────────────────────────────────────

  private condition(name: string): boolean {
    const cached = this.conditionValues.get(name);
    if (cached !== undefined) return cached;
    const condition = this.conditions.get(name);
    if (condition === undefined) {
      throw templateError('TEMPLATE_CONDITION_UNKNOWN', 'The condition is not declared', appendPath(ROOT_PATH, 'Conditions'), { condition: name });
    }
    const value = this.withPolicyCheck(false, () => this.test(condition));
    this.conditionValues.set(name, value);
    return value;
  }

  private test(condition: ConditionExpression): boolean {
    switch (condition.kind) {
      case 'equals':
        return this.comparable(condition.left) === this.comparable(condition.right);
      case 'not':
        return !this.test(condition.operand);
      case 'and':
        return condition.operands.every((operand) => this.test(operand));
      case 'or':
        return condition.operands.some((operand) => this.test(operand));
      case 'condition':
        return this.condition(condition.name);
    }
  }

  private comparable(expression: TemplateExpression): string {
    return this.string(this.evaluate(expression), expression.path);
  }

  // ── expressions ─────────────────────────────────────────────────────────────────────────────────────

  private evaluate(expression: TemplateExpression): Value {
    switch (expression.kind) {
      case 'literal':
        return expression.value;
      case 'list':
        return expression.items.map((item) => this.evaluate(item)).filter((item) => item !== NO_VALUE);
      case 'object': {
        const entries: [string, Value][] = [];
        for (const [key, item] of expression.entries) {
          const value = this.evaluate(item);
          if (value !== NO_VALUE) entries.push([key, value]);
        }
        return Object.fromEntries(entries);
      }
      case 'ref':
        return this.ref(expression.target, expression.path);
      case 'join': {
        const values = this.list(this.evaluate(expression.values), expression.values.path);
        return values.map((value) => this.string(value, expression.values.path)).join(expression.delimiter);
      }
      case 'select': {
        const index = this.index(this.evaluate(expression.index), expression.index.path);
        const values = this.list(this.evaluate(expression.values), expression.values.path);
        const value = values[index];
        if (value === undefined) {
          throw evaluationError('Fn::Select index is out of range', expression.index.path, { index, length: values.length });
        }
        return value;
      }
      case 'split':
        return this.string(this.evaluate(expression.source), expression.source.path).split(expression.delimiter);
      case 'findInMap':
        return this.findInMap(expression);
      case 'sub':
        return this.substitute(expression);
      case 'if':
        return this.condition(expression.condition) ? this.evaluate(expression.whenTrue) : this.evaluate(expression.whenFalse);
    }
  }

  private ref(target: RefTarget, path: string): Value {
    switch (target.kind) {
      case 'noValue':
        return NO_VALUE;
      case 'certificateId':
        if (this.certificateId === undefined) {
          throw templateError('TEMPLATE_PARAMETER_MISSING', 'AWS::IoT::Certificate::Id is not known for this request', path, {
            parameter: CERTIFICATE_ID_PARAMETER,
          });
        }
        return this.certificateId;
      case 'resource':
        return this.resourceIdentity(target.logicalId, path);
      case 'parameter':
        return this.parameter(target.name, path);
    }
  }

  private parameter(name: string, path: string): string {
    const value = this.parameterValue(name, path);
    if (this.inPolicyDocument && UNSAFE_IN_POLICY.test(value)) {
      throw templateError(
        'TEMPLATE_POLICY_PARAMETER_UNSAFE',
        `The parameter ${clip(name, 100)} holds characters that could change the policy document`,
        path,
        { parameter: name },
      );
    }
    return value;
  }

  private parameterValue(name: string, path: string): string {
    const declared = this.parameters.get(name);
    if (declared !== undefined) return declared;
    // JITP: an undeclared certificate field, which the certificate must provide.
    if (Object.hasOwn(this.supplied, name)) {
      const value = this.supplied[name];
      if (value !== undefined) return value;
    }
    throw templateError('TEMPLATE_PARAMETER_MISSING', `The parameter ${clip(name, 100)} has no value`, path, { parameter: name });
  }

  private findInMap(expression: Extract<TemplateExpression, { kind: 'findInMap' }>): Value {
    const mapName = this.string(this.evaluate(expression.mapName), expression.mapName.path);
    const topLevelKey = this.string(this.evaluate(expression.topLevelKey), expression.topLevelKey.path);
    const secondLevelKey = this.string(this.evaluate(expression.secondLevelKey), expression.secondLevelKey.path);
    const map = this.mappings.get(mapName);
    if (map === undefined) throw evaluationError('Fn::FindInMap names an unknown map', expression.mapName.path, { map: clip(mapName) });
    const entry = map.get(topLevelKey);
    if (entry === undefined) {
      throw evaluationError('Fn::FindInMap found no such top-level key', expression.topLevelKey.path, { map: mapName, key: clip(topLevelKey) });
    }
    const value = entry.get(secondLevelKey);
    if (value === undefined) {
      throw evaluationError('Fn::FindInMap found no such second-level key', expression.secondLevelKey.path, {
        map: mapName,
        key: clip(secondLevelKey),
      });
    }
    return typeof value === 'string' ? value : [...value];
  }

  private substitute(expression: Extract<TemplateExpression, { kind: 'sub' }>): string {
    const variables = new Map(expression.variables);
    let result = '';
    for (const part of expression.parts) {
      switch (part.kind) {
        case 'text':
          result += part.text;
          break;
        case 'variable': {
          const variable = variables.get(part.name);
          if (variable === undefined) throw evaluationError('Fn::Sub variable is not defined', expression.path, { name: part.name });
          result += this.string(this.evaluate(variable), variable.path);
          break;
        }
        case 'ref':
          result += this.string(this.ref(part.target, expression.path), expression.path);
          break;
      }
    }
    return result;
  }

  // ── value helpers ───────────────────────────────────────────────────────────────────────────────────

  /** A string value; numbers and booleans are written in decimal / `true` / `false`. */
  private string(value: Value, path: string): string {
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    throw evaluationError(`Expected a string, got ${describe(value)}`, path);
  }

  private list(value: Value, path: string): readonly Value[] {
    if (Array.isArray(value)) return value as readonly Value[];
    throw evaluationError(`Expected a list, got ${describe(value)}`, path);
  }

  private index(value: Value, path: string): number {
    const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value : undefined;
    if (text === undefined || !/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
      throw evaluationError('Fn::Select index must be a non-negative integer', path);
    }
    return Number(text);
  }

  private optionalString(expression: TemplateExpression): string | undefined {
    const value = this.evaluate(expression);
    return value === NO_VALUE ? undefined : this.string(value, expression.path);
  }

  private requiredString(expression: TemplateExpression, property: string): string {
    const value = this.optionalString(expression);
    if (value === undefined) throw templateError('TEMPLATE_PROPERTY_MISSING', `${property} evaluated to AWS::NoValue`, expression.path, { property });
    return value;
  }
}

function checkPem(text: string, header: RegExp, path: string, property: string): void {
  if (!header.test(text)) {
    throw templateError('TEMPLATE_CERTIFICATE_SOURCE_INVALID', `${property} is not a PEM of the expected kind`, path, { property });
  }
}

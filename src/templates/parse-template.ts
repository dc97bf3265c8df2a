/**
 * `parseTemplate`: validates a provisioning template when it is created (protocols.md "AWS provisioning
 * templates") and compiles it for `evaluateTemplate`. Everything that can be checked without the request's
 * parameters is checked here, so a bad template is refused at CreateProvisioningTemplate time rather than
 * when the first device arrives. Each error carries `details.path`.
 *
 * Sections: `Parameters`, `Mappings`, `Resources`, `Conditions` (Gatehouse extension) and, for fleet
 * provisioning only, `DeviceConfiguration`. AWS templates are accepted unchanged, including the forms AWS's own
 * examples use: `"Status": "Active"` (any case) and a `PolicyDocument` written as a JSON object.
 */
import { appendPath, ROOT_PATH } from './json-path.ts';
import { isFunctionCall, isJsonObject } from './json-value.ts';
import {
  ATTRIBUTE_NAME_PATTERN,
  CERTIFICATE_ID_PARAMETER,
  CERTIFICATE_PARAMETERS,
  checkAttributeValue,
  checkCertificateId,
  checkCertificateStatus,
  checkGroupLikeName,
  checkPolicyDocument,
  checkPolicyName,
  checkThingName,
  DEFAULT_MAX_TEMPLATE_LENGTH,
  NO_VALUE_PARAMETER,
  TEMPLATE_NAME_PATTERN,
} from './naming-rules.ts';
import {
  forEachConditionRef,
  forEachResourceRef,
  parseCondition,
  parseExpression,
  type ExpressionScope,
} from './parse-expression.ts';
import type {
  CertificateOverride,
  ConditionExpression,
  MappingValue,
  NonMergeOverrideAction,
  OverrideAction,
  ProvisioningTemplate,
  ProvisioningTemplateType,
  TemplateCertificateResource,
  TemplateCertificateSource,
  TemplateExpression,
  TemplateParameter,
  TemplatePolicyResource,
  TemplateResource,
  TemplateResourceType,
  TemplateThingResource,
  ThingOverride,
} from './provisioning-template.ts';
import { clip, templateError } from './template-error.ts';

/** Options of `parseTemplate`. */
export interface ParseTemplateOptions {
  readonly type: ProvisioningTemplateType;
  /** Maximum body length in characters (default 10240, the AWS limit). */
  readonly maxLength?: number;
  /** The template's name (1–36 of `[0-9A-Za-z_-]`); it prefixes the names of policies created from documents. */
  readonly name?: string;
}

/** How deep objects and arrays may nest; AWS templates need about 8. */
const MAX_DEPTH = 32;

const TEMPLATE_TYPES: ReadonlySet<string> = new Set<ProvisioningTemplateType>(['FLEET_PROVISIONING', 'JITP']);
const RESOURCE_TYPES: ReadonlyMap<string, TemplateResource['kind']> = new Map<TemplateResourceType, TemplateResource['kind']>([
  ['AWS::IoT::Thing', 'thing'],
  ['AWS::IoT::Certificate', 'certificate'],
  ['AWS::IoT::Policy', 'policy'],
]);
const RESOURCE_KEYS: ReadonlySet<string> = new Set(['Type', 'Properties', 'OverrideSettings', 'Condition']);
const THING_PROPERTIES: ReadonlySet<string> = new Set(['ThingName', 'AttributePayload', 'ThingTypeName', 'ThingGroups', 'BillingGroup']);
const CERTIFICATE_PROPERTIES: ReadonlySet<string> = new Set([
  'CertificateId',
  'CertificatePem',
  'CACertificatePem',
  'CertificateSigningRequest',
  'Status',
]);
const POLICY_PROPERTIES: ReadonlySet<string> = new Set(['PolicyName', 'PolicyDocument']);
const OVERRIDE_ACTIONS: ReadonlySet<string> = new Set<OverrideAction>(['DO_NOTHING', 'REPLACE', 'FAIL', 'MERGE']);
const NUMBER_PATTERN = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;

/** Parses and validates a template body (a JSON string, or the already-parsed object). */
export function parseTemplate(body: string | object, options: ParseTemplateOptions): ProvisioningTemplate {
  const { type, name } = options;
  if (!TEMPLATE_TYPES.has(type)) {
    throw templateError('TEMPLATE_TYPE_UNKNOWN', 'The template type must be FLEET_PROVISIONING or JITP', undefined, { type: String(type) });
  }
  if (name !== undefined && !TEMPLATE_NAME_PATTERN.test(name)) {
    throw templateError('TEMPLATE_NAME_INVALID', 'The template name must be 1-36 characters of [0-9A-Za-z_-]', undefined, { name: clip(name) });
  }
  const root = readBody(body, options.maxLength ?? DEFAULT_MAX_TEMPLATE_LENGTH);
  checkDepth(root, ROOT_PATH, 0);

  const allowedSections = ['Parameters', 'Mappings', 'Resources', 'Conditions'];
  if (type === 'FLEET_PROVISIONING') allowedSections.push('DeviceConfiguration');
  for (const key of Object.keys(root)) {
    if (!allowedSections.includes(key)) {
      const hint = key === 'DeviceConfiguration' ? 'DeviceConfiguration is only allowed in fleet provisioning templates' : `Unknown template section ${clip(key, 60)}`;
      throw templateError('TEMPLATE_SECTION_UNKNOWN', hint, appendPath(ROOT_PATH, key), { section: clip(key), allowed: allowedSections });
    }
  }

  const parameters = parseParameters(root['Parameters']);
  const mappings = parseMappings(root['Mappings']);
  const resourcesSection = root['Resources'];
  const resourcesPath = appendPath(ROOT_PATH, 'Resources');
  if (!isJsonObject(resourcesSection)) {
    throw templateError('TEMPLATE_SECTION_INVALID', 'Resources is required and must be an object', resourcesPath);
  }
  const resourceTypes = collectResourceTypes(resourcesSection, resourcesPath, parameters);
  const conditionsSection = root['Conditions'];
  const conditionNames = conditionNamesOf(conditionsSection);

  const baseScope = { type, parameters, mappings, conditions: conditionNames };
  const conditions = parseConditions(conditionsSection, { ...baseScope, resources: new Map(), section: 'Conditions' });
  const resourceScope: ExpressionScope = { ...baseScope, resources: resourceTypes, section: 'Resources' };
  const resources = Object.entries(resourcesSection).map(([logicalId, declaration]) =>
    parseResource(logicalId, declaration, appendPath(resourcesPath, logicalId), resourceScope),
  );
  checkResourceCycles(resources);
  const deviceConfiguration = parseDeviceConfiguration(root['DeviceConfiguration'], {
    ...baseScope,
    resources: resourceTypes,
    section: 'DeviceConfiguration',
  });

  const template: ProvisioningTemplate = {
    type,
    parameters: [...parameters.values()],
    mappings: [...mappings].map(([mapName, map]) => [mapName, [...map].map(([key, entry]) => [key, [...entry]] as const)] as const),
    conditions,
    resources,
    deviceConfiguration,
  };
  return name === undefined ? template : { ...template, name };
}

function readBody(body: string | object, maxLength: number): Readonly<Record<string, unknown>> {
  let text: string;
  if (typeof body === 'string') {
    text = body;
  } else {
    try {
      // JSON.stringify returns undefined (despite its type) for values such as functions.
      const serialised: unknown = JSON.stringify(body);
      text = typeof serialised === 'string' ? serialised : '';
    } catch (cause) {
      throw templateError('TEMPLATE_MALFORMED_JSON', 'The template body is not JSON', ROOT_PATH, {}, cause);
    }
  }
  if (text.length > maxLength) {
    throw templateError('TEMPLATE_TOO_LARGE', `The template body is longer than ${maxLength} characters`, ROOT_PATH, {
      length: text.length,
      maxLength,
    });
  }
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (cause) {
    throw templateError('TEMPLATE_MALFORMED_JSON', 'The template body is not valid JSON', ROOT_PATH, {}, cause);
  }
  if (!isJsonObject(root)) {
    throw templateError('TEMPLATE_MALFORMED_JSON', 'The template body must be a JSON object', ROOT_PATH);
  }
  return root;
}

function checkDepth(value: unknown, path: string, depth: number): void {
  if (depth > MAX_DEPTH) {
    throw templateError('TEMPLATE_NESTING_TOO_DEEP', `The template nests deeper than ${MAX_DEPTH} levels`, path);
  }
  if (Array.isArray(value)) {
    value.forEach((item: unknown, i) => checkDepth(item, appendPath(path, i), depth + 1));
  } else if (isJsonObject(value)) {
    for (const [key, item] of Object.entries(value)) checkDepth(item, appendPath(path, key), depth + 1);
  }
}

// ── Parameters ─────────────────────────────────────────────────────────────────────────────────────────

function parseParameters(section: unknown): Map<string, TemplateParameter> {
  const sectionPath = appendPath(ROOT_PATH, 'Parameters');
  const parameters = new Map<string, TemplateParameter>();
  if (section === undefined) return parameters;
  if (!isJsonObject(section)) {
    throw templateError('TEMPLATE_SECTION_INVALID', 'Parameters must be an object', sectionPath);
  }
  for (const [name, declaration] of Object.entries(section)) {
    const path = appendPath(sectionPath, name);
    if (name === '') throw templateError('TEMPLATE_PARAMETER_INVALID', 'A parameter name must not be empty', path);
    if (name.startsWith('AWS::') && !CERTIFICATE_PARAMETERS.has(name)) {
      throw templateError('TEMPLATE_PARAMETER_INVALID', 'Parameter names starting with AWS:: are reserved', path, { name: clip(name) });
    }
    if (!isJsonObject(declaration)) {
      throw templateError('TEMPLATE_PARAMETER_INVALID', 'A parameter must be an object with a Type', path, { name: clip(name) });
    }
    for (const key of Object.keys(declaration)) {
      if (key !== 'Type' && key !== 'Default' && key !== 'Description') {
        throw templateError('TEMPLATE_PARAMETER_INVALID', 'A parameter takes only Type, Default and Description', appendPath(path, key), {
          name: clip(name),
        });
      }
    }
    const type = declaration['Type'];
    if (type !== 'String' && type !== 'Number') {
      throw templateError('TEMPLATE_PARAMETER_INVALID', 'A parameter Type must be String or Number', appendPath(path, 'Type'), { name: clip(name) });
    }
    const description = declaration['Description'];
    if (description !== undefined && typeof description !== 'string') {
      throw templateError('TEMPLATE_PARAMETER_INVALID', 'A parameter Description must be a string', appendPath(path, 'Description'));
    }
    const parameter: TemplateParameter = {
      name,
      type,
      ...parseDefault(declaration['Default'], type, name, appendPath(path, 'Default')),
      ...(description === undefined ? {} : { description }),
    };
    parameters.set(name, parameter);
  }
  return parameters;
}

function parseDefault(value: unknown, type: 'String' | 'Number', name: string, path: string): { default?: string } {
  if (value === undefined) return {};
  if (name === CERTIFICATE_ID_PARAMETER) {
    throw templateError('TEMPLATE_PARAMETER_INVALID', 'AWS::IoT::Certificate::Id cannot have a default: the service fills it', path);
  }
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw templateError('TEMPLATE_PARAMETER_INVALID', 'A parameter Default must be a string or a number', path, { name: clip(name) });
  }
  const text = String(value);
  if (type === 'Number' && !NUMBER_PATTERN.test(text)) {
    throw templateError('TEMPLATE_PARAMETER_INVALID', 'The Default of a Number parameter must be a number', path, { name: clip(name) });
  }
  return { default: text };
}

// ── Mappings ───────────────────────────────────────────────────────────────────────────────────────────

function parseMappings(section: unknown): Map<string, Map<string, Map<string, MappingValue>>> {
  const sectionPath = appendPath(ROOT_PATH, 'Mappings');
  const mappings = new Map<string, Map<string, Map<string, MappingValue>>>();
  if (section === undefined) return mappings;
  if (!isJsonObject(section)) throw templateError('TEMPLATE_SECTION_INVALID', 'Mappings must be an object', sectionPath);
  for (const [mapName, map] of Object.entries(section)) {
    const mapPath = appendPath(sectionPath, mapName);
    if (!isJsonObject(map) || isFunctionCall(map)) {
      throw notLiteralMapping(map, mapPath, 'A map must be an object of top-level keys');
    }
    const entries = new Map<string, Map<string, MappingValue>>();
    for (const [topKey, entry] of Object.entries(map)) {
      const entryPath = appendPath(mapPath, topKey);
      if (!isJsonObject(entry) || isFunctionCall(entry)) {
        throw notLiteralMapping(entry, entryPath, 'A top-level key must hold an object of second-level keys');
      }
      const values = new Map<string, MappingValue>();
      for (const [secondKey, value] of Object.entries(entry)) {
        values.set(secondKey, mappingValue(value, appendPath(entryPath, secondKey)));
      }
      entries.set(topKey, values);
    }
    mappings.set(mapName, entries);
  }
  return mappings;
}

function mappingValue(value: unknown, path: string): MappingValue {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) {
    return value.map((item: unknown, i) => {
      if (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean') return String(item);
      throw notLiteralMapping(item, appendPath(path, i), 'A mapping list must hold only strings');
    });
  }
  throw notLiteralMapping(value, path, 'A mapping value must be a string or a list of strings');
}

function notLiteralMapping(value: unknown, path: string, message: string): Error {
  if (isFunctionCall(value)) {
    return templateError('TEMPLATE_FUNCTION_NOT_ALLOWED', 'Intrinsic functions and parameters cannot be used in Mappings', path);
  }
  return templateError('TEMPLATE_MAPPING_INVALID', message, path);
}

// ── Conditions ─────────────────────────────────────────────────────────────────────────────────────────

function conditionNamesOf(section: unknown): Set<string> {
  if (section === undefined) return new Set();
  if (!isJsonObject(section)) {
    throw templateError('TEMPLATE_SECTION_INVALID', 'Conditions must be an object', appendPath(ROOT_PATH, 'Conditions'));
  }
  return new Set(Object.keys(section));
}

function parseConditions(section: unknown, scope: ExpressionScope): (readonly [string, ConditionExpression])[] {
  if (!isJsonObject(section)) return [];
  const sectionPath = appendPath(ROOT_PATH, 'Conditions');
  const conditions = Object.entries(section).map(
    ([name, condition]) => [name, parseCondition(condition, appendPath(sectionPath, name), scope)] as const,
  );
  const byName = new Map(conditions);
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, trail: readonly string[]): void => {
    const seen = state.get(name);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      throw templateError('TEMPLATE_CONDITION_CIRCULAR', 'Conditions reference each other in a cycle', appendPath(sectionPath, name), {
        cycle: [...trail.slice(trail.indexOf(name)), name],
      });
    }
    state.set(name, 'visiting');
    const condition = byName.get(name);
    if (condition !== undefined) forEachConditionRef(condition, (next) => visit(next, [...trail, name]));
    state.set(name, 'done');
  };
  for (const [name] of conditions) visit(name, []);
  return conditions;
}

// ── Resources ──────────────────────────────────────────────────────────────────────────────────────────

function collectResourceTypes(
  section: Readonly<Record<string, unknown>>,
  sectionPath: string,
  parameters: ReadonlyMap<string, TemplateParameter>,
): Map<string, TemplateResourceType> {
  const types = new Map<string, TemplateResourceType>();
  const seenKinds = new Map<string, string>();
  for (const [logicalId, declaration] of Object.entries(section)) {
    const path = appendPath(sectionPath, logicalId);
    if (logicalId === '') throw templateError('TEMPLATE_RESOURCE_INVALID', 'A resource logical id must not be empty', path);
    if (parameters.has(logicalId) || logicalId.startsWith('AWS::') || logicalId === NO_VALUE_PARAMETER) {
      throw templateError('TEMPLATE_RESOURCE_INVALID', 'A resource logical id must differ from every parameter and pseudo parameter', path, {
        logicalId: clip(logicalId),
      });
    }
    if (!isJsonObject(declaration)) {
      throw templateError('TEMPLATE_RESOURCE_INVALID', 'A resource must be an object with a Type', path, { logicalId: clip(logicalId) });
    }
    const type = declaration['Type'];
    if (type === undefined) {
      throw templateError('TEMPLATE_RESOURCE_INVALID', 'A resource must have a Type', path, { logicalId: clip(logicalId) });
    }
    const kind = typeof type === 'string' ? RESOURCE_TYPES.get(type) : undefined;
    if (typeof type !== 'string' || kind === undefined) {
      throw templateError('TEMPLATE_RESOURCE_TYPE_UNKNOWN', 'Resource types are AWS::IoT::Thing, AWS::IoT::Certificate and AWS::IoT::Policy', appendPath(path, 'Type'), {
        type: typeof type === 'string' ? clip(type) : typeof type,
      });
    }
    if (kind !== 'policy') {
      const previous = seenKinds.get(kind);
      if (previous !== undefined) {
        throw templateError('TEMPLATE_RESOURCE_DUPLICATE', `A template declares at most one ${type}`, path, { logicalId: clip(logicalId), previous });
      }
      seenKinds.set(kind, logicalId);
    }
    types.set(logicalId, type as TemplateResourceType);
  }
  return types;
}

interface ResourceDeclaration {
  readonly properties: Readonly<Record<string, unknown>>;
  readonly propertiesPath: string;
  readonly override: Readonly<Record<string, unknown>> | undefined;
  readonly overridePath: string;
  readonly condition?: string;
}

function parseResource(logicalId: string, declaration: unknown, path: string, scope: ExpressionScope): TemplateResource {
  // collectResourceTypes already checked the object and its Type.
  const resource = isJsonObject(declaration) ? declaration : {};
  const type = RESOURCE_TYPES.get(String(resource['Type']));
  for (const key of Object.keys(resource)) {
    if (!RESOURCE_KEYS.has(key)) {
      throw templateError('TEMPLATE_RESOURCE_INVALID', 'A resource takes only Type, Properties, OverrideSettings and Condition', appendPath(path, key), {
        key: clip(key),
      });
    }
  }
  const propertiesPath = appendPath(path, 'Properties');
  const properties = resource['Properties'] ?? {};
  if (!isJsonObject(properties) || isFunctionCall(properties)) {
    throw templateError('TEMPLATE_RESOURCE_INVALID', 'Properties must be an object', propertiesPath);
  }
  const overridePath = appendPath(path, 'OverrideSettings');
  const override = resource['OverrideSettings'];
  if (override !== undefined && !isJsonObject(override)) {
    throw templateError('TEMPLATE_OVERRIDE_INVALID', 'OverrideSettings must be an object', overridePath);
  }
  const conditionPath = appendPath(path, 'Condition');
  const condition = resource['Condition'];
  if (condition !== undefined && typeof condition !== 'string') {
    throw templateError('TEMPLATE_RESOURCE_INVALID', 'Condition must name a condition', conditionPath);
  }
  if (condition !== undefined && !scope.conditions.has(condition)) {
    throw templateError('TEMPLATE_CONDITION_UNKNOWN', 'Condition names a condition that Conditions does not declare', conditionPath, { condition });
  }
  const parsed: ResourceDeclaration = {
    properties,
    propertiesPath,
    override,
    overridePath,
    ...(condition === undefined ? {} : { condition }),
  };
  switch (type) {
    case 'thing':
      return parseThing(logicalId, path, parsed, scope);
    case 'certificate':
      return parseCertificate(logicalId, path, parsed, scope);
    default:
      return parsePolicy(logicalId, path, parsed, scope);
  }
}

function checkPropertyNames(declaration: ResourceDeclaration, allowed: ReadonlySet<string>, type: string): void {
  for (const key of Object.keys(declaration.properties)) {
    if (!allowed.has(key)) {
      const unsupported = key === 'PackageVersions' ? ' (software package versions are not supported by Gatehouse)' : '';
      throw templateError('TEMPLATE_PROPERTY_UNKNOWN', `${type} does not take the property ${clip(key, 60)}${unsupported}`, appendPath(declaration.propertiesPath, key), {
        property: clip(key),
        allowed: [...allowed],
      });
    }
  }
}

/** A property that must hold one string: a literal scalar or a function call. */
function stringProperty(
  declaration: ResourceDeclaration,
  property: string,
  scope: ExpressionScope,
  check?: (literal: string, path: string) => void,
): TemplateExpression | undefined {
  const value = declaration.properties[property];
  if (value === undefined) return undefined;
  const path = appendPath(declaration.propertiesPath, property);
  if (value === null || Array.isArray(value) || (isJsonObject(value) && !isFunctionCall(value))) {
    throw templateError('TEMPLATE_PROPERTY_INVALID', `${property} must be a string or an intrinsic function`, path, { property });
  }
  const expression = parseExpression(value, path, scope);
  if (check !== undefined && expression.kind === 'literal' && expression.value !== null) check(String(expression.value), path);
  return expression;
}

function requiredStringProperty(
  declaration: ResourceDeclaration,
  property: string,
  scope: ExpressionScope,
  check?: (literal: string, path: string) => void,
): TemplateExpression {
  const expression = stringProperty(declaration, property, scope, check);
  if (expression === undefined) {
    throw templateError('TEMPLATE_PROPERTY_MISSING', `${property} is required`, appendPath(declaration.propertiesPath, property), { property });
  }
  return expression;
}

function parseThing(logicalId: string, path: string, declaration: ResourceDeclaration, scope: ExpressionScope): TemplateThingResource {
  checkPropertyNames(declaration, THING_PROPERTIES, 'AWS::IoT::Thing');
  const thingName = requiredStringProperty(declaration, 'ThingName', scope, checkThingName);
  const thingTypeName = stringProperty(declaration, 'ThingTypeName', scope, checkGroupLikeName('ThingTypeName'));
  const billingGroup = stringProperty(declaration, 'BillingGroup', scope, checkGroupLikeName('BillingGroup'));

  const attributes: (readonly [string, TemplateExpression])[] = [];
  const payload = declaration.properties['AttributePayload'];
  const payloadPath = appendPath(declaration.propertiesPath, 'AttributePayload');
  if (payload !== undefined) {
    if (!isJsonObject(payload) || isFunctionCall(payload)) {
      throw templateError('TEMPLATE_PROPERTY_INVALID', 'AttributePayload must be an object of attribute names and values', payloadPath, {
        property: 'AttributePayload',
      });
    }
    for (const [attribute, value] of Object.entries(payload)) {
      const attributePath = appendPath(payloadPath, attribute);
      if (!ATTRIBUTE_NAME_PATTERN.test(attribute)) {
        throw templateError('TEMPLATE_ATTRIBUTE_INVALID', 'An attribute name must be 1-128 characters of [a-zA-Z0-9_.,@/:#-]', attributePath, {
          attribute: clip(attribute),
        });
      }
      if (value === null || Array.isArray(value) || (isJsonObject(value) && !isFunctionCall(value))) {
        throw templateError('TEMPLATE_ATTRIBUTE_INVALID', 'An attribute value must be a string or an intrinsic function', attributePath, {
          attribute: clip(attribute),
        });
      }
      const expression = parseExpression(value, attributePath, scope);
      if (expression.kind === 'literal' && expression.value !== null) checkAttributeValue(String(expression.value), attributePath);
      attributes.push([attribute, expression]);
    }
  }

  let thingGroups: TemplateExpression | undefined;
  const groups = declaration.properties['ThingGroups'];
  const groupsPath = appendPath(declaration.propertiesPath, 'ThingGroups');
  if (groups !== undefined) {
    if (!Array.isArray(groups) && !isFunctionCall(groups)) {
      throw templateError('TEMPLATE_PROPERTY_INVALID', 'ThingGroups must be a list of group names', groupsPath, { property: 'ThingGroups' });
    }
    if (Array.isArray(groups)) {
      groups.forEach((group: unknown, i) => {
        const groupPath = appendPath(groupsPath, i);
        if (typeof group === 'string') checkGroupLikeName('ThingGroups')(group, groupPath);
        else if (!isFunctionCall(group)) {
          throw templateError('TEMPLATE_PROPERTY_INVALID', 'A thing group must be a string or an intrinsic function', groupPath, { property: 'ThingGroups' });
        }
      });
    }
    thingGroups = parseExpression(groups, groupsPath, scope);
  }

  const override = parseThingOverride(declaration);
  return {
    kind: 'thing',
    logicalId,
    path,
    ...(declaration.condition === undefined ? {} : { condition: declaration.condition }),
    thingName,
    attributes,
    ...(thingTypeName === undefined ? {} : { thingTypeName }),
    ...(thingGroups === undefined ? {} : { thingGroups }),
    ...(billingGroup === undefined ? {} : { billingGroup }),
    override,
  };
}

/** OverrideSettings keys of a thing: the property names of AWS's examples, or the upper-case names of its prose. */
const THING_OVERRIDE_KEYS: ReadonlyMap<string, keyof ThingOverride> = new Map<string, keyof ThingOverride>([
  ['AttributePayload', 'attributes'],
  ['ATTRIBUTE_PAYLOAD', 'attributes'],
  ['ThingTypeName', 'thingTypeName'],
  ['THING_TYPE_NAME', 'thingTypeName'],
  ['ThingGroups', 'thingGroups'],
  ['THING_GROUPS', 'thingGroups'],
]);

function overrideAction(value: unknown, path: string, key: string): OverrideAction {
  if (typeof value !== 'string' || !OVERRIDE_ACTIONS.has(value)) {
    throw templateError('TEMPLATE_OVERRIDE_INVALID', 'An override action must be DO_NOTHING, REPLACE, FAIL or MERGE', path, { property: key });
  }
  return value as OverrideAction;
}

function nonMergeOverrideAction(value: unknown, path: string, key: string): NonMergeOverrideAction {
  const action = overrideAction(value, path, key);
  if (action === 'MERGE') {
    throw templateError('TEMPLATE_OVERRIDE_INVALID', 'MERGE is only allowed for ThingGroups and AttributePayload', path, { property: key });
  }
  return action;
}

function parseThingOverride(declaration: ResourceDeclaration): ThingOverride {
  const result: { attributes: OverrideAction; thingTypeName: NonMergeOverrideAction; thingGroups: OverrideAction } = {
    attributes: 'DO_NOTHING',
    thingTypeName: 'DO_NOTHING',
    thingGroups: 'DO_NOTHING',
  };
  const seen = new Set<keyof ThingOverride>();
  for (const [key, value] of Object.entries(declaration.override ?? {})) {
    const path = appendPath(declaration.overridePath, key);
    const field = THING_OVERRIDE_KEYS.get(key);
    if (field === undefined) {
      throw templateError('TEMPLATE_OVERRIDE_INVALID', 'A thing overrides only AttributePayload, ThingTypeName and ThingGroups', path, { property: clip(key) });
    }
    if (seen.has(field)) throw templateError('TEMPLATE_OVERRIDE_INVALID', 'The same override is given twice', path, { property: key });
    seen.add(field);
    if (field === 'thingTypeName') result.thingTypeName = nonMergeOverrideAction(value, path, key);
    else result[field] = overrideAction(value, path, key);
  }
  return result;
}

function parseCertificate(logicalId: string, path: string, declaration: ResourceDeclaration, scope: ExpressionScope): TemplateCertificateResource {
  checkPropertyNames(declaration, CERTIFICATE_PROPERTIES, 'AWS::IoT::Certificate');
  const { properties, propertiesPath } = declaration;
  const named = ['CertificateId', 'CertificatePem', 'CertificateSigningRequest'].filter((key) => properties[key] !== undefined);
  if (named.length !== 1) {
    throw templateError(
      'TEMPLATE_CERTIFICATE_SOURCE_INVALID',
      'A certificate needs exactly one of CertificateId, CertificatePem and CertificateSigningRequest',
      propertiesPath,
      { given: named },
    );
  }
  if (properties['CACertificatePem'] !== undefined && properties['CertificatePem'] === undefined) {
    throw templateError('TEMPLATE_CERTIFICATE_SOURCE_INVALID', 'CACertificatePem is only allowed with CertificatePem', appendPath(propertiesPath, 'CACertificatePem'));
  }
  if (scope.type === 'FLEET_PROVISIONING' && properties['CertificateId'] === undefined) {
    throw templateError('TEMPLATE_CERTIFICATE_SOURCE_INVALID', 'Fleet provisioning templates name the certificate by CertificateId', propertiesPath, {
      given: named,
    });
  }
  let source: TemplateCertificateSource;
  const certificateId = stringProperty(declaration, 'CertificateId', scope, checkCertificateId);
  const certificatePem = stringProperty(declaration, 'CertificatePem', scope);
  const csr = stringProperty(declaration, 'CertificateSigningRequest', scope);
  if (certificateId !== undefined) {
    source = { kind: 'id', certificateId };
  } else if (certificatePem !== undefined) {
    const caCertificatePem = stringProperty(declaration, 'CACertificatePem', scope);
    source = { kind: 'pem', certificatePem, ...(caCertificatePem === undefined ? {} : { caCertificatePem }) };
  } else if (csr !== undefined) {
    source = { kind: 'csr', csr };
  } else {
    throw templateError('TEMPLATE_CERTIFICATE_SOURCE_INVALID', 'A certificate needs a source', propertiesPath);
  }
  const status = stringProperty(declaration, 'Status', scope, checkCertificateStatus);
  return {
    kind: 'certificate',
    logicalId,
    path,
    ...(declaration.condition === undefined ? {} : { condition: declaration.condition }),
    source,
    ...(status === undefined ? {} : { status }),
    override: parseCertificateOverride(declaration),
  };
}

function parseCertificateOverride(declaration: ResourceDeclaration): CertificateOverride {
  let status: NonMergeOverrideAction = 'DO_NOTHING';
  let seen = false;
  for (const [key, value] of Object.entries(declaration.override ?? {})) {
    const path = appendPath(declaration.overridePath, key);
    if (key !== 'Status' && key !== 'STATUS') {
      throw templateError('TEMPLATE_OVERRIDE_INVALID', 'A certificate overrides only Status', path, { property: clip(key) });
    }
    if (seen) throw templateError('TEMPLATE_OVERRIDE_INVALID', 'The same override is given twice', path, { property: key });
    seen = true;
    status = nonMergeOverrideAction(value, path, key);
  }
  return { status };
}

function parsePolicy(logicalId: string, path: string, declaration: ResourceDeclaration, scope: ExpressionScope): TemplatePolicyResource {
  checkPropertyNames(declaration, POLICY_PROPERTIES, 'AWS::IoT::Policy');
  if (declaration.override !== undefined) {
    throw templateError('TEMPLATE_OVERRIDE_INVALID', 'OverrideSettings are not available for policy resources', declaration.overridePath);
  }
  const { properties, propertiesPath } = declaration;
  const document = properties['PolicyDocument'];
  if (properties['PolicyName'] !== undefined && document !== undefined) {
    throw templateError('TEMPLATE_POLICY_NAME_AND_DOCUMENT', 'A policy takes PolicyName or PolicyDocument, not both', propertiesPath);
  }
  const condition = declaration.condition === undefined ? {} : { condition: declaration.condition };
  const policyName = stringProperty(declaration, 'PolicyName', scope, checkPolicyName);
  if (policyName !== undefined) {
    return { kind: 'policy', logicalId, path, ...condition, policy: { kind: 'name', policyName } };
  }
  if (document === undefined) {
    throw templateError('TEMPLATE_PROPERTY_MISSING', 'A policy needs PolicyName or PolicyDocument', propertiesPath, { property: 'PolicyDocument' });
  }
  const documentPath = appendPath(propertiesPath, 'PolicyDocument');
  if (typeof document === 'string') {
    checkPolicyDocument(document, documentPath);
  } else if (!isJsonObject(document)) {
    throw templateError('TEMPLATE_POLICY_DOCUMENT_INVALID', 'PolicyDocument must be a JSON object or a string holding one', documentPath);
  }
  return { kind: 'policy', logicalId, path, ...condition, policy: { kind: 'document', document: parseExpression(document, documentPath, scope) } };
}

/** Fails with TEMPLATE_REF_CIRCULAR when resources need each other's names (e.g. a thing named after itself). */
function checkResourceCycles(resources: readonly TemplateResource[]): void {
  const edges = new Map<string, string[]>();
  for (const resource of resources) {
    const targets: string[] = [];
    for (const expression of identityExpressions(resource)) forEachResourceRef(expression, (id) => targets.push(id));
    edges.set(resource.logicalId, targets);
  }
  const byId = new Map(resources.map((resource) => [resource.logicalId, resource]));
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (id: string, trail: readonly string[]): void => {
    const seen = state.get(id);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      throw templateError('TEMPLATE_REF_CIRCULAR', 'Resources reference each other in a cycle', byId.get(id)?.path, {
        cycle: [...trail.slice(trail.indexOf(id)), id],
      });
    }
    state.set(id, 'visiting');
    for (const next of edges.get(id) ?? []) visit(next, [...trail, id]);
    state.set(id, 'done');
  };
  for (const resource of resources) visit(resource.logicalId, []);
}

/** The expressions that compute what a `Ref` to the resource yields (its name or id). */
export function identityExpressions(resource: TemplateResource): TemplateExpression[] {
  switch (resource.kind) {
    case 'thing':
      return [resource.thingName];
    case 'certificate':
      return resource.source.kind === 'id' ? [resource.source.certificateId] : [];
    case 'policy':
      return resource.policy.kind === 'name' ? [resource.policy.policyName] : [resource.policy.document];
  }
}

// ── DeviceConfiguration ────────────────────────────────────────────────────────────────────────────────

function parseDeviceConfiguration(section: unknown, scope: ExpressionScope): (readonly [string, TemplateExpression])[] {
  if (section === undefined) return [];
  const sectionPath = appendPath(ROOT_PATH, 'DeviceConfiguration');
  if (!isJsonObject(section) || isFunctionCall(section)) {
    throw templateError('TEMPLATE_DEVICE_CONFIGURATION_INVALID', 'DeviceConfiguration must be an object', sectionPath);
  }
  return Object.entries(section).map(([key, value]) => {
    const path = appendPath(sectionPath, key);
    const scalar = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
    if (!scalar && !isFunctionCall(value)) {
      throw templateError('TEMPLATE_DEVICE_CONFIGURATION_INVALID', 'DeviceConfiguration values must be strings, numbers, booleans or intrinsic functions (no nested objects)', path, {
        key: clip(key),
      });
    }
    return [key, parseExpression(value, path, scope)] as const;
  });
}

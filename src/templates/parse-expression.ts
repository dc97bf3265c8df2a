/**
 * Compiles template values into `TemplateExpression` / `ConditionExpression` trees (provisioning templates,
 * "Intrinsic functions"): `Ref`, `Fn::Join`, `Fn::Select`, `Fn::FindInMap`, `Fn::Split`, `Fn::Sub`, and the
 * Gatehouse extension `Fn::If` with the condition functions `Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`.
 *
 * Every name is resolved here, so a template that parses cannot meet an unknown reference when evaluated.
 * As in CloudFormation, an object whose single key is `Ref` or starts with `Fn::` is a function call.
 */
import { appendPath } from './json-path.ts';
import { isFunctionCall, isJsonObject } from './json-value.ts';
import {
  CERTIFICATE_ID_PARAMETER,
  CERTIFICATE_PARAMETERS,
  NO_VALUE_PARAMETER,
} from './naming-rules.ts';
import type {
  ConditionExpression,
  MappingValue,
  ProvisioningTemplateType,
  RefTarget,
  SubPart,
  TemplateExpression,
  TemplateParameter,
  TemplateResourceType,
} from './provisioning-template.ts';
import { templateError } from './template-error.ts';

/** What names an expression may use; it differs between sections. */
export interface ExpressionScope {
  readonly type: ProvisioningTemplateType;
  readonly parameters: ReadonlyMap<string, TemplateParameter>;
  /** Logical ids a `Ref` may name; empty in the Conditions section. */
  readonly resources: ReadonlyMap<string, TemplateResourceType>;
  readonly mappings: ReadonlyMap<string, ReadonlyMap<string, ReadonlyMap<string, MappingValue>>>;
  readonly conditions: ReadonlySet<string>;
  /** Where the expression sits, for messages: 'Resources', 'Conditions', 'DeviceConfiguration'. */
  readonly section: 'Resources' | 'Conditions' | 'DeviceConfiguration';
}

const SUPPORTED_FUNCTIONS = new Set(['Ref', 'Fn::Join', 'Fn::Select', 'Fn::FindInMap', 'Fn::Split', 'Fn::Sub', 'Fn::If']);
const CONDITION_FUNCTIONS = new Set(['Fn::Equals', 'Fn::Not', 'Fn::And', 'Fn::Or']);
const MAX_CONDITION_OPERANDS = 10;

/** The single key and argument of a function call, after checking it has exactly one key. */
function functionCall(value: Readonly<Record<string, unknown>>, path: string): [string, unknown] {
  const keys = Object.keys(value);
  const [name] = keys;
  if (keys.length !== 1 || name === undefined) {
    throw templateError('TEMPLATE_FUNCTION_ARGUMENTS', 'An intrinsic function object must have exactly one key', path, {
      keys: keys.slice(0, 10),
    });
  }
  return [name, value[name]];
}

/** Compiles any template value: literals, lists, objects and function calls. */
export function parseExpression(value: unknown, path: string, scope: ExpressionScope): TemplateExpression {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return { kind: 'literal', path, value };
  }
  if (Array.isArray(value)) {
    return { kind: 'list', path, items: value.map((item: unknown, i) => parseExpression(item, appendPath(path, i), scope)) };
  }
  if (!isJsonObject(value)) {
    throw templateError('TEMPLATE_MALFORMED_JSON', 'The template holds a value that is not JSON', path);
  }
  if (!isFunctionCall(value)) {
    return {
      kind: 'object',
      path,
      entries: Object.entries(value).map(([key, item]) => [key, parseExpression(item, appendPath(path, key), scope)] as const),
    };
  }
  const [name, argument] = functionCall(value, path);
  const argumentPath = appendPath(path, name);
  switch (name) {
    case 'Ref':
      return parseRef(argument, path, argumentPath, scope);
    case 'Fn::Join':
      return parseJoin(argument, path, argumentPath, scope);
    case 'Fn::Select':
      return parseSelect(argument, path, argumentPath, scope);
    case 'Fn::Split':
      return parseSplit(argument, path, argumentPath, scope);
    case 'Fn::FindInMap':
      return parseFindInMap(argument, path, argumentPath, scope);
    case 'Fn::Sub':
      return parseSub(argument, path, argumentPath, scope);
    case 'Fn::If':
      return parseIf(argument, path, argumentPath, scope);
    default:
      if (CONDITION_FUNCTIONS.has(name)) {
        throw templateError('TEMPLATE_FUNCTION_NOT_ALLOWED', `${name} may only be used in the Conditions section`, path, { function: name });
      }
      throw templateError('TEMPLATE_FUNCTION_UNKNOWN', `Provisioning templates do not support ${name}`, path, {
        function: name,
        supported: [...SUPPORTED_FUNCTIONS],
      });
  }
}

/** Resolves a `Ref` name in `scope`, or fails with TEMPLATE_REF_UNKNOWN. */
export function resolveRef(name: string, path: string, scope: ExpressionScope): RefTarget {
  if (name === NO_VALUE_PARAMETER) {
    if (scope.section === 'Conditions') {
      throw templateError('TEMPLATE_REF_UNKNOWN', 'AWS::NoValue cannot be used in Conditions', path, { name });
    }
    return { kind: 'noValue' };
  }
  if (name === CERTIFICATE_ID_PARAMETER) return { kind: 'certificateId' };
  if (scope.parameters.has(name)) return { kind: 'parameter', name };
  // JITP: the certificate's subject fields may be referenced without being declared.
  if (scope.type === 'JITP' && CERTIFICATE_PARAMETERS.has(name)) return { kind: 'parameter', name };
  if (scope.resources.has(name)) return { kind: 'resource', logicalId: name };
  const where = scope.section === 'Conditions' ? 'a parameter' : 'a parameter, a pseudo parameter or a resource';
  throw templateError('TEMPLATE_REF_UNKNOWN', `Ref must name ${where}`, path, { name });
}

function parseRef(argument: unknown, path: string, argumentPath: string, scope: ExpressionScope): TemplateExpression {
  if (typeof argument !== 'string') {
    throw templateError('TEMPLATE_FUNCTION_ARGUMENTS', 'Ref takes the name of a parameter or resource', argumentPath);
  }
  return { kind: 'ref', path, name: argument, target: resolveRef(argument, argumentPath, scope) };
}

function argumentList(argument: unknown, argumentPath: string, name: string, min: number, max: number): readonly unknown[] {
  if (!Array.isArray(argument) || argument.length < min || argument.length > max) {
    const count = min === max ? `${min}` : `${min} to ${max}`;
    throw templateError('TEMPLATE_FUNCTION_ARGUMENTS', `${name} takes a list of ${count} arguments`, argumentPath, { function: name });
  }
  return argument;
}

/** A function argument that must be a string (literal or computed), not a list or object literal. */
function parseStringArgument(value: unknown, path: string, scope: ExpressionScope, name: string): TemplateExpression {
  if (value === null || Array.isArray(value) || (isJsonObject(value) && !isFunctionCall(value))) {
    throw templateError('TEMPLATE_FUNCTION_ARGUMENTS', `${name} expects a string here`, path, { function: name });
  }
  return parseExpression(value, path, scope);
}

/** A function argument that must be a list (literal or computed by a function). */
function parseListArgument(value: unknown, path: string, scope: ExpressionScope, name: string): TemplateExpression {
  if (!Array.isArray(value) && !isFunctionCall(value)) {
    throw templateError('TEMPLATE_FUNCTION_ARGUMENTS', `${name} expects a list here`, path, { function: name });
  }
  return parseExpression(value, path, scope);
}

function parseJoin(argument: unknown, path: string, argumentPath: string, scope: ExpressionScope): TemplateExpression {
  const [delimiter, values] = argumentList(argument, argumentPath, 'Fn::Join', 2, 2);
  if (typeof delimiter !== 'string') {
    throw templateError('TEMPLATE_FUNCTION_ARGUMENTS', 'Fn::Join takes a literal string delimiter', appendPath(argumentPath, 0));
  }
  return { kind: 'join', path, delimiter, values: parseListArgument(values, appendPath(argumentPath, 1), scope, 'Fn::Join') };
}

function parseSelect(argument: unknown, path: string, argumentPath: string, scope: ExpressionScope): TemplateExpression {
  const [index, values] = argumentList(argument, argumentPath, 'Fn::Select', 2, 2);
  const indexPath = appendPath(argumentPath, 0);
  const literalIndex = typeof index === 'number' ? index : typeof index === 'string' && /^\d+$/.test(index) ? Number(index) : undefined;
  if (typeof index === 'number' || typeof index === 'string') {
    if (literalIndex === undefined || !Number.isSafeInteger(literalIndex) || literalIndex < 0) {
      throw templateError('TEMPLATE_FUNCTION_ARGUMENTS', 'Fn::Select takes a non-negative integer index', indexPath);
    }
  } else if (!isFunctionCall(index)) {
    throw templateError('TEMPLATE_FUNCTION_ARGUMENTS', 'Fn::Select takes a non-negative integer index', indexPath);
  }
  const valuesPath = appendPath(argumentPath, 1);
  if (literalIndex !== undefined && Array.isArray(values) && literalIndex >= values.length) {
    throw templateError('TEMPLATE_FUNCTION_ARGUMENTS', 'Fn::Select index is out of range', indexPath, {
      index: literalIndex,
      length: values.length,
    });
  }
  return {
    kind: 'select',
    path,
    index: parseExpression(index, indexPath, scope),
    values: parseListArgument(values, valuesPath, scope, 'Fn::Select'),
  };
}

function parseSplit(argument: unknown, path: string, argumentPath: string, scope: ExpressionScope): TemplateExpression {
  const [delimiter, source] = argumentList(argument, argumentPath, 'Fn::Split', 2, 2);
  if (typeof delimiter !== 'string' || delimiter.length === 0) {
    throw templateError('TEMPLATE_FUNCTION_ARGUMENTS', 'Fn::Split takes a non-empty literal string delimiter', appendPath(argumentPath, 0));
  }
  return { kind: 'split', path, delimiter, source: parseStringArgument(source, appendPath(argumentPath, 1), scope, 'Fn::Split') };
}

function parseFindInMap(argument: unknown, path: string, argumentPath: string, scope: ExpressionScope): TemplateExpression {
  const [mapName, topLevelKey, secondLevelKey] = argumentList(argument, argumentPath, 'Fn::FindInMap', 3, 3);
  const expression: TemplateExpression = {
    kind: 'findInMap',
    path,
    mapName: parseStringArgument(mapName, appendPath(argumentPath, 0), scope, 'Fn::FindInMap'),
    topLevelKey: parseStringArgument(topLevelKey, appendPath(argumentPath, 1), scope, 'Fn::FindInMap'),
    secondLevelKey: parseStringArgument(secondLevelKey, appendPath(argumentPath, 2), scope, 'Fn::FindInMap'),
  };
  // Check at parse time whatever is literal: the map name, then the keys under it.
  if (typeof mapName === 'string') {
    const map = scope.mappings.get(mapName);
    if (map === undefined) {
      throw templateError('TEMPLATE_MAPPING_UNKNOWN', 'Fn::FindInMap names a map that Mappings does not declare', appendPath(argumentPath, 0), {
        map: mapName,
      });
    }
    if (typeof topLevelKey === 'string') {
      const entry = map.get(topLevelKey);
      if (entry === undefined) {
        throw templateError('TEMPLATE_MAPPING_UNKNOWN', 'Fn::FindInMap names a top-level key that the map does not have', appendPath(argumentPath, 1), {
          map: mapName,
          key: topLevelKey,
        });
      }
      if (typeof secondLevelKey === 'string' && !entry.has(secondLevelKey)) {
        throw templateError('TEMPLATE_MAPPING_UNKNOWN', 'Fn::FindInMap names a second-level key that the map does not have', appendPath(argumentPath, 2), {
          map: mapName,
          key: secondLevelKey,
        });
      }
    }
  }
  return expression;
}

function parseSub(argument: unknown, path: string, argumentPath: string, scope: ExpressionScope): TemplateExpression {
  let text: unknown = argument;
  let textPath = argumentPath;
  let variables: (readonly [string, TemplateExpression])[] = [];
  if (Array.isArray(argument)) {
    const [first, map] = argumentList(argument, argumentPath, 'Fn::Sub', 2, 2);
    text = first;
    textPath = appendPath(argumentPath, 0);
    const mapPath = appendPath(argumentPath, 1);
    if (!isJsonObject(map) || isFunctionCall(map)) {
      throw templateError('TEMPLATE_FUNCTION_ARGUMENTS', 'Fn::Sub takes a map of variables as its second argument', mapPath);
    }
    variables = Object.entries(map).map(
      ([name, value]) => [name, parseStringArgument(value, appendPath(mapPath, name), scope, 'Fn::Sub')] as const,
    );
  }
  if (typeof text !== 'string') {
    throw templateError('TEMPLATE_FUNCTION_ARGUMENTS', 'Fn::Sub takes a literal template string', textPath);
  }
  const variableNames = new Set(variables.map(([name]) => name));
  return { kind: 'sub', path, parts: parseSubString(text, textPath, variableNames, scope), variables };
}

/** Splits an `Fn::Sub` string into text and `${Name}` parts; `${!Text}` stands for the literal `${Text}`. */
function parseSubString(text: string, path: string, variableNames: ReadonlySet<string>, scope: ExpressionScope): SubPart[] {
  const parts: SubPart[] = [];
  let pending = '';
  let position = 0;
  while (position < text.length) {
    const open = text.indexOf('${', position);
    const close = open === -1 ? -1 : text.indexOf('}', open + 2);
    if (open === -1 || close === -1) {
      pending += text.slice(position);
      break;
    }
    pending += text.slice(position, open);
    const name = text.slice(open + 2, close);
    position = close + 1;
    if (name.startsWith('!')) {
      pending += `\${${name.slice(1)}}`;
      continue;
    }
    if (pending !== '') parts.push({ kind: 'text', text: pending });
    pending = '';
    if (variableNames.has(name)) {
      parts.push({ kind: 'variable', name });
      continue;
    }
    if (name.includes('.') && !scope.parameters.has(name)) {
      throw templateError('TEMPLATE_REF_UNKNOWN', 'Fn::Sub attribute references (${Resource.Attribute}) are not supported', path, { name });
    }
    const target = resolveRef(name, path, scope);
    if (target.kind === 'noValue') {
      throw templateError('TEMPLATE_FUNCTION_ARGUMENTS', 'Fn::Sub cannot substitute AWS::NoValue', path, { name });
    }
    parts.push({ kind: 'ref', name, target });
  }
  if (pending !== '') parts.push({ kind: 'text', text: pending });
  return parts;
}

function parseIf(argument: unknown, path: string, argumentPath: string, scope: ExpressionScope): TemplateExpression {
  if (scope.section === 'Conditions') {
    throw templateError('TEMPLATE_FUNCTION_NOT_ALLOWED', 'Fn::If cannot be used in the Conditions section', path);
  }
  const [condition, whenTrue, whenFalse] = argumentList(argument, argumentPath, 'Fn::If', 3, 3);
  const conditionPath = appendPath(argumentPath, 0);
  if (typeof condition !== 'string') {
    throw templateError('TEMPLATE_FUNCTION_ARGUMENTS', 'Fn::If takes the name of a condition first', conditionPath);
  }
  if (!scope.conditions.has(condition)) {
    throw templateError('TEMPLATE_CONDITION_UNKNOWN', 'Fn::If names a condition that Conditions does not declare', conditionPath, { condition });
  }
  return {
    kind: 'if',
    path,
    condition,
    whenTrue: parseExpression(whenTrue, appendPath(argumentPath, 1), scope),
    whenFalse: parseExpression(whenFalse, appendPath(argumentPath, 2), scope),
  };
}

/** Compiles one condition of the Conditions section (or an operand of Fn::Not / Fn::And / Fn::Or). */
export function parseCondition(value: unknown, path: string, scope: ExpressionScope): ConditionExpression {
  if (!isJsonObject(value)) {
    throw templateError('TEMPLATE_CONDITION_INVALID', 'A condition must be Fn::Equals, Fn::Not, Fn::And, Fn::Or or {"Condition": name}', path);
  }
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === 'Condition') {
    const name = value['Condition'];
    const namePath = appendPath(path, 'Condition');
    if (typeof name !== 'string') {
      throw templateError('TEMPLATE_CONDITION_INVALID', 'Condition takes the name of a condition', namePath);
    }
    if (!scope.conditions.has(name)) {
      throw templateError('TEMPLATE_CONDITION_UNKNOWN', 'Condition names a condition that Conditions does not declare', namePath, { condition: name });
    }
    return { kind: 'condition', path, name };
  }
  if (!isFunctionCall(value)) {
    throw templateError('TEMPLATE_CONDITION_INVALID', 'A condition must be Fn::Equals, Fn::Not, Fn::And, Fn::Or or {"Condition": name}', path);
  }
  const [name, argument] = functionCall(value, path);
  const argumentPath = appendPath(path, name);
  switch (name) {
    case 'Fn::Equals': {
      const [left, right] = argumentList(argument, argumentPath, name, 2, 2);
      return {
        kind: 'equals',
        path,
        left: parseStringArgument(left, appendPath(argumentPath, 0), scope, name),
        right: parseStringArgument(right, appendPath(argumentPath, 1), scope, name),
      };
    }
    case 'Fn::Not': {
      const [operand] = argumentList(argument, argumentPath, name, 1, 1);
      return { kind: 'not', path, operand: parseCondition(operand, appendPath(argumentPath, 0), scope) };
    }
    case 'Fn::And':
    case 'Fn::Or': {
      const operands = argumentList(argument, argumentPath, name, 2, MAX_CONDITION_OPERANDS);
      return {
        kind: name === 'Fn::And' ? 'and' : 'or',
        path,
        operands: operands.map((operand, i) => parseCondition(operand, appendPath(argumentPath, i), scope)),
      };
    }
    default:
      if (SUPPORTED_FUNCTIONS.has(name)) {
        throw templateError('TEMPLATE_CONDITION_INVALID', `${name} does not yield a condition; use Fn::Equals, Fn::Not, Fn::And or Fn::Or`, path, {
          function: name,
        });
      }
      throw templateError('TEMPLATE_FUNCTION_UNKNOWN', `Provisioning templates do not support ${name}`, path, { function: name });
  }
}

/** Calls `visit` on every resource a tree references (Ref and ${} alike), both branches of Fn::If included. */
export function forEachResourceRef(expression: TemplateExpression, visit: (logicalId: string) => void): void {
  switch (expression.kind) {
    case 'literal':
      return;
    case 'list':
      for (const item of expression.items) forEachResourceRef(item, visit);
      return;
    case 'object':
      for (const [, item] of expression.entries) forEachResourceRef(item, visit);
      return;
    case 'ref':
      if (expression.target.kind === 'resource') visit(expression.target.logicalId);
      return;
    case 'join':
      forEachResourceRef(expression.values, visit);
      return;
    case 'select':
      forEachResourceRef(expression.index, visit);
      forEachResourceRef(expression.values, visit);
      return;
    case 'split':
      forEachResourceRef(expression.source, visit);
      return;
    case 'findInMap':
      forEachResourceRef(expression.mapName, visit);
      forEachResourceRef(expression.topLevelKey, visit);
      forEachResourceRef(expression.secondLevelKey, visit);
      return;
    case 'sub':
      for (const part of expression.parts) {
        if (part.kind === 'ref' && part.target.kind === 'resource') visit(part.target.logicalId);
      }
      for (const [, item] of expression.variables) forEachResourceRef(item, visit);
      return;
    case 'if':
      forEachResourceRef(expression.whenTrue, visit);
      forEachResourceRef(expression.whenFalse, visit);
      return;
  }
}

/** Calls `visit` on every condition a condition references through `{"Condition": name}`. */
export function forEachConditionRef(condition: ConditionExpression, visit: (name: string) => void): void {
  switch (condition.kind) {
    case 'condition':
      visit(condition.name);
      return;
    case 'not':
      forEachConditionRef(condition.operand, visit);
      return;
    case 'and':
    case 'or':
      for (const operand of condition.operands) forEachConditionRef(operand, visit);
      return;
    case 'equals':
      return;
  }
}

/**
 * JSON paths (`$.Resources.thing.Properties.ThingName`) that locate a node of a template in error details.
 * Keys that are not plain identifiers use the bracket form: `$.Parameters['AWS::IoT::Certificate::Id']`.
 */

/** The path of the template root. */
export const ROOT_PATH = '$';

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Appends an object key or array index to a JSON path. */
export function appendPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  if (IDENTIFIER.test(key)) return `${parent}.${key}`;
  return `${parent}['${key.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}']`;
}

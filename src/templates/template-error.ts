/**
 * Raising template errors with their JSON path (`details.path`), the one shape every template error has.
 */
import type { GatehouseError } from '../errors/index.ts';
import { TemplateErrors, type TemplateErrorCode } from './errors.ts';

/** Builds a template error whose details carry `path` and any extra safe context. */
export function templateError(
  code: TemplateErrorCode,
  message: string,
  path: string | undefined,
  details: Readonly<Record<string, unknown>> = {},
  cause?: unknown,
): GatehouseError {
  const allDetails = path === undefined ? { ...details } : { path, ...details };
  return TemplateErrors.error(code, message, cause === undefined ? { details: allDetails } : { details: allDetails, cause });
}

/** Shortens a caller-supplied string before it goes into error details (never into messages). */
export function clip(value: string, max = 200): string {
  return value.length <= max ? value : `${value.slice(0, max)}…`;
}

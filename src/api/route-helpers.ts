import type { FastifyRequest } from 'fastify';
import type { RegistryContext } from '../registry/index.ts';
import type { Caller } from './context.ts';
import { ApiErrors } from './errors.ts';

/** The authenticated caller of a protected route. */
export function callerOf(request: FastifyRequest): Caller {
  if (request.caller === undefined) throw ApiErrors.error('API_UNAUTHENTICATED');
  return request.caller;
}

/** Registry context (tenant + audit actor) of the caller. */
export function ctxOf(request: FastifyRequest): RegistryContext {
  const c = callerOf(request);
  return { tenantId: c.tenantId, actor: c.actor };
}

/** The validated body (Fastify has checked it against the route schema). */
export function bodyOf<T>(request: FastifyRequest): T {
  return request.body as T;
}

/** The validated path parameters. */
export function paramsOf<T>(request: FastifyRequest): T {
  return request.params as T;
}

/** The validated query string. */
export function queryOf<T>(request: FastifyRequest): T {
  return request.query as T;
}

/** JSON schema fragments reused by every route. */
/**
 * An absolute http(s) URL with a host name or bracketed IP address, an optional port, and no user:password@ (a fetch
 * refuses credentials in the URL, and they would show in lists and the audit log) or white space. Webhooks, hook and
 * CRL URLs: an unparseable one used to be stored and then fail every delivery or every JITR device.
 */
export const HTTP_URL_PATTERN = '^https?://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]+\\])(?::[0-9]{1,5})?(?:[/?#][^\\s]*)?$';

export const S = {
  httpUrl: { type: 'string', pattern: HTTP_URL_PATTERN, maxLength: 2048 },
  thingName: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[a-zA-Z0-9:_-]+$' },
  groupName: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[a-zA-Z0-9:_-]+$' },
  policyName: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[\\w+=,.@-]+$' },
  certificateId: { type: 'string', pattern: '^[0-9a-f]{64}$' },
  tenantName: { type: 'string', minLength: 1, maxLength: 63, pattern: '^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$' },
  attributes: { type: 'object', maxProperties: 50, additionalProperties: { type: 'string', maxLength: 800 } },
  pem: { type: 'string', minLength: 1, maxLength: 65536 },
  paging: {
    maxResults: { type: 'integer', minimum: 1, maximum: 250 },
    nextToken: { type: 'string', maxLength: 1024 },
  },
} as const;

/** Error response schema (RFC 9457), shared by every operation in the OpenAPI document. */
export const PROBLEM_SCHEMA = {
  type: 'object',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string' },
    detail: { type: 'string' },
    instance: { type: 'string' },
  },
} as const;

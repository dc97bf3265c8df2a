import { defineErrors } from '../errors/index.ts';
import type { ErrorKind } from '../errors/index.ts';

/** Error codes of the REST control plane itself (request shape, authentication). */
export const ApiErrors = defineErrors({
  API_MALFORMED_JSON: { kind: 'invalid', description: 'The request body is not valid JSON.' },
  API_VALIDATION_FAILED: { kind: 'invalid', description: 'The request does not match the operation schema (types, required or unknown fields, sizes).' },
  API_BODY_TOO_LARGE: { kind: 'too_large', description: 'The request body exceeds the size limit.' },
  API_UNSUPPORTED_MEDIA_TYPE: { kind: 'invalid', description: 'The request content type is not supported by this operation.' },
  API_CONFLICT: { kind: 'conflict', description: 'A concurrent request created or changed the same record (a unique key); nothing was written: read again or retry.' },
  API_BAD_URL: { kind: 'invalid', description: 'The request path is not a valid URL (a bad percent-encoding, say).' },
  API_ROUTE_NOT_FOUND: { kind: 'not_found', description: 'No operation at that method and path.' },
  API_UNAUTHENTICATED: { kind: 'unauthenticated', description: 'Missing, malformed, unknown or revoked bearer token.' },
  API_FORBIDDEN: { kind: 'forbidden', description: "The token's role does not allow this operation." },
  API_TENANT_OVERRIDE_FORBIDDEN: { kind: 'forbidden', description: 'Only an admin of the default tenant may act on another tenant (Gatehouse-Tenant header).' },
  API_INTERNAL: { kind: 'internal', description: 'An unexpected server error; the request changed nothing. See the server log with the request id.' },
  API_SHUTTING_DOWN: { kind: 'unavailable', description: 'The server is stopping; retry against another node or later.' },
});

/** HTTP status of each protocol-neutral error kind (RFC 9457 problem documents carry it). */
export const STATUS_OF_KIND: Readonly<Record<ErrorKind, number>> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
};

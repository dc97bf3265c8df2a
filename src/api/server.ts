import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyError, FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { Ajv } from 'ajv';
import type { AnySchema } from 'ajv';
import addFormats from 'ajv-formats';
import { Counter, Histogram } from 'prom-client';
import { isGatehouseError } from '../errors/index.ts';
import type { GatehouseError } from '../errors/index.ts';
import { createAuthHook } from './auth.ts';
import type { ApiDependencies } from './context.ts';
import { ApiErrors, STATUS_OF_KIND } from './errors.ts';
import { registerRoutes } from './routes/index.ts';
import { HTTP_URL_PATTERN } from './route-helpers.ts';

/** Maximum JSON body size (bulk uploads use their own limit). */
export const BODY_LIMIT = 1024 * 1024;
/** Declared request bodies up to this much over their route's limit are read and discarded after their 413 (see buildApiServer). */
const DRAIN_LIMIT = 8 * BODY_LIMIT;

function problem(error: GatehouseError, instance: string): Record<string, unknown> {
  const status = STATUS_OF_KIND[error.kind];
  return {
    type: `https://gatehouse.dev/errors/${error.code}`,
    title: error.code,
    status,
    code: error.code,
    detail: error.message,
    instance,
    ...(error.details === undefined ? {} : { details: error.details }),
  };
}

/**
 * One schema violation in words, naming where it is (`body.maxDevices`) and, for unknown or missing properties, which
 * one (Ajv's own text says neither: "must NOT have additional properties").
 */
function validationMessage(context: string, v: { instancePath: string; keyword: string; params: Record<string, unknown>; message?: string | undefined }): string {
  const where = `${context}${v.instancePath.replace(/\//g, '.')}`;
  if (v.keyword === 'additionalProperties') return `${where} has an unknown property "${String(v.params['additionalProperty'])}"`;
  if (v.keyword === 'required') return `${where} lacks the required property "${String(v.params['missingProperty'])}"`;
  if (v.keyword === 'enum' && Array.isArray(v.params['allowedValues'])) return `${where} must be one of ${v.params['allowedValues'].map((x) => JSON.stringify(x)).join(', ')}`;
  // an update with nothing in it (PATCH {}): Ajv says "must NOT have fewer than 1 properties"
  if (v.keyword === 'minProperties' && v.params['limit'] === 1) return `${where} is empty: name at least one property to change`;
  if (v.keyword === 'pattern' && v.params['pattern'] === HTTP_URL_PATTERN) return `${where} must be an absolute http(s) URL with a host, without user:password@ or spaces`;
  return `${where} ${v.message ?? 'is invalid'}`;
}

/**
 * The violation worth telling first. Without `anyOf`, Ajv reports one. With it (a webhook or an allow-list hook, say)
 * it reports every branch's first failure, then the anyOf itself, and the first was "must be null" (the null branch)
 * for a webhook whose timeoutMs was too high: the deepest violation names what is wrong, preferring one that is not a
 * branch's type or constant mismatch.
 */
function mostSpecific<T extends { instancePath: string; keyword: string }>(errors: readonly T[]): T | undefined {
  const depth = (e: T): number => (e.instancePath === '' ? 0 : e.instancePath.split('/').length);
  const branchMismatch = (e: T): number => (['type', 'const', 'anyOf', 'oneOf', 'enum'].includes(e.keyword) ? 1 : 0);
  return [...errors].sort((a, b) => depth(b) - depth(a) || branchMismatch(a) - branchMismatch(b))[0];
}

/** Maps Fastify's own errors (parsing, validation, limits) to stable codes. */
function toGatehouseError(error: FastifyError | Error): GatehouseError {
  if (isGatehouseError(error)) return error;
  const fe = error as FastifyError;
  if (fe.validation !== undefined) {
    const context = fe.validationContext ?? 'request';
    const first = fe.validation.some((v) => v.keyword === 'anyOf' || v.keyword === 'oneOf') ? mostSpecific(fe.validation) : fe.validation[0];
    return ApiErrors.error('API_VALIDATION_FAILED', first === undefined ? `${context} is invalid` : validationMessage(context, first), {
      details: { errors: fe.validation.map((v) => ({ path: v.instancePath, message: v.message ?? '' })) },
    });
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      // Fastify's parser also refuses valid JSON with a __proto__ or constructor.prototype key, under the same error
      return ApiErrors.error('API_MALFORMED_JSON', 'the body is not valid JSON, or holds a __proto__ or constructor.prototype key');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return ApiErrors.error('API_MALFORMED_JSON', 'the body is not valid JSON');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return ApiErrors.error('API_BODY_TOO_LARGE', `the body exceeds ${BODY_LIMIT} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return ApiErrors.error('API_UNSUPPORTED_MEDIA_TYPE', 'send Content-Type: application/json');
    default:
      if (error instanceof SyntaxError) return ApiErrors.error('API_MALFORMED_JSON', 'the body is not valid JSON');
      return ApiErrors.error('API_INTERNAL', 'internal error', { cause: error });
  }
}

const SUCCESS_DESCRIPTIONS: Readonly<Record<string, string>> = { '200': 'OK', '201': 'Created', '202': 'Accepted', '204': 'No Content' };

/**
 * Documents each operation's responses in the OpenAPI document only (routes declare no response schema, which would
 * also change how Fastify serializes them): the success status the handler sends (201 and 204 where it says
 * `reply.status(…)`, else 200) and the RFC 9457 problem of every error. Public routes (the CRLs) need no token.
 */
function documentResponses({ schema, url, route }: { schema: unknown; url: string; route: { handler: unknown; config?: unknown } }): { schema: Record<string, unknown>; url: string } {
  const s: Record<string, unknown> = { ...((schema ?? {}) as Record<string, unknown>) };
  if (s['response'] === undefined) {
    const success = /\.status\((20[0-4])\)/.exec(String(route.handler))?.[1] ?? '200';
    s['response'] = {
      [success]: { description: SUCCESS_DESCRIPTIONS[success] ?? 'OK', ...(success === '204' ? { type: 'null' } : { type: 'object' }) },
      default: { description: 'an error: RFC 9457 problem+json with a stable `code` (docs/errors.md)', type: 'object', properties: { type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, code: { type: 'string' }, detail: { type: 'string' }, instance: { type: 'string' }, details: { type: 'object' } } },
    };
  }
  if ((route.config as { public?: unknown } | undefined)?.public === true) s['security'] = [];
  return { schema: s, url };
}

/** Builds the REST control plane (not listening yet). */
export async function buildApiServer(deps: ApiDependencies): Promise<FastifyInstance> {
  const app = Fastify({
    // pino's Logger type is wider than Fastify's; the cast keeps FastifyInstance's default logger type.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: deps.logger.child({ component: 'api' }) as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: 'x-request-id',
    // answered below as a problem document with its code (Fastify's own 503 has none)
    return503OnClosing: false,
    // names may be 128 characters, allow-list values 256 (percent-encoded, three times that): the default of 100
    // answered 414 for names the API itself had accepted
    routerOptions: { maxParamLength: 1024 },
    // the router's own refusals (a path that is not a valid URL) as problem documents with a code, like every error
    frameworkErrors: (error, request, reply) => {
      const gh = ApiErrors.error('API_BAD_URL', `the request path is not a valid URL: ${error.message}`);
      const answer = reply as unknown as { status(code: number): { type(t: string): { send(body: unknown): unknown } } };
      answer.status(400).type('application/problem+json').send(problem(gh, request.url));
    },
  });
  // Bodies are validated strictly (no type coercion: `"thingName": 42` is an error); query strings and path
  // parameters are text on the wire, so they are coerced to the schema's types.
  const strict = new Ajv({ removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false, strict: false });
  const coercing = new Ajv({ removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false, strict: false });
  addFormats.default(strict);
  addFormats.default(coercing);
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema as AnySchema));
  app.decorateRequest('caller', undefined);

  const requests = new Counter({ name: 'gatehouse_http_requests_total', help: 'REST requests by route and status', labelNames: ['method', 'route', 'status'], registers: [deps.metrics] });
  const latency = new Histogram({ name: 'gatehouse_http_request_duration_seconds', help: 'REST request latency', labelNames: ['method', 'route'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [deps.metrics] });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Gatehouse control plane', version: '0.1.0', description: 'Registry, PKI and provisioning API. Errors are RFC 9457 problem+json with a stable `code` (docs/errors.md).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: documentResponses,
  });

  // A declared body over the limit is refused before routing, with the usual 413 problem. Fastify's own check (in its
  // body parser) also sets `Connection: close`, so the socket closed while the client was still sending and the client
  // often saw EPIPE instead of the answer. Answered here, Node reads and discards the rest of the body after the
  // answer and the connection stays usable. Bodies declared more than DRAIN_LIMIT over the route's limit still meet
  // Fastify's check (answer, then close): nobody should make the server read that much to refuse it.
  // While the server stops, requests that still arrive (pipelined, or on a keep-alive connection that is busy) are
  // refused with a 503 the client or load balancer can act on; requests already admitted finish.
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', (_request, reply, done) => {
    if (!closing) {
      done();
      return;
    }
    void reply.header('connection', 'close');
    done(ApiErrors.error('API_SHUTTING_DOWN', 'the server is stopping; retry against another node or later'));
  });
  app.addHook('onRequest', (request, _reply, done) => {
    const declared = Number(request.headers['content-length']);
    const limit = request.routeOptions.bodyLimit ?? BODY_LIMIT; // a route may allow more (bulk uploads)
    if (Number.isFinite(declared) && declared > limit && declared - limit <= DRAIN_LIMIT) {
      done(ApiErrors.error('API_BODY_TOO_LARGE', `the body exceeds ${limit} bytes`));
      return;
    }
    done();
  });
  app.addHook('onRequest', createAuthHook(deps.store));
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unknown';
    requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    latency.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    // One line per request; never the body or the Authorization header.
    request.log.info({ reqId: request.id, method: request.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100, tenant: request.caller?.tenantId, role: request.caller?.role }, 'request');
    done();
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    // two requests creating the same record at once: the loser's insert hits the unique key (its transaction rolled
    // back, nothing written); a 409 it can act on rather than a 500
    const gh = deps.store.isUniqueViolation(error)
      ? ApiErrors.error('API_CONFLICT', 'a concurrent request created or changed the same record; read it again, or retry')
      : toGatehouseError(error);
    if (gh.kind === 'internal') request.log.error({ err: error, reqId: request.id }, 'internal error');
    void reply.status(STATUS_OF_KIND[gh.kind]).type('application/problem+json').send(problem(gh, request.url));
  });
  app.setNotFoundHandler((request, reply) => {
    const gh = ApiErrors.error('API_ROUTE_NOT_FOUND', `no operation ${request.method} ${request.url.split('?')[0] ?? ''}`);
    void reply.status(404).type('application/problem+json').send(problem(gh, request.url));
  });

  app.get('/healthz', { config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
    const state = deps.health();
    if (state !== 'ready') return reply.status(503).send({ status: state });
    return { status: 'ok' };
  });
  app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
    const m = deps.installationMetrics === undefined ? { text: await deps.metrics.metrics(), scope: 'installation' } : await deps.installationMetrics();
    return reply.type(deps.metrics.contentType).header('gatehouse-metrics-scope', m.scope).send(m.text);
  });
  app.get('/v1/openapi.json', { config: { public: true }, schema: { hide: true } }, () => app.swagger());

  await app.register((scope, _opts, done) => {
    registerRoutes(scope, deps);
    done();
  });
  return app;
}

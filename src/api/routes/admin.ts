import type { FastifyInstance } from 'fastify';
import * as registry from '../../registry/index.ts';
import type { ApiDependencies } from '../context.ts';
import { ApiErrors } from '../errors.ts';
import { S, bodyOf, callerOf, ctxOf, paramsOf, queryOf } from '../route-helpers.ts';

/** Tenants, API tokens and the audit log. */
export function registerAdminRoutes(app: FastifyInstance, deps: ApiDependencies): void {
  const { store } = deps;
  const adminOnly = { roles: ['admin'] as const };

  app.post('/v1/tenants', {
    config: adminOnly,
    schema: { tags: ['tenants'], body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: S.tenantName } } },
  }, async (request, reply) => {
    const caller = callerOf(request);
    if (caller.homeTenantId !== registry.DEFAULT_TENANT) throw ApiErrors.error('API_FORBIDDEN', 'only an admin of the default tenant may create tenants');
    const { name } = bodyOf<{ name: string }>(request);
    const tenant = await store.transaction(async (trx) => {
      const t = await registry.createTenant(trx, name, deps.config.domain);
      await registry.appendAudit(trx, { tenantId: t.tenantId, actor: caller.actor }, 'tenant.create', `tenant/${t.tenantId}`, {}, store.supportsRowLocks);
      return t;
    });
    deps.controlPlane.notifyTenantsChanged();
    return reply.status(201).send(tenant);
  });
  app.get('/v1/tenants', { config: adminOnly, schema: { tags: ['tenants'] } }, async (request) => {
    const caller = callerOf(request);
    const all = await registry.listTenants(store.db);
    return { tenants: caller.homeTenantId === registry.DEFAULT_TENANT ? all : all.filter((t) => t.tenantId === caller.homeTenantId) };
  });
  app.get('/v1/tenants/:name', { config: { roles: ['admin', 'operator'] }, schema: { tags: ['tenants'], params: { type: 'object', required: ['name'], properties: { name: S.tenantName } } } }, async (request) => {
    const caller = callerOf(request);
    const { name } = paramsOf<{ name: string }>(request);
    // another tenant's record: default-tenant admins only (as the Gatehouse-Tenant header), not its operators
    if (name !== caller.tenantId && (caller.homeTenantId !== registry.DEFAULT_TENANT || caller.role !== 'admin')) throw registry.RegistryErrors.error('REGISTRY_TENANT_NOT_FOUND', `tenant "${name}" does not exist`);
    return registry.getTenant(store.db, name);
  });

  app.get('/v1/endpoint', { config: { roles: [...registry.ROLES] }, schema: { tags: ['tenants'] } }, async (request) => {
    const tenant = await registry.getTenant(store.db, ctxOf(request).tenantId);
    const ep = deps.deviceEndpoint();
    // The default tenant also answers to the bare domain (no SNI needed), which resolves where `<tenant>.<domain>` may not.
    const endpoint = tenant.tenantId === registry.DEFAULT_TENANT ? deps.config.domain : tenant.endpoint;
    return { tenant: tenant.tenantId, endpoint, tenantEndpoint: tenant.endpoint, mqttPort: ep.mqttPort, rootCaPem: ep.rootCaPem };
  });

  app.post('/v1/tokens', {
    config: adminOnly,
    schema: {
      tags: ['tokens'],
      body: { type: 'object', required: ['role', 'name'], additionalProperties: false, properties: { role: { type: 'string', enum: [...registry.ROLES] }, tenant: S.tenantName, name: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[\\w .@-]+$' } } },
    },
  }, async (request, reply) => {
    const caller = callerOf(request);
    const body = bodyOf<{ role: registry.Role; tenant?: string; name: string }>(request);
    const tenantId = body.tenant ?? caller.tenantId;
    if (tenantId !== caller.tenantId && caller.homeTenantId !== registry.DEFAULT_TENANT) {
      throw ApiErrors.error('API_TENANT_OVERRIDE_FORBIDDEN', 'only an admin of the default tenant may create tokens for another tenant');
    }
    const created = await store.transaction(async (trx) => {
      await registry.getTenant(trx, tenantId);
      const t = await registry.createApiToken(trx, { tenantId, name: body.name, role: body.role });
      await registry.appendAudit(trx, { tenantId, actor: caller.actor }, 'token.create', `token/${t.tokenId}`, { role: t.role, name: t.name }, store.supportsRowLocks);
      return t;
    });
    return reply.status(201).send(created);
  });
  app.get('/v1/tokens', { config: adminOnly, schema: { tags: ['tokens'] } }, async (request) => ({ tokens: await registry.listApiTokens(store.db, ctxOf(request).tenantId) }));
  app.delete('/v1/tokens/:tokenId', { config: adminOnly, schema: { tags: ['tokens'], params: { type: 'object', required: ['tokenId'], properties: { tokenId: { type: 'string', format: 'uuid' } } } } }, async (request, reply) => {
    const ctx = ctxOf(request);
    const { tokenId } = paramsOf<{ tokenId: string }>(request);
    await store.transaction(async (trx) => {
      await registry.revokeApiToken(trx, ctx.tenantId, tokenId, store.supportsRowLocks);
      await registry.appendAudit(trx, ctx, 'token.revoke', `token/${tokenId}`, {}, store.supportsRowLocks);
    });
    return reply.status(204).send();
  });

  app.post('/v1/maintenance/sweep-unregistered', { config: adminOnly, schema: { tags: ['audit'] } }, async (request) => {
    // it sweeps every tenant: an installation-wide act, like verifying the audit chain
    if (callerOf(request).homeTenantId !== registry.DEFAULT_TENANT) throw ApiErrors.error('API_FORBIDDEN', 'only an admin of the default tenant may run the installation-wide sweep');
    // Runs now what runs every 5 minutes: certificates made by the fleet API whose ownership token expired unused are deleted.
    return { deleted: await deps.controlPlane.fleet.sweepUnregistered() };
  });

  app.get('/v1/audit', {
    config: adminOnly,
    schema: { tags: ['audit'], querystring: { type: 'object', additionalProperties: false, properties: { maxResults: S.paging.maxResults, beforeSeq: { type: 'integer', minimum: 1 } } } },
  }, async (request) => {
    const q = queryOf<{ maxResults?: number; beforeSeq?: number }>(request);
    return { entries: await registry.listAudit(store.db, ctxOf(request).tenantId, { limit: q.maxResults ?? 50, beforeSeq: q.beforeSeq }) };
  });
  app.get('/v1/audit/verify', { config: adminOnly, schema: { tags: ['audit'] } }, async (request) => {
    const caller = callerOf(request);
    if (caller.homeTenantId !== registry.DEFAULT_TENANT) throw ApiErrors.error('API_FORBIDDEN', 'only an admin of the default tenant may verify the installation-wide audit chain');
    return registry.verifyAuditLog(store.db);
  });
}

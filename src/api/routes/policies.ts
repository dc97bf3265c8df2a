import type { FastifyInstance } from 'fastify';
import * as registry from '../../registry/index.ts';
import type { ApiDependencies } from '../context.ts';
import { S, bodyOf, ctxOf, paramsOf, queryOf } from '../route-helpers.ts';

const policyParams = { type: 'object', required: ['policyName'], properties: { policyName: S.policyName } } as const;
const documentSchema = { anyOf: [{ type: 'object' }, { type: 'string', minLength: 1, maxLength: 20480 }] } as const;

/** Policies with versions and attachments (AWS CreatePolicy, CreatePolicyVersion, AttachPolicy, …). */
export function registerPolicyRoutes(app: FastifyInstance, deps: ApiDependencies): void {
  const { store } = deps;
  const w = { rowLocks: store.supportsRowLocks };

  app.post('/v1/policies', {
    schema: { tags: ['policies'], body: { type: 'object', required: ['policyName', 'policyDocument'], additionalProperties: false, properties: { policyName: S.policyName, policyDocument: documentSchema } } },
  }, async (request, reply) => {
    const body = bodyOf<{ policyName: string; policyDocument: unknown }>(request);
    return reply.status(201).send(await store.transaction((trx) => registry.createPolicy(trx, ctxOf(request), body, w)));
  });
  app.get('/v1/policies', { schema: { tags: ['policies'], querystring: { type: 'object', additionalProperties: false, properties: { ...S.paging, namePrefix: { type: 'string', maxLength: 128 } } } } }, async (request) => {
    const page = await registry.listPolicies(store.db, ctxOf(request).tenantId, queryOf<registry.PageRequest & { namePrefix?: string }>(request));
    return { policies: page.items, nextToken: page.nextToken };
  });
  app.get('/v1/policies/:policyName', { schema: { tags: ['policies'], params: policyParams } }, async (request) => {
    const ctx = ctxOf(request);
    const { policyName } = paramsOf<{ policyName: string }>(request);
    const p = await registry.getPolicy(store.db, ctx.tenantId, policyName);
    return { ...p, targets: await registry.listPolicyTargets(store.db, ctx.tenantId, policyName) };
  });
  app.delete('/v1/policies/:policyName', { schema: { tags: ['policies'], params: policyParams } }, async (request, reply) => {
    await store.transaction((trx) => registry.deletePolicy(trx, ctxOf(request), paramsOf<{ policyName: string }>(request).policyName, w));
    return reply.status(204).send();
  });
  app.post('/v1/policies/:policyName/versions', {
    schema: { tags: ['policies'], params: policyParams, body: { type: 'object', required: ['policyDocument'], additionalProperties: false, properties: { policyDocument: documentSchema, setAsDefault: { type: 'boolean' } } } },
  }, async (request, reply) => {
    const { policyName } = paramsOf<{ policyName: string }>(request);
    const v = await store.transaction((trx) => registry.createPolicyVersion(trx, ctxOf(request), policyName, bodyOf<{ policyDocument: unknown; setAsDefault?: boolean }>(request), w));
    deps.controlPlane.notifyPoliciesChanged(ctxOf(request).tenantId);
    return reply.status(201).send(v);
  });
  app.get('/v1/policies/:policyName/versions', { schema: { tags: ['policies'], params: policyParams } }, async (request) => {
    return { policyVersions: await registry.listPolicyVersions(store.db, ctxOf(request).tenantId, paramsOf<{ policyName: string }>(request).policyName) };
  });
  const versionParams = { type: 'object', required: ['policyName', 'versionId'], properties: { policyName: S.policyName, versionId: { type: 'integer', minimum: 1 } } } as const;
  app.post('/v1/policies/:policyName/versions/:versionId/default', { schema: { tags: ['policies'], params: versionParams } }, async (request, reply) => {
    const { policyName, versionId } = paramsOf<{ policyName: string; versionId: number }>(request);
    await store.transaction((trx) => registry.setDefaultPolicyVersion(trx, ctxOf(request), policyName, versionId, w));
    deps.controlPlane.notifyPoliciesChanged(ctxOf(request).tenantId);
    return reply.status(204).send();
  });
  app.delete('/v1/policies/:policyName/versions/:versionId', { schema: { tags: ['policies'], params: versionParams } }, async (request, reply) => {
    const { policyName, versionId } = paramsOf<{ policyName: string; versionId: number }>(request);
    await store.transaction((trx) => registry.deletePolicyVersion(trx, ctxOf(request), policyName, versionId, w));
    return reply.status(204).send();
  });
  const targetBody = { type: 'object', required: ['target'], additionalProperties: false, properties: { target: { type: 'string', minLength: 1, maxLength: 256 } } } as const;
  app.post('/v1/policies/:policyName/attach', { schema: { tags: ['policies'], params: policyParams, body: targetBody } }, async (request, reply) => {
    const { policyName } = paramsOf<{ policyName: string }>(request);
    const target = registry.parsePolicyTarget(bodyOf<{ target: string }>(request).target);
    await store.transaction((trx) => registry.attachPolicy(trx, ctxOf(request), policyName, target, w));
    deps.controlPlane.notifyPoliciesChanged(ctxOf(request).tenantId);
    return reply.status(204).send();
  });
  app.post('/v1/policies/:policyName/detach', { schema: { tags: ['policies'], params: policyParams, body: targetBody } }, async (request, reply) => {
    const { policyName } = paramsOf<{ policyName: string }>(request);
    const target = registry.parsePolicyTarget(bodyOf<{ target: string }>(request).target);
    await store.transaction((trx) => registry.detachPolicy(trx, ctxOf(request), policyName, target, w));
    deps.controlPlane.notifyPoliciesChanged(ctxOf(request).tenantId);
    return reply.status(204).send();
  });
}

import type { FastifyInstance } from 'fastify';
import * as registry from '../../registry/index.ts';
import type { ApiDependencies } from '../context.ts';
import { ApiErrors } from '../errors.ts';
import { S, bodyOf, ctxOf, paramsOf, queryOf } from '../route-helpers.ts';

const thingParams = { type: 'object', required: ['thingName'], properties: { thingName: S.thingName } } as const;

/** Things, thing types and thing groups (AWS CreateThing, DescribeThing, ListThings, …). */
export function registerThingRoutes(app: FastifyInstance, deps: ApiDependencies): void {
  const { store } = deps;
  const w = { rowLocks: store.supportsRowLocks };

  app.post('/v1/things', {
    schema: {
      tags: ['things'],
      body: {
        type: 'object', required: ['thingName'], additionalProperties: false,
        properties: { thingName: S.thingName, attributes: S.attributes, thingTypeName: S.thingName, thingGroups: { type: 'array', maxItems: 10, items: S.groupName } },
      },
    },
  }, async (request, reply) => {
    const body = bodyOf<registry.CreateThingInput>(request);
    const existed = (await registry.findThing(store.db, ctxOf(request).tenantId, body.thingName)) !== undefined;
    const thing = await store.transaction((trx) => registry.createThing(trx, ctxOf(request), body, w));
    if (!existed) deps.controlPlane.thingEvent(ctxOf(request).tenantId, 'created', thing);
    return reply.status(201).send(thing);
  });

  app.get('/v1/things', {
    schema: {
      tags: ['things'],
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { ...S.paging, namePrefix: { type: 'string', maxLength: 128 }, thingTypeName: S.thingName, thingGroupName: S.groupName, attributeName: { type: 'string', maxLength: 128 }, attributeValue: { type: 'string', maxLength: 800 } },
      },
    },
  }, async (request) => {
    const q = queryOf<registry.ListThingsFilter>(request);
    const { tenantId } = ctxOf(request);
    // a filter naming a group or type that does not exist is a 404 (a typo looked like an empty list), as AWS's
    // ListThingsInThingGroup answers ResourceNotFound
    if (q.thingGroupName !== undefined) await registry.getThingGroup(store.db, tenantId, q.thingGroupName);
    if (q.thingTypeName !== undefined) await registry.getThingType(store.db, tenantId, q.thingTypeName);
    const page = await registry.listThings(store.db, tenantId, q);
    return { things: page.items, nextToken: page.nextToken };
  });

  app.get('/v1/things/:thingName', { schema: { tags: ['things'], params: thingParams } }, async (request) => {
    const { thingName } = paramsOf<{ thingName: string }>(request);
    const ctx = ctxOf(request);
    const thing = await registry.getThing(store.db, ctx.tenantId, thingName);
    return { ...thing, principals: await registry.listThingPrincipals(store.db, ctx.tenantId, thingName) };
  });

  app.patch('/v1/things/:thingName', {
    schema: {
      tags: ['things'], params: thingParams,
      body: {
        type: 'object', additionalProperties: false,
        description: 'At least one of attributes, replaceAttributes and thingTypeName (an update that changes nothing is refused rather than bumping the version).',
        properties: {
          attributes: { type: 'object', maxProperties: 50, additionalProperties: { type: ['string', 'null'], maxLength: 800 } },
          replaceAttributes: { type: 'boolean' },
          thingTypeName: { anyOf: [S.thingName, { type: 'null' }] },
          expectedVersion: { type: 'integer', minimum: 1 },
        },
      },
    },
  }, async (request) => {
    const { thingName } = paramsOf<{ thingName: string }>(request);
    const input = bodyOf<registry.UpdateThingInput>(request);
    if (input.attributes === undefined && input.replaceAttributes === undefined && input.thingTypeName === undefined) {
      throw ApiErrors.error('API_VALIDATION_FAILED', 'body names nothing to change: give attributes, replaceAttributes or thingTypeName');
    }
    const thing = await store.transaction((trx) => registry.updateThing(trx, ctxOf(request), thingName, input, w));
    deps.controlPlane.thingEvent(ctxOf(request).tenantId, 'updated', thing);
    // attributes feed policy variables of live connections
    deps.controlPlane.notifyPoliciesChanged(ctxOf(request).tenantId);
    return thing;
  });

  app.delete('/v1/things/:thingName', {
    schema: {
      tags: ['things'], params: thingParams,
      description: 'Deletes a thing. As in AWS, a thing with certificates attached is refused (REGISTRY_THING_HAS_PRINCIPALS) unless `detachPrincipals=true` detaches them in the same transaction.',
      querystring: { type: 'object', additionalProperties: false, properties: { detachPrincipals: { type: 'boolean' } } },
    },
  }, async (request, reply) => {
    const { thingName } = paramsOf<{ thingName: string }>(request);
    const ctx = ctxOf(request);
    const { detachedPrincipals } = await store.transaction((trx) => registry.deleteThing(trx, ctx, thingName, { ...w, detachPrincipals: queryOf<{ detachPrincipals?: boolean }>(request).detachPrincipals === true }));
    deps.controlPlane.thingEvent(ctx.tenantId, 'deleted', { thingName });
    for (const id of detachedPrincipals) deps.controlPlane.notifyCertificateChanged(ctx.tenantId, id);
    deps.controlPlane.notifyPoliciesChanged(ctx.tenantId);
    return reply.status(204).send();
  });

  app.post('/v1/things/:thingName/principals', {
    schema: { tags: ['things'], params: thingParams, body: { type: 'object', required: ['certificateId'], additionalProperties: false, properties: { certificateId: S.certificateId } } },
  }, async (request, reply) => {
    const { thingName } = paramsOf<{ thingName: string }>(request);
    const { certificateId } = bodyOf<{ certificateId: string }>(request);
    await store.transaction((trx) => registry.attachThingPrincipal(trx, ctxOf(request), thingName, certificateId, w));
    deps.controlPlane.notifyCertificateChanged(ctxOf(request).tenantId, certificateId);
    return reply.status(204).send();
  });

  app.get('/v1/things/:thingName/principals', { schema: { tags: ['things'], params: thingParams } }, async (request) => {
    const { thingName } = paramsOf<{ thingName: string }>(request);
    const ctx = ctxOf(request);
    await registry.getThing(store.db, ctx.tenantId, thingName);
    return { principals: await registry.listThingPrincipals(store.db, ctx.tenantId, thingName) };
  });

  app.delete('/v1/things/:thingName/principals/:certificateId', {
    schema: { tags: ['things'], params: { type: 'object', required: ['thingName', 'certificateId'], properties: { thingName: S.thingName, certificateId: S.certificateId } } },
  }, async (request, reply) => {
    const { thingName, certificateId } = paramsOf<{ thingName: string; certificateId: string }>(request);
    await store.transaction((trx) => registry.detachThingPrincipal(trx, ctxOf(request), thingName, certificateId, w));
    deps.controlPlane.notifyCertificateChanged(ctxOf(request).tenantId, certificateId);
    return reply.status(204).send();
  });

  // Thing types
  const typeParams = { type: 'object', required: ['thingTypeName'], properties: { thingTypeName: S.thingName } } as const;
  app.post('/v1/thing-types', {
    schema: {
      tags: ['thing-types'],
      body: { type: 'object', required: ['thingTypeName'], additionalProperties: false, properties: { thingTypeName: S.thingName, description: { type: 'string', maxLength: 2028 }, searchableAttributes: { type: 'array', maxItems: 3, items: { type: 'string', maxLength: 128 } } } },
    },
  }, async (request, reply) => {
    const body = bodyOf<{ thingTypeName: string; description?: string; searchableAttributes?: string[] }>(request);
    return reply.status(201).send(await store.transaction((trx) => registry.createThingType(trx, ctxOf(request), body, w)));
  });
  app.get('/v1/thing-types', { schema: { tags: ['thing-types'], querystring: { type: 'object', additionalProperties: false, properties: { ...S.paging, namePrefix: { type: 'string', maxLength: 128 } } } } }, async (request) => {
    const page = await registry.listThingTypes(store.db, ctxOf(request).tenantId, queryOf<registry.PageRequest & { namePrefix?: string }>(request));
    return { thingTypes: page.items, nextToken: page.nextToken };
  });
  app.get('/v1/thing-types/:thingTypeName', { schema: { tags: ['thing-types'], params: typeParams } }, async (request) => {
    return registry.getThingType(store.db, ctxOf(request).tenantId, paramsOf<{ thingTypeName: string }>(request).thingTypeName);
  });
  app.patch('/v1/thing-types/:thingTypeName', {
    schema: { tags: ['thing-types'], params: typeParams, body: { type: 'object', required: ['deprecated'], additionalProperties: false, properties: { deprecated: { type: 'boolean' } } } },
  }, async (request) => {
    const { thingTypeName } = paramsOf<{ thingTypeName: string }>(request);
    return store.transaction((trx) => registry.setThingTypeDeprecated(trx, ctxOf(request), thingTypeName, bodyOf<{ deprecated: boolean }>(request).deprecated, w));
  });
  app.delete('/v1/thing-types/:thingTypeName', { schema: { tags: ['thing-types'], params: typeParams } }, async (request, reply) => {
    await store.transaction((trx) => registry.deleteThingType(trx, ctxOf(request), paramsOf<{ thingTypeName: string }>(request).thingTypeName, w));
    return reply.status(204).send();
  });

  // Thing groups
  const groupParams = { type: 'object', required: ['thingGroupName'], properties: { thingGroupName: S.groupName } } as const;
  app.post('/v1/thing-groups', {
    schema: { tags: ['thing-groups'], body: { type: 'object', required: ['thingGroupName'], additionalProperties: false, properties: { thingGroupName: S.groupName, description: { type: 'string', maxLength: 2028 }, attributes: S.attributes } } },
  }, async (request, reply) => {
    const body = bodyOf<{ thingGroupName: string; description?: string; attributes?: Record<string, string> }>(request);
    return reply.status(201).send(await store.transaction((trx) => registry.createThingGroup(trx, ctxOf(request), body, w)));
  });
  app.get('/v1/thing-groups', { schema: { tags: ['thing-groups'], querystring: { type: 'object', additionalProperties: false, properties: { ...S.paging, namePrefix: { type: 'string', maxLength: 128 } } } } }, async (request) => {
    const page = await registry.listThingGroups(store.db, ctxOf(request).tenantId, queryOf<registry.PageRequest & { namePrefix?: string }>(request));
    return { thingGroups: page.items, nextToken: page.nextToken };
  });
  app.get('/v1/thing-groups/:thingGroupName', { schema: { tags: ['thing-groups'], params: groupParams } }, async (request) => {
    const ctx = ctxOf(request);
    const { thingGroupName } = paramsOf<{ thingGroupName: string }>(request);
    const group = await registry.getThingGroup(store.db, ctx.tenantId, thingGroupName);
    return { ...group, policies: await registry.listAttachedPolicies(store.db, ctx.tenantId, { kind: 'thinggroup', thingGroupName }) };
  });
  app.delete('/v1/thing-groups/:thingGroupName', { schema: { tags: ['thing-groups'], params: groupParams } }, async (request, reply) => {
    await store.transaction((trx) => registry.deleteThingGroup(trx, ctxOf(request), paramsOf<{ thingGroupName: string }>(request).thingGroupName, w));
    deps.controlPlane.notifyPoliciesChanged(ctxOf(request).tenantId);
    return reply.status(204).send();
  });
  app.post('/v1/thing-groups/:thingGroupName/things', {
    schema: { tags: ['thing-groups'], params: groupParams, body: { type: 'object', required: ['thingName'], additionalProperties: false, properties: { thingName: S.thingName } } },
  }, async (request, reply) => {
    const { thingGroupName } = paramsOf<{ thingGroupName: string }>(request);
    await store.transaction((trx) => registry.addThingToGroup(trx, ctxOf(request), thingGroupName, bodyOf<{ thingName: string }>(request).thingName, w));
    deps.controlPlane.notifyPoliciesChanged(ctxOf(request).tenantId);
    return reply.status(204).send();
  });
  app.delete('/v1/thing-groups/:thingGroupName/things/:thingName', {
    schema: { tags: ['thing-groups'], params: { type: 'object', required: ['thingGroupName', 'thingName'], properties: { thingGroupName: S.groupName, thingName: S.thingName } } },
  }, async (request, reply) => {
    const { thingGroupName, thingName } = paramsOf<{ thingGroupName: string; thingName: string }>(request);
    await store.transaction((trx) => registry.removeThingFromGroup(trx, ctxOf(request), thingGroupName, thingName, w));
    deps.controlPlane.notifyPoliciesChanged(ctxOf(request).tenantId);
    return reply.status(204).send();
  });
}

import type { FastifyInstance } from 'fastify';
import * as registry from '../../registry/index.ts';
import type { ApiDependencies } from '../context.ts';
import { S, bodyOf, ctxOf, paramsOf } from '../route-helpers.ts';

const idParams = { type: 'object', required: ['webhookId'], properties: { webhookId: { type: 'string', format: 'uuid' } } } as const;

/** Webhooks: HMAC-signed deliveries of lifecycle and provisioning events, retried, dead-lettered. */
export function registerWebhookRoutes(app: FastifyInstance, deps: ApiDependencies): void {
  const { store } = deps;
  app.post('/v1/webhooks', {
    schema: {
      tags: ['webhooks'],
      body: {
        type: 'object', required: ['url', 'secret'], additionalProperties: false,
        properties: {
          url: S.httpUrl,
          events: { type: 'array', maxItems: 20, items: { type: 'string', enum: [...registry.WEBHOOK_EVENT_TYPES] } },
          secret: { type: 'string', minLength: 16, maxLength: 256 },
        },
      },
    },
  }, async (request, reply) => {
    const b = bodyOf<{ url: string; events?: string[]; secret: string }>(request);
    const hook = await store.transaction((trx) => registry.createWebhook(trx, ctxOf(request), { url: b.url, events: b.events ?? [], secret: b.secret }, { rowLocks: store.supportsRowLocks }));
    deps.controlPlane.notifyWebhooksChanged();
    return reply.status(201).send(hook);
  });
  app.get('/v1/webhooks', { schema: { tags: ['webhooks'] } }, async (request) => ({ webhooks: await registry.listWebhooks(store.db, ctxOf(request).tenantId) }));
  app.delete('/v1/webhooks/:webhookId', { schema: { tags: ['webhooks'], params: idParams } }, async (request, reply) => {
    await store.transaction((trx) => registry.deleteWebhook(trx, ctxOf(request), paramsOf<{ webhookId: string }>(request).webhookId, { rowLocks: store.supportsRowLocks }));
    deps.controlPlane.notifyWebhooksChanged();
    return reply.status(204).send();
  });
  app.get('/v1/webhooks/:webhookId/dead-letters', { schema: { tags: ['webhooks'], params: idParams } }, async (request) => ({
    deadLetters: await registry.listDeadLetters(store.db, ctxOf(request).tenantId, paramsOf<{ webhookId: string }>(request).webhookId),
  }));
}

import type { FastifyInstance } from 'fastify';
import type { ApiDependencies } from '../context.ts';
import { registerAdminRoutes } from './admin.ts';
import { registerBulkRoutes } from './bulk.ts';
import { registerPkiRoutes } from './pki.ts';
import { registerPolicyRoutes } from './policies.ts';
import { registerTemplateRoutes } from './templates.ts';
import { registerThingRoutes } from './things.ts';
import { registerWebhookRoutes } from './webhooks.ts';

/** Registers every `/v1` operation. */
export function registerRoutes(app: FastifyInstance, deps: ApiDependencies): void {
  registerThingRoutes(app, deps);
  registerPolicyRoutes(app, deps);
  registerPkiRoutes(app, deps);
  registerTemplateRoutes(app, deps);
  registerWebhookRoutes(app, deps);
  registerAdminRoutes(app, deps);
  registerBulkRoutes(app, deps);
}

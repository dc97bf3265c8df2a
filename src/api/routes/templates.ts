import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { checkPlan } from '../../provisioning/index.ts';
import * as registry from '../../registry/index.ts';
import { STORED_TEMPLATE_MAX_LENGTH, evaluateTemplate, parseTemplate } from '../../templates/index.ts';
import type { ProvisioningTemplateType } from '../../templates/index.ts';
import type { ApiDependencies } from '../context.ts';
import { S, bodyOf, ctxOf, paramsOf, queryOf } from '../route-helpers.ts';

const nameSchema = { type: 'string', minLength: 1, maxLength: 36, pattern: '^[0-9A-Za-z_-]+$' } as const;
const params = { type: 'object', required: ['templateName'], properties: { templateName: nameSchema } } as const;
// The length limit is the installation's (`templateMaxLength`), checked by the template parser with its JSON path.
const bodySchema = { anyOf: [{ type: 'object' }, { type: 'string', minLength: 2 }] } as const;
const hookSchema = {
  anyOf: [
    { type: 'null' },
    { type: 'object', required: ['type', 'url'], additionalProperties: false, properties: { type: { const: 'webhook' }, url: S.httpUrl, secret: { type: 'string', minLength: 16, maxLength: 256 }, timeoutMs: { type: 'integer', minimum: 100, maximum: 10000, description: 'at most 10 s: the device SDK waits 15 s for an answer, and a slower hook would turn an allowed device into a timeout' } } },
    { type: 'object', required: ['type', 'parameter', 'values'], additionalProperties: false, properties: { type: { const: 'allow-list' }, parameter: { type: 'string', minLength: 1, maxLength: 2048 }, values: { type: 'array', maxItems: 100000, items: { type: 'string', maxLength: 4096 } } } },
  ],
} as const;

const claimMaxDevicesSchema = { type: 'integer', minimum: 1, maximum: 1_000_000_000, description: 'devices this claim may provision in all (at most 10^9)' } as const;
const claimRateSchema = { type: 'integer', minimum: 1, maximum: 1_000_000, description: 'devices this claim may provision per minute (each of certificate creation and RegisterThing)' } as const;

type Hook = registry.PreProvisioningHook;

/** Hides the webhook secret in responses. */
function publicTemplate(t: registry.ProvisioningTemplateRecord): Record<string, unknown> {
  const hook = t.preProvisioningHook;
  return {
    ...t,
    preProvisioningHook: hook === null ? null : hook.type === 'webhook' ? { type: 'webhook', url: hook.url, timeoutMs: hook.timeoutMs, hasSecret: hook.secret !== undefined } : { type: 'allow-list', parameter: hook.parameter, valueCount: hook.values.length },
  };
}

/** Webhook hooks always get a signing secret (generated when not given; returned once on create). */
function withSecret(hook: Hook | undefined | null): { hook: Hook | undefined | null; secret?: string } {
  if (hook === undefined || hook === null || hook.type !== 'webhook' || hook.secret !== undefined) return { hook };
  const secret = randomBytes(24).toString('base64url');
  return { hook: { ...hook, secret }, secret };
}

/** Provisioning templates (AWS CreateProvisioningTemplate & co), validation and dry runs. */
export function registerTemplateRoutes(app: FastifyInstance, deps: ApiDependencies): void {
  const { store } = deps;
  const maxBodyLength = deps.config.templateMaxLength;
  const w = { rowLocks: store.supportsRowLocks };

  app.post('/v1/provisioning-templates', {
    schema: {
      tags: ['templates'],
      body: {
        type: 'object', required: ['templateName', 'templateBody'], additionalProperties: false,
        properties: { templateName: nameSchema, templateBody: bodySchema, enabled: { type: 'boolean' }, type: { type: 'string', enum: ['FLEET_PROVISIONING', 'JITP'] }, description: { type: 'string', maxLength: 500 }, preProvisioningHook: hookSchema },
      },
    },
  }, async (request, reply) => {
    const b = bodyOf<{ templateName: string; templateBody: unknown; enabled?: boolean; type?: ProvisioningTemplateType; description?: string; preProvisioningHook?: Hook | null }>(request);
    const { hook, secret } = withSecret(b.preProvisioningHook);
    const t = await store.transaction((trx) => registry.createProvisioningTemplate(trx, ctxOf(request), { ...b, preProvisioningHook: hook ?? undefined, maxBodyLength }, w));
    return reply.status(201).send({ ...publicTemplate(t), ...(secret === undefined ? {} : { hookSecret: secret }) });
  });

  app.post('/v1/provisioning-templates/validate', {
    schema: { tags: ['templates'], body: { type: 'object', required: ['templateBody'], additionalProperties: false, properties: { templateBody: bodySchema, type: { type: 'string', enum: ['FLEET_PROVISIONING', 'JITP'] } } } },
  }, async (request) => {
    const b = bodyOf<{ templateBody: unknown; type?: ProvisioningTemplateType }>(request);
    // the checks of create (literal policy documents included), without a name: nothing is stored
    const t = registry.validateTemplateBody('validate', b.type ?? 'FLEET_PROVISIONING', b.templateBody, maxBodyLength).template;
    return { valid: true, type: t.type, parameters: t.parameters.map((p) => p.name) };
  });

  app.get('/v1/provisioning-templates', { schema: { tags: ['templates'], querystring: { type: 'object', additionalProperties: false, properties: { ...S.paging } } } }, async (request) => {
    const page = await registry.listProvisioningTemplates(store.db, ctxOf(request).tenantId, queryOf<registry.PageRequest>(request));
    return { templates: page.items, nextToken: page.nextToken };
  });

  app.get('/v1/provisioning-templates/:templateName', { schema: { tags: ['templates'], params } }, async (request) => {
    return publicTemplate(await registry.getProvisioningTemplate(store.db, ctxOf(request).tenantId, paramsOf<{ templateName: string }>(request).templateName));
  });

  app.patch('/v1/provisioning-templates/:templateName', {
    schema: { tags: ['templates'], params, body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { enabled: { type: 'boolean' }, description: { type: 'string', maxLength: 500 }, defaultVersionId: { type: 'integer', minimum: 1 }, preProvisioningHook: hookSchema } } },
  }, async (request) => {
    const b = bodyOf<{ enabled?: boolean; description?: string; defaultVersionId?: number; preProvisioningHook?: Hook | null }>(request);
    const name = paramsOf<{ templateName: string }>(request).templateName;
    let given = b.preProvisioningHook;
    if (given?.type === 'webhook' && given.secret === undefined) {
      // the same URL keeps its secret (a new timeout must not break the running hook); a new URL gets a new one
      const current = (await registry.getProvisioningTemplate(store.db, ctxOf(request).tenantId, name)).preProvisioningHook;
      if (current?.type === 'webhook' && current.url === given.url && current.secret !== undefined) given = { ...given, secret: current.secret };
    }
    const { hook, secret } = withSecret(given);
    const t = await store.transaction((trx) => registry.updateProvisioningTemplate(trx, ctxOf(request), name, { ...b, preProvisioningHook: hook }, w));
    return { ...publicTemplate(t), ...(secret === undefined ? {} : { hookSecret: secret }) };
  });

  app.delete('/v1/provisioning-templates/:templateName', {
    schema: {
      tags: ['templates'], params,
      description: 'Deletes a template and its versions. Refused (REGISTRY_TEMPLATE_IN_USE) while a CA uses it for JITP, or while it has live claims (neither revoked nor expired) and `claims` is not given: `revoke` revokes them in the same transaction (their connections are closed), `keep` leaves them to provision under a later template of the same name.',
      querystring: { type: 'object', additionalProperties: false, properties: { claims: { type: 'string', enum: ['revoke', 'keep'] } } },
    },
  }, async (request, reply) => {
    const ctx = ctxOf(request);
    const claims = queryOf<{ claims?: 'revoke' | 'keep' }>(request).claims;
    await deps.controlPlane.deleteTemplate(ctx, paramsOf<{ templateName: string }>(request).templateName, claims);
    return reply.status(204).send();
  });

  app.post('/v1/provisioning-templates/:templateName/versions', {
    schema: { tags: ['templates'], params, body: { type: 'object', required: ['templateBody'], additionalProperties: false, properties: { templateBody: bodySchema, setAsDefault: { type: 'boolean' } } } },
  }, async (request, reply) => {
    const { templateName } = paramsOf<{ templateName: string }>(request);
    return reply.status(201).send(await store.transaction((trx) => registry.createProvisioningTemplateVersion(trx, ctxOf(request), templateName, { ...bodyOf<{ templateBody: unknown; setAsDefault?: boolean }>(request), maxBodyLength }, w)));
  });

  app.get('/v1/provisioning-templates/:templateName/versions', { schema: { tags: ['templates'], params } }, async (request) => ({
    versions: await registry.listProvisioningTemplateVersions(store.db, ctxOf(request).tenantId, paramsOf<{ templateName: string }>(request).templateName),
  }));

  const versionParams = { type: 'object', required: ['templateName', 'versionId'], properties: { templateName: nameSchema, versionId: { type: 'integer', minimum: 1 } } } as const;
  app.get('/v1/provisioning-templates/:templateName/versions/:versionId', { schema: { tags: ['templates'], params: versionParams } }, async (request) => {
    const { templateName, versionId } = paramsOf<{ templateName: string; versionId: number }>(request);
    return registry.getProvisioningTemplateVersion(store.db, ctxOf(request).tenantId, templateName, versionId);
  });
  app.delete('/v1/provisioning-templates/:templateName/versions/:versionId', {
    schema: { tags: ['templates'], params: versionParams, description: 'Deletes a version that is not the default (a template keeps at most 5).' },
  }, async (request, reply) => {
    const { templateName, versionId } = paramsOf<{ templateName: string; versionId: number }>(request);
    await store.transaction((trx) => registry.deleteProvisioningTemplateVersion(trx, ctxOf(request), templateName, versionId, w));
    return reply.status(204).send();
  });

  app.post('/v1/provisioning-templates/:templateName/dry-run', {
    schema: {
      tags: ['templates'], params,
      description: 'Evaluates the template with these parameters and returns the resource plan (`plan`), and whether it would apply now (`check`): the plan is applied in a transaction that is always rolled back, so `check` is `{ok: true, thingExists}` or `{ok: false, code, message, details?}` with the error RegisterThing or JITP would give (a missing policy, thing group or thing type, an OverrideSettings FAIL conflict, an invalid policy document, a value not on the template\'s built-in allow list). Without certificateId the certificate part is left out of the check. Nothing is written; a webhook hook is not called.',
      body: { type: 'object', additionalProperties: false, properties: { parameters: { type: 'object', maxProperties: 100, additionalProperties: { type: 'string', maxLength: 4096 } }, certificateId: S.certificateId } },
    },
  }, async (request) => {
    const { templateName } = paramsOf<{ templateName: string }>(request);
    const b = bodyOf<{ parameters?: Record<string, string>; certificateId?: string }>(request);
    const rec = await registry.getProvisioningTemplate(store.db, ctxOf(request).tenantId, templateName);
    const template = parseTemplate(rec.templateBody, { type: rec.type, name: rec.templateName, maxLength: STORED_TEMPLATE_MAX_LENGTH });
    const plan = evaluateTemplate(template, { parameters: b.parameters ?? {}, certificateId: b.certificateId ?? '0'.repeat(64) });
    return { plan, check: await checkPlan(store, ctxOf(request), plan, b.certificateId, rec.preProvisioningHook) };
  });

  app.post('/v1/provisioning-templates/:templateName/claim-certificates', {
    config: { roles: ['admin', 'operator', 'manufacturer'] },
    schema: {
      tags: ['templates'], params,
      description: 'Issues the claim certificate of a manufacturing batch. Optional limits: maxDevices (devices in all) and ratePerMinute (devices per minute; beyond it a device is rejected with PROVISIONING_RATE_LIMITED, MQTT statusCode 429).',
      body: { type: 'object', required: ['batch'], additionalProperties: false, properties: { batch: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[\\w.:-]+$' }, maxDevices: claimMaxDevicesSchema, ratePerMinute: claimRateSchema, validityDays: { type: 'integer', minimum: 1, maximum: 3650 } } },
    },
  }, async (request, reply) => {
    const { templateName } = paramsOf<{ templateName: string }>(request);
    return reply.status(201).send(await deps.controlPlane.fleet.createClaimCertificate(ctxOf(request), templateName, bodyOf<{ batch: string; maxDevices?: number; ratePerMinute?: number; validityDays?: number }>(request)));
  });
  app.patch('/v1/claim-certificates/:certificateId', {
    config: { roles: ['admin', 'operator', 'manufacturer'] },
    schema: {
      tags: ['templates'], params: { type: 'object', required: ['certificateId'], properties: { certificateId: S.certificateId } },
      description: 'Changes the limits of a batch claim; null removes a limit. They apply to the next call of a device.',
      body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { maxDevices: { anyOf: [claimMaxDevicesSchema, { type: 'null' }] }, ratePerMinute: { anyOf: [claimRateSchema, { type: 'null' }] } } },
    },
  }, async (request) => {
    const { certificateId } = paramsOf<{ certificateId: string }>(request);
    return deps.controlPlane.fleet.updateClaim(ctxOf(request), certificateId, bodyOf<{ maxDevices?: number | null; ratePerMinute?: number | null }>(request));
  });
  app.get('/v1/provisioning-templates/:templateName/claim-certificates', { config: { roles: ['admin', 'operator', 'manufacturer'] }, schema: { tags: ['templates'], params } }, async (request) => ({
    claims: await deps.controlPlane.fleet.listClaims(ctxOf(request).tenantId, paramsOf<{ templateName: string }>(request).templateName),
  }));
  app.post('/v1/claim-certificates/:certificateId/revoke', { config: { roles: ['admin', 'operator', 'manufacturer'] }, schema: { tags: ['templates'], params: { type: 'object', required: ['certificateId'], properties: { certificateId: S.certificateId } } } }, async (request, reply) => {
    const { certificateId } = paramsOf<{ certificateId: string }>(request);
    await deps.controlPlane.revokeClaim(ctxOf(request), certificateId);
    return reply.status(204).send();
  });
  app.post('/v1/provisioning-templates/:templateName/provisioning-claim', { config: { roles: ['admin', 'operator', 'installer'] }, schema: { tags: ['templates'], params } }, async (request, reply) => {
    const { templateName } = paramsOf<{ templateName: string }>(request);
    return reply.status(201).send(await deps.controlPlane.fleet.createProvisioningClaim(ctxOf(request), templateName));
  });
}

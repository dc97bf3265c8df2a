import { randomUUID } from 'node:crypto';
import type { Executor } from '../store/index.ts';
import type { RegistryContext } from './context.ts';
import { nowIso } from './context.ts';
import { appendAudit } from './audit-log.ts';
import { RegistryErrors } from './errors.ts';
import type { WriteOptions } from './things.ts';
import { openSecret, sealSecret, webhookSecretLabel } from './secret-sealing.ts';

/** Event types a webhook may subscribe to (the API's enum, the CLI's help). */
export const WEBHOOK_EVENT_TYPES = [
  'presence.connected', 'presence.disconnected', 'thing.created', 'thing.updated', 'thing.deleted',
  'certificate.registered', 'jitp.provisioned', 'jitp.failed', 'jitr.activated', 'auto-registration.refused',
] as const;

/** A webhook subscription of a tenant (the secret is only returned when created). */
export interface Webhook {
  readonly webhookId: string;
  readonly tenantId: string;
  readonly url: string;
  readonly events: string[];
  readonly createdAt: string;
}

/** Creates a webhook subscription. */
export async function createWebhook(db: Executor, ctx: RegistryContext, input: { url: string; events: readonly string[]; secret: string }, opts: WriteOptions = {}): Promise<Webhook> {
  const webhookId = randomUUID();
  const row = { webhook_id: webhookId, tenant_id: ctx.tenantId, url: input.url, events: JSON.stringify([...new Set(input.events)]), secret: sealSecret(webhookSecretLabel(webhookId), input.secret), created_at: nowIso() };
  await db.insertInto('webhooks').values(row).execute();
  await appendAudit(db, ctx, 'webhook.create', `webhook/${row.webhook_id}`, { url: input.url, events: input.events }, opts.rowLocks);
  return { webhookId: row.webhook_id, tenantId: row.tenant_id, url: row.url, events: JSON.parse(row.events) as string[], createdAt: row.created_at };
}

/** Lists a tenant's webhooks. */
export async function listWebhooks(db: Executor, tenantId: string): Promise<Webhook[]> {
  const rows = await db.selectFrom('webhooks').select(['webhook_id', 'tenant_id', 'url', 'events', 'created_at']).where('tenant_id', '=', tenantId).orderBy('created_at').execute();
  return rows.map((r) => ({ webhookId: r.webhook_id, tenantId: r.tenant_id, url: r.url, events: JSON.parse(r.events) as string[], createdAt: r.created_at }));
}

/** Every webhook with its secret (the dispatcher's view). */
export async function listAllWebhookTargets(db: Executor): Promise<{ id: string; tenantId: string; url: string; secret: string; events: string[] }[]> {
  const rows = await db.selectFrom('webhooks').selectAll().execute();
  return rows.map((r) => ({ id: r.webhook_id, tenantId: r.tenant_id, url: r.url, secret: openSecret(webhookSecretLabel(r.webhook_id), r.secret), events: JSON.parse(r.events) as string[] }));
}

/** Deletes a webhook of the tenant. */
export async function deleteWebhook(db: Executor, ctx: RegistryContext, webhookId: string, opts: WriteOptions = {}): Promise<void> {
  const res = await db.deleteFrom('webhooks').where('tenant_id', '=', ctx.tenantId).where('webhook_id', '=', webhookId).executeTakeFirst();
  if (res.numDeletedRows === 0n) throw RegistryErrors.error('REGISTRY_WEBHOOK_NOT_FOUND', `no webhook ${webhookId}`);
  await appendAudit(db, ctx, 'webhook.delete', `webhook/${webhookId}`, {}, opts.rowLocks);
}

/** Records a delivery that failed for good. */
export async function insertDeadLetter(db: Executor, letter: { deliveryId: string; webhookId: string; url: string; body: string; attempts: number; lastError: string; failedAt: Date }): Promise<void> {
  await db.insertInto('webhook_dead_letters').values({ delivery_id: letter.deliveryId, webhook_id: letter.webhookId, url: letter.url, body: letter.body, attempts: letter.attempts, last_error: letter.lastError, failed_at: letter.failedAt.toISOString() }).execute();
}

/** Dead letters of one of the tenant's webhooks, newest first. */
export async function listDeadLetters(db: Executor, tenantId: string, webhookId: string, limit = 100): Promise<{ deliveryId: string; url: string; body: string; attempts: number; lastError: string; failedAt: string }[]> {
  const hook = await db.selectFrom('webhooks').select('webhook_id').where('tenant_id', '=', tenantId).where('webhook_id', '=', webhookId).executeTakeFirst();
  if (hook === undefined) throw RegistryErrors.error('REGISTRY_WEBHOOK_NOT_FOUND', `no webhook ${webhookId}`);
  const rows = await db.selectFrom('webhook_dead_letters').selectAll().where('webhook_id', '=', webhookId).orderBy('failed_at', 'desc').limit(limit).execute();
  return rows.map((r) => ({ deliveryId: r.delivery_id, url: r.url, body: r.body, attempts: r.attempts, lastError: r.last_error, failedAt: r.failed_at }));
}

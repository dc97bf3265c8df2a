/**
 * Secrets the registry stores for later use in clear by Gatehouse itself — the signing secrets of webhooks and of
 * pre-provisioning hooks — are sealed before they are written and opened when they are read. The registry holds no
 * key: the application installs a {@link SecretSealer} at start (AES-256-GCM under the installation's KEK, see
 * `src/app/gatehouse.ts`), so that a copy of the database alone does not let anyone forge Gatehouse's signatures.
 *
 * Without a sealer (unit tests of the registry) secrets are stored as given. A stored value that the sealer does not
 * recognise as sealed (a row written before sealing existed) is read as is; {@link resealLegacySecrets} seals those rows.
 */
import type { Executor } from '../store/index.ts';

/** Seals and opens secrets; `label` binds a sealed value to its place (a sealed secret moved to another row fails). */
export interface SecretSealer {
  seal(label: string, secret: string): string;
  open(label: string, stored: string): string;
  isSealed(stored: string): boolean;
}

let sealer: SecretSealer | undefined;

/** Installs the process's sealer (the application does, once its KEK is known); `undefined` removes it. */
export function useSecretSealer(next: SecretSealer | undefined): void {
  sealer = next;
}

/** True when a sealer is installed (secrets written now are sealed). */
export function isSecretSealerInstalled(): boolean {
  return sealer !== undefined;
}

/** The value to store for `secret`. */
export function sealSecret(label: string, secret: string): string {
  return sealer === undefined ? secret : sealer.seal(label, secret);
}

/** The secret of a stored value; a value written before sealing existed is returned as is. */
export function openSecret(label: string, stored: string): string {
  if (sealer === undefined || !sealer.isSealed(stored)) return stored;
  return sealer.open(label, stored);
}

/** True when a stored value is not sealed while a sealer is installed (a row to reseal). */
export function needsSealing(stored: string): boolean {
  return sealer !== undefined && !sealer.isSealed(stored);
}

/** The label of a webhook's secret. */
export const webhookSecretLabel = (webhookId: string): string => `webhook-secret:${webhookId}`;
/** The label of a provisioning template's pre-provisioning hook secret. */
export const hookSecretLabel = (tenantId: string, templateName: string): string => `pre-provisioning-hook-secret:${tenantId}:${templateName}`;

/**
 * Seals the secrets stored before sealing existed (webhooks, pre-provisioning hooks), in the caller's transaction;
 * returns how many were sealed. Idempotent, and harmless when another process does the same at the same time (a row
 * is only rewritten while it still holds the value read).
 */
export async function resealLegacySecrets(db: Executor): Promise<number> {
  if (sealer === undefined) return 0;
  let sealed = 0;
  for (const w of await db.selectFrom('webhooks').select(['webhook_id', 'secret']).execute()) {
    if (!needsSealing(w.secret)) continue;
    await db.updateTable('webhooks').set({ secret: sealSecret(webhookSecretLabel(w.webhook_id), w.secret) }).where('webhook_id', '=', w.webhook_id).where('secret', '=', w.secret).execute();
    sealed += 1;
  }
  const templates = await db.selectFrom('provisioning_templates').select(['tenant_id', 'template_name', 'pre_provisioning_hook']).where('pre_provisioning_hook', 'is not', null).execute();
  for (const t of templates) {
    const stored = t.pre_provisioning_hook ?? 'null';
    const hook = JSON.parse(stored) as { type?: unknown; secret?: unknown } | null;
    if (hook?.type !== 'webhook' || typeof hook.secret !== 'string' || !needsSealing(hook.secret)) continue;
    const next = JSON.stringify({ ...hook, secret: sealSecret(hookSecretLabel(t.tenant_id, t.template_name), hook.secret) });
    await db.updateTable('provisioning_templates').set({ pre_provisioning_hook: next }).where('tenant_id', '=', t.tenant_id).where('template_name', '=', t.template_name).where('pre_provisioning_hook', '=', stored).execute();
    sealed += 1;
  }
  return sealed;
}

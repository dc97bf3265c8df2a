import type { Executor } from '../store/index.ts';
import type { RegistryContext } from './context.ts';
import { nowIso } from './context.ts';
import { appendAudit } from './audit-log.ts';
import { RegistryErrors } from './errors.ts';
import type { WriteOptions } from './things.ts';

/** The built-in JITR registration hooks of a CA (issue 6: allow list, CRL). */
export interface CaRegistrationHooks {
  /** Activate a pending certificate whose CN or serial number is on the tenant's allow list. */
  readonly allowList: { readonly policyName?: string | undefined } | null;
  /** Refuse (revoke) a certificate listed in this CRL (PEM) or in the CRL at this URL. */
  readonly crlPem: string | null;
  readonly crlUrl: string | null;
}

/** Reads a CA's hooks (all off when never set). */
export async function getCaRegistrationHooks(db: Executor, tenantId: string, caCertificateId: string): Promise<CaRegistrationHooks> {
  const r = await db.selectFrom('ca_registration_hooks').selectAll().where('tenant_id', '=', tenantId).where('ca_certificate_id', '=', caCertificateId).executeTakeFirst();
  if (r === undefined) return { allowList: null, crlPem: null, crlUrl: null };
  return { allowList: r.allow_list === null ? null : (JSON.parse(r.allow_list) as { policyName?: string }), crlPem: r.crl_pem, crlUrl: r.crl_url };
}

/** Replaces a CA's hooks. */
export async function setCaRegistrationHooks(db: Executor, ctx: RegistryContext, caCertificateId: string, hooks: CaRegistrationHooks, opts: WriteOptions = {}): Promise<CaRegistrationHooks> {
  const ca = await db.selectFrom('ca_certificates').select('ca_certificate_id').where('tenant_id', '=', ctx.tenantId).where('ca_certificate_id', '=', caCertificateId).executeTakeFirst();
  if (ca === undefined) throw RegistryErrors.error('REGISTRY_CA_NOT_FOUND', `CA ${caCertificateId} does not exist in this tenant`);
  // checked now: a policy that is not there failed each allow-listed device at its first connection, left PENDING
  const policyName = hooks.allowList?.policyName;
  if (policyName !== undefined) {
    const policy = await db.selectFrom('policies').select('policy_name').where('tenant_id', '=', ctx.tenantId).where('policy_name', '=', policyName).executeTakeFirst();
    if (policy === undefined) throw RegistryErrors.error('REGISTRY_POLICY_NOT_FOUND', `policy "${policyName}" does not exist (the allow-list hook attaches it to each device it activates)`);
  }
  await db.deleteFrom('ca_registration_hooks').where('tenant_id', '=', ctx.tenantId).where('ca_certificate_id', '=', caCertificateId).execute();
  await db.insertInto('ca_registration_hooks').values({ tenant_id: ctx.tenantId, ca_certificate_id: caCertificateId, allow_list: hooks.allowList === null ? null : JSON.stringify(hooks.allowList), crl_pem: hooks.crlPem, crl_url: hooks.crlUrl, updated_at: nowIso() }).execute();
  await appendAudit(db, ctx, 'ca.registration-hooks', `cacert/${caCertificateId}`, { allowList: hooks.allowList !== null, crl: hooks.crlPem !== null || hooks.crlUrl !== null }, opts.rowLocks);
  return hooks;
}

/** Adds values to the tenant's allow list (idempotent); returns how many were new. */
export async function addAllowListEntries(db: Executor, ctx: RegistryContext, values: readonly string[], opts: WriteOptions = {}): Promise<number> {
  const unique = [...new Set(values.map((v) => v.trim()).filter((v) => v !== ''))];
  let added = 0;
  for (let i = 0; i < unique.length; i += 500) {
    const chunk = unique.slice(i, i + 500);
    const existing = new Set((await db.selectFrom('allow_list_entries').select('value').where('tenant_id', '=', ctx.tenantId).where('value', 'in', chunk).execute()).map((r) => r.value));
    const fresh = chunk.filter((v) => !existing.has(v));
    if (fresh.length > 0) await db.insertInto('allow_list_entries').values(fresh.map((value) => ({ tenant_id: ctx.tenantId, value, created_at: nowIso() }))).execute();
    added += fresh.length;
  }
  await appendAudit(db, ctx, 'allow-list.import', 'allow-list', { submitted: values.length, added }, opts.rowLocks);
  return added;
}

/** True when one of `candidates` is on the tenant's allow list. */
export async function isAllowListed(db: Executor, tenantId: string, candidates: readonly string[]): Promise<boolean> {
  const list = candidates.filter((c) => c !== '');
  if (list.length === 0) return false;
  const r = await db.selectFrom('allow_list_entries').select('value').where('tenant_id', '=', tenantId).where('value', 'in', list).limit(1).executeTakeFirst();
  return r !== undefined;
}

/** Lists allow-list values (paged by value). */
export async function listAllowList(db: Executor, tenantId: string, options: { after?: string | undefined; limit: number }): Promise<string[]> {
  let q = db.selectFrom('allow_list_entries').select('value').where('tenant_id', '=', tenantId);
  if (options.after !== undefined) q = q.where('value', '>', options.after);
  return (await q.orderBy('value').limit(options.limit).execute()).map((r) => r.value);
}

/** Removes one value. */
export async function removeAllowListEntry(db: Executor, ctx: RegistryContext, value: string, opts: WriteOptions = {}): Promise<void> {
  const res = await db.deleteFrom('allow_list_entries').where('tenant_id', '=', ctx.tenantId).where('value', '=', value).executeTakeFirst();
  if (res.numDeletedRows === 0n) throw RegistryErrors.error('REGISTRY_ALLOW_LIST_ENTRY_NOT_FOUND', `"${value}" is not on the allow list`);
  await appendAudit(db, ctx, 'allow-list.remove', 'allow-list', { value }, opts.rowLocks);
}

import { parsePolicyDocument } from '../policy/index.ts';
import { TemplateErrors, parseTemplate } from '../templates/index.ts';
import type { ProvisioningTemplate, ProvisioningTemplateType, TemplateExpression } from '../templates/index.ts';
import { prepare } from '../store/index.ts';
import type { Executor } from '../store/index.ts';
import type { RegistryContext } from './context.ts';
import { nowIso } from './context.ts';
import { appendAudit } from './audit-log.ts';
import { RegistryErrors } from './errors.ts';
import { assertValidName } from './names.ts';
import { hookSecretLabel, openSecret, sealSecret } from './secret-sealing.ts';
import type { Page, PageRequest } from './pagination.ts';
import { decodePageToken, pageLimit, toPage } from './pagination.ts';
import type { WriteOptions } from './things.ts';
import { updateCertificateStatus } from './certificates.ts';
import type { CertificateRecord } from './certificates.ts';

/** A template with its default version (the JITP and RegisterThing hot paths), prepared once per dialect. */
const templateByName = prepare('provisioning template by name', (db, p: { tenantId: string; name: string }) =>
  db
    .selectFrom('provisioning_templates as t')
    .innerJoin('provisioning_template_versions as v', (j) => j.onRef('v.tenant_id', '=', 't.tenant_id').onRef('v.template_name', '=', 't.template_name').onRef('v.version_id', '=', 't.default_version_id'))
    .select(['t.template_name', 't.template_type', 't.description', 't.enabled', 't.default_version_id', 'v.body', 't.pre_provisioning_hook', 't.created_at', 't.updated_at'])
    .where('t.tenant_id', '=', p.tenantId)
    .where('t.template_name', '=', p.name));

/** A pre-provisioning hook of a fleet template (protocols.md): a signed webhook, or the built-in allow list. */
export type PreProvisioningHook =
  | { readonly type: 'webhook'; readonly url: string; readonly secret?: string | undefined; readonly timeoutMs?: number | undefined }
  | { readonly type: 'allow-list'; readonly parameter: string; readonly values: readonly string[] };

/** A stored provisioning template (AWS DescribeProvisioningTemplate). */
export interface ProvisioningTemplateRecord {
  readonly templateName: string;
  readonly type: ProvisioningTemplateType;
  readonly description: string | null;
  readonly enabled: boolean;
  readonly defaultVersionId: number;
  /** The default version's body, as stored text. */
  readonly templateBody: string;
  readonly preProvisioningHook: PreProvisioningHook | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** AWS's limit of versions per template. */
export const MAX_TEMPLATE_VERSIONS = 5;

/**
 * Parses and validates a body for storage (errors carry the JSON path); `maxLength` is the installation's limit
 * (`templateMaxLength`, default 10240 characters).
 */
export function validateTemplateBody(name: string, type: ProvisioningTemplateType, body: unknown, maxLength?: number): { text: string; template: ProvisioningTemplate } {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const template = parseTemplate(text, { type, name, ...(maxLength === undefined ? {} : { maxLength }) });
  // A policy document written out in full (no function in it) is checked now, as the policy language reads it: one
  // that can never be created (an Effect of "Maybe", say) would fail every device at RegisterThing instead.
  for (const resource of template.resources) {
    if (resource.kind !== 'policy' || resource.policy.kind !== 'document') continue;
    const value = constantOf(resource.policy.document);
    if (value === NOT_CONSTANT) continue;
    try {
      parsePolicyDocument(value);
    } catch (cause) {
      throw TemplateErrors.error('TEMPLATE_POLICY_DOCUMENT_INVALID', `PolicyDocument is not a valid policy: ${cause instanceof Error ? cause.message : String(cause)}`, { details: { path: resource.policy.document.path }, cause });
    }
  }
  return { text, template };
}

const NOT_CONSTANT = Symbol('not constant');

/** The JSON value of an expression made of literals only, or NOT_CONSTANT when it holds a function or a reference. */
function constantOf(e: TemplateExpression): unknown {
  if (e.kind === 'literal') return e.value;
  if (e.kind === 'list') {
    const items = e.items.map(constantOf);
    return items.includes(NOT_CONSTANT) ? NOT_CONSTANT : items;
  }
  if (e.kind === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of e.entries) {
      const c = constantOf(v);
      if (c === NOT_CONSTANT) return NOT_CONSTANT;
      out[k] = c;
    }
    return out;
  }
  return NOT_CONSTANT;
}

/** The stored form of a hook: JSON, with a webhook's signing secret sealed (see secret-sealing.ts). */
function storedHook(tenantId: string, templateName: string, hook: PreProvisioningHook | null | undefined): string | null {
  if (hook === undefined || hook === null) return null;
  if (hook.type !== 'webhook' || hook.secret === undefined) return JSON.stringify(hook);
  return JSON.stringify({ ...hook, secret: sealSecret(hookSecretLabel(tenantId, templateName), hook.secret) });
}

/** A hook as stored, with its secret opened. */
function hookOf(tenantId: string, templateName: string, stored: string): PreProvisioningHook {
  const hook = JSON.parse(stored) as PreProvisioningHook;
  if (hook.type !== 'webhook' || hook.secret === undefined) return hook;
  return { ...hook, secret: openSecret(hookSecretLabel(tenantId, templateName), hook.secret) };
}

function toRecord(tenantId: string, r: { template_name: string; template_type: string; description: string | null; enabled: number; default_version_id: number; body: string; pre_provisioning_hook: string | null; created_at: string; updated_at: string }): ProvisioningTemplateRecord {
  return {
    templateName: r.template_name,
    type: r.template_type as ProvisioningTemplateType,
    description: r.description,
    enabled: r.enabled === 1,
    defaultVersionId: r.default_version_id,
    templateBody: r.body,
    preProvisioningHook: r.pre_provisioning_hook === null ? null : hookOf(tenantId, r.template_name, r.pre_provisioning_hook),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Creates a template (version 1). */
export async function createProvisioningTemplate(
  db: Executor,
  ctx: RegistryContext,
  input: { templateName: string; templateBody: unknown; type?: ProvisioningTemplateType | undefined; enabled?: boolean | undefined; description?: string | undefined; preProvisioningHook?: PreProvisioningHook | undefined; maxBodyLength?: number | undefined },
  opts: WriteOptions = {},
): Promise<ProvisioningTemplateRecord> {
  const name = assertValidName('template', input.templateName, 'templateName');
  const type = input.type ?? 'FLEET_PROVISIONING';
  const { text } = validateTemplateBody(name, type, input.templateBody, input.maxBodyLength);
  if (type === 'JITP' && input.preProvisioningHook !== undefined) throw jitpHook(name);
  const exists = await db.selectFrom('provisioning_templates').select('template_name').where('tenant_id', '=', ctx.tenantId).where('template_name', '=', name).executeTakeFirst();
  if (exists !== undefined) throw RegistryErrors.error('REGISTRY_TEMPLATE_EXISTS', `template "${name}" already exists`);
  const now = nowIso();
  await db
    .insertInto('provisioning_templates')
    .values({ tenant_id: ctx.tenantId, template_name: name, template_type: type, description: input.description ?? null, enabled: input.enabled === false ? 0 : 1, default_version_id: 1, pre_provisioning_hook: storedHook(ctx.tenantId, name, input.preProvisioningHook), created_at: now, updated_at: now })
    .execute();
  await db.insertInto('provisioning_template_versions').values({ tenant_id: ctx.tenantId, template_name: name, version_id: 1, body: text, created_at: now }).execute();
  await appendAudit(db, ctx, 'template.create', `provisioningtemplate/${name}`, { type }, opts.rowLocks);
  return getProvisioningTemplate(db, ctx.tenantId, name);
}

/**
 * A pre-provisioning hook on a JITP template: AWS runs hooks for fleet provisioning only, and JITP never called it, so
 * an allow list or webhook set there let every device of the CA through.
 */
function jitpHook(name: string): Error {
  return RegistryErrors.error('REGISTRY_TEMPLATE_HOOK_UNSUPPORTED', `template "${name}" is a JITP template: pre-provisioning hooks run for fleet provisioning only (for JITP/JITR devices use the CA's hooks: gatehouse ca hooks)`);
}

/** Reads a template with its default version body, or undefined. */
export async function findProvisioningTemplate(db: Executor, tenantId: string, name: string): Promise<ProvisioningTemplateRecord | undefined> {
  const r = await templateByName.first(db, { tenantId, name });
  return r === undefined ? undefined : toRecord(tenantId, r);
}

/** Reads a template or throws REGISTRY_TEMPLATE_NOT_FOUND. */
export async function getProvisioningTemplate(db: Executor, tenantId: string, name: string): Promise<ProvisioningTemplateRecord> {
  const t = await findProvisioningTemplate(db, tenantId, name);
  if (t === undefined) throw RegistryErrors.error('REGISTRY_TEMPLATE_NOT_FOUND', `provisioning template "${name}" does not exist`);
  return t;
}

/** Updates enabled / description / hook / default version (AWS UpdateProvisioningTemplate). */
export async function updateProvisioningTemplate(
  db: Executor,
  ctx: RegistryContext,
  name: string,
  update: { enabled?: boolean | undefined; description?: string | undefined; defaultVersionId?: number | undefined; preProvisioningHook?: PreProvisioningHook | null | undefined },
  opts: WriteOptions = {},
): Promise<ProvisioningTemplateRecord> {
  const current = await getProvisioningTemplate(db, ctx.tenantId, name);
  if (current.type === 'JITP' && update.preProvisioningHook !== undefined && update.preProvisioningHook !== null) throw jitpHook(name);
  if (update.defaultVersionId !== undefined) {
    const v = await db.selectFrom('provisioning_template_versions').select('version_id').where('tenant_id', '=', ctx.tenantId).where('template_name', '=', name).where('version_id', '=', update.defaultVersionId).executeTakeFirst();
    if (v === undefined) throw RegistryErrors.error('REGISTRY_TEMPLATE_VERSION_NOT_FOUND', `template "${name}" has no version ${update.defaultVersionId}`);
  }
  await db
    .updateTable('provisioning_templates')
    .set({
      enabled: (update.enabled ?? current.enabled) ? 1 : 0,
      description: update.description ?? current.description,
      default_version_id: update.defaultVersionId ?? current.defaultVersionId,
      pre_provisioning_hook: storedHook(ctx.tenantId, name, update.preProvisioningHook === undefined ? current.preProvisioningHook : update.preProvisioningHook),
      updated_at: nowIso(),
    })
    .where('tenant_id', '=', ctx.tenantId)
    .where('template_name', '=', name)
    .execute();
  await appendAudit(db, ctx, 'template.update', `provisioningtemplate/${name}`, { enabled: update.enabled, defaultVersionId: update.defaultVersionId, hook: update.preProvisioningHook === undefined ? undefined : update.preProvisioningHook?.type ?? null }, opts.rowLocks);
  return getProvisioningTemplate(db, ctx.tenantId, name);
}

/** Adds a version (AWS CreateProvisioningTemplateVersion). */
export async function createProvisioningTemplateVersion(db: Executor, ctx: RegistryContext, name: string, input: { templateBody: unknown; setAsDefault?: boolean | undefined; maxBodyLength?: number | undefined }, opts: WriteOptions = {}): Promise<{ versionId: number; isDefaultVersion: boolean }> {
  const current = await getProvisioningTemplate(db, ctx.tenantId, name);
  const { text } = validateTemplateBody(name, current.type, input.templateBody, input.maxBodyLength);
  const versions = await db.selectFrom('provisioning_template_versions').select('version_id').where('tenant_id', '=', ctx.tenantId).where('template_name', '=', name).execute();
  if (versions.length >= MAX_TEMPLATE_VERSIONS) throw RegistryErrors.error('REGISTRY_TEMPLATE_VERSION_LIMIT', `template "${name}" already has ${MAX_TEMPLATE_VERSIONS} versions`);
  const versionId = Math.max(...versions.map((v) => v.version_id)) + 1;
  const now = nowIso();
  await db.insertInto('provisioning_template_versions').values({ tenant_id: ctx.tenantId, template_name: name, version_id: versionId, body: text, created_at: now }).execute();
  if (input.setAsDefault === true) await db.updateTable('provisioning_templates').set({ default_version_id: versionId, updated_at: now }).where('tenant_id', '=', ctx.tenantId).where('template_name', '=', name).execute();
  await appendAudit(db, ctx, 'template.version.create', `provisioningtemplate/${name}`, { versionId }, opts.rowLocks);
  return { versionId, isDefaultVersion: input.setAsDefault === true };
}

/** Lists a template's versions. */
export async function listProvisioningTemplateVersions(db: Executor, tenantId: string, name: string): Promise<{ versionId: number; isDefaultVersion: boolean; createdAt: string }[]> {
  const t = await getProvisioningTemplate(db, tenantId, name);
  const rows = await db.selectFrom('provisioning_template_versions').select(['version_id', 'created_at']).where('tenant_id', '=', tenantId).where('template_name', '=', name).orderBy('version_id').execute();
  return rows.map((r) => ({ versionId: r.version_id, isDefaultVersion: r.version_id === t.defaultVersionId, createdAt: r.created_at }));
}

/** One version with its body (AWS DescribeProvisioningTemplateVersion). */
export async function getProvisioningTemplateVersion(db: Executor, tenantId: string, name: string, versionId: number): Promise<{ versionId: number; isDefaultVersion: boolean; templateBody: string; createdAt: string }> {
  const t = await getProvisioningTemplate(db, tenantId, name);
  const row = await db.selectFrom('provisioning_template_versions').select(['version_id', 'body', 'created_at']).where('tenant_id', '=', tenantId).where('template_name', '=', name).where('version_id', '=', versionId).executeTakeFirst();
  if (row === undefined) throw RegistryErrors.error('REGISTRY_TEMPLATE_VERSION_NOT_FOUND', `template "${name}" has no version ${versionId}`);
  return { versionId: row.version_id, isDefaultVersion: row.version_id === t.defaultVersionId, templateBody: row.body, createdAt: row.created_at };
}

/**
 * Deletes a version that is not the default (AWS DeleteProvisioningTemplateVersion): a template keeps at most
 * {@link MAX_TEMPLATE_VERSIONS}, so this is how room is made for a new one.
 */
export async function deleteProvisioningTemplateVersion(db: Executor, ctx: RegistryContext, name: string, versionId: number, opts: WriteOptions = {}): Promise<void> {
  const t = await getProvisioningTemplate(db, ctx.tenantId, name);
  if (t.defaultVersionId === versionId) throw RegistryErrors.error('REGISTRY_TEMPLATE_VERSION_IS_DEFAULT', `version ${versionId} is the default of template "${name}"; make another version the default first`);
  const res = await db.deleteFrom('provisioning_template_versions').where('tenant_id', '=', ctx.tenantId).where('template_name', '=', name).where('version_id', '=', versionId).executeTakeFirst();
  if (res.numDeletedRows === 0n) throw RegistryErrors.error('REGISTRY_TEMPLATE_VERSION_NOT_FOUND', `template "${name}" has no version ${versionId}`);
  await appendAudit(db, ctx, 'template.version.delete', `provisioningtemplate/${name}`, { versionId }, opts.rowLocks);
}

/** What `deleteProvisioningTemplate` does with the template's live claims (neither revoked nor expired). */
export type TemplateClaimsOnDelete = 'refuse' | 'revoke' | 'keep';

/** How many claim ids a refusal names. */
const CLAIMS_NAMED = 20;

/**
 * Deletes a template and its versions. Refused while a CA (not revoked) uses it as its JITP template. Live claims of the template
 * (batch and trusted-user claims neither revoked nor expired) would provision again under any later template of the
 * same name, so they must be dealt with: `refuse` (the default) fails naming them, `revoke` revokes them in the same
 * transaction, `keep` leaves them for a template recreated under the name. Returns the revoked claims.
 */
export async function deleteProvisioningTemplate(db: Executor, ctx: RegistryContext, name: string, opts: WriteOptions & { claims?: TemplateClaimsOnDelete } = {}): Promise<{ claimsRevoked: CertificateRecord[] }> {
  await getProvisioningTemplate(db, ctx.tenantId, name);
  // a revoked CA provisions nothing and cannot be changed any more: it does not hold the template
  const cas = await db.selectFrom('ca_certificates').select('ca_certificate_id').where('tenant_id', '=', ctx.tenantId).where('registration_template', '=', name).where('status', '!=', 'REVOKED').orderBy('ca_certificate_id').execute();
  if (cas.length > 0) {
    const ids = cas.map((c) => c.ca_certificate_id);
    throw RegistryErrors.error('REGISTRY_TEMPLATE_IN_USE', `template "${name}" is the JITP template of ${ids.length === 1 ? 'CA' : `${ids.length} CAs:`} ${ids.join(', ')}; give the CA another template first`, { details: { caCertificateIds: ids } });
  }
  const now = nowIso();
  const live = await db.selectFrom('claim_certificates').select(['certificate_id', 'kind']).where('tenant_id', '=', ctx.tenantId).where('template_name', '=', name).where('revoked_at', 'is', null).where('expires_at', '>', now).orderBy('created_at').execute();
  const mode = opts.claims ?? 'refuse';
  if (live.length > 0 && mode === 'refuse') {
    const ids = live.map((c) => c.certificate_id);
    throw RegistryErrors.error(
      'REGISTRY_TEMPLATE_IN_USE',
      `template "${name}" has ${ids.length} live claim${ids.length === 1 ? '' : 's'} (neither revoked nor expired), which would provision again under a later template of this name: revoke them with the template (claims=revoke, CLI --revoke-claims) or keep them on purpose (claims=keep, CLI --keep-claims)`,
      { details: { claimCount: ids.length, claimCertificateIds: ids.slice(0, CLAIMS_NAMED) } },
    );
  }
  const claimsRevoked: CertificateRecord[] = [];
  if (mode === 'revoke') {
    for (const c of live) {
      await db.updateTable('claim_certificates').set({ revoked_at: now }).where('tenant_id', '=', ctx.tenantId).where('certificate_id', '=', c.certificate_id).execute();
      claimsRevoked.push(await updateCertificateStatus(db, ctx, c.certificate_id, 'REVOKED', { ...opts, reason: 'cessationOfOperation' }));
    }
  }
  await db.deleteFrom('provisioning_template_versions').where('tenant_id', '=', ctx.tenantId).where('template_name', '=', name).execute();
  await db.deleteFrom('provisioning_templates').where('tenant_id', '=', ctx.tenantId).where('template_name', '=', name).execute();
  await appendAudit(db, ctx, 'template.delete', `provisioningtemplate/${name}`, { claimsRevoked: claimsRevoked.map((c) => c.certificateId), claimsKept: mode === 'keep' ? live.map((c) => c.certificate_id) : [] }, opts.rowLocks);
  return { claimsRevoked };
}

/** Lists templates. */
export async function listProvisioningTemplates(db: Executor, tenantId: string, filter: PageRequest): Promise<Page<{ templateName: string; type: string; enabled: boolean; defaultVersionId: number; description: string | null }>> {
  const limit = pageLimit(filter);
  const after = decodePageToken(filter.nextToken);
  let q = db.selectFrom('provisioning_templates').selectAll().where('tenant_id', '=', tenantId);
  if (after !== undefined) q = q.where('template_name', '>', after);
  const rows = await q.orderBy('template_name').limit(limit + 1).execute();
  return toPage(rows, limit, (r) => r.template_name, (r) => ({ templateName: r.template_name, type: r.template_type, enabled: r.enabled === 1, defaultVersionId: r.default_version_id, description: r.description }));
}

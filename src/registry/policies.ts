import { sql } from 'kysely';
import { parsePolicyDocument } from '../policy/index.ts';
import { isPostgres, prepare } from '../store/index.ts';
import type { Executor } from '../store/index.ts';
import type { RegistryContext } from './context.ts';
import { nowIso } from './context.ts';
import { appendAudit } from './audit-log.ts';
import { RegistryErrors } from './errors.ts';
import { pendingTransfer } from './certificates.ts';
import { assertCertificateId, assertValidName } from './names.ts';
import type { Page, PageRequest } from './pagination.ts';
import { decodePageToken, pageLimit, toPage } from './pagination.ts';
import type { AttachOptions, WriteOptions } from './things.ts';
import { lockRow } from './row-locks.ts';

// The statements of the provisioning and connect hot paths, prepared once per dialect (src/store/prepared.ts).
const policyByName = prepare('policy by name', (db, q: { tenantId: string; name: string }) =>
  db
    .selectFrom('policies as p')
    .innerJoin('policy_versions as v', (j) => j.onRef('v.tenant_id', '=', 'p.tenant_id').onRef('v.policy_name', '=', 'p.policy_name').onRef('v.version_id', '=', 'p.default_version_id'))
    .select(['p.policy_name', 'p.default_version_id', 'v.document', 'p.created_at', 'p.updated_at'])
    .where('p.tenant_id', '=', q.tenantId)
    .where('p.policy_name', '=', q.name));
const insertAttachment = prepare('attach policy', (db, q: { tenantId: string; policyName: string; targetType: string; targetId: string }) =>
  db.insertInto('policy_attachments').values({ tenant_id: q.tenantId, policy_name: q.policyName, target_type: q.targetType, target_id: q.targetId }).onConflict((oc) => oc.doNothing()));
/** The default versions of the policies attached to the certificate or to the groups of its things, in one statement. */
const effectivePolicies = prepare('effective policies of a certificate', (db, q: { tenantId: string; certificateId: string }) => {
  const direct = db
    .selectFrom('policy_attachments as a')
    .select('a.policy_name')
    .where('a.tenant_id', '=', q.tenantId)
    .where('a.target_type', '=', 'certificate')
    .where('a.target_id', '=', q.certificateId);
  // From the certificate outwards: its things, their groups, the groups' attachments, each an index seek. The joins
  // are CROSS JOINs because SQLite keeps their order: with INNER JOINs its planner (no statistics) started from every
  // group member of the tenant instead. PostgreSQL plans CROSS JOIN with WHERE like the INNER JOIN it is.
  const viaGroups = db
    .selectFrom('thing_principals as tp')
    .crossJoin('thing_group_members as m')
    .crossJoin('policy_attachments as a')
    .select('a.policy_name')
    .where('tp.tenant_id', '=', q.tenantId)
    .where('tp.certificate_id', '=', q.certificateId)
    .whereRef('m.tenant_id', '=', 'tp.tenant_id')
    .whereRef('m.thing_name', '=', 'tp.thing_name')
    .whereRef('a.tenant_id', '=', 'm.tenant_id')
    .where('a.target_type', '=', 'thinggroup')
    .whereRef('a.target_id', '=', 'm.thing_group_name');
  return db
    .selectFrom('policies as p')
    .innerJoin('policy_versions as v', (j) => j.onRef('v.tenant_id', '=', 'p.tenant_id').onRef('v.policy_name', '=', 'p.policy_name').onRef('v.version_id', '=', 'p.default_version_id'))
    .select(['p.policy_name', 'v.document'])
    .where('p.tenant_id', '=', q.tenantId)
    .where('p.policy_name', 'in', direct.union(viaGroups))
    .orderBy('p.policy_name');
});

/** A policy with its default version's document. */
export interface Policy {
  readonly policyName: string;
  readonly defaultVersionId: number;
  /** The default version's document, as stored JSON text. */
  readonly policyDocument: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** One version of a policy. */
export interface PolicyVersion {
  readonly versionId: number;
  readonly isDefaultVersion: boolean;
  readonly policyDocument: string;
  readonly createdAt: string;
}

/** Where a policy is attached: a certificate (by id) or a thing group. */
export type PolicyTarget = { readonly kind: 'certificate'; readonly certificateId: string } | { readonly kind: 'thinggroup'; readonly thingGroupName: string };

/** AWS's limit of versions per policy. */
export const MAX_POLICY_VERSIONS = 5;

/** Validates the grammar and returns the canonical JSON text to store. */
function canonicalDocument(document: unknown): string {
  const text = typeof document === 'string' ? document : JSON.stringify(document);
  parsePolicyDocument(text);
  return JSON.stringify(JSON.parse(text));
}

/** Parses `target` of the attach API: a certificate id or `thinggroup/<name>`. */
export function parsePolicyTarget(target: unknown): PolicyTarget {
  if (typeof target === 'string' && target.startsWith('thinggroup/')) {
    return { kind: 'thinggroup', thingGroupName: assertValidName('thingGroup', target.slice('thinggroup/'.length), 'target') };
  }
  if (typeof target === 'string' && /^[0-9a-f]{64}$/.test(target)) return { kind: 'certificate', certificateId: target };
  const cert = typeof target === 'string' ? /^(?:arn:[^:]*:iot:[^:]*:[^:]*:)?cert\/([0-9a-f]{64})$/.exec(target) : null;
  if (cert?.[1] !== undefined) return { kind: 'certificate', certificateId: cert[1] };
  throw RegistryErrors.error('REGISTRY_TARGET_INVALID', 'target must be a certificate id (64 hex) or thinggroup/<name>');
}

/** Creates a policy (version 1, default). */
export async function createPolicy(db: Executor, ctx: RegistryContext, input: { policyName: string; policyDocument: unknown }, opts: WriteOptions = {}): Promise<Policy> {
  const name = assertValidName('policy', input.policyName);
  const doc = canonicalDocument(input.policyDocument);
  const exists = await db.selectFrom('policies').select('policy_name').where('tenant_id', '=', ctx.tenantId).where('policy_name', '=', name).executeTakeFirst();
  if (exists !== undefined) throw RegistryErrors.error('REGISTRY_POLICY_EXISTS', `policy "${name}" already exists`);
  const now = nowIso();
  // attachments left by a delete that raced an attach before deletes and attaches took row locks: a new policy of
  // that name must not inherit them (they granted it to certificates nobody attached it to)
  await db.deleteFrom('policy_attachments').where('tenant_id', '=', ctx.tenantId).where('policy_name', '=', name).execute();
  await db.insertInto('policies').values({ tenant_id: ctx.tenantId, policy_name: name, default_version_id: 1, created_at: now, updated_at: now }).execute();
  await db.insertInto('policy_versions').values({ tenant_id: ctx.tenantId, policy_name: name, version_id: 1, document: doc, created_at: now }).execute();
  await appendAudit(db, ctx, 'policy.create', `policy/${name}`, {}, opts.rowLocks);
  return getPolicy(db, ctx.tenantId, name);
}

/** Reads a policy with its default document. */
export async function getPolicy(db: Executor, tenantId: string, name: string): Promise<Policy> {
  const p = await findPolicy(db, tenantId, name);
  if (p === undefined) throw RegistryErrors.error('REGISTRY_POLICY_NOT_FOUND', `policy "${name}" does not exist`);
  return p;
}

/** Reads a policy if it exists. */
export async function findPolicy(db: Executor, tenantId: string, name: string): Promise<Policy | undefined> {
  const r = await policyByName.first(db, { tenantId, name });
  return r === undefined ? undefined : { policyName: r.policy_name, defaultVersionId: r.default_version_id, policyDocument: r.document, createdAt: r.created_at, updatedAt: r.updated_at };
}

/** Adds a version (AWS CreatePolicyVersion); at most 5 versions. */
export async function createPolicyVersion(db: Executor, ctx: RegistryContext, name: string, input: { policyDocument: unknown; setAsDefault?: boolean | undefined }, opts: WriteOptions = {}): Promise<PolicyVersion> {
  const policy = await getPolicy(db, ctx.tenantId, name);
  const doc = canonicalDocument(input.policyDocument);
  const versions = await db.selectFrom('policy_versions').select('version_id').where('tenant_id', '=', ctx.tenantId).where('policy_name', '=', name).execute();
  if (versions.length >= MAX_POLICY_VERSIONS) throw RegistryErrors.error('REGISTRY_POLICY_VERSION_LIMIT', `policy "${name}" already has ${MAX_POLICY_VERSIONS} versions`);
  const versionId = Math.max(...versions.map((v) => v.version_id)) + 1;
  const now = nowIso();
  await db.insertInto('policy_versions').values({ tenant_id: ctx.tenantId, policy_name: name, version_id: versionId, document: doc, created_at: now }).execute();
  const isDefault = input.setAsDefault === true;
  await db.updateTable('policies').set({ updated_at: now, default_version_id: isDefault ? versionId : policy.defaultVersionId }).where('tenant_id', '=', ctx.tenantId).where('policy_name', '=', name).execute();
  await appendAudit(db, ctx, 'policy.version.create', `policy/${name}`, { versionId, setAsDefault: isDefault }, opts.rowLocks);
  return { versionId, isDefaultVersion: isDefault, policyDocument: doc, createdAt: now };
}

/** Lists the versions of a policy. */
export async function listPolicyVersions(db: Executor, tenantId: string, name: string): Promise<PolicyVersion[]> {
  const policy = await getPolicy(db, tenantId, name);
  const rows = await db.selectFrom('policy_versions').selectAll().where('tenant_id', '=', tenantId).where('policy_name', '=', name).orderBy('version_id').execute();
  return rows.map((r) => ({ versionId: r.version_id, isDefaultVersion: r.version_id === policy.defaultVersionId, policyDocument: r.document, createdAt: r.created_at }));
}

/** Makes a version the default one. */
export async function setDefaultPolicyVersion(db: Executor, ctx: RegistryContext, name: string, versionId: number, opts: WriteOptions = {}): Promise<void> {
  await getPolicy(db, ctx.tenantId, name);
  const v = await db.selectFrom('policy_versions').select('version_id').where('tenant_id', '=', ctx.tenantId).where('policy_name', '=', name).where('version_id', '=', versionId).executeTakeFirst();
  if (v === undefined) throw RegistryErrors.error('REGISTRY_POLICY_VERSION_NOT_FOUND', `policy "${name}" has no version ${versionId}`);
  await db.updateTable('policies').set({ default_version_id: versionId, updated_at: nowIso() }).where('tenant_id', '=', ctx.tenantId).where('policy_name', '=', name).execute();
  await appendAudit(db, ctx, 'policy.version.set-default', `policy/${name}`, { versionId }, opts.rowLocks);
}

/** Deletes a non-default version. */
export async function deletePolicyVersion(db: Executor, ctx: RegistryContext, name: string, versionId: number, opts: WriteOptions = {}): Promise<void> {
  const policy = await getPolicy(db, ctx.tenantId, name);
  if (policy.defaultVersionId === versionId) throw RegistryErrors.error('REGISTRY_POLICY_VERSION_IS_DEFAULT', `version ${versionId} is the default of "${name}"`);
  const res = await db.deleteFrom('policy_versions').where('tenant_id', '=', ctx.tenantId).where('policy_name', '=', name).where('version_id', '=', versionId).executeTakeFirst();
  if (res.numDeletedRows === 0n) throw RegistryErrors.error('REGISTRY_POLICY_VERSION_NOT_FOUND', `policy "${name}" has no version ${versionId}`);
  await appendAudit(db, ctx, 'policy.version.delete', `policy/${name}`, { versionId }, opts.rowLocks);
}

/** Deletes a policy that is attached nowhere. */
export async function deletePolicy(db: Executor, ctx: RegistryContext, name: string, opts: WriteOptions = {}): Promise<void> {
  await lockRow(db, 'policies', ctx.tenantId, name, 'update', opts);
  await getPolicy(db, ctx.tenantId, name);
  const attached = (await attachmentsOfPolicy(db, ctx.tenantId, name, 1))[0];
  if (attached !== undefined) throw RegistryErrors.error('REGISTRY_POLICY_ATTACHED', `policy "${name}" is still attached; detach it first`);
  // the JITR allow-list hook attaches it to each device it activates (stored as written by setCaRegistrationHooks)
  const hook = await db.selectFrom('ca_registration_hooks').select('ca_certificate_id').where('tenant_id', '=', ctx.tenantId).where('allow_list', '=', JSON.stringify({ policyName: name })).executeTakeFirst();
  if (hook !== undefined) throw RegistryErrors.error('REGISTRY_POLICY_ATTACHED', `policy "${name}" is the allow-list hook policy of CA ${hook.ca_certificate_id}; change the CA's hooks first`);
  await db.deleteFrom('policy_versions').where('tenant_id', '=', ctx.tenantId).where('policy_name', '=', name).execute();
  await db.deleteFrom('policies').where('tenant_id', '=', ctx.tenantId).where('policy_name', '=', name).execute();
  await appendAudit(db, ctx, 'policy.delete', `policy/${name}`, {}, opts.rowLocks);
}

/** Lists policies. */
export async function listPolicies(db: Executor, tenantId: string, filter: PageRequest & { namePrefix?: string | undefined }): Promise<Page<{ policyName: string; defaultVersionId: number }>> {
  const limit = pageLimit(filter);
  const after = decodePageToken(filter.nextToken);
  let q = db.selectFrom('policies').select(['policy_name', 'default_version_id']).where('tenant_id', '=', tenantId);
  if (filter.namePrefix !== undefined) q = q.where('policy_name', '>=', filter.namePrefix).where('policy_name', '<', `${filter.namePrefix}\uffff`);
  if (after !== undefined) q = q.where('policy_name', '>', after);
  const rows = await q.orderBy('policy_name').limit(limit + 1).execute();
  return toPage(rows, limit, (r) => r.policy_name, (r) => ({ policyName: r.policy_name, defaultVersionId: r.default_version_id }));
}

async function assertTargetExists(db: Executor, tenantId: string, target: PolicyTarget): Promise<void> {
  if (target.kind === 'certificate') {
    const c = await db.selectFrom('certificates').select(['certificate_id', 'status']).where('tenant_id', '=', tenantId).where('certificate_id', '=', target.certificateId).executeTakeFirst();
    if (c === undefined) throw RegistryErrors.error('REGISTRY_CERTIFICATE_NOT_FOUND', `certificate ${target.certificateId} does not exist`);
    if (c.status === 'PENDING_TRANSFER') throw pendingTransfer(target.certificateId, 'attached to a policy');
  } else {
    const g = await db.selectFrom('thing_groups').select('thing_group_name').where('tenant_id', '=', tenantId).where('thing_group_name', '=', target.thingGroupName).executeTakeFirst();
    if (g === undefined) throw RegistryErrors.error('REGISTRY_THING_GROUP_NOT_FOUND', `thing group "${target.thingGroupName}" does not exist`);
  }
}

function targetColumns(target: PolicyTarget): { target_type: string; target_id: string } {
  return target.kind === 'certificate' ? { target_type: 'certificate', target_id: target.certificateId } : { target_type: 'thinggroup', target_id: target.thingGroupName };
}

/** Attaches a policy to a certificate or thing group (idempotent). */
export async function attachPolicy(db: Executor, ctx: RegistryContext, policyName: string, target: PolicyTarget, opts: AttachOptions = {}): Promise<void> {
  if (opts.endsVerified !== true) {
    await lockRow(db, 'policies', ctx.tenantId, policyName, 'share', opts);
    await getPolicy(db, ctx.tenantId, policyName);
    if (target.kind === 'thinggroup') await lockRow(db, 'thing_groups', ctx.tenantId, target.thingGroupName, 'share', opts);
    await assertTargetExists(db, ctx.tenantId, target);
  }
  const cols = targetColumns(target);
  const res = await insertAttachment.run(db, { tenantId: ctx.tenantId, policyName, targetType: cols.target_type, targetId: cols.target_id });
  if (res.numAffectedRows === 0n) return;
  await appendAudit(db, ctx, 'policy.attach', `policy/${policyName}`, { target: `${cols.target_type}/${cols.target_id}` }, opts.rowLocks);
}

/** Detaches a policy. */
export async function detachPolicy(db: Executor, ctx: RegistryContext, policyName: string, target: PolicyTarget, opts: WriteOptions = {}): Promise<void> {
  const cols = targetColumns(target);
  const res = await db.deleteFrom('policy_attachments').where('tenant_id', '=', ctx.tenantId).where('policy_name', '=', policyName).where('target_type', '=', cols.target_type).where('target_id', '=', cols.target_id).executeTakeFirst();
  if (res.numDeletedRows === 0n) throw RegistryErrors.error('REGISTRY_ATTACHMENT_NOT_FOUND', `policy "${policyName}" is not attached to ${cols.target_type}/${cols.target_id}`);
  await appendAudit(db, ctx, 'policy.detach', `policy/${policyName}`, { target: `${cols.target_type}/${cols.target_id}` }, opts.rowLocks);
}

/** Targets a policy is attached to. */
export async function listPolicyTargets(db: Executor, tenantId: string, policyName: string): Promise<string[]> {
  await getPolicy(db, tenantId, policyName);
  const rows = await attachmentsOfPolicy(db, tenantId, policyName, undefined);
  return rows.map((r) => (r.target_type === 'certificate' ? r.target_id : `thinggroup/${r.target_id}`));
}

/**
 * The attachments of one policy, in target order. The key of policy_attachments starts with the target (migration
 * 0010); by policy there is an index, which SQLite without statistics passes over for the covering key (a scan of
 * the tenant's attachments), so it is named there.
 */
async function attachmentsOfPolicy(db: Executor, tenantId: string, policyName: string, limit: number | undefined): Promise<{ target_type: string; target_id: string }[]> {
  if (isPostgres(db)) {
    const q = db.selectFrom('policy_attachments').select(['target_type', 'target_id']).where('tenant_id', '=', tenantId).where('policy_name', '=', policyName).orderBy('target_type').orderBy('target_id');
    return (limit === undefined ? q : q.limit(limit)).execute();
  }
  const limitSql = limit === undefined ? sql`` : sql` limit ${limit}`;
  const rows = await sql<{ target_type: string; target_id: string }>`select target_type, target_id from policy_attachments indexed by policy_attachments_policy where tenant_id = ${tenantId} and policy_name = ${policyName} order by target_type, target_id${limitSql}`.execute(db);
  return rows.rows;
}

/** Policies attached directly to a target. */
export async function listAttachedPolicies(db: Executor, tenantId: string, target: PolicyTarget): Promise<string[]> {
  const cols = targetColumns(target);
  const rows = await db.selectFrom('policy_attachments').select('policy_name').where('tenant_id', '=', tenantId).where('target_type', '=', cols.target_type).where('target_id', '=', cols.target_id).orderBy('policy_name').execute();
  return rows.map((r) => r.policy_name);
}

/**
 * The effective policy documents of a certificate (architecture.md / issue 4): those attached to the certificate
 * plus those attached to the thing groups of the things the certificate is attached to.
 */
export async function effectivePolicyDocuments(db: Executor, tenantId: string, certificateId: string): Promise<{ policyName: string; document: string }[]> {
  assertCertificateId(certificateId);
  const rows = await effectivePolicies.all(db, { tenantId, certificateId });
  return rows.map((r) => ({ policyName: r.policy_name, document: r.document }));
}

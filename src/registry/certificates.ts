import { sql } from 'kysely';
import { prepare } from '../store/index.ts';
import type { CertificatesTable, Executor } from '../store/index.ts';
import type { RegistryContext } from './context.ts';
import { nowIso } from './context.ts';
import { appendAudit } from './audit-log.ts';
import { RegistryErrors } from './errors.ts';
import { assertCertificateId, assertValidName } from './names.ts';
import type { Page, PageRequest } from './pagination.ts';
import { decodePageToken, pageLimit, toPage } from './pagination.ts';
import type { AttachOptions, WriteOptions } from './things.ts';
import { lockRow } from './row-locks.ts';

type CertificatesRow = CertificatesTable;

// Literals, not parameters: SQLite uses a partial index (migration 0009) only when the query names its condition.
const PENDING_TRANSFER = sql.lit('PENDING_TRANSFER');
const REVOKED = sql.lit('REVOKED');

// The statements of the provisioning hot paths, prepared once per dialect (src/store/prepared.ts).
type CertKey = { tenantId: string; certificateId: string };
const certificateById = prepare('certificate by id', (db, p: CertKey) => db.selectFrom('certificates').selectAll().where('tenant_id', '=', p.tenantId).where('certificate_id', '=', p.certificateId));
const certificateExists = prepare('certificate exists', (db, p: CertKey) => db.selectFrom('certificates').select('certificate_id').where('tenant_id', '=', p.tenantId).where('certificate_id', '=', p.certificateId));
const insertCertificateRow = prepare('insert certificate', (db, p: CertificatesRow) => db.insertInto('certificates').values({
  tenant_id: p.tenant_id, certificate_id: p.certificate_id, certificate_pem: p.certificate_pem, ca_certificate_id: p.ca_certificate_id, status: p.status, serial_number: p.serial_number,
  subject_cn: p.subject_cn, not_before: p.not_before, not_after: p.not_after, created_by: p.created_by, hidden: p.hidden, transfer_to_tenant_id: p.transfer_to_tenant_id,
  previous_status: p.previous_status, revocation_reason: p.revocation_reason, revoked_at: p.revoked_at, created_at: p.created_at, updated_at: p.updated_at,
}));
const updateStatus = prepare('update certificate status', (db, p: CertKey & { status: CertificateStatus; now: string }) =>
  db.updateTable('certificates').set({ status: p.status, updated_at: p.now }).where('tenant_id', '=', p.tenantId).where('certificate_id', '=', p.certificateId));
const insertPrincipal = prepare('attach thing principal', (db, p: CertKey & { thingName: string }) =>
  db.insertInto('thing_principals').values({ tenant_id: p.tenantId, thing_name: p.thingName, certificate_id: p.certificateId }).onConflict((oc) => oc.doNothing()));
const thingsOfPrincipal = prepare('things of a principal', (db, p: CertKey) => db.selectFrom('thing_principals').select('thing_name').where('tenant_id', '=', p.tenantId).where('certificate_id', '=', p.certificateId).orderBy('thing_name'));

/** Certificate statuses (protocols.md; REGISTER_INACTIVE is accepted on input as INACTIVE). */
export const CERTIFICATE_STATUSES = ['ACTIVE', 'INACTIVE', 'REVOKED', 'PENDING_TRANSFER', 'PENDING_ACTIVATION'] as const;
/** One certificate status. */
export type CertificateStatus = (typeof CERTIFICATE_STATUSES)[number];

/** A device certificate record. */
export interface CertificateRecord {
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly caCertificateId: string | null;
  readonly status: CertificateStatus;
  readonly serialNumber: string;
  readonly subjectCommonName: string | null;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly createdBy: string;
  readonly hidden: boolean;
  readonly transferToTenant: string | null;
  readonly revocationReason: string | null;
  readonly revokedAt: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** What a flow knows of a certificate it registers (parsed by the pki beforehand). */
export interface NewCertificateRecord {
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly caCertificateId: string | null;
  readonly status: CertificateStatus;
  readonly serialNumber: string;
  readonly subjectCommonName: string | null;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly createdBy: string;
  readonly hidden?: boolean;
}

/** Throws unless `value` is a status a caller may name. */
export function parseCertificateStatus(value: unknown): CertificateStatus {
  if (value === 'REGISTER_INACTIVE') return 'INACTIVE';
  if (typeof value !== 'string' || !(CERTIFICATE_STATUSES as readonly string[]).includes(value)) {
    throw RegistryErrors.error('REGISTRY_CERTIFICATE_STATUS_INVALID', `status must be one of ${CERTIFICATE_STATUSES.join(', ')}`);
  }
  return value as CertificateStatus;
}

type Row = {
  certificate_id: string; certificate_pem: string; ca_certificate_id: string | null; status: string; serial_number: string; subject_cn: string | null;
  not_before: string; not_after: string; created_by: string; hidden: number; transfer_to_tenant_id: string | null; revocation_reason: string | null;
  revoked_at: string | null; created_at: string; updated_at: string;
};

function toRecord(r: Row): CertificateRecord {
  return {
    certificateId: r.certificate_id,
    certificatePem: r.certificate_pem,
    caCertificateId: r.ca_certificate_id,
    status: r.status as CertificateStatus,
    serialNumber: r.serial_number,
    subjectCommonName: r.subject_cn,
    notBefore: r.not_before,
    notAfter: r.not_after,
    createdBy: r.created_by,
    hidden: r.hidden === 1,
    transferToTenant: r.transfer_to_tenant_id,
    revocationReason: r.revocation_reason,
    revokedAt: r.revoked_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Inserts a certificate record; REGISTRY_CERTIFICATE_EXISTS when the tenant has it already. */
export async function insertCertificate(db: Executor, ctx: RegistryContext, rec: NewCertificateRecord, opts: WriteOptions = {}): Promise<CertificateRecord> {
  const existing = await certificateExists.first(db, { tenantId: ctx.tenantId, certificateId: rec.certificateId });
  if (existing !== undefined) throw RegistryErrors.error('REGISTRY_CERTIFICATE_EXISTS', `certificate ${rec.certificateId} is already registered in this tenant`, { details: { certificateId: rec.certificateId } });
  const now = nowIso();
  const row: CertificatesRow = {
    tenant_id: ctx.tenantId,
    certificate_id: rec.certificateId,
    certificate_pem: rec.certificatePem,
    ca_certificate_id: rec.caCertificateId,
    status: rec.status,
    serial_number: rec.serialNumber,
    subject_cn: rec.subjectCommonName,
    not_before: rec.notBefore.toISOString(),
    not_after: rec.notAfter.toISOString(),
    created_by: rec.createdBy,
    hidden: rec.hidden === true ? 1 : 0,
    transfer_to_tenant_id: null,
    previous_status: null,
    revocation_reason: null,
    revoked_at: null,
    created_at: now,
    updated_at: now,
  };
  await insertCertificateRow.run(db, row);
  if (rec.hidden !== true) await appendAudit(db, ctx, 'certificate.register', `cert/${rec.certificateId}`, { status: rec.status, createdBy: rec.createdBy, caCertificateId: rec.caCertificateId }, opts.rowLocks);
  return toRecord(row);
}

/** Reads a certificate of the tenant, or throws REGISTRY_CERTIFICATE_NOT_FOUND. */
export async function getCertificate(db: Executor, tenantId: string, certificateId: string): Promise<CertificateRecord> {
  const c = await findCertificate(db, tenantId, certificateId);
  if (c === undefined) throw RegistryErrors.error('REGISTRY_CERTIFICATE_NOT_FOUND', `certificate ${certificateId} does not exist in this tenant`);
  return c;
}

/** Reads a certificate of the tenant if registered. */
export async function findCertificate(db: Executor, tenantId: string, certificateId: string): Promise<CertificateRecord | undefined> {
  assertCertificateId(certificateId);
  const r = await certificateById.first(db, { tenantId, certificateId });
  return r === undefined ? undefined : toRecord(r);
}

/** Filters of listCertificates. */
export interface ListCertificatesFilter extends PageRequest {
  readonly status?: CertificateStatus | undefined;
  readonly caCertificateId?: string | undefined;
}

/** Lists visible certificates by id. */
export async function listCertificates(db: Executor, tenantId: string, filter: ListCertificatesFilter): Promise<Page<Omit<CertificateRecord, 'certificatePem'>>> {
  const limit = pageLimit(filter);
  const after = decodePageToken(filter.nextToken);
  let q = db.selectFrom('certificates').selectAll().where('tenant_id', '=', tenantId).where('hidden', '=', 0);
  if (filter.status !== undefined) q = q.where('status', '=', filter.status);
  if (filter.caCertificateId !== undefined) q = q.where('ca_certificate_id', '=', filter.caCertificateId);
  if (after !== undefined) q = q.where('certificate_id', '>', after);
  const rows = await q.orderBy('certificate_id').limit(limit + 1).execute();
  return toPage(rows, limit, (r) => r.certificate_id, (r) => {
    const { certificatePem: _pem, ...rest } = toRecord(r);
    return rest;
  });
}

/** Legal status changes through UpdateCertificate (AWS semantics; REVOKED is final, transfers have their own calls). */
const TRANSITIONS: Readonly<Record<CertificateStatus, readonly CertificateStatus[]>> = {
  ACTIVE: ['INACTIVE', 'REVOKED'],
  INACTIVE: ['ACTIVE', 'REVOKED'],
  PENDING_ACTIVATION: ['ACTIVE', 'INACTIVE', 'REVOKED'],
  PENDING_TRANSFER: ['REVOKED'],
  REVOKED: [],
};

/** Options of updateCertificateStatus. */
export interface UpdateCertificateStatusOptions extends WriteOptions {
  readonly reason?: string | undefined;
  /** The certificate as the caller read or wrote it earlier in the same transaction: saves reading it again. */
  readonly current?: CertificateRecord | undefined;
}

/** Changes a certificate's status (UpdateCertificate); returns the updated record. */
export async function updateCertificateStatus(db: Executor, ctx: RegistryContext, certificateId: string, status: CertificateStatus, opts: UpdateCertificateStatusOptions = {}): Promise<CertificateRecord> {
  const current = opts.current?.certificateId === certificateId ? opts.current : await getCertificate(db, ctx.tenantId, certificateId);
  if (current.status === status) return current;
  if (!TRANSITIONS[current.status].includes(status)) {
    throw RegistryErrors.error('REGISTRY_CERTIFICATE_TRANSITION_INVALID', `certificate ${certificateId} cannot go from ${current.status} to ${status}`);
  }
  const now = nowIso();
  const revoked = status === 'REVOKED' ? { revokedAt: now, revocationReason: opts.reason ?? 'unspecified' } : undefined;
  if (revoked === undefined) await updateStatus.run(db, { tenantId: ctx.tenantId, certificateId, status, now });
  else {
    await db
      .updateTable('certificates')
      // revoking a certificate pending transfer ends the offer: the target can no longer accept it
      .set({ status, revoked_at: revoked.revokedAt, revocation_reason: revoked.revocationReason, transfer_to_tenant_id: null, previous_status: null, updated_at: now })
      .where('tenant_id', '=', ctx.tenantId)
      .where('certificate_id', '=', certificateId)
      .execute();
  }
  await appendAudit(db, ctx, status === 'REVOKED' ? 'certificate.revoke' : 'certificate.update', `cert/${certificateId}`, { from: current.status, to: status, reason: opts.reason ?? null }, opts.rowLocks);
  return { ...current, ...revoked, status, updatedAt: now };
}

/**
 * Deletes a certificate that is not ACTIVE and attached to nothing (or detaches everything when `force`). Never one
 * pending transfer (cancel it first), nor a REVOKED one of a Gatehouse-owned CA before it expires: the CRL is built
 * from the certificate rows, so deleting it would take it off the CRL and let it be registered ACTIVE again.
 */
export async function deleteCertificate(db: Executor, ctx: RegistryContext, certificateId: string, opts: WriteOptions & { force?: boolean } = {}): Promise<void> {
  const current = await getCertificate(db, ctx.tenantId, certificateId);
  if (current.status === 'PENDING_TRANSFER') throw pendingTransfer(certificateId, 'deleted');
  if (current.status === 'REVOKED' && current.caCertificateId !== null && Date.parse(current.notAfter) > Date.now()) {
    const owned = await db.selectFrom('ca_certificates').select('ca_certificate_id').where('tenant_id', '=', ctx.tenantId).where('ca_certificate_id', '=', current.caCertificateId).where('owned', '=', 1).executeTakeFirst();
    if (owned !== undefined) {
      throw RegistryErrors.error('REGISTRY_CERTIFICATE_ON_CRL', `certificate ${certificateId} is REVOKED and stays on the CRL of CA ${current.caCertificateId} until it expires (${current.notAfter}); it can be deleted after that`, { details: { notAfter: current.notAfter } });
    }
  }
  const attachedThing = await db.selectFrom('thing_principals').select('thing_name').where('tenant_id', '=', ctx.tenantId).where('certificate_id', '=', certificateId).limit(1).executeTakeFirst();
  const attachedPolicy = await db.selectFrom('policy_attachments').select('policy_name').where('tenant_id', '=', ctx.tenantId).where('target_type', '=', 'certificate').where('target_id', '=', certificateId).limit(1).executeTakeFirst();
  if (opts.force !== true && (current.status === 'ACTIVE' || attachedThing !== undefined || attachedPolicy !== undefined)) {
    throw RegistryErrors.error('REGISTRY_CERTIFICATE_IN_USE', `certificate ${certificateId} is ACTIVE or attached; deactivate and detach it first`);
  }
  await db.deleteFrom('thing_principals').where('tenant_id', '=', ctx.tenantId).where('certificate_id', '=', certificateId).execute();
  await db.deleteFrom('policy_attachments').where('tenant_id', '=', ctx.tenantId).where('target_type', '=', 'certificate').where('target_id', '=', certificateId).execute();
  await db.deleteFrom('certificates').where('tenant_id', '=', ctx.tenantId).where('certificate_id', '=', certificateId).execute();
  if (!current.hidden) await appendAudit(db, ctx, 'certificate.delete', `cert/${certificateId}`, {}, opts.rowLocks);
}

/**
 * Starts a transfer to another tenant (AWS TransferCertificate): the certificate must be INACTIVE and attached to
 * nothing; it becomes PENDING_TRANSFER until the target accepts or rejects, or the source cancels.
 */
export async function transferCertificate(db: Executor, ctx: RegistryContext, certificateId: string, targetTenantId: string, opts: WriteOptions = {}): Promise<CertificateRecord> {
  assertValidName('tenant', targetTenantId, 'targetTenant');
  const current = await getCertificate(db, ctx.tenantId, certificateId);
  const tenant = await db.selectFrom('tenants').select('tenant_id').where('tenant_id', '=', targetTenantId).executeTakeFirst();
  if (tenant === undefined) throw RegistryErrors.error('REGISTRY_TENANT_NOT_FOUND', `tenant "${targetTenantId}" does not exist`);
  if (targetTenantId === ctx.tenantId) throw RegistryErrors.error('REGISTRY_CERTIFICATE_TRANSFER_INVALID', 'a certificate cannot be transferred to its own tenant');
  if (current.status !== 'INACTIVE') throw RegistryErrors.error('REGISTRY_CERTIFICATE_TRANSFER_INVALID', `certificate must be INACTIVE to transfer (it is ${current.status})`);
  // what holds it, named so that the caller knows what to detach (at most 10 of each)
  const things = (await db.selectFrom('thing_principals').select('thing_name').where('tenant_id', '=', ctx.tenantId).where('certificate_id', '=', certificateId).orderBy('thing_name').limit(10).execute()).map((r) => r.thing_name);
  const policies = (await db.selectFrom('policy_attachments').select('policy_name').where('tenant_id', '=', ctx.tenantId).where('target_type', '=', 'certificate').where('target_id', '=', certificateId).orderBy('policy_name').limit(10).execute()).map((r) => r.policy_name);
  if (things.length > 0 || policies.length > 0) {
    const held = [...things.map((t) => `thing "${t}"`), ...policies.map((p) => `policy "${p}"`)].join(', ');
    throw RegistryErrors.error('REGISTRY_CERTIFICATE_TRANSFER_INVALID', `detach the certificate before transferring it; it is attached to ${held}`, { details: { things, policies } });
  }
  const inTarget = await db.selectFrom('certificates').select('certificate_id').where('tenant_id', '=', targetTenantId).where('certificate_id', '=', certificateId).executeTakeFirst();
  if (inTarget !== undefined) throw RegistryErrors.error('REGISTRY_CERTIFICATE_EXISTS', 'the target tenant already has this certificate');
  await db.updateTable('certificates').set({ status: 'PENDING_TRANSFER', previous_status: current.status, transfer_to_tenant_id: targetTenantId, updated_at: nowIso() }).where('tenant_id', '=', ctx.tenantId).where('certificate_id', '=', certificateId).execute();
  await appendAudit(db, ctx, 'certificate.transfer', `cert/${certificateId}`, { to: targetTenantId }, opts.rowLocks);
  return getCertificate(db, ctx.tenantId, certificateId);
}

/** Certificates pending transfer into `tenantId` (with their source tenant). */
export async function listIncomingTransfers(db: Executor, tenantId: string): Promise<{ certificateId: string; fromTenant: string }[]> {
  const rows = await db.selectFrom('certificates').select(['certificate_id', 'tenant_id']).where('transfer_to_tenant_id', '=', tenantId).where('status', '=', PENDING_TRANSFER).execute();
  return rows.map((r) => ({ certificateId: r.certificate_id, fromTenant: r.tenant_id }));
}

/** Accepts (moves the record into the caller's tenant), rejects or cancels a pending transfer. */
export async function resolveTransfer(db: Executor, ctx: RegistryContext, certificateId: string, action: 'accept' | 'reject' | 'cancel', opts: WriteOptions & { setAsActive?: boolean } = {}): Promise<CertificateRecord> {
  assertCertificateId(certificateId);
  let q = db.selectFrom('certificates').selectAll().where('certificate_id', '=', certificateId).where('status', '=', PENDING_TRANSFER);
  q = action === 'cancel' ? q.where('tenant_id', '=', ctx.tenantId) : q.where('transfer_to_tenant_id', '=', ctx.tenantId);
  const row = await q.executeTakeFirst();
  if (row === undefined) throw RegistryErrors.error('REGISTRY_CERTIFICATE_TRANSFER_INVALID', `certificate ${certificateId} is not pending transfer ${action === 'cancel' ? 'from' : 'to'} this tenant`);
  const now = nowIso();
  if (action === 'accept') {
    // the target registered the same certificate meanwhile (without a CA, say): the move would collide with that row
    const inTarget = await db.selectFrom('certificates').select('certificate_id').where('tenant_id', '=', ctx.tenantId).where('certificate_id', '=', certificateId).executeTakeFirst();
    if (inTarget !== undefined) throw RegistryErrors.error('REGISTRY_CERTIFICATE_EXISTS', `this tenant already has certificate ${certificateId}; reject the transfer, or delete that registration first`);
    // The issuing CA of the source tenant is no trust anchor of the new tenant's endpoint, so a device that kept its
    // identity could not connect there (its chain does not verify: UNABLE_TO_GET_ISSUER_CERT_LOCALLY). Unless the new
    // tenant has that CA too, the certificate is held there as one registered without a CA (multi-account
    // registration): admitted by its exact fingerprint, independent of the old owner's CA. The audit entry keeps the
    // issuer it had.
    let caCertificateId = row.ca_certificate_id;
    if (caCertificateId !== null) {
      const sameCa = await db.selectFrom('ca_certificates').select('ca_certificate_id').where('tenant_id', '=', ctx.tenantId).where('ca_certificate_id', '=', caCertificateId).executeTakeFirst();
      if (sameCa === undefined) caCertificateId = null;
    }
    await db
      .updateTable('certificates')
      .set({ tenant_id: ctx.tenantId, ca_certificate_id: caCertificateId, status: opts.setAsActive === true ? 'ACTIVE' : 'INACTIVE', transfer_to_tenant_id: null, previous_status: null, updated_at: now })
      .where('tenant_id', '=', row.tenant_id)
      .where('certificate_id', '=', certificateId)
      .execute();
    // nothing of the source tenant may keep pointing at it (attachments made while it was pending, by an earlier version)
    await db.deleteFrom('thing_principals').where('tenant_id', '=', row.tenant_id).where('certificate_id', '=', certificateId).execute();
    await db.deleteFrom('policy_attachments').where('tenant_id', '=', row.tenant_id).where('target_type', '=', 'certificate').where('target_id', '=', certificateId).execute();
    const pinned = caCertificateId !== row.ca_certificate_id ? { issuerCaCertificateId: row.ca_certificate_id, heldWithoutCa: true } : {};
    await appendAudit(db, ctx, 'certificate.transfer.accept', `cert/${certificateId}`, { from: row.tenant_id, ...pinned }, opts.rowLocks);
    // the source tenant's log tells that its certificate left it
    await appendAudit(db, { tenantId: row.tenant_id, actor: ctx.actor }, 'certificate.transfer.accepted', `cert/${certificateId}`, { to: ctx.tenantId }, opts.rowLocks);
    return getCertificate(db, ctx.tenantId, certificateId);
  }
  await db.updateTable('certificates').set({ status: 'INACTIVE', transfer_to_tenant_id: null, previous_status: null, updated_at: now }).where('tenant_id', '=', row.tenant_id).where('certificate_id', '=', certificateId).execute();
  await appendAudit(db, ctx, `certificate.transfer.${action}`, `cert/${certificateId}`, { source: row.tenant_id }, opts.rowLocks);
  if (action === 'reject') await appendAudit(db, { tenantId: row.tenant_id, actor: ctx.actor }, 'certificate.transfer.rejected', `cert/${certificateId}`, { by: ctx.tenantId }, opts.rowLocks);
  return getCertificate(db, row.tenant_id, certificateId);
}

/** The refusal of a change to a certificate that is pending transfer to another tenant. */
export function pendingTransfer(certificateId: string, what: string): Error {
  return RegistryErrors.error('REGISTRY_CERTIFICATE_PENDING_TRANSFER', `certificate ${certificateId} is pending transfer to another tenant and cannot be ${what}; cancel the transfer first (cert cancel-transfer)`);
}

/** Attaches a certificate (principal) to a thing (idempotent). */
export async function attachThingPrincipal(db: Executor, ctx: RegistryContext, thingName: string, certificateId: string, opts: AttachOptions = {}): Promise<void> {
  if (opts.endsVerified !== true) {
    await lockRow(db, 'things', ctx.tenantId, thingName, 'share', opts);
    const thing = await db.selectFrom('things').select('thing_name').where('tenant_id', '=', ctx.tenantId).where('thing_name', '=', thingName).executeTakeFirst();
    if (thing === undefined) throw RegistryErrors.error('REGISTRY_THING_NOT_FOUND', `thing "${thingName}" does not exist`);
    if ((await getCertificate(db, ctx.tenantId, certificateId)).status === 'PENDING_TRANSFER') throw pendingTransfer(certificateId, 'attached to a thing');
  }
  const res = await insertPrincipal.run(db, { tenantId: ctx.tenantId, thingName, certificateId });
  if (res.numAffectedRows === 0n) return;
  await appendAudit(db, ctx, 'thing.principal.attach', `thing/${thingName}`, { certificateId }, opts.rowLocks);
}

/** Detaches a certificate from a thing. */
export async function detachThingPrincipal(db: Executor, ctx: RegistryContext, thingName: string, certificateId: string, opts: WriteOptions = {}): Promise<void> {
  const res = await db.deleteFrom('thing_principals').where('tenant_id', '=', ctx.tenantId).where('thing_name', '=', thingName).where('certificate_id', '=', certificateId).executeTakeFirst();
  if (res.numDeletedRows === 0n) throw RegistryErrors.error('REGISTRY_ATTACHMENT_NOT_FOUND', `certificate ${certificateId} is not attached to thing "${thingName}"`);
  await appendAudit(db, ctx, 'thing.principal.detach', `thing/${thingName}`, { certificateId }, opts.rowLocks);
}

/** Certificates attached to a thing. */
export async function listThingPrincipals(db: Executor, tenantId: string, thingName: string): Promise<string[]> {
  const rows = await db.selectFrom('thing_principals').select('certificate_id').where('tenant_id', '=', tenantId).where('thing_name', '=', thingName).orderBy('certificate_id').execute();
  return rows.map((r) => r.certificate_id);
}

/** Things a certificate is attached to. */
export async function listPrincipalThings(db: Executor, tenantId: string, certificateId: string): Promise<string[]> {
  const rows = await thingsOfPrincipal.all(db, { tenantId, certificateId });
  return rows.map((r) => r.thing_name);
}

/**
 * Revoked certificates issued by an owned CA (for its CRL): those of the tenant that holds the owned CA. Another
 * tenant's registration of the same CA certificate (possible before owned CAs were refused there) and its
 * certificates never reach this CA's CRL.
 */
export async function listRevokedByCa(db: Executor, caCertificateId: string): Promise<{ serialNumber: string; revokedAt: string; reason: string | null }[]> {
  const rows = await db
    .selectFrom('certificates')
    .select(['serial_number', 'revoked_at', 'revocation_reason'])
    .where('ca_certificate_id', '=', caCertificateId)
    .where('status', '=', REVOKED)
    .where('tenant_id', 'in', (eb) => eb.selectFrom('ca_certificates').select('tenant_id').where('ca_certificate_id', '=', caCertificateId).where('owned', '=', 1))
    .execute();
  const seen = new Set<string>();
  const out: { serialNumber: string; revokedAt: string; reason: string | null }[] = [];
  for (const r of rows) {
    if (seen.has(r.serial_number)) continue;
    seen.add(r.serial_number);
    out.push({ serialNumber: r.serial_number, revokedAt: r.revoked_at ?? nowIso(), reason: r.revocation_reason });
  }
  return out;
}

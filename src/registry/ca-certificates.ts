import { prepare } from '../store/index.ts';
import type { Executor } from '../store/index.ts';
import type { RegistryContext } from './context.ts';
import { nowIso } from './context.ts';
import { appendAudit } from './audit-log.ts';
import { RegistryErrors } from './errors.ts';
import type { Page, PageRequest } from './pagination.ts';
import { decodePageToken, pageLimit, toPage } from './pagination.ts';
import type { WriteOptions } from './things.ts';

// Read on every certificate issued and every first connection; prepared once per dialect (src/store/prepared.ts).
const caById = prepare('CA by id', (db, p: { tenantId: string; caCertificateId: string }) => db.selectFrom('ca_certificates').selectAll().where('tenant_id', '=', p.tenantId).where('ca_certificate_id', '=', p.caCertificateId));
// Owned CA ids are unique across tenants (Gatehouse made the key); a tenant may register the same certificate as a CA
// of its own (SNI_ONLY), which must never stand in for the owned record.
const ownedCaById = prepare('owned CA by id', (db, p: { caCertificateId: string }) => db.selectFrom('ca_certificates').selectAll().where('ca_certificate_id', '=', p.caCertificateId).where('owned', '=', 1).limit(1));
// The CA of a certificate: the tenant's own registration, else an owned CA (the installation's hierarchy).
const caOfCertificate = prepare('CA of a certificate', (db, p: { tenantId: string; caCertificateId: string }) =>
  db
    .selectFrom('ca_certificates')
    .select(['status', 'certificate_mode', 'tenant_id'])
    .where('ca_certificate_id', '=', p.caCertificateId)
    .where((eb) => eb.or([eb('tenant_id', '=', p.tenantId), eb('owned', '=', 1)]))
    .limit(2),
);

/** CA statuses. */
export type CaStatus = 'ACTIVE' | 'INACTIVE' | 'REVOKED';
/** CA registration modes (protocols.md). */
export type CaMode = 'DEFAULT' | 'SNI_ONLY';
/** What happens on the connection that triggered JITP (issue 6). */
export type FirstConnectMode = 'continue' | 'reconnect';

/** A CA certificate record: owned (key held by Gatehouse) or registered (BYO). */
export interface CaRecord {
  readonly caCertificateId: string;
  readonly certificatePem: string;
  readonly subjectCommonName: string | null;
  readonly serialNumber: string;
  readonly status: CaStatus;
  readonly certificateMode: CaMode;
  readonly owned: boolean;
  /** Reference of the private key in the key store (owned CAs only; never the key). */
  readonly keyRef: string | null;
  readonly keyStore: string | null;
  readonly parentCaCertificateId: string | null;
  readonly autoRegistration: boolean;
  readonly registrationTemplate: string | null;
  readonly firstConnect: FirstConnectMode;
  readonly crlNumber: number;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly revocationReason: string | null;
  readonly revokedAt: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** What a flow knows of a CA it records. */
export interface NewCaRecord {
  readonly caCertificateId: string;
  readonly certificatePem: string;
  readonly subjectCommonName: string | null;
  readonly serialNumber: string;
  readonly status: CaStatus;
  readonly certificateMode: CaMode;
  readonly owned: boolean;
  readonly keyRef: string | null;
  readonly keyStore: string | null;
  readonly parentCaCertificateId: string | null;
  readonly autoRegistration: boolean;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

type Row = {
  ca_certificate_id: string; certificate_pem: string; subject_cn: string | null; serial_number: string; status: string; certificate_mode: string; owned: number;
  key_ref: string | null; key_store: string | null; parent_ca_certificate_id: string | null; auto_registration: number; registration_template: string | null;
  first_connect: string; crl_number: number; not_before: string; not_after: string; revocation_reason: string | null; revoked_at: string | null; created_at: string; updated_at: string;
};

function toCa(r: Row): CaRecord {
  return {
    caCertificateId: r.ca_certificate_id,
    certificatePem: r.certificate_pem,
    subjectCommonName: r.subject_cn,
    serialNumber: r.serial_number,
    status: r.status as CaStatus,
    certificateMode: r.certificate_mode as CaMode,
    owned: r.owned === 1,
    keyRef: r.key_ref,
    keyStore: r.key_store,
    parentCaCertificateId: r.parent_ca_certificate_id,
    autoRegistration: r.auto_registration === 1,
    registrationTemplate: r.registration_template,
    firstConnect: r.first_connect as FirstConnectMode,
    crlNumber: r.crl_number,
    notBefore: r.not_before,
    notAfter: r.not_after,
    revocationReason: r.revocation_reason,
    revokedAt: r.revoked_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Records a CA in a tenant; REGISTRY_CA_EXISTS if it is there already. */
export async function insertCa(db: Executor, ctx: RegistryContext, rec: NewCaRecord, opts: WriteOptions = {}): Promise<CaRecord> {
  const exists = await db.selectFrom('ca_certificates').select('ca_certificate_id').where('tenant_id', '=', ctx.tenantId).where('ca_certificate_id', '=', rec.caCertificateId).executeTakeFirst();
  if (exists !== undefined) throw RegistryErrors.error('REGISTRY_CA_EXISTS', `CA ${rec.caCertificateId} is already registered in this tenant`, { details: { caCertificateId: rec.caCertificateId } });
  const now = nowIso();
  const row = {
    tenant_id: ctx.tenantId,
    ca_certificate_id: rec.caCertificateId,
    certificate_pem: rec.certificatePem,
    subject_cn: rec.subjectCommonName,
    serial_number: rec.serialNumber,
    status: rec.status,
    certificate_mode: rec.certificateMode,
    owned: rec.owned ? 1 : 0,
    key_ref: rec.keyRef,
    key_store: rec.keyStore,
    parent_ca_certificate_id: rec.parentCaCertificateId,
    auto_registration: rec.autoRegistration ? 1 : 0,
    registration_template: null,
    first_connect: 'continue',
    crl_number: 0,
    not_before: rec.notBefore.toISOString(),
    not_after: rec.notAfter.toISOString(),
    revocation_reason: null,
    revoked_at: null,
    created_at: now,
    updated_at: now,
  };
  await db.insertInto('ca_certificates').values(row).execute();
  await appendAudit(db, ctx, rec.owned ? 'ca.create' : 'ca.register', `cacert/${rec.caCertificateId}`, { mode: rec.certificateMode, status: rec.status }, opts.rowLocks);
  return toCa(row);
}

/** Reads a CA of the tenant or throws REGISTRY_CA_NOT_FOUND. */
export async function getCa(db: Executor, tenantId: string, caCertificateId: string): Promise<CaRecord> {
  const r = await caById.first(db, { tenantId, caCertificateId });
  if (r === undefined) throw RegistryErrors.error('REGISTRY_CA_NOT_FOUND', `CA ${caCertificateId} does not exist in this tenant`);
  return toCa(r);
}

/** Every CA of a tenant (trust-store building). */
export async function listAllCas(db: Executor, tenantId: string): Promise<CaRecord[]> {
  const rows = await db.selectFrom('ca_certificates').selectAll().where('tenant_id', '=', tenantId).orderBy('created_at').execute();
  return rows.map(toCa);
}

/** Lists CAs with paging and a status filter. */
export async function listCas(db: Executor, tenantId: string, filter: PageRequest & { status?: CaStatus | undefined }): Promise<Page<Omit<CaRecord, 'certificatePem'>>> {
  const limit = pageLimit(filter);
  const after = decodePageToken(filter.nextToken);
  let q = db.selectFrom('ca_certificates').selectAll().where('tenant_id', '=', tenantId);
  if (filter.status !== undefined) q = q.where('status', '=', filter.status);
  if (after !== undefined) q = q.where('ca_certificate_id', '>', after);
  const rows = await q.orderBy('ca_certificate_id').limit(limit + 1).execute();
  return toPage(rows, limit, (r) => r.ca_certificate_id, (r) => {
    const { certificatePem: _p, ...rest } = toCa(r);
    return rest;
  });
}

/** Changes of a CA's settings (PATCH /v1/cas/{id}). */
export interface CaUpdate {
  readonly status?: 'ACTIVE' | 'INACTIVE' | undefined;
  readonly autoRegistration?: boolean | undefined;
  readonly registrationTemplate?: string | null | undefined;
  readonly firstConnect?: FirstConnectMode | undefined;
}

/** Updates a CA's status and auto-registration settings. A REVOKED CA cannot be changed. */
export async function updateCa(db: Executor, ctx: RegistryContext, caCertificateId: string, update: CaUpdate, opts: WriteOptions = {}): Promise<CaRecord> {
  const current = await getCa(db, ctx.tenantId, caCertificateId);
  if (current.status === 'REVOKED') throw RegistryErrors.error('REGISTRY_CERTIFICATE_TRANSITION_INVALID', 'a revoked CA cannot be changed');
  await db
    .updateTable('ca_certificates')
    .set({
      status: update.status ?? current.status,
      auto_registration: (update.autoRegistration ?? current.autoRegistration) ? 1 : 0,
      registration_template: update.registrationTemplate === undefined ? current.registrationTemplate : update.registrationTemplate,
      first_connect: update.firstConnect ?? current.firstConnect,
      updated_at: nowIso(),
    })
    .where('tenant_id', '=', ctx.tenantId)
    .where('ca_certificate_id', '=', caCertificateId)
    .execute();
  await appendAudit(db, ctx, 'ca.update', `cacert/${caCertificateId}`, { ...update }, opts.rowLocks);
  return getCa(db, ctx.tenantId, caCertificateId);
}

/** Marks a CA revoked (reason code RFC 5280 §5.3.1 name). */
export async function revokeCa(db: Executor, ctx: RegistryContext, caCertificateId: string, reason: string, opts: WriteOptions = {}): Promise<CaRecord> {
  const current = await getCa(db, ctx.tenantId, caCertificateId);
  if (current.status === 'REVOKED') return current;
  const now = nowIso();
  await db.updateTable('ca_certificates').set({ status: 'REVOKED', revoked_at: now, revocation_reason: reason, updated_at: now }).where('tenant_id', '=', ctx.tenantId).where('ca_certificate_id', '=', caCertificateId).execute();
  await appendAudit(db, ctx, 'ca.revoke', `cacert/${caCertificateId}`, { reason }, opts.rowLocks);
  return getCa(db, ctx.tenantId, caCertificateId);
}

/** Increments and returns the CRL number of an owned CA (one issuer, one CRL sequence). */
export async function nextCrlNumber(db: Executor, caCertificateId: string): Promise<number> {
  // one statement: processes building CRLs at once each get their own number, always higher (it was read, then
  // written, and two CRLs of one CA could share a number); the owned CA's row only
  const r = await db
    .updateTable('ca_certificates')
    .set((eb) => ({ crl_number: eb('crl_number', '+', 1) }))
    .where('ca_certificate_id', '=', caCertificateId)
    .where('owned', '=', 1)
    .returning('crl_number')
    .executeTakeFirst();
  if (r === undefined) throw RegistryErrors.error('REGISTRY_CA_NOT_FOUND', `no owned CA ${caCertificateId}`);
  return r.crl_number;
}

/** Revoked CAs whose parent is `caCertificateId` (they go on the parent's CRL). */
export async function listRevokedChildCas(db: Executor, caCertificateId: string): Promise<{ serialNumber: string; revokedAt: string; reason: string | null }[]> {
  // owned children only: a registered CA has no parent here, and another tenant's registration is not this CA's child
  const rows = await db.selectFrom('ca_certificates').select(['serial_number', 'revoked_at', 'revocation_reason']).where('parent_ca_certificate_id', '=', caCertificateId).where('owned', '=', 1).where('status', '=', 'REVOKED').execute();
  return rows.map((r) => ({ serialNumber: r.serial_number, revokedAt: r.revoked_at ?? nowIso(), reason: r.revocation_reason }));
}

/**
 * Finds an owned CA by id in any tenant (CRL publication is public and tenant-less; an owned CA's parent may live in
 * another tenant). A tenant's own registration of the same certificate (SNI_ONLY) is never returned.
 */
export async function findOwnedCa(db: Executor, caCertificateId: string): Promise<CaRecord | undefined> {
  const r = await ownedCaById.first(db, { caCertificateId });
  return r === undefined ? undefined : toCa(r);
}

/** Status and mode of the CA recorded with a certificate of `tenantId`. */
export interface CertificateCaFacts {
  readonly status: CaStatus;
  readonly certificateMode: CaMode;
}

/**
 * The CA recorded with a certificate of `tenantId`: the tenant's own registration of it, else the owned CA of that id
 * (the installation's hierarchy). Another tenant's registration of the same CA certificate never counts: its status
 * is that tenant's business.
 */
export async function findCertificateCa(db: Executor, tenantId: string, caCertificateId: string): Promise<CertificateCaFacts | undefined> {
  const rows = await caOfCertificate.all(db, { tenantId, caCertificateId });
  const r = rows.find((x) => x.tenant_id === tenantId) ?? rows[0];
  return r === undefined ? undefined : { status: r.status as CaStatus, certificateMode: r.certificate_mode as CaMode };
}

/**
 * The other tenants' registrations of a CA certificate that are not REVOKED, with their mode (owned CAs count as
 * DEFAULT). A CA may be registered in several tenants only in SNI_ONLY mode (protocols.md).
 */
export async function listCaRegistrationsElsewhere(db: Executor, tenantId: string, caCertificateId: string): Promise<{ tenantId: string; certificateMode: CaMode; owned: boolean }[]> {
  const rows = await db
    .selectFrom('ca_certificates')
    .select(['tenant_id', 'certificate_mode', 'owned'])
    .where('ca_certificate_id', '=', caCertificateId)
    .where('tenant_id', '<>', tenantId)
    .where('status', '<>', 'REVOKED')
    .execute();
  return rows.map((r) => ({ tenantId: r.tenant_id, certificateMode: r.owned === 1 ? 'DEFAULT' : (r.certificate_mode as CaMode), owned: r.owned === 1 }));
}

/** Current registration code of a tenant (AWS GetRegistrationCode: stable until rotated). */
export async function getOrCreateRegistrationCode(db: Executor, tenantId: string, generate: () => string): Promise<string> {
  const r = await db.selectFrom('registration_codes').select('registration_code').where('tenant_id', '=', tenantId).executeTakeFirst();
  if (r !== undefined) return r.registration_code;
  const code = generate();
  await db.insertInto('registration_codes').values({ tenant_id: tenantId, registration_code: code, created_at: nowIso() }).execute();
  return code;
}

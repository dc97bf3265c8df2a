import * as pki from '../pki/index.ts';
import type { ParsedCertificate } from '../pki/index.ts';
import * as registry from '../registry/index.ts';
import type { CertificateRecord, CertificateStatus, RegistryContext } from '../registry/index.ts';
import type { Executor, Store } from '../store/index.ts';
import { isGatehouseError } from '../errors/index.ts';
import { certificateRecordOf } from './certificate-record.ts';
import { DEVICE_CERTIFICATE_IS_CA, ProvisioningErrors } from './errors.ts';

/** Input of registerCertificate (AWS RegisterCertificate). */
export interface RegisterCertificateInput {
  /** The device certificate, optionally followed by intermediates. */
  readonly certificatePem: string;
  readonly caCertificatePem?: string | undefined;
  readonly status?: CertificateStatus | 'REGISTER_INACTIVE' | undefined;
  readonly setAsActive?: boolean | undefined;
  readonly createdBy?: string | undefined;
}

function initialStatus(input: { status?: CertificateStatus | 'REGISTER_INACTIVE' | undefined; setAsActive?: boolean | undefined }): CertificateStatus {
  if (input.status !== undefined) return registry.parseCertificateStatus(input.status);
  return input.setAsActive === true ? 'ACTIVE' : 'INACTIVE';
}

function parseDeviceCertificate(pem: string): { leaf: ParsedCertificate; intermediates: ParsedCertificate[] } {
  const blocks = pki.splitPemChain(pem);
  const [first, ...rest] = blocks;
  const leaf = pki.parseCertificate(first ?? pem);
  if (leaf.isCa) throw ProvisioningErrors.error('PROVISIONING_CERTIFICATE_IS_CA', DEVICE_CERTIFICATE_IS_CA);
  return { leaf, intermediates: rest.map((b) => pki.parseCertificate(b)) };
}

/**
 * Verifies that `leaf` chains to an ACTIVE CA registered in the tenant (signature, names, validity, basic
 * constraints, path length, key usage, revocation of every CA on the path) and returns that CA's id.
 */
export async function findIssuingCa(db: Executor, tenantId: string, leaf: ParsedCertificate, intermediates: ParsedCertificate[], now = new Date()): Promise<string> {
  return (await verifyIssuingCa(db, tenantId, leaf, intermediates, { now })).caCertificateId;
}

/** Options of verifyIssuingCa. */
export interface VerifyIssuingCaOptions {
  readonly now?: Date | undefined;
  /** Parses a CA certificate PEM; lets a caller that verifies many devices parse each CA once. */
  readonly parseCa?: ((pem: string) => ParsedCertificate) | undefined;
  /** The tenant's CAs as the caller last read them (default: read now). */
  readonly cas?: readonly registry.CaRecord[] | undefined;
}

/** {@link findIssuingCa}, returning the CA's record. */
export async function verifyIssuingCa(db: Executor, tenantId: string, leaf: ParsedCertificate, intermediates: ParsedCertificate[], options: VerifyIssuingCaOptions = {}): Promise<registry.CaRecord> {
  const cas = options.cas ?? (await registry.listAllCas(db, tenantId));
  const revokedIds = new Set(cas.filter((c) => c.status === 'REVOKED').map((c) => c.caCertificateId));
  const active = cas.filter((c) => c.status === 'ACTIVE');
  if (active.length === 0) throw ProvisioningErrors.error('PROVISIONING_CA_UNKNOWN_ISSUER', 'this tenant has no ACTIVE CA to verify the certificate against');
  const parse = options.parseCa ?? ((pem: string) => pki.parseCertificate(pem));
  const anchors = active.map((c) => parse(c.certificatePem));
  const { anchor, path } = pki.verifyCertificateChain({ leaf, intermediates, anchors, now: options.now ?? new Date(), isRevoked: (c) => revokedIds.has(c.certificateId) });
  // an intermediate registered here but INACTIVE: its devices are refused at connect, so they are not registered either
  const inactive = path.slice(1).find((c) => cas.some((r) => r.caCertificateId === c.certificateId && r.status === 'INACTIVE'));
  if (inactive !== undefined) throw ProvisioningErrors.error('PROVISIONING_CA_NOT_ACTIVE', `CA ${inactive.certificateId} on the certificate's path is INACTIVE in this tenant`);
  const ca = active.find((c) => c.caCertificateId === anchor.certificateId);
  if (ca === undefined) throw ProvisioningErrors.error('PROVISIONING_CA_UNKNOWN_ISSUER', 'the certificate chains to no ACTIVE CA of this tenant');
  return ca;
}

/** Registers a device certificate issued by a CA registered (and ACTIVE) in the tenant. */
export async function registerCertificate(store: Store, ctx: RegistryContext, input: RegisterCertificateInput): Promise<CertificateRecord> {
  const { leaf, intermediates } = parseDeviceCertificate(input.certificatePem);
  if (input.caCertificatePem !== undefined) {
    const ca = pki.parseCertificate(input.caCertificatePem);
    const rec = await registry.getCa(store.db, ctx.tenantId, ca.certificateId).catch(() => undefined);
    if (rec === undefined) throw ProvisioningErrors.error('PROVISIONING_CA_UNKNOWN_ISSUER', 'caCertificatePem names a CA that is not registered in this tenant');
    if (rec.status !== 'ACTIVE') throw ProvisioningErrors.error('PROVISIONING_CA_NOT_ACTIVE', `CA ${rec.caCertificateId} is ${rec.status}`);
    // the certificate must chain to the CA named (it was checked, then ignored: any other ACTIVE CA was recorded)
    const chosen = await verifyIssuingCa(store.db, ctx.tenantId, leaf, intermediates, { cas: (await registry.listAllCas(store.db, ctx.tenantId)).filter((c) => c.caCertificateId === rec.caCertificateId || c.status === 'REVOKED') }).catch((cause: unknown) => {
      // no path to that CA; any other failure (an expired or revoked certificate on the path) says so itself
      if (isGatehouseError(cause) && (cause.code === 'PKI_CHAIN_UNTRUSTED' || cause.code === 'PROVISIONING_CA_UNKNOWN_ISSUER')) {
        throw ProvisioningErrors.error('PROVISIONING_CA_UNKNOWN_ISSUER', `the certificate does not chain to the CA given as caCertificatePem (${rec.caCertificateId})`, { cause });
      }
      throw cause;
    });
    return store.transaction((trx) =>
      registry.insertCertificate(trx, ctx, certificateRecordOf(leaf, chosen.caCertificateId, initialStatus(input), input.createdBy ?? 'register'), { rowLocks: store.supportsRowLocks }),
    );
  }
  const caId = await findIssuingCa(store.db, ctx.tenantId, leaf, intermediates);
  return store.transaction((trx) =>
    registry.insertCertificate(trx, ctx, certificateRecordOf(leaf, caId, initialStatus(input), input.createdBy ?? 'register'), { rowLocks: store.supportsRowLocks }),
  );
}

/**
 * Registers a certificate without its CA (multi-account registration, MAR): pinned by fingerprint, so the same
 * certificate may be registered in several tenants; devices then connect with SNI naming the tenant.
 */
export async function registerCertificateWithoutCa(store: Store, ctx: RegistryContext, input: RegisterCertificateInput): Promise<CertificateRecord> {
  const { leaf } = parseDeviceCertificate(input.certificatePem);
  pki.assertCertificateTimeValid(leaf, new Date());
  return store.transaction((trx) =>
    registry.insertCertificate(trx, ctx, certificateRecordOf(leaf, null, initialStatus(input), input.createdBy ?? 'register-without-ca'), { rowLocks: store.supportsRowLocks }),
  );
}

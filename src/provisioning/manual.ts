import * as pki from '../pki/index.ts';
import * as registry from '../registry/index.ts';
import type { CertificateRecord, CertificateStatus, RegistryContext } from '../registry/index.ts';
import type { Executor, Store } from '../store/index.ts';
import type { CertificateAuthorityService } from './certificate-authority-service.ts';

/** Default validity of device certificates issued by Gatehouse. */
export const DEVICE_CERT_VALIDITY_DAYS = 365;

/** Input of issueFromCsr (POST /v1/certificates/from-csr, AWS CreateCertificateFromCsr). */
export interface IssueFromCsrInput {
  readonly certificateSigningRequest: string;
  readonly setAsActive?: boolean | undefined;
  readonly caCertificateId?: string | undefined;
  readonly validityDays?: number | undefined;
  /** Overrides the subject CN of the CSR. */
  readonly subjectCommonName?: string | undefined;
  /** Which flow records the certificate (audit and `createdBy`). */
  readonly createdBy?: string | undefined;
  readonly status?: CertificateStatus | undefined;
  readonly hidden?: boolean | undefined;
  readonly validityMinutes?: number | undefined;
}

/** Options of issueFromCsr and createKeysAndCertificate. */
export interface RecordCertificateOptions {
  /** More writes that belong with the new certificate (e.g. its ownership token), run in the transaction that records it. */
  readonly alsoWrite?: ((trx: Executor, record: CertificateRecord) => Promise<void>) | undefined;
}

/** Result of issuing. */
export interface IssuedDeviceCertificate {
  readonly certificateId: string;
  readonly certificatePem: string;
  /** The certificate followed by its issuers up to the root, PEM. */
  readonly certificateChainPem: string;
  readonly record: CertificateRecord;
}

/**
 * Issues a device certificate from a CSR (the single-thing development flow and the signing step of every other
 * flow): verifies the CSR, applies the device profile (clientAuth, SKI/AKI, random serial, CRL DP) and records the
 * certificate in the tenant in one transaction.
 */
export async function issueFromCsr(store: Store, cas: CertificateAuthorityService, ctx: RegistryContext, input: IssueFromCsrInput, options: RecordCertificateOptions = {}): Promise<IssuedDeviceCertificate> {
  const csr = pki.parseCsr(input.certificateSigningRequest);
  const ready = await cas.issuerFor(ctx.tenantId, input.caCertificateId);
  const subject = input.subjectCommonName === undefined ? csr.subject : { ...csr.subject, CN: [input.subjectCommonName] };
  const now = Date.now();
  const issued = ready.issuer.issue({
    publicKey: csr.spkiDer,
    subject,
    ...(input.validityMinutes === undefined
      ? { validityDays: input.validityDays ?? DEVICE_CERT_VALIDITY_DAYS }
      : { notBefore: new Date(now - 60_000), notAfter: new Date(now + input.validityMinutes * 60_000) }),
    extendedKeyUsage: 'clientAuth',
    crlDistributionPointUrl: cas.crlUrl(ready.ca.caCertificateId),
  });
  const status: CertificateStatus = input.status ?? (input.setAsActive === true ? 'ACTIVE' : 'INACTIVE');
  const record = await store.transaction(async (trx) => {
    const rec = await registry.insertCertificate(trx, ctx, {
      certificateId: issued.certificateId,
      certificatePem: issued.pem,
      caCertificateId: ready.ca.caCertificateId,
      status,
      serialNumber: issued.serialNumber,
      subjectCommonName: subject.CN?.[0] ?? null,
      notBefore: issued.notBefore,
      notAfter: issued.notAfter,
      createdBy: input.createdBy ?? 'csr',
      hidden: input.hidden === true,
    }, { rowLocks: store.supportsRowLocks });
    await options.alsoWrite?.(trx, rec);
    return rec;
  });
  return { certificateId: issued.certificateId, certificatePem: issued.pem, certificateChainPem: [issued.pem, ...ready.chainPem].join(''), record };
}

/** Result of createKeysAndCertificate: the private key is returned once and never stored. */
export interface KeysAndCertificate extends IssuedDeviceCertificate {
  readonly keyPair: { readonly PrivateKey: string; readonly PublicKey: string };
}

/** Generates a key pair server-side and issues its certificate (development flow; AWS CreateKeysAndCertificate). */
export async function createKeysAndCertificate(
  store: Store,
  cas: CertificateAuthorityService,
  ctx: RegistryContext,
  input: { setAsActive?: boolean | undefined; caCertificateId?: string | undefined; subjectCommonName?: string | undefined; createdBy?: string | undefined; status?: CertificateStatus | undefined; hidden?: boolean | undefined; validityMinutes?: number | undefined },
  options: RecordCertificateOptions = {},
): Promise<KeysAndCertificate> {
  const keys = pki.generateKeyPair('EC_P256');
  const ready = await cas.issuerFor(ctx.tenantId, input.caCertificateId);
  const now = Date.now();
  const issued = ready.issuer.issue({
    publicKey: keys.publicKey,
    subject: { CN: [input.subjectCommonName ?? 'Gatehouse device'] },
    ...(input.validityMinutes === undefined
      ? { validityDays: DEVICE_CERT_VALIDITY_DAYS }
      : { notBefore: new Date(now - 60_000), notAfter: new Date(now + input.validityMinutes * 60_000) }),
    extendedKeyUsage: 'clientAuth',
    crlDistributionPointUrl: cas.crlUrl(ready.ca.caCertificateId),
  });
  const record = await store.transaction(async (trx) => {
    const rec = await registry.insertCertificate(trx, ctx, {
      certificateId: issued.certificateId,
      certificatePem: issued.pem,
      caCertificateId: ready.ca.caCertificateId,
      status: input.status ?? (input.setAsActive === true ? 'ACTIVE' : 'INACTIVE'),
      serialNumber: issued.serialNumber,
      subjectCommonName: input.subjectCommonName ?? 'Gatehouse device',
      notBefore: issued.notBefore,
      notAfter: issued.notAfter,
      createdBy: input.createdBy ?? 'keys',
      hidden: input.hidden === true,
    }, { rowLocks: store.supportsRowLocks });
    await options.alsoWrite?.(trx, rec);
    return rec;
  });
  return {
    certificateId: issued.certificateId,
    certificatePem: issued.pem,
    certificateChainPem: [issued.pem, ...ready.chainPem].join(''),
    record,
    keyPair: { PrivateKey: keys.privateKeyPem, PublicKey: keys.publicKeyPem },
  };
}

import type { ParsedCertificate } from '../pki/index.ts';
import type { CertificateStatus, NewCertificateRecord } from '../registry/index.ts';

/** The registry record of a parsed device certificate (every flow that registers one goes through here). */
export function certificateRecordOf(cert: ParsedCertificate, caCertificateId: string | null, status: CertificateStatus, createdBy: string): NewCertificateRecord {
  return {
    certificateId: cert.certificateId,
    certificatePem: cert.pem,
    caCertificateId,
    status,
    serialNumber: cert.serialNumber,
    subjectCommonName: cert.subject.CN?.[0] ?? null,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    createdBy,
  };
}

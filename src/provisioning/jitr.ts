import type { ParsedCertificate } from '../pki/index.ts';
import * as registry from '../registry/index.ts';
import type { CaRecord, CertificateRecord } from '../registry/index.ts';
import type { Store } from '../store/index.ts';
import { certificateRecordOf } from './certificate-record.ts';
import type { ProvisioningEventSink } from './events.ts';

/** Topic of the JITR event (protocols.md). */
export function jitrEventTopic(caCertificateId: string): string {
  return `$aws/events/certificates/registered/${caCertificateId}`;
}

/** The JITR event payload, exactly the fields of protocols.md. */
export function jitrEventPayload(tenantAccountId: string, cert: Pick<CertificateRecord, 'certificateId' | 'createdAt'>, caCertificateId: string): Record<string, unknown> {
  return {
    certificateId: cert.certificateId,
    caCertificateId,
    timestamp: Date.now(),
    certificateStatus: 'PENDING_ACTIVATION',
    awsAccountId: tenantAccountId,
    certificateRegistrationTimestamp: Date.parse(cert.createdAt),
  };
}

/** The 12-digit account id Gatehouse shows for a tenant (AWS's `awsAccountId`), stable per tenant name. */
export function tenantAccountId(tenantId: string): string {
  let h = 0n;
  for (const ch of tenantId) h = (h * 131n + BigInt(ch.codePointAt(0) ?? 0)) % 1_000_000_000_000n;
  return h.toString().padStart(12, '0');
}

/**
 * Just-in-time registration (source documents: "Just-in-Time Registration"): the unknown certificate of a CA with
 * auto-registration and no template is registered PENDING_ACTIVATION, and the registration event goes to the
 * broker and to webhooks; the operator's hook then activates it. Idempotent under concurrent connections.
 */
export async function registerJustInTime(store: Store, tenantId: string, ca: CaRecord, cert: ParsedCertificate, events: ProvisioningEventSink): Promise<CertificateRecord> {
  let rec = await registry.findCertificate(store.db, tenantId, cert.certificateId);
  if (rec === undefined) {
    try {
      rec = await store.transaction(async (trx) => {
        const r = await registry.insertCertificate(trx, { tenantId, actor: 'system:jitr' }, certificateRecordOf(cert, ca.caCertificateId, 'PENDING_ACTIVATION', 'jitr'), { rowLocks: store.supportsRowLocks });
        await registry.appendAudit(trx, { tenantId, actor: 'system:jitr' }, 'jitr.registered', `cert/${cert.certificateId}`, { caCertificateId: ca.caCertificateId }, store.supportsRowLocks);
        return r;
      });
    } catch (error) {
      const again = await registry.findCertificate(store.db, tenantId, cert.certificateId);
      if (again === undefined) throw error;
      rec = again;
    }
  }
  announcePending(tenantId, rec, ca.caCertificateId, events);
  return rec;
}

/** Publishes the JITR event again (each time a still-pending certificate connects). */
export function announcePending(tenantId: string, rec: CertificateRecord, caCertificateId: string, events: ProvisioningEventSink): void {
  events.emit(tenantId, 'certificate.registered', jitrEventTopic(caCertificateId), jitrEventPayload(tenantAccountId(tenantId), rec, caCertificateId));
}

import * as pki from '../pki/index.ts';
import { isGatehouseError } from '../errors/index.ts';
import * as registry from '../registry/index.ts';
import type { Store } from '../store/index.ts';
import type { ProvisioningEventSink } from './events.ts';
import { provisionJustInTime } from './jitp.ts';
import { announcePending, registerJustInTime } from './jitr.ts';
import { findIssuingCa } from './mar.ts';

/** What the gateway tells about a verified but unregistered client certificate. */
export interface AutoRegistrationRequest {
  readonly tenantId: string;
  /** Leaf first, then the intermediates the device presented. */
  readonly certificatePem: string;
  readonly intermediatesPem?: readonly string[];
  readonly clientId: string;
}

/** What happened. */
export type AutoRegistrationOutcome =
  | { readonly kind: 'provisioned'; readonly thingName: string | undefined; readonly firstConnect: registry.FirstConnectMode }
  | { readonly kind: 'pending'; readonly caCertificateId: string }
  | { readonly kind: 'refused'; readonly reason: string; readonly code: string };

/**
 * The entry of JITP and JITR: an unknown certificate that chains to an ACTIVE CA of the tenant with
 * auto-registration on is provisioned (JITP, when the CA names a template) or registered pending (JITR).
 * Every outcome is an event, an audit entry (written by the flows) and a metric (counted by the event sink).
 */
export class AutoRegistration {
  private readonly store: Store;
  private readonly events: ProvisioningEventSink;

  constructor(store: Store, events: ProvisioningEventSink) {
    this.store = store;
    this.events = events;
  }

  private refuse(tenantId: string, certificateId: string, code: string, reason: string): AutoRegistrationOutcome {
    this.events.emit(tenantId, 'auto-registration.refused', `$gatehouse/events/auto-registration/refused`, { certificateId, code, reason, timestamp: Date.now() });
    return { kind: 'refused', code, reason };
  }

  /** Handles a verified but unknown certificate. Never throws for a device-caused failure. */
  async handleUnknownCertificate(request: AutoRegistrationRequest): Promise<AutoRegistrationOutcome> {
    let leaf: pki.ParsedCertificate;
    try {
      leaf = pki.parseCertificate(request.certificatePem);
    } catch (error) {
      return { kind: 'refused', code: isGatehouseError(error) ? error.code : 'PKI_CERTIFICATE_MALFORMED', reason: 'unreadable certificate' };
    }
    const { tenantId } = request;
    let caId: string;
    try {
      const intermediates = (request.intermediatesPem ?? []).map((p) => pki.parseCertificate(p));
      caId = await findIssuingCa(this.store.db, tenantId, leaf, intermediates);
    } catch (error) {
      return this.refuse(tenantId, leaf.certificateId, isGatehouseError(error) ? error.code : 'PROVISIONING_CA_UNKNOWN_ISSUER', isGatehouseError(error) ? error.message : 'chain not verified');
    }
    const ca = await registry.getCa(this.store.db, tenantId, caId);
    if (!ca.autoRegistration) return this.refuse(tenantId, leaf.certificateId, 'PROVISIONING_AUTO_REGISTRATION_DISABLED', `CA ${caId} does not allow auto-registration`);
    if (ca.registrationTemplate !== null) {
      try {
        const r = await provisionJustInTime(this.store, tenantId, ca, leaf, `device:${leaf.certificateId}`);
        if (r.created) this.events.emit(tenantId, 'jitp.provisioned', `$gatehouse/events/jitp/provisioned/${caId}`, { certificateId: leaf.certificateId, caCertificateId: caId, thingName: r.thingName ?? null, timestamp: Date.now() });
        return { kind: 'provisioned', thingName: r.thingName, firstConnect: ca.firstConnect };
      } catch (error) {
        const code = isGatehouseError(error) ? error.code : 'PROVISIONING_JITP_FAILED';
        const reason = isGatehouseError(error) ? error.message : 'JITP failed';
        this.events.emit(tenantId, 'jitp.failed', `$gatehouse/events/jitp/failed/${caId}`, { certificateId: leaf.certificateId, caCertificateId: caId, code, reason, timestamp: Date.now() });
        await this.store.transaction((trx) => registry.appendAudit(trx, { tenantId, actor: `device:${leaf.certificateId}` }, 'jitp.failed', `cert/${leaf.certificateId}`, { code, reason }, this.store.supportsRowLocks));
        return { kind: 'refused', code, reason };
      }
    }
    await registerJustInTime(this.store, tenantId, ca, leaf, this.events);
    return { kind: 'pending', caCertificateId: caId };
  }

  /** A registered certificate still PENDING_ACTIVATION connected again: publish the JITR event again. */
  async announceStillPending(tenantId: string, certificateId: string): Promise<void> {
    const rec = await registry.findCertificate(this.store.db, tenantId, certificateId);
    if (rec?.status === 'PENDING_ACTIVATION' && rec.caCertificateId !== null && rec.createdBy === 'jitr') announcePending(tenantId, rec, rec.caCertificateId, this.events);
  }
}

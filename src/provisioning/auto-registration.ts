import { createHash } from 'node:crypto';
import * as pki from '../pki/index.ts';
import { isGatehouseError } from '../errors/index.ts';
import * as registry from '../registry/index.ts';
import type { Store } from '../store/index.ts';
import { TemplateCache } from '../templates/index.ts';
import type { ProvisioningEventSink } from './events.ts';
import { provisionJustInTime } from './jitp.ts';
import { announcePending, registerJustInTime } from './jitr.ts';
import { verifyIssuingCa } from './mar.ts';
import { ProvisioningErrors } from './errors.ts';

/** How many parsed CA certificates an AutoRegistration keeps. */
const PARSED_CA_CACHE_SIZE = 1000;
/**
 * How long a tenant's CA list is reused without a change notification. {@link AutoRegistration.forgetCas} drops it at
 * once when a CA changes (the control plane calls it, through the cluster bus on every process); this is the backstop.
 */
const CA_LIST_TTL_MS = 1000;

/** What the gateway tells about a verified but unregistered client certificate. */
export interface AutoRegistrationRequest {
  readonly tenantId: string;
  /** The device certificate: PEM, or DER as TLS received it (no PEM round trip on a device's first connection). */
  readonly certificate: string | Uint8Array;
  /** The certificates above it that may complete its path (PEM or DER). */
  readonly intermediates?: readonly (string | Uint8Array)[];
  readonly clientId: string;
  /** False when the device sent no SNI naming the tenant's endpoint: an SNI_ONLY CA then refuses it. Default true. */
  readonly endpointNamed?: boolean | undefined;
}

/** What happened. */
export type AutoRegistrationOutcome =
  | {
      readonly kind: 'provisioned';
      readonly thingName: string | undefined;
      readonly firstConnect: registry.FirstConnectMode;
      /** The certificate as JITP committed it; absent when another connection or node provisioned it first. */
      readonly certificate?: registry.CertificateRecord | undefined;
    }
  /** JITR with the built-in allow-list hook: registered and activated at once. */
  | { readonly kind: 'activated'; readonly thingName: string | undefined }
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
  private readonly crls = new Map<string, { crl: pki.ReadCrl; until: number }>();
  /** CA certificates parsed once (keyed by PEM: a CA record's certificate never changes). */
  private readonly parsedCas = new Map<string, pki.ParsedCertificate>();
  private readonly templates = new TemplateCache();
  /** Each tenant's CAs, read at most once per {@link CA_LIST_TTL_MS} (JITP reads them for every new device). */
  private readonly caLists = new Map<string, { readonly until: number; readonly cas: Promise<registry.CaRecord[]> }>();

  constructor(store: Store, events: ProvisioningEventSink) {
    this.store = store;
    this.events = events;
  }

  /** A CA of the tenant was registered, changed or revoked: read the tenant's CAs again (all tenants without one). */
  forgetCas(tenantId?: string): void {
    if (tenantId === undefined) this.caLists.clear();
    else this.caLists.delete(tenantId);
  }

  private casOf(tenantId: string): Promise<registry.CaRecord[]> {
    const now = Date.now();
    const hit = this.caLists.get(tenantId);
    if (hit !== undefined && hit.until > now) return hit.cas;
    const entry = { until: now + CA_LIST_TTL_MS, cas: registry.listAllCas(this.store.db, tenantId) };
    this.caLists.set(tenantId, entry);
    entry.cas.catch(() => {
      if (this.caLists.get(tenantId) === entry) this.caLists.delete(tenantId);
    });
    return entry.cas;
  }

  private parsedCa(pem: string): pki.ParsedCertificate {
    let parsed = this.parsedCas.get(pem);
    if (parsed === undefined) {
      parsed = pki.parseCertificate(pem);
      if (this.parsedCas.size >= PARSED_CA_CACHE_SIZE) this.parsedCas.clear();
      this.parsedCas.set(pem, parsed);
    }
    return parsed;
  }

  private refuse(tenantId: string, certificateId: string, code: string, reason: string): AutoRegistrationOutcome {
    this.events.emit(tenantId, 'auto-registration.refused', `$gatehouse/events/auto-registration/refused`, { certificateId, code, reason, timestamp: Date.now() });
    return { kind: 'refused', code, reason };
  }

  /** Handles a verified but unknown certificate. Never throws for a device-caused failure. */
  async handleUnknownCertificate(request: AutoRegistrationRequest): Promise<AutoRegistrationOutcome> {
    let leaf: pki.ParsedCertificate;
    try {
      leaf = pki.parseCertificate(request.certificate);
    } catch (error) {
      return { kind: 'refused', code: isGatehouseError(error) ? error.code : 'PKI_CERTIFICATE_MALFORMED', reason: 'unreadable certificate' };
    }
    const { tenantId } = request;
    let ca: registry.CaRecord;
    try {
      const intermediates = (request.intermediates ?? []).map((c) => pki.parseCertificate(c));
      ca = await verifyIssuingCa(this.store.db, tenantId, leaf, intermediates, { parseCa: (pem) => this.parsedCa(pem), cas: await this.casOf(tenantId) });
    } catch (error) {
      return this.refuse(tenantId, leaf.certificateId, isGatehouseError(error) ? error.code : 'PROVISIONING_CA_UNKNOWN_ISSUER', isGatehouseError(error) ? error.message : 'chain not verified');
    }
    const caId = ca.caCertificateId;
    if (ca.certificateMode === 'SNI_ONLY' && request.endpointNamed === false) {
      return this.refuse(tenantId, leaf.certificateId, 'PROVISIONING_SNI_REQUIRED', `CA ${caId} is registered in SNI_ONLY mode: the device must send SNI naming the tenant's endpoint`);
    }
    if (!ca.autoRegistration) return this.refuse(tenantId, leaf.certificateId, 'PROVISIONING_AUTO_REGISTRATION_DISABLED', `CA ${caId} does not allow auto-registration`);
    if (ca.registrationTemplate !== null) {
      try {
        const r = await provisionJustInTime(this.store, tenantId, ca, leaf, `device:${leaf.certificateId}`, { templates: this.templates });
        if (r.created) this.events.emit(tenantId, 'jitp.provisioned', `$gatehouse/events/jitp/provisioned/${caId}`, { certificateId: leaf.certificateId, caCertificateId: caId, thingName: r.thingName ?? null, timestamp: Date.now() });
        return { kind: 'provisioned', thingName: r.thingName, firstConnect: ca.firstConnect, certificate: r.certificate };
      } catch (error) {
        const code = isGatehouseError(error) ? error.code : 'PROVISIONING_JITP_FAILED';
        const reason = isGatehouseError(error) ? error.message : 'JITP failed';
        this.events.emit(tenantId, 'jitp.failed', `$gatehouse/events/jitp/failed/${caId}`, { certificateId: leaf.certificateId, caCertificateId: caId, code, reason, timestamp: Date.now() });
        await this.store.transaction((trx) => registry.appendAudit(trx, { tenantId, actor: `device:${leaf.certificateId}` }, 'jitp.failed', `cert/${leaf.certificateId}`, { code, reason }, this.store.supportsRowLocks));
        return { kind: 'refused', code, reason };
      }
    }
    const hooks = await registry.getCaRegistrationHooks(this.store.db, tenantId, caId);
    if (hooks.crlPem !== null || hooks.crlUrl !== null) {
      let listed: boolean;
      try {
        listed = await this.listedInCrl(caId, pki.loadCertificate(ca.certificatePem), hooks, leaf.serialNumber);
      } catch (error) {
        // No usable CRL: fail closed, the device retries later.
        return this.refuse(tenantId, leaf.certificateId, isGatehouseError(error) ? error.code : 'PROVISIONING_CRL_UNAVAILABLE', `the CA's CRL cannot be checked: ${(error as Error).message}`);
      }
      if (listed) {
        await this.store.transaction((trx) => registry.appendAudit(trx, { tenantId, actor: 'system:jitr-crl' }, 'jitr.crl.refused', `cert/${leaf.certificateId}`, { caCertificateId: caId, serialNumber: leaf.serialNumber }, this.store.supportsRowLocks));
        return this.refuse(tenantId, leaf.certificateId, 'PKI_CERTIFICATE_REVOKED', 'the certificate is listed in the CA CRL');
      }
    }
    const rec = await registerJustInTime(this.store, tenantId, ca, leaf, this.events);
    if (hooks.allowList !== null && rec.status === 'PENDING_ACTIVATION') {
      const cn = leaf.subject.CN?.[0];
      const candidates = [cn ?? '', leaf.subject.serialNumber?.[0] ?? '', leaf.serialNumber];
      if (await registry.isAllowListed(this.store.db, tenantId, candidates)) {
        const thingName = await this.activateAllowListed(tenantId, leaf, cn, hooks.allowList.policyName);
        this.events.emit(tenantId, 'jitr.activated', `$gatehouse/events/jitr/activated/${caId}`, { certificateId: leaf.certificateId, caCertificateId: caId, thingName: thingName ?? null, timestamp: Date.now() });
        return { kind: 'activated', thingName };
      }
    }
    return { kind: 'pending', caCertificateId: caId };
  }

  /** The allow-list hook: activate, create the thing named by the CN (when a valid name), attach the policy. */
  private async activateAllowListed(tenantId: string, leaf: pki.ParsedCertificate, cn: string | undefined, policyName: string | undefined): Promise<string | undefined> {
    const ctx = { tenantId, actor: 'system:jitr-allow-list' };
    const w = { rowLocks: this.store.supportsRowLocks };
    const thingName = cn !== undefined && /^[a-zA-Z0-9:_-]{1,128}$/.test(cn) ? cn : undefined;
    await this.store.transaction(async (trx) => {
      await registry.updateCertificateStatus(trx, ctx, leaf.certificateId, 'ACTIVE', w);
      if (thingName !== undefined) {
        if ((await registry.findThing(trx, tenantId, thingName)) === undefined) await registry.createThing(trx, ctx, { thingName }, w);
        await registry.attachThingPrincipal(trx, ctx, thingName, leaf.certificateId, w);
      }
      if (policyName !== undefined) await registry.attachPolicy(trx, ctx, policyName, { kind: 'certificate', certificateId: leaf.certificateId }, w);
      await registry.appendAudit(trx, ctx, 'jitr.allow-list.activated', `cert/${leaf.certificateId}`, { thingName: thingName ?? null }, w.rowLocks);
    });
    return thingName;
  }

  /** True when `serialHex` is on the CA's uploaded or fetched CRL (verified against the CA; cached until it is stale). */
  private async listedInCrl(caId: string, caCert: pki.ParsedCertificate, hooks: registry.CaRegistrationHooks, serialHex: string): Promise<boolean> {
    const key = `${caId}\u0000${hooks.crlUrl ?? ''}\u0000${hooks.crlPem === null ? '' : createHash('sha256').update(hooks.crlPem).digest('hex')}`;
    let entry = this.crls.get(key);
    if (entry === undefined || entry.until < Date.now()) {
      let input: string | Uint8Array;
      if (hooks.crlPem !== null) input = hooks.crlPem;
      else {
        const res = await fetch(hooks.crlUrl ?? '', { signal: AbortSignal.timeout(5000), redirect: 'error' });
        if (!res.ok) throw ProvisioningErrors.error('PROVISIONING_CRL_UNAVAILABLE', `the CRL URL answered HTTP ${res.status}`);
        input = new Uint8Array(await res.arrayBuffer());
      }
      const crl = await pki.readCrl(input, caCert);
      const until = Math.min(Date.now() + 10 * 60_000, crl.nextUpdate?.getTime() ?? Number.MAX_SAFE_INTEGER);
      entry = { crl, until: hooks.crlPem !== null ? Number.MAX_SAFE_INTEGER : until };
      this.crls.set(key, entry);
    }
    return entry.crl.revokedSerials.has(pki.crlSerialKey(serialHex));
  }

  /**
   * The allow-list hook for a certificate left PENDING_ACTIVATION at an earlier connection (the list was imported, or
   * the hook set, only afterwards): activates it now when it is allowed. True when it did.
   */
  async activateIfAllowListed(tenantId: string, certificateId: string): Promise<boolean> {
    const rec = await registry.findCertificate(this.store.db, tenantId, certificateId);
    if (rec?.status !== 'PENDING_ACTIVATION' || rec.caCertificateId === null) return false;
    const caId = rec.caCertificateId;
    const hooks = await registry.getCaRegistrationHooks(this.store.db, tenantId, caId);
    if (hooks.allowList === null) return false;
    const leaf = pki.parseCertificate(rec.certificatePem);
    const cn = leaf.subject.CN?.[0];
    if (!(await registry.isAllowListed(this.store.db, tenantId, [cn ?? '', leaf.subject.serialNumber?.[0] ?? '', leaf.serialNumber]))) return false;
    const thingName = await this.activateAllowListed(tenantId, leaf, cn, hooks.allowList.policyName);
    this.events.emit(tenantId, 'jitr.activated', `$gatehouse/events/jitr/activated/${caId}`, { certificateId, caCertificateId: caId, thingName: thingName ?? null, timestamp: Date.now() });
    return true;
  }

  /** A registered certificate still PENDING_ACTIVATION connected again: publish the JITR event again. */
  async announceStillPending(tenantId: string, certificateId: string): Promise<void> {
    const rec = await registry.findCertificate(this.store.db, tenantId, certificateId);
    if (rec?.status === 'PENDING_ACTIVATION' && rec.caCertificateId !== null && rec.createdBy === 'jitr') announcePending(tenantId, rec, rec.caCertificateId, this.events);
  }
}

import * as registry from '../registry/index.ts';
import type { CaRecord, CaUpdate, CertificateRecord, CertificateStatus, RegistryContext } from '../registry/index.ts';
import type { Store } from '../store/index.ts';
import type { CertificateAuthorityService, CreateCaInput, RegisterCaInput } from './certificate-authority-service.ts';
import { randomUUID } from 'node:crypto';
import { NO_EVENTS } from './events.ts';
import type { ProvisioningEventSink } from './events.ts';
import { FleetProvisioning } from './fleet-claim.ts';
import { tenantAccountId } from './jitr.ts';
import { createKeysAndCertificate, issueFromCsr } from './manual.ts';
import type { IssueFromCsrInput } from './manual.ts';
import { registerCertificate, registerCertificateWithoutCa } from './mar.ts';
import type { RegisterCertificateInput } from './mar.ts';

/** Who wants to know when registry state that live connections depend on changes (the gateway, the event bus). */
export interface ChangeListener {
  /** A certificate's status or attachments changed: re-authorise or disconnect its live connections. */
  certificateChanged?(tenantId: string, certificateId: string): void;
  /** Policies, their versions or group attachments changed: recompile effective policies of the tenant. */
  policiesChanged?(tenantId: string): void;
  /** The set of trusted CAs of a tenant changed: rebuild its TLS trust store. */
  trustChanged?(tenantId: string): void;
  /** A tenant was created. */
  tenantsChanged?(): void;
  /** Webhook subscriptions changed. */
  webhooksChanged?(): void;
  /** A certificate or CA that this owned CA issued was revoked: its cached CRL is stale. */
  crlStale?(caCertificateId: string): void;
}

/**
 * The provisioning surface that the API and CLI call: CA management, issuing and registration flows, certificate
 * lifecycle. It keeps listeners (gateway) informed so that changes apply to live connections at once.
 */
export class ControlPlane {
  private readonly listeners: ChangeListener[] = [];
  private events: ProvisioningEventSink = NO_EVENTS;
  private readonly store: Store;
  readonly cas: CertificateAuthorityService;
  /** Fleet provisioning by claim and by trusted user. */
  readonly fleet: FleetProvisioning;

  constructor(store: Store, cas: CertificateAuthorityService) {
    this.store = store;
    this.cas = cas;
    this.fleet = new FleetProvisioning(store, cas);
  }

  /** Where lifecycle events go (set by the composition root once the event bus exists). */
  setEventSink(sink: ProvisioningEventSink): void {
    this.events = sink;
  }

  /**
   * Publishes an AWS-style thing lifecycle event (`$aws/events/thing/<thingName>/<created|updated|deleted>`) on the
   * tenant's broker and to webhooks subscribed to `thing.<operation>`.
   */
  thingEvent(tenantId: string, operation: 'created' | 'updated' | 'deleted', thing: { thingName: string; thingId?: string; version?: number; thingTypeName?: string | null; attributes?: Record<string, string> }): void {
    this.events.emit(tenantId, `thing.${operation}`, `$aws/events/thing/${thing.thingName}/${operation}`, {
      eventType: 'THING_EVENT',
      eventId: randomUUID(),
      timestamp: Date.now(),
      operation: operation.toUpperCase(),
      accountId: tenantAccountId(tenantId),
      thingName: thing.thingName,
      ...(thing.thingId === undefined ? {} : { thingId: thing.thingId }),
      ...(thing.version === undefined ? {} : { versionNumber: thing.version }),
      ...(thing.thingTypeName === undefined || thing.thingTypeName === null ? {} : { thingTypeName: thing.thingTypeName }),
      ...(thing.attributes === undefined ? {} : { attributes: thing.attributes }),
    });
  }

  /** Adds a listener of registry changes. */
  addListener(listener: ChangeListener): void {
    this.listeners.push(listener);
  }

  /** Tells listeners that a certificate changed. */
  notifyCertificateChanged(tenantId: string, certificateId: string): void {
    for (const l of this.listeners) l.certificateChanged?.(tenantId, certificateId);
  }

  /** Tells listeners that policies of a tenant changed. */
  notifyPoliciesChanged(tenantId: string): void {
    for (const l of this.listeners) l.policiesChanged?.(tenantId);
  }

  /** Tells listeners that the trusted CAs of a tenant changed. */
  notifyTrustChanged(tenantId: string): void {
    for (const l of this.listeners) l.trustChanged?.(tenantId);
  }

  /** Tells listeners that the CRL of `caCertificateId` no longer lists every revoked certificate it issued. */
  notifyCrlStale(caCertificateId: string): void {
    for (const l of this.listeners) l.crlStale?.(caCertificateId);
  }

  /** Tells listeners that webhook subscriptions changed. */
  notifyWebhooksChanged(): void {
    for (const l of this.listeners) l.webhooksChanged?.();
  }

  /** Tells listeners that tenants were added. */
  notifyTenantsChanged(): void {
    for (const l of this.listeners) l.tenantsChanged?.();
  }

  /** POST /v1/cas. */
  async createCa(ctx: RegistryContext, input: CreateCaInput): Promise<{ caCertificateId: string; caCertificatePem: string; certificateChainPem: string }> {
    const ca = await this.cas.createCa(ctx, input);
    const chain = await this.cas.chainOf(ca);
    return { caCertificateId: ca.caCertificateId, caCertificatePem: ca.certificatePem, certificateChainPem: chain.join('') };
  }

  /** GET /v1/cas/registration-code. */
  getRegistrationCode(ctx: RegistryContext): Promise<string> {
    return this.cas.getRegistrationCode(ctx);
  }

  /** POST /v1/cas/register. */
  async registerCa(ctx: RegistryContext, input: RegisterCaInput): Promise<{ caCertificateId: string; status: string; certificateMode: string }> {
    const ca = await this.cas.registerCa(ctx, input);
    return { caCertificateId: ca.caCertificateId, status: ca.status, certificateMode: ca.certificateMode };
  }

  /** PATCH /v1/cas/{id}. */
  updateCa(ctx: RegistryContext, caCertificateId: string, update: CaUpdate): Promise<CaRecord> {
    return this.cas.updateCa(ctx, caCertificateId, update);
  }

  /** POST /v1/cas/{id}/revoke. */
  async revokeCa(ctx: RegistryContext, caCertificateId: string, reason: string): Promise<CaRecord> {
    const rec = await this.cas.revokeCa(ctx, caCertificateId, reason);
    if (rec.parentCaCertificateId !== null) this.notifyCrlStale(rec.parentCaCertificateId);
    return rec;
  }

  /** GET /v1/crl/{id}. */
  getCrl(caCertificateId: string): Promise<{ der: Uint8Array; pem: string }> {
    return this.cas.getCrl(caCertificateId);
  }

  /** POST /v1/certificates/from-csr. */
  async issueFromCsr(ctx: RegistryContext, input: IssueFromCsrInput): Promise<{ certificateId: string; certificatePem: string; certificateChainPem: string }> {
    const r = await issueFromCsr(this.store, this.cas, ctx, input);
    return { certificateId: r.certificateId, certificatePem: r.certificatePem, certificateChainPem: r.certificateChainPem };
  }

  /** POST /v1/certificates/keys-and-certificate. */
  async createKeysAndCertificate(ctx: RegistryContext, input: { setAsActive?: boolean; caCertificateId?: string; subjectCommonName?: string }): Promise<{ certificateId: string; certificatePem: string; certificateChainPem: string; keyPair: { PrivateKey: string; PublicKey: string } }> {
    const r = await createKeysAndCertificate(this.store, this.cas, ctx, input);
    return { certificateId: r.certificateId, certificatePem: r.certificatePem, certificateChainPem: r.certificateChainPem, keyPair: r.keyPair };
  }

  /** POST /v1/certificates/register. */
  async registerCertificate(ctx: RegistryContext, input: RegisterCertificateInput): Promise<{ certificateId: string; status: CertificateStatus; caCertificateId: string | null }> {
    const r = await registerCertificate(this.store, ctx, input);
    return { certificateId: r.certificateId, status: r.status, caCertificateId: r.caCertificateId };
  }

  /** POST /v1/certificates/register-without-ca. */
  async registerCertificateWithoutCa(ctx: RegistryContext, input: RegisterCertificateInput): Promise<{ certificateId: string; status: CertificateStatus }> {
    const r = await registerCertificateWithoutCa(this.store, ctx, input);
    return { certificateId: r.certificateId, status: r.status };
  }

  /** PATCH /v1/certificates/{id}: activation, deactivation, revocation take effect on live connections at once. */
  async updateCertificateStatus(ctx: RegistryContext, certificateId: string, status: CertificateStatus): Promise<CertificateRecord> {
    const rec = await this.store.transaction((trx) => registry.updateCertificateStatus(trx, ctx, certificateId, status, { rowLocks: this.store.supportsRowLocks }));
    if (status === 'REVOKED' && rec.caCertificateId !== null) this.notifyCrlStale(rec.caCertificateId);
    this.notifyCertificateChanged(ctx.tenantId, certificateId);
    return rec;
  }

  /** POST /v1/certificates/{id}/revoke. */
  async revokeCertificate(ctx: RegistryContext, certificateId: string, reason: string): Promise<CertificateRecord> {
    const rec = await this.store.transaction((trx) => registry.updateCertificateStatus(trx, ctx, certificateId, 'REVOKED', { rowLocks: this.store.supportsRowLocks, reason }));
    if (rec.caCertificateId !== null) this.notifyCrlStale(rec.caCertificateId);
    this.notifyCertificateChanged(ctx.tenantId, certificateId);
    return rec;
  }

  /** POST /v1/claim-certificates/{id}/revoke: the claim can no longer connect nor provision, and is on its CA's CRL. */
  async revokeClaim(ctx: RegistryContext, certificateId: string): Promise<void> {
    this.revoked(ctx.tenantId, [await this.fleet.revokeClaim(ctx, certificateId)]);
  }

  /** DELETE /v1/provisioning-templates/{name} (see `registry.deleteProvisioningTemplate` for `claims`). */
  async deleteTemplate(ctx: RegistryContext, templateName: string, claims: registry.TemplateClaimsOnDelete | undefined): Promise<void> {
    const rowLocks = this.store.supportsRowLocks;
    const { claimsRevoked } = await this.store.transaction((trx) => registry.deleteProvisioningTemplate(trx, ctx, templateName, { rowLocks, ...(claims === undefined ? {} : { claims }) }));
    this.revoked(ctx.tenantId, claimsRevoked);
  }

  /** Closes the live connections of certificates just revoked and marks their CAs' CRLs stale. */
  private revoked(tenantId: string, records: readonly { readonly certificateId: string; readonly caCertificateId: string | null }[]): void {
    for (const caId of new Set(records.map((r) => r.caCertificateId))) if (caId !== null) this.notifyCrlStale(caId);
    for (const r of records) this.notifyCertificateChanged(tenantId, r.certificateId);
  }
}

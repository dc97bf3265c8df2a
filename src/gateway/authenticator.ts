/**
 * Authentication by certificate at MQTT CONNECT (issue 4 §3). The TLS layer has already established who the peer
 * is ({@link PeerIdentity}); this decides whether that certificate may connect to its tenant right now:
 * registered in the tenant, ACTIVE, within its validity period, and issued by an ACTIVE CA — or registered
 * without a CA and matched by fingerprint. Each refusal carries a reason (a metrics label) and a CONNACK code.
 */
import * as registry from '../registry/index.ts';
import type { CertificateRecord } from '../registry/index.ts';
import type { Store } from '../store/index.ts';
import type { ConnectCache } from './connect-cache.ts';
import { certificateIdOfDer } from './device-tls.ts';
import type { PeerIdentity, TlsRefusalReason } from './device-tls.ts';

/** Why a connection was refused, at TLS or at CONNECT (label `reason` of `gatehouse_mqtt_connect_refusals_total`). */
export type RefusalReason =
  | TlsRefusalReason
  | 'unknown_certificate'
  | 'certificate_inactive'
  | 'certificate_revoked'
  | 'certificate_pending'
  | 'certificate_expired'
  | 'certificate_not_yet_valid'
  | 'ca_inactive'
  | 'sni_required'
  | 'client_id_invalid'
  | 'connect_denied'
  | 'will_denied'
  | 'provisioned_reconnect'
  | 'internal_error';

/** MQTT 3.1.1 CONNACK return codes used for refusals. */
export type ConnackRefusalCode = 2 | 3 | 4 | 5;

/** CONNACK code of each CONNECT-time refusal. */
export const CONNACK_CODE_OF_REFUSAL: Readonly<Record<RefusalReason, ConnackRefusalCode>> = Object.freeze({
  no_certificate: 4,
  tls_unverified: 4,
  too_many_connections_from_ip: 3,
  tls_handshake_failed: 4,
  unknown_certificate: 4,
  certificate_inactive: 5,
  certificate_revoked: 5,
  certificate_pending: 5,
  certificate_expired: 5,
  certificate_not_yet_valid: 5,
  ca_inactive: 5,
  sni_required: 5,
  client_id_invalid: 2,
  connect_denied: 5,
  // a will the policy would not let the device publish (AWS checks the will at CONNECT too)
  will_denied: 5,
  // JITP in `reconnect` mode (AWS behaviour): provisioned, but this first connection is closed; reconnect.
  provisioned_reconnect: 3,
  internal_error: 3,
});

/** What the gateway knows of a certificate that TLS verified but that is not registered in the tenant. */
export interface UnknownCertificateRequest {
  readonly tenantId: string;
  readonly certificateId: string;
  /** The certificate, DER (as TLS received it). */
  readonly certificateDer: Buffer;
  /** The certificates above it in the path TLS verified (intermediates, then the anchor), DER. */
  readonly chainDer: readonly Buffer[];
  readonly clientId: string;
  readonly remoteAddress: string | undefined;
  /** True when the device named the tenant's endpoint in SNI (see PeerIdentity.endpointNamed). */
  readonly endpointNamed: boolean;
}

/** The answer of an {@link UnknownCertificateHandler}. */
export type UnknownCertificateOutcome =
  /**
   * The handler registered the certificate (e.g. JITP made it ACTIVE). Authentication goes on with `certificate`, the
   * record as the handler committed it, or reads it again when the handler gives none.
   */
  | { readonly kind: 'registered'; readonly certificate?: CertificateRecord | undefined }
  /** Registered, but this first connection must be closed (JITP `reconnect` mode, as AWS does). */
  | { readonly kind: 'registered-reconnect' }
  /** Not for this handler, or vetoed: the connection is refused as `unknown_certificate`. */
  | { readonly kind: 'refused'; readonly detail?: string | undefined };

/**
 * Extension point for the flows that start from an unknown certificate: JITP / JITR (a certificate signed by a
 * CA with auto-registration) and fleet provisioning by claim (issues 6 and 7). Not implemented by the gateway:
 * without a handler, an unknown certificate is refused.
 */
export interface UnknownCertificateHandler {
  handleUnknownCertificate(request: UnknownCertificateRequest): Promise<UnknownCertificateOutcome>;
  /** A registered certificate that is still PENDING_ACTIVATION connected again (JITR re-announces it). */
  onPendingCertificate?(tenantId: string, certificateId: string): void;
  /**
   * A certificate still PENDING_ACTIVATION connected again: activates it when a registration hook now allows it (the
   * JITR allow list was imported, or the hook set, after its first connection). True when it is ACTIVE now.
   */
  activatePending?(tenantId: string, certificateId: string): Promise<boolean>;
}

/** The outcome of {@link CertificateAuthenticator.authenticate}. */
export type AuthenticationResult =
  | { readonly ok: true; readonly certificate: CertificateRecord }
  | { readonly ok: false; readonly reason: RefusalReason; readonly detail: string };

/** Options of {@link CertificateAuthenticator}. */
export interface CertificateAuthenticatorOptions {
  readonly store: Store;
  readonly unknownCertificateHandler?: UnknownCertificateHandler | undefined;
  /** Longest accepted client id. */
  readonly maxClientIdLength: number;
  /** Keeps the facts of admitted certificates between connections (see `connect-cache.ts`); none: read every time. */
  readonly cache?: ConnectCache<CertificateFacts> | undefined;
  /**
   * Keeps the status and mode of each CA by tenant and id between connections whose certificate facts are not cached
   * (first connections, JITP); invalidated with `cache` when trust changes. None: read every time.
   */
  readonly caStatusCache?: ConnectCache<registry.CertificateCaFacts | undefined> | undefined;
}

/** What admission reads from the registry about one certificate. */
export interface CertificateFacts {
  readonly certificate: CertificateRecord | undefined;
  /**
   * Status of the issuing CA when the certificate was registered with one: the tenant's own registration of it, else
   * the owned CA of that id (never another tenant's registration of the same certificate).
   */
  readonly caStatus: string | undefined;
  /** Mode of that CA: SNI_ONLY CAs admit only devices that named the tenant's endpoint in SNI. */
  readonly caMode?: registry.CaMode | undefined;
  /**
   * The ids of the other certificates on the path TLS verified (intermediates, anchor), worked out at the first
   * connection that used these facts and kept with them: the same leaf verifies along the same path.
   */
  pathCaIds?: readonly string[];
}

/** Facts worth keeping: an ACTIVE certificate with no CA or an ACTIVE CA (anything else is read again next time). */
function admissible(f: CertificateFacts): boolean {
  return f.certificate?.status === 'ACTIVE' && (f.certificate.caCertificateId === null || f.caStatus === 'ACTIVE');
}


/** Decides, at CONNECT, whether a TLS peer's certificate may connect to its tenant. */
export class CertificateAuthenticator {
  private readonly o: CertificateAuthenticatorOptions;

  constructor(options: CertificateAuthenticatorOptions) {
    this.o = options;
  }

  /** Checks the certificate of `identity` for a connection with `clientId`, at time `now`. Never throws. */
  async authenticate(identity: PeerIdentity, clientId: string, now = new Date()): Promise<AuthenticationResult> {
    try {
      return await this.check(identity, clientId, now);
    } catch (error) {
      return { ok: false, reason: 'internal_error', detail: error instanceof Error ? error.message : String(error) };
    }
  }

  private async check(identity: PeerIdentity, clientId: string, now: Date): Promise<AuthenticationResult> {
    if (clientId.length === 0 || clientId.length > this.o.maxClientIdLength) {
      return { ok: false, reason: 'client_id_invalid', detail: `client id must have 1 to ${this.o.maxClientIdLength} characters` };
    }
    // the client id is a topic level of its presence events ($aws/events/presence/connected/<clientId>): no wildcard
    if (/[#+\u0000]/.test(clientId)) return { ok: false, reason: 'client_id_invalid', detail: 'client id must not hold #, + or U+0000' };
    const { tenantId, certificateId } = identity;
    let facts = await this.facts(tenantId, certificateId);
    if (facts.certificate === undefined) {
      const handler = this.o.unknownCertificateHandler;
      if (handler === undefined || !identity.chainVerified) {
        return { ok: false, reason: 'unknown_certificate', detail: 'certificate is not registered in this tenant' };
      }
      const outcome = await handler.handleUnknownCertificate({
        tenantId,
        certificateId,
        certificateDer: identity.certificateDer,
        chainDer: identity.chainDer,
        clientId,
        remoteAddress: identity.remoteAddress,
        endpointNamed: identity.endpointNamed,
      });
      if (outcome.kind === 'refused') return { ok: false, reason: 'unknown_certificate', detail: outcome.detail ?? 'certificate is not registered in this tenant' };
      if (outcome.kind === 'registered-reconnect') return { ok: false, reason: 'provisioned_reconnect', detail: 'provisioned just in time; reconnect' };
      this.o.cache?.invalidate(tenantId, certificateId);
      const committed = outcome.certificate?.certificateId === certificateId ? outcome.certificate : undefined;
      facts = await this.facts(tenantId, certificateId, committed);
    }
    const cert = facts.certificate;
    if (cert === undefined) return { ok: false, reason: 'unknown_certificate', detail: 'certificate is still not registered after the unknown-certificate handler' };
    switch (cert.status) {
      case 'ACTIVE':
        break;
      case 'REVOKED':
        return { ok: false, reason: 'certificate_revoked', detail: 'certificate is REVOKED' };
      case 'INACTIVE':
        return { ok: false, reason: 'certificate_inactive', detail: 'certificate is INACTIVE' };
      default: {
        const handler = this.o.unknownCertificateHandler;
        if (cert.status === 'PENDING_ACTIVATION' && identity.chainVerified && (await handler?.activatePending?.(tenantId, certificateId)) === true) {
          this.o.cache?.invalidate(tenantId, certificateId);
          return this.check(identity, clientId, now);
        }
        if (cert.status === 'PENDING_ACTIVATION') handler?.onPendingCertificate?.(tenantId, cert.certificateId);
        return { ok: false, reason: 'certificate_pending', detail: `certificate is ${cert.status}` };
      }
    }
    const t = now.getTime();
    if (t < Date.parse(cert.notBefore)) return { ok: false, reason: 'certificate_not_yet_valid', detail: `certificate is valid from ${cert.notBefore}` };
    if (t > Date.parse(cert.notAfter)) return { ok: false, reason: 'certificate_expired', detail: `certificate expired at ${cert.notAfter}` };
    if (cert.caCertificateId === null) return { ok: true, certificate: cert };
    // A certificate recorded with a CA must have been verified by TLS against the tenant's trust store.
    if (!identity.chainVerified) return { ok: false, reason: 'tls_unverified', detail: 'certificate chain was not verified' };
    if (facts.caStatus !== 'ACTIVE') return { ok: false, reason: 'ca_inactive', detail: `issuing CA is ${facts.caStatus ?? 'unknown'}` };
    if (facts.caMode === 'SNI_ONLY' && !identity.endpointNamed) {
      return { ok: false, reason: 'sni_required', detail: `the issuing CA is registered in SNI_ONLY mode: the device must send SNI naming the tenant's endpoint` };
    }
    const onPath = await this.inactiveCaOnPath(tenantId, cert.caCertificateId, identity, facts);
    if (onPath !== undefined) return { ok: false, reason: 'ca_inactive', detail: onPath };
    return { ok: true, certificate: cert };
  }

  /**
   * A CA registered in the tenant that is on the verified path but is not the one recorded with the certificate, and
   * is not ACTIVE: an intermediate revoked or deactivated under an ACTIVE root still let its devices in, as the root
   * alone verified them. Statuses come from the CA status cache (cleared on every trust change).
   */
  private async inactiveCaOnPath(tenantId: string, recorded: string, identity: PeerIdentity, facts: CertificateFacts): Promise<string | undefined> {
    facts.pathCaIds ??= identity.chainDer.map((der) => certificateIdOfDer(der)).filter((id) => id !== recorded);
    for (const id of facts.pathCaIds) {
      const load = (): Promise<registry.CertificateCaFacts | undefined> => registry.findCertificateCa(this.o.store.db, tenantId, id);
      const status = (this.o.caStatusCache === undefined ? await load() : await this.o.caStatusCache.get(tenantId, id, load))?.status;
      if (status !== undefined && status !== 'ACTIVE') return `CA ${id} on the certificate's path is ${status}`;
    }
    return undefined;
  }

  /**
   * The registry's facts about a certificate, from the cache when it holds them. `committed`: the certificate's record
   * as a handler just committed it, used instead of reading it (its CA's status is still looked up).
   */
  private facts(tenantId: string, certificateId: string, committed?: CertificateRecord): Promise<CertificateFacts> {
    const load = async (): Promise<CertificateFacts> => {
      const db = this.o.store.db;
      const certificate = committed ?? (await registry.findCertificate(db, tenantId, certificateId));
      if (certificate?.caCertificateId === null || certificate?.caCertificateId === undefined) return { certificate, caStatus: undefined };
      const caId = certificate.caCertificateId;
      const loadCa = (): Promise<registry.CertificateCaFacts | undefined> => registry.findCertificateCa(db, tenantId, caId);
      const ca = this.o.caStatusCache === undefined ? await loadCa() : await this.o.caStatusCache.get(tenantId, caId, loadCa);
      return { certificate, caStatus: ca?.status, caMode: ca?.certificateMode };
    };
    const cache = this.o.cache;
    return cache === undefined ? load() : cache.get(tenantId, certificateId, load, admissible);
  }
}

import * as pki from '../pki/index.ts';
import type { CertificateIssuer, KeyAlgorithm, KeyStore, ParsedCertificate, Signer } from '../pki/index.ts';
import * as registry from '../registry/index.ts';
import type { CaRecord, CaUpdate, RegistryContext } from '../registry/index.ts';
import type { Executor, Store } from '../store/index.ts';
import { ProvisioningErrors } from './errors.ts';

/** Installation-wide settings keys. */
export const SETTING_ROOT_CA = 'pki.root_ca_id';
const issuingSettingKey = (tenantId: string): string => `pki.issuing_ca_id.${tenantId}`;

/** Options of the CA service. */
export interface CertificateAuthorityServiceOptions {
  readonly store: Store;
  readonly keyStore: KeyStore;
  /** Base URL for CRL distribution points (`<publicUrl>/v1/crl/<caId>`). */
  readonly publicUrl: string;
  /** Called after any change that alters which certificates a tenant trusts (gateway trust-store reload). */
  readonly onTrustChanged: (tenantId: string) => void;
  /** How long a tenant's default issuing CA read by `issuerFor` is reused (default {@link DEFAULT_ISSUER_TTL_MS}). */
  readonly defaultIssuerTtlMs?: number;
}

/** An issuer ready to sign, with its CA record. */
export interface ReadyIssuer {
  readonly ca: CaRecord;
  readonly issuer: CertificateIssuer;
  readonly certificate: ParsedCertificate;
  readonly signer: Signer;
  /** PEMs from the issuing CA up to the root. */
  readonly chainPem: string[];
}

/** Input of createCa (POST /v1/cas). */
export interface CreateCaInput {
  readonly commonName: string;
  readonly keyAlgorithm?: KeyAlgorithm | undefined;
  readonly parentCaCertificateId?: string | undefined;
  readonly validityDays?: number | undefined;
  readonly pathLength?: number | undefined;
}

/** Input of registerCa (POST /v1/cas/register, AWS RegisterCACertificate). */
export interface RegisterCaInput {
  readonly caCertificatePem: string;
  readonly verificationCertificatePem?: string | undefined;
  readonly certificateMode?: 'DEFAULT' | 'SNI_ONLY' | undefined;
  readonly setAsActive?: boolean | undefined;
  readonly allowAutoRegistration?: boolean | undefined;
}

/**
 * How long {@link CertificateAuthorityService.issuerFor} reuses a tenant's default issuing CA it read: the bound on
 * how late a change made outside this process without a trust notification (no cluster bus) is seen.
 */
export const DEFAULT_ISSUER_TTL_MS = 1000;

/**
 * The owned CA hierarchy (root → per-tenant or per-batch issuing intermediates), registered BYO CAs, issuers
 * cached per CA, and CRLs regenerated on change and on a schedule (RFC 5280 §5).
 */
export class CertificateAuthorityService {
  private readonly issuers = new Map<string, Promise<ReadyIssuer>>();
  /** The creation of a tenant's default issuing CA in progress, by tenant (concurrent first issuances share it). */
  private readonly creatingDefaultIssuer = new Map<string, Promise<ReadyIssuer>>();
  /**
   * Each tenant's default issuing CA as last read (setting + CA record), kept for at most
   * `defaultIssuerTtlMs` and dropped by {@link forgetIssuers} on every trust change: every certificate the
   * fleet API or the API issues asked for both rows before.
   */
  private readonly defaultIssuers = new Map<string, { readonly at: number; readonly ready: Promise<ReadyIssuer> }>();
  private readonly crls = new Map<string, { der: Uint8Array; pem: string; nextUpdate: number }>();
  private readonly o: CertificateAuthorityServiceOptions;

  constructor(options: CertificateAuthorityServiceOptions) {
    this.o = options;
  }

  private get w(): registry.WriteOptions {
    return { rowLocks: this.o.store.supportsRowLocks };
  }

  /** CRL distribution point URL of a CA. */
  crlUrl(caCertificateId: string): string {
    return `${this.o.publicUrl}/v1/crl/${caCertificateId}.crl`;
  }

  /** Creates the installation root CA (first start only). */
  async createInstallationRoot(ctx: RegistryContext, commonName: string): Promise<CaRecord> {
    const created = await pki.createRootCa({ keyStore: this.o.keyStore, commonName, keyAlgorithm: 'EC_P256', validityDays: 3650 * 2 });
    const ca = await this.o.store.transaction(async (trx) => {
      const rec = await registry.insertCa(trx, ctx, this.caRecordOf(created.certificate, created.keyRef, null), this.w);
      await registry.setSystemSetting(trx, SETTING_ROOT_CA, rec.caCertificateId);
      return rec;
    });
    return ca;
  }

  /** The installation root CA record (in the default tenant). */
  async installationRoot(db: Executor = this.o.store.db): Promise<CaRecord> {
    const id = await registry.getSystemSetting(db, SETTING_ROOT_CA);
    if (id === undefined) throw ProvisioningErrors.error('PROVISIONING_NOT_INITIALISED');
    return registry.getCa(db, registry.DEFAULT_TENANT, id);
  }

  private caRecordOf(cert: ParsedCertificate, keyRef: string | null, parent: string | null): registry.NewCaRecord {
    return {
      caCertificateId: cert.certificateId,
      certificatePem: cert.pem,
      subjectCommonName: cert.subject.CN?.[0] ?? null,
      serialNumber: cert.serialNumber,
      status: 'ACTIVE',
      certificateMode: 'DEFAULT',
      owned: keyRef !== null,
      keyRef,
      keyStore: keyRef === null ? null : this.o.keyStore.kind,
      parentCaCertificateId: parent,
      autoRegistration: false,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
    };
  }

  /**
   * Creates an owned CA in the caller's tenant: a root when no parent is named and the tenant has none of its own
   * wish, otherwise an intermediate under the parent (default: the installation root). Per-batch and
   * per-manufacturer intermediates are made this way, so that one can be revoked alone.
   */
  async createCa(ctx: RegistryContext, input: CreateCaInput): Promise<CaRecord> {
    const alg = input.keyAlgorithm ?? 'EC_P256';
    const parent = input.parentCaCertificateId === undefined ? await this.installationRoot() : await this.ownedActiveCa(ctx.tenantId, input.parentCaCertificateId, true);
    const issuer = await this.readyIssuer(parent);
    const created = await pki.createIntermediateCa({
      keyStore: this.o.keyStore,
      issuerCertificate: issuer.certificate,
      issuerSigner: issuer.signer,
      commonName: input.commonName,
      keyAlgorithm: alg,
      validityDays: Math.min(input.validityDays ?? 1825, Math.max(1, Math.floor((issuer.certificate.notAfter.getTime() - Date.now()) / 86_400_000))),
      ...(input.pathLength === undefined ? {} : { pathLength: input.pathLength }),
      crlDistributionPointUrl: this.crlUrl(parent.caCertificateId),
    });
    const rec = await this.o.store.transaction((trx) => registry.insertCa(trx, ctx, this.caRecordOf(created.certificate, created.keyRef, parent.caCertificateId), this.w));
    this.o.onTrustChanged(ctx.tenantId);
    return rec;
  }

  private async ownedActiveCa(tenantId: string, caId: string, allowInstallationRoot: boolean): Promise<CaRecord> {
    let ca: CaRecord;
    try {
      ca = await registry.getCa(this.o.store.db, tenantId, caId);
    } catch (e) {
      const root = allowInstallationRoot ? await this.installationRoot() : undefined;
      if (root?.caCertificateId !== caId) throw e;
      ca = root;
    }
    if (!ca.owned || ca.keyRef === null) throw ProvisioningErrors.error('PROVISIONING_CA_NOT_OWNED', `CA ${caId} is registered, not owned: Gatehouse cannot sign with it`);
    if (ca.status !== 'ACTIVE') throw ProvisioningErrors.error('PROVISIONING_CA_NOT_ACTIVE', `CA ${caId} is ${ca.status}`);
    return ca;
  }

  /** The issuer of an owned CA (cached; the signer is loaded once). */
  readyIssuer(ca: CaRecord): Promise<ReadyIssuer> {
    const cached = this.issuers.get(ca.caCertificateId);
    if (cached !== undefined) return cached.then((r) => ({ ...r, ca }));
    const p = (async (): Promise<ReadyIssuer> => {
      if (ca.keyRef === null) throw ProvisioningErrors.error('PROVISIONING_CA_NOT_OWNED');
      if (ca.keyStore !== null && ca.keyStore !== this.o.keyStore.kind) {
        throw ProvisioningErrors.error('PROVISIONING_CA_KEY_STORE_MISMATCH', `the key of CA ${ca.caCertificateId} is in the ${ca.keyStore} key store, but this server uses ${this.o.keyStore.kind}`);
      }
      const signer = await this.o.keyStore.getSigner(ca.keyRef);
      const certificate = pki.parseCertificate(ca.certificatePem);
      const chainPem = await this.chainOf(ca);
      const issuer = pki.createCertificateIssuer({ caCertificate: certificate, signer, chainPem });
      return { ca, issuer, certificate, signer, chainPem };
    })();
    this.issuers.set(ca.caCertificateId, p);
    p.catch(() => this.issuers.delete(ca.caCertificateId));
    return p;
  }

  /** PEMs from `ca` up to its root, following owned parents. */
  async chainOf(ca: CaRecord): Promise<string[]> {
    const chain = [ca.certificatePem];
    let parentId = ca.parentCaCertificateId;
    for (let depth = 0; parentId !== null && depth < 10; depth += 1) {
      const parent = await registry.findOwnedCa(this.o.store.db, parentId);
      if (parent === undefined) break;
      chain.push(parent.certificatePem);
      parentId = parent.parentCaCertificateId;
    }
    return chain;
  }

  /**
   * The issuing CA of a tenant: the named owned CA, or the tenant's default issuing intermediate, created under
   * the installation root on first use.
   */
  async issuerFor(tenantId: string, caCertificateId?: string): Promise<ReadyIssuer> {
    if (caCertificateId !== undefined) return this.readyIssuer(await this.ownedActiveCa(tenantId, caCertificateId, false));
    const now = performance.now();
    const cached = this.defaultIssuers.get(tenantId);
    if (cached !== undefined && now - cached.at < (this.o.defaultIssuerTtlMs ?? DEFAULT_ISSUER_TTL_MS)) return cached.ready;
    const ready = this.readDefaultIssuer(tenantId);
    this.defaultIssuers.set(tenantId, { at: now, ready });
    ready.catch(() => {
      if (this.defaultIssuers.get(tenantId)?.ready === ready) this.defaultIssuers.delete(tenantId);
    });
    return ready;
  }

  /**
   * Forgets the default issuing CAs read by {@link issuerFor}: called on every trust change of any tenant (a CA
   * created, deactivated, revoked; from this process or, through the cluster bus, another one).
   */
  forgetIssuers(): void {
    this.defaultIssuers.clear();
  }

  private async readDefaultIssuer(tenantId: string): Promise<ReadyIssuer> {
    const id = await registry.getSystemSetting(this.o.store.db, issuingSettingKey(tenantId));
    if (id !== undefined) {
      const ca = await registry.getCa(this.o.store.db, tenantId, id);
      if (ca.status !== 'ACTIVE') throw ProvisioningErrors.error('PROVISIONING_CA_NOT_ACTIVE', `the default issuing CA of tenant "${tenantId}" is ${ca.status}; create a new one with POST /v1/cas`);
      return this.readyIssuer(ca);
    }
    // First use: one creation per process at a time, and one winner across processes (the setting is claimed).
    let creating = this.creatingDefaultIssuer.get(tenantId);
    if (creating === undefined) {
      creating = this.createDefaultIssuer(tenantId).finally(() => this.creatingDefaultIssuer.delete(tenantId));
      this.creatingDefaultIssuer.set(tenantId, creating);
    }
    return creating;
  }

  private async createDefaultIssuer(tenantId: string): Promise<ReadyIssuer> {
    const ctx = { tenantId, actor: 'system' };
    const ca = await this.createCa(ctx, { commonName: `Gatehouse Issuing CA (${tenantId})` });
    const winner = await registry.claimSystemSetting(this.o.store.db, issuingSettingKey(tenantId), ca.caCertificateId);
    if (winner === ca.caCertificateId) return this.readyIssuer(ca);
    // Another process made the tenant's issuing CA at the same moment: ours issued nothing and is set aside.
    await this.o.store.transaction((trx) => registry.updateCa(trx, ctx, ca.caCertificateId, { status: 'INACTIVE' }, this.w));
    this.o.onTrustChanged(tenantId);
    return this.readyIssuer(await registry.getCa(this.o.store.db, tenantId, winner));
  }

  /** Makes `caCertificateId` the tenant's default issuing CA. */
  async setDefaultIssuer(tenantId: string, caCertificateId: string): Promise<void> {
    await this.ownedActiveCa(tenantId, caCertificateId, false);
    await registry.setSystemSetting(this.o.store.db, issuingSettingKey(tenantId), caCertificateId);
    this.o.onTrustChanged(tenantId);
  }

  /** Current registration code of the tenant (AWS GetRegistrationCode). */
  getRegistrationCode(ctx: RegistryContext): Promise<string> {
    return this.o.store.transaction((trx) => registry.getOrCreateRegistrationCode(trx, ctx.tenantId, pki.generateRegistrationCode));
  }

  /** Registers a CA Gatehouse does not own, with proof of possession in DEFAULT mode (protocols.md). */
  async registerCa(ctx: RegistryContext, input: RegisterCaInput): Promise<CaRecord> {
    const mode = input.certificateMode ?? 'DEFAULT';
    const code = mode === 'DEFAULT' ? await this.getRegistrationCode(ctx) : undefined;
    const cert = pki.verifyCaCertificateForRegistration({
      caCertificatePem: input.caCertificatePem,
      verificationCertificatePem: input.verificationCertificatePem,
      registrationCode: code,
      mode,
      now: new Date(),
    });
    const rec = await this.o.store.transaction(async (trx) => {
      // AWS multi-account registration: a CA may be registered in several tenants only when every registration is
      // SNI_ONLY (devices then name their tenant in SNI). A DEFAULT registration, or a CA Gatehouse owns, is one
      // tenant's alone. Revoked registrations do not count.
      const elsewhere = await registry.listCaRegistrationsElsewhere(trx, ctx.tenantId, cert.certificateId);
      if (elsewhere.length > 0 && (mode === 'DEFAULT' || elsewhere.some((e) => e.certificateMode === 'DEFAULT'))) {
        throw ProvisioningErrors.error(
          'PROVISIONING_CA_REGISTERED_ELSEWHERE',
          mode === 'DEFAULT'
            ? 'this CA is registered in another tenant: register it with --sni-only (certificateMode SNI_ONLY) in every tenant, or only in one'
            : 'this CA is registered in another tenant in DEFAULT mode (or is a CA of this installation): it cannot be registered in a second tenant',
        );
      }
      const r = await registry.insertCa(trx, ctx, { ...this.caRecordOf(cert, null, null), status: input.setAsActive === false ? 'INACTIVE' : 'ACTIVE', certificateMode: mode, autoRegistration: input.allowAutoRegistration === true }, this.w);
      return r;
    });
    this.o.onTrustChanged(ctx.tenantId);
    return rec;
  }

  /** Updates status / auto-registration / JITP template / first-connect mode. */
  async updateCa(ctx: RegistryContext, caCertificateId: string, update: CaUpdate): Promise<CaRecord> {
    const rec = await this.o.store.transaction(async (trx) => {
      const templateName = update.registrationTemplate;
      if (typeof templateName === 'string') {
        // A JITP template that does not exist or is of the wrong type would refuse every device of the CA at its first
        // connection, long after this call said nothing.
        const t = await registry.getProvisioningTemplate(trx, ctx.tenantId, templateName);
        if (t.type !== 'JITP') throw ProvisioningErrors.error('PROVISIONING_TEMPLATE_TYPE_MISMATCH', `template "${templateName}" is a ${t.type} template; a CA's registration template must be of type JITP`);
      }
      return registry.updateCa(trx, ctx, caCertificateId, update, this.w);
    });
    this.o.onTrustChanged(ctx.tenantId);
    return rec;
  }

  /** Revokes a CA: it leaves every trust store at once and goes on its parent's CRL. */
  async revokeCa(ctx: RegistryContext, caCertificateId: string, reason: string): Promise<CaRecord> {
    const rec = await this.o.store.transaction((trx) => registry.revokeCa(trx, ctx, caCertificateId, reason, this.w));
    this.issuers.delete(caCertificateId);
    if (rec.parentCaCertificateId !== null) this.crls.delete(rec.parentCaCertificateId);
    this.o.onTrustChanged(ctx.tenantId);
    return rec;
  }

  /** Marks a CA's CRL stale (after a revocation of a certificate it issued). */
  invalidateCrl(caCertificateId: string): void {
    this.crls.delete(caCertificateId);
  }

  /** The current CRL of an owned CA (regenerated when stale or older than its next-update time). */
  async getCrl(caCertificateId: string): Promise<{ der: Uint8Array; pem: string }> {
    const cached = this.crls.get(caCertificateId);
    if (cached !== undefined && cached.nextUpdate - 12 * 3600_000 > Date.now()) return cached;
    const ca = await registry.findOwnedCa(this.o.store.db, caCertificateId);
    if (ca === undefined || !ca.owned) throw registry.RegistryErrors.error('REGISTRY_CA_NOT_FOUND', `no owned CA ${caCertificateId}`);
    const ready = await this.readyIssuer(ca);
    const revoked = [...(await registry.listRevokedByCa(this.o.store.db, caCertificateId)), ...(await registry.listRevokedChildCas(this.o.store.db, caCertificateId))];
    const crlNumber = await this.o.store.transaction((trx) => registry.nextCrlNumber(trx, caCertificateId));
    const thisUpdate = new Date();
    const nextUpdate = new Date(thisUpdate.getTime() + 24 * 3600_000);
    const crl = pki.buildCrl({
      issuerCertificate: ready.certificate,
      signer: ready.signer,
      entries: revoked.map((r) => ({ serialNumber: r.serialNumber, revokedAt: new Date(r.revokedAt), reason: pki.isRevocationReason(r.reason) ? r.reason : 'unspecified' })),
      thisUpdate,
      nextUpdate,
      crlNumber: BigInt(crlNumber),
    });
    const entry = { der: crl.der, pem: crl.pem, nextUpdate: nextUpdate.getTime() };
    this.crls.set(caCertificateId, entry);
    return entry;
  }
}

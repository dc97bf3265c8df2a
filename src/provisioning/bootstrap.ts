import * as pki from '../pki/index.ts';
import * as registry from '../registry/index.ts';
import type { Store } from '../store/index.ts';
import type { CertificateAuthorityService } from './certificate-authority-service.ts';

const SETTING_SERVER_CERT = 'tls.server_certificate_pem';
const SETTING_SERVER_KEY = 'tls.server_key_sealed';
const SERVER_KEY_LABEL = 'gatehouse-tls-server-key';

/** What the listeners need from the installation. */
export interface InstallationMaterial {
  /** The admin token, only when this start created it (printed once). */
  readonly createdAdminToken: string | undefined;
  readonly rootCaPem: string;
  /** Server certificate followed by its issuing chain (without the root), PEM. */
  readonly serverCertificateChainPem: string;
  /** The decrypted TLS server key, in memory only. */
  readonly serverKeyPem: string;
}

/** Options of the first-start initialisation. */
export interface BootstrapOptions {
  readonly store: Store;
  readonly cas: CertificateAuthorityService;
  readonly kek: Buffer;
  readonly domain: string;
  readonly adminToken: string | undefined;
}

/**
 * First start: tenant `default`, root CA, the default tenant's issuing CA, the TLS server certificate
 * (SANs: localhost, the domain and `*.<domain>` for tenant endpoints, 127.0.0.1, ::1) and an admin token.
 * Later starts reuse all of it; the server certificate is renewed when it has less than 30 days left.
 */
export async function bootstrapInstallation(o: BootstrapOptions): Promise<InstallationMaterial> {
  const { store, cas } = o;
  const system = { tenantId: registry.DEFAULT_TENANT, actor: 'system' };
  let createdAdminToken: string | undefined;
  const existingTenant = await store.db.selectFrom('tenants').select('tenant_id').where('tenant_id', '=', registry.DEFAULT_TENANT).executeTakeFirst();
  if (existingTenant === undefined) {
    await store.transaction(async (trx) => {
      await registry.createTenant(trx, registry.DEFAULT_TENANT, o.domain);
      const token = await registry.createApiToken(trx, { tenantId: registry.DEFAULT_TENANT, name: 'admin', role: 'admin', presetToken: o.adminToken });
      await registry.appendAudit(trx, system, 'installation.init', 'tenant/default', {}, store.supportsRowLocks);
      createdAdminToken = token.token;
    });
  }
  if ((await registry.getSystemSetting(store.db, 'pki.root_ca_id')) === undefined) {
    await cas.createInstallationRoot(system, 'Gatehouse Root CA');
  }
  const root = await cas.installationRoot();
  const issuing = await cas.issuerFor(registry.DEFAULT_TENANT);

  const sealed = await registry.getSystemSetting(store.db, SETTING_SERVER_KEY);
  const certPem = await registry.getSystemSetting(store.db, SETTING_SERVER_CERT);
  if (sealed !== undefined && certPem !== undefined) {
    const cert = pki.parseCertificate(certPem);
    if (cert.notAfter.getTime() - Date.now() > 30 * 86_400_000) {
      return {
        createdAdminToken,
        rootCaPem: root.certificatePem,
        serverCertificateChainPem: [certPem, ...issuing.chainPem.slice(0, -1)].join(''),
        serverKeyPem: pki.openSealedPrivateKey(o.kek, sealed, SERVER_KEY_LABEL),
      };
    }
  }
  const keys = pki.generateKeyPair('EC_P256');
  const issued = issuing.issuer.issue({
    publicKey: keys.publicKey,
    subject: { CN: [o.domain], O: ['Gatehouse'] },
    validityDays: 397,
    extendedKeyUsage: 'serverAuth',
    subjectAltNames: { dns: [...new Set(['localhost', '*.localhost', o.domain, `*.${o.domain}`])], ip: ['127.0.0.1', '::1'] },
  });
  await store.transaction(async (trx) => {
    await registry.setSystemSetting(trx, SETTING_SERVER_CERT, issued.pem);
    await registry.setSystemSetting(trx, SETTING_SERVER_KEY, pki.sealPrivateKey(o.kek, keys.privateKeyPem, SERVER_KEY_LABEL));
  });
  return {
    createdAdminToken,
    rootCaPem: root.certificatePem,
    serverCertificateChainPem: [issued.pem, ...issuing.chainPem.slice(0, -1)].join(''),
    serverKeyPem: keys.privateKeyPem,
  };
}

/** A TLS server certificate chain and its key (in memory only). */
export interface ServerIdentity {
  /** Server certificate followed by its issuing chain (without the root), PEM. */
  readonly certificateChainPem: string;
  readonly keyPem: string;
}

const tenantCertSetting = (tenantId: string): string => `tls.tenant_server_certificate_pem.${tenantId}`;
const tenantKeySetting = (tenantId: string): string => `tls.tenant_server_key_sealed.${tenantId}`;

/**
 * The device endpoint's TLS server certificate for a tenant other than the default: its own certificate, with the
 * tenant's endpoint `<tenant>.<domain>` as its DNS name, issued once by the default tenant's issuing CA (as the
 * installation's server certificate) and kept sealed under the KEK; renewed when it has less than 30 days left.
 *
 * Why not the installation certificate's `*.<domain>`: with a one-label domain such as the default `localhost`, that
 * wildcard stands for a whole top-level name, which RFC 6125 §6.4.3 clients refuse (Node's `checkServerIdentity`,
 * OpenSSL's host check): a device of tenant `acme` could not verify `acme.localhost`. An exact name is accepted by every
 * client, whatever the domain. Two processes that issue at the same moment both get valid certificates; the last one
 * stored is the one later starts use.
 */
export async function tenantServerIdentity(o: { readonly store: Store; readonly cas: CertificateAuthorityService; readonly kek: Buffer }, tenantId: string): Promise<ServerIdentity> {
  const { store, cas } = o;
  const tenant = await registry.getTenant(store.db, tenantId);
  const issuing = await cas.issuerFor(registry.DEFAULT_TENANT);
  const chainOf = (pem: string): string => [pem, ...issuing.chainPem.slice(0, -1)].join('');
  const sealed = await registry.getSystemSetting(store.db, tenantKeySetting(tenantId));
  const certPem = await registry.getSystemSetting(store.db, tenantCertSetting(tenantId));
  if (sealed !== undefined && certPem !== undefined) {
    const cert = pki.parseCertificate(certPem);
    if (cert.notAfter.getTime() - Date.now() > 30 * 86_400_000 && cert.subjectAltNames.dns.includes(tenant.endpoint)) {
      return { certificateChainPem: chainOf(certPem), keyPem: pki.openSealedPrivateKey(o.kek, sealed, SERVER_KEY_LABEL) };
    }
  }
  const keys = pki.generateKeyPair('EC_P256');
  const issued = issuing.issuer.issue({
    publicKey: keys.publicKey,
    subject: { CN: [tenant.endpoint], O: ['Gatehouse'] },
    validityDays: 397,
    extendedKeyUsage: 'serverAuth',
    subjectAltNames: { dns: [tenant.endpoint] },
  });
  try {
    await store.transaction(async (trx) => {
      await registry.setSystemSetting(trx, tenantCertSetting(tenantId), issued.pem);
      await registry.setSystemSetting(trx, tenantKeySetting(tenantId), pki.sealPrivateKey(o.kek, keys.privateKeyPem, SERVER_KEY_LABEL));
    });
  } catch (error) {
    // Another process stored its certificate first (both inserted): serve the stored one.
    const theirs = await registry.getSystemSetting(store.db, tenantCertSetting(tenantId));
    const theirKey = await registry.getSystemSetting(store.db, tenantKeySetting(tenantId));
    if (theirs === undefined || theirKey === undefined) throw error;
    return { certificateChainPem: chainOf(theirs), keyPem: pki.openSealedPrivateKey(o.kek, theirKey, SERVER_KEY_LABEL) };
  }
  return { certificateChainPem: chainOf(issued.pem), keyPem: keys.privateKeyPem };
}

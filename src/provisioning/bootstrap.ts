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

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
 * (SANs: localhost, the domain, `*.<domain>` and `default.<domain>`, 127.0.0.1, ::1) and an admin token. Later starts
 * reuse all of it; the server certificate is renewed when it has less than 30 days left or does not name all of these.
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

  const server = await storedServerIdentity({ store, kek: o.kek, issuing }, { cert: SETTING_SERVER_CERT, key: SETTING_SERVER_KEY }, {
    commonName: o.domain,
    // `default.<domain>` by name: the endpoint the API reports for the default tenant, which `*.<domain>` does not
    // cover for a one-label domain such as `localhost` (TLS clients refuse such a wildcard)
    dns: [...new Set(['localhost', '*.localhost', o.domain, `*.${o.domain}`, `${registry.DEFAULT_TENANT}.${o.domain}`])],
    ip: ['127.0.0.1', '::1'],
  });
  return { createdAdminToken, rootCaPem: root.certificatePem, serverCertificateChainPem: server.certificateChainPem, serverKeyPem: server.keyPem };
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
  return storedServerIdentity({ store, kek: o.kek, issuing }, { cert: tenantCertSetting(tenantId), key: tenantKeySetting(tenantId) }, { commonName: tenant.endpoint, dns: [tenant.endpoint], ip: [] });
}

/**
 * A TLS server certificate kept in the system settings `at` (the key sealed under the KEK), issued by the default
 * tenant's issuing CA: the stored one while it has more than 30 days left and names every DNS name of `name` (a changed
 * domain gets a new certificate), else a new one, which is stored. When another process stored its own meanwhile (both
 * inserted the setting), that one is served.
 */
async function storedServerIdentity(
  o: { readonly store: Store; readonly kek: Buffer; readonly issuing: { readonly issuer: pki.CertificateIssuer; readonly chainPem: readonly string[] } },
  at: { readonly cert: string; readonly key: string },
  name: { readonly commonName: string; readonly dns: readonly string[]; readonly ip: readonly string[] },
): Promise<ServerIdentity> {
  const { store, issuing } = o;
  const chainOf = (pem: string): string => [pem, ...issuing.chainPem.slice(0, -1)].join('');
  const stored = async (): Promise<ServerIdentity | undefined> => {
    const sealed = await registry.getSystemSetting(store.db, at.key);
    const certPem = await registry.getSystemSetting(store.db, at.cert);
    if (sealed === undefined || certPem === undefined) return undefined;
    const cert = pki.parseCertificate(certPem);
    if (cert.notAfter.getTime() - Date.now() <= 30 * 86_400_000 || !name.dns.every((d) => cert.subjectAltNames.dns.includes(d))) return undefined;
    return { certificateChainPem: chainOf(certPem), keyPem: pki.openSealedPrivateKey(o.kek, sealed, SERVER_KEY_LABEL) };
  };
  const current = await stored();
  if (current !== undefined) return current;
  const keys = pki.generateKeyPair('EC_P256');
  const issued = issuing.issuer.issue({
    publicKey: keys.publicKey,
    subject: { CN: [name.commonName], O: ['Gatehouse'] },
    validityDays: 397,
    extendedKeyUsage: 'serverAuth',
    subjectAltNames: { dns: [...name.dns], ...(name.ip.length === 0 ? {} : { ip: [...name.ip] }) },
  });
  try {
    await store.transaction(async (trx) => {
      await registry.setSystemSetting(trx, at.cert, issued.pem);
      await registry.setSystemSetting(trx, at.key, pki.sealPrivateKey(o.kek, keys.privateKeyPem, SERVER_KEY_LABEL));
    });
  } catch (error) {
    const theirs = await stored();
    if (theirs === undefined) throw error;
    return theirs;
  }
  return { certificateChainPem: chainOf(issued.pem), keyPem: keys.privateKeyPem };
}

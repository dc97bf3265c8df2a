import { X509Certificate, createPrivateKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../../test/support/dialects.ts';
import * as pki from '../pki/index.ts';
import * as registry from '../registry/index.ts';
import type { Store } from '../store/index.ts';
import { openTestInstallation } from '../../test/support/installation.ts';
import { bootstrapInstallation, tenantServerIdentity } from './bootstrap.ts';
import type { InstallationMaterial } from './bootstrap.ts';

for (const dialect of DIALECTS) {
  describe(`a tenant's server certificate (${dialect.name})`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    let o: Parameters<typeof tenantServerIdentity>[0];
    let rootCaPem: string;
    let first: InstallationMaterial;

    beforeAll(async () => {
      const installation = await openTestInstallation(dialect);
      ({ store, dispose } = installation);
      rootCaPem = installation.material.rootCaPem;
      first = installation.material;
      await store.transaction((trx) => registry.createTenant(trx, 'acme', 'localhost'));
      o = installation;
    });
    afterAll(async () => dispose());

    it('is named after the endpoint, chains to the root, matches its key, and is issued once', async () => {
      const first = await tenantServerIdentity(o, 'acme');
      const leaf = new X509Certificate(first.certificateChainPem);
      expect(leaf.subjectAltName).toBe('DNS:acme.localhost');
      expect(leaf.checkHost('acme.localhost')).toBe('acme.localhost');
      expect(leaf.checkPrivateKey(createPrivateKey(first.keyPem))).toBe(true);
      const chain = first.certificateChainPem.split(/(?<=-----END CERTIFICATE-----\n?)/).filter((p) => p.includes('BEGIN'));
      const issuer = new X509Certificate(chain[1] ?? '');
      expect(leaf.verify(issuer.publicKey)).toBe(true);
      expect(issuer.verify(new X509Certificate(rootCaPem).publicKey)).toBe(true);
      // the key is stored sealed, never in clear
      const sealed = await registry.getSystemSetting(store.db, 'tls.tenant_server_key_sealed.acme');
      expect(sealed).toBeDefined();
      expect(sealed).not.toContain('PRIVATE KEY');
      const again = await tenantServerIdentity(o, 'acme');
      expect(again).toEqual(first);
    });

    it('is renewed when it has less than 30 days left', async () => {
      const before = await tenantServerIdentity(o, 'acme');
      // replace the stored certificate by one of the same name that ends in 10 days
      const keys = pki.generateKeyPair('EC_P256');
      const issuing = await o.cas.issuerFor(registry.DEFAULT_TENANT);
      const short = issuing.issuer.issue({ publicKey: keys.publicKey, subject: { CN: ['acme.localhost'] }, validityDays: 10, extendedKeyUsage: 'serverAuth', subjectAltNames: { dns: ['acme.localhost'] } });
      await store.transaction((trx) => registry.setSystemSetting(trx, 'tls.tenant_server_certificate_pem.acme', short.pem));
      const renewed = await tenantServerIdentity(o, 'acme');
      expect(renewed.certificateChainPem).not.toBe(before.certificateChainPem);
      expect(Date.parse(new X509Certificate(renewed.certificateChainPem).validTo) - Date.now()).toBeGreaterThan(300 * 86_400_000);
      expect(new X509Certificate(renewed.certificateChainPem).checkPrivateKey(createPrivateKey(renewed.keyPem))).toBe(true);
    });

    it("reissues the installation's certificate when the configured domain changes, and keeps it otherwise", async () => {
      const again = await bootstrapInstallation({ store, cas: o.cas, kek: o.kek, domain: 'localhost', adminToken: undefined });
      expect(again.serverCertificateChainPem).toBe(first.serverCertificateChainPem);
      // the default tenant's endpoint by name: `*.localhost` is a wildcard over one label, which clients refuse
      expect(new X509Certificate(first.serverCertificateChainPem).checkHost('default.localhost')).toBe('default.localhost');
      const moved = await bootstrapInstallation({ store, cas: o.cas, kek: o.kek, domain: 'iot.example.com', adminToken: undefined });
      const leaf = new X509Certificate(moved.serverCertificateChainPem);
      expect(leaf.checkHost('acme.iot.example.com')).toBe('*.iot.example.com');
      expect(leaf.checkHost('localhost')).toBe('localhost');
      expect(leaf.checkPrivateKey(createPrivateKey(moved.serverKeyPem))).toBe(true);
    });

    it('refuses an unknown tenant', async () => {
      await expect(tenantServerIdentity(o, 'nobody')).rejects.toMatchObject({ code: 'REGISTRY_TENANT_NOT_FOUND' });
    });
  });
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../../test/support/dialects.ts';
import { EncryptedKeyStore, generateKek } from '../pki/index.ts';
import * as registry from '../registry/index.ts';
import type { Store } from '../store/index.ts';
import { bootstrapInstallation } from './bootstrap.ts';
import { CertificateAuthorityService } from './certificate-authority-service.ts';

for (const dialect of DIALECTS) {
  describe(`a tenant's default issuing CA (${dialect.name})`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    const kek = generateKek();
    /** One CA service per simulated process, all on the same database and key store. */
    const service = (): CertificateAuthorityService =>
      new CertificateAuthorityService({ store, keyStore: new EncryptedKeyStore({ kek, blobs: registry.createKeyBlobRepository(store.db) }), publicUrl: 'http://127.0.0.1:1', onTrustChanged: () => undefined });

    beforeAll(async () => {
      const s = await dialect.create();
      store = s.store;
      dispose = s.dispose;
      await bootstrapInstallation({ store, cas: service(), kek, domain: 'localhost', adminToken: undefined });
      await store.transaction((trx) => registry.createTenant(trx, 'racing', 'racing.localhost'));
    });
    afterAll(async () => dispose());

    it('is created once when first issuances race, in one process and across processes', async () => {
      const processes = [service(), service(), service()];
      const issuers = await Promise.all(processes.flatMap((p) => [p.issuerFor('racing'), p.issuerFor('racing')]));
      const ids = new Set(issuers.map((i) => i.ca.caCertificateId));
      expect(ids.size).toBe(1);
      const [id] = [...ids];
      expect(await registry.getSystemSetting(store.db, 'pki.issuing_ca_id.racing')).toBe(id);
      const cas = await registry.listAllCas(store.db, 'racing');
      // one creation per process at most; every CA but the winner was set aside, unused
      expect(cas.length).toBeLessThanOrEqual(processes.length);
      expect(cas.filter((c) => c.status === 'ACTIVE').map((c) => c.caCertificateId)).toEqual([id]);
      expect(cas.filter((c) => c.caCertificateId !== id).every((c) => c.status === 'INACTIVE')).toBe(true);
      // and later calls return it without creating anything
      expect((await service().issuerFor('racing')).ca.caCertificateId).toBe(id);
      expect((await registry.listAllCas(store.db, 'racing')).length).toBe(cas.length);
    });

    it('is read once per TTL, forgotten on trust changes, and a deactivated issuing CA is refused at once', async () => {
      await store.transaction((trx) => registry.createTenant(trx, 'cached', 'cached.localhost'));
      let notified = 0;
      const wired: { cas?: CertificateAuthorityService } = {};
      const cas = new CertificateAuthorityService({
        store,
        keyStore: new EncryptedKeyStore({ kek, blobs: registry.createKeyBlobRepository(store.db) }),
        publicUrl: 'http://127.0.0.1:1',
        defaultIssuerTtlMs: 600_000, // no expiry during the test: only notifications make it read again
        // as the application wires it: a trust change forgets the issuers read
        onTrustChanged: () => {
          notified += 1;
          wired.cas?.forgetIssuers();
        },
      });
      wired.cas = cas;
      const first = await cas.issuerFor('cached');
      // another process points the tenant at another CA behind this one's back: unseen within the TTL …
      const other = await cas.createCa({ tenantId: 'cached', actor: 'test' }, { commonName: 'Other issuing CA' });
      const afterCreate = notified;
      expect(afterCreate).toBeGreaterThan(0);
      await cas.issuerFor('cached'); // re-read after the notification: still the first one, the setting is unchanged
      await registry.setSystemSetting(store.db, 'pki.issuing_ca_id.cached', other.caCertificateId);
      expect((await cas.issuerFor('cached')).ca.caCertificateId).toBe(first.ca.caCertificateId);
      // … and seen after forgetIssuers (what a trust notification does), or once the TTL (default 1 s) ran out
      cas.forgetIssuers();
      expect((await cas.issuerFor('cached')).ca.caCertificateId).toBe(other.caCertificateId);
      // deactivating the issuing CA through the service notifies, so the next issuance is refused at once
      await cas.updateCa({ tenantId: 'cached', actor: 'test' }, other.caCertificateId, { status: 'INACTIVE' });
      expect(notified).toBeGreaterThan(afterCreate);
      await expect(cas.issuerFor('cached')).rejects.toMatchObject({ code: 'PROVISIONING_CA_NOT_ACTIVE' });
      // setDefaultIssuer notifies too
      const before = notified;
      await cas.setDefaultIssuer('cached', first.ca.caCertificateId);
      expect(notified).toBe(before + 1);
      expect((await cas.issuerFor('cached')).ca.caCertificateId).toBe(first.ca.caCertificateId);
    });
  });
}

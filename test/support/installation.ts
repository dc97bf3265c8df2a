import * as pki from '../../src/pki/index.ts';
import { CertificateAuthorityService, bootstrapInstallation } from '../../src/provisioning/index.ts';
import type { InstallationMaterial } from '../../src/provisioning/index.ts';
import * as registry from '../../src/registry/index.ts';
import type { Store } from '../../src/store/index.ts';
import type { TestDialect } from './dialects.ts';

/** An initialised installation on a fresh store of `dialect`, in process: what unit suites of the flows start from. */
export interface TestInstallation {
  readonly store: Store;
  readonly kek: Buffer;
  readonly cas: CertificateAuthorityService;
  readonly material: InstallationMaterial;
  dispose(): Promise<void>;
}

/** A fresh store, a KEK-encrypted key store, the CA service and the first-start initialisation (domain `localhost`). */
export async function openTestInstallation(dialect: TestDialect): Promise<TestInstallation> {
  const { store, dispose } = await dialect.create();
  const kek = pki.generateKek();
  const cas = new CertificateAuthorityService({ store, keyStore: new pki.EncryptedKeyStore({ kek, blobs: registry.createKeyBlobRepository(store.db) }), publicUrl: 'https://localhost:8443', onTrustChanged: () => undefined });
  const material = await bootstrapInstallation({ store, cas, kek, domain: 'localhost', adminToken: undefined });
  return { store, kek, cas, material, dispose };
}

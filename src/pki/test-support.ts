/**
 * Helpers for the PKI tests (not exported from index.ts): running Debian's `openssl` on files in a temporary
 * directory, and a ready root → intermediate hierarchy.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createIntermediateCa, createRootCa } from './certificate-authority.ts';
import type { CaMaterial } from './certificate-authority.ts';
import { createCertificateIssuer } from './certificate-issuer.ts';
import type { CertificateIssuer } from './certificate-issuer.ts';
import { EncryptedKeyStore, InMemoryKeyBlobRepository } from './encrypted-key-store.ts';
import { generateKek } from './kek.ts';
import type { KeyAlgorithm } from './key-algorithm.ts';
import type { Signer } from './key-store.ts';

/** Result of one `openssl` run. */
export interface OpensslResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A scratch directory for openssl input and output files. */
export class Scratch {
  readonly dir: string;

  constructor() {
    this.dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-pki-'));
  }

  /** Writes a file and returns its path. */
  write(name: string, content: string | Uint8Array): string {
    const file = path.join(this.dir, name);
    writeFileSync(file, content);
    return file;
  }

  read(name: string): Buffer {
    return readFileSync(path.join(this.dir, name));
  }

  path(name: string): string {
    return path.join(this.dir, name);
  }

  /** Runs `openssl` in the directory. */
  openssl(args: readonly string[], input?: string): OpensslResult {
    const result = spawnSync('openssl', args, { cwd: this.dir, input, encoding: 'utf8' });
    return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
  }

  /** Runs `openssl` and throws with its stderr when it fails. */
  opensslOk(args: readonly string[], input?: string): string {
    const result = this.openssl(args, input);
    if (result.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${result.stderr}`);
    return result.stdout;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A root CA, an intermediate under it, their signers and an issuer on the intermediate. */
export interface TestHierarchy {
  readonly keyStore: EncryptedKeyStore;
  readonly root: CaMaterial;
  readonly rootSigner: Signer;
  readonly intermediate: CaMaterial;
  readonly intermediateSigner: Signer;
  readonly issuer: CertificateIssuer;
}

/** Creates a root (pathLen 1) and an intermediate (pathLen 0) with an in-memory encrypted key store. */
export async function createTestHierarchy(
  options: { rootAlgorithm?: KeyAlgorithm; intermediateAlgorithm?: KeyAlgorithm; crlDistributionPointUrl?: string } = {},
): Promise<TestHierarchy> {
  const keyStore = new EncryptedKeyStore({ kek: generateKek(), blobs: new InMemoryKeyBlobRepository() });
  const root = await createRootCa({
    keyStore,
    commonName: 'Gatehouse Test Root',
    subject: { O: ['Gatehouse Tests'], C: ['DE'] },
    keyAlgorithm: options.rootAlgorithm ?? 'EC_P256',
    pathLength: 1,
  });
  const rootSigner = await keyStore.getSigner(root.keyRef);
  const intermediate = await createIntermediateCa({
    keyStore,
    issuerCertificate: root.certificate,
    issuerSigner: rootSigner,
    commonName: 'Gatehouse Test Issuing CA',
    subject: { O: ['Gatehouse Tests'] },
    keyAlgorithm: options.intermediateAlgorithm ?? 'EC_P256',
    validityDays: 365,
    ...(options.crlDistributionPointUrl === undefined ? {} : { crlDistributionPointUrl: options.crlDistributionPointUrl }),
  });
  const intermediateSigner = await keyStore.getSigner(intermediate.keyRef);
  const issuer = createCertificateIssuer({
    caCertificate: intermediate.certificate,
    signer: intermediateSigner,
    chainPem: [intermediate.certificate.pem, root.certificate.pem],
  });
  return { keyStore, root, rootSigner, intermediate, intermediateSigner, issuer };
}

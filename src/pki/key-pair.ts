import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { keyGenerationParameters } from './key-algorithm.ts';
import type { KeyAlgorithm } from './key-algorithm.ts';
import { rememberSpki } from './public-key.ts';

/**
 * A key pair generated for a device or a listener (AWS CreateKeysAndCertificate, the single-thing development flow,
 * EST serverkeygen). The private key is handed to its owner once and never stored by Gatehouse.
 */
export interface GeneratedKeyPair {
  /** PKCS#8 PEM (`BEGIN PRIVATE KEY`). */
  readonly privateKeyPem: string;
  /** SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`). */
  readonly publicKeyPem: string;
  /** The private key as a `node:crypto` key: signing with it skips parsing the PEM (about 0.8 ms with OpenSSL 3). */
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** SubjectPublicKeyInfo DER, ready for `CertificateIssuer.issue`. */
  readonly spkiDer: Buffer;
}

/**
 * Generates a key pair with `node:crypto`. Default EC P-256 (about 0.1 ms); synchronous, so RSA 3072 blocks for
 * up to a second — keep RSA off hot paths.
 */
export function generateKeyPair(algorithm: KeyAlgorithm = 'EC_P256'): GeneratedKeyPair {
  const parameters = keyGenerationParameters(algorithm);
  const { privateKey, publicKey } =
    parameters.type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: parameters.namedCurve })
      : generateKeyPairSync('rsa', { modulusLength: parameters.modulusLength, publicExponent: 0x10001 });
  // Not assembled from a JWK export, although that is five times faster in OpenSSL 3: Node 20 holds the key's mutex
  // while it builds the JWK's strings, a GC during that finalizes the key's KeyGenJob, whose destructor takes the same
  // mutex, and the thread deadlocks (three hangs on 2026-11-29; gdb: ExportJWKEcKey → GC → ~KeyGenJob → mutex lock).
  const spkiDer = publicKey.export({ type: 'spki', format: 'der' });
  rememberSpki(publicKey, spkiDer);
  // The PEM forms are encoded when first read (each export costs about 0.06 ms, three times generation itself):
  // a device signing a CSR with `privateKey` needs only the DER, and nobody reads `publicKeyPem` on most paths.
  let privateKeyPem: string | undefined;
  let publicKeyPem: string | undefined;
  return {
    get privateKeyPem(): string {
      return (privateKeyPem ??= privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    },
    get publicKeyPem(): string {
      return (publicKeyPem ??= publicKey.export({ type: 'spki', format: 'pem' }).toString());
    },
    privateKey,
    publicKey,
    spkiDer,
  };
}

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
 * The DER bytes that precede the uncompressed point in an EC SubjectPublicKeyInfo (RFC 5480 §2): SEQUENCE {
 * SEQUENCE { id-ecPublicKey, namedCurve }, BIT STRING with 0 unused bits }, for each curve keys are generated on.
 */
const EC_SPKI_PREFIX = {
  'P-256': Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'),
  'P-384': Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex'),
} as const;
const EC_COORDINATE_BYTES = { 'P-256': 32, 'P-384': 48 } as const;

/**
 * SubjectPublicKeyInfo DER of a generated EC public key, assembled from its JWK coordinates: OpenSSL 3 encodes SPKI
 * through its encoder framework, about 0.1 ms per key, while the JWK export reads the point directly (about a fifth
 * of that). The bytes are the same (checked in key-pair.test.ts).
 */
function ecSpkiDer(publicKey: KeyObject, curve: 'P-256' | 'P-384'): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  const size = EC_COORDINATE_BYTES[curve];
  const x = Buffer.from(jwk.x ?? '', 'base64url');
  const y = Buffer.from(jwk.y ?? '', 'base64url');
  if (jwk.crv !== curve || x.length !== size || y.length !== size) return publicKey.export({ type: 'spki', format: 'der' });
  return Buffer.concat([EC_SPKI_PREFIX[curve], Buffer.of(0x04), x, y]);
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
  const spkiDer = parameters.type === 'ec' ? ecSpkiDer(publicKey, parameters.namedCurve) : publicKey.export({ type: 'spki', format: 'der' });
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

import { createECDH, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { keyGenerationParameters } from './key-algorithm.ts';
import type { KeyAlgorithm } from './key-algorithm.ts';
import { encodePem } from './pem.ts';
import { encodeEcPkcs8, encodeEcSpki, rememberSpki } from './public-key.ts';

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
  if (parameters.type === 'ec') return generateEcKeyPair(parameters.namedCurve);
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: parameters.modulusLength, publicExponent: 0x10001 });
  const spkiDer = publicKey.export({ type: 'spki', format: 'der' });
  rememberSpki(publicKey, spkiDer);
  return lazyPem(privateKey, () => publicKey, spkiDer);
}

/** OpenSSL's names of the curves Gatehouse generates keys on, and their coordinate sizes in bytes. */
const EC_CURVES = { 'P-256': { openssl: 'prime256v1', size: 32 }, 'P-384': { openssl: 'secp384r1', size: 48 } } as const;

/**
 * An EC key pair without OpenSSL 3's encoder framework: `createECDH` draws the key (OpenSSL's EC key generation, from
 * its CSPRNG), the private key is imported as a JWK, and the SubjectPublicKeyInfo is encoded from the point (RFC 5480).
 * 0.10–0.11 ms for P-256 here, against 0.15–0.19 ms for `generateKeyPairSync` plus the SPKI export, which OpenSSL 3
 * runs through its encoder (bench README, "Runs of 2026-11-30").
 * Why not a JWK *export* of a `generateKeyPairSync` key, which is as fast: Node 20 holds the key's mutex while it builds
 * the JWK's strings, a GC during that finalizes the key's KeyGenJob, whose destructor takes the same mutex, and the
 * thread deadlocks (three hangs on 2026-11-29; gdb: ExportJWKEcKey → GC → ~KeyGenJob → mutex lock). Here no KeyGenJob
 * exists and the JWK is imported.
 */
function generateEcKeyPair(namedCurve: 'P-256' | 'P-384'): GeneratedKeyPair {
  const { openssl, size } = EC_CURVES[namedCurve];
  const ecdh = createECDH(openssl);
  const point = ecdh.generateKeys(); // uncompressed: 0x04 ‖ x ‖ y
  const scalar = ecdh.getPrivateKey();
  // The big-endian scalar without its leading zero bytes; a JWK `d` has the full coordinate size (RFC 7518 §6.2.2.1).
  const d = Buffer.alloc(size);
  scalar.copy(d, size - scalar.length);
  scalar.fill(0);
  const x = point.toString('base64url', 1, 1 + size);
  const y = point.toString('base64url', 1 + size);
  const privateKey = createPrivateKey({ key: { kty: 'EC', crv: namedCurve, x, y, d: d.toString('base64url') }, format: 'jwk' });
  // PKCS#8 encoded here rather than by OpenSSL 3's encoder (`export`: 7 µs more per key pair in a loop, 34 µs of
  // JavaScript alone in a profile of the fleet bench's devices): the PEM of a new key is read on most paths
  // (CreateKeysAndCertificate answers it, a device loads it into TLS).
  const pkcs8 = encodeEcPkcs8(namedCurve, d, point);
  d.fill(0);
  const spkiDer = encodeEcSpki(namedCurve, point);
  rememberSpki(privateKey, spkiDer);
  let publicKey: KeyObject | undefined;
  // Called once (lazyPem keeps the PEM); the DER is zeroed after.
  const privateKeyPem = (): string => {
    try {
      return encodePem('PRIVATE KEY', pkcs8);
    } finally {
      pkcs8.fill(0);
    }
  };
  return lazyPem(privateKey, () => {
    if (publicKey === undefined) {
      publicKey = createPublicKey({ key: { kty: 'EC', crv: namedCurve, x, y }, format: 'jwk' });
      rememberSpki(publicKey, spkiDer);
    }
    return publicKey;
  }, spkiDer, privateKeyPem);
}

/**
 * The key pair with its PEM forms encoded when first read (each one costs an OpenSSL export on the RSA path): a device
 * signing a CSR with `privateKey` needs only the DER, and nobody reads `publicKeyPem` on most paths.
 */
function lazyPem(
  privateKey: KeyObject,
  publicKeyOf: () => KeyObject,
  spkiDer: Buffer,
  encodePrivateKeyPem: () => string = () => privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
): GeneratedKeyPair {
  let privateKeyPem: string | undefined;
  let publicKeyPem: string | undefined;
  return {
    get privateKeyPem(): string {
      return (privateKeyPem ??= encodePrivateKeyPem());
    },
    get publicKeyPem(): string {
      return (publicKeyPem ??= encodePem('PUBLIC KEY', spkiDer));
    },
    privateKey,
    get publicKey(): KeyObject {
      return publicKeyOf();
    },
    spkiDer,
  };
}

import type { KeyObject } from 'node:crypto';
import { DER_NULL, encodeOid, encodeSequence } from './der.ts';
import { PkiErrors } from './errors.ts';

/** Algorithms of the keys Gatehouse generates and signs with (CA keys, server keys, generated device keys). */
export type KeyAlgorithm = 'EC_P256' | 'EC_P384' | 'RSA_2048' | 'RSA_3072';

/** Every {@link KeyAlgorithm}, for schemas and loops. */
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['EC_P256', 'EC_P384', 'RSA_2048', 'RSA_3072'];

/** A SHA-2 digest name as `node:crypto` spells it (SHA-512 only appears in CSRs signed by devices). */
export type HashAlgorithm = 'sha256' | 'sha384' | 'sha512';

/** True when `value` names a {@link KeyAlgorithm}. */
export function isKeyAlgorithm(value: unknown): value is KeyAlgorithm {
  return typeof value === 'string' && (KEY_ALGORITHMS as readonly string[]).includes(value);
}

/** The digest a {@link KeyAlgorithm} signs with (ECDSA P-256 / RSA: SHA-256, ECDSA P-384: SHA-384). */
export function hashOf(algorithm: KeyAlgorithm): 'sha256' | 'sha384' {
  return algorithm === 'EC_P384' ? 'sha384' : 'sha256';
}

/** True for the RSA algorithms. */
export function isRsa(algorithm: KeyAlgorithm): boolean {
  return algorithm === 'RSA_2048' || algorithm === 'RSA_3072';
}

/** `node:crypto` key generation parameters for an algorithm. */
export function keyGenerationParameters(
  algorithm: KeyAlgorithm,
): { type: 'ec'; namedCurve: 'P-256' | 'P-384' } | { type: 'rsa'; modulusLength: 2048 | 3072 } {
  switch (algorithm) {
    case 'EC_P256':
      return { type: 'ec', namedCurve: 'P-256' };
    case 'EC_P384':
      return { type: 'ec', namedCurve: 'P-384' };
    case 'RSA_2048':
      return { type: 'rsa', modulusLength: 2048 };
    case 'RSA_3072':
      return { type: 'rsa', modulusLength: 3072 };
  }
}

/**
 * The {@link KeyAlgorithm} of a `node:crypto` key (public or private).
 * Throws `PKI_KEY_ALGORITHM_UNSUPPORTED` for any other kind of key.
 */
export function keyAlgorithmOf(key: KeyObject): KeyAlgorithm {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') {
    if (details?.namedCurve === 'prime256v1' || details?.namedCurve === 'P-256') return 'EC_P256';
    if (details?.namedCurve === 'secp384r1' || details?.namedCurve === 'P-384') return 'EC_P384';
  } else if (key.asymmetricKeyType === 'rsa') {
    if (details?.modulusLength === 2048) return 'RSA_2048';
    if (details?.modulusLength === 3072) return 'RSA_3072';
  }
  throw PkiErrors.error('PKI_KEY_ALGORITHM_UNSUPPORTED', 'the key is not EC P-256/P-384 or RSA 2048/3072');
}

/** OIDs of the signature algorithms Gatehouse reads and writes (RFC 5758 §3.2, RFC 4055 §5). */
export const SignatureOids = {
  ECDSA_SHA256: '1.2.840.10045.4.3.2',
  ECDSA_SHA384: '1.2.840.10045.4.3.3',
  ECDSA_SHA512: '1.2.840.10045.4.3.4',
  RSA_SHA256: '1.2.840.113549.1.1.11',
  RSA_SHA384: '1.2.840.113549.1.1.12',
  RSA_SHA512: '1.2.840.113549.1.1.13',
} as const;

/** Hash of each supported signature algorithm OID. */
export const HASH_BY_SIGNATURE_OID: ReadonlyMap<string, HashAlgorithm> = new Map([
  [SignatureOids.ECDSA_SHA256, 'sha256'],
  [SignatureOids.ECDSA_SHA384, 'sha384'],
  [SignatureOids.ECDSA_SHA512, 'sha512'],
  [SignatureOids.RSA_SHA256, 'sha256'],
  [SignatureOids.RSA_SHA384, 'sha384'],
  [SignatureOids.RSA_SHA512, 'sha512'],
]);

const SIGNATURE_ALGORITHM_IDENTIFIERS: Readonly<Record<KeyAlgorithm, Buffer>> = {
  // ECDSA: parameters absent (RFC 5758 §3.2); RSA: parameters NULL (RFC 4055 §5).
  EC_P256: encodeSequence(encodeOid(SignatureOids.ECDSA_SHA256)),
  EC_P384: encodeSequence(encodeOid(SignatureOids.ECDSA_SHA384)),
  RSA_2048: encodeSequence(encodeOid(SignatureOids.RSA_SHA256), DER_NULL),
  RSA_3072: encodeSequence(encodeOid(SignatureOids.RSA_SHA256), DER_NULL),
};

/** DER AlgorithmIdentifier of the signatures a key of `algorithm` makes (shared buffer: do not modify). */
export function signatureAlgorithmIdentifier(algorithm: KeyAlgorithm): Buffer {
  return SIGNATURE_ALGORITHM_IDENTIFIERS[algorithm];
}

import { createHash, createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import {
  DerError,
  DerTag,
  contextTag,
  encodeBitString,
  encodeSequence,
  encodeTlv,
  expectTlv,
  readBitString,
  readChildren,
  readTlv,
  readUnsignedInteger,
  readWhole,
  valueOf,
} from './der.ts';
import { PkiErrors } from './errors.ts';

/**
 * The algorithm of a subject's public key as found in a CSR or certificate: an EC key on a supported named curve,
 * or an RSA key with its modulus length.
 */
export type SubjectKeyAlgorithm =
  | { readonly type: 'EC'; readonly namedCurve: 'P-256' | 'P-384' | 'P-521' }
  | { readonly type: 'RSA'; readonly modulusLength: number };

/** A decoded SubjectPublicKeyInfo (RFC 5280 §4.1.2.7). */
export interface SubjectPublicKeyInfo {
  /** The whole SubjectPublicKeyInfo DER. */
  readonly der: Buffer;
  readonly algorithm: SubjectKeyAlgorithm;
  /** The content of the subjectPublicKey BIT STRING (EC point or RSAPublicKey DER). */
  readonly subjectPublicKey: Buffer;
}

/** Smallest RSA modulus accepted for subject keys. */
export const MIN_RSA_MODULUS_BITS = 2048;
/** Largest RSA modulus accepted (bounds verification cost). */
export const MAX_RSA_MODULUS_BITS = 8192;

const EC_PUBLIC_KEY = Buffer.from('2a8648ce3d0201', 'hex'); // 1.2.840.10045.2.1
const RSA_ENCRYPTION = Buffer.from('2a864886f70d010101', 'hex'); // 1.2.840.113549.1.1.1
const CURVES: readonly { oid: Buffer; name: 'P-256' | 'P-384' | 'P-521'; size: number }[] = [
  { oid: Buffer.from('2a8648ce3d030107', 'hex'), name: 'P-256', size: 32 }, // prime256v1
  { oid: Buffer.from('2b81040022', 'hex'), name: 'P-384', size: 48 }, // secp384r1
  { oid: Buffer.from('2b81040023', 'hex'), name: 'P-521', size: 66 }, // secp521r1
];

function bitLength(magnitude: Uint8Array): number {
  const first = magnitude[0] ?? 0;
  if (first === 0) return 0;
  return (magnitude.length - 1) * 8 + (32 - Math.clz32(first));
}

/**
 * Decodes a SubjectPublicKeyInfo and classifies its key. Throws `PKI_PUBLIC_KEY_INVALID` when malformed,
 * `PKI_KEY_TOO_WEAK` for RSA below 2048 bits, `PKI_KEY_ALGORITHM_UNSUPPORTED` for other algorithms or curves.
 */
export function parseSubjectPublicKeyInfo(spki: Uint8Array): SubjectPublicKeyInfo {
  const der = Buffer.isBuffer(spki) ? spki : Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength);
  let algorithmOid: Buffer;
  let parameters: { tag: number; value: Buffer } | undefined;
  let subjectPublicKey: Buffer;
  try {
    const top = readWhole(der, DerTag.SEQUENCE);
    const algorithm = expectTlv(der, top.valueStart, top.end, DerTag.SEQUENCE);
    const bitString = expectTlv(der, algorithm.end, top.end, DerTag.BIT_STRING);
    if (bitString.end !== top.end) throw new DerError('trailing bytes in SubjectPublicKeyInfo');
    const oid = expectTlv(der, algorithm.valueStart, algorithm.end, DerTag.OID);
    algorithmOid = der.subarray(oid.valueStart, oid.end);
    if (oid.end < algorithm.end) {
      const params = readTlv(der, oid.end, algorithm.end);
      if (params.end !== algorithm.end) throw new DerError('trailing bytes in AlgorithmIdentifier');
      parameters = { tag: params.tag, value: der.subarray(params.valueStart, params.end) };
    }
    const { unusedBits, bits } = readBitString(der, bitString);
    if (unusedBits !== 0) throw new DerError('subjectPublicKey has unused bits');
    subjectPublicKey = bits as Buffer;
  } catch (error) {
    throw PkiErrors.error('PKI_PUBLIC_KEY_INVALID', 'malformed SubjectPublicKeyInfo', { cause: error });
  }

  if (algorithmOid.equals(EC_PUBLIC_KEY)) {
    if (parameters?.tag !== DerTag.OID) {
      throw PkiErrors.error('PKI_KEY_ALGORITHM_UNSUPPORTED', 'EC keys must use a named curve');
    }
    const curveOid = parameters.value;
    const curve = CURVES.find((c) => c.oid.equals(curveOid));
    if (curve === undefined) {
      throw PkiErrors.error('PKI_KEY_ALGORITHM_UNSUPPORTED', 'EC curve not supported (P-256, P-384, P-521 only)');
    }
    const prefix = subjectPublicKey[0];
    const validLength =
      (prefix === 0x04 && subjectPublicKey.length === 1 + 2 * curve.size) ||
      ((prefix === 0x02 || prefix === 0x03) && subjectPublicKey.length === 1 + curve.size);
    if (!validLength) throw PkiErrors.error('PKI_PUBLIC_KEY_INVALID', `malformed ${curve.name} point`);
    return { der, algorithm: { type: 'EC', namedCurve: curve.name }, subjectPublicKey };
  }

  if (algorithmOid.equals(RSA_ENCRYPTION)) {
    let modulusLength: number;
    try {
      const rsaKey = readWhole(subjectPublicKey, DerTag.SEQUENCE);
      const [modulus, exponent, ...rest] = readChildren(subjectPublicKey, rsaKey);
      if (modulus === undefined || exponent === undefined || rest.length > 0) throw new DerError('bad RSAPublicKey');
      modulusLength = bitLength(readUnsignedInteger(subjectPublicKey, modulus));
      readUnsignedInteger(subjectPublicKey, exponent);
    } catch (error) {
      throw PkiErrors.error('PKI_PUBLIC_KEY_INVALID', 'malformed RSA public key', { cause: error });
    }
    if (modulusLength < MIN_RSA_MODULUS_BITS) {
      throw PkiErrors.error('PKI_KEY_TOO_WEAK', `RSA key has ${modulusLength} bits; at least 2048 are required`, {
        details: { modulusLength },
      });
    }
    if (modulusLength > MAX_RSA_MODULUS_BITS) {
      throw PkiErrors.error('PKI_KEY_ALGORITHM_UNSUPPORTED', `RSA keys above ${MAX_RSA_MODULUS_BITS} bits are not supported`);
    }
    return { der, algorithm: { type: 'RSA', modulusLength }, subjectPublicKey };
  }

  throw PkiErrors.error('PKI_KEY_ALGORITHM_UNSUPPORTED', 'public key algorithm not supported (EC or RSA only)');
}

/**
 * SubjectPublicKeyInfo DER of keys Gatehouse decoded or generated itself, so that issuing from a `KeyObject`
 * (e.g. `ParsedCsr.publicKey`) does not pay OpenSSL's slow SPKI export (~0.15 ms) again.
 */
const knownSpki = new WeakMap<KeyObject, Buffer>();

/** The SubjectPublicKeyInfo DER of an EC public key: id-ecPublicKey, the named curve, the point (RFC 5480 §2). */
export function encodeEcSpki(namedCurve: 'P-256' | 'P-384' | 'P-521', point: Uint8Array): Buffer {
  const curve = CURVES.find((c) => c.name === namedCurve);
  if (curve === undefined) throw PkiErrors.error('PKI_KEY_ALGORITHM_UNSUPPORTED', `EC curve ${namedCurve} not supported`);
  return encodeSequence(encodeSequence(encodeTlv(DerTag.OID, EC_PUBLIC_KEY), encodeTlv(DerTag.OID, curve.oid)), encodeBitString(point));
}

/**
 * The PKCS#8 PrivateKeyInfo DER of an EC key (RFC 5208 §5 around the RFC 5915 ECPrivateKey), byte for byte what
 * OpenSSL exports: version 0, id-ecPublicKey with the named curve, then ECPrivateKey version 1 with the scalar (`d`,
 * padded to the curve size) and the public point as `[1]`, no `[0]` parameters. The intermediate buffers that held the
 * scalar are zeroed; the caller owns (and should zero) the result.
 */
export function encodeEcPkcs8(namedCurve: 'P-256' | 'P-384' | 'P-521', d: Uint8Array, point: Uint8Array): Buffer {
  const curve = CURVES.find((c) => c.name === namedCurve);
  if (curve === undefined) throw PkiErrors.error('PKI_KEY_ALGORITHM_UNSUPPORTED', `EC curve ${namedCurve} not supported`);
  // A programming error (the callers pad the scalar), never caller input; the message carries no key material.
  if (d.length !== curve.size) throw new Error(`an EC ${namedCurve} scalar has ${curve.size} bytes, got ${d.length}`);
  const scalar = encodeTlv(DerTag.OCTET_STRING, d);
  const ecPrivateKey = encodeSequence(ONE, scalar, encodeTlv(contextTag(1, true), encodeBitString(point)));
  const wrapped = encodeTlv(DerTag.OCTET_STRING, ecPrivateKey);
  const out = encodeSequence(ZERO, encodeSequence(encodeTlv(DerTag.OID, EC_PUBLIC_KEY), encodeTlv(DerTag.OID, curve.oid)), wrapped);
  scalar.fill(0);
  ecPrivateKey.fill(0);
  wrapped.fill(0);
  return out;
}

const ZERO = Buffer.from([DerTag.INTEGER, 1, 0]);
const ONE = Buffer.from([DerTag.INTEGER, 1, 1]);

/** Records the SPKI DER of a public key (see {@link exportSpki}). */
export function rememberSpki(key: KeyObject, spkiDer: Buffer): void {
  knownSpki.set(key, spkiDer);
}

/**
 * Builds the `node:crypto` key of a decoded SubjectPublicKeyInfo. Uncompressed EC points go through JWK import,
 * which OpenSSL 3 does about twice as fast as SPKI decoding; both check that the point is on the curve.
 * Throws `PKI_PUBLIC_KEY_INVALID`.
 */
export function createPublicKeyObject(info: SubjectPublicKeyInfo): KeyObject {
  try {
    const point = info.subjectPublicKey;
    let key: KeyObject;
    if (info.algorithm.type === 'EC' && point[0] === 0x04) {
      const size = (point.length - 1) / 2;
      key = createPublicKey({
        key: {
          kty: 'EC',
          crv: info.algorithm.namedCurve,
          x: point.toString('base64url', 1, 1 + size),
          y: point.toString('base64url', 1 + size),
        },
        format: 'jwk',
      });
    } else {
      key = createPublicKey({ key: info.der, format: 'der', type: 'spki' });
    }
    knownSpki.set(key, info.der);
    return key;
  } catch (error) {
    throw PkiErrors.error('PKI_PUBLIC_KEY_INVALID', 'the public key could not be loaded', { cause: error });
  }
}

/** The SubjectPublicKeyInfo DER of a `node:crypto` public (or private) key. */
export function exportSpki(key: KeyObject): Buffer {
  const known = knownSpki.get(key);
  if (known !== undefined) return known;
  return (key.type === 'public' ? key : createPublicKey(key)).export({ type: 'spki', format: 'der' });
}

/**
 * Key identifier of a public key: SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2, method 1), as used in
 * subjectKeyIdentifier and authorityKeyIdentifier.
 */
export function computeKeyIdentifier(subjectPublicKey: Uint8Array): Buffer {
  return createHash('sha1').update(subjectPublicKey).digest();
}

/** Key identifier (RFC 5280 §4.2.1.2 method 1) of a SubjectPublicKeyInfo DER or a `node:crypto` key. */
export function keyIdentifierOf(key: Uint8Array | KeyObject): Buffer {
  const spki = key instanceof Uint8Array ? key : exportSpki(key);
  try {
    const top = readWhole(spki, DerTag.SEQUENCE);
    const algorithm = expectTlv(spki, top.valueStart, top.end, DerTag.SEQUENCE);
    const bitString = expectTlv(spki, algorithm.end, top.end, DerTag.BIT_STRING);
    return computeKeyIdentifier(valueOf(spki, bitString).subarray(1));
  } catch (error) {
    throw PkiErrors.error('PKI_PUBLIC_KEY_INVALID', 'malformed SubjectPublicKeyInfo', { cause: error });
  }
}

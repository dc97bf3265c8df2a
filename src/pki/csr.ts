import { createPrivateKey, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import {
  DER_NULL,
  DerError,
  DerTag,
  contextTag,
  encodeBitString,
  encodeInteger,
  encodeOid,
  encodeSequence,
  encodeTlv,
  expectTlv,
  readBitString,
  readOid,
  readSmallInteger,
  readTlv,
  readWhole,
  tlvBytes,
} from './der.ts';
import { encodeName, readName } from './distinguished-name.ts';
import type { DistinguishedName } from './distinguished-name.ts';
import { PkiErrors } from './errors.ts';
import { HASH_BY_SIGNATURE_OID, SignatureOids } from './key-algorithm.ts';
import { decodeSinglePem, encodePem } from './pem.ts';
import { createPublicKeyObject, exportSpki, parseSubjectPublicKeyInfo } from './public-key.ts';
import type { SubjectKeyAlgorithm } from './public-key.ts';

/** A verified PKCS#10 certificate signing request (RFC 2986). */
export interface ParsedCsr {
  readonly der: Buffer;
  /** The requested subject (attributes Gatehouse knows; see `DistinguishedName`). */
  readonly subject: DistinguishedName;
  readonly publicKey: KeyObject;
  /** The SubjectPublicKeyInfo DER, ready for issuing without re-encoding the key. */
  readonly spkiDer: Buffer;
  readonly keyAlgorithm: SubjectKeyAlgorithm;
}

/** Largest CSR accepted as PEM text: 16 KiB. */
export const MAX_CSR_PEM_LENGTH = 16 * 1024;
/** Largest CSR accepted as DER: 12 KiB. */
export const MAX_CSR_DER_LENGTH = 12 * 1024;

const CSR_LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'] as const;
const ECDSA_OIDS = new Set<string>([SignatureOids.ECDSA_SHA256, SignatureOids.ECDSA_SHA384, SignatureOids.ECDSA_SHA512]);

function csrMalformed(error: unknown): Error {
  const detail = error instanceof Error ? `: ${error.message}` : '';
  return PkiErrors.error('PKI_CSR_MALFORMED', `malformed certificate signing request${detail}`, { cause: error });
}

/**
 * Parses a PKCS#10 CSR (PEM text or DER) and verifies its self-signature over the CertificationRequestInfo bytes,
 * which proves possession of the private key (RFC 2986 §3). Built for the issuing hot path: a DER reader, one
 * public-key load and one OpenSSL verification.
 *
 * Throws `PKI_CSR_TOO_LARGE`, `PKI_PEM_MALFORMED` / `PKI_PEM_UNEXPECTED_LABEL` / `PKI_PEM_MULTIPLE_BLOCKS` (text),
 * `PKI_CSR_MALFORMED`, `PKI_PUBLIC_KEY_INVALID`, `PKI_KEY_TOO_WEAK`, `PKI_KEY_ALGORITHM_UNSUPPORTED`,
 * `PKI_SIGNATURE_ALGORITHM_UNSUPPORTED` or `PKI_CSR_SIGNATURE_INVALID`.
 */
export function parseCsr(pemOrDer: string | Uint8Array): ParsedCsr {
  let der: Buffer;
  if (typeof pemOrDer === 'string') {
    if (pemOrDer.length > MAX_CSR_PEM_LENGTH) {
      throw PkiErrors.error('PKI_CSR_TOO_LARGE', 'the certificate signing request is larger than 16 KiB');
    }
    der = decodeSinglePem(pemOrDer, CSR_LABELS).der;
  } else if (pemOrDer instanceof Uint8Array) {
    der = Buffer.isBuffer(pemOrDer) ? pemOrDer : Buffer.from(pemOrDer.buffer, pemOrDer.byteOffset, pemOrDer.byteLength);
  } else {
    throw PkiErrors.error('PKI_CSR_MALFORMED', 'a certificate signing request must be PEM text or DER bytes');
  }
  if (der.length > MAX_CSR_DER_LENGTH) {
    throw PkiErrors.error('PKI_CSR_TOO_LARGE', 'the certificate signing request is larger than 12 KiB of DER');
  }

  let info: Uint8Array;
  let subject: DistinguishedName;
  let spkiDer: Buffer;
  let signatureOid: string;
  let signature: Uint8Array;
  try {
    const request = readWhole(der, DerTag.SEQUENCE);
    const infoTlv = expectTlv(der, request.valueStart, request.end, DerTag.SEQUENCE);
    const algorithm = expectTlv(der, infoTlv.end, request.end, DerTag.SEQUENCE);
    const signatureTlv = expectTlv(der, algorithm.end, request.end, DerTag.BIT_STRING);
    if (signatureTlv.end !== request.end) throw new DerError('trailing bytes in CertificationRequest');

    const version = expectTlv(der, infoTlv.valueStart, infoTlv.end, DerTag.INTEGER);
    if (readSmallInteger(der, version) !== 0) throw new DerError('unknown CSR version');
    const name = expectTlv(der, version.end, infoTlv.end, DerTag.SEQUENCE);
    const spki = expectTlv(der, name.end, infoTlv.end, DerTag.SEQUENCE);
    // attributes [0] IMPLICIT SET OF Attribute; tolerated when absent (some old encoders omit it).
    if (spki.end < infoTlv.end) {
      const attributes = expectTlv(der, spki.end, infoTlv.end, contextTag(0, true));
      if (attributes.end !== infoTlv.end) throw new DerError('trailing bytes in CertificationRequestInfo');
    }
    subject = readName(der, name);
    spkiDer = Buffer.from(tlvBytes(der, spki));
    info = tlvBytes(der, infoTlv);
    signatureOid = readOid(der, readTlv(der, algorithm.valueStart, algorithm.end));
    const bits = readBitString(der, signatureTlv);
    if (bits.unusedBits !== 0) throw new DerError('signature has unused bits');
    signature = bits.bits;
  } catch (error) {
    if (error instanceof DerError) throw csrMalformed(error);
    throw error;
  }

  const keyInfo = parseSubjectPublicKeyInfo(spkiDer);
  const hash = HASH_BY_SIGNATURE_OID.get(signatureOid);
  if (hash === undefined) {
    throw PkiErrors.error(
      'PKI_SIGNATURE_ALGORITHM_UNSUPPORTED',
      `CSR signature algorithm ${signatureOid} is not supported (ECDSA or RSA PKCS#1 v1.5 with SHA-2)`,
    );
  }
  if (ECDSA_OIDS.has(signatureOid) !== (keyInfo.algorithm.type === 'EC')) {
    throw PkiErrors.error('PKI_CSR_SIGNATURE_INVALID', 'the CSR signature algorithm does not match its key');
  }
  const publicKey = createPublicKeyObject(keyInfo);
  let valid: boolean;
  try {
    valid = cryptoVerify(hash, info, publicKey, signature);
  } catch {
    valid = false;
  }
  if (!valid) {
    throw PkiErrors.error('PKI_CSR_SIGNATURE_INVALID', 'the CSR signature does not verify with its public key');
  }
  return { der, subject, publicKey, spkiDer, keyAlgorithm: keyInfo.algorithm };
}

/** Options of {@link createCsr}: the subject and the private key, as a `node:crypto` key or PKCS#8/SEC1/PKCS#1 PEM. */
export type CreateCsrOptions = {
  readonly subject: DistinguishedName;
  /** The matching public key as SubjectPublicKeyInfo DER; derived from the private key when absent. */
  readonly spkiDer?: Uint8Array;
} & ({ readonly privateKey: KeyObject } | { readonly privateKeyPem: string });

/**
 * Builds and signs a PKCS#10 CSR (RFC 2986) with no attributes and returns its DER: ECDSA with SHA-256/384/512 by
 * curve (P-256/P-384/P-521), RSA with SHA-256. Throws `PKI_KEY_ALGORITHM_UNSUPPORTED` for other keys.
 */
export function createCsrDer(options: CreateCsrOptions): Buffer {
  let privateKey: KeyObject;
  try {
    privateKey = 'privateKey' in options ? options.privateKey : createPrivateKey(options.privateKeyPem);
  } catch (error) {
    throw PkiErrors.error('PKI_PEM_MALFORMED', 'the private key PEM cannot be read', { cause: error });
  }
  const spki = options.spkiDer ?? exportSpki(privateKey);
  let oid: string;
  let hash: string;
  if (privateKey.asymmetricKeyType === 'ec') {
    const curve = privateKey.asymmetricKeyDetails?.namedCurve;
    [oid, hash] =
      curve === 'secp384r1'
        ? [SignatureOids.ECDSA_SHA384, 'sha384']
        : curve === 'secp521r1'
          ? [SignatureOids.ECDSA_SHA512, 'sha512']
          : [SignatureOids.ECDSA_SHA256, 'sha256'];
  } else if (privateKey.asymmetricKeyType === 'rsa') {
    [oid, hash] = [SignatureOids.RSA_SHA256, 'sha256'];
  } else {
    throw PkiErrors.error('PKI_KEY_ALGORITHM_UNSUPPORTED', 'CSRs can be made with EC or RSA keys only');
  }
  const info = encodeSequence(encodeInteger(0), encodeName(options.subject), spki, encodeTlv(contextTag(0, true)));
  const algorithm =
    privateKey.asymmetricKeyType === 'rsa' ? encodeSequence(encodeOid(oid), DER_NULL) : encodeSequence(encodeOid(oid));
  return encodeSequence(info, algorithm, encodeBitString(cryptoSign(hash, info, privateKey)));
}

/**
 * Builds and signs a PKCS#10 CSR like {@link createCsrDer} and returns it as PEM (`CERTIFICATE REQUEST`), the form
 * AWS CreateCertificateFromCsr and the REST API take. For the CLI, tests, the benchmark and tools.
 */
export function createCsr(options: CreateCsrOptions): string {
  return encodePem('CERTIFICATE REQUEST', createCsrDer(options));
}

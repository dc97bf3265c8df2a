import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import {
  DerError,
  DerTag,
  contextTag,
  expectTlv,
  readBitString,
  readBoolean,
  readChildren,
  readOid,
  readSmallInteger,
  readTime,
  readTlv,
  readWhole,
  tlvBytes,
  valueOf,
} from './der.ts';
import type { Tlv } from './der.ts';
import { readName } from './distinguished-name.ts';
import type { DistinguishedName } from './distinguished-name.ts';
import { PkiErrors } from './errors.ts';
import { formatIpAddress } from './ip-address.ts';
import { decodeSinglePem, encodePem } from './pem.ts';

/** The keyUsage bits of RFC 5280 §4.2.1.3, by name, in bit order. */
export const KEY_USAGES = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;

/** One keyUsage bit name (RFC 5280 §4.2.1.3; `nonRepudiation` is also called contentCommitment). */
export type KeyUsage = (typeof KEY_USAGES)[number];

/** Extended key usage purposes Gatehouse names (RFC 5280 §4.2.1.12); other purposes appear as dotted OIDs. */
export const EXTENDED_KEY_USAGE_OIDS = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  timeStamping: '1.3.6.1.5.5.7.3.8',
  OCSPSigning: '1.3.6.1.5.5.7.3.9',
} as const;

const EKU_NAMES = new Map<string, string>(Object.entries(EXTENDED_KEY_USAGE_OIDS).map(([name, oid]) => [oid, name]));

/** Subject alternative names of a certificate, by GeneralName type (RFC 5280 §4.2.1.6). */
export interface SubjectAltNames {
  readonly dns: readonly string[];
  /** IPv4 dotted quads and RFC 5952 IPv6 text. */
  readonly ip: readonly string[];
  readonly uri: readonly string[];
  readonly email: readonly string[];
}

/**
 * A decoded X.509 certificate (RFC 5280 §4.1): the fields Gatehouse decides on, read once by a DER reader, and the
 * `node:crypto` certificate for OpenSSL's checks (`checkIssued`, `verify`, `checkHost`).
 */
export interface ParsedCertificate {
  readonly der: Buffer;
  readonly pem: string;
  /** Lower-case hex SHA-256 of the DER: the AWS IoT certificateId. */
  readonly certificateId: string;
  /** Lower-case hex of the serial number's magnitude (no sign octet). */
  readonly serialNumber: string;
  readonly subject: DistinguishedName;
  readonly issuer: DistinguishedName;
  /** The subject Name DER, as encoded in the certificate (for issuer matching and issuing). */
  readonly subjectNameDer: Buffer;
  readonly issuerNameDer: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** basicConstraints cA (RFC 5280 §4.2.1.9); false when the extension is absent. */
  readonly isCa: boolean;
  /** basicConstraints pathLenConstraint; undefined when absent (unlimited). */
  readonly pathLength: number | undefined;
  /** keyUsage bits that are set; undefined when the extension is absent (no restriction). */
  readonly keyUsage: readonly KeyUsage[] | undefined;
  /** extKeyUsage purposes (names of {@link EXTENDED_KEY_USAGE_OIDS} or dotted OIDs); undefined when absent. */
  readonly extendedKeyUsage: readonly string[] | undefined;
  readonly subjectAltNames: SubjectAltNames;
  /** Lower-case hex subjectKeyIdentifier; undefined when absent. */
  readonly subjectKeyIdentifier: string | undefined;
  /** Lower-case hex authorityKeyIdentifier keyIdentifier; undefined when absent. */
  readonly authorityKeyIdentifier: string | undefined;
  /** URIs of the cRLDistributionPoints fullName entries. */
  readonly crlDistributionPoints: readonly string[];
  /** True when subject and issuer names are byte-identical (a root or a self-issued certificate). */
  readonly isSelfIssued: boolean;
  /** The SubjectPublicKeyInfo DER. */
  readonly spkiDer: Buffer;
  /** What the issuer signed and how: for checking the signature without OpenSSL's certificate object ({@link verifyCertificateSignature}). */
  readonly signed: SignedParts;
  /** The subject public key; loaded on first use (throws `PKI_PUBLIC_KEY_INVALID` if OpenSSL cannot load it). */
  readonly publicKey: KeyObject;
  /** OpenSSL's view of the certificate; loaded on first use (throws `PKI_CERTIFICATE_MALFORMED` if OpenSSL refuses it). */
  readonly x509: X509Certificate;
}

/** The signed part of a certificate, its signature and the algorithm named outside and inside the TBSCertificate. */
export interface SignedParts {
  readonly tbsDer: Buffer;
  /** The outer signatureAlgorithm OID (dotted). */
  readonly algorithmOid: string;
  /** True when the outer and the inner (TBSCertificate) AlgorithmIdentifiers are byte-identical (RFC 5280 §4.1.1.2). */
  readonly algorithmsMatch: boolean;
  /** The signature BIT STRING's bits (no unused bits: X.509 signatures are whole octets). */
  readonly signature: Buffer;
  readonly signatureUnusedBits: number;
}

/** Largest certificate accepted, in DER bytes. */
export const MAX_CERTIFICATE_BYTES = 64 * 1024;

const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';
const OID_EXT_KEY_USAGE = '2.5.29.37';
const OID_SUBJECT_KEY_IDENTIFIER = '2.5.29.14';
const OID_AUTHORITY_KEY_IDENTIFIER = '2.5.29.35';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
const OID_CRL_DISTRIBUTION_POINTS = '2.5.29.31';

/** Lower-case hex SHA-256 of a certificate's DER: the AWS IoT certificateId. */
export function certificateIdOf(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

function serialHex(value: Uint8Array): string {
  const magnitude = value.length > 1 && value[0] === 0 ? value.subarray(1) : value;
  return Buffer.from(magnitude).toString('hex');
}

interface Extensions {
  isCa: boolean;
  pathLength: number | undefined;
  keyUsage: KeyUsage[] | undefined;
  extendedKeyUsage: string[] | undefined;
  subjectAltNames: { dns: string[]; ip: string[]; uri: string[]; email: string[] };
  subjectKeyIdentifier: string | undefined;
  authorityKeyIdentifier: string | undefined;
  crlDistributionPoints: string[];
}

/** Reads GeneralNames (RFC 5280 §4.2.1.6) into `out`. */
function readGeneralNames(bytes: Buffer, names: Tlv, out: Extensions['subjectAltNames']): void {
  for (const name of readChildren(bytes, names)) {
    switch (name.tag) {
      case contextTag(1, false):
        out.email.push(bytes.toString('latin1', name.valueStart, name.end));
        break;
      case contextTag(2, false):
        out.dns.push(bytes.toString('latin1', name.valueStart, name.end));
        break;
      case contextTag(6, false):
        out.uri.push(bytes.toString('latin1', name.valueStart, name.end));
        break;
      case contextTag(7, false):
        out.ip.push(formatIpAddress(valueOf(bytes, name)));
        break;
      default:
        break; // otherName, directoryName, … are not used by Gatehouse
    }
  }
}

function readExtensions(bytes: Buffer, extensions: Tlv | undefined): Extensions {
  const result: Extensions = {
    isCa: false,
    pathLength: undefined,
    keyUsage: undefined,
    extendedKeyUsage: undefined,
    subjectAltNames: { dns: [], ip: [], uri: [], email: [] },
    subjectKeyIdentifier: undefined,
    authorityKeyIdentifier: undefined,
    crlDistributionPoints: [],
  };
  if (extensions === undefined) return result;
  const list = expectTlv(bytes, extensions.valueStart, extensions.end, DerTag.SEQUENCE);
  if (list.end !== extensions.end) throw new DerError('trailing bytes after extensions');
  const seen = new Set<string>();
  for (const extension of readChildren(bytes, list)) {
    if (extension.tag !== DerTag.SEQUENCE) throw new DerError('expected an Extension');
    const parts = readChildren(bytes, extension);
    const oidTlv = parts[0];
    const valueTlv = parts[parts.length - 1];
    if (oidTlv === undefined || valueTlv === undefined || parts.length > 3 || parts.length < 2) {
      throw new DerError('bad Extension');
    }
    if (parts.length === 3) readBoolean(bytes, parts[1] as Tlv);
    const oid = readOid(bytes, oidTlv);
    if (seen.has(oid)) throw new DerError(`duplicate extension ${oid}`);
    seen.add(oid);
    if (valueTlv.tag !== DerTag.OCTET_STRING) throw new DerError('extension value must be an OCTET STRING');
    const value = bytes.subarray(valueTlv.valueStart, valueTlv.end);
    switch (oid) {
      case OID_BASIC_CONSTRAINTS: {
        const sequence = readWhole(value, DerTag.SEQUENCE);
        for (const field of readChildren(value, sequence)) {
          if (field.tag === DerTag.BOOLEAN) result.isCa = readBoolean(value, field);
          else if (field.tag === DerTag.INTEGER) result.pathLength = readSmallInteger(value, field);
          else throw new DerError('bad basicConstraints');
        }
        break;
      }
      case OID_KEY_USAGE: {
        const { bits } = readBitString(value, readWhole(value, DerTag.BIT_STRING));
        result.keyUsage = KEY_USAGES.filter((_, i) => (((bits[i >> 3] ?? 0) >> (7 - (i & 7))) & 1) === 1);
        break;
      }
      case OID_EXT_KEY_USAGE: {
        const sequence = readWhole(value, DerTag.SEQUENCE);
        result.extendedKeyUsage = readChildren(value, sequence).map((purpose) => {
          const dotted = readOid(value, purpose);
          return EKU_NAMES.get(dotted) ?? dotted;
        });
        break;
      }
      case OID_SUBJECT_KEY_IDENTIFIER: {
        const keyId = readWhole(value, DerTag.OCTET_STRING);
        result.subjectKeyIdentifier = value.toString('hex', keyId.valueStart, keyId.end);
        break;
      }
      case OID_AUTHORITY_KEY_IDENTIFIER: {
        const sequence = readWhole(value, DerTag.SEQUENCE);
        for (const field of readChildren(value, sequence)) {
          if (field.tag === contextTag(0, false)) {
            result.authorityKeyIdentifier = value.toString('hex', field.valueStart, field.end);
          }
        }
        break;
      }
      case OID_SUBJECT_ALT_NAME:
        readGeneralNames(value, readWhole(value, DerTag.SEQUENCE), result.subjectAltNames);
        break;
      case OID_CRL_DISTRIBUTION_POINTS: {
        const sequence = readWhole(value, DerTag.SEQUENCE);
        for (const point of readChildren(value, sequence)) {
          for (const field of readChildren(value, point)) {
            if (field.tag !== contextTag(0, true)) continue;
            const name = readTlv(value, field.valueStart, field.end);
            if (name.tag !== contextTag(0, true)) continue; // nameRelativeToCRLIssuer is not used
            const uris: Extensions['subjectAltNames'] = { dns: [], ip: [], uri: [], email: [] };
            readGeneralNames(value, name, uris);
            result.crlDistributionPoints.push(...uris.uri);
          }
        }
        break;
      }
      default:
        break;
    }
  }
  return result;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Parses one X.509 certificate from PEM text (exactly one `CERTIFICATE` block) or DER bytes with Gatehouse's DER
 * reader (the whole structure, validity times and the extensions it reads are checked). OpenSSL's
 * `X509Certificate` and the public key are made on first access of `x509` / `publicKey`; use
 * {@link loadCertificate} to have OpenSSL check the certificate at once.
 * Throws `PKI_PEM_MALFORMED`, `PKI_PEM_UNEXPECTED_LABEL`, `PKI_PEM_MULTIPLE_BLOCKS`, `PKI_CERTIFICATE_TOO_LARGE`
 * or `PKI_CERTIFICATE_MALFORMED`.
 */
export function parseCertificate(pemOrDer: string | Uint8Array): ParsedCertificate {
  let der: Buffer;
  if (typeof pemOrDer === 'string') {
    if (pemOrDer.length > (MAX_CERTIFICATE_BYTES * 4) / 3 + 4096) {
      throw PkiErrors.error('PKI_CERTIFICATE_TOO_LARGE', 'the certificate is larger than 64 KiB');
    }
    der = decodeSinglePem(pemOrDer, ['CERTIFICATE']).der;
  } else if (pemOrDer instanceof Uint8Array) {
    der = Buffer.from(toBuffer(pemOrDer)); // own copy: callers may reuse their buffer
  } else {
    throw PkiErrors.error('PKI_CERTIFICATE_MALFORMED', 'a certificate must be PEM text or DER bytes');
  }
  if (der.length > MAX_CERTIFICATE_BYTES) {
    throw PkiErrors.error('PKI_CERTIFICATE_TOO_LARGE', 'the certificate is larger than 64 KiB');
  }

  let fields: Omit<ParsedCertificate, 'der' | 'pem' | 'certificateId' | 'publicKey' | 'x509'>;
  try {
    const certificate = readWhole(der, DerTag.SEQUENCE);
    const [tbs, signatureAlgorithm, signature, ...rest] = readChildren(der, certificate);
    if (tbs?.tag !== DerTag.SEQUENCE || signatureAlgorithm?.tag !== DerTag.SEQUENCE || rest.length > 0) {
      throw new DerError('bad Certificate structure');
    }
    if (signature === undefined) throw new DerError('missing signature');
    const signatureBits = readBitString(der, signature);
    const algorithmFields = readChildren(der, signatureAlgorithm);
    const algorithmOid = algorithmFields[0]?.tag === DerTag.OID ? readOid(der, algorithmFields[0]) : '';
    const tbsFields = readChildren(der, tbs);
    let index = 0;
    let version = 0;
    const first = tbsFields[0];
    if (first?.tag === contextTag(0, true)) {
      version = readSmallInteger(der, readTlv(der, first.valueStart, first.end));
      index = 1;
    }
    if (version > 2) throw new DerError('unknown certificate version');
    const serial = tbsFields[index];
    const innerSignature = tbsFields[index + 1];
    const issuer = tbsFields[index + 2];
    const validity = tbsFields[index + 3];
    const subject = tbsFields[index + 4];
    const spki = tbsFields[index + 5];
    if (
      serial?.tag !== DerTag.INTEGER ||
      innerSignature?.tag !== DerTag.SEQUENCE ||
      issuer === undefined ||
      validity?.tag !== DerTag.SEQUENCE ||
      subject === undefined ||
      spki?.tag !== DerTag.SEQUENCE
    ) {
      throw new DerError('bad TBSCertificate structure');
    }
    let extensions: Tlv | undefined;
    for (const optional of tbsFields.slice(index + 6)) {
      if (optional.tag === contextTag(3, true)) extensions = optional;
      else if (optional.tag !== contextTag(1, false) && optional.tag !== contextTag(2, false)) {
        throw new DerError('unexpected field in TBSCertificate');
      }
    }
    const [notBefore, notAfter, ...moreTimes] = readChildren(der, validity);
    if (notBefore === undefined || notAfter === undefined || moreTimes.length > 0) throw new DerError('bad Validity');
    const subjectNameDer = Buffer.from(tlvBytes(der, subject));
    const issuerNameDer = Buffer.from(tlvBytes(der, issuer));
    fields = {
      serialNumber: serialHex(valueOf(der, serial)),
      subject: readName(der, subject),
      issuer: readName(der, issuer),
      subjectNameDer,
      issuerNameDer,
      notBefore: readTime(der, notBefore),
      notAfter: readTime(der, notAfter),
      ...readExtensions(der, extensions),
      isSelfIssued: subjectNameDer.equals(issuerNameDer),
      spkiDer: Buffer.from(tlvBytes(der, spki)),
      signed: {
        tbsDer: toBuffer(tlvBytes(der, tbs)),
        algorithmOid,
        algorithmsMatch: Buffer.from(tlvBytes(der, signatureAlgorithm)).equals(tlvBytes(der, innerSignature)),
        signature: toBuffer(signatureBits.bits),
        signatureUnusedBits: signatureBits.unusedBits,
      },
    };
  } catch (error) {
    if (error instanceof DerError) {
      throw PkiErrors.error('PKI_CERTIFICATE_MALFORMED', `malformed certificate: ${error.message}`, { cause: error });
    }
    throw error;
  }

  // OpenSSL's objects are made on first use: `new X509Certificate` alone costs about 0.3 ms in Node 20, more than
  // the whole DER walk, and many callers only need the fields (registry rows, bulk registration, JITP parameters).
  let x509: X509Certificate | undefined;
  let publicKey: KeyObject | undefined;
  const spkiDer = fields.spkiDer;
  return {
    der,
    pem: encodePem('CERTIFICATE', der),
    certificateId: certificateIdOf(der),
    ...fields,
    get x509(): X509Certificate {
      if (x509 === undefined) {
        try {
          x509 = new X509Certificate(der);
        } catch (error) {
          throw PkiErrors.error('PKI_CERTIFICATE_MALFORMED', 'OpenSSL cannot load the certificate', { cause: error });
        }
      }
      return x509;
    },
    get publicKey(): KeyObject {
      if (publicKey === undefined) {
        try {
          publicKey = x509 !== undefined ? x509.publicKey : createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
        } catch (error) {
          throw PkiErrors.error('PKI_PUBLIC_KEY_INVALID', 'the certificate’s public key cannot be loaded', { cause: error });
        }
      }
      return publicKey;
    },
  };
}

/**
 * Parses a certificate like {@link parseCertificate} and loads it into OpenSSL and `node:crypto` at once, so that a
 * certificate OpenSSL refuses fails here (`PKI_CERTIFICATE_MALFORMED`, `PKI_PUBLIC_KEY_INVALID`) rather than on
 * first use. For certificates that are stored or trusted (CA registration, certificate registration).
 */
export function loadCertificate(pemOrDer: string | Uint8Array): ParsedCertificate {
  const certificate = parseCertificate(pemOrDer);
  void certificate.x509;
  void certificate.publicKey;
  return certificate;
}

/**
 * Checks that `now` lies within the certificate's validity (RFC 5280 §4.1.2.5, bounds inclusive).
 * Throws `PKI_CERTIFICATE_EXPIRED` or `PKI_CERTIFICATE_NOT_YET_VALID` with the certificateId (and `extraDetails`)
 * in the details.
 */
export function assertCertificateTimeValid(
  certificate: ParsedCertificate,
  now: Date,
  extraDetails: Readonly<Record<string, unknown>> = {},
): void {
  const time = now.getTime();
  if (time > certificate.notAfter.getTime()) {
    throw PkiErrors.error('PKI_CERTIFICATE_EXPIRED', `certificate expired at ${certificate.notAfter.toISOString()}`, {
      details: { certificateId: certificate.certificateId, notAfter: certificate.notAfter.toISOString(), ...extraDetails },
    });
  }
  if (time < certificate.notBefore.getTime()) {
    throw PkiErrors.error(
      'PKI_CERTIFICATE_NOT_YET_VALID',
      `certificate is not valid before ${certificate.notBefore.toISOString()}`,
      {
        details: {
          certificateId: certificate.certificateId,
          notBefore: certificate.notBefore.toISOString(),
          ...extraDetails,
        },
      },
    );
  }
}

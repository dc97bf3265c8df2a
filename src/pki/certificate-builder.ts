/**
 * Lean DER assembly of X.509 v3 certificates (RFC 5280 §4.1) and their extensions (§4.2), shared by the issuing
 * hot path and CA creation. Internal to the PKI: callers use `createCertificateIssuer` and `createRootCa`.
 */
import { randomBytes } from 'node:crypto';
import {
  contextTag,
  encodeBitString,
  encodeBoolean,
  encodeInteger,
  encodeNamedBits,
  encodeOctetString,
  encodeOid,
  encodeSequence,
  encodeTime,
  encodeTlv,
  encodeUnsignedInteger,
} from './der.ts';
import { EXTENDED_KEY_USAGE_OIDS, KEY_USAGES } from './certificate.ts';
import type { KeyUsage, ParsedCertificate } from './certificate.ts';
import { PkiErrors } from './errors.ts';
import { parseIpAddress } from './ip-address.ts';
import type { Signer } from './key-store.ts';

const VERSION_V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);

/** Encoded extension OIDs. */
export const ExtensionOid = {
  basicConstraints: encodeOid('2.5.29.19'),
  keyUsage: encodeOid('2.5.29.15'),
  extKeyUsage: encodeOid('2.5.29.37'),
  subjectKeyIdentifier: encodeOid('2.5.29.14'),
  authorityKeyIdentifier: encodeOid('2.5.29.35'),
  subjectAltName: encodeOid('2.5.29.17'),
  crlDistributionPoints: encodeOid('2.5.29.31'),
  crlNumber: encodeOid('2.5.29.20'),
  reasonCode: encodeOid('2.5.29.21'),
} as const;

const CRITICAL = encodeBoolean(true);

/** Encodes one Extension (RFC 5280 §4.1): `SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING }`. */
export function encodeExtension(oid: Buffer, critical: boolean, value: Uint8Array): Buffer {
  return critical
    ? encodeSequence(oid, CRITICAL, encodeOctetString(value))
    : encodeSequence(oid, encodeOctetString(value));
}

/** basicConstraints (§4.2.1.9), always critical. */
export function basicConstraintsExtension(isCa: boolean, pathLength?: number): Buffer {
  const fields: Buffer[] = [];
  if (isCa) fields.push(encodeBoolean(true));
  if (isCa && pathLength !== undefined) fields.push(encodeInteger(pathLength));
  return encodeExtension(ExtensionOid.basicConstraints, true, encodeSequence(...fields));
}

/** keyUsage (§4.2.1.3), always critical. */
export function keyUsageExtension(usages: readonly KeyUsage[]): Buffer {
  return encodeExtension(
    ExtensionOid.keyUsage,
    true,
    encodeNamedBits(usages.map((usage) => KEY_USAGES.indexOf(usage))),
  );
}

/** extKeyUsage (§4.2.1.12), not critical. */
export function extendedKeyUsageExtension(purposes: readonly (keyof typeof EXTENDED_KEY_USAGE_OIDS)[]): Buffer {
  return encodeExtension(
    ExtensionOid.extKeyUsage,
    false,
    encodeSequence(...purposes.map((purpose) => encodeOid(EXTENDED_KEY_USAGE_OIDS[purpose]))),
  );
}

/** subjectKeyIdentifier (§4.2.1.2), not critical. */
export function subjectKeyIdentifierExtension(keyIdentifier: Uint8Array): Buffer {
  return encodeExtension(ExtensionOid.subjectKeyIdentifier, false, encodeOctetString(keyIdentifier));
}

/** authorityKeyIdentifier (§4.2.1.1) with keyIdentifier only, not critical. */
export function authorityKeyIdentifierExtension(keyIdentifier: Uint8Array): Buffer {
  return encodeExtension(
    ExtensionOid.authorityKeyIdentifier,
    false,
    encodeSequence(encodeTlv(contextTag(0, false), keyIdentifier)),
  );
}

const DNS_LABEL = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)$/;

/** Checks a dNSName (RFC 5280 §4.2.1.6; a leading `*.` wildcard label allowed). Throws `PKI_SUBJECT_ALT_NAME_INVALID`. */
export function assertDnsName(name: string): void {
  const labels = typeof name === 'string' ? name.split('.') : [];
  const valid =
    typeof name === 'string' &&
    name.length > 0 &&
    name.length <= 253 &&
    labels.every((label, i) => DNS_LABEL.test(label) || (i === 0 && label === '*' && labels.length > 1));
  if (!valid) {
    throw PkiErrors.error('PKI_SUBJECT_ALT_NAME_INVALID', `"${String(name).slice(0, 64)}" is not a valid DNS name`);
  }
}

/** subjectAltName (§4.2.1.6) with dNSName and iPAddress entries; critical when the subject is empty. */
export function subjectAltNameExtension(
  names: { readonly dns?: readonly string[] | undefined; readonly ip?: readonly string[] | undefined },
  critical: boolean,
): Buffer | undefined {
  const entries: Buffer[] = [];
  for (const dns of names.dns ?? []) {
    assertDnsName(dns);
    entries.push(encodeTlv(contextTag(2, false), Buffer.from(dns, 'latin1')));
  }
  for (const ip of names.ip ?? []) entries.push(encodeTlv(contextTag(7, false), parseIpAddress(ip)));
  if (entries.length === 0) return undefined;
  return encodeExtension(ExtensionOid.subjectAltName, critical, encodeSequence(...entries));
}

/** Checks an absolute http(s) ASCII URL for a distribution point. Throws `PKI_URL_INVALID`. */
export function assertHttpUrl(url: string): void {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || !/^https?:$/.test(parsed.protocol) || !/^[\x21-\x7e]+$/.test(url)) {
    throw PkiErrors.error('PKI_URL_INVALID', 'the URL must be an absolute ASCII http(s) URL');
  }
}

/** cRLDistributionPoints (§4.2.1.13) with one fullName URI, not critical. */
export function crlDistributionPointsExtension(url: string): Buffer {
  assertHttpUrl(url);
  const uri = encodeTlv(contextTag(6, false), Buffer.from(url, 'latin1'));
  const fullName = encodeTlv(contextTag(0, true), uri);
  const distributionPointName = encodeTlv(contextTag(0, true), fullName);
  return encodeExtension(ExtensionOid.crlDistributionPoints, false, encodeSequence(encodeSequence(distributionPointName)));
}

/** A fresh serial number: 128 random bits, positive, always 16 octets of magnitude (RFC 5280 §4.1.2.2). */
export function generateSerialNumber(): { readonly der: Buffer; readonly hex: string } {
  const bytes = randomBytes(16);
  if (bytes[0] === 0) bytes[0] = 1;
  return { der: encodeUnsignedInteger(bytes), hex: bytes.toString('hex') };
}

/** Parses a hexadecimal serial number (as `ParsedCertificate.serialNumber` writes it). Throws `PKI_SERIAL_NUMBER_INVALID`. */
export function encodeSerialNumber(hex: string): Buffer {
  const normalized = typeof hex === 'string' ? hex.replace(/^0x/i, '').replace(/:/g, '').toLowerCase() : '';
  if (!/^[0-9a-f]{1,40}$/.test(normalized) || /^0+$/.test(normalized)) {
    throw PkiErrors.error('PKI_SERIAL_NUMBER_INVALID', 'serial numbers are 1–20 octets of positive hex');
  }
  return encodeUnsignedInteger(Buffer.from(normalized.length % 2 === 1 ? `0${normalized}` : normalized, 'hex'));
}

/** The fields of a TBSCertificate, each already DER-encoded where it is bytes. */
export interface TbsCertificateParts {
  readonly serialNumberDer: Uint8Array;
  readonly signatureAlgorithmDer: Uint8Array;
  readonly issuerNameDer: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subjectNameDer: Uint8Array;
  readonly spkiDer: Uint8Array;
  readonly extensions: readonly Uint8Array[];
}

/** Assembles the TBSCertificate, signs it with the synchronous signer and returns the Certificate DER. */
export function buildCertificateDer(parts: TbsCertificateParts, signer: Signer): Buffer {
  const tbs = encodeSequence(
    VERSION_V3,
    parts.serialNumberDer,
    parts.signatureAlgorithmDer,
    parts.issuerNameDer,
    encodeSequence(encodeTime(parts.notBefore), encodeTime(parts.notAfter)),
    parts.subjectNameDer,
    parts.spkiDer,
    encodeTlv(contextTag(3, true), encodeSequence(...parts.extensions)),
  );
  return encodeSequence(tbs, parts.signatureAlgorithmDer, encodeBitString(signer.sign(tbs)));
}

/** Truncates to whole seconds, the precision of X.509 times. */
export function truncateToSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

/**
 * Checks that a CA certificate and a signer can issue together: CA:true (`PKI_NOT_A_CA`), keyCertSign when keyUsage
 * is present (`PKI_CA_KEY_USAGE_INVALID`), and the signer's key is the certificate's key (`PKI_SIGNER_MISMATCH`).
 */
export function assertSignerMatchesCa(caCertificate: ParsedCertificate, signer: Signer, usage: KeyUsage): void {
  if (!caCertificate.isCa) {
    throw PkiErrors.error('PKI_NOT_A_CA', 'the issuing certificate is not a CA (basicConstraints CA:true missing)');
  }
  if (caCertificate.keyUsage !== undefined && !caCertificate.keyUsage.includes(usage)) {
    throw PkiErrors.error('PKI_CA_KEY_USAGE_INVALID', `the CA certificate's keyUsage lacks ${usage}`);
  }
  if (!signer.publicKey.equals(caCertificate.publicKey)) {
    throw PkiErrors.error('PKI_SIGNER_MISMATCH', 'the signing key does not belong to the CA certificate');
  }
}

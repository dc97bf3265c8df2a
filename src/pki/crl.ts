import {
  ExtensionOid,
  assertSignerMatchesCa,
  authorityKeyIdentifierExtension,
  encodeExtension,
  encodeSerialNumber,
  truncateToSeconds,
} from './certificate-builder.ts';
import type { ParsedCertificate } from './certificate.ts';
import { DerTag, contextTag, encodeBitString, encodeInteger, encodeSequence, encodeTime, encodeTlv } from './der.ts';
import { PkiErrors } from './errors.ts';
import { signatureAlgorithmIdentifier } from './key-algorithm.ts';
import type { Signer } from './key-store.ts';
import { encodePem } from './pem.ts';
import { keyIdentifierOf } from './public-key.ts';

/** CRLReason values of RFC 5280 §5.3.1 (value 7 is unused). */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;

/** A CRLReason name (RFC 5280 §5.3.1). */
export type RevocationReason = keyof typeof REVOCATION_REASONS;

/** True when `value` is a {@link RevocationReason} name (for reasons read back from storage). */
export function isRevocationReason(value: unknown): value is RevocationReason {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(REVOCATION_REASONS, value);
}

/** One revoked certificate on a CRL. */
export interface CrlEntry {
  /** Hex serial number, as `ParsedCertificate.serialNumber` / `IssuedCertificate.serialNumber` write it. */
  readonly serialNumber: string;
  readonly revokedAt: Date;
  /** Omitted from the entry when absent or `unspecified` (RFC 5280 §5.3.1 says not to write unspecified). */
  readonly reason?: RevocationReason;
}

/** Options of {@link buildCrl}. */
export interface BuildCrlOptions {
  readonly issuerCertificate: ParsedCertificate;
  readonly signer: Signer;
  readonly entries: readonly CrlEntry[];
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  /** Monotonically increasing CRL number (RFC 5280 §5.2.3), at most 20 octets. */
  readonly crlNumber: bigint;
}

/** A CRL in DER and in PEM with the `X509 CRL` label OpenSSL expects. */
export interface BuiltCrl {
  readonly der: Buffer;
  readonly pem: string;
}

const VERSION_V2 = encodeInteger(1);

function assertDate(date: Date, name: string): void {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw PkiErrors.error('PKI_VALIDITY_INVALID', `${name} must be a valid date`);
  }
}

/**
 * Builds and signs a v2 CRL (RFC 5280 §5): issuer = the CA's subject, thisUpdate/nextUpdate, one entry per revoked
 * serial with its revocation date and reason code (§5.3.1), and the authorityKeyIdentifier (§5.2.1) and cRLNumber
 * (§5.2.3) extensions. Throws `PKI_NOT_A_CA`, `PKI_CA_KEY_USAGE_INVALID` (no cRLSign), `PKI_SIGNER_MISMATCH`,
 * `PKI_VALIDITY_INVALID` (nextUpdate not after thisUpdate), `PKI_SERIAL_NUMBER_INVALID`, `PKI_REVOCATION_REASON_INVALID`
 * or `PKI_CRL_NUMBER_INVALID`.
 */
export function buildCrl(options: BuildCrlOptions): BuiltCrl {
  const { issuerCertificate, signer } = options;
  assertSignerMatchesCa(issuerCertificate, signer, 'cRLSign');
  assertDate(options.thisUpdate, 'thisUpdate');
  assertDate(options.nextUpdate, 'nextUpdate');
  const thisUpdate = truncateToSeconds(options.thisUpdate);
  const nextUpdate = truncateToSeconds(options.nextUpdate);
  if (nextUpdate.getTime() <= thisUpdate.getTime()) {
    throw PkiErrors.error('PKI_VALIDITY_INVALID', 'nextUpdate must be after thisUpdate');
  }
  if (typeof options.crlNumber !== 'bigint' || options.crlNumber < 0n || options.crlNumber >= 1n << 159n) {
    throw PkiErrors.error('PKI_CRL_NUMBER_INVALID', 'crlNumber must be a non-negative integer below 2^159');
  }
  const signatureAlgorithm = signatureAlgorithmIdentifier(signer.algorithm);
  const fields: Buffer[] = [
    VERSION_V2,
    signatureAlgorithm,
    issuerCertificate.subjectNameDer,
    encodeTime(thisUpdate),
    encodeTime(nextUpdate),
  ];
  if (options.entries.length > 0) {
    const revoked = options.entries.map((entry) => {
      assertDate(entry.revokedAt, 'revokedAt');
      const parts = [encodeSerialNumber(entry.serialNumber), encodeTime(truncateToSeconds(entry.revokedAt))];
      if (entry.reason !== undefined && entry.reason !== 'unspecified') {
        const code = REVOCATION_REASONS[entry.reason];
        if (code === undefined) throw PkiErrors.error('PKI_REVOCATION_REASON_INVALID', 'unknown revocation reason');
        const reasonCode = encodeTlv(DerTag.ENUMERATED, Buffer.from([code]));
        parts.push(encodeSequence(encodeExtension(ExtensionOid.reasonCode, false, reasonCode)));
      }
      return encodeSequence(...parts);
    });
    fields.push(encodeSequence(...revoked));
  }
  const keyIdentifier =
    issuerCertificate.subjectKeyIdentifier !== undefined
      ? Buffer.from(issuerCertificate.subjectKeyIdentifier, 'hex')
      : keyIdentifierOf(issuerCertificate.spkiDer);
  fields.push(
    encodeTlv(
      contextTag(0, true),
      encodeSequence(
        authorityKeyIdentifierExtension(keyIdentifier),
        encodeExtension(ExtensionOid.crlNumber, false, encodeInteger(options.crlNumber)),
      ),
    ),
  );
  const tbs = encodeSequence(...fields);
  const der = encodeSequence(tbs, signatureAlgorithm, encodeBitString(signer.sign(tbs)));
  return { der, pem: encodePem('X509 CRL', der) };
}

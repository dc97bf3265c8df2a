import { createHash } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import {
  assertSignerMatchesCa,
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  buildCertificateDer,
  crlDistributionPointsExtension,
  extendedKeyUsageExtension,
  generateSerialNumber,
  keyUsageExtension,
  subjectAltNameExtension,
  subjectKeyIdentifierExtension,
  truncateToSeconds,
} from './certificate-builder.ts';
import type { ParsedCertificate } from './certificate.ts';
import { encodeName, isEmptyName } from './distinguished-name.ts';
import type { DistinguishedName } from './distinguished-name.ts';
import { PkiErrors } from './errors.ts';
import { signatureAlgorithmIdentifier } from './key-algorithm.ts';
import type { Signer } from './key-store.ts';
import { encodePem } from './pem.ts';
import { computeKeyIdentifier, exportSpki, keyIdentifierOf, parseSubjectPublicKeyInfo } from './public-key.ts';

/** Which TLS side an issued certificate may authenticate (extKeyUsage, RFC 5280 §4.2.1.12). */
export type ExtendedKeyUsageProfile = 'clientAuth' | 'serverAuth' | 'both';

/**
 * The validity of a certificate to issue: a number of days from now (or from `notBefore`), or explicit bounds.
 * Times are truncated to whole seconds and `notAfter` is capped at the issuing CA's `notAfter`.
 */
export type CertificateValidity =
  | { readonly validityDays: number; readonly notBefore?: Date }
  | { readonly notBefore: Date; readonly notAfter: Date };

/** Subject alternative names to put in a certificate (dNSName, iPAddress). */
export interface SubjectAltNamesRequest {
  readonly dns?: readonly string[];
  readonly ip?: readonly string[];
}

/** What to issue: the subject's key and name, the validity and the profile choices. */
export type IssueCertificateRequest = CertificateValidity & {
  /** The subject's public key: SubjectPublicKeyInfo DER (fastest; `ParsedCsr.spkiDer`) or a `node:crypto` key. */
  readonly publicKey: KeyObject | Uint8Array;
  /** The subject, from the CSR or overridden by a template. */
  readonly subject: DistinguishedName;
  readonly extendedKeyUsage: ExtendedKeyUsageProfile;
  readonly subjectAltNames?: SubjectAltNamesRequest;
  /** Overrides the issuer's default CRL distribution point for this certificate. */
  readonly crlDistributionPointUrl?: string;
};

/** An issued certificate and what a device needs beside it. */
export interface IssuedCertificate {
  readonly der: Buffer;
  readonly pem: string;
  /** Lower-case hex SHA-256 of the DER (AWS certificateId). */
  readonly certificateId: string;
  /** Lower-case hex, 32 characters (128 random bits). */
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The issuing CA certificate up to the root, PEM. */
  readonly chainPem: readonly string[];
}

/** Issues end-entity certificates from one CA (synchronous: the hot path of every provisioning flow). */
export interface CertificateIssuer {
  readonly caCertificate: ParsedCertificate;
  readonly chainPem: readonly string[];
  /**
   * Issues one certificate. Throws `PKI_VALIDITY_INVALID`, `PKI_ISSUER_EXPIRED`, `PKI_SUBJECT_INVALID`,
   * `PKI_EXTENDED_KEY_USAGE_INVALID`,
   * `PKI_SUBJECT_ALT_NAME_INVALID`, `PKI_URL_INVALID`, `PKI_PUBLIC_KEY_INVALID`, `PKI_KEY_TOO_WEAK` or
   * `PKI_KEY_ALGORITHM_UNSUPPORTED`.
   */
  issue(request: IssueCertificateRequest): IssuedCertificate;
}

/** Options of {@link createCertificateIssuer}. */
export interface CertificateIssuerOptions {
  readonly caCertificate: ParsedCertificate;
  readonly signer: Signer;
  /** The issuing CA certificate first, then its issuers up to the root, PEM. */
  readonly chainPem: readonly string[];
  /** CRL distribution point written into every certificate unless a request overrides it. */
  readonly crlDistributionPointUrl?: string;
  /** Seconds `notBefore` is set back from now to tolerate device clock skew (default 60). */
  readonly backdateSeconds?: number;
  /** Time source (tests). */
  readonly clock?: () => Date;
}

const DAY_MS = 86_400_000;
const MAX_VALIDITY_DAYS = 100 * 366;

/**
 * Creates the issuer of one CA. Everything that is the same for every certificate is encoded once here — the issuer
 * Name, the signature AlgorithmIdentifier, authorityKeyIdentifier, basicConstraints CA:false, the keyUsage and
 * extKeyUsage variants — so `issue` only encodes the serial, validity, subject, key, SKI and SANs, then signs.
 *
 * Profile (RFC 5280 §4.2): v3; basicConstraints CA:false (critical); keyUsage digitalSignature (+ keyEncipherment
 * for RSA keys) (critical); extKeyUsage; subjectKeyIdentifier (SHA-1 of the key, §4.2.1.2 method 1);
 * authorityKeyIdentifier = the CA's key identifier; subjectAltName (critical when the subject is empty);
 * cRLDistributionPoints when configured.
 *
 * Throws `PKI_NOT_A_CA`, `PKI_CA_KEY_USAGE_INVALID` or `PKI_SIGNER_MISMATCH` when the CA and signer do not fit.
 */
export function createCertificateIssuer(options: CertificateIssuerOptions): CertificateIssuer {
  const { caCertificate, signer } = options;
  assertSignerMatchesCa(caCertificate, signer, 'keyCertSign');
  const chainPem = Object.freeze([...options.chainPem]);
  const clock = options.clock ?? ((): Date => new Date());
  const backdateMs = (options.backdateSeconds ?? 60) * 1000;
  const signatureAlgorithmDer = signatureAlgorithmIdentifier(signer.algorithm);
  const issuerNameDer = caCertificate.subjectNameDer;
  const caKeyIdentifier =
    caCertificate.subjectKeyIdentifier !== undefined
      ? Buffer.from(caCertificate.subjectKeyIdentifier, 'hex')
      : keyIdentifierOf(caCertificate.spkiDer);
  const authorityKeyIdentifier = authorityKeyIdentifierExtension(caKeyIdentifier);
  const basicConstraints = basicConstraintsExtension(false);
  const keyUsageEc = keyUsageExtension(['digitalSignature']);
  const keyUsageRsa = keyUsageExtension(['digitalSignature', 'keyEncipherment']);
  const extendedKeyUsages: Record<ExtendedKeyUsageProfile, Buffer> = {
    clientAuth: extendedKeyUsageExtension(['clientAuth']),
    serverAuth: extendedKeyUsageExtension(['serverAuth']),
    both: extendedKeyUsageExtension(['serverAuth', 'clientAuth']),
  };
  const crlExtensions = new Map<string, Buffer>();
  const crlExtensionFor = (url: string | undefined): Buffer | undefined => {
    if (url === undefined) return undefined;
    let extension = crlExtensions.get(url);
    if (extension === undefined) {
      extension = crlDistributionPointsExtension(url);
      if (crlExtensions.size < 64) crlExtensions.set(url, extension);
    }
    return extension;
  };
  crlExtensionFor(options.crlDistributionPointUrl); // validate the default URL now

  function validityOf(request: IssueCertificateRequest, now: Date): { notBefore: Date; notAfter: Date } {
    // Read loosely: requests may come from untyped input (templates, JSON) with absent keys set to undefined.
    const { validityDays, notBefore: requestedNotBefore, notAfter: requestedNotAfter } = request as {
      validityDays?: unknown;
      notBefore?: unknown;
      notAfter?: unknown;
    };
    let notBefore: unknown;
    let notAfter: unknown;
    if (validityDays !== undefined) {
      if (typeof validityDays !== 'number' || !Number.isFinite(validityDays) || validityDays <= 0 || validityDays > MAX_VALIDITY_DAYS) {
        throw PkiErrors.error('PKI_VALIDITY_INVALID', `validityDays must be a positive number of at most ${MAX_VALIDITY_DAYS}`);
      }
      const start = requestedNotBefore instanceof Date ? requestedNotBefore : now;
      notBefore = requestedNotBefore ?? new Date(now.getTime() - backdateMs);
      notAfter = new Date(start.getTime() + validityDays * DAY_MS);
    } else {
      notBefore = requestedNotBefore;
      notAfter = requestedNotAfter;
    }
    if (!(notBefore instanceof Date) || !(notAfter instanceof Date) || Number.isNaN(notBefore.getTime() + notAfter.getTime())) {
      throw PkiErrors.error('PKI_VALIDITY_INVALID', 'notBefore and notAfter must be valid dates');
    }
    // A certificate cannot outlive, nor predate, its issuer (RFC 5280 §6.1.3 checks every certificate of the path).
    const start = truncateToSeconds(notBefore < caCertificate.notBefore ? caCertificate.notBefore : notBefore);
    const end = truncateToSeconds(notAfter > caCertificate.notAfter ? caCertificate.notAfter : notAfter);
    if (end.getTime() <= start.getTime()) {
      throw PkiErrors.error('PKI_VALIDITY_INVALID', 'notAfter must be after notBefore (within the CA validity)');
    }
    return { notBefore: start, notAfter: end };
  }

  function issue(request: IssueCertificateRequest): IssuedCertificate {
    const now = clock();
    if (now.getTime() > caCertificate.notAfter.getTime() || now.getTime() < caCertificate.notBefore.getTime()) {
      throw PkiErrors.error('PKI_ISSUER_EXPIRED', 'the issuing CA certificate is not valid now');
    }
    const { notBefore, notAfter } = validityOf(request, now);
    const spki = parseSubjectPublicKeyInfo(
      request.publicKey instanceof Uint8Array ? request.publicKey : exportSpki(request.publicKey),
    );
    const subjectEmpty = isEmptyName(request.subject);
    const subjectNameDer = encodeName(request.subject);
    const subjectAltName =
      request.subjectAltNames === undefined ? undefined : subjectAltNameExtension(request.subjectAltNames, subjectEmpty);
    if (subjectEmpty && subjectAltName === undefined) {
      throw PkiErrors.error('PKI_SUBJECT_INVALID', 'a certificate needs a subject or a subject alternative name');
    }
    const extendedKeyUsage = extendedKeyUsages[request.extendedKeyUsage];
    if (extendedKeyUsage === undefined) {
      throw PkiErrors.error('PKI_EXTENDED_KEY_USAGE_INVALID', 'extendedKeyUsage must be clientAuth, serverAuth or both');
    }
    const extensions: Buffer[] = [
      basicConstraints,
      spki.algorithm.type === 'RSA' ? keyUsageRsa : keyUsageEc,
      extendedKeyUsage,
      subjectKeyIdentifierExtension(computeKeyIdentifier(spki.subjectPublicKey)),
      authorityKeyIdentifier,
    ];
    if (subjectAltName !== undefined) extensions.push(subjectAltName);
    const crl = crlExtensionFor(request.crlDistributionPointUrl ?? options.crlDistributionPointUrl);
    if (crl !== undefined) extensions.push(crl);

    const serial = generateSerialNumber();
    const der = buildCertificateDer(
      {
        serialNumberDer: serial.der,
        signatureAlgorithmDer,
        issuerNameDer,
        notBefore,
        notAfter,
        subjectNameDer,
        spkiDer: spki.der,
        extensions,
      },
      signer,
    );
    return {
      der,
      pem: encodePem('CERTIFICATE', der),
      certificateId: createHash('sha256').update(der).digest('hex'),
      serialNumber: serial.hex,
      notBefore,
      notAfter,
      chainPem,
    };
  }

  return { caCertificate, chainPem, issue };
}

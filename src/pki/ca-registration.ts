import { randomBytes, timingSafeEqual } from 'node:crypto';
import { assertCertificateTimeValid, loadCertificate } from './certificate.ts';
import type { ParsedCertificate } from './certificate.ts';
import { PkiErrors } from './errors.ts';
import { parseSubjectPublicKeyInfo } from './public-key.ts';

/**
 * How a bring-your-own CA is registered (AWS IoT `RegisterCACertificate`): DEFAULT proves possession of the CA key
 * with a verification certificate; SNI_ONLY takes none, and devices must then send SNI.
 */
export type CaRegistrationMode = 'DEFAULT' | 'SNI_ONLY';

/** Generates a registration code: 64 lower-case hex characters (256 random bits), like AWS `GetRegistrationCode`. */
export function generateRegistrationCode(): string {
  return randomBytes(32).toString('hex');
}

/** Options of {@link verifyCaCertificateForRegistration}. */
export interface VerifyCaRegistrationOptions {
  readonly caCertificatePem: string;
  /** Required in DEFAULT mode: a certificate whose CN is the registration code, signed by the CA key. */
  readonly verificationCertificatePem?: string | undefined;
  /** Required in DEFAULT mode: the code handed out by {@link generateRegistrationCode}. */
  readonly registrationCode?: string | undefined;
  readonly mode: CaRegistrationMode;
  readonly now: Date;
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * Verifies a CA certificate offered for registration (protocols.md "AWS CA registration"; RFC 5280 §4.2.1.9):
 * - it is a CA: basicConstraints CA:true (`PKI_NOT_A_CA`) and keyCertSign when keyUsage is present
 *   (`PKI_CA_KEY_USAGE_INVALID`), with a supported, strong key (`PKI_KEY_TOO_WEAK`, `PKI_KEY_ALGORITHM_UNSUPPORTED`);
 * - it is valid at `now` (`PKI_CERTIFICATE_EXPIRED`, `PKI_CERTIFICATE_NOT_YET_VALID`);
 * - it is self-consistent: a self-signed certificate verifies with its own key (`PKI_CERTIFICATE_SIGNATURE_INVALID`);
 * - in DEFAULT mode, proof of possession: a verification certificate is given
 *   (`PKI_VERIFICATION_CERTIFICATE_REQUIRED`, `PKI_REGISTRATION_CODE_REQUIRED`), valid at `now`, whose CN is the
 *   registration code (`PKI_REGISTRATION_CODE_MISMATCH`) and which is signed by the CA's key
 *   (`PKI_PROOF_OF_POSSESSION_FAILED`).
 * Returns the parsed CA certificate.
 */
export function verifyCaCertificateForRegistration(options: VerifyCaRegistrationOptions): ParsedCertificate {
  const caCertificate = loadCertificate(options.caCertificatePem);
  if (!caCertificate.isCa) {
    throw PkiErrors.error('PKI_NOT_A_CA', 'the certificate is not a CA certificate (basicConstraints CA:true missing)');
  }
  if (caCertificate.keyUsage !== undefined && !caCertificate.keyUsage.includes('keyCertSign')) {
    throw PkiErrors.error('PKI_CA_KEY_USAGE_INVALID', "the CA certificate's keyUsage lacks keyCertSign");
  }
  parseSubjectPublicKeyInfo(caCertificate.spkiDer);
  assertCertificateTimeValid(caCertificate, options.now);
  const selfSigned =
    caCertificate.isSelfIssued &&
    (caCertificate.authorityKeyIdentifier === undefined ||
      caCertificate.authorityKeyIdentifier === caCertificate.subjectKeyIdentifier);
  if (selfSigned && !caCertificate.x509.verify(caCertificate.publicKey)) {
    throw PkiErrors.error('PKI_CERTIFICATE_SIGNATURE_INVALID', 'the self-signed CA certificate does not verify with its own key');
  }
  if (options.mode === 'SNI_ONLY') return caCertificate;

  if (options.verificationCertificatePem === undefined || options.verificationCertificatePem === '') {
    throw PkiErrors.error('PKI_VERIFICATION_CERTIFICATE_REQUIRED', 'DEFAULT mode needs a verification certificate');
  }
  if (options.registrationCode === undefined || options.registrationCode === '') {
    throw PkiErrors.error('PKI_REGISTRATION_CODE_REQUIRED', 'DEFAULT mode needs the registration code');
  }
  const verificationCertificate = loadCertificate(options.verificationCertificatePem);
  assertCertificateTimeValid(verificationCertificate, options.now);
  const commonNames = verificationCertificate.subject.CN ?? [];
  const registrationCode = options.registrationCode;
  if (commonNames.length !== 1 || !sameText(commonNames[0] ?? '', registrationCode)) {
    throw PkiErrors.error(
      'PKI_REGISTRATION_CODE_MISMATCH',
      "the verification certificate's common name is not the registration code",
    );
  }
  if (!verificationCertificate.x509.verify(caCertificate.publicKey)) {
    throw PkiErrors.error(
      'PKI_PROOF_OF_POSSESSION_FAILED',
      'the verification certificate is not signed by the CA certificate’s key',
    );
  }
  return caCertificate;
}

import { verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { assertCertificateTimeValid } from './certificate.ts';
import type { ParsedCertificate } from './certificate.ts';
import type { GatehouseError } from '../errors/index.ts';
import { isGatehouseError } from '../errors/index.ts';
import { PkiErrors } from './errors.ts';

/** Options of {@link verifyCertificateChain}. */
export interface VerifyCertificateChainOptions {
  /** The certificate to authenticate (a device certificate). It is never its own anchor. */
  readonly leaf: ParsedCertificate;
  /** Untrusted certificates that may complete the path (as sent by the device), in any order. */
  readonly intermediates: readonly ParsedCertificate[];
  /** Trusted CAs: registered or owned CA certificates. An anchor may be an intermediate CA. */
  readonly anchors: readonly ParsedCertificate[];
  readonly now: Date;
  /** Revocation check, called for every certificate of a candidate path except the anchor. */
  readonly isRevoked?: (certificate: ParsedCertificate) => boolean;
}

/** A verified certification path. */
export interface VerifiedChain {
  /** Leaf first, anchor last. */
  readonly path: readonly ParsedCertificate[];
  readonly anchor: ParsedCertificate;
}

/** Longest path tried, anchor included. */
const MAX_PATH_LENGTH = 8;

function mayHaveIssued(child: ParsedCertificate, candidate: ParsedCertificate): boolean {
  // Key identifiers disambiguate CAs that share a name (key rollover); they never prove anything by themselves.
  if (
    child.authorityKeyIdentifier !== undefined &&
    candidate.subjectKeyIdentifier !== undefined &&
    child.authorityKeyIdentifier !== candidate.subjectKeyIdentifier
  ) {
    return false;
  }
  // Byte-identical names first; OpenSSL's canonical comparison (case, spaces) as a fallback.
  return child.issuerNameDer.equals(candidate.subjectNameDer) || child.x509.checkIssued(candidate.x509);
}

/** Signature algorithms checked with `crypto.verify` on the parsed parts: the digest and the key type they need. */
const SIGNATURE_ALGORITHMS: ReadonlyMap<string, { readonly digest: string | null; readonly keyType: string }> = new Map([
  ['1.2.840.10045.4.3.2', { digest: 'sha256', keyType: 'ec' }], // ecdsa-with-SHA256
  ['1.2.840.10045.4.3.3', { digest: 'sha384', keyType: 'ec' }], // ecdsa-with-SHA384
  ['1.2.840.10045.4.3.4', { digest: 'sha512', keyType: 'ec' }], // ecdsa-with-SHA512
  ['1.2.840.113549.1.1.11', { digest: 'sha256', keyType: 'rsa' }], // sha256WithRSAEncryption
  ['1.2.840.113549.1.1.12', { digest: 'sha384', keyType: 'rsa' }], // sha384WithRSAEncryption
  ['1.2.840.113549.1.1.13', { digest: 'sha512', keyType: 'rsa' }], // sha512WithRSAEncryption
  ['1.3.101.112', { digest: null, keyType: 'ed25519' }], // Ed25519
]);

/**
 * True when `issuerKey` signed `certificate`. The common algorithms (ECDSA, RSA PKCS#1 v1.5 with SHA-2, Ed25519) are
 * checked with `crypto.verify` over the TBSCertificate Gatehouse's DER reader kept, which spares building OpenSSL's
 * certificate object (about 0.25–0.35 ms in Node 20, several times the verification itself: it mattered on the JITP
 * path, where every device certificate is new). Any other algorithm (RSA-PSS, SHA-1, …) goes to OpenSSL's
 * `X509Certificate.verify`. Outer and inner algorithm identifiers must be identical, as OpenSSL also requires.
 */
export function verifyCertificateSignature(certificate: ParsedCertificate, issuerKey: KeyObject): boolean {
  const signed = certificate.signed;
  if (!signed.algorithmsMatch) return false;
  const algorithm = SIGNATURE_ALGORITHMS.get(signed.algorithmOid);
  if (algorithm === undefined) return certificate.x509.verify(issuerKey);
  if (issuerKey.asymmetricKeyType !== algorithm.keyType || signed.signatureUnusedBits !== 0) return false;
  try {
    return cryptoVerify(algorithm.digest, signed.tbsDer, algorithm.keyType === 'ec' ? { key: issuerKey, dsaEncoding: 'der' } : issuerKey, signed.signature);
  } catch {
    return false;
  }
}

function detailsOf(certificate: ParsedCertificate, position: number): Record<string, unknown> {
  return { certificateId: certificate.certificateId, position };
}

/** Checks one candidate path (leaf first, anchor last) against RFC 5280 §6.1 basic path validation rules. */
function checkPath(
  path: readonly ParsedCertificate[],
  now: Date,
  isRevoked: ((certificate: ParsedCertificate) => boolean) | undefined,
): void {
  for (let i = 1; i < path.length; i++) {
    const issuer = path[i] as ParsedCertificate;
    if (!issuer.isCa) {
      throw PkiErrors.error('PKI_CHAIN_NOT_CA', 'a certificate used as an issuer is not a CA', {
        details: detailsOf(issuer, i),
      });
    }
    if (issuer.keyUsage !== undefined && !issuer.keyUsage.includes('keyCertSign')) {
      throw PkiErrors.error('PKI_CHAIN_KEY_USAGE', 'a certificate used as an issuer lacks the keyCertSign usage', {
        details: detailsOf(issuer, i),
      });
    }
    // pathLenConstraint: the number of intermediate CA certificates that may follow this one (§4.2.1.9).
    if (issuer.pathLength !== undefined && i - 1 > issuer.pathLength) {
      throw PkiErrors.error('PKI_CHAIN_PATH_LENGTH_EXCEEDED', 'the chain exceeds an issuer’s pathLenConstraint', {
        details: { ...detailsOf(issuer, i), pathLength: issuer.pathLength },
      });
    }
  }
  path.forEach((certificate, i) => assertCertificateTimeValid(certificate, now, { position: i }));
  if (isRevoked !== undefined) {
    for (let i = 0; i < path.length - 1; i++) {
      const certificate = path[i] as ParsedCertificate;
      if (isRevoked(certificate)) {
        throw PkiErrors.error('PKI_CERTIFICATE_REVOKED', 'a certificate of the chain is revoked', {
          details: detailsOf(certificate, i),
        });
      }
    }
  }
}

/**
 * Builds and validates a certification path from `leaf` to one of `anchors` (RFC 5280 §6.1): at every step the
 * issuer's subject matches the child's issuer name, the child's signature verifies with the issuer's key (OpenSSL
 * does the signature work), every certificate is valid at `now`, every issuer is a CA with keyCertSign, pathLen
 * constraints hold, and no certificate but the anchor is revoked. Alternative issuers (cross-signing, rollover) are
 * tried depth first; the first fully valid path wins.
 *
 * Throws, most specific first: the path check's own code when a signature-valid path to an anchor fails a rule
 * (`PKI_CERTIFICATE_EXPIRED`, `PKI_CERTIFICATE_NOT_YET_VALID`, `PKI_CHAIN_NOT_CA`, `PKI_CHAIN_KEY_USAGE`,
 * `PKI_CHAIN_PATH_LENGTH_EXCEEDED`, `PKI_CERTIFICATE_REVOKED`); else `PKI_CHAIN_SIGNATURE_INVALID` when a named
 * issuer did not sign; else `PKI_CHAIN_UNTRUSTED`.
 */
export function verifyCertificateChain(options: VerifyCertificateChainOptions): VerifiedChain {
  const anchorIds = new Set(options.anchors.map((anchor) => anchor.certificateId));
  const candidates = [...options.anchors, ...options.intermediates.filter((c) => !anchorIds.has(c.certificateId))];
  let pathError: GatehouseError | undefined;
  let signatureFailure = false;

  const extend = (path: ParsedCertificate[]): VerifiedChain | undefined => {
    if (path.length >= MAX_PATH_LENGTH) return undefined;
    const current = path[path.length - 1] as ParsedCertificate;
    for (const candidate of candidates) {
      if (path.some((certificate) => certificate.certificateId === candidate.certificateId)) continue;
      if (!mayHaveIssued(current, candidate)) continue;
      if (!verifyCertificateSignature(current, candidate.publicKey)) {
        signatureFailure = true;
        continue;
      }
      const next = [...path, candidate];
      if (anchorIds.has(candidate.certificateId)) {
        try {
          checkPath(next, options.now, options.isRevoked);
          return { path: next, anchor: candidate };
        } catch (error) {
          if (!isGatehouseError(error)) throw error;
          pathError ??= error;
          continue;
        }
      }
      const found = extend(next);
      if (found !== undefined) return found;
    }
    return undefined;
  };

  const found = extend([options.leaf]);
  if (found !== undefined) return found;
  if (pathError !== undefined) throw pathError;
  if (signatureFailure) {
    throw PkiErrors.error('PKI_CHAIN_SIGNATURE_INVALID', 'a certificate is not signed by the issuer it names', {
      details: { certificateId: options.leaf.certificateId },
    });
  }
  throw PkiErrors.error('PKI_CHAIN_UNTRUSTED', 'the certificate was not issued by a trusted CA', {
    details: { certificateId: options.leaf.certificateId },
  });
}

import {
  assertSignerMatchesCa,
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  buildCertificateDer,
  crlDistributionPointsExtension,
  generateSerialNumber,
  keyUsageExtension,
  subjectKeyIdentifierExtension,
  truncateToSeconds,
} from './certificate-builder.ts';
import type { CertificateIssuer, IssuedCertificate } from './certificate-issuer.ts';
import { loadCertificate } from './certificate.ts';
import type { ParsedCertificate } from './certificate.ts';
import { encodeName } from './distinguished-name.ts';
import type { DistinguishedName } from './distinguished-name.ts';
import { PkiErrors } from './errors.ts';
import { signatureAlgorithmIdentifier } from './key-algorithm.ts';
import type { KeyAlgorithm } from './key-algorithm.ts';
import { generateKeyPair } from './key-pair.ts';
import type { KeyStore, Signer } from './key-store.ts';
import { exportSpki, keyIdentifierOf } from './public-key.ts';

/** A CA created by Gatehouse: its certificate and the reference of its key in the key store. */
export interface CaMaterial {
  readonly certificate: ParsedCertificate;
  readonly keyRef: string;
}

/** Options of {@link createRootCa}. */
export interface CreateRootCaOptions {
  readonly keyStore: KeyStore;
  readonly commonName: string;
  /** Default `EC_P256`. */
  readonly keyAlgorithm?: KeyAlgorithm;
  /** Default 3650. */
  readonly validityDays?: number;
  /** basicConstraints pathLenConstraint; unlimited when absent. */
  readonly pathLength?: number;
  /** Further subject attributes (O, OU, C, …); `commonName` sets CN. */
  readonly subject?: DistinguishedName;
  /** Issuance time (tests); default now. */
  readonly now?: Date;
}

/** Options of {@link createIntermediateCa}. */
export interface CreateIntermediateCaOptions {
  readonly keyStore: KeyStore;
  readonly issuerCertificate: ParsedCertificate;
  readonly issuerSigner: Signer;
  readonly commonName: string;
  /** Default `EC_P256`. */
  readonly keyAlgorithm?: KeyAlgorithm;
  /** Default 1825; capped at the issuer's notAfter. */
  readonly validityDays?: number;
  /** basicConstraints pathLenConstraint; default 0 (issues end-entity certificates only). */
  readonly pathLength?: number;
  /** cRLDistributionPoints of the intermediate: where the issuer's CRL is published. */
  readonly crlDistributionPointUrl?: string;
  readonly subject?: DistinguishedName;
  readonly now?: Date;
}

const DAY_MS = 86_400_000;
const BACKDATE_MS = 60_000;
const CA_KEY_USAGE = keyUsageExtension(['keyCertSign', 'cRLSign']);

function assertPathLength(pathLength: number | undefined): void {
  if (pathLength !== undefined && (!Number.isInteger(pathLength) || pathLength < 0 || pathLength > 32)) {
    throw PkiErrors.error('PKI_CHAIN_PATH_LENGTH_EXCEEDED', 'pathLength must be an integer from 0 to 32');
  }
}

function assertValidityDays(days: number): void {
  if (!Number.isFinite(days) || days <= 0 || days > 100 * 366) {
    throw PkiErrors.error('PKI_VALIDITY_INVALID', 'validityDays must be a positive number of days');
  }
}

async function withNewKey(
  keyStore: KeyStore,
  algorithm: KeyAlgorithm,
  build: (keyRef: string, spkiDer: Buffer, signer: Signer) => Buffer,
): Promise<CaMaterial> {
  const { keyRef, publicKey } = await keyStore.generateKey(algorithm);
  try {
    const signer = await keyStore.getSigner(keyRef);
    return { certificate: loadCertificate(build(keyRef, exportSpki(publicKey), signer)), keyRef };
  } catch (error) {
    await keyStore.deleteKey(keyRef).catch(() => undefined);
    throw error;
  }
}

/**
 * Creates a self-signed root CA (RFC 5280 §4.2.1.9, §4.2.1.3): a new key in the key store, basicConstraints CA:true
 * (critical, with pathLen when given), keyUsage keyCertSign + cRLSign (critical), subject and authority key
 * identifiers. `notBefore` is set back one minute for clock skew.
 */
export async function createRootCa(options: CreateRootCaOptions): Promise<CaMaterial> {
  const keyAlgorithm = options.keyAlgorithm ?? 'EC_P256';
  const validityDays = options.validityDays ?? 3650;
  assertPathLength(options.pathLength);
  assertValidityDays(validityDays);
  const now = options.now ?? new Date();
  const nameDer = encodeName({ ...options.subject, CN: [options.commonName] });
  return withNewKey(options.keyStore, keyAlgorithm, (_keyRef, spkiDer, signer) => {
    const keyIdentifier = keyIdentifierOf(spkiDer);
    return buildCertificateDer(
      {
        serialNumberDer: generateSerialNumber().der,
        signatureAlgorithmDer: signatureAlgorithmIdentifier(signer.algorithm),
        issuerNameDer: nameDer,
        notBefore: truncateToSeconds(new Date(now.getTime() - BACKDATE_MS)),
        notAfter: truncateToSeconds(new Date(now.getTime() + validityDays * DAY_MS)),
        subjectNameDer: nameDer,
        spkiDer,
        extensions: [
          basicConstraintsExtension(true, options.pathLength),
          CA_KEY_USAGE,
          subjectKeyIdentifierExtension(keyIdentifier),
          authorityKeyIdentifierExtension(keyIdentifier),
        ],
      },
      signer,
    );
  });
}

/**
 * Creates an intermediate CA signed by `issuerCertificate` with `issuerSigner`: a new key in the key store,
 * basicConstraints CA:true with pathLen (default 0), keyUsage keyCertSign + cRLSign, SKI, AKI = the issuer's key
 * identifier, and the issuer's CRL distribution point when given. Validity is capped at the issuer's notAfter.
 * Throws `PKI_NOT_A_CA`, `PKI_CA_KEY_USAGE_INVALID`, `PKI_SIGNER_MISMATCH`, `PKI_ISSUER_EXPIRED`, or
 * `PKI_CHAIN_PATH_LENGTH_EXCEEDED` when the issuer's pathLenConstraint leaves no room for another CA.
 */
export async function createIntermediateCa(options: CreateIntermediateCaOptions): Promise<CaMaterial> {
  const { issuerCertificate, issuerSigner } = options;
  const keyAlgorithm = options.keyAlgorithm ?? 'EC_P256';
  const validityDays = options.validityDays ?? 1825;
  const pathLength = options.pathLength ?? 0;
  assertPathLength(pathLength);
  assertValidityDays(validityDays);
  assertSignerMatchesCa(issuerCertificate, issuerSigner, 'keyCertSign');
  if (issuerCertificate.pathLength !== undefined && pathLength >= issuerCertificate.pathLength) {
    throw PkiErrors.error(
      'PKI_CHAIN_PATH_LENGTH_EXCEEDED',
      `the issuer's pathLenConstraint (${issuerCertificate.pathLength}) does not allow an intermediate with pathLength ${pathLength}`,
    );
  }
  const now = options.now ?? new Date();
  if (now > issuerCertificate.notAfter || now < issuerCertificate.notBefore) {
    throw PkiErrors.error('PKI_ISSUER_EXPIRED', 'the issuing CA certificate is not valid now');
  }
  const crlExtension =
    options.crlDistributionPointUrl === undefined ? undefined : crlDistributionPointsExtension(options.crlDistributionPointUrl);
  const issuerKeyIdentifier =
    issuerCertificate.subjectKeyIdentifier !== undefined
      ? Buffer.from(issuerCertificate.subjectKeyIdentifier, 'hex')
      : keyIdentifierOf(issuerCertificate.spkiDer);
  const subjectNameDer = encodeName({ ...options.subject, CN: [options.commonName] });
  let notBefore = new Date(now.getTime() - BACKDATE_MS);
  if (notBefore < issuerCertificate.notBefore) notBefore = issuerCertificate.notBefore;
  let notAfter = new Date(now.getTime() + validityDays * DAY_MS);
  if (notAfter > issuerCertificate.notAfter) notAfter = issuerCertificate.notAfter;
  return withNewKey(options.keyStore, keyAlgorithm, (_keyRef, spkiDer) => {
    const extensions = [
      basicConstraintsExtension(true, pathLength),
      CA_KEY_USAGE,
      subjectKeyIdentifierExtension(keyIdentifierOf(spkiDer)),
      authorityKeyIdentifierExtension(issuerKeyIdentifier),
    ];
    if (crlExtension !== undefined) extensions.push(crlExtension);
    return buildCertificateDer(
      {
        serialNumberDer: generateSerialNumber().der,
        signatureAlgorithmDer: signatureAlgorithmIdentifier(issuerSigner.algorithm),
        issuerNameDer: issuerCertificate.subjectNameDer,
        notBefore: truncateToSeconds(notBefore),
        notAfter: truncateToSeconds(notAfter),
        subjectNameDer,
        spkiDer,
        extensions,
      },
      issuerSigner,
    );
  });
}

/** Options of {@link createServerCertificate}. */
export interface CreateServerCertificateOptions {
  readonly issuer: CertificateIssuer;
  /** DNS names besides the defaults `localhost` and `*.localhost`. */
  readonly dnsNames?: readonly string[];
  /** IP addresses besides the defaults `127.0.0.1` and `::1`. */
  readonly ipAddresses?: readonly string[];
  /** Default: the first configured DNS name, else `localhost`. */
  readonly commonName?: string;
  /** Default `EC_P256`. */
  readonly keyAlgorithm?: KeyAlgorithm;
  /** Default 397 (the CA/Browser Forum maximum). */
  readonly validityDays?: number;
}

/** A TLS listener's certificate and its private key (PKCS#8 PEM, for `node:tls`). */
export interface ServerCertificate {
  readonly certificate: IssuedCertificate;
  readonly privateKeyPem: string;
}

/**
 * Issues a TLS server certificate for Gatehouse's own listeners: a fresh key pair, extKeyUsage serverAuth, and
 * subjectAltName DNS `localhost`, `*.localhost`, the configured names, IP `127.0.0.1`, `::1` and the configured
 * addresses.
 */
export function createServerCertificate(options: CreateServerCertificateOptions): ServerCertificate {
  const dnsNames = [...new Set(['localhost', '*.localhost', ...(options.dnsNames ?? [])])];
  const ipAddresses = [...new Set(['127.0.0.1', '::1', ...(options.ipAddresses ?? [])])];
  const keyPair = generateKeyPair(options.keyAlgorithm ?? 'EC_P256');
  const certificate = options.issuer.issue({
    publicKey: keyPair.spkiDer,
    subject: { CN: [options.commonName ?? options.dnsNames?.[0] ?? 'localhost'] },
    validityDays: options.validityDays ?? 397,
    extendedKeyUsage: 'serverAuth',
    subjectAltNames: { dns: dnsNames, ip: ipAddresses },
  });
  return { certificate, privateKeyPem: keyPair.privateKeyPem };
}

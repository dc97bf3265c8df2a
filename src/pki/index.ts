/**
 * The PKI of Gatehouse (architecture.md `src/pki`): CA keys (encrypted or PKCS#11), the CA hierarchy, issuing from
 * CSRs, key pairs for the development flow, proof of possession of a bring-your-own CA, chain checks, CRLs,
 * fingerprints. Pure functions and small interfaces; no HTTP, MQTT, database or environment access.
 */
export { PkiErrors, type PkiErrorCode } from './errors.ts';

// Keys
export {
  KEY_ALGORITHMS,
  hashOf,
  isKeyAlgorithm,
  keyAlgorithmOf,
  type KeyAlgorithm,
} from './key-algorithm.ts';
export type { GeneratedKey, KeyStore, Signer } from './key-store.ts';
export {
  EncryptedKeyStore,
  InMemoryKeyBlobRepository,
  type EncryptedKeyStoreOptions,
  type KeyBlobRepository,
} from './encrypted-key-store.ts';
export { Pkcs11KeyStore, type Pkcs11KeyStoreOptions } from './pkcs11-key-store.ts';
export { KEK_LENGTH, generateKek, parseKek } from './kek.ts';
export { isSealedText, openSealedPrivateKey, openSealedText, sealPrivateKey, sealText } from './kek-envelope.ts';
export { createKeyObjectSigner } from './key-object-signer.ts';
export { generateKeyPair, type GeneratedKeyPair } from './key-pair.ts';
export { keyIdentifierOf, type SubjectKeyAlgorithm } from './public-key.ts';

// Encodings, names, certificates, CSRs
export { decodePemBlocks, encodePem, splitPemChain, type PemBlock } from './pem.ts';
export {
  DISTINGUISHED_NAME_ATTRIBUTES,
  formatDistinguishedName,
  type DistinguishedName,
  type DistinguishedNameAttribute,
} from './distinguished-name.ts';
export {
  EXTENDED_KEY_USAGE_OIDS,
  KEY_USAGES,
  MAX_CERTIFICATE_BYTES,
  assertCertificateTimeValid,
  certificateIdOf,
  loadCertificate,
  parseCertificate,
  type KeyUsage,
  type ParsedCertificate,
  type SubjectAltNames,
} from './certificate.ts';
export {
  MAX_CSR_DER_LENGTH,
  MAX_CSR_PEM_LENGTH,
  createCsr,
  createCsrDer,
  parseCsr,
  type CreateCsrOptions,
  type ParsedCsr,
} from './csr.ts';

// Issuing and CAs
export {
  createCertificateIssuer,
  type CertificateIssuer,
  type CertificateIssuerOptions,
  type CertificateValidity,
  type ExtendedKeyUsageProfile,
  type IssueCertificateRequest,
  type IssuedCertificate,
  type SubjectAltNamesRequest,
} from './certificate-issuer.ts';
export {
  createIntermediateCa,
  createRootCa,
  createServerCertificate,
  type CaMaterial,
  type CreateIntermediateCaOptions,
  type CreateRootCaOptions,
  type CreateServerCertificateOptions,
  type ServerCertificate,
} from './certificate-authority.ts';
export {
  generateRegistrationCode,
  verifyCaCertificateForRegistration,
  type CaRegistrationMode,
  type VerifyCaRegistrationOptions,
} from './ca-registration.ts';

// Trust and revocation
export {
  verifyCertificateChain,
  verifyCertificateSignature,
  type VerifiedChain,
  type VerifyCertificateChainOptions,
} from './chain.ts';
export {
  REVOCATION_REASONS,
  buildCrl,
  isRevocationReason,
  type BuildCrlOptions,
  type BuiltCrl,
  type CrlEntry,
  type RevocationReason,
} from './crl.ts';
export { buildCertsOnlyPkcs7 } from './pkcs7.ts';
export { readCrl, crlSerialKey, type ReadCrl } from './crl-reader.ts';

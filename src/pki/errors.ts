import { defineErrors } from '../errors/index.ts';

/**
 * Every error code the PKI raises (style.md rule 6). Codes are stable forever; messages are safe to show and never
 * carry key material. Kinds: parse and policy failures of caller input are `invalid` — a chain that does not verify
 * too, since it is a property of the certificate presented (the gateway maps these codes to its own CONNACK codes,
 * the API to 400) — and broken key storage is `unavailable` or `internal`.
 */
export const PkiErrors = defineErrors({
  // --- encodings -------------------------------------------------------------------------------------------------
  PKI_PEM_MALFORMED: {
    kind: 'invalid',
    description: 'The PEM text is malformed: no complete BEGIN/END block, or the body is not valid base64.',
  },
  PKI_PEM_UNEXPECTED_LABEL: {
    kind: 'invalid',
    description: 'The PEM block has the wrong label (for example a private key where a certificate was expected).',
  },
  PKI_PEM_MULTIPLE_BLOCKS: {
    kind: 'invalid',
    description: 'Exactly one PEM block was expected but several were given.',
  },
  PKI_CERTIFICATE_MALFORMED: {
    kind: 'invalid',
    description: 'The certificate is not a well-formed DER X.509 v3 certificate (RFC 5280 §4.1).',
  },
  PKI_CERTIFICATE_TOO_LARGE: {
    kind: 'too_large',
    description: 'The certificate is larger than the accepted maximum (64 KiB).',
  },
  PKI_CSR_MALFORMED: {
    kind: 'invalid',
    description: 'The certificate signing request is not a well-formed PKCS#10 request (RFC 2986).',
  },
  PKI_CSR_TOO_LARGE: {
    kind: 'too_large',
    description: 'The certificate signing request is larger than 16 KiB of PEM (12 KiB of DER).',
  },
  PKI_CSR_SIGNATURE_INVALID: {
    kind: 'invalid',
    description: 'The signature of the certificate signing request does not verify with the key it contains.',
  },
  PKI_SIGNATURE_ALGORITHM_UNSUPPORTED: {
    kind: 'invalid',
    description:
      'The signature algorithm is not supported (ECDSA or RSA PKCS#1 v1.5 with SHA-256, SHA-384 or SHA-512 only).',
  },
  PKI_KEY_TOO_WEAK: {
    kind: 'invalid',
    description: 'The public key is too weak: RSA keys must have at least 2048 bits.',
  },
  PKI_KEY_ALGORITHM_UNSUPPORTED: {
    kind: 'invalid',
    description:
      'The public key algorithm or curve is not supported (EC P-256, P-384, P-521 or RSA 2048–8192 bits).',
  },
  PKI_PUBLIC_KEY_INVALID: {
    kind: 'invalid',
    description: 'The public key is malformed (bad SubjectPublicKeyInfo, or an EC point that is not on the curve).',
  },
  PKI_SUBJECT_INVALID: {
    kind: 'invalid',
    description:
      'The subject distinguished name is invalid (empty with no subject alternative name, a bad country code, or an empty or overlong value).',
  },
  PKI_SUBJECT_ALT_NAME_INVALID: {
    kind: 'invalid',
    description: 'A subject alternative name is invalid (not a DNS name, or not an IPv4/IPv6 address).',
  },
  PKI_EXTENDED_KEY_USAGE_INVALID: {
    kind: 'invalid',
    description: 'The extended key usage profile must be clientAuth, serverAuth or both.',
  },
  PKI_VALIDITY_INVALID: {
    kind: 'invalid',
    description: 'The requested validity period or update times are invalid (end not after start, or not a date).',
  },
  PKI_SERIAL_NUMBER_INVALID: {
    kind: 'invalid',
    description: 'The serial number is not a positive hexadecimal integer of at most 20 octets (RFC 5280 §4.1.2.2).',
  },
  PKI_REVOCATION_REASON_INVALID: {
    kind: 'invalid',
    description: 'The revocation reason is not a CRLReason name of RFC 5280 §5.3.1.',
  },
  PKI_CRL_INVALID: {
    kind: 'invalid',
    description: 'A CRL supplied to Gatehouse cannot be parsed, or is not signed by the CA it is registered for.',
  },
  PKI_CRL_NUMBER_INVALID: {
    kind: 'invalid',
    description: 'The CRL number must be a non-negative integer of at most 20 octets (RFC 5280 §5.2.3).',
  },
  PKI_URL_INVALID: {
    kind: 'invalid',
    description: 'The URL (for example the CRL distribution point) is not an absolute ASCII http(s) URL.',
  },

  // --- certificate authorities --------------------------------------------------------------------------------------
  PKI_NOT_A_CA: {
    kind: 'invalid',
    description: 'The certificate is not a CA certificate: basicConstraints with CA:true is missing (RFC 5280 §4.2.1.9).',
  },
  PKI_CA_KEY_USAGE_INVALID: {
    kind: 'invalid',
    description: 'The CA certificate’s keyUsage does not allow the operation (keyCertSign to issue, cRLSign for CRLs).',
  },
  PKI_CERTIFICATE_SIGNATURE_INVALID: {
    kind: 'invalid',
    description: 'The self-signed certificate’s signature does not verify with its own public key.',
  },
  PKI_SIGNER_MISMATCH: {
    kind: 'internal',
    description: 'The signing key does not belong to the issuing CA certificate.',
  },
  PKI_ISSUER_EXPIRED: {
    kind: 'unavailable',
    description: 'The issuing CA certificate is expired or not yet valid, so it cannot issue certificates now.',
  },
  PKI_CERTIFICATE_EXPIRED: {
    kind: 'invalid',
    description: 'The certificate has expired (its notAfter is in the past).',
  },
  PKI_CERTIFICATE_NOT_YET_VALID: {
    kind: 'invalid',
    description: 'The certificate is not yet valid (its notBefore is in the future).',
  },

  // --- CA registration (proof of possession) ------------------------------------------------------------------------
  PKI_VERIFICATION_CERTIFICATE_REQUIRED: {
    kind: 'invalid',
    description: 'DEFAULT mode registration needs a verification certificate signed by the CA key.',
  },
  PKI_REGISTRATION_CODE_REQUIRED: {
    kind: 'invalid',
    description: 'DEFAULT mode registration needs the registration code that was handed out.',
  },
  PKI_REGISTRATION_CODE_MISMATCH: {
    kind: 'invalid',
    description: 'The verification certificate’s common name is not the registration code.',
  },
  PKI_PROOF_OF_POSSESSION_FAILED: {
    kind: 'invalid',
    description: 'The verification certificate is not signed by the CA certificate’s key.',
  },

  // --- chain verification -------------------------------------------------------------------------------------------
  PKI_CHAIN_UNTRUSTED: {
    kind: 'invalid',
    description: 'No issuer of the certificate chain is a trusted or registered CA.',
  },
  PKI_CHAIN_SIGNATURE_INVALID: {
    kind: 'invalid',
    description: 'A certificate of the chain is not signed by the issuer whose name it carries.',
  },
  PKI_CHAIN_NOT_CA: {
    kind: 'invalid',
    description: 'A certificate used as an issuer in the chain is not a CA (basicConstraints CA:true missing).',
  },
  PKI_CHAIN_PATH_LENGTH_EXCEEDED: {
    kind: 'invalid',
    description: 'The chain has more intermediate CAs than an issuer’s pathLenConstraint allows (RFC 5280 §4.2.1.9).',
  },
  PKI_CHAIN_KEY_USAGE: {
    kind: 'invalid',
    description: 'A certificate used as an issuer in the chain lacks the keyCertSign key usage (RFC 5280 §4.2.1.3).',
  },
  PKI_CERTIFICATE_REVOKED: {
    kind: 'invalid',
    description: 'A certificate of the chain is revoked.',
  },

  // --- key storage --------------------------------------------------------------------------------------------------
  PKI_KEK_INVALID: {
    kind: 'invalid',
    description: 'The key-encryption key must be 32 bytes, given as 64 hexadecimal characters or as base64.',
  },
  PKI_KEK_MISMATCH: {
    kind: 'unavailable',
    description:
      'A stored CA key could not be decrypted: the key-encryption key is not the one it was encrypted with, or the blob was altered.',
  },
  PKI_KEY_BLOB_MALFORMED: {
    kind: 'internal',
    description: 'A stored encrypted key blob has an unknown format.',
  },
  PKI_KEY_NOT_FOUND: {
    kind: 'not_found',
    description: 'No key exists under this key reference.',
  },
  PKI_KEY_STORE_CLOSED: {
    kind: 'unavailable',
    description: 'The key store has been closed.',
  },
  PKI_PKCS11_UNAVAILABLE: {
    kind: 'unavailable',
    description: 'The PKCS#11 library could not be loaded or initialised.',
  },
  PKI_PKCS11_TOKEN_NOT_FOUND: {
    kind: 'unavailable',
    description: 'No PKCS#11 slot holds a token with the configured label.',
  },
  PKI_PKCS11_LOGIN_FAILED: {
    kind: 'unavailable',
    description: 'Logging in to the PKCS#11 token failed (wrong PIN or locked token).',
  },
  PKI_PKCS11_OPERATION_FAILED: {
    kind: 'internal',
    description: 'A PKCS#11 operation (key generation, signing, lookup, deletion) failed in the token.',
  },
});

/** One PKI error code. */
export type PkiErrorCode = keyof typeof PkiErrors.specs;

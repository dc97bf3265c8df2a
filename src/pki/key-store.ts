import type { KeyObject } from 'node:crypto';
import type { KeyAlgorithm } from './key-algorithm.ts';

/**
 * Signs with one CA key. `sign` is synchronous because it is on the issuing hot path; it returns a DER-encoded
 * ECDSA signature (RFC 3279 §2.2.3) or an RSASSA-PKCS1-v1_5 signature, over SHA-256 (P-256, RSA) or SHA-384 (P-384).
 * A signer never exposes its private key, and its `toString`/JSON/inspect output names only the algorithm.
 */
export interface Signer {
  readonly algorithm: KeyAlgorithm;
  readonly publicKey: KeyObject;
  sign(data: Uint8Array): Buffer;
}

/** A newly generated key: its opaque reference and its public half. */
export interface GeneratedKey {
  readonly keyRef: string;
  readonly publicKey: KeyObject;
}

/**
 * Where CA private keys live (the "CA backend" of smallstep's `cas/apiv1`): encrypted blobs in the database or a
 * PKCS#11 token. Keys are named by an opaque `keyRef` that the registry stores beside the CA certificate.
 * Signers are cached per keyRef, so `getSigner` is cheap after the first call.
 */
export interface KeyStore {
  readonly kind: 'encrypted' | 'pkcs11';
  /** Generates a new key pair and keeps its private half. */
  generateKey(algorithm: KeyAlgorithm): Promise<GeneratedKey>;
  /** The signer of a stored key. Throws `PKI_KEY_NOT_FOUND` for an unknown keyRef. */
  getSigner(keyRef: string): Promise<Signer>;
  /** Deletes a stored key (idempotent). */
  deleteKey(keyRef: string): Promise<void>;
}

import { sign as cryptoSign, createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { hashOf, keyAlgorithmOf } from './key-algorithm.ts';
import type { KeyAlgorithm } from './key-algorithm.ts';
import type { Signer } from './key-store.ts';

/**
 * A {@link Signer} over a `node:crypto` private key (OpenSSL does the work: about 30 µs per P-256 signature).
 * The private key sits in a private field; string, JSON and inspect forms show only the algorithm.
 */
class KeyObjectSigner implements Signer {
  readonly algorithm: KeyAlgorithm;
  readonly publicKey: KeyObject;
  readonly #privateKey: KeyObject;
  readonly #hash: 'sha256' | 'sha384';

  constructor(privateKey: KeyObject) {
    this.algorithm = keyAlgorithmOf(privateKey);
    this.publicKey = createPublicKey(privateKey);
    this.#privateKey = privateKey;
    this.#hash = hashOf(this.algorithm);
  }

  sign(data: Uint8Array): Buffer {
    return cryptoSign(this.#hash, data, this.#privateKey);
  }

  toString(): string {
    return `Signer(${this.algorithm})`;
  }

  toJSON(): { algorithm: KeyAlgorithm } {
    return { algorithm: this.algorithm };
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/**
 * Wraps a `node:crypto` private key (EC P-256/P-384 or RSA 2048/3072) as a synchronous {@link Signer}.
 * Used by the encrypted key store, and by tests and tools that hold a CA key themselves.
 * Throws `PKI_KEY_ALGORITHM_UNSUPPORTED` for other keys.
 */
export function createKeyObjectSigner(privateKey: KeyObject): Signer {
  return new KeyObjectSigner(privateKey);
}

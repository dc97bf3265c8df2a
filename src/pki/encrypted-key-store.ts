import { createPrivateKey, generateKeyPair as generateKeyPairCallback, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { inspect, promisify } from 'node:util';
import { PkiErrors } from './errors.ts';
import { kekKeyObject, openEnvelope, sealEnvelope } from './kek-envelope.ts';
import { keyGenerationParameters } from './key-algorithm.ts';
import type { KeyAlgorithm } from './key-algorithm.ts';
import { createKeyObjectSigner } from './key-object-signer.ts';
import type { GeneratedKey, KeyStore, Signer } from './key-store.ts';

const generateKeyPairAsync = promisify(generateKeyPairCallback);

/**
 * Persistence of encrypted key blobs, owned by the PKI and implemented by the store (style.md: persistence
 * interfaces belong to the code that uses them). Blobs are opaque bytes keyed by keyRef.
 */
export interface KeyBlobRepository {
  getKeyBlob(keyRef: string): Promise<Uint8Array | undefined>;
  putKeyBlob(keyRef: string, blob: Uint8Array): Promise<void>;
  deleteKeyBlob(keyRef: string): Promise<void>;
}

/** A {@link KeyBlobRepository} in memory, for tests, benchmarks and throw-away CAs. */
export class InMemoryKeyBlobRepository implements KeyBlobRepository {
  readonly #blobs = new Map<string, Uint8Array>();

  getKeyBlob(keyRef: string): Promise<Uint8Array | undefined> {
    const blob = this.#blobs.get(keyRef);
    return Promise.resolve(blob === undefined ? undefined : Uint8Array.from(blob));
  }

  putKeyBlob(keyRef: string, blob: Uint8Array): Promise<void> {
    this.#blobs.set(keyRef, Uint8Array.from(blob));
    return Promise.resolve();
  }

  deleteKeyBlob(keyRef: string): Promise<void> {
    this.#blobs.delete(keyRef);
    return Promise.resolve();
  }

  /** The stored keyRefs (test helper). */
  keyRefs(): string[] {
    return [...this.#blobs.keys()];
  }
}

/** Options of {@link EncryptedKeyStore}. */
export interface EncryptedKeyStoreOptions {
  /** The 32-byte key-encryption key (see `parseKek`). It is copied; the caller may wipe its buffer. */
  readonly kek: Uint8Array;
  /** Where the encrypted blobs are kept (the store implements it). */
  readonly blobs: KeyBlobRepository;
}

/**
 * Keeps CA private keys encrypted at rest: keys are generated with `node:crypto`, their PKCS#8 DER is sealed with
 * AES-256-GCM under the key-encryption key (random 96-bit IV, keyRef as additional authenticated data, so a blob
 * cannot be swapped to another keyRef) and stored through a {@link KeyBlobRepository}.
 * Blob layout: `0x01 ‖ IV (12) ‖ ciphertext ‖ GCM tag (16)`.
 * Decryption failure (wrong KEK, altered blob) raises `PKI_KEK_MISMATCH`.
 */
export class EncryptedKeyStore implements KeyStore {
  readonly kind = 'encrypted' as const;
  readonly #kek: KeyObject;
  readonly #repository: KeyBlobRepository;
  readonly #signers = new Map<string, Promise<Signer>>();

  constructor(options: EncryptedKeyStoreOptions) {
    this.#kek = kekKeyObject(options.kek);
    this.#repository = options.blobs;
  }

  async generateKey(algorithm: KeyAlgorithm): Promise<GeneratedKey> {
    const parameters = keyGenerationParameters(algorithm);
    const { privateKey, publicKey } =
      parameters.type === 'ec'
        ? await generateKeyPairAsync('ec', { namedCurve: parameters.namedCurve })
        : await generateKeyPairAsync('rsa', { modulusLength: parameters.modulusLength, publicExponent: 0x10001 });
    const keyRef = randomBytes(16).toString('hex');
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
    try {
      await this.#repository.putKeyBlob(keyRef, sealEnvelope(this.#kek, keyRef, pkcs8));
    } finally {
      pkcs8.fill(0);
    }
    this.#signers.set(keyRef, Promise.resolve(createKeyObjectSigner(privateKey)));
    return { keyRef, publicKey };
  }

  getSigner(keyRef: string): Promise<Signer> {
    let signer = this.#signers.get(keyRef);
    if (signer === undefined) {
      signer = this.#loadSigner(keyRef);
      this.#signers.set(keyRef, signer);
      signer.catch(() => {
        if (this.#signers.get(keyRef) === signer) this.#signers.delete(keyRef);
      });
    }
    return signer;
  }

  async deleteKey(keyRef: string): Promise<void> {
    this.#signers.delete(keyRef);
    await this.#repository.deleteKeyBlob(keyRef);
  }

  toString(): string {
    return 'EncryptedKeyStore';
  }

  toJSON(): { kind: 'encrypted' } {
    return { kind: this.kind };
  }

  [inspect.custom](): string {
    return this.toString();
  }

  async #loadSigner(keyRef: string): Promise<Signer> {
    const blob = await this.#repository.getKeyBlob(keyRef);
    if (blob === undefined) throw PkiErrors.error('PKI_KEY_NOT_FOUND', 'no key is stored under this keyRef');
    const pkcs8 = openEnvelope(this.#kek, keyRef, blob);
    try {
      return createKeyObjectSigner(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
    } catch (error) {
      throw PkiErrors.error('PKI_KEY_BLOB_MALFORMED', 'the decrypted key is not a supported PKCS#8 key', {
        cause: error,
      });
    } finally {
      pkcs8.fill(0);
    }
  }
}

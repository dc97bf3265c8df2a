import { createHash, createPublicKey, randomBytes, timingSafeEqual } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import pkcs11js from 'pkcs11js';
import type { Handle, PKCS11, Template } from 'pkcs11js';
import { DerTag, encodeOid, encodeSequence, encodeUnsignedInteger, readTlv } from './der.ts';
import { PkiErrors } from './errors.ts';
import { hashOf } from './key-algorithm.ts';
import type { KeyAlgorithm } from './key-algorithm.ts';
import type { GeneratedKey, KeyStore, Signer } from './key-store.ts';
import { encodeEcSpki } from './public-key.ts';

/** Options of {@link Pkcs11KeyStore.open}. */
export interface Pkcs11KeyStoreOptions {
  /** Path of the PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`. */
  readonly libraryPath: string;
  /** Label of the token that holds the CA keys. */
  readonly tokenLabel: string;
  /** User PIN of the token. Kept only for the login; never logged. */
  readonly pin: string;
}

interface LoadedLibrary {
  readonly module: PKCS11;
  references: number;
  /**
   * SHA-256 of the PIN each slot was logged in with. PKCS#11 login state is per application, so a second store on
   * the same token gets CKR_USER_ALREADY_LOGGED_IN without any PIN check; this record keeps a wrong PIN failing.
   */
  readonly logins: Map<string, Buffer>;
}

/** PKCS#11 allows one C_Initialize per module and process: stores on the same module share it. */
const loadedLibraries = new Map<string, LoadedLibrary>();

const CURVES = {
  EC_P256: { oid: '1.2.840.10045.3.1.7', size: 32 },
  EC_P384: { oid: '1.3.132.0.34', size: 48 },
} as const;

function pkcs11Failure(
  code: 'PKI_PKCS11_UNAVAILABLE' | 'PKI_PKCS11_LOGIN_FAILED' | 'PKI_PKCS11_OPERATION_FAILED',
  what: string,
  error: unknown,
): Error {
  // The PKCS#11 return value name (CKR_…) is safe to show; the PIN never reaches an error.
  const reason = error instanceof Error ? error.message.split('\n')[0] : 'unknown error';
  return PkiErrors.error(code, `${what}: ${reason}`, { cause: error });
}

function pkcs11Code(error: unknown): number | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'number'
    ? error.code
    : undefined;
}

function acquireLibrary(libraryPath: string): LoadedLibrary {
  const loaded = loadedLibraries.get(libraryPath);
  if (loaded !== undefined) {
    loaded.references++;
    return loaded;
  }
  const module = new pkcs11js.PKCS11();
  try {
    module.load(libraryPath);
  } catch (error) {
    throw pkcs11Failure('PKI_PKCS11_UNAVAILABLE', 'loading the PKCS#11 library failed', error);
  }
  try {
    module.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (error) {
    if (pkcs11Code(error) !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      module.close();
      throw pkcs11Failure('PKI_PKCS11_UNAVAILABLE', 'initialising the PKCS#11 library failed', error);
    }
  }
  const library: LoadedLibrary = { module, references: 1, logins: new Map() };
  loadedLibraries.set(libraryPath, library);
  return library;
}

function releaseLibrary(libraryPath: string): void {
  const loaded = loadedLibraries.get(libraryPath);
  if (loaded === undefined) return;
  loaded.references--;
  if (loaded.references > 0) return;
  loadedLibraries.delete(libraryPath);
  try {
    loaded.module.C_Finalize();
  } finally {
    loaded.module.close();
  }
}

function readUlong(value: Buffer): number {
  return value.readUIntLE(0, Math.min(6, value.length));
}

/** Converts a raw PKCS#11 ECDSA signature `r ‖ s` (PKCS#11 §2.3.1) to DER `Ecdsa-Sig-Value` (RFC 3279 §2.2.3). */
export function ecdsaRawToDer(raw: Uint8Array): Buffer {
  const half = raw.length / 2;
  return encodeSequence(encodeUnsignedInteger(raw.subarray(0, half)), encodeUnsignedInteger(raw.subarray(half)));
}

class Pkcs11Signer implements Signer {
  readonly algorithm: KeyAlgorithm;
  readonly publicKey: KeyObject;
  readonly #sign: (data: Uint8Array) => Buffer;

  constructor(algorithm: KeyAlgorithm, publicKey: KeyObject, sign: (data: Uint8Array) => Buffer) {
    this.algorithm = algorithm;
    this.publicKey = publicKey;
    this.#sign = sign;
  }

  sign(data: Uint8Array): Buffer {
    return this.#sign(data);
  }

  toString(): string {
    return `Pkcs11Signer(${this.algorithm})`;
  }

  toJSON(): { algorithm: KeyAlgorithm } {
    return { algorithm: this.algorithm };
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/**
 * Keeps CA private keys inside a PKCS#11 token (HSM, SoftHSM2): key pairs are generated in the token as token
 * objects with the private key sensitive and non-extractable; signatures are made in the token
 * (CKM_ECDSA over a SHA-256/384 digest computed here, CKM_SHA256_RSA_PKCS for RSA).
 * A keyRef is the hexadecimal CKA_ID shared by the private and public key objects.
 * One read-write session serves all signing; `sign` is synchronous.
 */
export class Pkcs11KeyStore implements KeyStore {
  readonly kind = 'pkcs11' as const;
  readonly #module: PKCS11;
  readonly #libraryPath: string;
  readonly #slot: Handle;
  readonly #session: Handle;
  readonly #signers = new Map<string, Promise<Signer>>();
  #closed = false;

  private constructor(module: PKCS11, libraryPath: string, slot: Handle, session: Handle) {
    this.#module = module;
    this.#libraryPath = libraryPath;
    this.#slot = slot;
    this.#session = session;
  }

  /**
   * Loads the module, finds the token by label, opens a session and logs in.
   * Throws `PKI_PKCS11_UNAVAILABLE`, `PKI_PKCS11_TOKEN_NOT_FOUND` or `PKI_PKCS11_LOGIN_FAILED`.
   */
  static open(options: Pkcs11KeyStoreOptions): Pkcs11KeyStore {
    const library = acquireLibrary(options.libraryPath);
    const module = library.module;
    try {
      let slot: Handle | undefined;
      for (const candidate of module.C_GetSlotList(true)) {
        if (module.C_GetTokenInfo(candidate).label.trim() === options.tokenLabel) {
          slot = candidate;
          break;
        }
      }
      if (slot === undefined) {
        throw PkiErrors.error('PKI_PKCS11_TOKEN_NOT_FOUND', `no PKCS#11 token is labelled "${options.tokenLabel}"`);
      }
      let session: Handle;
      try {
        session = module.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      } catch (error) {
        throw pkcs11Failure('PKI_PKCS11_UNAVAILABLE', 'opening a PKCS#11 session failed', error);
      }
      const slotKey = slot.toString('hex');
      const pinHash = createHash('sha256').update(options.pin, 'utf8').digest();
      try {
        module.C_Login(session, pkcs11js.CKU_USER, options.pin);
        library.logins.set(slotKey, pinHash);
      } catch (error) {
        const known = library.logins.get(slotKey);
        const alreadyLoggedIn = pkcs11Code(error) === pkcs11js.CKR_USER_ALREADY_LOGGED_IN;
        if (!alreadyLoggedIn || (known !== undefined && !timingSafeEqual(known, pinHash))) {
          module.C_CloseSession(session);
          throw pkcs11Failure(
            'PKI_PKCS11_LOGIN_FAILED',
            'logging in to the PKCS#11 token failed',
            alreadyLoggedIn ? new Error('CKR_PIN_INCORRECT') : error,
          );
        }
      }
      return new Pkcs11KeyStore(module, options.libraryPath, slot, session);
    } catch (error) {
      releaseLibrary(options.libraryPath);
      throw error;
    }
  }

  async generateKey(algorithm: KeyAlgorithm): Promise<GeneratedKey> {
    this.#assertOpen();
    const id = randomBytes(16);
    const keyRef = id.toString('hex');
    const label = `gatehouse-${algorithm}`;
    const isEc = algorithm === 'EC_P256' || algorithm === 'EC_P384';
    const publicTemplate: Template = [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: false },
      { type: pkcs11js.CKA_VERIFY, value: true },
      { type: pkcs11js.CKA_ID, value: id },
      { type: pkcs11js.CKA_LABEL, value: label },
    ];
    const privateTemplate: Template = [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_SIGN, value: true },
      { type: pkcs11js.CKA_ID, value: id },
      { type: pkcs11js.CKA_LABEL, value: label },
    ];
    let mechanism: number;
    if (isEc) {
      mechanism = pkcs11js.CKM_EC_KEY_PAIR_GEN;
      publicTemplate.push(
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
        { type: pkcs11js.CKA_EC_PARAMS, value: encodeOid(CURVES[algorithm].oid) },
      );
      privateTemplate.push({ type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC });
    } else {
      mechanism = pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN;
      publicTemplate.push(
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
        { type: pkcs11js.CKA_MODULUS_BITS, value: algorithm === 'RSA_2048' ? 2048 : 3072 },
        { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      );
      privateTemplate.push({ type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA });
    }
    // Generation can take seconds (RSA): run it off the event loop, on a session of its own.
    let session: Handle;
    try {
      session = this.#module.C_OpenSession(this.#slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    } catch (error) {
      throw pkcs11Failure('PKI_PKCS11_OPERATION_FAILED', 'opening a PKCS#11 session failed', error);
    }
    try {
      await this.#module.C_GenerateKeyPairAsync(session, { mechanism }, publicTemplate, privateTemplate);
    } catch (error) {
      throw pkcs11Failure('PKI_PKCS11_OPERATION_FAILED', 'generating the key pair in the token failed', error);
    } finally {
      this.#module.C_CloseSession(session);
    }
    const signer = this.#loadSigner(keyRef);
    this.#signers.set(keyRef, Promise.resolve(signer));
    return { keyRef, publicKey: signer.publicKey };
  }

  getSigner(keyRef: string): Promise<Signer> {
    try {
      this.#assertOpen();
      let signer = this.#signers.get(keyRef);
      if (signer === undefined) {
        signer = Promise.resolve(this.#loadSigner(keyRef));
        this.#signers.set(keyRef, signer);
      }
      return signer;
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  deleteKey(keyRef: string): Promise<void> {
    try {
      this.#assertOpen();
      this.#signers.delete(keyRef);
      const id = this.#idOf(keyRef);
      if (id === undefined) return Promise.resolve();
      for (const handle of this.#findObjects([{ type: pkcs11js.CKA_ID, value: id }])) {
        this.#module.C_DestroyObject(this.#session, handle);
      }
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(
        error instanceof Error && 'code' in error && typeof error.code === 'string'
          ? error
          : pkcs11Failure('PKI_PKCS11_OPERATION_FAILED', 'deleting the key failed', error),
      );
    }
  }

  /** Closes the session; the module is finalised when its last store closes. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#signers.clear();
    try {
      this.#module.C_CloseSession(this.#session);
    } finally {
      releaseLibrary(this.#libraryPath);
    }
  }

  toString(): string {
    return 'Pkcs11KeyStore';
  }

  toJSON(): { kind: 'pkcs11' } {
    return { kind: this.kind };
  }

  [inspect.custom](): string {
    return this.toString();
  }

  #assertOpen(): void {
    if (this.#closed) throw PkiErrors.error('PKI_KEY_STORE_CLOSED', 'the PKCS#11 key store is closed');
  }

  #idOf(keyRef: string): Buffer | undefined {
    return /^(?:[0-9a-f]{2}){1,64}$/.test(keyRef) ? Buffer.from(keyRef, 'hex') : undefined;
  }

  #findObjects(template: Template): Handle[] {
    try {
      this.#module.C_FindObjectsInit(this.#session, template);
      try {
        return this.#module.C_FindObjects(this.#session, 16);
      } finally {
        this.#module.C_FindObjectsFinal(this.#session);
      }
    } catch (error) {
      throw pkcs11Failure('PKI_PKCS11_OPERATION_FAILED', 'searching the token failed', error);
    }
  }

  #loadSigner(keyRef: string): Signer {
    const id = this.#idOf(keyRef);
    const [privateKey] =
      id === undefined
        ? []
        : this.#findObjects([
            { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
            { type: pkcs11js.CKA_ID, value: id },
          ]);
    const [publicHandle] =
      id === undefined
        ? []
        : this.#findObjects([
            { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
            { type: pkcs11js.CKA_ID, value: id },
          ]);
    if (privateKey === undefined || publicHandle === undefined) {
      throw PkiErrors.error('PKI_KEY_NOT_FOUND', 'no key pair in the token has this keyRef');
    }
    const { algorithm, publicKey, signatureLength } = this.#readPublicKey(publicHandle);
    const module = this.#module;
    const session = this.#session;
    const isClosed = (): boolean => this.#closed;
    let sign: (data: Uint8Array) => Buffer;
    if (algorithm === 'EC_P256' || algorithm === 'EC_P384') {
      const hash = hashOf(algorithm);
      sign = (data) => {
        if (isClosed()) throw PkiErrors.error('PKI_KEY_STORE_CLOSED', 'the PKCS#11 key store is closed');
        const digest = createHash(hash).update(data).digest();
        try {
          module.C_SignInit(session, { mechanism: pkcs11js.CKM_ECDSA }, privateKey);
          return ecdsaRawToDer(module.C_Sign(session, digest, Buffer.alloc(signatureLength)));
        } catch (error) {
          throw pkcs11Failure('PKI_PKCS11_OPERATION_FAILED', 'signing in the token failed', error);
        }
      };
    } else {
      sign = (data) => {
        if (isClosed()) throw PkiErrors.error('PKI_KEY_STORE_CLOSED', 'the PKCS#11 key store is closed');
        try {
          module.C_SignInit(session, { mechanism: pkcs11js.CKM_SHA256_RSA_PKCS }, privateKey);
          return Buffer.from(module.C_Sign(session, Buffer.from(data), Buffer.alloc(signatureLength)));
        } catch (error) {
          throw pkcs11Failure('PKI_PKCS11_OPERATION_FAILED', 'signing in the token failed', error);
        }
      };
    }
    return new Pkcs11Signer(algorithm, publicKey, sign);
  }

  #readPublicKey(handle: Handle): { algorithm: KeyAlgorithm; publicKey: KeyObject; signatureLength: number } {
    try {
      const [keyType] = this.#module.C_GetAttributeValue(this.#session, handle, [{ type: pkcs11js.CKA_KEY_TYPE }]);
      if (keyType === undefined) throw new Error('CKA_KEY_TYPE missing');
      if (readUlong(keyType.value) === pkcs11js.CKK_EC) {
        const [params, point] = this.#module.C_GetAttributeValue(this.#session, handle, [
          { type: pkcs11js.CKA_EC_PARAMS },
          { type: pkcs11js.CKA_EC_POINT },
        ]);
        if (params === undefined || point === undefined) throw new Error('EC attributes missing');
        const algorithm = (['EC_P256', 'EC_P384'] as const).find((a) => encodeOid(CURVES[a].oid).equals(params.value));
        if (algorithm === undefined) throw new Error('unsupported curve in token');
        const size = CURVES[algorithm].size;
        // CKA_EC_POINT is a DER OCTET STRING (PKCS#11 v2.40 §2.3.3); some tokens return the raw point.
        let rawPoint = point.value;
        if (rawPoint.length !== 1 + 2 * size) {
          const tlv = readTlv(rawPoint, 0);
          if (tlv.tag !== DerTag.OCTET_STRING || tlv.end !== rawPoint.length) throw new Error('bad CKA_EC_POINT');
          rawPoint = rawPoint.subarray(tlv.valueStart);
        }
        const spki = encodeEcSpki(algorithm === 'EC_P256' ? 'P-256' : 'P-384', rawPoint);
        const publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
        return { algorithm, publicKey, signatureLength: 2 * size };
      }
      const [modulus, exponent] = this.#module.C_GetAttributeValue(this.#session, handle, [
        { type: pkcs11js.CKA_MODULUS },
        { type: pkcs11js.CKA_PUBLIC_EXPONENT },
      ]);
      if (modulus === undefined || exponent === undefined) throw new Error('RSA attributes missing');
      const publicKey = createPublicKey({
        key: { kty: 'RSA', n: modulus.value.toString('base64url'), e: exponent.value.toString('base64url') },
        format: 'jwk',
      });
      const bits = publicKey.asymmetricKeyDetails?.modulusLength;
      if (bits !== 2048 && bits !== 3072) throw new Error('unsupported RSA modulus length in token');
      return { algorithm: bits === 2048 ? 'RSA_2048' : 'RSA_3072', publicKey, signatureLength: bits / 8 };
    } catch (error) {
      throw pkcs11Failure('PKI_PKCS11_OPERATION_FAILED', 'reading the public key from the token failed', error);
    }
  }
}

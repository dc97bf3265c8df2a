/**
 * The contract every {@link KeyStore} implementation passes (style.md: one shared suite per interface, run against
 * each implementation). `key-store.test.ts` runs it for the encrypted store and the PKCS#11 store.
 */
import { randomBytes, verify as cryptoVerify } from 'node:crypto';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRootCa } from './certificate-authority.ts';
import { hashOf, keyAlgorithmOf } from './key-algorithm.ts';
import type { KeyAlgorithm } from './key-algorithm.ts';
import type { KeyStore } from './key-store.ts';
import { Scratch } from './test-support.ts';

/** How the contract suite drives one implementation. */
export interface KeyStoreContractTarget {
  readonly kind: KeyStore['kind'];
  readonly algorithms: readonly KeyAlgorithm[];
  /** Opens a store on fresh backing storage (called once, in beforeAll). */
  setUp(): Promise<void>;
  /** A store instance on the shared backing storage; each call returns a new instance with empty caches. */
  open(): Promise<KeyStore>;
  tearDown(): Promise<void>;
}

/** The object's own `toString()` (the key objects override it). */
function stringOf(value: object): string {
  return (value as { toString(): string }).toString();
}

function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  return expect(promise).rejects.toMatchObject({ code });
}

/** Runs the key store contract against `target`. */
export function describeKeyStoreContract(name: string, target: KeyStoreContractTarget): void {
  describe(`KeyStore contract: ${name}`, () => {
    let store: KeyStore;
    const data = randomBytes(300);

    beforeAll(async () => {
      await target.setUp();
      store = await target.open();
    });
    afterAll(async () => {
      await target.tearDown();
    });

    it('reports its kind', () => {
      expect(store.kind).toBe(target.kind);
    });

    for (const algorithm of target.algorithms) {
      it(`generates ${algorithm} keys and signs so that node:crypto verifies`, async () => {
        const { keyRef, publicKey } = await store.generateKey(algorithm);
        expect(keyRef).toMatch(/^[0-9a-f]{32}$/);
        expect(publicKey.type).toBe('public');
        expect(keyAlgorithmOf(publicKey)).toBe(algorithm);

        const signer = await store.getSigner(keyRef);
        expect(signer.algorithm).toBe(algorithm);
        expect(signer.publicKey.equals(publicKey)).toBe(true);
        const signature = signer.sign(data);
        if (algorithm.startsWith('EC')) expect(signature[0]).toBe(0x30); // DER Ecdsa-Sig-Value
        expect(cryptoVerify(hashOf(algorithm), data, publicKey, signature)).toBe(true);
        expect(cryptoVerify(hashOf(algorithm), randomBytes(300), publicKey, signature)).toBe(false);
        expect(await store.getSigner(keyRef)).toBe(signer); // cached per keyRef
      });
    }

    it('reloads keys from its backing storage in a new instance', async () => {
      const algorithm = target.algorithms[0] ?? 'EC_P256';
      const { keyRef, publicKey } = await store.generateKey(algorithm);
      const reopened = await target.open();
      const signer = await reopened.getSigner(keyRef);
      expect(signer.publicKey.equals(publicKey)).toBe(true);
      expect(cryptoVerify(hashOf(algorithm), data, publicKey, signer.sign(data))).toBe(true);
    });

    it('rejects unknown keyRefs with PKI_KEY_NOT_FOUND', async () => {
      await expectCode(store.getSigner(randomBytes(16).toString('hex')), 'PKI_KEY_NOT_FOUND');
      await expectCode(store.getSigner('not a key ref'), 'PKI_KEY_NOT_FOUND');
    });

    it('deletes keys, idempotently', async () => {
      const { keyRef } = await store.generateKey('EC_P256');
      await store.deleteKey(keyRef);
      await store.deleteKey(keyRef);
      await expectCode(store.getSigner(keyRef), 'PKI_KEY_NOT_FOUND');
      const reopened = await target.open();
      await expectCode(reopened.getSigner(keyRef), 'PKI_KEY_NOT_FOUND');
    });

    it('never shows key material in string, JSON or inspect forms', async () => {
      const { keyRef } = await store.generateKey('EC_P256');
      const signer = await store.getSigner(keyRef);
      for (const text of [stringOf(signer), JSON.stringify(signer), inspect(signer, { showHidden: true, depth: 5 })]) {
        expect(text).not.toMatch(/PRIVATE|BEGIN|"d"|pkcs8/i);
        expect(text.length).toBeLessThan(200);
      }
      for (const text of [stringOf(store), JSON.stringify(store), inspect(store, { showHidden: true, depth: 5 })]) {
        expect(text.length).toBeLessThan(200);
      }
    });

    it('signs a root CA certificate that OpenSSL verifies', async () => {
      const scratch = new Scratch();
      try {
        for (const algorithm of target.algorithms) {
          const root = await createRootCa({ keyStore: store, commonName: `Contract ${algorithm}`, keyAlgorithm: algorithm });
          scratch.write('root.pem', root.certificate.pem);
          expect(scratch.opensslOk(['verify', '-CAfile', 'root.pem', 'root.pem']).trim()).toBe('root.pem: OK');
        }
      } finally {
        scratch.remove();
      }
    });
  });
}

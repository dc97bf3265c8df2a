import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncryptedKeyStore, InMemoryKeyBlobRepository } from './encrypted-key-store.ts';
import { generateKek } from './kek.ts';
import { describeKeyStoreContract } from './key-store.contract.ts';
import { Pkcs11KeyStore } from './pkcs11-key-store.ts';

const SOFTHSM_LIBRARY = '/usr/lib/softhsm/libsofthsm2.so';
const TOKEN_LABEL = 'gh-test';
const PIN = '1234';

// --- EncryptedKeyStore -------------------------------------------------------------------------------------------

const kek = generateKek();
let blobs = new InMemoryKeyBlobRepository();

describeKeyStoreContract('EncryptedKeyStore', {
  kind: 'encrypted',
  algorithms: ['EC_P256', 'EC_P384', 'RSA_2048', 'RSA_3072'],
  setUp: () => {
    blobs = new InMemoryKeyBlobRepository();
    return Promise.resolve();
  },
  open: () => Promise.resolve(new EncryptedKeyStore({ kek, blobs })),
  tearDown: () => Promise.resolve(),
});

describe('EncryptedKeyStore specifics', () => {
  it('rejects a KEK that is not 32 bytes', () => {
    expect(() => new EncryptedKeyStore({ kek: Buffer.alloc(16), blobs })).toThrow(
      expect.objectContaining({ code: 'PKI_KEK_INVALID' }),
    );
  });

  it('fails with PKI_KEK_MISMATCH under another KEK', async () => {
    const repository = new InMemoryKeyBlobRepository();
    const { keyRef } = await new EncryptedKeyStore({ kek, blobs: repository }).generateKey('EC_P256');
    const other = new EncryptedKeyStore({ kek: generateKek(), blobs: repository });
    await expect(other.getSigner(keyRef)).rejects.toMatchObject({ code: 'PKI_KEK_MISMATCH' });
    // a failed load is not cached: the right KEK still works
    await expect(new EncryptedKeyStore({ kek, blobs: repository }).getSigner(keyRef)).resolves.toBeDefined();
  });

  it('binds a blob to its keyRef and detects tampering', async () => {
    const repository = new InMemoryKeyBlobRepository();
    const store = new EncryptedKeyStore({ kek, blobs: repository });
    const { keyRef } = await store.generateKey('EC_P256');
    const blob = (await repository.getKeyBlob(keyRef)) as Uint8Array;

    await repository.putKeyBlob('00'.repeat(16), blob); // moved to another keyRef
    await expect(new EncryptedKeyStore({ kek, blobs: repository }).getSigner('00'.repeat(16))).rejects.toMatchObject({
      code: 'PKI_KEK_MISMATCH',
    });

    const tampered = Uint8Array.from(blob);
    tampered[20] = (tampered[20] as number) ^ 1;
    await repository.putKeyBlob(keyRef, tampered);
    await expect(new EncryptedKeyStore({ kek, blobs: repository }).getSigner(keyRef)).rejects.toMatchObject({
      code: 'PKI_KEK_MISMATCH',
    });

    await repository.putKeyBlob(keyRef, Uint8Array.from([9, 9, 9]));
    await expect(new EncryptedKeyStore({ kek, blobs: repository }).getSigner(keyRef)).rejects.toMatchObject({
      code: 'PKI_KEY_BLOB_MALFORMED',
    });
  });

  it('stores AES-256-GCM blobs with a fresh IV, never the clear PKCS#8', async () => {
    const repository = new InMemoryKeyBlobRepository();
    const store = new EncryptedKeyStore({ kek, blobs: repository });
    const first = await store.generateKey('EC_P256');
    const second = await store.generateKey('EC_P256');
    const blobA = Buffer.from((await repository.getKeyBlob(first.keyRef)) as Uint8Array);
    const blobB = Buffer.from((await repository.getKeyBlob(second.keyRef)) as Uint8Array);
    expect(blobA[0]).toBe(1);
    expect(blobA.subarray(1, 13).equals(blobB.subarray(1, 13))).toBe(false);
    // PKCS#8 of an EC key starts with SEQUENCE, INTEGER 0, AlgorithmIdentifier id-ecPublicKey
    expect(blobA.includes(Buffer.from('2a8648ce3d0201', 'hex'))).toBe(false);
    expect(repository.keyRefs().sort()).toEqual([first.keyRef, second.keyRef].sort());
  });
});

// --- Pkcs11KeyStore (SoftHSM2) -----------------------------------------------------------------------------------

const softHsmPresent = existsSync(SOFTHSM_LIBRARY);
let tokenDir: string | undefined;
const stores: Pkcs11KeyStore[] = [];

function initToken(): void {
  tokenDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-softhsm-'));
  mkdirSync(path.join(tokenDir, 'tokens'));
  const conf = path.join(tokenDir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${path.join(tokenDir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  // SoftHSM reads its configuration when the module initialises: set it before any store opens the library.
  process.env.SOFTHSM2_CONF = conf;
  const result = spawnSync(
    'softhsm2-util',
    ['--init-token', '--free', '--label', TOKEN_LABEL, '--pin', PIN, '--so-pin', '5678'],
    { encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`softhsm2-util failed: ${result.stderr}`);
}

function openPkcs11(options: { tokenLabel?: string; pin?: string; libraryPath?: string } = {}): Pkcs11KeyStore {
  const store = Pkcs11KeyStore.open({
    libraryPath: options.libraryPath ?? SOFTHSM_LIBRARY,
    tokenLabel: options.tokenLabel ?? TOKEN_LABEL,
    pin: options.pin ?? PIN,
  });
  stores.push(store);
  return store;
}

function closeAll(): void {
  for (const store of stores.splice(0)) store.close();
}

if (softHsmPresent) {
  describeKeyStoreContract('Pkcs11KeyStore (SoftHSM2)', {
    kind: 'pkcs11',
    algorithms: ['EC_P256', 'EC_P384', 'RSA_2048', 'RSA_3072'],
    setUp: () => {
      initToken();
      return Promise.resolve();
    },
    open: () => Promise.resolve(openPkcs11()),
    tearDown: () => {
      closeAll();
      return Promise.resolve();
    },
  });
}

describe.skipIf(!softHsmPresent)('Pkcs11KeyStore specifics (SoftHSM2)', () => {
  beforeAll(() => {
    if (tokenDir === undefined) initToken();
  });
  afterAll(() => {
    closeAll();
    if (tokenDir !== undefined) rmSync(tokenDir, { recursive: true, force: true });
  });

  it('keeps private keys sensitive and non-extractable token objects', async () => {
    const store = openPkcs11();
    const { keyRef } = await store.generateKey('EC_P256');
    const module = new pkcs11js.PKCS11();
    module.load(SOFTHSM_LIBRARY);
    // The store already initialised the module in this process.
    try {
      module.C_Initialize();
    } catch {
      // CKR_CRYPTOKI_ALREADY_INITIALIZED
    }
    const slot = module.C_GetSlotList(true).find((s) => module.C_GetTokenInfo(s).label.trim() === TOKEN_LABEL);
    expect(slot).toBeDefined();
    const session = module.C_OpenSession(slot as Buffer, pkcs11js.CKF_SERIAL_SESSION);
    try {
      module.C_FindObjectsInit(session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_ID, value: Buffer.from(keyRef, 'hex') },
      ]);
      const [handle] = module.C_FindObjects(session, 2);
      module.C_FindObjectsFinal(session);
      expect(handle).toBeDefined();
      const attributes = module.C_GetAttributeValue(session, handle as Buffer, [
        { type: pkcs11js.CKA_TOKEN },
        { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE },
      ]);
      expect(attributes.map((a) => a.value[0])).toEqual([1, 1, 0]);
      expect(() => module.C_GetAttributeValue(session, handle as Buffer, [{ type: pkcs11js.CKA_VALUE }])).toThrow(
        /CKR_ATTRIBUTE_SENSITIVE/,
      );
    } finally {
      module.C_CloseSession(session);
      module.close();
    }
  });

  it('fails with PKI_PKCS11_LOGIN_FAILED on a wrong PIN, also while another store is logged in', () => {
    closeAll();
    expect(() => openPkcs11({ pin: '0000' })).toThrow(expect.objectContaining({ code: 'PKI_PKCS11_LOGIN_FAILED' }));
    openPkcs11();
    expect(() => openPkcs11({ pin: '0000' })).toThrow(expect.objectContaining({ code: 'PKI_PKCS11_LOGIN_FAILED' }));
  });

  it('fails with PKI_PKCS11_TOKEN_NOT_FOUND for an unknown label', () => {
    expect(() => openPkcs11({ tokenLabel: 'no-such-token' })).toThrow(
      expect.objectContaining({ code: 'PKI_PKCS11_TOKEN_NOT_FOUND' }),
    );
  });

  it('fails with PKI_PKCS11_UNAVAILABLE when the library cannot be loaded', () => {
    expect(() => openPkcs11({ libraryPath: '/nonexistent/libpkcs11.so' })).toThrow(
      expect.objectContaining({ code: 'PKI_PKCS11_UNAVAILABLE' }),
    );
  });

  it('refuses to sign after close with PKI_KEY_STORE_CLOSED', async () => {
    const store = openPkcs11();
    const { keyRef } = await store.generateKey('EC_P256');
    const signer = await store.getSigner(keyRef);
    store.close();
    store.close(); // idempotent
    expect(() => signer.sign(Buffer.from('x'))).toThrow(expect.objectContaining({ code: 'PKI_KEY_STORE_CLOSED' }));
    await expect(store.getSigner(keyRef)).rejects.toMatchObject({ code: 'PKI_KEY_STORE_CLOSED' });
    // another store on the same module keeps working
    const other = openPkcs11();
    const again = await other.getSigner(keyRef);
    expect(again.sign(Buffer.from('x')).length).toBeGreaterThan(60);
  });
});

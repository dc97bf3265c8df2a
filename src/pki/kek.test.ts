import { describe, expect, it } from 'vitest';
import { generateKek, parseKek } from './kek.ts';
import { openSealedPrivateKey, sealPrivateKey } from './kek-envelope.ts';
import { generateKeyPair } from './key-pair.ts';

function expectCode(fn: () => unknown, code: string): void {
  expect(fn).toThrow(expect.objectContaining({ code }));
}

describe('generateKek / parseKek', () => {
  it('round-trips 32 random bytes through hex and base64', () => {
    const kek = generateKek();
    expect(kek).toHaveLength(32);
    expect(generateKek().equals(kek)).toBe(false);
    expect(parseKek(kek.toString('hex')).equals(kek)).toBe(true);
    expect(parseKek(`  ${kek.toString('hex').toUpperCase()}\n`).equals(kek)).toBe(true);
    expect(parseKek(kek.toString('base64')).equals(kek)).toBe(true);
    expect(parseKek(kek.toString('base64url')).equals(kek)).toBe(true);
  });

  it('rejects anything else with PKI_KEK_INVALID and does not echo it', () => {
    for (const bad of ['', 'secret', 'ab'.repeat(31), 'ab'.repeat(33), Buffer.alloc(31).toString('base64'), 'zz'.repeat(32)]) {
      expectCode(() => parseKek(bad), 'PKI_KEK_INVALID');
    }
    try {
      parseKek('my-secret-value');
    } catch (error) {
      expect(String(error)).not.toContain('my-secret-value');
    }
  });
});

describe('sealPrivateKey / openSealedPrivateKey', () => {
  const kek = generateKek();
  const { privateKeyPem } = generateKeyPair();

  it('round-trips under the same KEK and label, without the clear key in the sealed text', () => {
    const sealed = sealPrivateKey(kek, privateKeyPem, 'tls-server');
    expect(sealed).toMatch(/^gh-sealed-v1:[A-Za-z0-9+/=]+$/);
    expect(sealed).not.toContain('PRIVATE KEY');
    expect(openSealedPrivateKey(kek, sealed, 'tls-server')).toBe(privateKeyPem);
    expect(sealPrivateKey(kek, privateKeyPem, 'tls-server')).not.toBe(sealed); // fresh IV
  });

  it('fails with PKI_KEK_MISMATCH for another KEK or label, PKI_KEY_BLOB_MALFORMED for garbage', () => {
    const sealed = sealPrivateKey(kek, privateKeyPem, 'tls-server');
    expectCode(() => openSealedPrivateKey(generateKek(), sealed, 'tls-server'), 'PKI_KEK_MISMATCH');
    expectCode(() => openSealedPrivateKey(kek, sealed, 'other'), 'PKI_KEK_MISMATCH');
    expectCode(() => openSealedPrivateKey(kek, 'plain text', 'tls-server'), 'PKI_KEY_BLOB_MALFORMED');
    expectCode(() => openSealedPrivateKey(kek, 'gh-sealed-v1:AAAA', 'tls-server'), 'PKI_KEY_BLOB_MALFORMED');
    expectCode(() => sealPrivateKey(Buffer.alloc(8), privateKeyPem, 'x'), 'PKI_KEK_INVALID');
  });
});

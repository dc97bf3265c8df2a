import { createPrivateKey, createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyAlgorithmOf } from './key-algorithm.ts';
import { generateKeyPair } from './key-pair.ts';

describe('generateKeyPair', () => {
  it('defaults to EC P-256 and returns PKCS#8 / SPKI PEM of the same key', () => {
    const pair = generateKeyPair();
    expect(pair.privateKeyPem.startsWith('-----BEGIN PRIVATE KEY-----\n')).toBe(true);
    expect(pair.publicKeyPem.startsWith('-----BEGIN PUBLIC KEY-----\n')).toBe(true);
    expect(keyAlgorithmOf(pair.publicKey)).toBe('EC_P256');
    expect(createPublicKey(createPrivateKey(pair.privateKeyPem)).equals(pair.publicKey)).toBe(true);
    expect(createPublicKey(pair.publicKeyPem).equals(pair.publicKey)).toBe(true);
    expect(pair.spkiDer.equals(pair.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
  });

  it('generates P-384 and RSA keys', () => {
    expect(keyAlgorithmOf(generateKeyPair('EC_P384').publicKey)).toBe('EC_P384');
    expect(keyAlgorithmOf(generateKeyPair('RSA_2048').publicKey)).toBe('RSA_2048');
  });
});

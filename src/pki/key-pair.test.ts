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

  it('assembles the same SPKI DER as OpenSSL encodes, for every EC curve and any coordinates (leading zero bytes)', () => {
    for (const algorithm of ['EC_P256', 'EC_P384'] as const) {
      // 300 keys: a coordinate starts with a zero byte in about 1 key of 128 (JWK keeps it; were it dropped, the
      // length check would fall back to OpenSSL's encoding), so a run sees that case with a probability of about 0.9
      for (let i = 0; i < 300; i++) {
        const pair = generateKeyPair(algorithm);
        expect(pair.spkiDer.equals(pair.publicKey.export({ type: 'spki', format: 'der' })), algorithm).toBe(true);
      }
    }
  });
});

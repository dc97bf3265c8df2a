import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
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

  it('encodes the SubjectPublicKeyInfo of EC keys as OpenSSL does, for keys that sign and verify (P-256, P-384)', () => {
    // generateKeyPair builds EC pairs from createECDH (no OpenSSL encoder); 300 keys also cover scalars with leading
    // zero bytes (1 in 256), which the JWK import receives padded to the coordinate size.
    const data = Buffer.from('gatehouse');
    const seen = new Set<string>();
    for (const [algorithm, curve, size] of [['EC_P256', 'prime256v1', 32], ['EC_P384', 'secp384r1', 48]] as const) {
      for (let i = 0; i < 150; i += 1) {
        const pair = generateKeyPair(algorithm);
        const derived = createPublicKey(pair.privateKey);
        expect(pair.spkiDer.equals(derived.export({ type: 'spki', format: 'der' }))).toBe(true);
        expect(pair.publicKey.equals(derived)).toBe(true);
        expect(pair.privateKey.asymmetricKeyDetails?.namedCurve).toBe(curve);
        // the PKCS#8 PEM is encoded without OpenSSL: byte for byte OpenSSL's export, and OpenSSL reads it back
        expect(pair.privateKeyPem).toBe(pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
        expect(createPrivateKey(pair.privateKeyPem).equals(pair.privateKey)).toBe(true);
        // a second read returns the kept PEM (the DER it was encoded from is zeroed after the first)
        expect(createPrivateKey(pair.privateKeyPem).equals(pair.privateKey)).toBe(true);
        expect(Buffer.from(String(pair.privateKey.export({ format: 'jwk' }).d), 'base64url').length).toBe(size);
        const signature = sign(null, data, pair.privateKey);
        expect(verify(null, data, createPublicKey({ key: pair.spkiDer, format: 'der', type: 'spki' }), signature)).toBe(true);
        expect(verify(null, Buffer.from('other'), pair.publicKey, signature)).toBe(false);
        seen.add(pair.spkiDer.toString('hex'));
      }
    }
    expect(seen.size).toBe(300);
  });

  it('generates P-384 and RSA keys', () => {
    expect(keyAlgorithmOf(generateKeyPair('EC_P384').publicKey)).toBe('EC_P384');
    expect(keyAlgorithmOf(generateKeyPair('RSA_2048').publicKey)).toBe('RSA_2048');
  });
});

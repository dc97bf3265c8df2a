import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { PkiErrors } from './errors.ts';

const VERSION = 1;

/**
 * Encrypts a private key (PKCS#8 PEM) with the key-encryption key, AES-256-GCM with `label` as associated data,
 * for keys that must be handed to OpenSSL itself (the TLS server key of the listeners). Format:
 * `version(1) ‖ iv(12) ‖ tag(16) ‖ ciphertext`, base64.
 */
export function sealPrivateKey(kek: Buffer, privateKeyPem: string, label: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, iv);
  cipher.setAAD(Buffer.from(label, 'utf8'));
  const ct = Buffer.concat([cipher.update(privateKeyPem, 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), ct]).toString('base64');
}

/** Decrypts what {@link sealPrivateKey} wrote; `PKI_KEK_MISMATCH` if the KEK or label differ or the blob was altered. */
export function openSealedPrivateKey(kek: Buffer, sealed: string, label: string): string {
  const raw = Buffer.from(sealed, 'base64');
  if (raw.length < 30 || raw[0] !== VERSION) throw PkiErrors.error('PKI_KEK_MISMATCH', 'the sealed key is not in a known format');
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, raw.subarray(1, 13));
    decipher.setAAD(Buffer.from(label, 'utf8'));
    decipher.setAuthTag(raw.subarray(13, 29));
    return Buffer.concat([decipher.update(raw.subarray(29)), decipher.final()]).toString('utf8');
  } catch (cause) {
    throw PkiErrors.error('PKI_KEK_MISMATCH', 'the key-encryption key does not open this key (wrong KEK?)', { cause });
  }
}

import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { PkiErrors } from './errors.ts';
import { KEK_LENGTH } from './kek.ts';

const ENVELOPE_VERSION = 1;
const IV_LENGTH = 12;
const TAG_LENGTH = 16;

/** Wraps a 32-byte key-encryption key in a secret KeyObject (kept off the JS heap). Throws `PKI_KEK_INVALID`. */
export function kekKeyObject(kek: Uint8Array): KeyObject {
  if (!(kek instanceof Uint8Array) || kek.length !== KEK_LENGTH) {
    throw PkiErrors.error('PKI_KEK_INVALID', 'the key-encryption key must be exactly 32 bytes');
  }
  return createSecretKey(Buffer.from(kek));
}

/**
 * Seals bytes under the KEK with AES-256-GCM: `0x01 ‖ IV (12, random) ‖ ciphertext ‖ tag (16)`; `aad` binds the
 * envelope to its name (a keyRef or a label) so it cannot be moved to another.
 */
export function sealEnvelope(kek: KeyObject, aad: string, plaintext: Uint8Array): Buffer {
  const iv = randomBytes(IV_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', kek, iv, { authTagLength: TAG_LENGTH });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([ENVELOPE_VERSION]), iv, ciphertext, cipher.getAuthTag()]);
}

/**
 * Opens an envelope made by {@link sealEnvelope}. Throws `PKI_KEY_BLOB_MALFORMED` for an unknown layout and
 * `PKI_KEK_MISMATCH` when authentication fails (wrong KEK, other name, altered bytes). The caller should wipe the
 * returned plaintext after use.
 */
export function openEnvelope(kek: KeyObject, aad: string, envelope: Uint8Array): Buffer {
  const bytes = Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength);
  if (bytes.length < 1 + IV_LENGTH + TAG_LENGTH + 1 || bytes[0] !== ENVELOPE_VERSION) {
    throw PkiErrors.error('PKI_KEY_BLOB_MALFORMED', 'the encrypted key has an unknown format');
  }
  const decipher = createDecipheriv('aes-256-gcm', kek, bytes.subarray(1, 1 + IV_LENGTH), {
    authTagLength: TAG_LENGTH,
  });
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_LENGTH));
  const first = decipher.update(bytes.subarray(1 + IV_LENGTH, bytes.length - TAG_LENGTH));
  try {
    return Buffer.concat([first, decipher.final()]);
  } catch (error) {
    throw PkiErrors.error(
      'PKI_KEK_MISMATCH',
      'the encrypted key could not be decrypted: wrong key-encryption key or altered data',
      { cause: error },
    );
  } finally {
    first.fill(0);
  }
}

const SEALED_PREFIX = 'gh-sealed-v1:';

/**
 * Seals text (a private key PEM, a signing secret) under the KEK for storage as text: `gh-sealed-v1:<base64>` of an
 * AES-256-GCM envelope bound to `label`. Throws `PKI_KEK_INVALID`.
 */
export function sealText(kek: Uint8Array, text: string, label: string): string {
  const plaintext = Buffer.from(text, 'utf8');
  try {
    return SEALED_PREFIX + sealEnvelope(kekKeyObject(kek), label, plaintext).toString('base64');
  } finally {
    plaintext.fill(0);
  }
}

/** True when `stored` has the form {@link sealText} writes. */
export function isSealedText(stored: string): boolean {
  return typeof stored === 'string' && stored.startsWith(SEALED_PREFIX);
}

/**
 * Opens text sealed by {@link sealText} with the same KEK and label.
 * Throws `PKI_KEY_BLOB_MALFORMED` or `PKI_KEK_MISMATCH`.
 */
export function openSealedText(kek: Uint8Array, sealed: string, label: string): string {
  if (!isSealedText(sealed)) throw PkiErrors.error('PKI_KEY_BLOB_MALFORMED', 'the sealed value has an unknown format');
  const plaintext = openEnvelope(kekKeyObject(kek), label, Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64'));
  try {
    return plaintext.toString('utf8');
  } finally {
    plaintext.fill(0);
  }
}

/** Seals a private key PEM (e.g. the TLS listener key): {@link sealText}. */
export function sealPrivateKey(kek: Uint8Array, privateKeyPem: string, label: string): string {
  return sealText(kek, privateKeyPem, label);
}

/** Opens a key sealed by {@link sealPrivateKey}: {@link openSealedText}. */
export function openSealedPrivateKey(kek: Uint8Array, sealed: string, label: string): string {
  return openSealedText(kek, sealed, label);
}

import { randomBytes } from 'node:crypto';
import { PkiErrors } from './errors.ts';

/** Length of a key-encryption key: AES-256. */
export const KEK_LENGTH = 32;

/** Generates a random 32-byte key-encryption key (write it as hex to the KEK file or variable). */
export function generateKek(): Buffer {
  return randomBytes(KEK_LENGTH);
}

/**
 * Parses a key-encryption key given as 64 hexadecimal characters or as base64 (standard or URL-safe alphabet) of
 * exactly 32 bytes; surrounding whitespace is ignored. Throws `PKI_KEK_INVALID` otherwise. The message never echoes
 * the input.
 */
export function parseKek(text: string): Buffer {
  const trimmed = typeof text === 'string' ? text.trim() : '';
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (/^[A-Za-z0-9+/]{43}=?$/.test(trimmed) || /^[A-Za-z0-9_-]{43}=?$/.test(trimmed)) {
    const bytes = Buffer.from(trimmed.replace(/=$/, ''), trimmed.includes('-') || trimmed.includes('_') ? 'base64url' : 'base64');
    if (bytes.length === KEK_LENGTH) return bytes;
  }
  throw PkiErrors.error(
    'PKI_KEK_INVALID',
    'the key-encryption key must be 32 bytes written as 64 hexadecimal characters or as base64',
  );
}

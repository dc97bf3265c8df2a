import { PkiErrors } from './errors.ts';

/** One PEM block (RFC 7468): its label (`CERTIFICATE`, `CERTIFICATE REQUEST`, `X509 CRL`, …) and DER body. */
export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
  /** The block's text, normalised to `\n` line ends and 64-column base64. */
  readonly pem: string;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

/** Encodes DER as a PEM block with 64-character lines (RFC 7468 §2). */
export function encodePem(label: string, der: Uint8Array): string {
  const base64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let body = '';
  for (let i = 0; i < base64.length; i += 64) body += base64.slice(i, i + 64) + '\n';
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

/**
 * Splits text into its PEM blocks, in order (RFC 7468 §2; text between blocks is ignored, as OpenSSL does).
 * Throws `PKI_PEM_MALFORMED` when no complete block is found, when a BEGIN has no matching END, or when a body is
 * not strict base64.
 */
export function decodePemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  let lastEnd = 0;
  for (const match of text.matchAll(BLOCK)) {
    const [, beginLabel, rawBody, endLabel] = match;
    if (beginLabel === undefined || rawBody === undefined || endLabel === undefined) continue;
    if (beginLabel !== endLabel) {
      throw PkiErrors.error('PKI_PEM_MALFORMED', `PEM block BEGIN ${beginLabel} ends with END ${endLabel}`);
    }
    lastEnd = match.index + match[0].length;
    const body = rawBody.replace(/[\r\n\t ]/g, '');
    if (body.length === 0 || body.length % 4 !== 0 || !BASE64_BODY.test(body)) {
      throw PkiErrors.error('PKI_PEM_MALFORMED', `PEM block ${beginLabel} does not hold valid base64`);
    }
    const der = Buffer.from(body, 'base64');
    blocks.push({ label: beginLabel, der, pem: encodePem(beginLabel, der) });
  }
  if (text.slice(lastEnd).includes('-----BEGIN ')) {
    throw PkiErrors.error('PKI_PEM_MALFORMED', 'PEM block without a matching END line (truncated?)');
  }
  if (blocks.length === 0) throw PkiErrors.error('PKI_PEM_MALFORMED', 'no PEM block found');
  return blocks;
}

/**
 * Decodes text that must hold exactly one PEM block with one of `labels`.
 * Throws `PKI_PEM_MALFORMED`, `PKI_PEM_MULTIPLE_BLOCKS` or `PKI_PEM_UNEXPECTED_LABEL`.
 */
export function decodeSinglePem(text: string, labels: readonly string[]): PemBlock {
  const blocks = decodePemBlocks(text);
  if (blocks.length > 1) {
    throw PkiErrors.error('PKI_PEM_MULTIPLE_BLOCKS', `expected one PEM block, found ${blocks.length}`);
  }
  const block = blocks[0] as PemBlock;
  if (!labels.includes(block.label)) {
    throw PkiErrors.error(
      'PKI_PEM_UNEXPECTED_LABEL',
      `expected a PEM block labelled ${labels.join(' or ')}, found ${block.label}`,
    );
  }
  return block;
}

/**
 * Splits a certificate chain (leaf first, as TLS and AWS send it) into its `CERTIFICATE` PEM blocks.
 * Throws `PKI_PEM_MALFORMED` for broken text and `PKI_PEM_UNEXPECTED_LABEL` for a block that is not a certificate.
 */
export function splitPemChain(text: string): string[] {
  return decodePemBlocks(text).map((block) => {
    if (block.label !== 'CERTIFICATE') {
      throw PkiErrors.error('PKI_PEM_UNEXPECTED_LABEL', `expected CERTIFICATE blocks, found ${block.label}`);
    }
    return block.pem;
  });
}

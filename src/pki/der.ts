/**
 * A minimal DER reader and writer (ITU-T X.690 §8, §10) for the PKI hot paths: parsing CSRs and certificates and
 * assembling certificates and CRLs without a generic ASN.1 schema engine. Only what X.509 needs: low tag numbers,
 * definite lengths up to 2^32, OIDs, integers, times, strings.
 *
 * Readers work on offsets into one buffer and never copy; they throw {@link DerError}, which each parser turns into
 * its own domain error code.
 */

/** Tag bytes used by X.509 (class and constructed bit included). */
export const DerTag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  VISIBLE_STRING: 0x1a,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Tag byte of a context-specific tag `[n]`: constructed for EXPLICIT tagging or constructed types. */
export function contextTag(n: number, constructed: boolean): number {
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

/** A structural DER decoding failure; parsers convert it to their domain error. */
export class DerError extends Error {
  override readonly name = 'DerError';
}

/** One decoded tag-length-value: offsets into the buffer it was read from. */
export interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly start: number;
  /** Offset of the first content byte. */
  readonly valueStart: number;
  /** Offset just past the last content byte. */
  readonly end: number;
}

/** Reads the TLV that starts at `offset` and must end by `limit`. */
export function readTlv(bytes: Uint8Array, offset: number, limit: number = bytes.length): Tlv {
  if (offset + 2 > limit) throw new DerError('truncated DER element');
  const tag = bytes[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not supported');
  let lengthByte = bytes[offset + 1] as number;
  let position = offset + 2;
  let length: number;
  if (lengthByte < 0x80) {
    length = lengthByte;
  } else {
    lengthByte &= 0x7f;
    if (lengthByte === 0) throw new DerError('indefinite length is not DER');
    if (lengthByte > 4) throw new DerError('DER length too large');
    if (position + lengthByte > limit) throw new DerError('truncated DER length');
    length = 0;
    for (let i = 0; i < lengthByte; i++) length = length * 256 + (bytes[position + i] as number);
    position += lengthByte;
  }
  const end = position + length;
  if (end > limit) throw new DerError('DER element overruns its container');
  return { tag, start: offset, valueStart: position, end };
}

/** Reads the TLV at `offset` and checks its tag. */
export function expectTlv(bytes: Uint8Array, offset: number, limit: number, tag: number): Tlv {
  const tlv = readTlv(bytes, offset, limit);
  if (tlv.tag !== tag) {
    throw new DerError(`expected tag 0x${tag.toString(16)} but found 0x${tlv.tag.toString(16)}`);
  }
  return tlv;
}

/** Reads all children of a constructed TLV; they must fill it exactly. */
export function readChildren(bytes: Uint8Array, parent: Tlv): Tlv[] {
  const children: Tlv[] = [];
  let offset = parent.valueStart;
  while (offset < parent.end) {
    const child = readTlv(bytes, offset, parent.end);
    children.push(child);
    offset = child.end;
  }
  return children;
}

/** Reads a whole buffer that must hold exactly one TLV of tag `tag` (no trailing bytes). */
export function readWhole(bytes: Uint8Array, tag: number): Tlv {
  const tlv = expectTlv(bytes, 0, bytes.length, tag);
  if (tlv.end !== bytes.length) throw new DerError('trailing bytes after DER element');
  return tlv;
}

/** The encoded bytes of a TLV (header included), without copying. */
export function tlvBytes(bytes: Uint8Array, tlv: Tlv): Uint8Array {
  return bytes.subarray(tlv.start, tlv.end);
}

/** The content bytes of a TLV, without copying. */
export function valueOf(bytes: Uint8Array, tlv: Tlv): Uint8Array {
  return bytes.subarray(tlv.valueStart, tlv.end);
}

/** Decodes OBJECT IDENTIFIER content bytes to dotted form (X.690 §8.19). */
export function decodeOid(value: Uint8Array): string {
  if (value.length === 0) throw new DerError('empty OID');
  const parts: number[] = [];
  let current = 0;
  let started = false;
  for (let i = 0; i < value.length; i++) {
    const byte = value[i] as number;
    if (!started && byte === 0x80) throw new DerError('non-minimal OID arc');
    started = true;
    current = current * 128 + (byte & 0x7f);
    if (current > Number.MAX_SAFE_INTEGER / 128) throw new DerError('OID arc too large');
    if ((byte & 0x80) === 0) {
      if (parts.length === 0) {
        const first = current < 80 ? Math.floor(current / 40) : 2;
        parts.push(first, current - first * 40);
      } else {
        parts.push(current);
      }
      current = 0;
      started = false;
    }
  }
  if (started) throw new DerError('truncated OID');
  return parts.join('.');
}

/** Decodes the OBJECT IDENTIFIER TLV at `tlv`. */
export function readOid(bytes: Uint8Array, tlv: Tlv): string {
  if (tlv.tag !== DerTag.OID) throw new DerError('expected an OID');
  return decodeOid(valueOf(bytes, tlv));
}

/** The content bytes of a non-negative INTEGER with its sign octets stripped (big-endian magnitude). */
export function readUnsignedInteger(bytes: Uint8Array, tlv: Tlv): Uint8Array {
  if (tlv.tag !== DerTag.INTEGER) throw new DerError('expected an INTEGER');
  let value = valueOf(bytes, tlv);
  if (value.length === 0) throw new DerError('empty INTEGER');
  if (((value[0] as number) & 0x80) !== 0) throw new DerError('negative INTEGER');
  while (value.length > 1 && value[0] === 0) value = value.subarray(1);
  return value;
}

/** Decodes a small non-negative INTEGER (up to 2^48). */
export function readSmallInteger(bytes: Uint8Array, tlv: Tlv): number {
  const magnitude = readUnsignedInteger(bytes, tlv);
  if (magnitude.length > 6) throw new DerError('INTEGER too large');
  let n = 0;
  for (const byte of magnitude) n = n * 256 + byte;
  return n;
}

/** Decodes a BOOLEAN. */
export function readBoolean(bytes: Uint8Array, tlv: Tlv): boolean {
  if (tlv.tag !== DerTag.BOOLEAN || tlv.end - tlv.valueStart !== 1) throw new DerError('expected a BOOLEAN');
  return bytes[tlv.valueStart] !== 0;
}

/** Decodes a BIT STRING: its unused-bit count and the bit bytes. */
export function readBitString(bytes: Uint8Array, tlv: Tlv): { unusedBits: number; bits: Uint8Array } {
  if (tlv.tag !== DerTag.BIT_STRING || tlv.end === tlv.valueStart) throw new DerError('expected a BIT STRING');
  const unusedBits = bytes[tlv.valueStart] as number;
  if (unusedBits > 7 || (unusedBits > 0 && tlv.end - tlv.valueStart === 1)) {
    throw new DerError('bad BIT STRING padding');
  }
  return { unusedBits, bits: bytes.subarray(tlv.valueStart + 1, tlv.end) };
}

function digits(bytes: Uint8Array, offset: number, count: number): number {
  let n = 0;
  for (let i = 0; i < count; i++) {
    const c = (bytes[offset + i] as number) - 0x30;
    if (c < 0 || c > 9) throw new DerError('bad digit in time');
    n = n * 10 + c;
  }
  return n;
}

/** Decodes a UTCTime or GeneralizedTime as RFC 5280 §4.1.2.5 profiles them (`YYMMDDHHMMSSZ`, `YYYYMMDDHHMMSSZ`). */
export function readTime(bytes: Uint8Array, tlv: Tlv): Date {
  const length = tlv.end - tlv.valueStart;
  const o = tlv.valueStart;
  let year: number;
  let p: number;
  if (tlv.tag === DerTag.UTC_TIME && length === 13) {
    const yy = digits(bytes, o, 2);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    p = o + 2;
  } else if (tlv.tag === DerTag.GENERALIZED_TIME && length === 15) {
    year = digits(bytes, o, 4);
    p = o + 4;
  } else {
    throw new DerError('expected a UTCTime or GeneralizedTime in RFC 5280 form');
  }
  if (bytes[tlv.end - 1] !== 0x5a) throw new DerError('time must end in Z');
  const month = digits(bytes, p, 2);
  const day = digits(bytes, p + 2, 2);
  const hour = digits(bytes, p + 4, 2);
  const minute = digits(bytes, p + 6, 2);
  const second = digits(bytes, p + 8, 2);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    throw new DerError('time out of range');
  }
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second));
}

// ---------------------------------------------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------------------------------------------

function headerLength(contentLength: number): number {
  if (contentLength < 0x80) return 2;
  if (contentLength < 0x100) return 3;
  if (contentLength < 0x10000) return 4;
  if (contentLength < 0x1000000) return 5;
  return 6;
}

function writeHeader(target: Uint8Array, offset: number, tag: number, contentLength: number): number {
  target[offset++] = tag;
  if (contentLength < 0x80) {
    target[offset++] = contentLength;
  } else if (contentLength < 0x100) {
    target[offset++] = 0x81;
    target[offset++] = contentLength;
  } else if (contentLength < 0x10000) {
    target[offset++] = 0x82;
    target[offset++] = contentLength >>> 8;
    target[offset++] = contentLength & 0xff;
  } else if (contentLength < 0x1000000) {
    target[offset++] = 0x83;
    target[offset++] = contentLength >>> 16;
    target[offset++] = (contentLength >>> 8) & 0xff;
    target[offset++] = contentLength & 0xff;
  } else {
    target[offset++] = 0x84;
    target[offset++] = contentLength >>> 24;
    target[offset++] = (contentLength >>> 16) & 0xff;
    target[offset++] = (contentLength >>> 8) & 0xff;
    target[offset++] = contentLength & 0xff;
  }
  return offset;
}

/** Encodes one TLV whose content is the concatenation of `parts` (one allocation, one copy per part). */
export function encodeTlv(tag: number, ...parts: readonly Uint8Array[]): Buffer {
  let contentLength = 0;
  for (const part of parts) contentLength += part.length;
  const out = Buffer.allocUnsafe(headerLength(contentLength) + contentLength);
  let offset = writeHeader(out, 0, tag, contentLength);
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Encodes a SEQUENCE of already-encoded elements. */
export function encodeSequence(...elements: readonly Uint8Array[]): Buffer {
  return encodeTlv(DerTag.SEQUENCE, ...elements);
}

/** Encodes an OBJECT IDENTIFIER from dotted form. */
export function encodeOid(oid: string): Buffer {
  const arcs = oid.split('.').map((arc) => {
    if (!/^\d+$/.test(arc)) throw new DerError(`bad OID ${oid}`);
    return Number(arc);
  });
  const [first, second, ...rest] = arcs;
  if (first === undefined || second === undefined || first > 2 || (first < 2 && second > 39)) {
    throw new DerError(`bad OID ${oid}`);
  }
  const content: number[] = [];
  for (const arc of [first * 40 + second, ...rest]) {
    const groups: number[] = [arc % 128];
    let rem = Math.floor(arc / 128);
    while (rem > 0) {
      groups.unshift((rem % 128) | 0x80);
      rem = Math.floor(rem / 128);
    }
    content.push(...groups);
  }
  return encodeTlv(DerTag.OID, Uint8Array.from(content));
}

/** Encodes a non-negative INTEGER from its big-endian magnitude (adds the sign octet, strips redundant zeros). */
export function encodeUnsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  if (trimmed.length === 0) return Buffer.from([DerTag.INTEGER, 1, 0]);
  if (((trimmed[0] as number) & 0x80) !== 0) return encodeTlv(DerTag.INTEGER, Buffer.from([0]), trimmed);
  return encodeTlv(DerTag.INTEGER, trimmed);
}

/** Encodes a non-negative INTEGER. */
export function encodeInteger(value: number | bigint): Buffer {
  let n = BigInt(value);
  if (n < 0n) throw new DerError('negative INTEGER not supported');
  const bytes: number[] = [];
  do {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
  } while (n > 0n);
  return encodeUnsignedInteger(Uint8Array.from(bytes));
}

/** Encodes a BOOLEAN. */
export function encodeBoolean(value: boolean): Buffer {
  return Buffer.from([DerTag.BOOLEAN, 1, value ? 0xff : 0]);
}

/** Encodes a BIT STRING from whole bytes (no unused bits) or with the given count of unused trailing bits. */
export function encodeBitString(bits: Uint8Array, unusedBits = 0): Buffer {
  return encodeTlv(DerTag.BIT_STRING, Buffer.from([unusedBits]), bits);
}

/** Encodes an OCTET STRING. */
export function encodeOctetString(value: Uint8Array): Buffer {
  return encodeTlv(DerTag.OCTET_STRING, value);
}

/**
 * Encodes a named-bit-list BIT STRING (X.690 §11.2.2: trailing zero bits removed) from bit positions,
 * e.g. keyUsage digitalSignature = 0.
 */
export function encodeNamedBits(positions: readonly number[]): Buffer {
  if (positions.length === 0) return Buffer.from([DerTag.BIT_STRING, 1, 0]);
  const highest = Math.max(...positions);
  const byteCount = Math.floor(highest / 8) + 1;
  const bytes = new Uint8Array(byteCount);
  for (const p of positions) bytes[p >> 3] = (bytes[p >> 3] as number) | (0x80 >> (p & 7));
  const unusedBits = 7 - (highest & 7);
  return encodeBitString(bytes, unusedBits);
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * Encodes a time as RFC 5280 §4.1.2.5 requires: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, Z.
 */
export function encodeTime(date: Date): Buffer {
  const year = date.getUTCFullYear();
  const rest =
    pad(date.getUTCMonth() + 1, 2) +
    pad(date.getUTCDate(), 2) +
    pad(date.getUTCHours(), 2) +
    pad(date.getUTCMinutes(), 2) +
    pad(date.getUTCSeconds(), 2) +
    'Z';
  if (year >= 1950 && year < 2050) {
    return encodeTlv(DerTag.UTC_TIME, Buffer.from(pad(year % 100, 2) + rest, 'latin1'));
  }
  if (year < 0 || year > 9999) throw new DerError('year out of range');
  return encodeTlv(DerTag.GENERALIZED_TIME, Buffer.from(pad(year, 4) + rest, 'latin1'));
}

/** The DER NULL. */
export const DER_NULL: Buffer = Buffer.from([DerTag.NULL, 0]);

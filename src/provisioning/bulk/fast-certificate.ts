import { hash as oneShotHash, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/**
 * The fields bulk registration needs from a device certificate, read by a minimal DER walk (RFC 5280 §4.1).
 *
 * Why: `new X509Certificate()` costs about 270 µs in Node 20 — more than the whole registration budget of a line at
 * 5,000 devices/s. The walk reads only what the registry row needs; the signature is then checked with
 * `crypto.verify` against the cached public key of the registered CA whose subject is the certificate's issuer.
 * Anything unusual (no matching CA, other algorithms, a chain, a parse surprise) goes to the full `pki` path.
 */
export interface FastCertificateFields {
  readonly der: Buffer;
  readonly certificateId: string;
  readonly serialNumber: string;
  readonly issuerNameDer: Buffer;
  readonly subjectCommonName: string | null;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  readonly tbs: Buffer;
  /** node:crypto digest name of the signature algorithm. */
  readonly hash: 'sha256' | 'sha384' | 'sha512';
  readonly signature: Buffer;
}

interface Tlv {
  readonly tag: number;
  /** Start of the whole TLV. */
  readonly start: number;
  /** Start of the value. */
  readonly valueStart: number;
  /** End of the value (and of the TLV). */
  readonly end: number;
}

class Unsupported extends Error {}

function readTlv(buf: Buffer, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new Unsupported('truncated');
  const tag = buf[pos] ?? 0;
  if ((tag & 0x1f) === 0x1f) throw new Unsupported('high tag');
  let len = buf[pos + 1] ?? 0;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || p + n > limit) throw new Unsupported('length');
    len = 0;
    for (let i = 0; i < n; i += 1) len = len * 256 + (buf[p + i] ?? 0);
    p += n;
  }
  if (p + len > limit) throw new Unsupported('overflow');
  return { tag, start: pos, valueStart: p, end: p + len };
}

function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.valueStart; p < parent.end; ) {
    const t = readTlv(buf, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

const OID_HASH: ReadonlyMap<string, 'sha256' | 'sha384' | 'sha512'> = new Map([
  ['2a8648ce3d040302', 'sha256'], // ecdsa-with-SHA256
  ['2a8648ce3d040303', 'sha384'], // ecdsa-with-SHA384
  ['2a8648ce3d040304', 'sha512'], // ecdsa-with-SHA512
  ['2a864886f70d01010b', 'sha256'], // sha256WithRSAEncryption
  ['2a864886f70d01010c', 'sha384'],
  ['2a864886f70d01010d', 'sha512'],
]);
const OID_CN = '550403';
const OID_BASIC_CONSTRAINTS = '551d13';

function readTime(buf: Buffer, t: Tlv): Date {
  const s = buf.toString('latin1', t.valueStart, t.end);
  let m: RegExpExecArray | null;
  if (t.tag === 0x17 && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)) !== null) {
    const yy = Number(m[1]);
    return new Date(Date.UTC(yy >= 50 ? 1900 + yy : 2000 + yy, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  }
  if (t.tag === 0x18 && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)) !== null) {
    return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  }
  throw new Unsupported('time');
}

function commonNameOf(buf: Buffer, name: Tlv): string | null {
  for (const rdn of children(buf, name)) {
    for (const atv of children(buf, rdn)) {
      const [oid, value] = children(buf, atv);
      if (oid === undefined || value === undefined || oid.tag !== 0x06) continue;
      if (buf.toString('hex', oid.valueStart, oid.end) !== OID_CN) continue;
      if (value.tag !== 0x0c && value.tag !== 0x13 && value.tag !== 0x16) throw new Unsupported('CN string type');
      return buf.toString('utf8', value.valueStart, value.end);
    }
  }
  return null;
}

function isCaOf(buf: Buffer, extsWrapper: Tlv | undefined): boolean {
  if (extsWrapper === undefined) return false;
  const [exts] = children(buf, extsWrapper);
  if (exts === undefined) return false;
  for (const ext of children(buf, exts)) {
    const parts = children(buf, ext);
    const oid = parts[0];
    const value = parts[parts.length - 1];
    if (oid === undefined || value === undefined || buf.toString('hex', oid.valueStart, oid.end) !== OID_BASIC_CONSTRAINTS) continue;
    const seq = readTlv(buf, value.valueStart, value.end);
    const first = children(buf, seq)[0];
    return first !== undefined && first.tag === 0x01 && buf[first.valueStart] !== 0;
  }
  return false;
}

/** Reads the fields of a DER certificate; undefined when it is anything but a plain v3 certificate this walk knows. */
export function readCertificateFields(der: Buffer): FastCertificateFields | undefined {
  try {
    const cert = readTlv(der, 0, der.length);
    if (cert.tag !== 0x30 || cert.end !== der.length) return undefined;
    const [tbs, sigAlg, sigValue] = children(der, cert);
    if (tbs === undefined || sigAlg === undefined || sigValue === undefined || sigValue.tag !== 0x03) return undefined;
    const algOid = children(der, sigAlg)[0];
    const hash = algOid === undefined ? undefined : OID_HASH.get(der.toString('hex', algOid.valueStart, algOid.end));
    if (hash === undefined || der[sigValue.valueStart] !== 0) return undefined;
    const f = children(der, tbs);
    let i = 0;
    if (f[0]?.tag === 0xa0) i = 1;
    const [serial, innerAlg, issuer, validity, subject, spki] = f.slice(i, i + 6);
    if (serial?.tag !== 0x02 || innerAlg?.tag !== 0x30 || issuer?.tag !== 0x30 || validity?.tag !== 0x30 || subject?.tag !== 0x30 || spki?.tag !== 0x30) return undefined;
    if (!der.subarray(innerAlg.start, innerAlg.end).equals(der.subarray(sigAlg.start, sigAlg.end))) return undefined;
    const [nb, na] = children(der, validity);
    if (nb === undefined || na === undefined) return undefined;
    let serialStart = serial.valueStart;
    while (serialStart < serial.end - 1 && der[serialStart] === 0) serialStart += 1;
    return {
      der,
      certificateId: oneShotHash('sha256', der, 'hex'),
      serialNumber: der.toString('hex', serialStart, serial.end),
      issuerNameDer: der.subarray(issuer.start, issuer.end),
      subjectCommonName: commonNameOf(der, subject),
      notBefore: readTime(der, nb),
      notAfter: readTime(der, na),
      isCa: isCaOf(der, f.slice(i + 6).find((t) => t.tag === 0xa3)),
      tbs: der.subarray(tbs.start, tbs.end),
      hash,
      signature: der.subarray(sigValue.valueStart + 1, sigValue.end),
    };
  } catch (error) {
    if (error instanceof Unsupported) return undefined;
    throw error;
  }
}

/** Verifies the certificate's signature with `issuerKey` in libuv's thread pool (the other core does the math). */
export function verifyCertificateSignature(fields: FastCertificateFields, issuerKey: KeyObject): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      cryptoVerify(fields.hash, fields.tbs, issuerKey, fields.signature, (error, ok) => resolve(error === null && ok));
    } catch {
      resolve(false);
    }
  });
}

const BEGIN = '-----BEGIN CERTIFICATE-----';
const END = '-----END CERTIFICATE-----';

/**
 * The DER of text holding exactly one `CERTIFICATE` PEM block, or undefined for anything else (several blocks,
 * other labels). Lenient on purpose: the fast path then checks the signature over the DER, and everything it
 * declines goes through the strict `pki` parser.
 */
export function decodeSingleCertificatePem(text: string): Buffer | undefined {
  const begin = text.indexOf(BEGIN);
  if (begin === -1 || text.indexOf('-----BEGIN', begin + BEGIN.length) !== -1) return undefined;
  const end = text.indexOf(END, begin + BEGIN.length);
  if (end === -1) return undefined;
  const der = Buffer.from(text.slice(begin + BEGIN.length, end), 'base64');
  return der.length > 0 ? der : undefined;
}

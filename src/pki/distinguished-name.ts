import { DerError, DerTag, encodeOid, encodeSequence, encodeTlv, readChildren, readTlv, valueOf } from './der.ts';
import type { Tlv } from './der.ts';
import { PkiErrors } from './errors.ts';

/**
 * The attribute types Gatehouse reads from and writes to names (RFC 5280 §4.1.2.4, X.520), keyed by their usual
 * short names. They cover every `${iot:Certificate.Subject.<Field>}` policy variable and JITP certificate parameter
 * of AWS IoT: Country, Organization, OrganizationalUnit, DistinguishedNameQualifier, StateName (ST), Locality,
 * CommonName, SerialNumber, EmailAddress.
 */
export const DISTINGUISHED_NAME_ATTRIBUTES = [
  'C',
  'ST',
  'L',
  'O',
  'OU',
  'CN',
  'serialNumber',
  'dnQualifier',
  'emailAddress',
] as const;

/** One attribute short name of {@link DISTINGUISHED_NAME_ATTRIBUTES}. */
export type DistinguishedNameAttribute = (typeof DISTINGUISHED_NAME_ATTRIBUTES)[number];

/**
 * A distinguished name as a map from attribute to its values, in order of appearance. Attributes of other types
 * are not represented (they are dropped when a name is read). Encoding writes the attributes in the order of
 * {@link DISTINGUISHED_NAME_ATTRIBUTES}, one attribute per RDN.
 */
export type DistinguishedName = { readonly [K in DistinguishedNameAttribute]?: readonly string[] };

const OIDS: Record<DistinguishedNameAttribute, string> = {
  C: '2.5.4.6',
  ST: '2.5.4.8',
  L: '2.5.4.7',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  CN: '2.5.4.3',
  serialNumber: '2.5.4.5',
  dnQualifier: '2.5.4.46',
  emailAddress: '1.2.840.113549.1.9.1',
};

const ENCODED_OIDS = new Map<DistinguishedNameAttribute, Buffer>(
  DISTINGUISHED_NAME_ATTRIBUTES.map((name) => [name, encodeOid(OIDS[name])]),
);

/** Third arc byte of the `2.5.4.x` attribute OIDs → name. */
const X520_BY_ARC = new Map<number, DistinguishedNameAttribute>([
  [3, 'CN'],
  [5, 'serialNumber'],
  [6, 'C'],
  [7, 'L'],
  [8, 'ST'],
  [10, 'O'],
  [11, 'OU'],
  [46, 'dnQualifier'],
]);
const EMAIL_OID_VALUE = Buffer.from('2a864886f70d010901', 'hex');

function attributeOf(bytes: Buffer, oid: Tlv): DistinguishedNameAttribute | undefined {
  if (oid.tag !== DerTag.OID) throw new DerError('expected an attribute type OID');
  const length = oid.end - oid.valueStart;
  if (length === 3 && bytes[oid.valueStart] === 0x55 && bytes[oid.valueStart + 1] === 0x04) {
    return X520_BY_ARC.get(bytes[oid.valueStart + 2] as number);
  }
  if (length === EMAIL_OID_VALUE.length && EMAIL_OID_VALUE.equals(valueOf(bytes, oid))) return 'emailAddress';
  return undefined;
}

function decodeString(bytes: Buffer, tlv: Tlv): string | undefined {
  switch (tlv.tag) {
    case DerTag.UTF8_STRING:
      return bytes.toString('utf8', tlv.valueStart, tlv.end);
    case DerTag.PRINTABLE_STRING:
    case DerTag.IA5_STRING:
    case DerTag.VISIBLE_STRING:
    case DerTag.T61_STRING:
      return bytes.toString('latin1', tlv.valueStart, tlv.end);
    case DerTag.BMP_STRING: {
      if ((tlv.end - tlv.valueStart) % 2 !== 0) throw new DerError('odd BMPString length');
      return Buffer.from(bytes.subarray(tlv.valueStart, tlv.end)).swap16().toString('utf16le');
    }
    case DerTag.UNIVERSAL_STRING: {
      if ((tlv.end - tlv.valueStart) % 4 !== 0) throw new DerError('bad UniversalString length');
      let text = '';
      for (let i = tlv.valueStart; i < tlv.end; i += 4) text += String.fromCodePoint(bytes.readUInt32BE(i));
      return text;
    }
    default:
      return undefined;
  }
}

/**
 * Reads a Name (RFC 5280 §4.1.2.4) at `name`. Multi-valued RDNs are flattened; unknown attribute types and value
 * types are skipped. Throws {@link DerError} on structural errors.
 */
export function readName(bytes: Buffer, name: Tlv): DistinguishedName {
  if (name.tag !== DerTag.SEQUENCE) throw new DerError('expected a Name');
  const result: Partial<Record<DistinguishedNameAttribute, string[]>> = {};
  for (const rdn of readChildren(bytes, name)) {
    if (rdn.tag !== DerTag.SET) throw new DerError('expected a RelativeDistinguishedName');
    for (const atv of readChildren(bytes, rdn)) {
      if (atv.tag !== DerTag.SEQUENCE) throw new DerError('expected an AttributeTypeAndValue');
      const type = readTlv(bytes, atv.valueStart, atv.end);
      const value = readTlv(bytes, type.end, atv.end);
      if (value.end !== atv.end) throw new DerError('trailing bytes in AttributeTypeAndValue');
      const attribute = attributeOf(bytes, type);
      if (attribute === undefined) continue;
      const text = decodeString(bytes, value);
      if (text === undefined) continue;
      (result[attribute] ??= []).push(text);
    }
  }
  return result;
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
const ASCII = /^[\x20-\x7e]*$/;
const MAX_VALUE_LENGTH = 256;

function encodeValue(attribute: DistinguishedNameAttribute, value: string): Buffer {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_VALUE_LENGTH || value.includes('\0')) {
    throw PkiErrors.error(
      'PKI_SUBJECT_INVALID',
      `subject ${attribute} must be a non-empty string of at most ${MAX_VALUE_LENGTH} characters`,
    );
  }
  switch (attribute) {
    case 'C':
      if (!/^[A-Za-z]{2}$/.test(value)) {
        throw PkiErrors.error('PKI_SUBJECT_INVALID', 'subject C must be a two-letter ISO 3166 country code');
      }
      return encodeTlv(DerTag.PRINTABLE_STRING, Buffer.from(value, 'latin1'));
    case 'serialNumber':
    case 'dnQualifier':
      // X.520 defines both as PrintableString; fall back to UTF8String for other characters.
      return PRINTABLE.test(value)
        ? encodeTlv(DerTag.PRINTABLE_STRING, Buffer.from(value, 'latin1'))
        : encodeTlv(DerTag.UTF8_STRING, Buffer.from(value, 'utf8'));
    case 'emailAddress':
      if (!ASCII.test(value)) throw PkiErrors.error('PKI_SUBJECT_INVALID', 'subject emailAddress must be ASCII');
      return encodeTlv(DerTag.IA5_STRING, Buffer.from(value, 'latin1'));
    default:
      return encodeTlv(DerTag.UTF8_STRING, Buffer.from(value, 'utf8'));
  }
}

/**
 * Encodes a Name (RFC 5280 §4.1.2.4): attributes in the order of {@link DISTINGUISHED_NAME_ATTRIBUTES}, one per RDN;
 * C, serialNumber and dnQualifier as PrintableString, emailAddress as IA5String, the rest as UTF8String.
 * Throws `PKI_SUBJECT_INVALID` for an empty or overlong value or a bad country code.
 */
export function encodeName(name: DistinguishedName): Buffer {
  const rdns: Buffer[] = [];
  for (const attribute of DISTINGUISHED_NAME_ATTRIBUTES) {
    const values = name[attribute];
    if (values === undefined) continue;
    if (!Array.isArray(values)) {
      throw PkiErrors.error('PKI_SUBJECT_INVALID', `subject ${attribute} must be an array of strings`);
    }
    const oid = ENCODED_OIDS.get(attribute) as Buffer;
    for (const value of values as readonly string[]) {
      rdns.push(encodeTlv(DerTag.SET, encodeSequence(oid, encodeValue(attribute, value))));
    }
  }
  return encodeSequence(...rdns);
}

/** True when the name holds no attribute value. */
export function isEmptyName(name: DistinguishedName): boolean {
  return DISTINGUISHED_NAME_ATTRIBUTES.every((attribute) => (name[attribute]?.length ?? 0) === 0);
}

/** Formats a name for humans and logs in RFC 4514 style, most significant attribute first (`C=DE, O=Acme, CN=x`). */
export function formatDistinguishedName(name: DistinguishedName): string {
  const parts: string[] = [];
  for (const attribute of DISTINGUISHED_NAME_ATTRIBUTES) {
    for (const value of name[attribute] ?? []) {
      parts.push(`${attribute}=${value.replace(/([,+"\\<>;=])/g, '\\$1')}`);
    }
  }
  return parts.join(', ');
}

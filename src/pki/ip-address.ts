import { isIPv4, isIPv6 } from 'node:net';
import { PkiErrors } from './errors.ts';

/**
 * Encodes an IPv4 or IPv6 address as the 4 or 16 octets of an iPAddress GeneralName (RFC 5280 §4.2.1.6).
 * Throws `PKI_SUBJECT_ALT_NAME_INVALID` for anything else (zone ids and CIDR suffixes included).
 */
export function parseIpAddress(text: string): Buffer {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  if (!isIPv6(text) || text.includes('%')) {
    throw PkiErrors.error('PKI_SUBJECT_ALT_NAME_INVALID', `"${text.slice(0, 64)}" is not an IP address`);
  }
  let head = text;
  const lastColon = head.lastIndexOf(':');
  const last = head.slice(lastColon + 1);
  if (last.includes('.')) {
    // Embedded IPv4 (e.g. ::ffff:192.0.2.1): becomes the last two groups.
    const [a = 0, b = 0, c = 0, d = 0] = last.split('.').map(Number);
    head = `${head.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [left = '', right] = head.split('::');
  const parseGroups = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const leftGroups = parseGroups(left);
  const rightGroups = right === undefined ? [] : parseGroups(right);
  const zeros = right === undefined ? 0 : 8 - leftGroups.length - rightGroups.length;
  const groups = [...leftGroups, ...new Array<number>(zeros).fill(0), ...rightGroups];
  const out = Buffer.alloc(16);
  groups.forEach((group, i) => out.writeUInt16BE(group, i * 2));
  return out;
}

/** Formats iPAddress octets: IPv4 dotted quad, IPv6 in RFC 5952 canonical text; other lengths as hex. */
export function formatIpAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) return Buffer.from(bytes).toString('hex');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  // Longest run of at least two zero groups, the first one on ties (RFC 5952 §4.2).
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

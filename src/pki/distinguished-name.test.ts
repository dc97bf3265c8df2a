import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTlv } from './der.ts';
import { encodeName, formatDistinguishedName, readName } from './distinguished-name.ts';
import { Scratch } from './test-support.ts';

let scratch: Scratch;
beforeAll(() => {
  scratch = new Scratch();
});
afterAll(() => scratch.remove());

describe('distinguished names', () => {
  it('encodes with the X.520 string types, in a fixed order, and reads back', () => {
    const name = { CN: ['Gerät 1'], C: ['DE'], O: ['Acme'], serialNumber: ['SN-1'], emailAddress: ['a@b.c'], dnQualifier: ['q'] };
    const der = encodeName(name);
    expect(readName(der, readTlv(der, 0))).toEqual({ C: ['DE'], O: ['Acme'], CN: ['Gerät 1'], serialNumber: ['SN-1'], dnQualifier: ['q'], emailAddress: ['a@b.c'] });
    scratch.write('name.der', der);
    const dump = scratch.opensslOk(['asn1parse', '-inform', 'DER', '-in', 'name.der']);
    expect(dump).toMatch(/:countryName\s*\n.*PRINTABLESTRING\s+:DE/);
    expect(dump).toMatch(/:commonName\s*\n.*UTF8STRING/);
    expect(dump).toMatch(/:serialNumber\s*\n.*PRINTABLESTRING\s+:SN-1/);
    expect(dump).toMatch(/:emailAddress\s*\n.*IA5STRING\s+:a@b.c/);
    expect(dump.indexOf(':countryName')).toBeLessThan(dump.indexOf(':organizationName'));
  });

  it('skips attribute types it does not represent and reads legacy string types', () => {
    scratch.opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'k.pem', '-subj', '/street=Main St 1/title=Boss/CN=x', '-outform', 'DER', '-out', 'r.der']);
    const der = scratch.read('r.der');
    // CertificationRequest → CertificationRequestInfo → [version, subject, …]
    const info = readTlv(der, readTlv(der, 0).valueStart);
    const version = readTlv(der, info.valueStart);
    const subject = readTlv(der, version.end);
    expect(readName(der, subject)).toEqual({ CN: ['x'] });
    // BMPString "AB" as CN
    const bmp = Buffer.from('300f310d300b06035504031e0400410042', 'hex');
    expect(readName(bmp, readTlv(bmp, 0))).toEqual({ CN: ['AB'] });
  });

  it('formats RFC 4514 style with escaping', () => {
    expect(formatDistinguishedName({ CN: ['a,b'], O: ['Acme'], C: ['US'] })).toBe('C=US, O=Acme, CN=a\\,b');
  });
});

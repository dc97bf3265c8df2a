import { describe, expect, it } from 'vitest';
import { formatIpAddress, parseIpAddress } from './ip-address.ts';

describe('IP addresses of iPAddress GeneralNames', () => {
  it('round-trips IPv4 and IPv6 in RFC 5952 form', () => {
    const cases: [string, string, string][] = [
      ['127.0.0.1', '7f000001', '127.0.0.1'],
      ['::1', '00000000000000000000000000000001', '::1'],
      ['::', '00000000000000000000000000000000', '::'],
      ['2001:DB8:0:0:1:0:0:1', '20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
      ['fe80::', 'fe800000000000000000000000000000', 'fe80::'],
      ['::ffff:192.0.2.1', '00000000000000000000ffffc0000201', '::ffff:c000:201'],
      ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008', '1:2:3:4:5:6:7:8'],
      ['1:0:0:2:0:0:0:3', '00010000000000020000000000000003', '1:0:0:2::3'],
    ];
    for (const [text, bytes, canonical] of cases) {
      expect(parseIpAddress(text).toString('hex')).toBe(bytes);
      expect(formatIpAddress(Buffer.from(bytes, 'hex'))).toBe(canonical);
    }
  });

  it('rejects what is not an address', () => {
    for (const bad of ['', 'localhost', '1.2.3', '1.2.3.256', '10.0.0.0/8', 'fe80::1%eth0', ':::']) {
      expect(() => parseIpAddress(bad)).toThrow(expect.objectContaining({ code: 'PKI_SUBJECT_ALT_NAME_INVALID' }));
    }
  });
});

import { describe, expect, it } from 'vitest';
import {
  DerError,
  DerTag,
  decodeOid,
  encodeInteger,
  encodeNamedBits,
  encodeOid,
  encodeTime,
  encodeTlv,
  encodeUnsignedInteger,
  readChildren,
  readTime,
  readTlv,
  readUnsignedInteger,
  readWhole,
} from './der.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('DER writer and reader (X.690)', () => {
  it('encodes and decodes OIDs, including large and multi-byte arcs', () => {
    for (const oid of ['1.2.840.10045.4.3.2', '2.5.29.19', '1.3.6.1.4.1.99999.1', '2.999.3', '0.9.2342.19200300.100.1.1']) {
      const tlv = encodeOid(oid);
      expect(tlv[0]).toBe(DerTag.OID);
      expect(decodeOid(tlv.subarray(2))).toBe(oid);
    }
    expect(hex(encodeOid('1.2.840.113549.1.1.11'))).toBe('06092a864886f70d01010b');
    expect(() => decodeOid(Buffer.from([0x2a, 0x86]))).toThrow(DerError);
    expect(() => decodeOid(Buffer.from([0x2a, 0x80, 0x01]))).toThrow(DerError);
  });

  it('writes minimal lengths in short and long form', () => {
    expect(hex(encodeTlv(0x04, Buffer.alloc(127))).slice(0, 4)).toBe('047f');
    expect(hex(encodeTlv(0x04, Buffer.alloc(128))).slice(0, 6)).toBe('048180');
    expect(hex(encodeTlv(0x04, Buffer.alloc(256))).slice(0, 8)).toBe('04820100');
    expect(hex(encodeTlv(0x04, Buffer.alloc(70000))).slice(0, 10)).toBe('0483011170');
    const big = encodeTlv(0x30, Buffer.alloc(70000));
    expect(readWhole(big, 0x30).end).toBe(big.length);
  });

  it('encodes non-negative integers minimally with a sign octet when needed', () => {
    expect(hex(encodeInteger(0))).toBe('020100');
    expect(hex(encodeInteger(127))).toBe('02017f');
    expect(hex(encodeInteger(128))).toBe('02020080');
    expect(hex(encodeInteger(2n ** 64n))).toBe('0209010000000000000000');
    expect(hex(encodeUnsignedInteger(Buffer.from('0000ff', 'hex')))).toBe('020200ff');
    const tlv = encodeUnsignedInteger(Buffer.from('80', 'hex'));
    expect(hex(readUnsignedInteger(tlv, readTlv(tlv, 0)))).toBe('80');
    expect(() => readUnsignedInteger(Buffer.from('0201ff', 'hex'), readTlv(Buffer.from('0201ff', 'hex'), 0))).toThrow(DerError);
  });

  it('encodes named bit lists without trailing zero bits', () => {
    expect(hex(encodeNamedBits([0]))).toBe('03020780'); // digitalSignature
    expect(hex(encodeNamedBits([0, 2]))).toBe('030205a0'); // + keyEncipherment
    expect(hex(encodeNamedBits([5, 6]))).toBe('03020106'); // keyCertSign, cRLSign
    expect(hex(encodeNamedBits([8]))).toBe('0303070080'); // decipherOnly
  });

  it('writes UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', () => {
    const utc = encodeTime(new Date('2049-12-31T23:59:59.999Z'));
    expect(utc.subarray(2).toString('latin1')).toBe('491231235959Z');
    const generalized = encodeTime(new Date('2050-01-01T00:00:00Z'));
    expect(generalized[0]).toBe(DerTag.GENERALIZED_TIME);
    expect(generalized.subarray(2).toString('latin1')).toBe('20500101000000Z');
    for (const time of [utc, generalized, encodeTime(new Date('1999-06-30T12:00:00Z'))]) {
      expect(readTime(time, readTlv(time, 0)).getTime() % 1000).toBe(0);
    }
    expect(readTime(generalized, readTlv(generalized, 0))).toEqual(new Date('2050-01-01T00:00:00Z'));
    const local = Buffer.from('170d3439313233313233353935392b', 'hex'); // no Z
    expect(() => readTime(local, readTlv(local, 0))).toThrow(DerError);
  });

  it('rejects indefinite lengths, overruns, high tags and trailing bytes', () => {
    expect(() => readTlv(Buffer.from('3080', 'hex'), 0)).toThrow(/indefinite/);
    expect(() => readTlv(Buffer.from('300500', 'hex'), 0)).toThrow(/overruns/);
    expect(() => readTlv(Buffer.from('1f0100', 'hex'), 0)).toThrow(/high tag/);
    expect(() => readTlv(Buffer.from('30', 'hex'), 0)).toThrow(/truncated/);
    expect(() => readTlv(Buffer.from('3085010000000000', 'hex'), 0)).toThrow(/too large/);
    expect(() => readWhole(Buffer.from('300000', 'hex'), 0x30)).toThrow(/trailing/);
    const nested = Buffer.from('3006020101020102', 'hex');
    expect(readChildren(nested, readTlv(nested, 0)).map((c) => c.tag)).toEqual([2, 2]);
    const bad = Buffer.from('30040201010201', 'hex');
    expect(() => readChildren(bad, readTlv(bad, 0))).toThrow(DerError);
  });
});

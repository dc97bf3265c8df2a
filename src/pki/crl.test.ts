import 'reflect-metadata';
import * as peculiar from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCertificate } from './certificate.ts';
import type { IssuedCertificate } from './certificate-issuer.ts';
import { buildCrl, isRevocationReason } from './crl.ts';
import type { BuildCrlOptions } from './crl.ts';
import { generateKeyPair } from './key-pair.ts';
import { Scratch, createTestHierarchy } from './test-support.ts';
import type { TestHierarchy } from './test-support.ts';

const HOUR = 3_600_000;
let h: TestHierarchy;
let scratch: Scratch;
let good: IssuedCertificate;
let revoked: IssuedCertificate;

function issue(): IssuedCertificate {
  return h.issuer.issue({ publicKey: generateKeyPair().spkiDer, subject: { CN: ['device'] }, validityDays: 10, extendedKeyUsage: 'clientAuth' });
}

function expectCode(fn: () => unknown, code: string): void {
  expect(fn).toThrow(expect.objectContaining({ code }));
}

function intermediateCrl(overrides: Partial<BuildCrlOptions> = {}): BuildCrlOptions {
  const now = Date.now();
  return {
    issuerCertificate: h.intermediate.certificate,
    signer: h.intermediateSigner,
    entries: [{ serialNumber: revoked.serialNumber, revokedAt: new Date(now - HOUR), reason: 'keyCompromise' }],
    thisUpdate: new Date(now - 60_000),
    nextUpdate: new Date(now + 24 * HOUR),
    crlNumber: 7n,
    ...overrides,
  };
}

/** `openssl verify -crl_check_all` with both CRLs. */
function verifyWithCrls(leafPem: string): { status: number; output: string } {
  scratch.write('leaf.pem', leafPem);
  const result = scratch.openssl([
    'verify', '-crl_check_all', '-CAfile', 'root.pem', '-untrusted', 'intermediate.pem',
    '-CRLfile', 'intermediate.crl', '-CRLfile', 'root.crl', 'leaf.pem',
  ]);
  return { status: result.status, output: result.stdout + result.stderr };
}

beforeAll(async () => {
  h = await createTestHierarchy({ crlDistributionPointUrl: 'http://localhost:8080/crl/root.crl' });
  scratch = new Scratch();
  scratch.write('root.pem', h.root.certificate.pem);
  scratch.write('intermediate.pem', h.intermediate.certificate.pem);
  good = issue();
  revoked = issue();
});
afterAll(() => scratch.remove());

describe('buildCrl', () => {
  it('makes CRLs that OpenSSL uses: the revoked certificate fails, the good one passes', () => {
    const crl = buildCrl(intermediateCrl());
    expect(crl.pem.startsWith('-----BEGIN X509 CRL-----\n')).toBe(true);
    scratch.write('intermediate.crl', crl.pem);
    const now = Date.now();
    scratch.write(
      'root.crl',
      buildCrl({
        issuerCertificate: h.root.certificate,
        signer: h.rootSigner,
        entries: [],
        thisUpdate: new Date(now - 60_000),
        nextUpdate: new Date(now + HOUR),
        crlNumber: 1n,
      }).pem,
    );
    expect(verifyWithCrls(good.pem)).toEqual({ status: 0, output: 'leaf.pem: OK\n' });
    const result = verifyWithCrls(revoked.pem);
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('certificate revoked');

    const text = scratch.opensslOk(['crl', '-in', 'intermediate.crl', '-noout', '-text']);
    expect(text).toContain('Version 2');
    expect(text).toMatch(/X509v3 CRL Number:\s+7/);
    expect(text).toMatch(/Authority Key Identifier:\s+([0-9A-F]{2}:){19}[0-9A-F]{2}/);
    expect(text.replace(/:/g, '').toLowerCase()).toContain(h.intermediate.certificate.subjectKeyIdentifier);
    expect(text).toContain(`Serial Number: ${revoked.serialNumber.toUpperCase()}`);
    expect(text).toContain('Key Compromise');
    scratch.write('chain.pem', h.intermediate.certificate.pem + h.root.certificate.pem);
    const verified = scratch.openssl(['crl', '-in', 'intermediate.crl', '-CAfile', 'chain.pem', '-noout']);
    expect(verified.stdout + verified.stderr).toContain('verify OK');
  });

  it('puts a revoked intermediate on the root CRL, which fails every leaf below it', () => {
    const now = Date.now();
    scratch.write('intermediate.crl', buildCrl(intermediateCrl({ entries: [] })).pem);
    scratch.write(
      'root.crl',
      buildCrl({
        issuerCertificate: h.root.certificate,
        signer: h.rootSigner,
        entries: [{ serialNumber: h.intermediate.certificate.serialNumber, revokedAt: new Date(now - HOUR), reason: 'cACompromise' }],
        thisUpdate: new Date(now - 60_000),
        nextUpdate: new Date(now + HOUR),
        crlNumber: 2n,
      }).pem,
    );
    const result = verifyWithCrls(good.pem);
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('certificate revoked');
  });

  it('is read alike by @peculiar/x509', () => {
    const revokedAt = new Date(Math.floor(Date.now() / 1000) * 1000 - HOUR);
    const crl = buildCrl(
      intermediateCrl({
        entries: [
          { serialNumber: revoked.serialNumber, revokedAt, reason: 'superseded' },
          { serialNumber: good.serialNumber, revokedAt, reason: 'unspecified' },
          { serialNumber: '0a', revokedAt },
        ],
      }),
    );
    const parsed = new peculiar.X509Crl(crl.der);
    expect(parsed.issuer).toBe(new peculiar.X509Certificate(h.intermediate.certificate.der).subject);
    expect(parsed.entries.map((e) => [e.serialNumber.toLowerCase().replace(/^00/, ''), e.revocationDate.getTime(), e.reason])).toEqual([
      [revoked.serialNumber, revokedAt.getTime(), peculiar.X509CrlReason.superseded],
      [good.serialNumber, revokedAt.getTime(), undefined],
      ['0a', revokedAt.getTime(), undefined],
    ]);
  });

  it('refuses bad input with precise codes', () => {
    expectCode(() => buildCrl(intermediateCrl({ nextUpdate: new Date(Date.now() - 2 * HOUR) })), 'PKI_VALIDITY_INVALID');
    expectCode(() => buildCrl(intermediateCrl({ thisUpdate: new Date(Number.NaN) })), 'PKI_VALIDITY_INVALID');
    expectCode(() => buildCrl(intermediateCrl({ entries: [{ serialNumber: 'xyz', revokedAt: new Date() }] })), 'PKI_SERIAL_NUMBER_INVALID');
    expectCode(() => buildCrl(intermediateCrl({ entries: [{ serialNumber: '00', revokedAt: new Date() }] })), 'PKI_SERIAL_NUMBER_INVALID');
    expectCode(
      () => buildCrl(intermediateCrl({ entries: [{ serialNumber: '01', revokedAt: new Date(), reason: 'lost' as 'keyCompromise' }] })),
      'PKI_REVOCATION_REASON_INVALID',
    );
    expectCode(() => buildCrl(intermediateCrl({ crlNumber: -1n })), 'PKI_CRL_NUMBER_INVALID');
    expectCode(() => buildCrl(intermediateCrl({ signer: h.rootSigner })), 'PKI_SIGNER_MISMATCH');
    expectCode(() => buildCrl(intermediateCrl({ issuerCertificate: parseCertificate(good.der) })), 'PKI_NOT_A_CA');
  });
});

describe('isRevocationReason', () => {
  it('knows the RFC 5280 names only', () => {
    expect(isRevocationReason('keyCompromise')).toBe(true);
    expect(isRevocationReason('toString')).toBe(false);
    expect(isRevocationReason('KEY_COMPROMISE')).toBe(false);
    expect(isRevocationReason(1)).toBe(false);
  });
});

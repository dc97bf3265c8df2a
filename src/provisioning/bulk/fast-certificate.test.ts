import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as pki from '../../pki/index.ts';
import { decodeSingleCertificatePem, readCertificateFields, verifyCertificateSignature } from './fast-certificate.ts';
import { convertMicrochipManifest } from './manifest-microchip.ts';

const MANIFESTS = path.resolve(import.meta.dirname, '../../../../shared/data/manifests');
const dir = mkdtempSync(path.join(tmpdir(), 'gh-fastcert-'));
const ossl = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function samples(): string[] {
  const out: string[] = [];
  // EC and RSA CAs and leaves made by openssl, with UTCTime and GeneralizedTime validity.
  ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ec.key', '-out', 'ec.pem', '-subj', '/CN=EC CA/O=Acme', '-days', '20000', '-addext', 'basicConstraints=critical,CA:TRUE']);
  ossl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'rsa.key', '-out', 'rsa.pem', '-subj', '/O=No CN', '-days', '30']);
  out.push(readFileSync(path.join(dir, 'ec.pem'), 'utf8'), readFileSync(path.join(dir, 'rsa.pem'), 'utf8'));
  // Real vendor certificates: Espressif (RSA) and Microchip (ECDSA, long serial, GeneralizedTime).
  for (const m of readFileSync(path.join(MANIFESTS, 'espressif.csv'), 'utf8').matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g)) out.push(m[0]);
  for (const e of convertMicrochipManifest(readFileSync(path.join(MANIFESTS, 'microchip-ECC608C-TNGTLSU-B.json'), 'utf8'), { verifiers: [readFileSync(path.join(MANIFESTS, 'MCHP_manifest_signer_5_Mar_6-2024_noExpiration.crt'), 'utf8')] })) {
    if (e.kind === 'device') out.push(e.certificatePem);
  }
  return out;
}

describe('fast certificate reader', () => {
  it('reads the same fields as the pki parser on openssl and vendor certificates', () => {
    const all = samples();
    expect(all.length).toBeGreaterThan(10);
    for (const pem of all) {
      const full = pki.parseCertificate(pem);
      const fast = readCertificateFields(full.der);
      expect(fast, pem.slice(0, 80)).toBeDefined();
      expect(fast?.certificateId).toBe(full.certificateId);
      expect(fast?.serialNumber).toBe(full.serialNumber);
      expect(fast?.issuerNameDer.equals(full.issuerNameDer)).toBe(true);
      expect(fast?.subjectCommonName).toBe(full.subject.CN?.[0] ?? null);
      expect(fast?.notBefore.getTime()).toBe(full.notBefore.getTime());
      expect(fast?.notAfter.getTime()).toBe(full.notAfter.getTime());
      expect(fast?.isCa).toBe(full.isCa);
    }
  });

  it('verifies a signature with the issuer key only, and refuses a tampered certificate', async () => {
    const ca = pki.parseCertificate(readFileSync(path.join(dir, 'ec.pem'), 'utf8'));
    const rsa = pki.parseCertificate(readFileSync(path.join(dir, 'rsa.pem'), 'utf8'));
    const fields = readCertificateFields(ca.der);
    if (fields === undefined) throw new Error('unreadable');
    expect(await verifyCertificateSignature(fields, ca.publicKey)).toBe(true);
    expect(await verifyCertificateSignature(fields, rsa.publicKey)).toBe(false);
    const der = Buffer.from(ca.der);
    const at = der.indexOf(Buffer.from('EC CA'));
    der[at] = 'X'.charCodeAt(0);
    const tampered = readCertificateFields(der);
    expect(tampered).toBeDefined();
    if (tampered !== undefined) expect(await verifyCertificateSignature(tampered, ca.publicKey)).toBe(false);
  });

  it('decodes exactly one CERTIFICATE block and declines chains and other labels', () => {
    const pem = readFileSync(path.join(dir, 'ec.pem'), 'utf8');
    expect(decodeSingleCertificatePem(pem.replace(/\n/g, '\r\n'))?.equals(pki.parseCertificate(pem).der)).toBe(true);
    expect(decodeSingleCertificatePem(pem + pem)).toBeUndefined();
    expect(decodeSingleCertificatePem(pem.replace(/CERTIFICATE/g, 'CERTIFICATE REQUEST'))).toBeUndefined();
    expect(decodeSingleCertificatePem('-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n')).toBeUndefined();
  });

  it('declines what it does not know instead of guessing', () => {
    expect(readCertificateFields(Buffer.from('not a certificate'))).toBeUndefined();
    expect(readCertificateFields(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]))).toBeUndefined();
    const ca = pki.parseCertificate(readFileSync(path.join(dir, 'ec.pem'), 'utf8'));
    expect(readCertificateFields(ca.der.subarray(0, ca.der.length - 1))).toBeUndefined();
    expect(readCertificateFields(Buffer.concat([ca.der, Buffer.from([0])]))).toBeUndefined();
  });
});

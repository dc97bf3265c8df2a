import 'reflect-metadata';
import * as peculiar from '@peculiar/x509';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCertificate } from './certificate.ts';
import { createCertificateIssuer } from './certificate-issuer.ts';
import type { IssueCertificateRequest, IssuedCertificate } from './certificate-issuer.ts';
import { createCsr, parseCsr } from './csr.ts';
import { generateKeyPair } from './key-pair.ts';
import { Scratch, createTestHierarchy } from './test-support.ts';
import type { TestHierarchy } from './test-support.ts';

let h: TestHierarchy;
let scratch: Scratch;

beforeAll(async () => {
  h = await createTestHierarchy();
  scratch = new Scratch();
  scratch.write('root.pem', h.root.certificate.pem);
  scratch.write('intermediate.pem', h.intermediate.certificate.pem);
});
afterAll(() => scratch.remove());

/** `openssl verify -CAfile root -untrusted intermediate leaf` (plus extra args); returns [status, output]. */
function opensslVerify(
  leafPem: string,
  extra: readonly string[] = [],
  files: { root: string; intermediate: string } = { root: 'root.pem', intermediate: 'intermediate.pem' },
): [number, string] {
  scratch.write('leaf.pem', leafPem);
  const result = scratch.openssl(['verify', '-CAfile', files.root, '-untrusted', files.intermediate, ...extra, 'leaf.pem']);
  return [result.status, result.stdout + result.stderr];
}

function expectCode(fn: () => unknown, code: string): void {
  expect(fn).toThrow(expect.objectContaining({ code }));
}

const baseRequest = (): IssueCertificateRequest => ({
  publicKey: generateKeyPair('EC_P256').spkiDer,
  subject: { CN: ['device-1'] },
  validityDays: 30,
  extendedKeyUsage: 'clientAuth',
});

describe('createCertificateIssuer: issuing', () => {
  it('issues a P-256 device certificate from a CSR that OpenSSL verifies and every parser reads alike', async () => {
    const keys = generateKeyPair('EC_P256');
    const csr = parseCsr(
      createCsr({
        privateKey: createPrivateKey(keys.privateKeyPem),
        subject: { C: ['US'], ST: ['WA'], L: ['Seattle'], O: ['Acme'], OU: ['Sensors'], CN: ['device-0001'], serialNumber: ['SN-42'] },
      }),
    );
    const issued = h.issuer.issue({
      publicKey: csr.spkiDer,
      subject: csr.subject,
      validityDays: 30,
      extendedKeyUsage: 'clientAuth',
      subjectAltNames: { dns: ['device-0001.local'], ip: ['10.0.0.1', '2001:db8::1'] },
      crlDistributionPointUrl: 'http://localhost:8080/crl/issuing.crl',
    });
    expect(opensslVerify(issued.pem)).toEqual([0, 'leaf.pem: OK\n']);
    expect(opensslVerify(issued.pem, ['-purpose', 'sslclient'])[0]).toBe(0);
    expect(opensslVerify(issued.pem, ['-purpose', 'sslserver'])[0]).not.toBe(0);

    // our parser
    const parsed = parseCertificate(issued.pem);
    expect(parsed.certificateId).toBe(issued.certificateId);
    expect(parsed.serialNumber).toBe(issued.serialNumber);
    expect(parsed.subject).toEqual(csr.subject);
    expect(parsed.issuer).toEqual(h.intermediate.certificate.subject);
    expect(parsed.notBefore).toEqual(issued.notBefore);
    expect(parsed.notAfter).toEqual(issued.notAfter);
    expect(parsed.isCa).toBe(false);
    expect(parsed.keyUsage).toEqual(['digitalSignature']);
    expect(parsed.extendedKeyUsage).toEqual(['clientAuth']);
    expect(parsed.subjectAltNames).toEqual({ dns: ['device-0001.local'], ip: ['10.0.0.1', '2001:db8::1'], uri: [], email: [] });
    expect(parsed.authorityKeyIdentifier).toBe(h.intermediate.certificate.subjectKeyIdentifier);
    expect(parsed.crlDistributionPoints).toEqual(['http://localhost:8080/crl/issuing.crl']);
    expect(parsed.publicKey.equals(csr.publicKey)).toBe(true);

    // node:crypto
    const node = new X509Certificate(issued.der);
    expect(node.serialNumber.toLowerCase()).toBe(issued.serialNumber);
    expect(node.subject.split('\n')).toEqual(['C=US', 'ST=WA', 'L=Seattle', 'O=Acme', 'OU=Sensors', 'CN=device-0001', 'serialNumber=SN-42']);
    expect(node.issuer.split('\n')).toEqual(['O=Gatehouse Tests', 'CN=Gatehouse Test Issuing CA']);
    expect(new Date(node.validFrom)).toEqual(issued.notBefore);
    expect(new Date(node.validTo)).toEqual(issued.notAfter);
    expect(node.ca).toBe(false);
    expect(node.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // Node names extKeyUsage "keyUsage"
    expect(node.subjectAltName).toBe('DNS:device-0001.local, IP Address:10.0.0.1, IP Address:2001:DB8:0:0:0:0:0:1');
    expect(node.checkIssued(h.intermediate.certificate.x509)).toBe(true);
    expect(node.verify(h.intermediate.certificate.publicKey)).toBe(true);
    expect(node.fingerprint256.replace(/:/g, '').toLowerCase()).toBe(issued.certificateId);

    // @peculiar/x509
    const pc = new peculiar.X509Certificate(issued.der);
    expect(pc.serialNumber.toLowerCase().replace(/^00/, '')).toBe(issued.serialNumber);
    expect(pc.subject).toBe('C=US, ST=WA, L=Seattle, O=Acme, OU=Sensors, CN=device-0001, 2.5.4.5=SN-42');
    expect(pc.notBefore).toEqual(issued.notBefore);
    expect(pc.notAfter).toEqual(issued.notAfter);
    const basic = pc.getExtension(peculiar.BasicConstraintsExtension);
    expect([basic?.ca, basic?.critical]).toEqual([false, true]);
    const keyUsage = pc.getExtension(peculiar.KeyUsagesExtension);
    expect([keyUsage?.usages, keyUsage?.critical]).toEqual([peculiar.KeyUsageFlags.digitalSignature, true]);
    expect(pc.getExtension(peculiar.ExtendedKeyUsageExtension)?.usages).toEqual([peculiar.ExtendedKeyUsage.clientAuth]);
    const expectedSki = await peculiar.SubjectKeyIdentifierExtension.create(await pc.publicKey.export());
    expect(pc.getExtension(peculiar.SubjectKeyIdentifierExtension)?.keyId).toBe(expectedSki.keyId);
    expect(parsed.subjectKeyIdentifier).toBe(expectedSki.keyId);
    expect(pc.getExtension(peculiar.AuthorityKeyIdentifierExtension)?.keyId).toBe(
      h.intermediate.certificate.subjectKeyIdentifier,
    );
    expect(pc.getExtension(peculiar.SubjectAlternativeNameExtension)?.names.toJSON()).toEqual([
      { type: 'dns', value: 'device-0001.local' },
      { type: 'ip', value: '10.0.0.1' },
      { type: 'ip', value: '2001:db8::1' },
    ]);
    expect(pc.getExtension(peculiar.CRLDistributionPointsExtension)).not.toBeNull();
    expect(await pc.verify({ publicKey: new peculiar.X509Certificate(h.intermediate.certificate.der), signatureOnly: true })).toBe(true);
  });

  it('issues for RSA-2048 keys with keyEncipherment, and for P-384 keys', () => {
    const rsa = h.issuer.issue({ ...baseRequest(), publicKey: generateKeyPair('RSA_2048').publicKey });
    expect(opensslVerify(rsa.pem)[0]).toBe(0);
    expect(parseCertificate(rsa.der).keyUsage).toEqual(['digitalSignature', 'keyEncipherment']);
    const p384 = h.issuer.issue({ ...baseRequest(), publicKey: generateKeyPair('EC_P384').spkiDer });
    expect(opensslVerify(p384.pem)[0]).toBe(0);
    expect(parseCertificate(p384.der).keyUsage).toEqual(['digitalSignature']);
  });

  it('issues from RSA and P-384 CA keys (SHA-256 RSA and SHA-384 ECDSA signatures)', async () => {
    const other = await createTestHierarchy({ rootAlgorithm: 'RSA_2048', intermediateAlgorithm: 'EC_P384' });
    const s = new Scratch();
    try {
      s.write('root.pem', other.root.certificate.pem);
      s.write('intermediate.pem', other.intermediate.certificate.pem);
      const issued = other.issuer.issue(baseRequest());
      s.write('leaf.pem', issued.pem);
      expect(s.opensslOk(['verify', '-CAfile', 'root.pem', '-untrusted', 'intermediate.pem', 'leaf.pem'])).toBe(
        'leaf.pem: OK\n',
      );
      expect(s.opensslOk(['x509', '-in', 'leaf.pem', '-noout', '-text'])).toContain('ecdsa-with-SHA384');
      expect(s.opensslOk(['x509', '-in', 'intermediate.pem', '-noout', '-text'])).toContain('sha256WithRSAEncryption');
      // the RSA-3072 path as well, directly from a root
      const rsa3072 = await createTestHierarchy({ rootAlgorithm: 'RSA_3072', intermediateAlgorithm: 'RSA_2048' });
      s.write('root3072.pem', rsa3072.root.certificate.pem);
      s.write('intermediate2048.pem', rsa3072.intermediate.certificate.pem);
      s.write('leaf2.pem', rsa3072.issuer.issue(baseRequest()).pem);
      expect(s.opensslOk(['verify', '-CAfile', 'root3072.pem', '-untrusted', 'intermediate2048.pem', 'leaf2.pem'])).toBe(
        'leaf2.pem: OK\n',
      );
    } finally {
      s.remove();
    }
  });

  it('issues serverAuth and dual-purpose certificates', () => {
    const server = h.issuer.issue({ ...baseRequest(), extendedKeyUsage: 'serverAuth', subjectAltNames: { dns: ['gatehouse.example'] } });
    expect(opensslVerify(server.pem, ['-purpose', 'sslserver'])[0]).toBe(0);
    expect(opensslVerify(server.pem, ['-purpose', 'sslclient'])[0]).not.toBe(0);
    const both = h.issuer.issue({ ...baseRequest(), extendedKeyUsage: 'both' });
    expect(opensslVerify(both.pem, ['-purpose', 'sslserver'])[0]).toBe(0);
    expect(opensslVerify(both.pem, ['-purpose', 'sslclient'])[0]).toBe(0);
    expect(parseCertificate(both.der).extendedKeyUsage).toEqual(['serverAuth', 'clientAuth']);
  });

  it('accepts an empty subject with a critical subjectAltName (RFC 5280 §4.2.1.6)', () => {
    const issued = h.issuer.issue({ ...baseRequest(), subject: {}, subjectAltNames: { dns: ['only-san.local'] } });
    expect(opensslVerify(issued.pem)[0]).toBe(0);
    const pc = new peculiar.X509Certificate(issued.der);
    expect(pc.getExtension(peculiar.SubjectAlternativeNameExtension)?.critical).toBe(true);
    expect(pc.subject).toBe('');
  });

  it('uses random, positive, 128-bit serial numbers', () => {
    const serials = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const issued = h.issuer.issue(baseRequest());
      expect(issued.serialNumber).toMatch(/^[0-9a-f]{32}$/);
      expect(issued.serialNumber.startsWith('00')).toBe(false);
      serials.add(issued.serialNumber);
    }
    expect(serials.size).toBe(50);
  });

  it('returns the chain and the exact validity, backdated one minute and truncated to seconds', () => {
    const now = new Date(Math.floor(Date.now() / 1000) * 1000 + 750);
    const issuer = createCertificateIssuer({
      caCertificate: h.intermediate.certificate,
      signer: h.intermediateSigner,
      chainPem: [h.intermediate.certificate.pem, h.root.certificate.pem],
      clock: () => now,
    });
    const at = issuer.issue(baseRequest());
    expect(at.chainPem).toEqual([h.intermediate.certificate.pem, h.root.certificate.pem]);
    expect(at.notBefore.getTime()).toBe(Math.floor((now.getTime() - 60_000) / 1000) * 1000);
    expect(at.notAfter.getTime()).toBe(Math.floor((now.getTime() + 30 * 86_400_000) / 1000) * 1000);

    const explicit = h.issuer.issue({
      ...baseRequest(),
      validityDays: undefined,
      notBefore: new Date(now.getTime() + 10_000),
      notAfter: new Date(now.getTime() + 3_600_000),
    });
    expect(explicit.notBefore.getTime()).toBe(Math.floor((now.getTime() + 10_000) / 1000) * 1000);
    expect(explicit.notAfter.getTime()).toBe(Math.floor((now.getTime() + 3_600_000) / 1000) * 1000);
  });

  it('caps the validity at the CA validity', () => {
    const issued: IssuedCertificate = h.issuer.issue({ ...baseRequest(), validityDays: 5000 });
    expect(issued.notAfter).toEqual(h.intermediate.certificate.notAfter);
    const early = h.issuer.issue({ ...baseRequest(), validityDays: 1, notBefore: new Date(Date.now() - 86_400_000) });
    expect(early.notBefore).toEqual(h.intermediate.certificate.notBefore);
    expect(opensslVerify(issued.pem)[0]).toBe(0);
  });

  it('accepts a KeyObject public key (e.g. ParsedCsr.publicKey)', () => {
    const issued = h.issuer.issue({ ...baseRequest(), publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey });
    expect(opensslVerify(issued.pem)[0]).toBe(0);
  });
});

describe('createCertificateIssuer: refusals', () => {
  it('rejects bad validity with PKI_VALIDITY_INVALID', () => {
    for (const validityDays of [0, -1, Number.NaN, 1e9]) {
      expectCode(() => h.issuer.issue({ ...baseRequest(), validityDays }), 'PKI_VALIDITY_INVALID');
    }
    const now = Date.now();
    expectCode(
      () =>
        h.issuer.issue({
          publicKey: generateKeyPair().spkiDer,
          subject: { CN: ['x'] },
          extendedKeyUsage: 'clientAuth',
          notBefore: new Date(now),
          notAfter: new Date(now - 1000),
        }),
      'PKI_VALIDITY_INVALID',
    );
  });

  it('refuses to issue outside the CA validity with PKI_ISSUER_EXPIRED', () => {
    const issuer = createCertificateIssuer({
      caCertificate: h.intermediate.certificate,
      signer: h.intermediateSigner,
      chainPem: [],
      clock: () => new Date(h.intermediate.certificate.notAfter.getTime() + 1000),
    });
    expectCode(() => issuer.issue(baseRequest()), 'PKI_ISSUER_EXPIRED');
  });

  it('rejects bad subjects, SANs, URLs and profiles with their codes', () => {
    expectCode(() => h.issuer.issue({ ...baseRequest(), subject: {} }), 'PKI_SUBJECT_INVALID');
    expectCode(() => h.issuer.issue({ ...baseRequest(), subject: { C: ['USA'] } }), 'PKI_SUBJECT_INVALID');
    expectCode(() => h.issuer.issue({ ...baseRequest(), subject: { CN: [''] } }), 'PKI_SUBJECT_INVALID');
    expectCode(() => h.issuer.issue({ ...baseRequest(), subject: { CN: ['x'.repeat(257)] } }), 'PKI_SUBJECT_INVALID');
    expectCode(() => h.issuer.issue({ ...baseRequest(), subjectAltNames: { dns: ['bad name'] } }), 'PKI_SUBJECT_ALT_NAME_INVALID');
    expectCode(() => h.issuer.issue({ ...baseRequest(), subjectAltNames: { ip: ['300.1.1.1'] } }), 'PKI_SUBJECT_ALT_NAME_INVALID');
    expectCode(() => h.issuer.issue({ ...baseRequest(), subjectAltNames: { ip: ['fe80::1%eth0'] } }), 'PKI_SUBJECT_ALT_NAME_INVALID');
    expectCode(() => h.issuer.issue({ ...baseRequest(), crlDistributionPointUrl: 'ftp://x/crl' }), 'PKI_URL_INVALID');
    expectCode(
      () => h.issuer.issue({ ...baseRequest(), extendedKeyUsage: 'codeSigning' as 'clientAuth' }),
      'PKI_EXTENDED_KEY_USAGE_INVALID',
    );
  });

  it('rejects weak and unsupported subject keys', () => {
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    expectCode(() => h.issuer.issue({ ...baseRequest(), publicKey: rsa1024 }), 'PKI_KEY_TOO_WEAK');
    const ed25519 = generateKeyPairSync('ed25519').publicKey;
    expectCode(() => h.issuer.issue({ ...baseRequest(), publicKey: ed25519 }), 'PKI_KEY_ALGORITHM_UNSUPPORTED');
    const secp256k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey;
    expectCode(() => h.issuer.issue({ ...baseRequest(), publicKey: secp256k1 }), 'PKI_KEY_ALGORITHM_UNSUPPORTED');
    expectCode(() => h.issuer.issue({ ...baseRequest(), publicKey: Buffer.from('3003020100', 'hex') }), 'PKI_PUBLIC_KEY_INVALID');
  });

  it('refuses a non-CA certificate or a foreign signer', () => {
    const leaf = parseCertificate(h.issuer.issue(baseRequest()).der);
    expectCode(() => createCertificateIssuer({ caCertificate: leaf, signer: h.intermediateSigner, chainPem: [] }), 'PKI_NOT_A_CA');
    expectCode(
      () => createCertificateIssuer({ caCertificate: h.intermediate.certificate, signer: h.rootSigner, chainPem: [] }),
      'PKI_SIGNER_MISMATCH',
    );
    expectCode(
      () =>
        createCertificateIssuer({
          caCertificate: h.intermediate.certificate,
          signer: h.intermediateSigner,
          chainPem: [],
          crlDistributionPointUrl: 'not a url',
        }),
      'PKI_URL_INVALID',
    );
  });
});

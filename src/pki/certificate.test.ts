import 'reflect-metadata';
import * as peculiar from '@peculiar/x509';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { assertCertificateTimeValid, certificateIdOf, loadCertificate, parseCertificate } from './certificate.ts';
import { buildCertificateDer, generateSerialNumber } from './certificate-builder.ts';
import { encodeName } from './distinguished-name.ts';
import { signatureAlgorithmIdentifier } from './key-algorithm.ts';
import { createKeyObjectSigner } from './key-object-signer.ts';
import { encodePem, splitPemChain } from './pem.ts';
import { Scratch } from './test-support.ts';

let scratch: Scratch;
let rootPem: string;
let leafPem: string;

beforeAll(() => {
  scratch = new Scratch();
  scratch.opensslOk([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'root.key',
    '-subj', '/C=DE/ST=Berlin/O=OpenSSL Root/CN=Root X', '-days', '30', '-out', 'root.pem',
    '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:2', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  scratch.opensslOk([
    'req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-subj',
    '/O=Acme/OU=Fleet/dnQualifier=q1/serialNumber=SN-7/CN=device-9', '-out', 'leaf.csr',
  ]);
  scratch.write(
    'leaf.ext',
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=clientAuth,1.3.6.1.4.1.99999.1',
      'subjectAltName=DNS:device-9.example,IP:192.0.2.7,IP:fe80::1:2,email:ops@example.com,URI:urn:device:9',
      'crlDistributionPoints=URI:http://crl.example/root.crl',
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      '',
    ].join('\n'),
  );
  scratch.opensslOk([
    'x509', '-req', '-in', 'leaf.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-set_serial', '0x00ff12',
    '-days', '10', '-extfile', 'leaf.ext', '-out', 'leaf.pem',
  ]);
  rootPem = scratch.read('root.pem').toString();
  leafPem = scratch.read('leaf.pem').toString();
});
afterAll(() => scratch.remove());

function expectCode(fn: () => unknown, code: string): void {
  expect(fn).toThrow(expect.objectContaining({ code }));
}

describe('parseCertificate', () => {
  it('reads an OpenSSL root CA', () => {
    const root = parseCertificate(rootPem);
    const node = new X509Certificate(rootPem);
    expect(root.certificateId).toBe(node.fingerprint256.replace(/:/g, '').toLowerCase());
    expect(root.certificateId).toBe(certificateIdOf(root.der));
    expect(root.serialNumber).toBe(node.serialNumber.toLowerCase().replace(/^00/, ''));
    expect(root.subject).toEqual({ C: ['DE'], ST: ['Berlin'], O: ['OpenSSL Root'], CN: ['Root X'] });
    expect(root.issuer).toEqual(root.subject);
    expect(root.isSelfIssued).toBe(true);
    expect(root.notBefore).toEqual(new Date(node.validFrom));
    expect(root.notAfter).toEqual(new Date(node.validTo));
    expect(root.isCa).toBe(true);
    expect(root.pathLength).toBe(2);
    expect(root.keyUsage).toEqual(['keyCertSign', 'cRLSign']);
    expect(root.extendedKeyUsage).toBeUndefined();
    expect(root.subjectKeyIdentifier).toMatch(/^[0-9a-f]{40}$/);
    expect(root.publicKey.asymmetricKeyType).toBe('ec');
    expect(root.x509.fingerprint256).toBe(node.fingerprint256);
    expect(root.pem).toBe(rootPem);
  });

  it('reads an OpenSSL leaf with every extension Gatehouse uses', async () => {
    const leaf = parseCertificate(leafPem);
    const root = parseCertificate(rootPem);
    expect(leaf.serialNumber).toBe('ff12');
    expect(leaf.subject).toEqual({ O: ['Acme'], OU: ['Fleet'], dnQualifier: ['q1'], serialNumber: ['SN-7'], CN: ['device-9'] });
    expect(leaf.issuer).toEqual(root.subject);
    expect(leaf.issuerNameDer.equals(root.subjectNameDer)).toBe(true);
    expect(leaf.isSelfIssued).toBe(false);
    expect(leaf.isCa).toBe(false);
    expect(leaf.pathLength).toBeUndefined();
    expect(leaf.keyUsage).toEqual(['digitalSignature', 'keyEncipherment']);
    expect(leaf.extendedKeyUsage).toEqual(['clientAuth', '1.3.6.1.4.1.99999.1']);
    expect(leaf.subjectAltNames).toEqual({
      dns: ['device-9.example'],
      ip: ['192.0.2.7', 'fe80::1:2'],
      uri: ['urn:device:9'],
      email: ['ops@example.com'],
    });
    expect(leaf.crlDistributionPoints).toEqual(['http://crl.example/root.crl']);
    expect(leaf.authorityKeyIdentifier).toBe(root.subjectKeyIdentifier);
    const pc = new peculiar.X509Certificate(leafPem);
    expect(leaf.subjectKeyIdentifier).toBe(pc.getExtension(peculiar.SubjectKeyIdentifierExtension)?.keyId);
    expect(leaf.spkiDer.equals(Buffer.from(pc.publicKey.rawData))).toBe(true);
    expect(leaf.x509.checkIssued(root.x509)).toBe(true);
  });

  it('accepts DER and copies it', () => {
    const der = new X509Certificate(leafPem).raw;
    const parsed = parseCertificate(new Uint8Array(der));
    der.fill(0);
    expect(parsed.pem).toBe(leafPem);
  });

  it('rejects broken PEM, wrong labels and several blocks', () => {
    expectCode(() => parseCertificate(leafPem.slice(0, 200)), 'PKI_PEM_MALFORMED');
    expectCode(() => parseCertificate('not a certificate'), 'PKI_PEM_MALFORMED');
    expectCode(() => parseCertificate(leafPem.replace(/\n[A-Za-z0-9+/]{10}/, '\n!!!!!!!!!!')), 'PKI_PEM_MALFORMED');
    expectCode(() => parseCertificate(scratch.read('leaf.csr').toString()), 'PKI_PEM_UNEXPECTED_LABEL');
    expectCode(() => parseCertificate(leafPem + rootPem), 'PKI_PEM_MULTIPLE_BLOCKS');
  });

  it('rejects malformed DER with PKI_CERTIFICATE_MALFORMED', () => {
    const der = new X509Certificate(leafPem).raw;
    expectCode(() => parseCertificate(der.subarray(0, der.length - 1)), 'PKI_CERTIFICATE_MALFORMED');
    expectCode(() => parseCertificate(encodePem('CERTIFICATE', der.subarray(0, 100))), 'PKI_CERTIFICATE_MALFORMED');
    expectCode(() => parseCertificate(Buffer.concat([der, Buffer.from([0, 0])])), 'PKI_CERTIFICATE_MALFORMED');
    expectCode(() => parseCertificate(Buffer.from('garbage')), 'PKI_CERTIFICATE_MALFORMED');
    const corrupt = Buffer.from(der);
    corrupt[4] = 0x31; // TBSCertificate tag SEQUENCE → SET
    expectCode(() => parseCertificate(corrupt), 'PKI_CERTIFICATE_MALFORMED');
  });

  it('rejects oversized input with PKI_CERTIFICATE_TOO_LARGE', () => {
    expectCode(() => parseCertificate(Buffer.alloc(65 * 1024)), 'PKI_CERTIFICATE_TOO_LARGE');
    expectCode(() => parseCertificate(leafPem + ' '.repeat(100 * 1024)), 'PKI_CERTIFICATE_TOO_LARGE');
  });
});

describe('loadCertificate', () => {
  it('loads OpenSSL objects at once and refuses what OpenSSL refuses', () => {
    const loaded = loadCertificate(leafPem);
    expect(loaded.x509.serialNumber).toBe('FF12');
    // A certificate whose EC point is not on the curve: the DER walk accepts it, loading does not.
    const signer = createKeyObjectSigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const spki = Buffer.from(signer.publicKey.export({ type: 'spki', format: 'der' }));
    spki[spki.length - 1] = (spki[spki.length - 1] as number) ^ 0xff;
    const name = encodeName({ CN: ['bad point'] });
    const der = buildCertificateDer(
      {
        serialNumberDer: generateSerialNumber().der,
        signatureAlgorithmDer: signatureAlgorithmIdentifier('EC_P256'),
        issuerNameDer: name,
        notBefore: new Date(),
        notAfter: new Date(Date.now() + 86_400_000),
        subjectNameDer: name,
        spkiDer: spki,
        extensions: [],
      },
      signer,
    );
    const lazy = parseCertificate(der);
    expect(lazy.subject).toEqual({ CN: ['bad point'] });
    expect(() => lazy.publicKey).toThrow(expect.objectContaining({ code: 'PKI_PUBLIC_KEY_INVALID' }));
    let code: unknown;
    try {
      loadCertificate(der);
    } catch (error) {
      code = (error as { code?: unknown }).code;
    }
    expect(['PKI_PUBLIC_KEY_INVALID', 'PKI_CERTIFICATE_MALFORMED']).toContain(code);
  });
});

describe('splitPemChain', () => {
  it('splits a chain in order, ignoring text between blocks and CRLF line ends', () => {
    const chain = `subject=leaf\r\n${leafPem.replace(/\n/g, '\r\n')}\nsome comment\n${rootPem}`;
    expect(splitPemChain(chain)).toEqual([leafPem, rootPem]);
  });

  it('rejects non-certificate blocks and truncated chains', () => {
    expectCode(() => splitPemChain(leafPem + scratch.read('leaf.key').toString()), 'PKI_PEM_UNEXPECTED_LABEL');
    expectCode(() => splitPemChain(leafPem + rootPem.slice(0, 100)), 'PKI_PEM_MALFORMED');
    expectCode(() => splitPemChain(''), 'PKI_PEM_MALFORMED');
  });
});

describe('assertCertificateTimeValid', () => {
  it('accepts the bounds and rejects times outside them with their codes', () => {
    const leaf = parseCertificate(leafPem);
    expect(() => assertCertificateTimeValid(leaf, leaf.notBefore)).not.toThrow();
    expect(() => assertCertificateTimeValid(leaf, leaf.notAfter)).not.toThrow();
    expectCode(() => assertCertificateTimeValid(leaf, new Date(leaf.notAfter.getTime() + 1000)), 'PKI_CERTIFICATE_EXPIRED');
    expectCode(() => assertCertificateTimeValid(leaf, new Date(leaf.notBefore.getTime() - 1000)), 'PKI_CERTIFICATE_NOT_YET_VALID');
  });
});

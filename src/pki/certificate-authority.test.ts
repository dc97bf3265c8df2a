import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIntermediateCa, createRootCa, createServerCertificate } from './certificate-authority.ts';
import { EncryptedKeyStore, InMemoryKeyBlobRepository } from './encrypted-key-store.ts';
import { generateKek } from './kek.ts';
import { Scratch, createTestHierarchy } from './test-support.ts';
import type { TestHierarchy } from './test-support.ts';

const DAY = 86_400_000;
let h: TestHierarchy;
let scratch: Scratch;

beforeAll(async () => {
  h = await createTestHierarchy();
  scratch = new Scratch();
});
afterAll(() => scratch.remove());

function expectCodeAsync(promise: Promise<unknown>, code: string): Promise<void> {
  return expect(promise).rejects.toMatchObject({ code });
}

describe('createRootCa', () => {
  it('makes a self-signed EC P-256 root with the CA profile', async () => {
    const keyStore = new EncryptedKeyStore({ kek: generateKek(), blobs: new InMemoryKeyBlobRepository() });
    const before = Date.now();
    const root = await createRootCa({ keyStore, commonName: 'Acme Root', subject: { O: ['Acme'], C: ['US'] } });
    const cert = root.certificate;
    expect(cert.subject).toEqual({ C: ['US'], O: ['Acme'], CN: ['Acme Root'] });
    expect(cert.isSelfIssued).toBe(true);
    expect(cert.isCa).toBe(true);
    expect(cert.pathLength).toBeUndefined();
    expect(cert.keyUsage).toEqual(['keyCertSign', 'cRLSign']);
    expect(cert.subjectKeyIdentifier).toBe(cert.authorityKeyIdentifier);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.notAfter.getTime() - before).toBeGreaterThan(3649 * DAY);
    expect(cert.notAfter.getTime() - before).toBeLessThan(3651 * DAY);
    expect((await keyStore.getSigner(root.keyRef)).publicKey.equals(cert.publicKey)).toBe(true);

    scratch.write('root.pem', cert.pem);
    expect(scratch.opensslOk(['verify', '-CAfile', 'root.pem', '-purpose', 'any', 'root.pem'])).toBe('root.pem: OK\n');
    const text = scratch.opensslOk(['x509', '-in', 'root.pem', '-noout', '-text']);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE\n/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
  });

  it('supports other algorithms, pathLength and validity', async () => {
    const root = await createRootCa({ keyStore: h.keyStore, commonName: 'P-384 Root', keyAlgorithm: 'EC_P384', pathLength: 2, validityDays: 30 });
    expect(root.certificate.pathLength).toBe(2);
    expect(root.certificate.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    expect(root.certificate.notAfter.getTime() - root.certificate.notBefore.getTime()).toBe(30 * DAY + 60_000);
    scratch.write('root384.pem', root.certificate.pem);
    expect(scratch.opensslOk(['x509', '-in', 'root384.pem', '-noout', '-text'])).toContain('ecdsa-with-SHA384');
  });

  it('rejects bad parameters', async () => {
    await expectCodeAsync(createRootCa({ keyStore: h.keyStore, commonName: '' }), 'PKI_SUBJECT_INVALID');
    await expectCodeAsync(createRootCa({ keyStore: h.keyStore, commonName: 'x', validityDays: 0 }), 'PKI_VALIDITY_INVALID');
    await expectCodeAsync(createRootCa({ keyStore: h.keyStore, commonName: 'x', pathLength: -1 }), 'PKI_CHAIN_PATH_LENGTH_EXCEEDED');
  });
});

describe('createIntermediateCa', () => {
  it('makes an intermediate with pathLen 0, AKI = root SKI and the CRL distribution point', async () => {
    const created = await createIntermediateCa({
      keyStore: h.keyStore,
      issuerCertificate: h.root.certificate,
      issuerSigner: h.rootSigner,
      commonName: 'Batch 7',
      crlDistributionPointUrl: 'https://gatehouse.example/crl/root.crl',
    });
    const cert = created.certificate;
    expect(cert.issuer).toEqual(h.root.certificate.subject);
    expect(cert.isCa).toBe(true);
    expect(cert.pathLength).toBe(0);
    expect(cert.authorityKeyIdentifier).toBe(h.root.certificate.subjectKeyIdentifier);
    expect(cert.crlDistributionPoints).toEqual(['https://gatehouse.example/crl/root.crl']);
    scratch.write('root.pem', h.root.certificate.pem);
    scratch.write('batch.pem', cert.pem);
    expect(scratch.opensslOk(['verify', '-CAfile', 'root.pem', 'batch.pem'])).toBe('batch.pem: OK\n');
  });

  it('caps validity at the issuer notAfter', async () => {
    const created = await createIntermediateCa({
      keyStore: h.keyStore,
      issuerCertificate: h.root.certificate,
      issuerSigner: h.rootSigner,
      commonName: 'Long',
      validityDays: 100_000 / 3,
    });
    expect(created.certificate.notAfter).toEqual(h.root.certificate.notAfter);
  });

  it('refuses when the issuer’s pathLenConstraint leaves no room', async () => {
    // the test intermediate has pathLen 0
    await expectCodeAsync(
      createIntermediateCa({ keyStore: h.keyStore, issuerCertificate: h.intermediate.certificate, issuerSigner: h.intermediateSigner, commonName: 'Too deep' }),
      'PKI_CHAIN_PATH_LENGTH_EXCEEDED',
    );
    // the test root has pathLen 1: an intermediate below it may not have pathLen 1
    await expectCodeAsync(
      createIntermediateCa({ keyStore: h.keyStore, issuerCertificate: h.root.certificate, issuerSigner: h.rootSigner, commonName: 'Wide', pathLength: 1 }),
      'PKI_CHAIN_PATH_LENGTH_EXCEEDED',
    );
  });

  it('refuses a signer that is not the issuer’s key', async () => {
    await expectCodeAsync(
      createIntermediateCa({ keyStore: h.keyStore, issuerCertificate: h.root.certificate, issuerSigner: h.intermediateSigner, commonName: 'x' }),
      'PKI_SIGNER_MISMATCH',
    );
  });
});

describe('createServerCertificate', () => {
  it('issues a serverAuth certificate for localhost and configured names that a TLS client accepts', async () => {
    const server = createServerCertificate({ issuer: h.issuer, dnsNames: ['gatehouse.example'], ipAddresses: ['192.0.2.10'] });
    const x509 = new X509Certificate(server.certificate.der);
    expect(x509.subject).toBe('CN=gatehouse.example');
    expect(x509.checkHost('localhost')).toBe('localhost');
    // OpenSSL does not let a wildcard match a single-label name, but other clients (browsers) do
    expect(x509.subjectAltName).toBe(
      'DNS:localhost, DNS:*.localhost, DNS:gatehouse.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:192.0.2.10',
    );
    expect(x509.checkHost('gatehouse.example')).toBe('gatehouse.example');
    expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x509.checkIP('::1')).toBe('::1');
    expect(x509.checkIP('192.0.2.10')).toBe('192.0.2.10');
    expect(x509.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(createPublicKey(createPrivateKey(server.privateKeyPem)).equals(x509.publicKey)).toBe(true);

    const tlsServer = createServer({ key: server.privateKeyPem, cert: [server.certificate.pem, ...server.certificate.chainPem.slice(0, -1)].join('') }, (socket) => {
      socket.end('hello');
    });
    tlsServer.listen(0, '127.0.0.1');
    await once(tlsServer, 'listening');
    try {
      const { port } = tlsServer.address() as AddressInfo;
      const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: h.root.certificate.pem });
      const [data] = (await once(socket, 'data')) as [Buffer];
      expect(socket.authorized).toBe(true);
      expect(data.toString()).toBe('hello');
      socket.destroy();
    } finally {
      tlsServer.close();
    }
  });
});

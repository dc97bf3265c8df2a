import { generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseCertificate } from './certificate.ts';
import type { ParsedCertificate } from './certificate.ts';
import {
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  buildCertificateDer,
  generateSerialNumber,
  keyUsageExtension,
  subjectKeyIdentifierExtension,
} from './certificate-builder.ts';
import { createCertificateIssuer } from './certificate-issuer.ts';
import { verifyCertificateChain, verifyCertificateSignature } from './chain.ts';
import { OpensslWorkspace } from '../../test/support/openssl.ts';
import { encodeName } from './distinguished-name.ts';
import { generateKeyPair } from './key-pair.ts';
import { createKeyObjectSigner } from './key-object-signer.ts';
import type { Signer } from './key-store.ts';
import { signatureAlgorithmIdentifier } from './key-algorithm.ts';
import { keyIdentifierOf } from './public-key.ts';
import { createTestHierarchy } from './test-support.ts';
import type { TestHierarchy } from './test-support.ts';

const DAY = 86_400_000;
let h: TestHierarchy;
let leaf: ParsedCertificate;

/** A certificate made directly with the builder, to construct chains the CA functions refuse to make. */
function craft(options: {
  issuer: ParsedCertificate | undefined;
  issuerSigner: Signer;
  commonName: string;
  spkiDer: Buffer;
  isCa: boolean;
  pathLength?: number;
  keyUsage?: Parameters<typeof keyUsageExtension>[0];
  notBefore?: Date;
  notAfter?: Date;
}): ParsedCertificate {
  const subjectNameDer = encodeName({ CN: [options.commonName] });
  const issuerKeyId = options.issuer === undefined ? keyIdentifierOf(options.spkiDer) : keyIdentifierOf(options.issuer.spkiDer);
  const der = buildCertificateDer(
    {
      serialNumberDer: generateSerialNumber().der,
      signatureAlgorithmDer: signatureAlgorithmIdentifier(options.issuerSigner.algorithm),
      issuerNameDer: options.issuer?.subjectNameDer ?? subjectNameDer,
      notBefore: options.notBefore ?? new Date(Date.now() - 60_000),
      notAfter: options.notAfter ?? new Date(Date.now() + 30 * DAY),
      subjectNameDer,
      spkiDer: options.spkiDer,
      extensions: [
        basicConstraintsExtension(options.isCa, options.pathLength),
        keyUsageExtension(options.keyUsage ?? (options.isCa ? ['keyCertSign', 'cRLSign'] : ['digitalSignature'])),
        subjectKeyIdentifierExtension(keyIdentifierOf(options.spkiDer)),
        authorityKeyIdentifierExtension(issuerKeyId),
      ],
    },
    options.issuerSigner,
  );
  return parseCertificate(der);
}

function newKey(): { signer: Signer; spkiDer: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { signer: createKeyObjectSigner(privateKey), spkiDer: publicKey.export({ type: 'spki', format: 'der' }) };
}

function issueLeaf(issuer = h.issuer): ParsedCertificate {
  return parseCertificate(
    issuer.issue({ publicKey: generateKeyPair().spkiDer, subject: { CN: ['device'] }, validityDays: 10, extendedKeyUsage: 'clientAuth' }).der,
  );
}

function expectCode(fn: () => unknown, code: string): void {
  expect(fn).toThrow(expect.objectContaining({ code }));
}

beforeAll(async () => {
  h = await createTestHierarchy();
  leaf = issueLeaf();
});

describe('verifyCertificateChain: valid paths', () => {
  it('builds leaf → intermediate → root', () => {
    const result = verifyCertificateChain({
      leaf,
      intermediates: [h.intermediate.certificate],
      anchors: [h.root.certificate],
      now: new Date(),
    });
    expect(result.path.map((c) => c.certificateId)).toEqual([
      leaf.certificateId,
      h.intermediate.certificate.certificateId,
      h.root.certificate.certificateId,
    ]);
    expect(result.anchor).toBe(h.root.certificate);
  });

  it('accepts an intermediate registered as the anchor, and ignores unrelated certificates', async () => {
    const other = await createTestHierarchy();
    const result = verifyCertificateChain({
      leaf,
      intermediates: [other.intermediate.certificate, other.root.certificate],
      anchors: [other.root.certificate, h.intermediate.certificate],
      now: new Date(),
    });
    expect(result.path.map((c) => c.certificateId)).toEqual([leaf.certificateId, h.intermediate.certificate.certificateId]);
  });

  it('does not ask about the anchor’s revocation', () => {
    const asked: string[] = [];
    verifyCertificateChain({
      leaf,
      intermediates: [h.intermediate.certificate],
      anchors: [h.root.certificate],
      now: new Date(),
      isRevoked: (c) => {
        asked.push(c.certificateId);
        return false;
      },
    });
    expect(asked).toEqual([leaf.certificateId, h.intermediate.certificate.certificateId]);
  });
});

describe('verifyCertificateChain: refusals', () => {
  it('PKI_CHAIN_UNTRUSTED without the intermediate, under another root, or for an anchor itself', async () => {
    const other = await createTestHierarchy();
    expectCode(() => verifyCertificateChain({ leaf, intermediates: [], anchors: [h.root.certificate], now: new Date() }), 'PKI_CHAIN_UNTRUSTED');
    expectCode(
      () => verifyCertificateChain({ leaf, intermediates: [h.intermediate.certificate], anchors: [other.root.certificate], now: new Date() }),
      'PKI_CHAIN_UNTRUSTED',
    );
    expectCode(
      () => verifyCertificateChain({ leaf: h.root.certificate, intermediates: [], anchors: [h.root.certificate], now: new Date() }),
      'PKI_CHAIN_UNTRUSTED',
    );
  });

  it('PKI_CHAIN_SIGNATURE_INVALID when the named issuer did not sign', () => {
    const tampered = Buffer.from(leaf.der);
    tampered[tampered.length - 5] = (tampered[tampered.length - 5] as number) ^ 0x01;
    const forged = parseCertificate(tampered);
    expectCode(
      () => verifyCertificateChain({ leaf: forged, intermediates: [h.intermediate.certificate], anchors: [h.root.certificate], now: new Date() }),
      'PKI_CHAIN_SIGNATURE_INVALID',
    );
  });

  it('PKI_CERTIFICATE_EXPIRED and PKI_CERTIFICATE_NOT_YET_VALID, for the leaf and for CAs', () => {
    const chain = { leaf, intermediates: [h.intermediate.certificate], anchors: [h.root.certificate] };
    expectCode(() => verifyCertificateChain({ ...chain, now: new Date(leaf.notAfter.getTime() + 1000) }), 'PKI_CERTIFICATE_EXPIRED');
    expectCode(() => verifyCertificateChain({ ...chain, now: new Date(leaf.notBefore.getTime() - 1000) }), 'PKI_CERTIFICATE_NOT_YET_VALID');
    // a leaf valid now under an intermediate that has expired
    const rootKey = newKey();
    const root = craft({ issuer: undefined, issuerSigner: rootKey.signer, commonName: 'R', spkiDer: rootKey.spkiDer, isCa: true });
    const midKey = newKey();
    const mid = craft({
      issuer: root,
      issuerSigner: rootKey.signer,
      commonName: 'M',
      spkiDer: midKey.spkiDer,
      isCa: true,
      notBefore: new Date(Date.now() - 10 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const device = craft({ issuer: mid, issuerSigner: midKey.signer, commonName: 'D', spkiDer: newKey().spkiDer, isCa: false });
    try {
      verifyCertificateChain({ leaf: device, intermediates: [mid], anchors: [root], now: new Date() });
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ code: 'PKI_CERTIFICATE_EXPIRED', details: { certificateId: mid.certificateId, position: 1 } });
    }
  });

  it('PKI_CHAIN_NOT_CA when a non-CA certificate acts as issuer', () => {
    const rootKey = newKey();
    const root = craft({ issuer: undefined, issuerSigner: rootKey.signer, commonName: 'R', spkiDer: rootKey.spkiDer, isCa: true });
    const fakeKey = newKey();
    const notCa = craft({ issuer: root, issuerSigner: rootKey.signer, commonName: 'Not a CA', spkiDer: fakeKey.spkiDer, isCa: false });
    const device = craft({ issuer: notCa, issuerSigner: fakeKey.signer, commonName: 'D', spkiDer: newKey().spkiDer, isCa: false });
    expectCode(() => verifyCertificateChain({ leaf: device, intermediates: [notCa], anchors: [root], now: new Date() }), 'PKI_CHAIN_NOT_CA');
  });

  it('PKI_CHAIN_KEY_USAGE when an issuer lacks keyCertSign', () => {
    const rootKey = newKey();
    const root = craft({ issuer: undefined, issuerSigner: rootKey.signer, commonName: 'R', spkiDer: rootKey.spkiDer, isCa: true });
    const midKey = newKey();
    const mid = craft({ issuer: root, issuerSigner: rootKey.signer, commonName: 'M', spkiDer: midKey.spkiDer, isCa: true, keyUsage: ['digitalSignature', 'cRLSign'] });
    const device = craft({ issuer: mid, issuerSigner: midKey.signer, commonName: 'D', spkiDer: newKey().spkiDer, isCa: false });
    expectCode(() => verifyCertificateChain({ leaf: device, intermediates: [mid], anchors: [root], now: new Date() }), 'PKI_CHAIN_KEY_USAGE');
  });

  it('PKI_CHAIN_PATH_LENGTH_EXCEEDED beyond a pathLenConstraint', () => {
    const rootKey = newKey();
    const root = craft({ issuer: undefined, issuerSigner: rootKey.signer, commonName: 'R', spkiDer: rootKey.spkiDer, isCa: true, pathLength: 0 });
    const midKey = newKey();
    const mid = craft({ issuer: root, issuerSigner: rootKey.signer, commonName: 'M', spkiDer: midKey.spkiDer, isCa: true });
    const device = craft({ issuer: mid, issuerSigner: midKey.signer, commonName: 'D', spkiDer: newKey().spkiDer, isCa: false });
    expectCode(() => verifyCertificateChain({ leaf: device, intermediates: [mid], anchors: [root], now: new Date() }), 'PKI_CHAIN_PATH_LENGTH_EXCEEDED');
    // the same chain is fine when the intermediate itself is the anchor
    expect(verifyCertificateChain({ leaf: device, intermediates: [], anchors: [mid], now: new Date() }).path).toHaveLength(2);
  });

  it('PKI_CERTIFICATE_REVOKED when the leaf or an intermediate is revoked', () => {
    const chain = { leaf, intermediates: [h.intermediate.certificate], anchors: [h.root.certificate], now: new Date() };
    expectCode(() => verifyCertificateChain({ ...chain, isRevoked: (c) => c.certificateId === leaf.certificateId }), 'PKI_CERTIFICATE_REVOKED');
    expectCode(
      () => verifyCertificateChain({ ...chain, isRevoked: (c) => c.certificateId === h.intermediate.certificate.certificateId }),
      'PKI_CERTIFICATE_REVOKED',
    );
  });

  it('finds the valid path when a CA was re-keyed under the same name', async () => {
    // Same subject name, new key: AKI/SKI pick the right issuer; a leaf of the old key still validates.
    const rekeyed = await createTestHierarchy();
    const issuerB = createCertificateIssuer({
      caCertificate: rekeyed.intermediate.certificate,
      signer: rekeyed.intermediateSigner,
      chainPem: [],
    });
    const leafB = issueLeaf(issuerB);
    const anchors = [h.root.certificate, rekeyed.root.certificate];
    const intermediates = [rekeyed.intermediate.certificate, h.intermediate.certificate];
    expect(verifyCertificateChain({ leaf, intermediates, anchors, now: new Date() }).anchor).toBe(h.root.certificate);
    expect(verifyCertificateChain({ leaf: leafB, intermediates, anchors, now: new Date() }).anchor).toBe(rekeyed.root.certificate);
  });
});

describe('verifyCertificateSignature (crypto.verify on the parsed parts) agrees with OpenSSL', () => {
  const ws = new OpensslWorkspace();
  /** A self-signed certificate made by the openssl command with the given key options and digest. */
  const selfSigned = (name: string, keyArgs: string[], signArgs: string[]): { cert: ParsedCertificate; other: ParsedCertificate } => {
    const make = (n: string): ParsedCertificate => {
      ws.run(['genpkey', ...keyArgs, '-out', `${n}.key`]);
      ws.run(['req', '-x509', '-new', '-key', `${n}.key`, '-subj', `/CN=${n}`, '-days', '2', ...signArgs, '-out', `${n}.pem`]);
      return parseCertificate(ws.read(`${n}.pem`));
    };
    return { cert: make(name), other: make(`${name}-other`) };
  };
  const cases: [string, string[], string[]][] = [
    ['ec-p256-sha256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-sha256']],
    ['ec-p384-sha384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'], ['-sha384']],
    ['ec-p256-sha512', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-sha512']],
    ['rsa-sha256', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], ['-sha256']],
    ['rsa-sha384', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], ['-sha384']],
    ['ed25519', ['-algorithm', 'ED25519'], []],
    // not in the fast table: goes to OpenSSL's own check
    ['rsa-pss', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], ['-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32']],
  ];
  for (const [name, keyArgs, signArgs] of cases) {
    it(`${name}: valid with its key, invalid with another key, invalid when tampered`, () => {
      const { cert, other } = selfSigned(name, keyArgs, signArgs);
      expect(verifyCertificateSignature(cert, cert.publicKey)).toBe(true);
      expect(cert.x509.verify(cert.publicKey)).toBe(true);
      expect(verifyCertificateSignature(cert, other.publicKey)).toBe(false);
      expect(cert.x509.verify(other.publicKey)).toBe(false);
      // one bit of the signed part flipped (the last byte of the TBSCertificate: inside the extensions)
      const der = Buffer.from(cert.der);
      const tbsEnd = der.indexOf(cert.signed.tbsDer) + cert.signed.tbsDer.length;
      der[tbsEnd - 1] = (der[tbsEnd - 1] ?? 0) ^ 0x01;
      const tampered = parseCertificate(der);
      expect(verifyCertificateSignature(tampered, cert.publicKey)).toBe(false);
    });
  }

  it('refuses a certificate whose outer and inner signature algorithms differ, as OpenSSL does', () => {
    const { cert } = selfSigned('mismatch', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-sha256']);
    const der = Buffer.from(cert.der);
    // the outer AlgorithmIdentifier follows the TBSCertificate: ecdsa-with-SHA256 (…04 03 02) → ecdsa-with-SHA384 (…04 03 03)
    const outer = der.indexOf(Buffer.from('06082a8648ce3d040302', 'hex'), der.indexOf(cert.signed.tbsDer) + cert.signed.tbsDer.length);
    der[outer + 9] = 0x03;
    const changed = parseCertificate(der);
    expect(changed.signed.algorithmsMatch).toBe(false);
    expect(verifyCertificateSignature(changed, cert.publicKey)).toBe(false);
    expect(changed.x509.verify(cert.publicKey)).toBe(false);
  });
});

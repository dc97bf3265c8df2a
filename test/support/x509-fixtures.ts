import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
type CryptoKey = webcrypto.CryptoKey;
const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A certificate with explicit validity, built with @peculiar/x509 (for expired / not-yet-valid cases openssl 3.0 cannot make). */
export async function makeCertificate(options: {
  subject: string;
  issuer?: { subject: string; privateKey: CryptoKey };
  ca: boolean;
  notBefore: Date;
  notAfter: Date;
}): Promise<{ pem: string; privateKey: CryptoKey; subject: string }> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '0' + Math.floor(Math.random() * 1e12).toString(16),
    subject: options.subject,
    issuer: options.issuer?.subject ?? options.subject,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    signingAlgorithm: alg,
    publicKey: keys.publicKey,
    signingKey: options.issuer?.privateKey ?? keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(options.ca, undefined, true),
      new x509.KeyUsagesExtension(options.ca ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature, true),
    ],
  });
  return { pem: cert.toString('pem'), privateKey: keys.privateKey, subject: options.subject };
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRegistrationCode, verifyCaCertificateForRegistration } from './ca-registration.ts';
import { parseCertificate } from './certificate.ts';
import { encodePem } from './pem.ts';
import { Scratch } from './test-support.ts';

let scratch: Scratch;
let caPem: string;
const code = generateRegistrationCode();

/** A CA made with OpenSSL, as a customer would bring it. */
function makeCa(name: string, keyArgs: readonly string[], extensions: readonly string[]): string {
  scratch.opensslOk([
    'req', '-x509', '-newkey', ...keyArgs, '-nodes', '-keyout', `${name}.key`, '-subj', `/O=Customer/CN=${name}`,
    '-days', '365', '-out', `${name}.pem`, ...extensions.flatMap((e) => ['-addext', e]),
  ]);
  return scratch.read(`${name}.pem`).toString();
}

/** A verification certificate with CN = `commonName`, signed by the key of CA `caName` (AWS step 2). */
function makeVerificationCertificate(caName: string, commonName: string): string {
  scratch.opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'verification.key', '-subj', `/CN=${commonName}`, '-out', 'verification.csr']);
  scratch.opensslOk(['x509', '-req', '-in', 'verification.csr', '-CA', `${caName}.pem`, '-CAkey', `${caName}.key`, '-days', '1', '-out', 'verification.pem']);
  return scratch.read('verification.pem').toString();
}

function expectCode(fn: () => unknown, code: string): void {
  expect(fn).toThrow(expect.objectContaining({ code }));
}

beforeAll(() => {
  scratch = new Scratch();
  caPem = makeCa('byo', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']);
  makeCa('other', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['basicConstraints=critical,CA:TRUE']);
});
afterAll(() => scratch.remove());

describe('generateRegistrationCode', () => {
  it('returns 64 random lower-case hex characters', () => {
    expect(code).toMatch(/^[0-9a-f]{64}$/);
    expect(generateRegistrationCode()).not.toBe(code);
  });
});

describe('verifyCaCertificateForRegistration', () => {
  it('accepts DEFAULT mode with a verification certificate signed by the CA key', () => {
    const ca = verifyCaCertificateForRegistration({
      caCertificatePem: caPem,
      verificationCertificatePem: makeVerificationCertificate('byo', code),
      registrationCode: code,
      mode: 'DEFAULT',
      now: new Date(),
    });
    expect(ca.certificateId).toBe(parseCertificate(caPem).certificateId);
    expect(ca.subject.CN).toEqual(['byo']);
  });

  it('accepts SNI_ONLY mode without a verification certificate, also for an intermediate CA', () => {
    expect(verifyCaCertificateForRegistration({ caCertificatePem: caPem, mode: 'SNI_ONLY', now: new Date() }).isCa).toBe(true);
    scratch.opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'sub.key', '-subj', '/CN=sub', '-out', 'sub.csr']);
    scratch.write('sub.ext', 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\n');
    scratch.opensslOk(['x509', '-req', '-in', 'sub.csr', '-CA', 'byo.pem', '-CAkey', 'byo.key', '-days', '30', '-extfile', 'sub.ext', '-out', 'sub.pem']);
    const sub = verifyCaCertificateForRegistration({ caCertificatePem: scratch.read('sub.pem').toString(), mode: 'SNI_ONLY', now: new Date() });
    expect(sub.pathLength).toBe(0);
  });

  it('requires the verification certificate and the code in DEFAULT mode', () => {
    expectCode(
      () => verifyCaCertificateForRegistration({ caCertificatePem: caPem, registrationCode: code, mode: 'DEFAULT', now: new Date() }),
      'PKI_VERIFICATION_CERTIFICATE_REQUIRED',
    );
    expectCode(
      () =>
        verifyCaCertificateForRegistration({
          caCertificatePem: caPem,
          verificationCertificatePem: makeVerificationCertificate('byo', code),
          mode: 'DEFAULT',
          now: new Date(),
        }),
      'PKI_REGISTRATION_CODE_REQUIRED',
    );
  });

  it('rejects a verification certificate whose CN is not the code', () => {
    expectCode(
      () =>
        verifyCaCertificateForRegistration({
          caCertificatePem: caPem,
          verificationCertificatePem: makeVerificationCertificate('byo', generateRegistrationCode()),
          registrationCode: code,
          mode: 'DEFAULT',
          now: new Date(),
        }),
      'PKI_REGISTRATION_CODE_MISMATCH',
    );
  });

  it('rejects a verification certificate signed by another key', () => {
    expectCode(
      () =>
        verifyCaCertificateForRegistration({
          caCertificatePem: caPem,
          verificationCertificatePem: makeVerificationCertificate('other', code),
          registrationCode: code,
          mode: 'DEFAULT',
          now: new Date(),
        }),
      'PKI_PROOF_OF_POSSESSION_FAILED',
    );
  });

  it('rejects a certificate without CA:true, and a CA without keyCertSign', () => {
    const notCa = makeCa('leafish', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['basicConstraints=critical,CA:FALSE']);
    expectCode(() => verifyCaCertificateForRegistration({ caCertificatePem: notCa, mode: 'SNI_ONLY', now: new Date() }), 'PKI_NOT_A_CA');
    const noCertSign = makeCa('nosign', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,digitalSignature']);
    expectCode(
      () => verifyCaCertificateForRegistration({ caCertificatePem: noCertSign, mode: 'SNI_ONLY', now: new Date() }),
      'PKI_CA_KEY_USAGE_INVALID',
    );
  });

  it('rejects an expired or not yet valid CA', () => {
    const ca = parseCertificate(caPem);
    expectCode(
      () => verifyCaCertificateForRegistration({ caCertificatePem: caPem, mode: 'SNI_ONLY', now: new Date(ca.notAfter.getTime() + 1000) }),
      'PKI_CERTIFICATE_EXPIRED',
    );
    expectCode(
      () => verifyCaCertificateForRegistration({ caCertificatePem: caPem, mode: 'SNI_ONLY', now: new Date(ca.notBefore.getTime() - 1000) }),
      'PKI_CERTIFICATE_NOT_YET_VALID',
    );
  });

  it('rejects a self-signed CA whose signature does not verify', () => {
    const der = Buffer.from(parseCertificate(caPem).der);
    der[der.length - 3] = (der[der.length - 3] as number) ^ 0x01;
    expectCode(
      () => verifyCaCertificateForRegistration({ caCertificatePem: encodePem('CERTIFICATE', der), mode: 'SNI_ONLY', now: new Date() }),
      'PKI_CERTIFICATE_SIGNATURE_INVALID',
    );
  });

  it('rejects a CA with an RSA-1024 key and malformed input', () => {
    const weak = makeCa('weak', ['rsa:1024'], ['basicConstraints=critical,CA:TRUE']);
    expectCode(() => verifyCaCertificateForRegistration({ caCertificatePem: weak, mode: 'SNI_ONLY', now: new Date() }), 'PKI_KEY_TOO_WEAK');
    expectCode(() => verifyCaCertificateForRegistration({ caCertificatePem: 'garbage', mode: 'SNI_ONLY', now: new Date() }), 'PKI_PEM_MALFORMED');
  });
});

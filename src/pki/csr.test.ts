import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCsr, createCsrDer, parseCsr } from './csr.ts';
import { encodeInteger, encodeOid, encodeSequence, encodeTlv, encodeBitString } from './der.ts';
import { encodeName } from './distinguished-name.ts';
import { encodePem } from './pem.ts';
import { Scratch } from './test-support.ts';

let scratch: Scratch;
beforeAll(() => {
  scratch = new Scratch();
});
afterAll(() => scratch.remove());

/** Makes a CSR with `openssl req`; returns [csr PEM, private key PEM]. */
function opensslCsr(keyArgs: readonly string[], subject = '/C=US/O=Acme/CN=dev-1', extra: readonly string[] = []): [string, string] {
  scratch.opensslOk(['req', '-new', ...keyArgs, '-nodes', '-keyout', 'key.pem', '-subj', subject, ...extra, '-out', 'csr.pem']);
  return [scratch.read('csr.pem').toString(), scratch.read('key.pem').toString()];
}

function expectCode(fn: () => unknown, code: string): void {
  expect(fn).toThrow(expect.objectContaining({ code }));
}

describe('parseCsr: OpenSSL requests', () => {
  it('parses and verifies an EC P-256 CSR', () => {
    const [csrPem, keyPem] = opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const csr = parseCsr(csrPem);
    expect(csr.subject).toEqual({ C: ['US'], O: ['Acme'], CN: ['dev-1'] });
    expect(csr.keyAlgorithm).toEqual({ type: 'EC', namedCurve: 'P-256' });
    expect(csr.publicKey.equals(createPublicKey(keyPem))).toBe(true);
    expect(csr.spkiDer.equals(createPublicKey(keyPem).export({ type: 'spki', format: 'der' }))).toBe(true);
    // DER input too
    expect(parseCsr(csr.der).subject).toEqual(csr.subject);
  });

  it('parses P-384 (SHA-384), P-521 (SHA-512) and RSA-2048 CSRs, with extension requests', () => {
    const p384 = parseCsr(opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-sha384'])[0]);
    expect(p384.keyAlgorithm).toEqual({ type: 'EC', namedCurve: 'P-384' });
    const p521 = parseCsr(opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521', '-sha512'])[0]);
    expect(p521.keyAlgorithm).toEqual({ type: 'EC', namedCurve: 'P-521' });
    const rsa = parseCsr(
      opensslCsr(['-newkey', 'rsa:2048'], '/CN=rsa-device', ['-addext', 'subjectAltName=DNS:rsa-device.local'])[0],
    );
    expect(rsa.keyAlgorithm).toEqual({ type: 'RSA', modulusLength: 2048 });
    expect(rsa.subject).toEqual({ CN: ['rsa-device'] });
  });

  it('reads UTF-8 subjects and multi-valued attributes', () => {
    const csr = parseCsr(
      opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-utf8'], '/O=Müller GmbH/OU=a/OU=b/CN=Gerät 7/emailAddress=ops@example.com')[0],
    );
    expect(csr.subject).toEqual({ O: ['Müller GmbH'], OU: ['a', 'b'], CN: ['Gerät 7'], emailAddress: ['ops@example.com'] });
  });

  it('rejects an RSA-1024 CSR with PKI_KEY_TOO_WEAK', () => {
    const [csrPem] = opensslCsr(['-newkey', 'rsa:1024']);
    expectCode(() => parseCsr(csrPem), 'PKI_KEY_TOO_WEAK');
  });

  it('rejects Ed25519 and secp256k1 keys with PKI_KEY_ALGORITHM_UNSUPPORTED', () => {
    expectCode(() => parseCsr(opensslCsr(['-newkey', 'ed25519'])[0]), 'PKI_KEY_ALGORITHM_UNSUPPORTED');
    expectCode(
      () => parseCsr(opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1'])[0]),
      'PKI_KEY_ALGORITHM_UNSUPPORTED',
    );
  });

  it('rejects a SHA-1 signature with PKI_SIGNATURE_ALGORITHM_UNSUPPORTED', () => {
    expectCode(() => parseCsr(opensslCsr(['-newkey', 'rsa:2048', '-sha1'])[0]), 'PKI_SIGNATURE_ALGORITHM_UNSUPPORTED');
  });
});

describe('parseCsr: tampering and malformed input', () => {
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const good = createCsrDer({ privateKey: keys.privateKey, subject: { O: ['Acme'], CN: ['dev-1'] } });

  it('rejects a CSR whose subject was altered by one byte with PKI_CSR_SIGNATURE_INVALID', () => {
    const tampered = Buffer.from(good);
    const at = tampered.indexOf(Buffer.from('dev-1'));
    tampered[at + 4] = 0x32; // dev-1 → dev-2
    expectCode(() => parseCsr(tampered), 'PKI_CSR_SIGNATURE_INVALID');
    expectCode(() => parseCsr(encodePem('CERTIFICATE REQUEST', tampered)), 'PKI_CSR_SIGNATURE_INVALID');
  });

  it('rejects a CSR signed by another key than the one it carries', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const info = encodeSequence(
      encodeInteger(0),
      encodeName({ CN: ['dev-1'] }),
      keys.publicKey.export({ type: 'spki', format: 'der' }),
      encodeTlv(0xa0),
    );
    const der = encodeSequence(
      info,
      encodeSequence(encodeOid('1.2.840.10045.4.3.2')),
      encodeBitString(sign('sha256', info, other.privateKey)),
    );
    expectCode(() => parseCsr(der), 'PKI_CSR_SIGNATURE_INVALID');
    // an RSA signature algorithm on an EC key cannot verify either
    const mismatched = encodeSequence(
      info,
      encodeSequence(encodeOid('1.2.840.113549.1.1.11'), Buffer.from([5, 0])),
      encodeBitString(sign('sha256', info, keys.privateKey)),
    );
    expectCode(() => parseCsr(mismatched), 'PKI_CSR_SIGNATURE_INVALID');
  });

  it('rejects broken PEM text with PKI_PEM_MALFORMED', () => {
    const pem = encodePem('CERTIFICATE REQUEST', good);
    expectCode(() => parseCsr(pem.slice(0, pem.length / 2)), 'PKI_PEM_MALFORMED'); // truncated: no END line
    expectCode(() => parseCsr('hello world'), 'PKI_PEM_MALFORMED');
    expectCode(() => parseCsr(''), 'PKI_PEM_MALFORMED');
    expectCode(() => parseCsr('-----BEGIN CERTIFICATE REQUEST-----\n@@@@\n-----END CERTIFICATE REQUEST-----\n'), 'PKI_PEM_MALFORMED');
    expectCode(() => parseCsr(pem.replace('-----END CERTIFICATE REQUEST-----', '-----END CERTIFICATE-----')), 'PKI_PEM_MALFORMED');
  });

  it('rejects wrong labels and several blocks', () => {
    expectCode(() => parseCsr(encodePem('CERTIFICATE', good)), 'PKI_PEM_UNEXPECTED_LABEL');
    const pem = encodePem('CERTIFICATE REQUEST', good);
    expectCode(() => parseCsr(pem + pem), 'PKI_PEM_MULTIPLE_BLOCKS');
    expect(parseCsr(encodePem('NEW CERTIFICATE REQUEST', good)).subject).toEqual({ O: ['Acme'], CN: ['dev-1'] });
  });

  it('rejects truncated, garbage and padded DER with PKI_CSR_MALFORMED', () => {
    expectCode(() => parseCsr(good.subarray(0, good.length - 10)), 'PKI_CSR_MALFORMED');
    expectCode(() => parseCsr(encodePem('CERTIFICATE REQUEST', good.subarray(0, 40))), 'PKI_CSR_MALFORMED');
    expectCode(() => parseCsr(Buffer.from('garbage garbage garbage')), 'PKI_CSR_MALFORMED');
    expectCode(() => parseCsr(Buffer.concat([good, Buffer.from([0])])), 'PKI_CSR_MALFORMED');
    expectCode(() => parseCsr(new Uint8Array(0)), 'PKI_CSR_MALFORMED');
  });

  it('rejects oversized requests with PKI_CSR_TOO_LARGE before parsing', () => {
    const pem = encodePem('CERTIFICATE REQUEST', good);
    expectCode(() => parseCsr(pem + ' '.repeat(16 * 1024)), 'PKI_CSR_TOO_LARGE');
    expectCode(() => parseCsr(Buffer.alloc(13 * 1024)), 'PKI_CSR_TOO_LARGE');
  });
});

describe('createCsr', () => {
  it('makes CSRs that OpenSSL verifies, from KeyObjects and from PEM', () => {
    for (const key of [
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
      generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
      generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
    ]) {
      const pem = createCsr({ privateKey: key, subject: { C: ['DE'], CN: ['thing-1'] } });
      scratch.write('made.csr', pem);
      const out = scratch.opensslOk(['req', '-in', 'made.csr', '-verify', '-noout', '-subject']);
      expect(out).toContain('C = DE, CN = thing-1');
      expect(parseCsr(pem).subject).toEqual({ C: ['DE'], CN: ['thing-1'] });
    }
    const pkcs8 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(parseCsr(createCsr({ privateKeyPem: pkcs8, subject: { CN: ['pem'] } })).subject).toEqual({ CN: ['pem'] });
    expect(createPrivateKey(pkcs8).asymmetricKeyType).toBe('ec');
    expectCode(() => createCsr({ privateKeyPem: 'nope', subject: { CN: ['x'] } }), 'PKI_PEM_MALFORMED');
  });
});

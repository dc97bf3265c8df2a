import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCertsOnlyPkcs7 } from './pkcs7.ts';
import { Scratch, createTestHierarchy } from './test-support.ts';
import type { TestHierarchy } from './test-support.ts';

let h: TestHierarchy;
let scratch: Scratch;
beforeAll(async () => {
  h = await createTestHierarchy();
  scratch = new Scratch();
});
afterAll(() => scratch.remove());

describe('buildCertsOnlyPkcs7', () => {
  it('makes a certs-only SignedData OpenSSL prints (EST /cacerts)', () => {
    const p7 = buildCertsOnlyPkcs7([h.intermediate.certificate.der, h.root.certificate.der]);
    scratch.write('cacerts.p7', p7.der);
    const out = scratch.opensslOk(['pkcs7', '-inform', 'DER', '-in', 'cacerts.p7', '-print_certs']);
    expect(out).toContain('subject=O = Gatehouse Tests, CN = Gatehouse Test Issuing CA');
    expect(out).toContain('subject=C = DE, O = Gatehouse Tests, CN = Gatehouse Test Root');
    scratch.write('cacerts.pem', p7.pem);
    expect(scratch.opensslOk(['pkcs7', '-in', 'cacerts.pem', '-print_certs'])).toContain(h.root.certificate.pem.trim());
  });
});

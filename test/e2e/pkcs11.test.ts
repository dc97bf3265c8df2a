// CA keys in a PKCS#11 token (issue 3 §2): a real server with Debian's SoftHSM2, the keys made and used in the token.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../support/dialects.ts';
import { OpensslWorkspace } from '../support/openssl.ts';
import { countRows } from '../support/database-access.ts';
import { startServer } from '../support/server-process.ts';

const LIB = '/usr/lib/softhsm/libsofthsm2.so';

for (const dialect of DIALECTS) {
  describe.skipIf(!existsSync(LIB))(`PKCS#11 key store end to end (${dialect.name})`, () => {
    let server: Awaited<ReturnType<typeof startServer>>;
    const dir = mkdtempSync(path.join(tmpdir(), 'gh-hsm-'));
    const conf = path.join(dir, 'softhsm2.conf');
    const ws = new OpensslWorkspace();

    beforeAll(async () => {
      mkdirSync(path.join(dir, 'tokens'));
      writeFileSync(conf, `directories.tokendir = ${path.join(dir, 'tokens')}\nobjectstore.backend = file\n`);
      execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'gatehouse-ca', '--pin', '123456', '--so-pin', '654321'], { env: { ...process.env, SOFTHSM2_CONF: conf } });
      server = await startServer({ dialect, env: { SOFTHSM2_CONF: conf, GATEHOUSE_PKCS11_LIBRARY: LIB, GATEHOUSE_PKCS11_TOKEN: 'gatehouse-ca', GATEHOUSE_PKCS11_PIN: '123456' } });
    });
    afterAll(async () => server.destroy());

    it('creates the CA keys in the token, stores no key blob, and issues verifiable certificates', async () => {
      const objects = execFileSync('pkcs11-tool', ['--module', LIB, '--token-label', 'gatehouse-ca', '--login', '--pin', '123456', '--list-objects', '--type', 'privkey'], { env: { ...process.env, SOFTHSM2_CONF: conf }, encoding: 'utf8' });
      expect((objects.match(/Private Key Object/g) ?? []).length).toBeGreaterThanOrEqual(2); // root + issuing CA
      expect(await countRows(server, 'key_blobs')).toBe(0);
      const cas = await server.api('GET', '/v1/cas');
      expect(cas.body.certificates.length).toBeGreaterThanOrEqual(1);
      expect(cas.body.certificates.every((c: { keyStore: string | null }) => c.keyStore === 'pkcs11')).toBe(true);
      ws.write('root.pem', (await server.api('GET', '/v1/endpoint')).body.rootCaPem);
      ws.key('d');
      const r = await server.api('POST', '/v1/certificates/from-csr', { certificateSigningRequest: ws.csr('d', '/CN=hsm-device') });
      expect(r.status).toBe(201);
      ws.write('d.pem', r.body.certificatePem);
      ws.write('chain.pem', r.body.certificateChainPem);
      expect(ws.ok(['verify', '-CAfile', 'root.pem', '-untrusted', 'chain.pem', 'd.pem']).ok).toBe(true);
      expect(server.output()).not.toContain('123456');
    });
  });
}

import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { X509Certificate } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../support/dialects.ts';
import { OpensslWorkspace } from '../support/openssl.ts';
import { startServer } from '../support/server-process.ts';
import { makeCertificate } from '../support/x509-fixtures.ts';

const DAY = 86_400_000;

for (const dialect of DIALECTS) {
  describe(`PKI end to end (${dialect.name})`, () => {
    let server: Awaited<ReturnType<typeof startServer>>;
    const ws = new OpensslWorkspace();
    let rootPem: string;

    beforeAll(async () => {
      server = await startServer({ dialect });
      rootPem = readFileSync(path.join(server.dataDir, 'root-ca.pem'), 'utf8');
      ws.write('root.pem', rootPem);
    });
    afterAll(async () => server.destroy());

    it('issues from a CSR made by openssl; openssl verifies the chain; the key never left', async () => {
      ws.key('dev1');
      const csr = ws.csr('dev1', '/CN=dev1/O=Acme');
      const r = await server.api('POST', '/v1/certificates/from-csr', { certificateSigningRequest: csr, setAsActive: true });
      expect(r.status).toBe(201);
      expect(r.body.certificateId).toMatch(/^[0-9a-f]{64}$/);
      const cert = new X509Certificate(r.body.certificatePem);
      expect(r.body.certificateId).toBe(cert.fingerprint256.replace(/:/g, '').toLowerCase());
      expect(cert.subject).toContain('CN=dev1');
      ws.write('dev1.pem', r.body.certificatePem);
      ws.write('dev1.chain.pem', r.body.certificateChainPem);
      expect(ws.ok(['verify', '-CAfile', 'root.pem', '-untrusted', 'dev1.chain.pem', '-purpose', 'sslclient', 'dev1.pem']).ok).toBe(true);
      // the certificate is for the CSR's key
      const certPub = ws.run(['x509', '-in', 'dev1.pem', '-noout', '-pubkey']);
      const keyPub = ws.run(['pkey', '-in', 'dev1.key', '-pubout']);
      expect(certPub).toBe(keyPub);
      const text = ws.run(['x509', '-in', 'dev1.pem', '-noout', '-text']);
      expect(text).toContain('TLS Web Client Authentication');
      expect(text).toContain('Digital Signature');
      expect(text).toContain('/v1/crl/');
      const rec = await server.api('GET', `/v1/certificates/${r.body.certificateId}`);
      expect(rec.body).toMatchObject({ status: 'ACTIVE', certificateId: r.body.certificateId });
    });

    it('rejects bad CSRs, each with its own code, and records nothing', async () => {
      const before = (await server.api('GET', '/v1/certificates')).body.certificates.length;
      const garbage = await server.api('POST', '/v1/certificates/from-csr', { certificateSigningRequest: 'not a csr' });
      expect(garbage.status).toBe(400);
      expect(garbage.body.code).toMatch(/^PKI_(PEM|CSR)_MALFORMED$/);
      const csr = ws.csr('dev1', '/CN=tamper-me-please');
      const tampered = csr.replace(/-----BEGIN CERTIFICATE REQUEST-----\n([\s\S]*?)\n-----END/, (_m, b64: string) => {
        const der = Buffer.from(b64.replace(/\n/g, ''), 'base64');
        const i = der.indexOf(Buffer.from('tamper-me-please'));
        der[i] = 'T'.charCodeAt(0);
        return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END`;
      });
      const bad = await server.api('POST', '/v1/certificates/from-csr', { certificateSigningRequest: tampered });
      expect(bad.body.code).toBe('PKI_CSR_SIGNATURE_INVALID');
      ws.key('weak', 'rsa:1024');
      const weak = await server.api('POST', '/v1/certificates/from-csr', { certificateSigningRequest: ws.csr('weak', '/CN=weak') });
      expect(weak.body.code).toBe('PKI_KEY_TOO_WEAK');
      const truncated = await server.api('POST', '/v1/certificates/from-csr', { certificateSigningRequest: csr.slice(0, csr.length / 2) });
      expect(truncated.status).toBe(400);
      expect((await server.api('GET', '/v1/certificates')).body.certificates.length).toBe(before);
    });

    it('creates keys and certificate once, without ever returning a CA key', async () => {
      const r = await server.api('POST', '/v1/certificates/keys-and-certificate', { setAsActive: true });
      expect(r.status).toBe(201);
      expect(r.body.keyPair.PrivateKey).toContain('BEGIN PRIVATE KEY');
      ws.write('k.key', r.body.keyPair.PrivateKey);
      ws.write('k.pem', r.body.certificatePem);
      expect(ws.run(['x509', '-in', 'k.pem', '-noout', '-pubkey'])).toBe(ws.run(['pkey', '-in', 'k.key', '-pubout']));
      const again = await server.api('GET', `/v1/certificates/${r.body.certificateId}`);
      expect(JSON.stringify(again.body)).not.toContain('PRIVATE KEY');
      const cas = await server.api('GET', '/v1/cas');
      for (const ca of cas.body.certificates) {
        const one = await server.api('GET', `/v1/cas/${ca.caCertificateId}`);
        expect(JSON.stringify(one.body)).not.toMatch(/PRIVATE KEY|keyRef/);
      }
      expect(server.output()).not.toContain('PRIVATE KEY');
    });

    it('creates owned intermediates (EC P-256, P-384, RSA) that issue verifiable certificates', async () => {
      for (const keyAlgorithm of ['EC_P256', 'EC_P384', 'RSA_2048'] as const) {
        const ca = await server.api('POST', '/v1/cas', { commonName: `Batch ${keyAlgorithm}`, keyAlgorithm, pathLength: 0 });
        expect(ca.status).toBe(201);
        ws.write(`int-${keyAlgorithm}.pem`, ca.body.caCertificatePem);
        expect(ws.ok(['verify', '-CAfile', 'root.pem', `int-${keyAlgorithm}.pem`]).ok).toBe(true);
        ws.key(`d-${keyAlgorithm}`);
        const issued = await server.api('POST', '/v1/certificates/from-csr', { certificateSigningRequest: ws.csr(`d-${keyAlgorithm}`, '/CN=batch-device'), caCertificateId: ca.body.caCertificateId });
        expect(issued.status).toBe(201);
        ws.write(`d-${keyAlgorithm}.pem`, issued.body.certificatePem);
        ws.write(`d-${keyAlgorithm}.chain.pem`, issued.body.certificateChainPem);
        expect(ws.ok(['verify', '-CAfile', 'root.pem', '-untrusted', `d-${keyAlgorithm}.chain.pem`, `d-${keyAlgorithm}.pem`]).ok).toBe(true);
      }
      const cli = await server.cli(['--json', 'ca', 'create', 'CLI Batch', '--algorithm', 'EC_P384']);
      expect(cli.code).toBe(0);
      expect(JSON.parse(cli.stdout).caCertificatePem).toContain('BEGIN CERTIFICATE');
    });

    it('registers a BYO CA by proof of possession and rejects every bad registration with its own code', async () => {
      const code = (await server.api('GET', '/v1/cas/registration-code')).body.registrationCode as string;
      expect(code).toMatch(/^[0-9a-f]{64}$/);
      const caPem = ws.selfSignedCa('byo', '/CN=Acme Device CA/O=Acme');
      ws.key('verif');
      ws.csr('verif', `/CN=${code}`);
      const verifPem = ws.sign('verif', 'byo', { ext: 'basicConstraints=CA:FALSE' });
      ws.key('wrongcn');
      ws.csr('wrongcn', '/CN=not-the-code');
      const wrongCn = ws.sign('wrongcn', 'byo', { ext: 'basicConstraints=CA:FALSE' });
      ws.selfSignedCa('other', '/CN=Other CA');
      ws.key('verif2');
      ws.csr('verif2', `/CN=${code}`);
      const otherKey = ws.sign('verif2', 'other', { ext: 'basicConstraints=CA:FALSE' });

      expect((await server.api('POST', '/v1/cas/register', { caCertificatePem: caPem })).body.code).toBe('PKI_VERIFICATION_CERTIFICATE_REQUIRED');
      expect((await server.api('POST', '/v1/cas/register', { caCertificatePem: caPem, verificationCertificatePem: wrongCn })).body.code).toBe('PKI_REGISTRATION_CODE_MISMATCH');
      expect((await server.api('POST', '/v1/cas/register', { caCertificatePem: caPem, verificationCertificatePem: otherKey })).body.code).toBe('PKI_PROOF_OF_POSSESSION_FAILED');
      const notCa = ws.selfSignedCa('notca', '/CN=Not a CA', { ca: false });
      expect((await server.api('POST', '/v1/cas/register', { caCertificatePem: notCa, certificateMode: 'SNI_ONLY' })).body.code).toBe('PKI_NOT_A_CA');
      const expired = await makeCertificate({ subject: 'CN=Expired CA', ca: true, notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
      expect((await server.api('POST', '/v1/cas/register', { caCertificatePem: expired.pem, certificateMode: 'SNI_ONLY' })).body.code).toBe('PKI_CERTIFICATE_EXPIRED');
      const future = await makeCertificate({ subject: 'CN=Future CA', ca: true, notBefore: new Date(Date.now() + DAY), notAfter: new Date(Date.now() + 10 * DAY) });
      expect((await server.api('POST', '/v1/cas/register', { caCertificatePem: future.pem, certificateMode: 'SNI_ONLY' })).body.code).toBe('PKI_CERTIFICATE_NOT_YET_VALID');
      expect((await server.api('POST', '/v1/cas/register', { caCertificatePem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', certificateMode: 'SNI_ONLY' })).status).toBe(400);

      const ok = await server.api('POST', '/v1/cas/register', { caCertificatePem: caPem, verificationCertificatePem: verifPem, allowAutoRegistration: true });
      expect(ok.status).toBe(201);
      expect(ok.body).toMatchObject({ status: 'ACTIVE', certificateMode: 'DEFAULT' });
      expect((await server.api('POST', '/v1/cas/register', { caCertificatePem: caPem, verificationCertificatePem: verifPem })).body.code).toBe('REGISTRY_CA_EXISTS');
      const desc = await server.api('GET', `/v1/cas/${ok.body.caCertificateId}`);
      expect(desc.body).toMatchObject({ owned: false, autoRegistration: true, status: 'ACTIVE' });
    });

    it('registers device certificates with their CA, and without a CA in several tenants', async () => {
      ws.key('byodev');
      ws.csr('byodev', '/CN=byo-device-1');
      const devPem = ws.sign('byodev', 'byo');
      const reg = await server.api('POST', '/v1/certificates/register', { certificatePem: devPem, status: 'ACTIVE' });
      expect(reg.status).toBe(201);
      expect((await server.api('POST', '/v1/certificates/register', { certificatePem: devPem })).body.code).toBe('REGISTRY_CERTIFICATE_EXISTS');
      // signed by a CA nobody registered
      ws.key('stray');
      ws.csr('stray', '/CN=stray');
      const stray = ws.sign('stray', 'other');
      expect((await server.api('POST', '/v1/certificates/register', { certificatePem: stray })).body.code).toMatch(/^(PKI_CHAIN_UNTRUSTED|PROVISIONING_CA_UNKNOWN_ISSUER)$/);
      // an expired device certificate under the registered CA
      const caKey = ws.read('byo.key');
      const { createPrivateKey } = await import('node:crypto');
      const issuerKey = await crypto.subtle.importKey('pkcs8', createPrivateKey(caKey).export({ type: 'pkcs8', format: 'der' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
      const expiredDev = await makeCertificate({ subject: 'CN=old-device', issuer: { subject: 'CN=Acme Device CA, O=Acme', privateKey: issuerKey }, ca: false, notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
      expect((await server.api('POST', '/v1/certificates/register', { certificatePem: expiredDev.pem })).body.code).toMatch(/^PKI_(CERTIFICATE_EXPIRED|CHAIN_UNTRUSTED)$/);
      // a CA certificate is not a device certificate
      expect((await server.api('POST', '/v1/certificates/register', { certificatePem: ws.read('byo.pem') })).body).toMatchObject({ code: 'PROVISIONING_CERTIFICATE_IS_CA', detail: expect.stringContaining('-addext basicConstraints=critical,CA:FALSE') });

      // MAR: the stray certificate (no CA anywhere) pinned in two tenants
      await server.api('POST', '/v1/tenants', { name: 'tenant-b' });
      const mar1 = await server.api('POST', '/v1/certificates/register-without-ca', { certificatePem: stray, status: 'ACTIVE' });
      const mar2 = await server.api('POST', '/v1/certificates/register-without-ca', { certificatePem: stray, status: 'ACTIVE' }, { tenant: 'tenant-b' });
      expect(mar1.status).toBe(201);
      expect(mar2.status).toBe(201);
      expect(mar1.body.certificateId).toBe(mar2.body.certificateId);
      // tenant-b cannot see tenant default's other certificates
      expect((await server.api('GET', `/v1/certificates/${reg.body.certificateId}`, undefined, { tenant: 'tenant-b' })).status).toBe(404);
      // an inactive CA vouches for nothing
      const caId = (await server.api('GET', '/v1/cas?status=ACTIVE')).body.certificates.find((c: { subjectCommonName: string }) => c.subjectCommonName === 'Acme Device CA').caCertificateId as string;
      await server.api('PATCH', `/v1/cas/${caId}`, { status: 'INACTIVE' });
      ws.key('byodev2');
      ws.csr('byodev2', '/CN=byo-device-2');
      const dev2 = ws.sign('byodev2', 'byo');
      const refused = await server.api('POST', '/v1/certificates/register', { certificatePem: dev2 });
      expect(refused.status).toBe(400);
      expect(refused.body.code).toBe('PKI_CHAIN_UNTRUSTED');
      await server.api('PATCH', `/v1/cas/${caId}`, { status: 'ACTIVE' });
      expect((await server.api('POST', '/v1/certificates/register', { certificatePem: dev2 })).status).toBe(201);
    });

    it('revokes: the CRL is served with the X509 CRL header and openssl -crl_check agrees', async () => {
      ws.key('good');
      const good = await server.api('POST', '/v1/certificates/from-csr', { certificateSigningRequest: ws.csr('good', '/CN=good'), setAsActive: true });
      ws.key('bad');
      const bad = await server.api('POST', '/v1/certificates/from-csr', { certificateSigningRequest: ws.csr('bad', '/CN=bad'), setAsActive: true });
      const revoked = await server.api('POST', `/v1/certificates/${bad.body.certificateId}/revoke`, { reason: 'keyCompromise' });
      expect(revoked.body).toMatchObject({ status: 'REVOKED', revocationReason: 'keyCompromise' });
      expect((await server.api('PATCH', `/v1/certificates/${bad.body.certificateId}`, { status: 'ACTIVE' })).body.code).toBe('REGISTRY_CERTIFICATE_TRANSITION_INVALID');
      ws.write('good.pem', good.body.certificatePem);
      ws.write('bad.pem', bad.body.certificatePem);
      ws.write('chain.pem', good.body.certificateChainPem);
      const crlUrl = /URI:(\S+)/.exec(ws.run(['x509', '-in', 'good.pem', '-noout', '-ext', 'crlDistributionPoints']))?.[1] ?? '';
      const crlPath = new URL(crlUrl).pathname;
      const pem = await (await fetch(`${server.apiUrl}${crlPath.replace(/\.crl$/, '.pem')}`)).text();
      expect(pem).toContain('-----BEGIN X509 CRL-----');
      const der = Buffer.from(await (await fetch(`${server.apiUrl}${crlPath}`)).arrayBuffer());
      writeFileSync(ws.file('issuing.crl.der'), der);
      expect(ws.run(['crl', '-inform', 'DER', '-in', 'issuing.crl.der', '-noout', '-text'])).toContain('Certificate Revocation List');
      ws.write('issuing.crl.pem', pem);
      expect(ws.ok(['crl', '-in', 'issuing.crl.pem', '-noout']).ok).toBe(true);
      expect(der.length).toBeGreaterThan(50);
      // the issuing CA is the first certificate after the leaf in the chain; the root's CRL comes from the intermediate's CDP
      const chainPems = good.body.certificateChainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) as string[];
      ws.write('int.pem', chainPems[1] ?? '');
      const rootCrlUrl = /URI:(\S+)/.exec(ws.run(['x509', '-in', 'int.pem', '-noout', '-ext', 'crlDistributionPoints']))?.[1] ?? '';
      ws.write('root.crl.pem', await (await fetch(`${server.apiUrl}${new URL(rootCrlUrl).pathname.replace(/\.crl$/, '.pem')}`)).text());
      ws.write('crls.pem', ws.read('issuing.crl.pem') + ws.read('root.crl.pem'));
      const verify = (f: string) => ws.ok(['verify', '-crl_check_all', '-CRLfile', 'crls.pem', '-CAfile', 'root.pem', '-untrusted', 'chain.pem', f]);
      expect(verify('good.pem').ok).toBe(true);
      const r = verify('bad.pem');
      expect(r.ok).toBe(false);
      expect(r.out).toContain('revoked');
    }, 60_000);

    it('transfers a certificate between tenants (transfer, reject, accept, cancel), and its device connects to the new owner', async () => {
      const c = await server.api('POST', '/v1/certificates/keys-and-certificate', {});
      const id = c.body.certificateId as string;
      const issuer = (await server.api('GET', `/v1/certificates/${id}`)).body.caCertificateId as string;
      expect(issuer).toMatch(/^[0-9a-f]{64}$/);
      expect((await server.api('POST', `/v1/certificates/${id}/transfer`, { targetTenant: 'tenant-b' })).body.status).toBe('PENDING_TRANSFER');
      expect((await server.api('GET', '/v1/certificates/incoming-transfers', undefined, { tenant: 'tenant-b' })).body.transfers).toEqual([{ certificateId: id, fromTenant: 'default' }]);
      expect((await server.api('POST', `/v1/certificates/${id}/reject-transfer`, {}, { tenant: 'tenant-b' })).body.status).toBe('INACTIVE');
      await server.api('POST', `/v1/certificates/${id}/transfer`, { targetTenant: 'tenant-b' });
      expect((await server.api('POST', `/v1/certificates/${id}/cancel-transfer`, {})).body.status).toBe('INACTIVE');
      await server.api('POST', `/v1/certificates/${id}/transfer`, { targetTenant: 'tenant-b' });
      const accepted = await server.api('POST', `/v1/certificates/${id}/accept-transfer`, { setAsActive: true }, { tenant: 'tenant-b' });
      // issued by the default tenant's CA, which is no trust anchor of tenant-b: held there as registered without a CA
      expect(accepted.body).toMatchObject({ status: 'ACTIVE', caCertificateId: null });
      expect((await server.api('GET', `/v1/certificates/${id}`)).status).toBe(404);
      expect((await server.api('GET', `/v1/certificates/${id}`, undefined, { tenant: 'tenant-b' })).body.status).toBe('ACTIVE');
      const audit = await server.api('GET', '/v1/audit?maxResults=5', undefined, { tenant: 'tenant-b' });
      expect(audit.body.entries.find((e: { action: string }) => e.action === 'certificate.transfer.accept')?.details).toEqual({ from: 'default', issuerCaCertificateId: issuer, heldWithoutCa: true });

      // the device keeps its key and certificate and connects to its new owner's endpoint (it could not: its chain did
      // not verify there, UNABLE_TO_GET_ISSUER_CERT_LOCALLY), and no longer to the old one
      const doc = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['iot:Connect', 'iot:Publish'], Resource: '*' }] };
      expect((await server.api('POST', '/v1/policies', { policyName: 'moved', policyDocument: doc }, { tenant: 'tenant-b' })).status).toBe(201);
      expect((await server.api('POST', '/v1/policies/moved/attach', { target: id }, { tenant: 'tenant-b' })).status).toBe(204);
      const creds = path.join(ws.dir, 'moved-device');
      mkdirSync(creds);
      writeFileSync(path.join(creds, 'certificate.pem'), c.body.certificatePem as string);
      writeFileSync(path.join(creds, 'private.key'), c.body.keyPair.PrivateKey as string, { mode: 0o600 });
      writeFileSync(path.join(creds, 'root-ca.pem'), rootPem);
      const connect = (servername: string) => server.cli(['device', 'connect', '--creds', creds, '--endpoint', `127.0.0.1:${server.ports.mqtt}`, '--servername', servername, '--client-id', 'moved-1', '--publish', 'things/moved-1/hello']);
      const atNewOwner = await connect('tenant-b.localhost');
      expect(atNewOwner.stderr).toBe('');
      expect(atNewOwner.code).toBe(0);
      const atOldOwner = await connect('localhost');
      expect(atOldOwner.code).toBe(1);
      expect(atOldOwner.stderr).toMatch(/^error DEVICE_CONNECT_FAILED: /);
    });

    it('keeps a certificate pending transfer as it was offered: no attachment, no delete; an accept that would collide is a 409; both tenants log the outcome', async () => {
      const b = { tenant: 'tenant-b' };
      await server.api('POST', '/v1/policies', { policyName: 'pending-p', policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] } });
      expect((await server.api('POST', '/v1/things', { thingName: 'pending-thing' })).status).toBe(201);
      const c = await server.api('POST', '/v1/certificates/keys-and-certificate', {});
      const id = c.body.certificateId as string;
      expect((await server.api('POST', `/v1/certificates/${id}/transfer`, { targetTenant: 'tenant-b' })).body.status).toBe('PENDING_TRANSFER');
      expect((await server.api('POST', '/v1/policies/pending-p/attach', { target: id })).body.code).toBe('REGISTRY_CERTIFICATE_PENDING_TRANSFER');
      expect((await server.api('POST', '/v1/things/pending-thing/principals', { certificateId: id })).body.code).toBe('REGISTRY_CERTIFICATE_PENDING_TRANSFER');
      expect((await server.api('DELETE', `/v1/certificates/${id}`)).body.code).toBe('REGISTRY_CERTIFICATE_PENDING_TRANSFER');
      expect((await server.api('GET', `/v1/certificates/${id}`)).body).toMatchObject({ status: 'PENDING_TRANSFER', things: [], policies: [] });

      // tenant-b registered the same certificate meanwhile: the accept is refused (it was a 500), the offer stays
      const mar = await server.api('POST', '/v1/certificates/register-without-ca', { certificatePem: c.body.certificatePem, status: 'INACTIVE' }, b);
      expect(mar.status, JSON.stringify(mar.body)).toBe(201);
      const collide = await server.api('POST', `/v1/certificates/${id}/accept-transfer`, {}, b);
      expect(collide.status).toBe(409);
      expect(collide.body.code).toBe('REGISTRY_CERTIFICATE_EXISTS');
      expect((await server.api('GET', `/v1/certificates/${id}`)).body.status).toBe('PENDING_TRANSFER');
      expect((await server.api('POST', `/v1/certificates/${id}/reject-transfer`, {}, b)).body.status).toBe('INACTIVE');
      const audit = await server.api('GET', '/v1/audit?maxResults=5');
      expect(audit.body.entries.find((e: { action: string; target: string }) => e.action === 'certificate.transfer.rejected' && e.target === `cert/${id}`)?.details).toEqual({ by: 'tenant-b' });

      // revoking an offered certificate ends the offer
      await server.api('POST', `/v1/certificates/${id}/transfer`, { targetTenant: 'tenant-b' });
      expect((await server.api('POST', `/v1/certificates/${id}/revoke`, { reason: 'keyCompromise' })).body).toMatchObject({ status: 'REVOKED' });
      expect((await server.api('GET', '/v1/certificates/incoming-transfers', undefined, b)).body.transfers.some((t: { certificateId: string }) => t.certificateId === id)).toBe(false);
      expect((await server.api('POST', `/v1/certificates/${id}/accept-transfer`, {}, b)).body.code).toBe('REGISTRY_CERTIFICATE_TRANSFER_INVALID');
    });

    it('keeps a revoked certificate of an owned CA on the CRL: it cannot be deleted before it expires, nor registered again', async () => {
      const c = await server.api('POST', '/v1/certificates/keys-and-certificate', { setAsActive: true });
      const id = c.body.certificateId as string;
      expect((await server.api('POST', `/v1/certificates/${id}/revoke`, { reason: 'keyCompromise' })).status).toBe(200);
      const refused = await server.api('DELETE', `/v1/certificates/${id}?forceDelete=true`);
      expect(refused.status).toBe(409);
      expect(refused.body).toMatchObject({ code: 'REGISTRY_CERTIFICATE_ON_CRL', details: { notAfter: expect.any(String) } });
      const cli = await server.cli(['cert', 'delete', id]);
      expect(cli.stderr).toMatch(/^error REGISTRY_CERTIFICATE_ON_CRL: certificate [0-9a-f]{64} is REVOKED and stays on the CRL/);
      expect((await server.api('POST', '/v1/certificates/register', { certificatePem: c.body.certificatePem, setAsActive: true })).body.code).toBe('REGISTRY_CERTIFICATE_EXISTS');
      const serial = new X509Certificate(c.body.certificatePem as string).serialNumber.toUpperCase();
      const crlPath = `/v1/crl/${(await server.api('GET', `/v1/certificates/${id}`)).body.caCertificateId as string}.pem`;
      ws.write('kept.crl.pem', await (await fetch(`${server.apiUrl}${crlPath}`)).text());
      expect(ws.run(['crl', '-in', 'kept.crl.pem', '-noout', '-text']).replace(/:/g, '').toUpperCase()).toContain(serial.replace(/^0+/, ''));
    });

    it('checks CLI outputs before acting, prints whole lists, and a CRL as JSON with --json', async () => {
      ws.key('outcheck');
      const before = (await server.api('GET', '/v1/certificates?maxResults=250')).body.certificates.length as number;
      const nowhere = path.join(ws.dir, 'no-such-dir', 'c.pem');
      ws.csr('outcheck', '/CN=outcheck');
      const issued = await server.cli(['cert', 'create-from-csr', ws.file('outcheck.csr'), '--out', nowhere]);
      expect(issued.stderr).toBe(`error CLI_USAGE_INVALID: cannot write --out ${nowhere}: the directory ${path.join(ws.dir, 'no-such-dir')} does not exist\n`);
      expect((await server.api('GET', '/v1/certificates?maxResults=250')).body.certificates.length).toBe(before);
      expect((await server.cli(['ca', 'create', 'Never Made CA', '--out', nowhere])).stderr).toMatch(/^error CLI_USAGE_INVALID: cannot write --out /);
      expect(((await server.api('GET', '/v1/cas')).body.certificates as { subjectCommonName: string }[]).some((x) => x.subjectCommonName === 'Never Made CA')).toBe(false);
      expect((await server.cli(['thing', 'create', 'no-bundle', '--policy', 'any'])).stderr).toBe('error CLI_USAGE_INVALID: --policy and --out go with --with-certificate\n');
      expect((await server.api('GET', '/v1/things/no-bundle')).status).toBe(404);
      // a list longer than a page is printed whole (it stopped at 100)
      writeFileSync(ws.file('many.txt'), Array.from({ length: 150 }, (_, i) => `sn-${String(i).padStart(3, '0')}`).join('\n'));
      expect((await server.cli(['allowlist', 'import', ws.file('many.txt')])).code).toBe(0);
      const listed = JSON.parse((await server.cli(['--json', 'allowlist', 'list'])).stdout) as string[];
      expect(listed.filter((v) => v.startsWith('sn-'))).toHaveLength(150);
      expect(JSON.parse((await server.cli(['--json', 'allowlist', 'list', '--max', '7'])).stdout)).toHaveLength(7);
      // --json ca crl is JSON
      const owned = ((await server.api('GET', '/v1/cas')).body.certificates as { caCertificateId: string; owned: boolean }[]).find((x) => x.owned);
      const crl = JSON.parse((await server.cli(['--json', 'ca', 'crl', owned?.caCertificateId ?? ''])).stdout) as { crlPem: string };
      expect(crl.crlPem).toContain('-----BEGIN X509 CRL-----');
    });

    it('names what holds a certificate when that blocks its transfer', async () => {
      const out = path.join(ws.dir, 'held');
      await server.api('POST', '/v1/policies', { policyName: 'held-p', policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] } });
      expect((await server.cli(['--json', 'thing', 'create', 'held-1', '--with-certificate', '--policy', 'held-p', '--out', out])).code).toBe(0);
      const id = (JSON.parse(readFileSync(path.join(out, 'provisioning.json'), 'utf8')) as { certificateId: string }).certificateId;
      expect((await server.cli(['cert', 'deactivate', id])).code).toBe(0);
      const refused = await server.cli(['cert', 'transfer', id, 'tenant-b']);
      expect(refused.stderr).toBe('error REGISTRY_CERTIFICATE_TRANSFER_INVALID: detach the certificate before transferring it; it is attached to thing "held-1", policy "held-p"\n');
      const api = await server.api('POST', `/v1/certificates/${id}/transfer`, { targetTenant: 'tenant-b' });
      expect(api.body.details).toEqual({ things: ['held-1'], policies: ['held-p'] });
    });

    it('writes a device bundle from the CLI with the key made locally', async () => {
      await server.api('POST', '/v1/policies', { policyName: 'bundle-p', policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] } });
      const out = path.join(ws.dir, 'bundle');
      const r = await server.cli(['--json', 'thing', 'create', 'bundled-1', '--with-certificate', '--policy', 'bundle-p', '--out', out]);
      expect(r.code).toBe(0);
      const res = JSON.parse(r.stdout) as { certificateId: string; connect: string };
      expect(res.connect).toContain('mosquitto_pub');
      for (const f of ['certificate.pem', 'private.key', 'root-ca.pem', 'endpoint.txt']) expect(statSync(path.join(out, f)).isFile()).toBe(true);
      expect(statSync(path.join(out, 'private.key')).mode & 0o777).toBe(0o600);
      expect(ws.ok(['verify', '-CAfile', path.join(out, 'root-ca.pem'), '-untrusted', 'chain.pem', path.join(out, 'certificate.pem')]).ok).toBe(true);
      const thing = await server.api('GET', '/v1/things/bundled-1');
      expect(thing.body.principals).toEqual([res.certificateId]);
      const cert = await server.api('GET', `/v1/certificates/${res.certificateId}`);
      expect(cert.body).toMatchObject({ status: 'ACTIVE', policies: ['bundle-p'], things: ['bundled-1'] });
      // the bundle works with the device simulator as it is: it connects as the thing
      const connected = await server.cli(['--json', 'device', 'connect', '--creds', out, '--endpoint', `127.0.0.1:${server.ports.mqtt}`]);
      expect(connected.stderr).toBe('');
      expect(JSON.parse(connected.stdout)).toMatchObject({ connected: true, clientId: 'bundled-1' });
      // the bundle's key exists nowhere else: a second bundle into the same directory is refused before anything is made
      const key = readFileSync(path.join(out, 'private.key'), 'utf8');
      const again = await server.cli(['thing', 'create', 'bundled-2', '--with-certificate', '--out', out]);
      expect(again.code).toBe(1);
      expect(again.stderr).toBe(`error CLI_OUTPUT_EXISTS: ${out} already holds certificate.pem, private.key; choose another --out directory (key material is never overwritten)\n`);
      expect(readFileSync(path.join(out, 'private.key'), 'utf8')).toBe(key);
      expect((await server.api('GET', '/v1/things/bundled-2')).status).toBe(404);
      // the thing has its certificate: deleting it needs --detach-principals, and the certificate stays
      const kept = await server.cli(['thing', 'delete', 'bundled-1']);
      expect(kept).toMatchObject({ code: 1, stderr: `error REGISTRY_THING_HAS_PRINCIPALS: thing "bundled-1" is still attached to a certificate: detach it first, or delete with detachPrincipals=true (CLI --detach-principals) (certificateIds: ${res.certificateId})\n` });
      expect((await server.cli(['thing', 'delete', 'bundled-1', '--detach-principals'])).code).toBe(0);
      expect((await server.api('GET', '/v1/things/bundled-1')).status).toBe(404);
      expect((await server.api('GET', `/v1/certificates/${res.certificateId}`)).body).toMatchObject({ status: 'ACTIVE', things: [] });
    });

    it("writes a tenant's bundle with its endpoint, and says when mosquitto_pub's -h would not resolve", async () => {
      expect((await server.api('POST', '/v1/tenants', { name: 'bundle-t' })).status).toBe(201);
      const out = path.join(ws.dir, 'tenant-bundle');
      const r = await server.cli(['--json', '--tenant', 'bundle-t', 'thing', 'create', 'tb-1', '--with-certificate', '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      const printed = JSON.parse(r.stdout) as { connect: string; note?: string };
      expect(printed.connect).toContain('-h bundle-t.localhost ');
      expect(readFileSync(path.join(out, 'endpoint.txt'), 'utf8')).toBe(`bundle-t.localhost:${server.ports.mqtt}\n`);
      const resolves = await lookup('bundle-t.localhost').then(() => true, () => false);
      if (resolves) expect(printed.note).toBeUndefined();
      else expect(printed.note).toBe(`bundle-t.localhost does not resolve on this machine, and mosquitto_pub sends it as the TLS server name that selects the tenant: map it first (e.g. "127.0.0.1 bundle-t.localhost" in /etc/hosts). gatehouse device connect --creds ${out} needs no DNS.`);
    });

    it('leaves nothing behind when a bundle cannot be completed: a missing policy is named first, a later failure is undone', async () => {
      const certsNamed = async (cn: string): Promise<number> => ((await server.api('GET', '/v1/certificates?maxResults=250')).body.certificates as { subjectCommonName: string }[]).filter((x) => x.subjectCommonName === cn).length;
      const missing = await server.cli(['thing', 'create', 'half-1', '--with-certificate', '--policy', 'no-such-policy', '--out', path.join(ws.dir, 'half-1')]);
      expect(missing).toMatchObject({ code: 1, stderr: 'error REGISTRY_POLICY_NOT_FOUND: policy "no-such-policy" does not exist\n' });
      expect((await server.api('GET', '/v1/things/half-1')).status).toBe(404);
      expect(await certsNamed('half-1')).toBe(0);
      // the server fails the policy attachment (a proxy in front of it answers 503): the certificate and thing made
      // before are removed again, and no key is written
      await server.api('POST', '/v1/policies', { policyName: 'half-p', policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] } });
      const proxy = createServer((req, res) => {
        if (req.method === 'POST' && req.url === '/v1/policies/half-p/attach') {
          res.writeHead(503, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ status: 503, code: 'STORE_UNAVAILABLE', detail: 'injected failure' }));
          return;
        }
        const upstream = httpRequest(`${server.apiUrl}${req.url ?? '/'}`, { method: req.method, headers: req.headers }, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        });
        req.pipe(upstream);
      });
      await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
      try {
        const out = path.join(ws.dir, 'half-2');
        const failed = await server.cli(['thing', 'create', 'half-2', '--with-certificate', '--policy', 'half-p', '--out', out], { GATEHOUSE_URL: `http://127.0.0.1:${(proxy.address() as { port: number }).port}` });
        expect(failed).toMatchObject({ code: 1, stderr: 'error STORE_UNAVAILABLE: injected failure\n' });
        expect((await server.api('GET', '/v1/things/half-2')).status).toBe(404);
        expect(await certsNamed('half-2')).toBe(0);
        expect(existsSync(out)).toBe(false);
      } finally {
        await new Promise<void>((r) => proxy.close(() => r()));
      }
    });
  });
}

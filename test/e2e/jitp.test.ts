// JITP and JITR end to end (issue 6): a BYO CA registered by proof of possession, device certificates made
// outside Gatehouse, real MQTT clients over mutual TLS, webhooks, and the negative cases.
import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCrl, createCertificateIssuer, createKeyObjectSigner, generateKeyPair, parseCertificate } from '../../src/pki/index.ts';
import { DIALECTS } from '../support/dialects.ts';
import { OpensslWorkspace } from '../support/openssl.ts';
import { startServer, waitFor } from '../support/server-process.ts';
import { makeCertificate } from '../support/x509-fixtures.ts';

const execFileAsync = promisify(execFile);
type Server = Awaited<ReturnType<typeof startServer>>;
const ARN = 'arn:aws:iot:*:*';

const JITP_TEMPLATE = {
  Parameters: { 'AWS::IoT::Certificate::CommonName': { Type: 'String' }, 'AWS::IoT::Certificate::Country': { Type: 'String', Default: 'NL' } },
  Resources: {
    thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'AWS::IoT::Certificate::CommonName' }, AttributePayload: { country: { Ref: 'AWS::IoT::Certificate::Country' } } } },
    certificate: { Type: 'AWS::IoT::Certificate', Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' } },
    policy: {
      Type: 'AWS::IoT::Policy',
      Properties: {
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/\${iot:Connection.Thing.ThingName}` },
            { Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/jitp/\${iot:Connection.Thing.ThingName}/*` },
          ],
        }),
      },
    },
  },
};

interface DeviceCert {
  certPem: string;
  keyPem: string;
  certificateId: string;
}

/** Connects `dev` over MQTT/TLS, with the SNI host name `localhost` unless `sni` is false (none is sent then). */
function connect(server: Server, dev: DeviceCert, clientId: string, extraCa: string[] = [], sni = true): Promise<{ client?: MqttClient; code?: number; error?: Error }> {
  return new Promise((resolve) => {
    const client = mqtt.connect({
      protocol: 'mqtts', host: '127.0.0.1', port: server.ports.mqtt, ...(sni ? { servername: 'localhost' } : {}),
      ca: [readFileSync(path.join(server.dataDir, 'root-ca.pem'), 'utf8')], cert: [dev.certPem, ...extraCa].join(''), key: dev.keyPem,
      clientId, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 20_000,
    });
    const done = (r: { client?: MqttClient; code?: number; error?: Error }): void => {
      client.removeAllListeners('connect');
      resolve(r);
    };
    client.once('connect', () => done({ client }));
    client.once('error', (e: Error & { code?: number }) => {
      client.end(true);
      done({ error: e, ...(typeof e.code === 'number' ? { code: e.code } : {}) });
    });
    client.once('close', () => {
      client.end(true);
      done({ error: new Error('closed') });
    });
  });
}

for (const dialect of DIALECTS) {
  describe(`JITP and JITR end to end (${dialect.name})`, () => {
    let server: Server;
    const ws = new OpensslWorkspace();
    let caId: string;
    let issueDevice: (cn: string, options?: { country?: string; days?: number; notBefore?: Date; notAfter?: Date }) => DeviceCert;

    async function registerCa(name: string, subj: string, autoRegister: boolean): Promise<string> {
      const code = (await server.api('GET', '/v1/cas/registration-code')).body.registrationCode as string;
      const caPem = ws.selfSignedCa(name, subj);
      ws.key(`${name}-verif`);
      ws.csr(`${name}-verif`, `/CN=${code}`);
      const verif = ws.sign(`${name}-verif`, name, { ext: 'basicConstraints=CA:FALSE' });
      const r = await server.api('POST', '/v1/cas/register', { caCertificatePem: caPem, verificationCertificatePem: verif, allowAutoRegistration: autoRegister });
      expect(r.status).toBe(201);
      return r.body.caCertificateId as string;
    }

    beforeAll(async () => {
      server = await startServer({ dialect });
      caId = await registerCa('maker', '/CN=Maker Device CA/O=Maker', true);
      expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'jitp-sensors', templateBody: JITP_TEMPLATE, type: 'JITP' })).status).toBe(201);
      const cli = await server.cli(['--json', 'ca', 'update', caId, '--auto-register', '--jitp-template', 'jitp-sensors', '--first-connect', 'continue']);
      expect(JSON.parse(cli.stdout)).toMatchObject({ autoRegistration: true, registrationTemplate: 'jitp-sensors', firstConnect: 'continue' });
      const signer = createKeyObjectSigner(createPrivateKey(ws.read('maker.key')));
      const issuer = createCertificateIssuer({ caCertificate: parseCertificate(ws.read('maker.pem')), signer, chainPem: [] });
      issueDevice = (cn, o = {}) => {
        const keys = generateKeyPair('EC_P256');
        const validity = o.notBefore !== undefined && o.notAfter !== undefined ? { notBefore: o.notBefore, notAfter: o.notAfter } : { validityDays: o.days ?? 30 };
        const issued = issuer.issue({ publicKey: keys.publicKey, subject: { CN: [cn], ...(o.country === undefined ? {} : { C: [o.country] }), O: ['Maker'] }, extendedKeyUsage: 'clientAuth', ...validity });
        return { certPem: issued.pem, keyPem: keys.privateKeyPem, certificateId: issued.certificateId };
      };
    });
    afterAll(async () => server.destroy());

    it('JITP (continue): the first connection provisions thing, policy and attachments and proceeds', async () => {
      const dev = issueDevice('jitp-dev-1', { country: 'DE' });
      const r = await connect(server, dev, 'jitp-dev-1');
      expect(r.error).toBeUndefined();
      await r.client?.publishAsync('jitp/jitp-dev-1/hello', 'hi', { qos: 1 });
      await r.client?.endAsync();
      const thing = await server.api('GET', '/v1/things/jitp-dev-1');
      expect(thing.body).toMatchObject({ attributes: { country: 'DE' }, principals: [dev.certificateId] });
      const cert = await server.api('GET', `/v1/certificates/${dev.certificateId}`);
      expect(cert.body).toMatchObject({ status: 'ACTIVE', createdBy: 'jitp', caCertificateId: caId });
      expect(cert.body.policies).toHaveLength(1);
    });

    it("checks a CA's JITP template when it is set, and keeps a template a CA uses from being deleted", async () => {
      const missing = await server.cli(['ca', 'update', caId, '--jitp-template', 'no-such-jitp']);
      expect(missing).toMatchObject({ code: 1, stderr: 'error REGISTRY_TEMPLATE_NOT_FOUND: provisioning template "no-such-jitp" does not exist\n' });
      expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'fleet-kind', templateBody: { Resources: {} } })).status).toBe(201);
      const fleetKind = await server.api('PATCH', `/v1/cas/${caId}`, { registrationConfig: { templateName: 'fleet-kind' } });
      expect(fleetKind.status).toBe(400);
      expect(fleetKind.body).toMatchObject({ code: 'PROVISIONING_TEMPLATE_TYPE_MISMATCH', detail: 'template "fleet-kind" is a FLEET_PROVISIONING template; a CA\'s registration template must be of type JITP' });
      expect((await server.api('GET', `/v1/cas/${caId}`)).body.registrationTemplate).toBe('jitp-sensors');
      const inUse = await server.cli(['template', 'delete', 'jitp-sensors']);
      expect(inUse).toMatchObject({ code: 1, stderr: `error REGISTRY_TEMPLATE_IN_USE: template "jitp-sensors" is the JITP template of CA ${caId}; give the CA another template first\n` });
      expect((await server.api('GET', '/v1/provisioning-templates/jitp-sensors')).status).toBe(200);
      expect((await server.cli(['template', 'delete', 'fleet-kind'])).code).toBe(0);
      // a revoked CA (which can no longer be changed) does not hold its template
      const spare = await registerCa('spare', '/CN=Spare Maker CA', true);
      expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'spare-jitp', templateBody: JITP_TEMPLATE, type: 'JITP' })).status).toBe(201);
      expect((await server.api('PATCH', `/v1/cas/${spare}`, { registrationConfig: { templateName: 'spare-jitp' } })).status).toBe(200);
      expect((await server.api('DELETE', '/v1/provisioning-templates/spare-jitp')).body.code).toBe('REGISTRY_TEMPLATE_IN_USE');
      expect((await server.api('POST', `/v1/cas/${spare}/revoke`, { reason: 'cessationOfOperation' })).status).toBe(200);
      expect((await server.api('DELETE', '/v1/provisioning-templates/spare-jitp')).status).toBe(204);
    });

    it('refuses a device whose path runs through a registered intermediate that is revoked or INACTIVE, though its root is ACTIVE', async () => {
      const rootId = await registerCa('pathroot', '/CN=Path Root CA', false);
      ws.key('pathint');
      ws.csr('pathint', '/CN=Path Intermediate CA');
      const intPem = ws.sign('pathint', 'pathroot', { ext: 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign' });
      const device = (name: string): DeviceCert => {
        ws.key(name);
        ws.csr(name, `/CN=${name}`);
        const leaf = ws.sign(name, 'pathint');
        return { certPem: leaf + intPem, keyPem: ws.read(`${name}.key`), certificateId: new X509Certificate(leaf).fingerprint256.replace(/:/g, '').toLowerCase() };
      };
      expect((await server.api('POST', '/v1/policies', { policyName: 'path-any', policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] } })).status).toBe(201);
      const enrol = async (dev: DeviceCert): Promise<void> => {
        const r = await server.api('POST', '/v1/certificates/register', { certificatePem: dev.certPem, status: 'ACTIVE' });
        expect(r.status, JSON.stringify(r.body)).toBe(201);
        expect(r.body.certificateId).toBe(dev.certificateId);
        expect((await server.api('POST', '/v1/policies/path-any/attach', { target: dev.certificateId })).status).toBe(204);
      };
      const a = device('path-dev-a');
      await enrol(a);
      const live = await connect(server, a, 'path-dev-a');
      expect(live.error).toBeUndefined();
      // the intermediate registered too, then revoked: its devices are out, the live one at once
      const code = (await server.api('GET', '/v1/cas/registration-code')).body.registrationCode as string;
      ws.key('pathint-verif');
      ws.csr('pathint-verif', `/CN=${code}`);
      const verif = ws.sign('pathint-verif', 'pathint', { ext: 'basicConstraints=CA:FALSE' });
      const reg = await server.api('POST', '/v1/cas/register', { caCertificatePem: intPem, verificationCertificatePem: verif });
      expect(reg.status, JSON.stringify(reg.body)).toBe(201);
      const intId = reg.body.caCertificateId as string;
      const closed = new Promise<void>((r) => (live.client?.connected === true ? live.client.once('close', () => r()) : r()));
      expect((await server.api('POST', `/v1/cas/${intId}/revoke`, { reason: 'keyCompromise' })).status).toBe(200);
      await closed;
      expect((await connect(server, a, 'path-dev-a')).code).toBe(5);
      expect((await server.api('GET', `/v1/cas/${rootId}`)).body.status).toBe('ACTIVE');
      // an INACTIVE intermediate keeps its devices out as well
      ws.key('pathint2');
      ws.csr('pathint2', '/CN=Path Intermediate CA 2');
      const int2Pem = ws.sign('pathint2', 'pathroot', { ext: 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign' });
      ws.key('pathint2-verif');
      ws.csr('pathint2-verif', `/CN=${code}`);
      const reg2 = await server.api('POST', '/v1/cas/register', { caCertificatePem: int2Pem, verificationCertificatePem: ws.sign('pathint2-verif', 'pathint2', { ext: 'basicConstraints=CA:FALSE' }) });
      expect(reg2.status, JSON.stringify(reg2.body)).toBe(201);
      ws.key('path-dev-b');
      ws.csr('path-dev-b', '/CN=path-dev-b');
      const leafB = ws.sign('path-dev-b', 'pathint2');
      const b = { certPem: leafB + int2Pem, keyPem: ws.read('path-dev-b.key'), certificateId: new X509Certificate(leafB).fingerprint256.replace(/:/g, '').toLowerCase() };
      await enrol(b);
      const ok = await connect(server, b, 'path-dev-b');
      expect(ok.error).toBeUndefined();
      await ok.client?.endAsync();
      expect((await server.api('PATCH', `/v1/cas/${reg2.body.caCertificateId as string}`, { status: 'INACTIVE' })).status).toBe(200);
      expect((await connect(server, b, 'path-dev-b')).code).toBe(5);
      // nor is another device of it registered meanwhile (it was, under the root, and then refused at connect)
      ws.key('path-dev-c');
      ws.csr('path-dev-c', '/CN=path-dev-c');
      const refused = await server.api('POST', '/v1/certificates/register', { certificatePem: ws.sign('path-dev-c', 'pathint2') + int2Pem, status: 'ACTIVE' });
      expect(refused.status).toBe(409);
      expect(refused.body).toMatchObject({ code: 'PROVISIONING_CA_NOT_ACTIVE', detail: `CA ${reg2.body.caCertificateId as string} on the certificate's path is INACTIVE in this tenant` });
    });

    it('cert register --ca-cert: the certificate must chain to that CA, and --without-ca excludes it', async () => {
      const otherId = await registerCa('otherca', '/CN=Other Maker CA', false);
      ws.key('cacert-dev');
      ws.csr('cacert-dev', '/CN=cacert-dev');
      ws.sign('cacert-dev', 'maker');
      const wrong = await server.cli(['cert', 'register', ws.file('cacert-dev.pem'), '--ca-cert', ws.file('otherca.pem')]);
      expect(wrong).toMatchObject({ code: 1, stderr: `error PROVISIONING_CA_UNKNOWN_ISSUER: the certificate does not chain to the CA given as caCertificatePem (${otherId})\n` });
      expect((await server.cli(['cert', 'register', ws.file('cacert-dev.pem'), '--ca-cert', ws.file('otherca.pem'), '--without-ca'])).stderr).toBe('error CLI_USAGE_INVALID: --without-ca registers the certificate with no CA: it excludes --ca-cert\n');
      const right = await server.cli(['--json', 'cert', 'register', ws.file('cacert-dev.pem'), '--ca-cert', ws.file('maker.pem')]);
      expect(right.code, right.stderr).toBe(0);
      const id = (JSON.parse(right.stdout) as { certificateId: string }).certificateId;
      expect((await server.api('GET', `/v1/certificates/${id}`)).body.caCertificateId).toBe(caId);
    });

    it('JITP works with mosquitto_pub from Debian', async () => {
      const dev = issueDevice('jitp-mosq');
      writeFileSync(ws.file('mosq.pem'), dev.certPem);
      writeFileSync(ws.file('mosq.key'), dev.keyPem);
      await execFileAsync('mosquitto_pub', ['--cafile', path.join(server.dataDir, 'root-ca.pem'), '--cert', ws.file('mosq.pem'), '--key', ws.file('mosq.key'), '-h', 'localhost', '-p', String(server.ports.mqtt), '-i', 'jitp-mosq', '-t', 'jitp/jitp-mosq/t', '-m', 'x', '-q', '1'], { timeout: 20_000 });
      expect((await server.api('GET', '/v1/things/jitp-mosq')).status).toBe(200);
    });

    it("connects a JITP device with the CLI: the client id defaults to the certificate's CN, a wrong one gets a hint", async () => {
      const dev = issueDevice('jitp-cli');
      const dir = ws.file('jitp-cli');
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'certificate.pem'), dev.certPem);
      writeFileSync(path.join(dir, 'private.key'), dev.keyPem, { mode: 0o600 });
      writeFileSync(path.join(dir, 'root-ca.pem'), readFileSync(path.join(server.dataDir, 'root-ca.pem')));
      const args = ['device', 'connect', '--creds', dir, '--endpoint', `localhost:${server.ports.mqtt}`];
      // no provisioning.json: the client id was "gatehouse-device", which the template's policy (client = thing name) refuses
      const ok = await server.cli([...args, '--publish', 'jitp/jitp-cli/hello']);
      expect(ok.stderr).toBe('');
      expect(ok.stdout).toBe('connected: true\nclientId: jitp-cli\npublished: jitp/jitp-cli/hello\n');
      writeFileSync(path.join(dir, 'provisioning.json'), JSON.stringify({ thingName: 'someone-else' }));
      const refused = await server.cli(args);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toBe(`error DEVICE_CONNECT_FAILED: cannot connect to localhost:${server.ports.mqtt}: Connection refused: Not authorized; the client id "someone-else" is the thing name from provisioning.json, give the one the certificate's policies allow with --client-id (connackCode: 5)\n`);
      expect((await server.cli([...args, '--client-id', 'jitp-cli'])).code).toBe(0);
    });

    it('provisions concurrent first connections of one certificate once', async () => {
      const dev = issueDevice('jitp-race');
      const results = await Promise.all([1, 2, 3, 4, 5].map(() => connect(server, dev, 'jitp-race')));
      for (const r of results) r.client?.end(true);
      expect(results.filter((r) => r.client !== undefined).length).toBeGreaterThanOrEqual(1);
      const audit = await server.api('GET', '/v1/audit?maxResults=250');
      expect(audit.body.entries.filter((e: { action: string; target: string }) => e.action === 'jitp.provisioned' && e.target === `cert/${dev.certificateId}`)).toHaveLength(1);
      expect((await server.api('GET', '/v1/things?namePrefix=jitp-race')).body.things).toHaveLength(1);
    });

    it('provisions 500 distinct never-seen devices, concurrently', async () => {
      const devices = Array.from({ length: 500 }, (_, i) => issueDevice(`fleet-${String(i).padStart(3, '0')}`));
      let next = 0;
      let ok = 0;
      const failures: string[] = [];
      await Promise.all(Array.from({ length: 25 }, async () => {
        while (next < devices.length) {
          const i = next++;
          const dev = devices[i] as DeviceCert;
          const r = await connect(server, dev, `fleet-${String(i).padStart(3, '0')}`);
          if (r.client !== undefined) {
            ok += 1;
            r.client.end(true);
          } else failures.push(`${i}: ${r.error?.message ?? '?'}`);
        }
      }));
      expect(failures).toEqual([]);
      expect(ok).toBe(500);
      const listed = await server.api('GET', '/v1/things?namePrefix=fleet-&maxResults=250');
      expect(listed.body.things).toHaveLength(250);
      expect(listed.body.nextToken).toBeDefined();
    }, 180_000);

    it('JITP (reconnect): the first connection is closed, the next one succeeds', async () => {
      await server.api('PATCH', `/v1/cas/${caId}`, { firstConnect: 'reconnect' });
      const dev = issueDevice('jitp-reconnect');
      const first = await connect(server, dev, 'jitp-reconnect');
      expect(first.client).toBeUndefined();
      expect((await server.api('GET', `/v1/certificates/${dev.certificateId}`)).body.status).toBe('ACTIVE');
      const second = await connect(server, dev, 'jitp-reconnect');
      expect(second.error).toBeUndefined();
      second.client?.end(true);
      await server.api('PATCH', `/v1/cas/${caId}`, { firstConnect: 'continue' });
    });

    it('refuses a certificate lacking a template parameter without default, with the reason in the event', async () => {
      const strict = { ...JITP_TEMPLATE, Parameters: { ...JITP_TEMPLATE.Parameters, 'AWS::IoT::Certificate::Country': { Type: 'String' } } };
      await server.api('POST', '/v1/provisioning-templates/jitp-sensors/versions', { templateBody: strict, setAsDefault: true });
      const events: Record<string, unknown>[] = [];
      const hook = createServer((req, res) => {
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => {
          events.push(JSON.parse(body) as Record<string, unknown>);
          res.end('ok');
        });
      });
      await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
      try {
        const wh = await server.api('POST', '/v1/webhooks', { url: `http://127.0.0.1:${(hook.address() as { port: number }).port}/`, events: ['jitp.failed'], secret: 'a-webhook-secret-of-length' });
        expect(wh.status).toBe(201);
        const dev = issueDevice('no-country');
        const r = await connect(server, dev, 'no-country');
        expect(r.client).toBeUndefined();
        expect((await server.api('GET', `/v1/certificates/${dev.certificateId}`)).status).toBe(404);
        await waitFor(() => (events.length > 0 ? true : undefined), 10_000, 'jitp.failed webhook');
        expect(events[0]).toMatchObject({ eventType: 'jitp.failed', event: { certificateId: dev.certificateId, code: 'TEMPLATE_PARAMETER_MISSING' } });
        await server.api('DELETE', `/v1/webhooks/${wh.body.webhookId as string}`);
      } finally {
        hook.close();
        await server.api('PATCH', '/v1/provisioning-templates/jitp-sensors', { defaultVersionId: 1 });
      }
    });

    it('JITR: refused and pending, the event reaches the webhook and the broker, the hook activates, the reconnect succeeds', async () => {
      const jitrCa = await registerCa('jitrca', '/CN=JITR CA', true);
      const signer = createKeyObjectSigner(createPrivateKey(ws.read('jitrca.key')));
      const issuer = createCertificateIssuer({ caCertificate: parseCertificate(ws.read('jitrca.pem')), signer, chainPem: [] });
      const keys = generateKeyPair('EC_P256');
      const issued = issuer.issue({ publicKey: keys.publicKey, subject: { CN: ['jitr-dev-1'] }, extendedKeyUsage: 'clientAuth', validityDays: 10 });
      const dev = { certPem: issued.pem, keyPem: keys.privateKeyPem, certificateId: issued.certificateId };
      await server.api('POST', '/v1/policies', { policyName: 'jitr-device', policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] } });
      // an observer on the broker, allowed to read registration events
      const observerCert = issueDevice('observer');
      await connect(server, observerCert, 'observer').then((r) => r.client?.end(true));
      await server.api('POST', '/v1/policies', { policyName: 'observer', policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['iot:Subscribe', 'iot:Receive'], Resource: ['*'] }] } });
      await server.api('POST', '/v1/policies/observer/attach', { target: observerCert.certificateId });
      const obs = await connect(server, observerCert, 'observer');
      const onBroker: string[] = [];
      obs.client?.on('message', (t) => onBroker.push(t));
      await obs.client?.subscribeAsync('$aws/events/certificates/registered/#', { qos: 0 });

      let activated = 0;
      const hook: HttpServer = createServer((req, res) => {
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => {
          const evt = (JSON.parse(body) as { event: { certificateId: string; caCertificateId: string; certificateStatus: string; awsAccountId: string; timestamp: number; certificateRegistrationTimestamp: number } }).event;
          expect(evt).toMatchObject({ certificateId: dev.certificateId, caCertificateId: jitrCa, certificateStatus: 'PENDING_ACTIVATION' });
          expect(evt.awsAccountId).toMatch(/^\d{12}$/);
          // the operator's hook: activate, create the thing, attach a policy
          void (async () => {
            await server.api('PATCH', `/v1/certificates/${evt.certificateId}`, { status: 'ACTIVE' });
            await server.api('POST', '/v1/things', { thingName: 'jitr-dev-1' });
            await server.api('POST', '/v1/things/jitr-dev-1/principals', { certificateId: evt.certificateId });
            await server.api('POST', '/v1/policies/jitr-device/attach', { target: evt.certificateId });
            activated += 1;
            res.end('ok');
          })();
        });
      });
      await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
      try {
        await server.api('POST', '/v1/webhooks', { url: `http://127.0.0.1:${(hook.address() as { port: number }).port}/`, events: ['certificate.registered'], secret: 'another-webhook-secret' });
        const first = await connect(server, dev, 'jitr-dev-1');
        expect(first.client).toBeUndefined();
        await waitFor(() => (activated > 0 ? true : undefined), 10_000, 'JITR hook activation');
        await waitFor(() => (onBroker.includes(`$aws/events/certificates/registered/${jitrCa}`) ? true : undefined), 5_000, 'JITR event on the broker');
        const second = await connect(server, dev, 'jitr-dev-1');
        expect(second.error).toBeUndefined();
        second.client?.end(true);
        expect((await server.api('GET', `/v1/certificates/${dev.certificateId}`)).body).toMatchObject({ status: 'ACTIVE', createdBy: 'jitr' });
      } finally {
        hook.close();
        obs.client?.end(true);
      }
    });

    it('accepts leaf + intermediate when only the root is registered, and the leaf alone once the intermediate is registered', async () => {
      const rootId = await registerCa('chainroot', '/CN=Chain Root', true);
      await server.api('PATCH', `/v1/cas/${rootId}`, { registrationConfig: { templateName: 'jitp-sensors' } });
      ws.key('chainint');
      ws.csr('chainint', '/CN=Chain Intermediate');
      const intPem = ws.sign('chainint', 'chainroot', { ext: 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash' });
      const leafOf = (cn: string): DeviceCert => {
        ws.key(cn);
        ws.csr(cn, `/CN=${cn}`);
        const pem = ws.sign(cn, 'chainint');
        return { certPem: pem, keyPem: ws.read(`${cn}.key`), certificateId: parseCertificate(pem).certificateId };
      };
      const withChain = leafOf('chain-dev-1');
      const r1 = await connect(server, withChain, 'chain-dev-1', [intPem]);
      expect(r1.error).toBeUndefined();
      r1.client?.end(true);
      expect((await server.api('GET', `/v1/certificates/${withChain.certificateId}`)).body).toMatchObject({ status: 'ACTIVE', caCertificateId: rootId });
      // register the intermediate too (proof of possession with its key); the leaf alone is then enough
      const code = (await server.api('GET', '/v1/cas/registration-code')).body.registrationCode as string;
      ws.key('chainint-verif');
      ws.csr('chainint-verif', `/CN=${code}`);
      const verif = ws.sign('chainint-verif', 'chainint', { ext: 'basicConstraints=CA:FALSE' });
      const reg = await server.api('POST', '/v1/cas/register', { caCertificatePem: intPem, verificationCertificatePem: verif, allowAutoRegistration: true });
      expect(reg.status).toBe(201);
      await server.api('PATCH', `/v1/cas/${reg.body.caCertificateId as string}`, { registrationConfig: { templateName: 'jitp-sensors' } });
      const alone = leafOf('chain-dev-2');
      const r2 = await connect(server, alone, 'chain-dev-2');
      expect(r2.error).toBeUndefined();
      r2.client?.end(true);
      expect((await server.api('GET', '/v1/things/chain-dev-2')).status).toBe(200);
    });

    it('trusts a registered intermediate whose root is not registered; deactivating a registered root cuts off its intermediates', async () => {
      const intermediate = (name: string, root: string, subject: string): string => {
        ws.key(name);
        ws.csr(name, subject);
        return ws.sign(name, root, { ext: 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash' });
      };
      const registerIntermediate = async (name: string, pem: string): Promise<string> => {
        const code = (await server.api('GET', '/v1/cas/registration-code')).body.registrationCode as string;
        ws.key(`${name}-verif`);
        ws.csr(`${name}-verif`, `/CN=${code}`);
        const verif = ws.sign(`${name}-verif`, name, { ext: 'basicConstraints=CA:FALSE' });
        const reg = await server.api('POST', '/v1/cas/register', { caCertificatePem: pem, verificationCertificatePem: verif, allowAutoRegistration: true });
        expect(reg.status, JSON.stringify(reg.body)).toBe(201);
        const id = reg.body.caCertificateId as string;
        await server.api('PATCH', `/v1/cas/${id}`, { registrationConfig: { templateName: 'jitp-sensors' } });
        return id;
      };
      const leafOf = (cn: string, ca: string): DeviceCert => {
        ws.key(cn);
        ws.csr(cn, `/CN=${cn}`);
        const pem = ws.sign(cn, ca);
        return { certPem: pem, keyPem: ws.read(`${cn}.key`), certificateId: parseCertificate(pem).certificateId };
      };

      /**
       * A device under `ca` connects with its leaf alone and is provisioned under `caId`; it connects again without SNI
       * (the listener's own context, which must trust the intermediate alone too).
       */
      const provisionedUnder = async (cn: string, ca: string, caId: string): Promise<DeviceCert> => {
        const dev = leafOf(cn, ca);
        const r = await connect(server, dev, cn);
        expect(r.error).toBeUndefined();
        r.client?.end(true);
        expect((await server.api('GET', `/v1/certificates/${dev.certificateId}`)).body).toMatchObject({ status: 'ACTIVE', caCertificateId: caId });
        const again = await connect(server, dev, cn, [], false);
        expect(again.error).toBeUndefined();
        again.client?.end(true);
        return dev;
      };

      // Only the intermediate is registered: its device's leaf alone is verified by TLS and provisioned.
      ws.selfSignedCa('soloroot', '/CN=Unregistered Root');
      await provisionedUnder('solo-dev-1', 'soloint', await registerIntermediate('soloint', intermediate('soloint', 'soloroot', '/CN=Solo Intermediate')));

      // Root and intermediate registered: the intermediate's devices connect while the root is ACTIVE, not after.
      const rootId = await registerCa('gateroot', '/CN=Gate Root', false);
      const gated = await provisionedUnder('gate-dev-1', 'gateint', await registerIntermediate('gateint', intermediate('gateint', 'gateroot', '/CN=Gate Intermediate')));
      expect((await server.api('PATCH', `/v1/cas/${rootId}`, { status: 'INACTIVE' })).status).toBe(200);
      await waitFor(async () => ((await connect(server, gated, 'gate-dev-1')).error !== undefined ? true : undefined), 5_000, 'refusal once the root is INACTIVE');
      expect((await server.api('PATCH', `/v1/cas/${rootId}`, { status: 'ACTIVE' })).status).toBe(200);
      await waitFor(async () => {
        const r = await connect(server, gated, 'gate-dev-1');
        r.client?.end(true);
        return r.error === undefined ? true : undefined;
      }, 5_000, 'accepted again once the root is ACTIVE');
    });

    it('built-in JITR hooks: the allow list activates at once, a CRL (file or URL) refuses', async () => {
      const hookCa = await registerCa('hookca', '/CN=Hook CA', true);
      const signer = createKeyObjectSigner(createPrivateKey(ws.read('hookca.key')));
      const caCert = parseCertificate(ws.read('hookca.pem'));
      const issuer = createCertificateIssuer({ caCertificate: caCert, signer, chainPem: [] });
      const mk = (cn: string): DeviceCert & { serialNumber: string } => {
        const keys = generateKeyPair('EC_P256');
        const issued = issuer.issue({ publicKey: keys.publicKey, subject: { CN: [cn] }, extendedKeyUsage: 'clientAuth', validityDays: 10 });
        return { certPem: issued.pem, keyPem: keys.privateKeyPem, certificateId: issued.certificateId, serialNumber: issued.serialNumber };
      };
      await server.api('POST', '/v1/policies', { policyName: 'hook-device', policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/\${iot:Connection.Thing.ThingName}` }] } });
      writeFileSync(ws.file('allow.txt'), '# allowed devices\nallowed-dev\ncrl-dev\nurl-dev\n\n');
      const imp = await server.cli(['--json', 'allowlist', 'import', ws.file('allow.txt')]);
      expect(JSON.parse(imp.stdout)).toEqual({ submitted: 3, added: 3 });
      // refused before anything is stored: no option (the call replaces every hook), a file and a URL, a policy that is
      // not there, a URL that is not http(s)
      expect((await server.cli(['ca', 'hooks', hookCa])).stderr).toBe('error CLI_USAGE_INVALID: give the hooks to set (--allow-list, --allow-list-policy, --crl-file, --crl-url; each call replaces them all), or --show\n');
      expect((await server.cli(['ca', 'hooks', hookCa, '--crl-file', 'x.crl', '--crl-url', 'https://pki.example/x.crl'])).stderr).toBe('error CLI_USAGE_INVALID: --crl-file and --crl-url exclude each other (a CRL file would be used and the URL ignored)\n');
      expect((await server.cli(['ca', 'hooks', hookCa, '--allow-list-policy', 'no-such-policy'])).stderr).toBe('error REGISTRY_POLICY_NOT_FOUND: policy "no-such-policy" does not exist (the allow-list hook attaches it to each device it activates)\n');
      expect((await server.cli(['ca', 'hooks', hookCa, '--crl-url', 'file:///etc/x.crl'])).stderr).toBe('error API_VALIDATION_FAILED: body.crlUrl must be an absolute http(s) URL with a host, without user:password@ or spaces\n');
      expect((await server.api('PUT', `/v1/cas/${hookCa}/registration-hooks`, { crlUrl: 'http://' })).body.code).toBe('API_VALIDATION_FAILED');
      expect((await server.cli(['ca', 'hooks', hookCa, '--show'])).stdout).toContain('allowList: null');
      // a policy a hook attaches cannot be deleted from under it
      const spareHookCa = await registerCa('sparehookca', '/CN=Spare Hook CA', true);
      await server.api('POST', '/v1/policies', { policyName: 'hook-spare', policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] } });
      expect((await server.cli(['ca', 'hooks', spareHookCa, '--allow-list-policy', 'hook-spare'])).code).toBe(0);
      expect((await server.cli(['policy', 'delete', 'hook-spare'])).stderr).toBe(`error REGISTRY_POLICY_ATTACHED: policy "hook-spare" is the allow-list hook policy of CA ${spareHookCa}; change the CA's hooks first\n`);
      // a registered CA's CRL is its owner's to publish: the refusal has its code
      expect((await server.cli(['ca', 'crl', hookCa])).stderr).toMatch(/^error REGISTRY_CA_NOT_FOUND: /);
      const set = await server.cli(['--json', 'ca', 'hooks', hookCa, '--allow-list-policy', 'hook-device']);
      expect(set.stderr).toBe('');

      const allowed = mk('allowed-dev');
      const a = await connect(server, allowed, 'allowed-dev');
      expect(a.error).toBeUndefined();
      a.client?.end(true);
      expect((await server.api('GET', `/v1/certificates/${allowed.certificateId}`)).body).toMatchObject({ status: 'ACTIVE', things: ['allowed-dev'], policies: ['hook-device'] });
      const stranger = mk('not-listed');
      expect((await connect(server, stranger, 'not-listed')).client).toBeUndefined();
      expect((await server.api('GET', `/v1/certificates/${stranger.certificateId}`)).body.status).toBe('PENDING_ACTIVATION');
      expect((await connect(server, stranger, 'not-listed')).code).toBe(5);
      // put on the list afterwards: its next connection is activated by the hook (it stayed PENDING for good)
      writeFileSync(ws.file('late.txt'), 'not-listed\n');
      expect((await server.cli(['allowlist', 'import', ws.file('late.txt')])).code).toBe(0);
      const late = await connect(server, stranger, 'not-listed');
      expect(late.error).toBeUndefined();
      await late.client?.endAsync();
      expect((await server.api('GET', `/v1/certificates/${stranger.certificateId}`)).body).toMatchObject({ status: 'ACTIVE', things: ['not-listed'], policies: ['hook-device'] });

      // a CRL uploaded from a file
      const crlDev = mk('crl-dev');
      const urlDev = mk('url-dev');
      const crl = buildCrl({ issuerCertificate: caCert, signer, entries: [{ serialNumber: crlDev.serialNumber, revokedAt: new Date(), reason: 'keyCompromise' }, { serialNumber: urlDev.serialNumber, revokedAt: new Date() }], thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 86_400_000), crlNumber: 1n });
      writeFileSync(ws.file('hook.crl'), crl.pem);
      expect((await server.cli(['ca', 'hooks', hookCa, '--allow-list-policy', 'hook-device', '--crl-file', ws.file('hook.crl')])).code).toBe(0);
      expect((await connect(server, crlDev, 'crl-dev')).client).toBeUndefined();
      expect((await server.api('GET', `/v1/certificates/${crlDev.certificateId}`)).status).toBe(404);
      // a CRL signed by another CA is refused when uploaded
      const bogus = buildCrl({ issuerCertificate: parseCertificate(ws.read('maker.pem')), signer: createKeyObjectSigner(createPrivateKey(ws.read('maker.key'))), entries: [], thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 86_400_000), crlNumber: 1n });
      const refusedCrl = await server.api('PUT', `/v1/cas/${hookCa}/registration-hooks`, { crlPem: bogus.pem });
      expect(refusedCrl.body.code).toBe('PKI_CRL_INVALID');
      // a CRL fetched from a URL
      const crlServer = createServer((_req, res) => res.end(Buffer.from(crl.der)));
      await new Promise<void>((r) => crlServer.listen(0, '127.0.0.1', () => r()));
      try {
        await server.api('PUT', `/v1/cas/${hookCa}/registration-hooks`, { allowList: { policyName: 'hook-device' }, crlUrl: `http://127.0.0.1:${(crlServer.address() as { port: number }).port}/hook.crl` });
        expect((await connect(server, urlDev, 'url-dev')).client).toBeUndefined();
        expect((await server.api('GET', `/v1/certificates/${urlDev.certificateId}`)).status).toBe(404);
      } finally {
        crlServer.close();
      }
    });

    it('refuses when the CA is inactive, auto-registration is off, the CA is revoked, the certificate expired, or the CA is unknown', async () => {
      const tryNew = async (cn: string, o?: Parameters<typeof issueDevice>[1]): Promise<{ connected: boolean; certificateId: string }> => {
        const dev = issueDevice(cn, o);
        const r = await connect(server, dev, cn);
        r.client?.end(true);
        return { connected: r.client !== undefined, certificateId: dev.certificateId };
      };
      const registered = async (id: string): Promise<number> => (await server.api('GET', `/v1/certificates/${id}`)).status;

      await server.api('PATCH', `/v1/cas/${caId}`, { autoRegistrationStatus: 'DISABLE' });
      const off = await tryNew('neg-autoreg-off');
      expect(off.connected).toBe(false);
      expect(await registered(off.certificateId)).toBe(404);
      await server.api('PATCH', `/v1/cas/${caId}`, { autoRegistrationStatus: 'ENABLE' });

      await server.api('PATCH', `/v1/cas/${caId}`, { status: 'INACTIVE' });
      const inactive = await tryNew('neg-inactive');
      expect(inactive.connected).toBe(false);
      expect(await registered(inactive.certificateId)).toBe(404);
      await server.api('PATCH', `/v1/cas/${caId}`, { status: 'ACTIVE' });

      const caKey = await crypto.subtle.importKey('pkcs8', createPrivateKey(ws.read('maker.key')).export({ type: 'pkcs8', format: 'der' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
      const old = await makeCertificate({ subject: 'CN=neg-expired', issuer: { subject: 'CN=Maker Device CA, O=Maker', privateKey: caKey }, ca: false, notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
      const oldDev = { certPem: old.pem, keyPem: createPrivateKey({ key: Buffer.from(await crypto.subtle.exportKey('pkcs8', old.privateKey)), format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString(), certificateId: parseCertificate(old.pem).certificateId };
      const expired = await connect(server, oldDev, 'neg-expired');
      expect(expired.client).toBeUndefined();
      expect(await registered(oldDev.certificateId)).toBe(404);

      ws.selfSignedCa('stranger', '/CN=Stranger CA');
      ws.key('stranger-dev');
      ws.csr('stranger-dev', '/CN=stranger-dev');
      const strangerPem = ws.sign('stranger-dev', 'stranger');
      const stranger = await connect(server, { certPem: strangerPem, keyPem: ws.read('stranger-dev.key'), certificateId: parseCertificate(strangerPem).certificateId }, 'stranger-dev');
      expect(stranger.client).toBeUndefined();

      const stillOk = await tryNew('neg-before-revoke');
      expect(stillOk.connected).toBe(true);
      await server.api('POST', `/v1/cas/${caId}/revoke`, { reason: 'keyCompromise' });
      const revoked = await tryNew('neg-revoked');
      expect(revoked.connected).toBe(false);
      expect(await registered(revoked.certificateId)).toBe(404);
    });
  });
}

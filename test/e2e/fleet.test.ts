// Fleet provisioning by claim and by trusted user end to end (issue 5): real server, real MQTT over mutual TLS,
// the device SDK of src/device, the CLI, and error paths.
import { createHmac, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { createServer } from 'node:http';
import tls from 'node:tls';
import type { Server as HttpServer } from 'node:http';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { iot, iotidentity, mqtt as awsMqtt } from 'aws-iot-device-sdk-v2';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCsr, crlSerialKey, generateKeyPair, parseCertificate, readCrl } from '../../src/pki/index.ts';
import { connectDevice, FleetProvisioningClient, provisionByClaim, provisionByTrustedUser, withRetry } from '../../src/device/index.ts';
import type { DeviceEndpoint } from '../../src/device/index.ts';
import { DIALECTS } from '../support/dialects.ts';
import { execSql, selectRows } from '../support/database-access.ts';
import { REPO, startServer } from '../support/server-process.ts';

const execFileAsync = promisify(execFile);

type Server = Awaited<ReturnType<typeof startServer>>;
const ARN = 'arn:aws:iot:*:*';

const DEVICE_POLICY = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/\${iot:Connection.Thing.ThingName}` },
    { Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/things/\${iot:Connection.Thing.ThingName}/*` },
  ],
};

function template(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Parameters: { SerialNumber: { Type: 'String' }, Location: { Type: 'String', Default: 'lab' } },
    Resources: {
      thing: {
        Type: 'AWS::IoT::Thing',
        Properties: { ThingName: { 'Fn::Join': ['', ['sensor-', { Ref: 'SerialNumber' }]] }, AttributePayload: { location: { Ref: 'Location' } } },
        OverrideSettings: { AttributePayload: 'FAIL', ThingTypeName: 'REPLACE', ThingGroups: 'DO_NOTHING' },
      },
      certificate: { Type: 'AWS::IoT::Certificate', Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' } },
      policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: 'fleet-device' } },
    },
    DeviceConfiguration: { FallbackUrl: 'https://example.invalid/fallback', Interval: 60 },
    ...extra,
  };
}

for (const dialect of DIALECTS) {
  describe(`fleet provisioning end to end (${dialect.name})`, () => {
    let server: Server;
    let endpoint: DeviceEndpoint;
    let claim: { certificatePem: string; privateKeyPem: string; certificateId: string };
    const tmp = mkdtempSync(path.join(tmpdir(), 'gh-fleet-'));

    async function newClaim(templateName: string, batch: string): Promise<{ certificatePem: string; privateKeyPem: string; certificateId: string }> {
      const r = await server.api('POST', `/v1/provisioning-templates/${templateName}/claim-certificates`, { batch });
      expect(r.status).toBe(201);
      return { certificatePem: r.body.certificatePem, privateKeyPem: r.body.keyPair.PrivateKey, certificateId: r.body.certificateId };
    }

    /** Whether the CRL that a certificate names (its CRL distribution point, as served now) lists it. */
    async function onCrl(certificatePem: string): Promise<boolean> {
      const cert = parseCertificate(certificatePem);
      const url = new URL(cert.crlDistributionPoints[0] ?? '');
      const issuer = await server.api('GET', `/v1/cas/${/([0-9a-f]{64})\.crl$/.exec(url.pathname)?.[1] ?? ''}`);
      expect(issuer.status).toBe(200);
      const crl = await readCrl(await (await fetch(`${server.apiUrl}${url.pathname.replace(/\.crl$/, '.pem')}`)).text(), parseCertificate(issuer.body.certificatePem));
      return crl.revokedSerials.has(crlSerialKey(cert.serialNumber));
    }

    beforeAll(async () => {
      server = await startServer({ dialect });
      endpoint = { host: '127.0.0.1', port: server.ports.mqtt, caPem: readFileSync(path.join(server.dataDir, 'root-ca.pem'), 'utf8'), servername: 'localhost' };
      expect((await server.api('POST', '/v1/policies', { policyName: 'fleet-device', policyDocument: DEVICE_POLICY })).status).toBe(201);
      const t = await server.api('POST', '/v1/provisioning-templates', { templateName: 'sensors', templateBody: template() });
      expect(t.status).toBe(201);
      claim = await newClaim('sensors', 'batch-1');
    });
    afterAll(async () => server.destroy());

    it('provisions by claim with a CSR made on the device, then the new identity connects and publishes', async () => {
      const dev = await provisionByClaim({ endpoint, claim, templateName: 'sensors', parameters: { SerialNumber: 'A100' }, clientId: 'factory-1', outDir: path.join(tmp, 'a100') });
      expect(dev.thingName).toBe('sensor-A100');
      expect(dev.deviceConfiguration).toEqual({ FallbackUrl: 'https://example.invalid/fallback', Interval: 60 });
      expect(statSync(path.join(tmp, 'a100', 'private.key')).mode & 0o777).toBe(0o600);
      const thing = await server.api('GET', '/v1/things/sensor-A100');
      expect(thing.body).toMatchObject({ attributes: { location: 'lab' }, principals: [dev.certificateId] });
      expect((await server.api('GET', `/v1/certificates/${dev.certificateId}`)).body).toMatchObject({ status: 'ACTIVE', policies: ['fleet-device'], createdBy: 'fleet' });
      const client = await connectDevice(endpoint, dev, 'sensor-A100');
      await client.publishAsync('things/sensor-A100/telemetry', '{"t":21}', { qos: 1 });
      await client.endAsync();
    });

    it('answers a device that subscribed to both calls up front: one SUBSCRIBE, no UNSUBSCRIBE, the answers still reach it', async () => {
      const c = await connectDevice(endpoint, claim, 'factory-standing');
      const sent: string[] = [];
      c.on('packetsend', (p: { cmd: string }) => sent.push(p.cmd));
      const api = new FleetProvisioningClient(c);
      await api.subscribeToAnswers([api.topics.createKeysAndCertificate, api.topics.registerThing('sensors')]);
      const keys = await api.createKeysAndCertificate();
      const reg = await api.registerThing('sensors', { certificateOwnershipToken: keys.certificateOwnershipToken, parameters: { SerialNumber: 'S300' } });
      expect(reg.thingName).toBe('sensor-S300');
      expect(sent.filter((cmd) => cmd === 'subscribe')).toHaveLength(1);
      expect(sent.filter((cmd) => cmd === 'unsubscribe')).toHaveLength(0);
      // a request to another API still subscribes to its own answers, and unsubscribes afterwards
      await expect(api.createCertificateFromCsr('not a CSR')).rejects.toMatchObject({ code: 'DEVICE_REQUEST_REJECTED' });
      expect(sent.filter((cmd) => cmd === 'subscribe')).toHaveLength(2);
      expect(sent.filter((cmd) => cmd === 'unsubscribe')).toHaveLength(1);
      await c.endAsync();
    });

    it('routes no device-API request to other subscribers: a device allowed to read every $aws topic sees neither the requests nor the answers of another connection', async () => {
      expect((await server.api('POST', '/v1/policies', { policyName: 'fleet-watcher', policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }] } })).status).toBe(201);
      const w = await server.api('POST', '/v1/certificates/keys-and-certificate', { setAsActive: true });
      expect(w.status).toBe(201);
      expect((await server.api('POST', '/v1/policies/fleet-watcher/attach', { target: w.body.certificateId })).status).toBe(204);
      const watcher = await connectDevice(endpoint, { certificatePem: w.body.certificatePem, privateKeyPem: w.body.keyPair.PrivateKey }, 'fleet-watcher');
      const seen: string[] = [];
      watcher.on('message', (topic: string) => seen.push(topic));
      await watcher.subscribeAsync(['$aws/certificates/#', '$aws/provisioning-templates/#', 'things/#'], { qos: 0 });
      const dev = await provisionByClaim({ endpoint, claim, templateName: 'sensors', parameters: { SerialNumber: 'W1' }, clientId: 'factory-w1' });
      const client = await connectDevice(endpoint, dev, dev.thingName);
      await client.publishAsync(`things/${dev.thingName}/telemetry`, '{"t":1}', { qos: 1 });
      await client.endAsync();
      // the telemetry is routed to the watcher; nothing of the fleet API was
      await expect.poll(() => seen, { timeout: 5000 }).toContain(`things/${dev.thingName}/telemetry`);
      expect(seen.filter((t) => t.startsWith('$aws/'))).toEqual([]);
      await watcher.endAsync();
    });

    it('serves the device SDK to plain JavaScript as the package entry gatehouse/device (no TypeScript loader of its own)', async () => {
      // a device maker's project: its node_modules/gatehouse is this checkout, its script is plain JavaScript run by node
      const project = mkdtempSync(path.join(tmpdir(), 'gh-sdk-user-'));
      mkdirSync(path.join(project, 'node_modules'));
      symlinkSync(REPO, path.join(project, 'node_modules', 'gatehouse'), 'dir');
      writeFileSync(path.join(project, 'provision.mjs'), `
        import * as sdk from 'gatehouse/device';
        const { endpoint, claim } = JSON.parse(process.argv[2]);
        const dev = await sdk.provisionByClaim({ endpoint, claim, templateName: 'sensors', parameters: { SerialNumber: 'JS1' }, outDir: process.argv[3] });
        const client = await sdk.connectDevice(endpoint, dev, dev.thingName);
        await client.publishAsync('things/' + dev.thingName + '/hello', 'from js', { qos: 1 });
        await client.endAsync();
        const refused = await sdk.provisionByClaim({ endpoint, claim, templateName: 'sensors', parameters: {}, attempts: 1 }).catch((e) => e.code);
        console.log(JSON.stringify({ exports: Object.keys(sdk).sort(), thingName: dev.thingName, refused }));
      `);
      const run = await execFileAsync(process.execPath, [path.join(project, 'provision.mjs'), JSON.stringify({ endpoint, claim }), path.join(project, 'device')], { cwd: project, timeout: 60_000 });
      const out = JSON.parse(run.stdout) as { exports: string[]; thingName: string; refused: string };
      expect(out.thingName).toBe('sensor-JS1');
      expect(out.refused).toBe('DEVICE_REQUEST_REJECTED');
      expect(statSync(path.join(project, 'device', 'private.key')).mode & 0o777).toBe(0o600);
      expect((await server.api('GET', '/v1/things/sensor-JS1')).body.principals).toHaveLength(1);
      // the JavaScript entry exports exactly what src/device/index.ts does
      expect(out.exports).toEqual(Object.keys(await import('../../src/device/index.ts')).sort());
      // the package exports nothing else: no entry that points at a missing file
      const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { exports: Record<string, Record<string, string>> };
      for (const entry of Object.values(pkg.exports)) for (const file of Object.values(entry)) expect(existsSync(path.join(REPO, file)), file).toBe(true);
    });

    it("provisions a device of another tenant at that tenant's endpoint, with the server's name verified", async () => {
      expect((await server.api('POST', '/v1/tenants', { name: 'fleetco' })).status).toBe(201);
      const as = { tenant: 'fleetco' };
      expect((await server.api('POST', '/v1/policies', { policyName: 'fleet-device', policyDocument: DEVICE_POLICY }, as)).status).toBe(201);
      expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'sensors', templateBody: template() }, as)).status).toBe(201);
      const r = await server.api('POST', '/v1/provisioning-templates/sensors/claim-certificates', { batch: 'fc-1' }, as);
      expect(r.status).toBe(201);
      const tenantClaim = { certificatePem: r.body.certificatePem as string, privateKeyPem: r.body.keyPair.PrivateKey as string };
      // Node's own host name check (no bypass): the endpoint fleetco.localhost presents a certificate of that name
      const at = { ...endpoint, servername: 'fleetco.localhost' };
      const dev = await provisionByClaim({ endpoint: at, claim: tenantClaim, templateName: 'sensors', parameters: { SerialNumber: 'T1' }, attempts: 1 });
      expect(dev.thingName).toBe('sensor-T1');
      const c = await connectDevice(at, dev, dev.thingName);
      await c.publishAsync('things/sensor-T1/hello', 'hi', { qos: 1 });
      await c.endAsync();
      expect((await server.api('GET', '/v1/things/sensor-T1', undefined, as)).status).toBe(200);
      // the endpoint name as the tenant was told it (`fleetco.localhost`): a .localhost name is the loopback host (RFC
      // 6761), which this machine's resolver does not know; the SDK connects to localhost and still checks that name
      const byName = { host: 'fleetco.localhost', port: server.ports.mqtt, caPem: endpoint.caPem };
      const named = await provisionByClaim({ endpoint: byName, claim: tenantClaim, templateName: 'sensors', parameters: { SerialNumber: 'T3' }, attempts: 1 });
      expect(named.thingName).toBe('sensor-T3');
      await (await connectDevice(byName, named, named.thingName)).endAsync();
      // the default tenant's endpoint as the API reports it (`default.localhost`), with Node's host check too
      expect((await server.api('GET', '/v1/tenants')).body.tenants.find((t: { name: string }) => t.name === 'default')?.endpoint).toBe('default.localhost');
      const atDefault = { host: 'default.localhost', port: server.ports.mqtt, caPem: endpoint.caPem };
      const home = await provisionByClaim({ endpoint: atDefault, claim, templateName: 'sensors', parameters: { SerialNumber: 'D1' }, attempts: 1 });
      await (await connectDevice(atDefault, home, home.thingName)).endAsync();
      expect((await server.api('GET', '/v1/things/sensor-D1')).status).toBe(200);
      expect((await server.api('GET', '/v1/things/sensor-T1')).status).toBe(404);
      const presented = await new Promise<tls.PeerCertificate>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: server.ports.mqtt, servername: 'fleetco.localhost', ca: endpoint.caPem, key: dev.privateKeyPem, cert: dev.certificatePem }, () => {
          resolve(s.getPeerCertificate());
          s.destroy();
        });
        s.on('error', reject);
      });
      expect(presented.subjectaltname).toBe('DNS:fleetco.localhost');
      // the CLI too, with the tenant's claim at the tenant's endpoint
      const claimDir = path.join(tmp, 'fleetco-claim');
      mkdirSync(claimDir);
      writeFileSync(path.join(claimDir, 'claim.pem'), tenantClaim.certificatePem);
      writeFileSync(path.join(claimDir, 'claim.key'), tenantClaim.privateKeyPem, { mode: 0o600 });
      writeFileSync(path.join(claimDir, 'root-ca.pem'), endpoint.caPem);
      const viaCli = await server.cli(['--json', 'device', 'provision', '--endpoint', `127.0.0.1:${server.ports.mqtt}`, '--servername', 'fleetco.localhost', '--claim-cert', path.join(claimDir, 'claim.pem'), '--claim-key', path.join(claimDir, 'claim.key'), '--template', 'sensors', '-p', 'SerialNumber=T2', '--attempts', '1', '--out', path.join(tmp, 'fleetco-t2')]);
      expect(viaCli.stderr).toBe('');
      expect(JSON.parse(viaCli.stdout)).toMatchObject({ thingName: 'sensor-T2' });
      // the endpoint name used to provision is kept with the credentials: connect needs no --servername
      const connected = await server.cli(['--json', 'device', 'connect', '--creds', path.join(tmp, 'fleetco-t2'), '--publish', 'things/sensor-T2/hello']);
      expect(connected.stderr).toBe('');
      expect(JSON.parse(connected.stdout)).toMatchObject({ connected: true, clientId: 'sensor-T2' });
    });

    it('refuses an output that cannot take the new identity before provisioning anything: a file, a path under a file', async () => {
      const certificatesBefore = (await server.api('GET', '/v1/certificates?maxResults=250')).body.certificates.length as number;
      const file = path.join(tmp, 'not-a-dir');
      writeFileSync(file, 'x');
      for (const [outDir, reason] of [[file, `${file} is not a directory`], [path.join(file, 'sub'), `${file} is not a directory`]] as const) {
        const refused = await provisionByClaim({ endpoint, claim, templateName: 'sensors', parameters: { SerialNumber: 'OUT1' }, outDir, attempts: 1 }).catch((e: { code?: string; message?: string }) => e);
        expect(refused).toMatchObject({ code: 'DEVICE_CREDENTIALS_INVALID', message: `cannot save the new identity in ${outDir}: ${reason}` });
      }
      // the CLI's commands that make key material on the server ask the same first
      const claimCli = await server.cli(['claim', 'create', '--template', 'sensors', '--batch', 'out-1', '--out', file]);
      expect(claimCli.stderr).toBe(`error CLI_USAGE_INVALID: cannot write to --out ${file}: ${file} is not a directory\n`);
      const bundleCli = await server.cli(['thing', 'create', 'out-thing', '--with-certificate', '--out', path.join(file, 'sub')]);
      expect(bundleCli.stderr).toBe(`error CLI_USAGE_INVALID: cannot write to --out ${path.join(file, 'sub')}: ${file} is not a directory\n`);
      expect((await server.api('GET', '/v1/things/out-thing')).status).toBe(404);
      expect((await server.api('GET', '/v1/things/sensor-OUT1')).status).toBe(404);
      expect((await server.api('GET', '/v1/certificates?maxResults=250')).body.certificates.length).toBe(certificatesBefore);
      // a directory that does not exist yet under a writable one is fine, and is created
      const fresh = await provisionByClaim({ endpoint, claim, templateName: 'sensors', parameters: { SerialNumber: 'OUT2' }, outDir: path.join(tmp, 'new-parent', 'out2'), attempts: 1 });
      expect(statSync(path.join(tmp, 'new-parent', 'out2', 'private.key')).mode & 0o777).toBe(0o600);
      expect(fresh.thingName).toBe('sensor-OUT2');
    });

    it('provisions with CreateKeysAndCertificate over CBOR', async () => {
      const dev = await provisionByClaim({ endpoint, claim, templateName: 'sensors', parameters: { SerialNumber: 'B200', Location: 'hall' }, keyMode: 'server', format: 'cbor' });
      expect(dev.thingName).toBe('sensor-B200');
      expect(dev.privateKeyPem).toContain('PRIVATE KEY');
      const client = await connectDevice(endpoint, dev, 'sensor-B200');
      await client.endAsync();
    });

    it('provisions by trusted user: an installer token gets a 5-minute claim that is not listed', async () => {
      const installer = await server.api('POST', '/v1/tokens', { role: 'installer', name: 'installer-1' });
      const tok = installer.body.token as string;
      expect((await server.api('GET', '/v1/things', undefined, { token: tok })).status).toBe(403);
      const r = await server.api('POST', '/v1/provisioning-templates/sensors/provisioning-claim', undefined, { token: tok });
      expect(r.status).toBe(201);
      const ttl = Date.parse(r.body.expiration) - Date.now();
      expect(ttl).toBeGreaterThan(3 * 60_000);
      expect(ttl).toBeLessThanOrEqual(5 * 60_000 + 1000);
      const listed = await server.api('GET', '/v1/certificates?maxResults=250');
      expect(listed.body.certificates.map((c: { certificateId: string }) => c.certificateId)).not.toContain(r.body.certificateId);
      const dev = await provisionByTrustedUser({ endpoint, claim: { certificatePem: r.body.certificatePem, privateKeyPem: r.body.keyPair.PrivateKey }, templateName: 'sensors', parameters: { SerialNumber: 'C300' } });
      expect(dev.thingName).toBe('sensor-C300');
      // the claim is for one device
      const second = await provisionByTrustedUser({ endpoint, claim: { certificatePem: r.body.certificatePem, privateKeyPem: r.body.keyPair.PrivateKey }, templateName: 'sensors', parameters: { SerialNumber: 'C301' } }).catch((e: { details?: unknown }) => e.details);
      expect(second).toMatchObject({ statusCode: 403, errorCode: 'AccessDenied' });
      expect((second as { errorMessage: string }).errorMessage).toBe('[PROVISIONING_CLAIM_EXHAUSTED] this claim reached its limit of 1 device (maxDevices)');
      expect((await server.api('GET', '/v1/things/sensor-C301')).status).toBe(404);
    });

    it('fails a request at once when the server closes the connection, and every later request on it', async () => {
      const c = await connectDevice(endpoint, claim, 'closed-conn');
      const api = new FleetProvisioningClient(c, { timeoutMs: 10_000 });
      const started = Date.now();
      // larger than the device endpoint accepts: the server closes the connection
      const huge = await api.createCertificateFromCsr('A'.repeat(300_000)).catch((e: Error & { code?: string }) => e);
      expect(huge).toMatchObject({ code: 'DEVICE_CONNECT_FAILED' });
      const after = await api.createKeysAndCertificate().catch((e: Error & { code?: string }) => e);
      expect(after).toMatchObject({ code: 'DEVICE_CONNECT_FAILED' });
      expect((after as Error).message).toContain('the connection is closed');
      expect(Date.now() - started).toBeLessThan(5_000); // not the 10 s answer timeout, and no hang on UNSUBSCRIBE
      c.end(true);
      // a client still connecting is not closed: MQTT.js queues the request until CONNACK
      const connecting = mqtt.connect({ protocol: 'mqtts', host: endpoint.host, port: endpoint.port, ca: endpoint.caPem, servername: 'localhost', cert: claim.certificatePem, key: claim.privateKeyPem, clientId: 'still-connecting', protocolVersion: 4, reconnectPeriod: 0 });
      expect(connecting.connected).toBe(false);
      const early = await new FleetProvisioningClient(connecting, { timeoutMs: 10_000 }).createKeysAndCertificate();
      expect(early.certificateId).toMatch(/^[0-9a-f]{64}$/);
      await connecting.endAsync();
    });

    it('rejects reused, foreign and expired ownership tokens', async () => {
      const c = await connectDevice(endpoint, claim, 'token-tests');
      const api = new FleetProvisioningClient(c);
      const k = await api.createKeysAndCertificate();
      expect((await server.api('GET', `/v1/certificates/${k.certificateId}`)).body.status).toBe('PENDING_ACTIVATION');
      await api.registerThing('sensors', { certificateOwnershipToken: k.certificateOwnershipToken, parameters: { SerialNumber: 'D400' } });
      const reused = await api.registerThing('sensors', { certificateOwnershipToken: k.certificateOwnershipToken, parameters: { SerialNumber: 'D401' } }).catch((e: { details?: unknown }) => e.details);
      expect(reused).toMatchObject({ statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken' });
      // a token made through another claim is foreign to this connection
      const other = await newClaim('sensors', 'batch-2');
      const c2 = await connectDevice(endpoint, other, 'token-tests-2');
      const k2 = await new FleetProvisioningClient(c2).createKeysAndCertificate();
      await c2.endAsync();
      const foreign = await api.registerThing('sensors', { certificateOwnershipToken: k2.certificateOwnershipToken, parameters: { SerialNumber: 'D402' } }).catch((e: { details?: unknown }) => e.details);
      expect(foreign).toMatchObject({ errorCode: 'InvalidCertificateOwnershipToken' });
      // a token older than one hour
      const k3 = await api.createKeysAndCertificate();
      await execSql(server, "update ownership_tokens set expires_at = '2000-01-01T00:00:00.000Z' where used_at is null");
      const expired = await api.registerThing('sensors', { certificateOwnershipToken: k3.certificateOwnershipToken, parameters: { SerialNumber: 'D403' } }).catch((e: { details?: unknown }) => e.details);
      expect(expired).toMatchObject({ statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken' });
      expect((expired as { errorMessage: string }).errorMessage).toContain('PROVISIONING_TOKEN_EXPIRED');
      expect((await server.api('GET', `/v1/certificates/${k3.certificateId}`)).body.status).toBe('PENDING_ACTIVATION');
      // the sweeper deletes certificates whose token expired unused (and only those)
      const swept = await server.api('POST', '/v1/maintenance/sweep-unregistered');
      expect(swept.body.deleted).toBeGreaterThanOrEqual(1);
      expect((await server.api('GET', `/v1/certificates/${k3.certificateId}`)).status).toBe(404);
      expect((await server.api('GET', `/v1/certificates/${k.certificateId}`)).body.status).toBe('ACTIVE');
      await c.endAsync();
    });

    it('holds a claim to its rate limit: with N per minute, device N+1 is rejected with PROVISIONING_RATE_LIMITED until the limit is lifted', async () => {
      const N = 3;
      // a limit no column holds is refused, and no claim certificate is left behind by it
      const certificatesBefore = (await server.api('GET', '/v1/certificates?maxResults=250')).body.certificates.length as number;
      expect((await server.api('POST', '/v1/provisioning-templates/sensors/claim-certificates', { batch: 'huge', maxDevices: 1e308 })).body).toMatchObject({ status: 400, code: 'API_VALIDATION_FAILED' });
      expect((await server.api('GET', '/v1/certificates?maxResults=250')).body.certificates.length).toBe(certificatesBefore);
      const r = await server.api('POST', '/v1/provisioning-templates/sensors/claim-certificates', { batch: 'rate-batch', ratePerMinute: N, maxDevices: 100 });
      expect(r.status).toBe(201);
      const limited = { certificatePem: r.body.certificatePem, privateKeyPem: r.body.keyPair.PrivateKey };
      for (let i = 0; i < N; i += 1) {
        const dev = await provisionByClaim({ endpoint, claim: limited, templateName: 'sensors', parameters: { SerialNumber: `RATE${i}` }, clientId: `rate-${i}`, attempts: 1 });
        expect(dev.thingName).toBe(`sensor-RATE${i}`);
      }
      const refused = await provisionByClaim({ endpoint, claim: limited, templateName: 'sensors', parameters: { SerialNumber: `RATE${N}` }, clientId: `rate-${N}`, attempts: 1 }).catch((e: { details?: unknown }) => e.details);
      expect(refused).toMatchObject({ statusCode: 429, errorCode: 'Throttling', errorMessage: expect.stringContaining('PROVISIONING_RATE_LIMITED') });
      // the answer says when to come back: one token every 60/N s
      const after = (refused as { retryAfterSeconds?: unknown }).retryAfterSeconds;
      expect(typeof after === 'number' && after >= 1 && after <= 60 / N).toBe(true);
      expect((await server.api('GET', '/v1/things/sensor-RATE3')).status).toBe(404);
      const listed = (await server.api('GET', '/v1/provisioning-templates/sensors/claim-certificates')).body.claims.find((c: { certificateId: string }) => c.certificateId === r.body.certificateId);
      expect(listed).toMatchObject({ devicesProvisioned: N, ratePerMinute: N, maxDevices: 100 });
      // the limit can be changed later; null lifts it, and the next device goes through at once
      expect((await server.api('PATCH', `/v1/claim-certificates/${r.body.certificateId}`, { ratePerMinute: 0 })).status).toBe(400);
      const lifted = await server.cli(['--json', 'claim', 'update', r.body.certificateId, '--rate-per-minute', 'none']);
      expect(lifted.stderr).toBe('');
      expect(JSON.parse(lifted.stdout)).toMatchObject({ ratePerMinute: null, maxDevices: 100 });
      const dev = await provisionByClaim({ endpoint, claim: limited, templateName: 'sensors', parameters: { SerialNumber: `RATE${N}` }, clientId: `rate-${N}`, attempts: 1 });
      expect(dev.thingName).toBe(`sensor-RATE${N}`);
    });

    it('retries a throttled device when the service says, not sooner, and not at all when that is too far away', async () => {
      const r = await server.api('POST', '/v1/provisioning-templates/sensors/claim-certificates', { batch: 'wait-batch', ratePerMinute: 12 });
      expect(r.status).toBe(201);
      const limited = { certificatePem: r.body.certificatePem, privateKeyPem: r.body.keyPair.PrivateKey };
      const provision = (serial: string, more: Partial<Parameters<typeof provisionByClaim>[0]>): Promise<Awaited<ReturnType<typeof provisionByClaim>>> =>
        provisionByClaim({ endpoint, claim: limited, templateName: 'sensors', parameters: { SerialNumber: serial }, clientId: `wait-${serial}`, ...more });
      // spend the burst (12 at once); bounded
      let throttled: unknown;
      for (let i = 0; i < 16 && throttled === undefined; i += 1) await provision(`WAIT${i}`, { attempts: 1 }).catch((e: unknown) => (throttled = e));
      expect((throttled as { details?: unknown }).details).toMatchObject({ statusCode: 429, retryAfterSeconds: expect.any(Number) });
      // asked to wait longer than maxRetryWaitMs: fails at once, with no retry
      const retries: number[] = [];
      const started = Date.now();
      const impatient = await provision('WAITX', { attempts: 3, maxRetryWaitMs: 0, onRetry: (x) => retries.push(x.delayMs) }).catch((e: { code?: string; details?: unknown }) => e);
      expect(impatient).toMatchObject({ code: 'DEVICE_REQUEST_REJECTED', details: { statusCode: 429, retryAfterSeconds: expect.any(Number) } });
      expect(retries).toEqual([]);
      expect(Date.now() - started).toBeLessThan(3_000);
      await expect(provision('WAITY', { maxRetryWaitMs: -1 })).rejects.toMatchObject({ code: 'DEVICE_OPTIONS_INVALID' });
      // within it: waits what the service asked (at least 1 s, at most 5 s here), then goes through
      const patient = await provision('WAITZ', { attempts: 2, maxRetryWaitMs: 10_000, onRetry: (x) => retries.push(x.delayMs) });
      expect(patient.thingName).toBe('sensor-WAITZ');
      expect(retries).toHaveLength(1);
      expect(retries[0]).toBeGreaterThanOrEqual(1_000);
      expect(retries[0]).toBeLessThanOrEqual(5_000);
    }, 60_000);

    it('rejects a disabled template, a missing parameter and an OverrideSettings FAIL conflict', async () => {
      const c = await connectDevice(endpoint, claim, 'reject-tests');
      const api = new FleetProvisioningClient(c);
      const tok = async (): Promise<string> => (await api.createKeysAndCertificate()).certificateOwnershipToken;
      const missing = await api.registerThing('sensors', { certificateOwnershipToken: await tok() }).catch((e: { details?: unknown }) => e.details);
      expect(missing).toMatchObject({ statusCode: 400, errorCode: 'InvalidParameters' });
      expect((missing as { errorMessage: string }).errorMessage).toContain('TEMPLATE_PARAMETER_MISSING');
      // sensor-A100 exists with location=lab; a different location with AttributePayload FAIL conflicts
      const conflict = await api.registerThing('sensors', { certificateOwnershipToken: await tok(), parameters: { SerialNumber: 'A100', Location: 'roof' } }).catch((e: { details?: unknown }) => e.details);
      expect(conflict).toMatchObject({ statusCode: 409, errorCode: 'ResourceConflict' });
      expect((await server.api('GET', '/v1/things/sensor-A100')).body.attributes).toEqual({ location: 'lab' });
      await server.api('PATCH', '/v1/provisioning-templates/sensors', { enabled: false });
      const disabled = await api.registerThing('sensors', { certificateOwnershipToken: await tok(), parameters: { SerialNumber: 'E500' } }).catch((e: { details?: unknown }) => e.details);
      expect(disabled).toMatchObject({ statusCode: 403, errorCode: 'AccessDenied' });
      await server.api('PATCH', '/v1/provisioning-templates/sensors', { enabled: true });
      await c.endAsync();
    });

    it('dry-runs a template: the plan, and whether it would apply now, checked in a transaction that writes nothing', async () => {
      const auditHead = async (): Promise<number> => ((await server.api('GET', '/v1/audit?maxResults=1')).body.entries as { seq: number }[])[0]?.seq ?? 0;
      const auditBefore = await auditHead();
      // a new thing: the plan applies
      const fresh = await server.api('POST', '/v1/provisioning-templates/sensors/dry-run', { parameters: { SerialNumber: 'DRY1' } });
      expect(fresh.status).toBe(200);
      expect(fresh.body.plan.thing.thingName).toBe('sensor-DRY1');
      expect(fresh.body.check).toEqual({ ok: true, thingExists: false });
      expect((await server.api('GET', '/v1/things/sensor-DRY1')).status).toBe(404);
      // sensor-A100 exists with location=lab: the same location applies, another one is the OverrideSettings FAIL conflict
      expect((await server.api('POST', '/v1/provisioning-templates/sensors/dry-run', { parameters: { SerialNumber: 'A100' } })).body.check).toEqual({ ok: true, thingExists: true });
      const conflict = await server.api('POST', '/v1/provisioning-templates/sensors/dry-run', { parameters: { SerialNumber: 'A100', Location: 'roof' } });
      expect(conflict.body.check).toMatchObject({ ok: false, code: 'PROVISIONING_OVERRIDE_CONFLICT', details: { thingName: 'sensor-A100', fields: ['attributes'] } });
      // a policy the template names that does not exist, and a thing group that does not exist
      const broken = template({});
      (broken.Resources as Record<string, { Properties: Record<string, unknown> }>).policy!.Properties.PolicyName = 'no-such-policy';
      expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'dry-broken', templateBody: broken })).status).toBe(201);
      const noPolicy = await server.api('POST', '/v1/provisioning-templates/dry-broken/dry-run', { parameters: { SerialNumber: 'DRY2' } });
      expect(noPolicy.body.check).toMatchObject({ ok: false, code: 'REGISTRY_POLICY_NOT_FOUND' });
      const grouped = template({});
      (grouped.Resources as Record<string, { Properties: Record<string, unknown> }>).thing!.Properties.ThingGroups = ['no-such-group'];
      expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'dry-grouped', templateBody: grouped })).status).toBe(201);
      expect((await server.api('POST', '/v1/provisioning-templates/dry-grouped/dry-run', { parameters: { SerialNumber: 'DRY3' } })).body.check).toMatchObject({ ok: false, code: 'REGISTRY_THING_GROUP_NOT_FOUND' });
      // the built-in allow list is checked too (it needs no outside service)
      expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'dry-listed', templateBody: template(), preProvisioningHook: { type: 'allow-list', parameter: 'SerialNumber', values: ['DRY7'] } })).status).toBe(201);
      expect((await server.api('POST', '/v1/provisioning-templates/dry-listed/dry-run', { parameters: { SerialNumber: 'DRY7' } })).body.check).toEqual({ ok: true, thingExists: false });
      expect((await server.api('POST', '/v1/provisioning-templates/dry-listed/dry-run', { parameters: { SerialNumber: 'DRY8' } })).body.check).toEqual({ ok: false, code: 'PROVISIONING_HOOK_DENIED', message: 'the pre-provisioning hook refused this device: SerialNumber "DRY8" is not on the template\'s allow list' });
      // with a certificate id, the certificate part is checked too
      const unknownCert = await server.api('POST', '/v1/provisioning-templates/sensors/dry-run', { parameters: { SerialNumber: 'DRY4' }, certificateId: 'ab'.repeat(32) });
      expect(unknownCert.body.check).toMatchObject({ ok: false, code: 'REGISTRY_CERTIFICATE_NOT_FOUND' });
      // the CLI prints the plan with its check, and exits 1 with the reason when the plan would not apply
      const good = await server.cli(['--json', 'template', 'dry-run', 'sensors', '-p', 'SerialNumber=DRY5']);
      expect(good.code, good.stderr).toBe(0);
      expect(JSON.parse(good.stdout)).toMatchObject({ thing: { thingName: 'sensor-DRY5' }, check: { ok: true, thingExists: false } });
      // template update refuses options that contradict each other or change nothing, before calling the server
      const usage = async (args: string[]): Promise<string> => (await server.cli(['template', 'update', 'dry-broken', ...args])).stderr;
      expect(await usage([])).toBe('error CLI_USAGE_INVALID: nothing to change: give --enable, --disable, --default-version, --hook-url, --allow-parameter or --no-hook\n');
      expect(await usage(['--enable', '--disable'])).toBe('error CLI_USAGE_INVALID: --enable and --disable exclude each other\n');
      expect(await usage(['--hook-url', 'http://127.0.0.1:9/hook', '--no-hook'])).toBe('error CLI_USAGE_INVALID: --no-hook removes the hook: it excludes --hook-url and --allow-parameter\n');
      expect(await usage(['--hook-timeout-ms', '900'])).toBe('error CLI_USAGE_INVALID: --hook-timeout-ms goes with --hook-url\n');
      expect((await server.api('GET', '/v1/provisioning-templates/dry-broken')).body).toMatchObject({ enabled: true, preProvisioningHook: null });
      const bad = await server.cli(['template', 'dry-run', 'dry-broken', '-p', 'SerialNumber=DRY6']);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toContain('thingName');
      expect(bad.stderr).toBe('error CLI_DRY_RUN_WOULD_FAIL: the plan would not apply now: REGISTRY_POLICY_NOT_FOUND: policy "no-such-policy" does not exist\n');
      // nothing of any of these dry runs was written: no thing, no audit entry (three template creations only)
      for (const n of ['DRY1', 'DRY2', 'DRY3', 'DRY4', 'DRY5', 'DRY6', 'DRY7']) expect((await server.api('GET', `/v1/things/sensor-${n}`)).status).toBe(404);
      expect((await auditHead()) - auditBefore).toBe(3);
      expect((await server.api('GET', '/v1/things/sensor-A100')).body.attributes).toEqual({ location: 'lab' });
      await server.api('DELETE', '/v1/provisioning-templates/dry-broken');
      await server.api('DELETE', '/v1/provisioning-templates/dry-grouped');
      await server.api('DELETE', '/v1/provisioning-templates/dry-listed');
    });

    it('lists the claims of a template: an unknown template is an error, a deleted one still shows its claims', async () => {
      const unknown = await server.api('GET', '/v1/provisioning-templates/no-such-template/claim-certificates');
      expect(unknown.status).toBe(404);
      expect(unknown.body.code).toBe('REGISTRY_TEMPLATE_NOT_FOUND');
      expect((await server.cli(['claim', 'list', '--template', 'no-such-template'])).stderr).toContain('error REGISTRY_TEMPLATE_NOT_FOUND');
      expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'short-lived', templateBody: template() })).status).toBe(201);
      const c = await newClaim('short-lived', 'sl-1');
      expect((await server.api('DELETE', '/v1/provisioning-templates/short-lived?claims=keep')).status).toBe(204);
      const left = await server.api('GET', '/v1/provisioning-templates/short-lived/claim-certificates');
      expect(left.status).toBe(200);
      expect(left.body.claims.map((x: { certificateId: string }) => x.certificateId)).toEqual([c.certificateId]);
    });

    it('retries RegisterThing with the same certificate and token: an answer that came too late registers one device, and the identity is kept', async () => {
      // the hook answers after the device gave up waiting (timeoutMs 1000): the server registers the device, the device
      // sees a timeout, and its retry finds the token used
      const slowHook: HttpServer = createServer((req, res) => {
        req.resume();
        req.on('end', () => setTimeout(() => res.setHeader('content-type', 'application/json').end(JSON.stringify({ allowProvisioning: true })), 2500));
      });
      await new Promise<void>((r) => slowHook.listen(0, '127.0.0.1', () => r()));
      try {
        const hookUrl = `http://127.0.0.1:${(slowHook.address() as { port: number }).port}/`;
        expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'slow-hook', templateBody: template(), preProvisioningHook: { type: 'webhook', url: hookUrl, timeoutMs: 10_000 } })).status).toBe(201);
        const slowClaim = await newClaim('slow-hook', 'slow');
        const out = path.join(tmp, 'slow-1');
        const retries: unknown[] = [];
        const lost = await provisionByClaim({ endpoint, claim: slowClaim, templateName: 'slow-hook', parameters: { SerialNumber: 'SLOW1' }, timeoutMs: 1000, attempts: 6, outDir: out, onRetry: (r) => retries.push(r.error) }).catch((e: Error & { code?: string; details?: { certificateId?: string } }) => e);
        expect(lost).toMatchObject({ code: 'DEVICE_REGISTRATION_UNCONFIRMED' });
        // a retry sent while the first request still waits on the hook times out too (a slow connect on a busy machine
        // may fail as well); none makes a new certificate, as the server's records below show
        const codes = retries.map((e) => (e as { code: string }).code);
        expect(codes).toContain('DEVICE_REQUEST_TIMEOUT');
        expect(codes.every((c) => c === 'DEVICE_REQUEST_TIMEOUT' || c === 'DEVICE_CONNECT_FAILED')).toBe(true);
        const certificateId = (lost as { details: { certificateId: string } }).details.certificateId;
        // one device on the server, with the certificate whose key the device kept
        const thing = await server.api('GET', '/v1/things/sensor-SLOW1');
        expect(thing.body.principals).toEqual([certificateId]);
        expect((await server.api('GET', `/v1/certificates/${certificateId}`)).body.status).toBe('ACTIVE');
        expect(statSync(path.join(out, 'private.key')).mode & 0o777).toBe(0o600);
        const saved = { certificatePem: readFileSync(path.join(out, 'certificate.pem'), 'utf8'), privateKeyPem: readFileSync(path.join(out, 'private.key'), 'utf8') };
        const c = await connectDevice(endpoint, saved, 'sensor-SLOW1');
        await c.publishAsync('things/sensor-SLOW1/telemetry', 'kept', { qos: 1 });
        await c.endAsync();
      } finally {
        await new Promise<void>((r) => slowHook.close(() => r()));
      }
    });

    it('refuses device-side options that could never work at once, and does not retry what cannot change', async () => {
      const base = { endpoint, claim, templateName: 'sensors', parameters: { SerialNumber: 'OPT1' } } as const;
      const invalid = async (options: Record<string, unknown>): Promise<unknown> => provisionByClaim({ ...base, ...options }).catch((e: unknown) => e);
      let retried = 0;
      const onRetry = (): void => void (retried += 1);
      expect(await invalid({ keyMode: 'CSR', onRetry })).toMatchObject({ code: 'DEVICE_OPTIONS_INVALID', message: 'keyMode must be "csr" (the key is made on the device) or "server" (CreateKeysAndCertificate), got "CSR"' });
      expect(await invalid({ format: 'JSON', onRetry })).toMatchObject({ code: 'DEVICE_OPTIONS_INVALID', message: 'format must be "json" or "cbor", got "JSON"' });
      expect(await invalid({ outDir: '', onRetry })).toMatchObject({ code: 'DEVICE_OPTIONS_INVALID', message: 'outDir must name a directory' });
      expect(await invalid({ endpoint: undefined, onRetry })).toMatchObject({ code: 'DEVICE_OPTIONS_INVALID' });
      expect(await invalid({ endpoint: { ...endpoint, caPem: '-----BEGIN CERTIFICATE-----\nzzz\n-----END CERTIFICATE-----\n' }, onRetry })).toMatchObject({ code: 'DEVICE_OPTIONS_INVALID' });
      expect(() => new FleetProvisioningClient({} as never, { format: 'xml' as never })).toThrow(expect.objectContaining({ code: 'DEVICE_OPTIONS_INVALID' }));
      // a claim whose key is not the certificate's is named as the claim, and nothing is reserved
      const otherKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const mismatchDir = path.join(tmp, 'mismatched-claim');
      expect(await invalid({ claim: { ...claim, privateKeyPem: otherKey }, outDir: mismatchDir, onRetry })).toMatchObject({ code: 'DEVICE_CREDENTIALS_INVALID', message: 'the claim: the private key does not match the certificate' });
      expect(await invalid({ claim: undefined, onRetry })).toMatchObject({ code: 'DEVICE_OPTIONS_INVALID' });
      expect(existsSync(mismatchDir)).toBe(false);
      // a server certificate that does not verify (another root, another name) is final
      const wrongName = await invalid({ endpoint: { ...endpoint, servername: 'not-this-server.example' }, onRetry });
      expect(wrongName).toMatchObject({ code: 'DEVICE_CONNECT_FAILED', details: { tlsCode: 'ERR_TLS_CERT_ALTNAME_INVALID' } });
      const wrongRoot = await invalid({ endpoint: { ...endpoint, caPem: claim.certificatePem }, onRetry });
      expect(wrongRoot).toMatchObject({ code: 'DEVICE_CONNECT_FAILED', details: { tlsCode: expect.stringMatching(/^(UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/) } });
      expect(retried).toBe(0);
      // a programming error inside the retried function is not retried either
      let calls = 0;
      await expect(withRetry(() => { calls += 1; return Promise.reject(new TypeError('bad input')); }, 3)).rejects.toThrow('bad input');
      expect(calls).toBe(1);
    });

    it('answers concurrent requests on one FleetProvisioningClient one by one, and lets one of two provisionings into a directory have it', async () => {
      const c = await connectDevice(endpoint, claim, 'factory-concurrent');
      const api = new FleetProvisioningClient(c);
      const [a, b] = await Promise.all([api.createKeysAndCertificate(), api.createKeysAndCertificate()]);
      expect(a.certificateId).not.toBe(b.certificateId);
      expect(a.certificateOwnershipToken).not.toBe(b.certificateOwnershipToken);
      await c.endAsync();
      const shared = path.join(tmp, 'shared-out');
      const results = await Promise.allSettled(['D1', 'D2'].map((serial) => provisionByClaim({ endpoint, claim, templateName: 'sensors', parameters: { SerialNumber: serial }, outDir: shared })));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(refused?.reason).toMatchObject({ code: 'DEVICE_CREDENTIALS_INVALID' });
      // the refused one was refused before anything was made on the server
      const made = await Promise.all(['D1', 'D2'].map(async (serial) => (await server.api('GET', `/v1/things/sensor-${serial}`)).status));
      expect(made.filter((status) => status === 200)).toHaveLength(1);
      // a client id cut to the 64 characters of a common name is not cut inside a character
      const emoji = await provisionByClaim({ endpoint, claim, templateName: 'sensors', parameters: { SerialNumber: 'EMOJI1' }, clientId: `${'a'.repeat(63)}😀x` });
      expect(new X509Certificate(emoji.certificatePem).subject).toBe(`CN=${'a'.repeat(63)}😀`);
    });

    it('keeps up to 5 template versions from the CLI: create-version, describe --version-id, delete-version; devices get the default version', async () => {
      expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'versioned', templateBody: template() })).status).toBe(201);
      const claimV = await newClaim('versioned', 'v');
      const body = (prefix: string): string => {
        const file = path.join(tmp, `versioned-${prefix}.json`);
        const t = template() as { Resources: { thing: { Properties: { ThingName: unknown } } } };
        t.Resources.thing.Properties.ThingName = { 'Fn::Join': ['', [prefix, { Ref: 'SerialNumber' }]] };
        writeFileSync(file, JSON.stringify(t));
        return file;
      };
      for (const v of [2, 3, 4]) expect((await server.api('POST', '/v1/provisioning-templates/versioned/versions', { templateBody: JSON.parse(readFileSync(body(`v${v}-`), 'utf8')) as unknown })).status).toBe(201);
      expect(JSON.parse((await server.cli(['--json', 'template', 'create-version', 'versioned', body('v5-'), '--set-as-default'])).stdout)).toEqual({ versionId: 5, isDefaultVersion: true });
      expect((await provisionByClaim({ endpoint, claim: claimV, templateName: 'versioned', parameters: { SerialNumber: 'A' } })).thingName).toBe('v5-A');
      const full = await server.cli(['template', 'create-version', 'versioned', body('v6-')]);
      expect(full.stderr).toBe('error REGISTRY_TEMPLATE_VERSION_LIMIT: template "versioned" already has 5 versions\n');
      expect((await server.cli(['template', 'delete-version', 'versioned', '5'])).stderr).toBe('error REGISTRY_TEMPLATE_VERSION_IS_DEFAULT: version 5 is the default of template "versioned"; make another version the default first\n');
      expect((await server.cli(['template', 'delete-version', 'versioned', '2'])).code).toBe(0);
      expect((await server.cli(['template', 'delete-version', 'versioned', '2'])).stderr).toBe('error REGISTRY_TEMPLATE_VERSION_NOT_FOUND: template "versioned" has no version 2\n');
      expect(JSON.parse((await server.cli(['--json', 'template', 'create-version', 'versioned', body('v6-')])).stdout)).toEqual({ versionId: 6, isDefaultVersion: false });
      const v3 = JSON.parse((await server.cli(['--json', 'template', 'describe', 'versioned', '--version-id', '3'])).stdout) as { versionId: number; isDefaultVersion: boolean; templateBody: string };
      expect(v3).toMatchObject({ versionId: 3, isDefaultVersion: false });
      expect(v3.templateBody).toContain('v3-');
      expect((await server.cli(['template', 'update', 'versioned', '--default-version', '3'])).code).toBe(0);
      expect((await provisionByClaim({ endpoint, claim: claimV, templateName: 'versioned', parameters: { SerialNumber: 'B' } })).thingName).toBe('v3-B');
      const versions = JSON.parse((await server.cli(['--json', 'template', 'versions', 'versioned'])).stdout) as { versionId: number; isDefaultVersion: boolean }[];
      expect(versions.map((v) => [v.versionId, v.isDefaultVersion])).toEqual([[1, false], [3, true], [4, false], [5, false], [6, false]]);
    });

    it('deletes a template with live claims only when told what becomes of them: kept claims provision under a new template of the name, revoked ones are refused and on the CRL', async () => {
      expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'retired', templateBody: template() })).status).toBe(201);
      const kept = await newClaim('retired', 'line-1');
      const alsoKept = await newClaim('retired', 'line-2');
      // without a choice the delete is refused, naming the claims, and nothing is deleted
      const refused = await server.cli(['template', 'delete', 'retired']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('error REGISTRY_TEMPLATE_IN_USE: template "retired" has 2 live claims');
      expect(refused.stderr).toContain(`(claimCertificateIds: ${kept.certificateId}, ${alsoKept.certificateId})`);
      expect((await server.api('GET', '/v1/provisioning-templates/retired')).status).toBe(200);
      expect((await server.cli(['template', 'delete', 'retired', '--keep-claims', '--revoke-claims'])).stderr).toContain('error CLI_USAGE_INVALID: --revoke-claims and --keep-claims exclude each other');
      expect((await server.api('DELETE', '/v1/provisioning-templates/retired?claims=drop')).status).toBe(400);
      // kept on purpose: the claims provision again under a template recreated with the name
      expect((await server.cli(['template', 'delete', 'retired', '--keep-claims'])).code).toBe(0);
      expect((await server.api('GET', '/v1/provisioning-templates/retired')).status).toBe(404);
      const gone = await provisionByClaim({ endpoint, claim: kept, templateName: 'retired', parameters: { SerialNumber: 'RT0' }, attempts: 1 }).catch((e: { code?: string; details?: unknown }) => e);
      expect(gone).toMatchObject({ code: 'DEVICE_REQUEST_REJECTED' });
      expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'retired', templateBody: template() })).status).toBe(201);
      expect((await provisionByClaim({ endpoint, claim: kept, templateName: 'retired', parameters: { SerialNumber: 'RT1' } })).thingName).toBe('sensor-RT1');
      // revoked with the template: in the same transaction, at once on the CRL (read before, so a cached CRL was stale)
      expect(await onCrl(kept.certificatePem)).toBe(false);
      const live = await connectDevice(endpoint, alsoKept, 'retired-line-2');
      const closed = new Promise<void>((r) => live.once('close', () => r()));
      const deleted = await server.cli(['template', 'delete', 'retired', '--revoke-claims']);
      expect(deleted).toMatchObject({ code: 0, stderr: '' });
      await closed; // the claim's live connection is closed
      live.end(true);
      expect(await onCrl(kept.certificatePem)).toBe(true);
      expect(await onCrl(alsoKept.certificatePem)).toBe(true);
      const claims = await server.api('GET', '/v1/provisioning-templates/retired/claim-certificates');
      expect(claims.body.claims.map((x: { revokedAt: string | null }) => x.revokedAt !== null)).toEqual([true, true]);
      expect((await server.api('GET', `/v1/certificates/${kept.certificateId}`)).body).toMatchObject({ status: 'REVOKED', revocationReason: 'cessationOfOperation' });
      const audit = await server.api('GET', '/v1/audit?maxResults=20');
      expect(audit.body.entries.find((e: { action: string; target: string; details: { claimsRevoked: string[] } }) => e.action === 'template.delete' && e.target === 'provisioningtemplate/retired' && e.details.claimsRevoked.length > 0)?.details).toEqual({ claimsRevoked: [kept.certificateId, alsoKept.certificateId], claimsKept: [] });
      // a template of the name again: the revoked claims stay refused
      expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'retired', templateBody: template() })).status).toBe(201);
      const revoked = await provisionByClaim({ endpoint, claim: alsoKept, templateName: 'retired', parameters: { SerialNumber: 'RT2' }, attempts: 1 }).catch((e: { code?: string; details?: unknown }) => e);
      expect(revoked).toMatchObject({ code: 'DEVICE_CONNECT_FAILED', details: { connackCode: 5 } });
      // no live claims left: a plain delete goes through
      expect((await server.cli(['template', 'delete', 'retired'])).code).toBe(0);
    });

    it('runs the pre-provisioning hook: allow list, HMAC-signed webhook with overrides, and a timeout', async () => {
      const allowFile = { type: 'allow-list', parameter: 'SerialNumber', values: ['OK-1'] };
      await server.api('POST', '/v1/provisioning-templates', { templateName: 'allowlisted', templateBody: template(), preProvisioningHook: allowFile });
      const cl = await newClaim('allowlisted', 'b');
      const ok = await provisionByClaim({ endpoint, claim: cl, templateName: 'allowlisted', parameters: { SerialNumber: 'OK-1' } });
      expect(ok.thingName).toBe('sensor-OK-1');
      const denied = await provisionByClaim({ endpoint, claim: cl, templateName: 'allowlisted', parameters: { SerialNumber: 'NOPE' } }).catch((e: { details?: unknown }) => e.details);
      expect(denied).toMatchObject({ statusCode: 403, errorCode: 'AccessDenied', errorMessage: '[PROVISIONING_HOOK_DENIED] the pre-provisioning hook refused this device: SerialNumber "NOPE" is not on the template\'s allow list' });

      const seen: { signature: string | undefined; timestamp: string | undefined; raw: string; body: Record<string, unknown> }[] = [];
      let delayMs = 0;
      const hookServer: HttpServer = createServer((req, res) => {
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => {
          seen.push({ signature: req.headers['gatehouse-signature'] as string | undefined, timestamp: req.headers['gatehouse-timestamp'] as string | undefined, raw: body, body: JSON.parse(body) as Record<string, unknown> });
          setTimeout(() => {
            res.setHeader('content-type', 'application/json');
            res.end(JSON.stringify({ allowProvisioning: true, parameterOverrides: { Location: 'overridden' } }));
          }, delayMs);
        });
      });
      await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', () => r()));
      const port = (hookServer.address() as { port: number }).port;
      try {
        const created = await server.api('POST', '/v1/provisioning-templates', { templateName: 'hooked', templateBody: template(), preProvisioningHook: { type: 'webhook', url: `http://127.0.0.1:${port}/hook`, timeoutMs: 500 } });
        expect(created.body.hookSecret).toMatch(/.{16,}/);
        const ch = await newClaim('hooked', 'h');
        const dev = await provisionByClaim({ endpoint, claim: ch, templateName: 'hooked', parameters: { SerialNumber: 'H1' } });
        expect((await server.api('GET', `/v1/things/${dev.thingName}`)).body.attributes).toEqual({ location: 'overridden' });
        expect(seen[0]?.signature).toMatch(/^sha256=[0-9a-f]{64}$/);
        // signed with the secret returned at creation, which is stored sealed under the KEK
        const secret = created.body.hookSecret as string;
        expect(seen[0]?.signature).toBe(`sha256=${createHmac('sha256', secret).update(`${seen[0]?.timestamp ?? ''}.${seen[0]?.raw ?? ''}`).digest('hex')}`);
        const storedHook = String((await selectRows(server, `select pre_provisioning_hook from provisioning_templates where template_name = 'hooked'`))[0]?.['pre_provisioning_hook']);
        expect(storedHook).not.toContain(secret);
        expect(JSON.parse(storedHook)).toMatchObject({ type: 'webhook', secret: expect.stringMatching(/^gh-sealed-v1:/) });
        expect(seen[0]?.body).toMatchObject({ claimCertificateId: ch.certificateId, parameters: { SerialNumber: 'H1' }, certificateId: dev.certificateId });
        // a new timeout for the same URL keeps the secret the running hook checks (it used to print a new one)
        const retimed = await server.api('PATCH', '/v1/provisioning-templates/hooked', { preProvisioningHook: { type: 'webhook', url: `http://127.0.0.1:${port}/hook`, timeoutMs: 600 } });
        expect(retimed.body.hookSecret).toBeUndefined();
        expect(retimed.body.preProvisioningHook).toMatchObject({ timeoutMs: 600, hasSecret: true });
        delayMs = 1500;
        const slow = await provisionByClaim({ endpoint, claim: ch, templateName: 'hooked', parameters: { SerialNumber: 'H2' }, attempts: 1 }).catch((e: { details?: unknown }) => e.details);
        expect(seen[1]?.signature).toBe(`sha256=${createHmac('sha256', secret).update(`${seen[1]?.timestamp ?? ''}.${seen[1]?.raw ?? ''}`).digest('hex')}`);
        expect(slow).toMatchObject({ statusCode: 403, errorCode: 'AccessDenied' });
        expect((slow as { errorMessage: string }).errorMessage).toContain('PROVISIONING_HOOK_FAILED');
        expect((await server.api('GET', '/v1/things/sensor-H2')).status).toBe(404);
      } finally {
        hookServer.close();
      }
    });

    it('applies RegisterThing as the template and the operator say: Defaults for the allow list, attachments without a certificate resource, no re-activation, no silent BillingGroup, no JITP hook', async () => {
      // the allow list on a parameter with a Default: dry-run and RegisterThing agree
      const byDefault = await server.api('POST', '/v1/provisioning-templates', { templateName: 'allow-default', templateBody: template(), preProvisioningHook: { type: 'allow-list', parameter: 'Location', values: ['lab'] } });
      expect(byDefault.status, JSON.stringify(byDefault.body)).toBe(201);
      const dry = await server.cli(['--json', 'template', 'dry-run', 'allow-default', '-p', 'SerialNumber=DEF1']);
      expect(JSON.parse(dry.stdout)).toMatchObject({ check: { ok: true } });
      const cd = await newClaim('allow-default', 'd');
      expect((await provisionByClaim({ endpoint, claim: cd, templateName: 'allow-default', parameters: { SerialNumber: 'DEF1' }, attempts: 1 })).thingName).toBe('sensor-DEF1');
      await expect(provisionByClaim({ endpoint, claim: cd, templateName: 'allow-default', parameters: { SerialNumber: 'DEF2', Location: 'roof' }, attempts: 1 })).rejects.toMatchObject({ details: { errorMessage: expect.stringContaining('PROVISIONING_HOOK_DENIED') } });

      // no certificate resource: the thing and the policy are still the certificate's, and it connects
      const { certificate: _certificate, ...noCertificate } = template().Resources as Record<string, unknown>;
      expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'no-cert', templateBody: template({ Resources: noCertificate }) })).status).toBe(201);
      const nc = await provisionByClaim({ endpoint, claim: await newClaim('no-cert', 'n'), templateName: 'no-cert', parameters: { SerialNumber: 'NC1' }, attempts: 1 });
      expect((await server.api('GET', `/v1/certificates/${nc.certificateId}`)).body).toMatchObject({ status: 'ACTIVE', things: ['sensor-NC1'], policies: ['fleet-device'] });
      const c = await connectDevice(endpoint, nc, nc.thingName);
      await c.publishAsync(`things/${nc.thingName}/telemetry`, 'x', { qos: 1 });
      await c.endAsync();

      // an operator deactivates the new certificate before RegisterThing: the device does not activate it again
      const cc = await connectDevice(endpoint, claim, 'deactivated-before-register');
      const api = new FleetProvisioningClient(cc);
      const keys = await api.createKeysAndCertificate();
      expect((await server.api('PATCH', `/v1/certificates/${keys.certificateId}`, { status: 'INACTIVE' })).status).toBeLessThan(300);
      const refused = await api.registerThing('sensors', { certificateOwnershipToken: keys.certificateOwnershipToken, parameters: { SerialNumber: 'DEACT1' } }).catch((e: { details?: unknown }) => e.details);
      expect(refused).toMatchObject({ statusCode: 409, errorMessage: expect.stringContaining('PROVISIONING_CERTIFICATE_NOT_PENDING') });
      expect((await server.api('GET', `/v1/certificates/${keys.certificateId}`)).body.status).toBe('INACTIVE');
      expect((await server.api('GET', '/v1/things/sensor-DEACT1')).status).toBe(404);
      // the token was not spent by the refusal, nor is a used token called "not valid for this connection"
      const k2 = await api.createKeysAndCertificate();
      await api.registerThing('sensors', { certificateOwnershipToken: k2.certificateOwnershipToken, parameters: { SerialNumber: 'DEACT2' } });
      const reused = await api.registerThing('sensors', { certificateOwnershipToken: k2.certificateOwnershipToken, parameters: { SerialNumber: 'DEACT2' } }).catch((e: { details?: unknown }) => e.details);
      expect(reused).toMatchObject({ errorCode: 'InvalidCertificateOwnershipToken', errorMessage: '[PROVISIONING_TOKEN_INVALID] the certificate ownership token was already used' });
      await cc.endAsync();

      // BillingGroup: Gatehouse has none, so it fails as AWS fails for a missing one (dry-run says so first)
      const billed = template();
      (billed.Resources as { thing: { Properties: Record<string, unknown> } }).thing.Properties['BillingGroup'] = 'finance';
      expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'billed', templateBody: billed })).status).toBe(201);
      const billedDry = await server.cli(['--json', 'template', 'dry-run', 'billed', '--parameter', 'SerialNumber=B1']);
      expect(JSON.parse(billedDry.stdout)).toMatchObject({ check: { ok: false, code: 'PROVISIONING_BILLING_GROUP_NOT_FOUND' } });
      await expect(provisionByClaim({ endpoint, claim: await newClaim('billed', 'b'), templateName: 'billed', parameters: { SerialNumber: 'B1' }, attempts: 1 })).rejects.toMatchObject({ details: { statusCode: 404, errorMessage: expect.stringContaining('PROVISIONING_BILLING_GROUP_NOT_FOUND') } });
      expect((await server.api('GET', '/v1/things/sensor-B1')).status).toBe(404);

      // a JITP template takes no pre-provisioning hook (JITP never ran it); nor a webhook slower than a device waits
      const jitpBody = { Parameters: { 'AWS::IoT::Certificate::CommonName': { Type: 'String' } }, Resources: { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'AWS::IoT::Certificate::CommonName' } } } } };
      const jitpHook = await server.api('POST', '/v1/provisioning-templates', { templateName: 'jitp-hooked', type: 'JITP', templateBody: jitpBody, preProvisioningHook: { type: 'allow-list', parameter: 'AWS::IoT::Certificate::CommonName', values: ['a'] } });
      expect(jitpHook.body.code).toBe('REGISTRY_TEMPLATE_HOOK_UNSUPPORTED');
      expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'jitp-plain', type: 'JITP', templateBody: jitpBody })).status).toBe(201);
      expect((await server.api('PATCH', '/v1/provisioning-templates/jitp-plain', { preProvisioningHook: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } })).body.code).toBe('REGISTRY_TEMPLATE_HOOK_UNSUPPORTED');
      const slowHook = await server.api('PATCH', '/v1/provisioning-templates/sensors', { preProvisioningHook: { type: 'webhook', url: 'http://127.0.0.1:9/hook', timeoutMs: 20_000 } });
      // the error names the field (it said "body.preProvisioningHook must be null", the first branch of the anyOf)
      expect(slowHook.body).toMatchObject({ status: 400, detail: 'body.preProvisioningHook.timeoutMs must be <= 10000' });

      // a policy document written out in full is checked when the template is made (it failed every device before)
      const badPolicy = template();
      (badPolicy.Resources as Record<string, unknown>)['policy'] = { Type: 'AWS::IoT::Policy', Properties: { PolicyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Maybe', Action: 'iot:Connect', Resource: '*' }] } } };
      for (const [method, url] of [['POST', '/v1/provisioning-templates'], ['POST', '/v1/provisioning-templates/validate']] as const) {
        const r = await server.api(method, url, url.endsWith('/validate') ? { templateBody: badPolicy } : { templateName: 'bad-policy', templateBody: badPolicy });
        expect(r.status, url).toBe(400);
        expect(r.body).toMatchObject({ code: 'TEMPLATE_POLICY_DOCUMENT_INVALID', details: { path: '$.Resources.policy.Properties.PolicyDocument' } });
      }
      // one built with functions is checked when it is evaluated, as before
      (badPolicy.Resources as Record<string, { Properties: { PolicyDocument: { Statement: { Resource: unknown }[] } } }>)['policy']!.Properties.PolicyDocument.Statement[0]!.Resource = { 'Fn::Join': ['', ['arn:aws:iot:*:*:client/', { Ref: 'SerialNumber' }]] };
      expect((await server.api('POST', '/v1/provisioning-templates/validate', { templateBody: badPolicy })).status).toBe(200);
    });

    it('registers devices that name the same new thing at once: every one gets it (no InternalFailure)', async () => {
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => provisionByClaim({ endpoint, claim, templateName: 'sensors', parameters: { SerialNumber: 'SAME1' }, clientId: `same-${i}`, attempts: 1 })));
      const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String((r.reason as Error).message));
      expect(failures).toEqual([]);
      expect((await server.api('GET', '/v1/things/sensor-SAME1')).body.principals).toHaveLength(8);
    });

    it('never lets a device publish an answer of the fleet API: a forged certificate on /accepted reaches no one, whatever the policy', async () => {
      const victim = await connectDevice(endpoint, claim, 'forge-victim');
      const got: string[] = [];
      victim.on('message', (topic: string) => got.push(topic));
      const answers = ['$aws/certificates/create/json/accepted', '$aws/certificates/create-from-csr/json/accepted', '$aws/provisioning-templates/sensors/provision/json/accepted', '$aws/certificates/create/cbor/rejected'];
      await victim.subscribeAsync(answers, { qos: 1 });
      const forged = JSON.stringify({ certificateId: 'f'.repeat(64), certificatePem: 'attacker', privateKey: 'attacker-key', certificateOwnershipToken: 'attacker-token' });
      // a claim of another batch (its policy), and a device whose policy allows iot:* on every topic (the gateway)
      const other = await newClaim('sensors', 'forger-batch');
      const all = await server.api('POST', '/v1/certificates/keys-and-certificate', { setAsActive: true });
      expect((await server.api('POST', '/v1/policies/fleet-watcher/attach', { target: all.body.certificateId })).status).toBe(204);
      for (const [creds, clientId] of [[other, 'forger-claim'], [{ certificatePem: all.body.certificatePem as string, privateKeyPem: all.body.keyPair.PrivateKey as string }, 'forger-admin']] as const) {
        for (const topic of answers) {
          const forger = await connectDevice(endpoint, creds, clientId);
          const closed = new Promise<void>((r) => forger.once('close', () => r()));
          forger.on('error', () => undefined);
          forger.publish(topic, forged, { qos: 1 });
          await closed;
          forger.end(true);
        }
      }
      const before = got.length;
      // the victim's own request is still answered, to it alone
      const api = new FleetProvisioningClient(victim);
      const mine = await api.createKeysAndCertificate();
      expect(mine.certificateId).toMatch(/^[0-9a-f]{64}$/);
      expect(before).toBe(0);
      expect(got).toEqual(['$aws/certificates/create/json/accepted']);
      await victim.endAsync();
      const metrics = await (await fetch(`${server.apiUrl}/metrics`)).text();
      expect(metrics).toMatch(/gatehouse_mqtt_enforcement_disconnects_total\{reason="publish_reserved_topic"\} ([4-9]|\d\d)/);
    });

    it('keeps a claim certificate to the provisioning topics of its template, and a revoked claim cannot provision', async () => {
      const c = await connectDevice(endpoint, claim, 'claim-misuse');
      const closed = new Promise<void>((r) => c.once('close', () => r()));
      const refusedSub = await c.subscribeAsync('things/#', { qos: 1 }).then(() => undefined, (e: Error) => e);
      expect(refusedSub?.message).toContain('Subscribe error');
      c.publish('things/sensor-A100/telemetry', 'spoof', { qos: 1 });
      await closed;
      c.end(true);
      // another template's topics are not the claim's
      const c2 = await connectDevice(endpoint, claim, 'claim-misuse-2');
      const closed2 = new Promise<void>((r) => c2.once('close', () => r()));
      c2.publish('$aws/provisioning-templates/hooked/provision/json', '{}', { qos: 1 });
      await closed2;
      c2.end(true);
      // the SDK names the refusal (MQTT.js 5 reports a SUBACK 0x80 as "Subscribe error: Unspecified error")
      const started = Date.now();
      const other = await provisionByClaim({ endpoint, claim, templateName: 'hooked', parameters: { SerialNumber: 'W1' } }).catch((e: Error & { code?: string }) => e);
      expect(other).toMatchObject({ code: 'DEVICE_REQUEST_REJECTED' });
      expect((other as Error).message).toContain('refused the subscription to $aws/provisioning-templates/hooked/provision/json/accepted');
      expect(Date.now() - started).toBeLessThan(2_000); // not retried with backoff

      const victim = await newClaim('sensors', 'to-revoke');
      expect(await onCrl(victim.certificatePem)).toBe(false); // the CA's CRL is cached now
      expect((await server.cli(['claim', 'revoke', victim.certificateId])).code).toBe(0);
      expect(await onCrl(victim.certificatePem)).toBe(true);
      // the endpoint answers a revoked claim with a CONNACK refusal: final, so not retried
      let retries = 0;
      const refused = await provisionByClaim({ endpoint, claim: victim, templateName: 'sensors', parameters: { SerialNumber: 'R1' }, attempts: 3, onRetry: () => (retries += 1) }).catch((e: Error & { code?: string }) => e);
      expect(refused).toMatchObject({ code: 'DEVICE_CONNECT_FAILED', details: { connackCode: 5 } });
      expect(retries).toBe(0);
      // an empty client id (also the CSR's common name) is refused before connecting
      await expect(provisionByClaim({ endpoint, claim, templateName: 'sensors', clientId: '' })).rejects.toMatchObject({ code: 'DEVICE_OPTIONS_INVALID' });
      // so is an endpoint no connection can work with (each was a connection failure, retried with backoff)
      for (const [bad, message] of [
        [{ ...endpoint, port: 70_000 }, `endpoint 127.0.0.1:70000: the port must be a whole number from 1 to 65535`],
        [{ ...endpoint, port: 0 }, `endpoint 127.0.0.1:0: the port must be a whole number from 1 to 65535`],
        [{ ...endpoint, caPem: '' }, `endpoint 127.0.0.1:${endpoint.port}: caPem must be the PEM of the root CA the device trusts for the server`],
      ] as const) {
        let tries = 0;
        await expect(provisionByClaim({ endpoint: bad, claim, templateName: 'sensors', parameters: { SerialNumber: 'E1' }, onRetry: () => (tries += 1) })).rejects.toMatchObject({ code: 'DEVICE_OPTIONS_INVALID', message });
        expect(tries).toBe(0);
      }
      await expect(provisionByClaim({ endpoint, claim, templateName: 'sensors', attempts: 0 })).rejects.toMatchObject({ code: 'DEVICE_OPTIONS_INVALID', message: 'attempts must be a whole number of at least 1, got 0' });
      await expect(provisionByClaim({ endpoint, claim, templateName: 'sensors', timeoutMs: -5 })).rejects.toMatchObject({ code: 'DEVICE_OPTIONS_INVALID', message: 'timeoutMs must be a whole number of milliseconds above 0, got -5' });
      await expect(withRetry(() => Promise.resolve(1), 1.5)).rejects.toMatchObject({ code: 'DEVICE_OPTIONS_INVALID' });
      await expect(provisionByClaim({ endpoint, claim, templateName: 'sensors/+' })).rejects.toMatchObject({ code: 'DEVICE_OPTIONS_INVALID', message: 'template name "sensors/+" is not 1 to 36 characters of 0-9 A-Z a-z _ -' });
      const claimDir = path.join(tmp, 'options-claim');
      mkdirSync(claimDir);
      writeFileSync(path.join(claimDir, 'claim.pem'), claim.certificatePem);
      writeFileSync(path.join(claimDir, 'claim.key'), claim.privateKeyPem, { mode: 0o600 });
      writeFileSync(path.join(claimDir, 'root-ca.pem'), endpoint.caPem);
      const cliArgs = ['device', 'provision', '--claim-cert', path.join(claimDir, 'claim.pem'), '--claim-key', path.join(claimDir, 'claim.key'), '--template', 'sensors', '-p', 'SerialNumber=E2', '--out', path.join(tmp, 'options-e2')];
      expect((await server.cli([...cliArgs, '--endpoint', 'localhost'])).stderr).toBe('error DEVICE_OPTIONS_INVALID: endpoint must be host:port, got "localhost"\n');
      expect((await server.cli([...cliArgs, '--endpoint', 'localhost:99999'])).stderr).toBe('error DEVICE_OPTIONS_INVALID: endpoint localhost:99999: the port must be a whole number from 1 to 65535\n');
    });

    it("runs AWS's own device SDK (aws-iot-device-sdk-v2 IotIdentityClient) unchanged against Gatehouse", async () => {
      const write = (name: string, text: string): string => {
        const f = path.join(tmp, name);
        writeFileSync(f, text);
        return f;
      };
      const connectAws = async (certPem: string, keyPem: string, clientId: string): Promise<awsMqtt.MqttClientConnection> => {
        const config = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path(write(`${clientId}.pem`, certPem), write(`${clientId}.key`, keyPem))
          .with_certificate_authority_from_path(undefined, path.join(server.dataDir, 'root-ca.pem'))
          .with_endpoint('localhost')
          .with_port(server.ports.mqtt)
          .with_client_id(clientId)
          .with_clean_session(true)
          .with_ping_timeout_ms(3_000)
          .build();
        const connection = new awsMqtt.MqttClient().new_connection(config);
        await connection.connect();
        return connection;
      };
      const once = <T>(subscribe: (handler: (error?: unknown, response?: T) => void) => Promise<unknown>): { ready: Promise<unknown>; value: Promise<T> } => {
        let resolve: (v: T) => void = () => undefined;
        let reject: (e: unknown) => void = () => undefined;
        const value = new Promise<T>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        const ready = subscribe((error, response) => (error !== undefined || response === undefined ? reject(error) : resolve(response)));
        return { ready, value };
      };
      const runFlow = async (mode: 'keys' | 'csr', serial: string): Promise<{ certPem: string; keyPem: string; thingName: string }> => {
        const connection = await connectAws(claim.certificatePem, claim.privateKeyPem, `aws-sdk-claim-${mode}`);
        const identity = new iotidentity.IotIdentityClient(connection);
        const Q = awsMqtt.QoS.AtLeastOnce;
        try {
          let certPem: string;
          let keyPem: string;
          let token: string;
          if (mode === 'keys') {
            const acc = once<iotidentity.model.CreateKeysAndCertificateResponse>((h) => identity.subscribeToCreateKeysAndCertificateAccepted({}, Q, h));
            const rej = once<iotidentity.model.ErrorResponse>((h) => identity.subscribeToCreateKeysAndCertificateRejected({}, Q, h));
            await Promise.all([acc.ready, rej.ready]);
            await identity.publishCreateKeysAndCertificate({}, Q);
            const r = await Promise.race([acc.value, rej.value.then((e) => Promise.reject(new Error(JSON.stringify(e))))]);
            certPem = r.certificatePem ?? '';
            keyPem = r.privateKey ?? '';
            token = r.certificateOwnershipToken ?? '';
          } else {
            const keys = generateKeyPair('EC_P256');
            const acc = once<iotidentity.model.CreateCertificateFromCsrResponse>((h) => identity.subscribeToCreateCertificateFromCsrAccepted({}, Q, h));
            await acc.ready;
            await identity.publishCreateCertificateFromCsr({ certificateSigningRequest: createCsr({ privateKeyPem: keys.privateKeyPem, subject: { CN: ['aws-sdk-device'] } }) }, Q);
            const r = await acc.value;
            certPem = r.certificatePem ?? '';
            keyPem = keys.privateKeyPem;
            token = r.certificateOwnershipToken ?? '';
          }
          const reg = once<iotidentity.model.RegisterThingResponse>((h) => identity.subscribeToRegisterThingAccepted({ templateName: 'sensors' }, Q, h));
          const regRej = once<iotidentity.model.ErrorResponse>((h) => identity.subscribeToRegisterThingRejected({ templateName: 'sensors' }, Q, h));
          await Promise.all([reg.ready, regRej.ready]);
          await identity.publishRegisterThing({ templateName: 'sensors', certificateOwnershipToken: token, parameters: { SerialNumber: serial } }, Q);
          const done = await Promise.race([reg.value, regRej.value.then((e) => Promise.reject(new Error(JSON.stringify(e))))]);
          expect(done.deviceConfiguration).toMatchObject({ FallbackUrl: 'https://example.invalid/fallback' });
          return { certPem, keyPem, thingName: done.thingName ?? '' };
        } finally {
          await connection.disconnect().catch(() => undefined);
        }
      };
      for (const [mode, serial] of [['keys', 'AWS1'], ['csr', 'AWS2']] as const) {
        const dev = await runFlow(mode, serial);
        expect(dev.thingName).toBe(`sensor-${serial}`);
        // then the AWS client connects with the new identity and publishes what the template's policy allows
        const c = await connectAws(dev.certPem, dev.keyPem, dev.thingName);
        await c.publish(`things/${dev.thingName}/telemetry`, 'from the AWS SDK', awsMqtt.QoS.AtLeastOnce);
        await c.disconnect();
      }
    }, 60_000);

    it('publishes thing lifecycle events to webhooks, HMAC-signed, without leaking the secret', async () => {
      const got: { body: { eventType: string; topic: string; event: Record<string, unknown> }; signature: string }[] = [];
      const hook = createServer((req, res) => {
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => {
          got.push({ body: JSON.parse(body) as never, signature: String(req.headers['gatehouse-signature']) });
          res.end('ok');
        });
      });
      await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
      try {
        // URLs a delivery could never use are refused at once: no host, a space, credentials in the URL
        for (const url of ['http://', 'http://exa mple.com/', 'http://u:p@127.0.0.1/x', 'http://[::1']) {
          expect((await server.api('POST', '/v1/webhooks', { url, secret: 'thing-events-secret-123' })).body, url).toMatchObject({ code: 'API_VALIDATION_FAILED', detail: 'body.url must be an absolute http(s) URL with a host, without user:password@ or spaces' });
        }
        const wh = await server.api('POST', '/v1/webhooks', { url: `http://127.0.0.1:${(hook.address() as { port: number }).port}/`, events: ['thing.created', 'thing.deleted'], secret: 'thing-events-secret-123' });
        expect(wh.status).toBe(201);
        await server.api('POST', '/v1/things', { thingName: 'evented', attributes: { a: 'b' } });
        await server.api('DELETE', '/v1/things/evented');
        const deadline = Date.now() + 10_000;
        while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(got.map((g) => g.body.eventType).sort()).toEqual(['thing.created', 'thing.deleted']);
        const created = got.find((g) => g.body.eventType === 'thing.created');
        expect(created?.body).toMatchObject({ topic: '$aws/events/thing/evented/created', event: { eventType: 'THING_EVENT', operation: 'CREATED', thingName: 'evented', attributes: { a: 'b' } } });
        expect(created?.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
        const list = await server.api('GET', '/v1/webhooks');
        expect(JSON.stringify(list.body)).not.toContain('thing-events-secret-123');
        // stored sealed under the KEK, not in clear (a copy of the database cannot forge the signatures)
        const stored = await selectRows(server, `select secret from webhooks where webhook_id = '${wh.body.webhookId as string}'`);
        expect(String(stored[0]?.['secret'])).toMatch(/^gh-sealed-v1:/);
        expect(String(stored[0]?.['secret'])).not.toContain('thing-events-secret-123');
        await server.api('DELETE', `/v1/webhooks/${wh.body.webhookId as string}`);
      } finally {
        hook.close();
      }
    });

    it('manages webhooks from the CLI: a generated secret printed once signs the deliveries', async () => {
      const got: { raw: string; signature: string }[] = [];
      const hook = createServer((req, res) => {
        let raw = '';
        req.on('data', (d: Buffer) => (raw += d.toString()));
        req.on('end', () => {
          got.push({ raw, signature: String(req.headers['gatehouse-signature']) });
          res.end('ok');
        });
      });
      await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
      try {
        const url = `http://127.0.0.1:${(hook.address() as { port: number }).port}/events`;
        const created = await server.cli(['--json', 'webhook', 'create', url, '--event', 'thing.created']);
        expect(created.stderr).toBe('');
        const wh = JSON.parse(created.stdout) as { webhookId: string; events: string[]; secret: string };
        expect(wh.events).toEqual(['thing.created']);
        expect(wh.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect((await server.cli(['webhook', 'list'])).stdout).not.toContain(wh.secret);
        await server.api('POST', '/v1/things', { thingName: 'hooked-by-cli' });
        await expect.poll(() => got.length, { timeout: 10_000 }).toBe(1);
        const [t, v1] = (got[0]?.signature ?? '').split(',').map((p) => p.split('=')[1]);
        expect(v1).toBe(createHmac('sha256', wh.secret).update(`${t ?? ''}.${got[0]?.raw ?? ''}`).digest('hex'));
        expect(JSON.parse(got[0]?.raw ?? '{}')).toMatchObject({ eventType: 'thing.created', event: { thingName: 'hooked-by-cli' } });
        expect((await server.cli(['webhook', 'dead-letters', wh.webhookId])).stdout).toBe('(none)\n');
        const unknown = await server.cli(['webhook', 'create', url, '--event', 'thing.renamed']);
        expect(unknown.stderr).toMatch(/^error API_VALIDATION_FAILED: body\.events\.0 must be one of "presence\.connected", .*"auto-registration\.refused"\n$/);
        const secretFile = path.join(tmp, 'webhook-secret');
        writeFileSync(secretFile, 'a-secret-from-a-file-0123\n', { mode: 0o600 });
        const fromFile = JSON.parse((await server.cli(['--json', 'webhook', 'create', url, '--secret-file', secretFile])).stdout) as { webhookId: string; secret?: string };
        expect(fromFile.secret).toBeUndefined();
        for (const id of [wh.webhookId, fromFile.webhookId]) expect((await server.cli(['webhook', 'delete', id])).code).toBe(0);
        expect((await server.cli(['--json', 'webhook', 'list'])).stdout).not.toContain(url);
      } finally {
        hook.close();
      }
    });

    it('drives claims and devices from the CLI: claim create, device provision, device connect', async () => {
      const out = path.join(tmp, 'cli-claim');
      const created = await server.cli(['--json', 'claim', 'create', '--template', 'sensors', '--batch', 'cli-batch', '--max-devices', '5', '--rate-per-minute', '60', '--out', out]);
      expect(created.code).toBe(0);
      const claims = JSON.parse((await server.cli(['--json', 'claim', 'list', '--template', 'sensors'])).stdout) as { batch: string | null }[];
      expect(claims.find((c) => c.batch === 'cli-batch')).toMatchObject({ maxDevices: 5, ratePerMinute: 60 });
      expect(statSync(path.join(out, 'claim.key')).mode & 0o777).toBe(0o600);
      const devDir = path.join(tmp, 'cli-dev');
      const prov = await server.cli(['--json', 'device', 'provision', '--endpoint', `127.0.0.1:${server.ports.mqtt}`, '--servername', 'localhost', '--claim-cert', path.join(out, 'claim.pem'), '--claim-key', path.join(out, 'claim.key'), '--template', 'sensors', '-p', 'SerialNumber=CLI1', '--out', devDir]);
      expect(prov.stderr).toBe('');
      expect(JSON.parse(prov.stdout)).toMatchObject({ thingName: 'sensor-CLI1' });
      // an IP endpoint without --servername sends no SNI (none may be an IP address: RFC 6066), so Node warns of nothing
      const byIp = await server.cli(['--json', 'device', 'provision', '--endpoint', `127.0.0.1:${server.ports.mqtt}`, '--claim-cert', path.join(out, 'claim.pem'), '--claim-key', path.join(out, 'claim.key'), '--template', 'sensors', '-p', 'SerialNumber=CLI4', '--out', path.join(tmp, 'cli-dev-4')]);
      expect(byIp.stderr).toBe('');
      expect(JSON.parse(byIp.stdout)).toMatchObject({ thingName: 'sensor-CLI4' });
      // a throttled device is told that it retries, and when
      const slowOut = path.join(tmp, 'cli-slow-claim');
      expect((await server.cli(['claim', 'create', '--template', 'sensors', '--batch', 'cli-slow', '--rate-per-minute', '1', '--out', slowOut])).code).toBe(0);
      const provisionSlow = (serial: string, dir: string): Promise<{ code: number; stderr: string }> =>
        server.cli(['device', 'provision', '--endpoint', `127.0.0.1:${server.ports.mqtt}`, '--servername', 'localhost', '--claim-cert', path.join(slowOut, 'claim.pem'), '--claim-key', path.join(slowOut, 'claim.key'), '--template', 'sensors', '-p', `SerialNumber=${serial}`, '--attempts', '2', '--out', path.join(tmp, dir)]);
      expect((await provisionSlow('SLOW1', 'cli-slow-1')).code).toBe(0);
      const throttled = await provisionSlow('SLOW2', 'cli-slow-2');
      expect(throttled.code).toBe(1);
      // one per minute: the service asks for up to 60 s, more than the default --max-retry-wait of 30: no retry
      expect(throttled.stderr).toMatch(/^error DEVICE_REQUEST_REJECTED: Throttling: \[PROVISIONING_RATE_LIMITED\] this claim allows 1 devices per minute; retry in \d+ s \(statusCode: 429\)\n$/);
      expect((await server.cli(['device', 'provision', '--endpoint', '127.0.0.1:1', '--claim-cert', path.join(slowOut, 'claim.pem'), '--claim-key', path.join(slowOut, 'claim.key'), '--template', 'sensors', '--max-retry-wait', '-1', '--out', path.join(tmp, 'cli-slow-4')])).stderr).toBe('error CLI_USAGE_INVALID: --max-retry-wait must be a whole number from 0, got "-1"\n');
      expect((await server.cli(['device', 'provision', '--endpoint', '127.0.0.1:1', '--claim-cert', path.join(slowOut, 'claim.pem'), '--claim-key', path.join(slowOut, 'claim.key'), '--template', 'sensors', '--attempts', '0', '--out', path.join(tmp, 'cli-slow-3')])).stderr).toBe('error CLI_USAGE_INVALID: --attempts must be a whole number from 1, got "0"\n');
      // an existing identity is never overwritten: refused before anything is provisioned
      const certificatesBefore = (await server.api('GET', '/v1/certificates?maxResults=250')).body.certificates.length as number;
      const overwrite = await server.cli(['device', 'provision', '--endpoint', `127.0.0.1:${server.ports.mqtt}`, '--servername', 'localhost', '--claim-cert', path.join(out, 'claim.pem'), '--claim-key', path.join(out, 'claim.key'), '--template', 'sensors', '-p', 'SerialNumber=CLI9', '--out', devDir]);
      expect(overwrite.stderr).toBe(`error DEVICE_CREDENTIALS_INVALID: ${devDir} already holds certificate.pem, private.key; an existing identity is never overwritten (choose another directory)\n`);
      expect((await server.api('GET', '/v1/certificates?maxResults=250')).body.certificates.length).toBe(certificatesBefore);
      expect((await server.api('GET', '/v1/things/sensor-CLI9')).status).toBe(404);
      const claimAgain = await server.cli(['claim', 'create', '--template', 'sensors', '--batch', 'cli-batch-2', '--out', out]);
      expect(claimAgain.stderr).toBe(`error CLI_OUTPUT_EXISTS: ${out} already holds claim.pem, claim.key; choose another --out directory (key material is never overwritten)\n`);
      expect(((JSON.parse((await server.cli(['--json', 'claim', 'list', '--template', 'sensors'])).stdout) as { batch: string | null }[]).some((x) => x.batch === 'cli-batch-2'))).toBe(false);
      // limits are whole numbers or "none", never a silent NaN (JSON null: no limit)
      const cliClaim = (JSON.parse(created.stdout) as { certificateId: string }).certificateId;
      expect((await server.cli(['claim', 'update', cliClaim])).stderr).toBe('error CLI_USAGE_INVALID: nothing to change: give --max-devices and/or --rate-per-minute\n');
      const typo = await server.cli(['claim', 'update', cliClaim, '--rate-per-minute', 'abc']);
      expect(typo.stderr).toBe('error CLI_USAGE_INVALID: --rate-per-minute must be a whole number from 1 or "none", got "abc"\n');
      expect((await server.cli(['claim', 'create', '--template', 'sensors', '--batch', 'cli-batch-3', '--max-devices', '-3'])).stderr).toBe('error CLI_USAGE_INVALID: --max-devices must be a whole number from 1, got "-3"\n');
      const limits = JSON.parse((await server.cli(['--json', 'claim', 'list', '--template', 'sensors'])).stdout) as { certificateId: string; maxDevices: number | null; ratePerMinute: number | null }[];
      expect(limits.find((x) => x.certificateId === cliClaim)).toMatchObject({ maxDevices: 5, ratePerMinute: 60 });
      const conn = await server.cli(['--json', 'device', 'connect', '--creds', devDir, '--servername', 'localhost', '--publish', 'things/sensor-CLI1/hello']);
      expect(conn.stderr).toBe('');
      expect(JSON.parse(conn.stdout)).toMatchObject({ connected: true, clientId: 'sensor-CLI1' });
      const denied = await server.cli(['device', 'connect', '--creds', devDir, '--servername', 'localhost', '--publish', 'not/allowed']);
      expect(denied.code).toBe(1);
      expect(denied.stderr).toContain('error DEVICE_PUBLISH_REFUSED: the endpoint closed the connection instead of acknowledging the publish to not/allowed');
      const dry = await server.cli(['--json', 'template', 'dry-run', 'sensors', '-p', 'SerialNumber=X9']);
      expect(JSON.parse(dry.stdout)).toMatchObject({ thing: { thingName: 'sensor-X9' } });
      // a template error names its JSON path; a file that is not there is named too
      const badTemplate = path.join(tmp, 'bad-template.json');
      writeFileSync(badTemplate, JSON.stringify({ Resources: { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'Missing' } } } } }));
      const goodTemplate = path.join(tmp, 'good-template.json');
      writeFileSync(goodTemplate, JSON.stringify(template()));
      expect(JSON.parse((await server.cli(['--json', 'template', 'validate', goodTemplate])).stdout)).toEqual({ valid: true, type: 'FLEET_PROVISIONING', parameters: ['SerialNumber', 'Location'] });
      const invalid = await server.cli(['template', 'validate', badTemplate]);
      expect(invalid.code).not.toBe(0);
      expect(invalid.stderr).toBe('error TEMPLATE_REF_UNKNOWN: Ref must name a parameter, a pseudo parameter or a resource at $.Resources.thing.Properties.ThingName.Ref (name: Missing)\n');
      const noFile = await server.cli(['template', 'create', 'listed', badTemplate, '--allow-parameter', 'SerialNumber']);
      expect(noFile.stderr).toBe('error CLI_USAGE_INVALID: --allow-parameter needs --allow-file (one value per line)\n');
      const noValue = await server.cli(['template', 'dry-run', 'sensors', '-p', 'SerialNumber']);
      expect(noValue.stderr).toBe('error CLI_USAGE_INVALID: expected key=value, got "SerialNumber"\n');
      const absent = await server.cli(['template', 'create', 'absent', path.join(tmp, 'absent.json')]);
      expect(absent.stderr).toBe(`error CLI_FILE_UNREADABLE: cannot read the template body ${path.join(tmp, 'absent.json')}: no such file\n`);
      // A claim used with another template than its own: the policy refuses the answer topics; the device is told so
      // with a stable code, at once (a refusal is not retried).
      const wrong = await server.cli(['device', 'provision', '--endpoint', `127.0.0.1:${server.ports.mqtt}`, '--servername', 'localhost', '--claim-cert', path.join(out, 'claim.pem'), '--claim-key', path.join(out, 'claim.key'), '--template', 'hooked', '-p', 'SerialNumber=CLI2', '--out', path.join(tmp, 'cli-dev-2')]);
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).toContain('DEVICE_REQUEST_REJECTED');
      expect(wrong.stderr).toContain('refused the subscription to $aws/provisioning-templates/hooked/provision/json/accepted');
      expect(existsSync(path.join(tmp, 'cli-dev-2', 'private.key'))).toBe(false);
      // credentials that cannot work are named before any connection
      const provision = (cert: string, key: string): Promise<{ code: number; stderr: string }> =>
        server.cli(['device', 'provision', '--endpoint', `127.0.0.1:${server.ports.mqtt}`, '--servername', 'localhost', '--claim-cert', cert, '--claim-key', key, '--template', 'sensors', '-p', 'SerialNumber=CLI3', '--out', path.join(tmp, 'cli-dev-3')]);
      const missing = await provision(path.join(out, 'nope.pem'), path.join(out, 'claim.key'));
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toContain(`DEVICE_CREDENTIALS_INVALID: cannot read the certificate ${path.join(out, 'nope.pem')}: no such file`);
      writeFileSync(path.join(tmp, 'other.key'), generateKeyPair('EC_P256').privateKeyPem);
      const mismatch = await provision(path.join(out, 'claim.pem'), path.join(tmp, 'other.key'));
      expect(mismatch.stderr).toContain('DEVICE_CREDENTIALS_INVALID');
      expect(mismatch.stderr).toContain('the private key does not match the certificate');
      // the SDK says the same to a caller that passes such credentials itself
      const sdk = await connectDevice(endpoint, { certificatePem: readFileSync(path.join(out, 'claim.pem'), 'utf8'), privateKeyPem: readFileSync(path.join(tmp, 'other.key'), 'utf8') }, 'mismatched').catch((e: Error & { code?: string }) => e);
      expect(sdk).toMatchObject({ code: 'DEVICE_CREDENTIALS_INVALID', message: 'device credentials: the private key does not match the certificate' });
      const noDir = await server.cli(['device', 'connect', '--creds', path.join(tmp, 'no-such-dir')]);
      expect(noDir.code).not.toBe(0);
      expect(noDir.stderr).toContain('DEVICE_CREDENTIALS_INVALID');
    }, 120_000); // one CLI process per step, about a second each
  });
}

// The installation's template limit (GATEHOUSE_TEMPLATE_MAX_LENGTH): one dialect is enough, the check is the parser's.
for (const dialect of DIALECTS.slice(0, 1)) {
  describe(`a configured template size limit (${dialect.name})`, () => {
    /** A fleet template padded with a Mappings section to about `chars` characters. */
    function padded(chars: number): Record<string, unknown> {
      const entries = Object.fromEntries(Array.from({ length: Math.ceil(chars / 110) }, (_, i) => [`k${i}`, { v: 'x'.repeat(96) }]));
      return { ...template(), Mappings: { pad: entries } };
    }

    it('accepts bodies up to the configured length in create, new version and validate; a template stored under a higher limit still runs after it is lowered', async () => {
      const server = await startServer({ dialect, env: { GATEHOUSE_TEMPLATE_MAX_LENGTH: '20000' } });
      let restarted: Awaited<ReturnType<typeof startServer>> | undefined;
      try {
        const big = padded(15_000);
        expect(JSON.stringify(big).length).toBeGreaterThan(10_240);
        expect((await server.api('POST', '/v1/policies', { policyName: 'fleet-device', policyDocument: DEVICE_POLICY })).status).toBe(201);
        expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'big', templateBody: big })).status).toBe(201);
        expect((await server.api('POST', '/v1/provisioning-templates/big/versions', { templateBody: big, setAsDefault: true })).status).toBe(201);
        expect((await server.api('POST', '/v1/provisioning-templates/validate', { templateBody: JSON.stringify(big) })).body).toMatchObject({ valid: true });
        const tooBig = await server.api('POST', '/v1/provisioning-templates', { templateName: 'too-big', templateBody: padded(25_000) });
        expect(tooBig.status).toBe(413);
        expect(tooBig.body).toMatchObject({ code: 'TEMPLATE_TOO_LARGE', detail: expect.stringContaining('longer than 20000 characters') });
        const claim = await server.api('POST', '/v1/provisioning-templates/big/claim-certificates', { batch: 'b' });
        expect(claim.status).toBe(201);
        await server.stop();
        // back to the default limit: the stored template is not checked again when a device runs it
        restarted = await startServer({ dialect, dataDir: server.dataDir, databaseUrl: server.databaseUrl, keepDatabase: true });
        const endpoint = { host: '127.0.0.1', port: restarted.ports.mqtt, caPem: readFileSync(path.join(restarted.dataDir, 'root-ca.pem'), 'utf8'), servername: 'localhost' };
        const dev = await provisionByClaim({ endpoint, claim: { certificatePem: claim.body.certificatePem, privateKeyPem: claim.body.keyPair.PrivateKey }, templateName: 'big', parameters: { SerialNumber: 'BIG1' } });
        expect(dev.thingName).toBe('sensor-BIG1');
        expect((await restarted.cli(['template', 'dry-run', 'big', '-p', 'SerialNumber=BIG2'])).code).toBe(0);
        const refused = await restarted.api('POST', '/v1/provisioning-templates/big/versions', { templateBody: big });
        expect(refused.body).toMatchObject({ code: 'TEMPLATE_TOO_LARGE', detail: expect.stringContaining('longer than 10240 characters') });
      } finally {
        await restarted?.stop();
        await server.destroy();
      }
    });
  });
}

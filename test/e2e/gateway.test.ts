// Device gateway end to end (issue 4): a real server process per dialect, real MQTT clients over real mutual TLS.
import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate, createHash, generateKeyPairSync, webcrypto } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { iot, mqtt as awsMqtt } from 'aws-iot-device-sdk-v2';
import mqtt from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../support/dialects.ts';
import { startServer, waitFor } from '../support/server-process.ts';
import { makeCertificate } from '../support/x509-fixtures.ts';

const execFileAsync = promisify(execFile);
type Server = Awaited<ReturnType<typeof startServer>>;

interface Device {
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly keyPem: string;
  /** Leaf followed by its issuing chain, as the API returned it. */
  readonly chainPem?: string;
}

type Outcome = { readonly client: MqttClient; readonly error?: undefined } | { readonly client?: undefined; readonly error: Error & { code?: number | string } };

const ARN = 'arn:aws:iot:*:*';

/** A device policy: own client id, own subtree, the shared `a/` tree with the Receive trap, presence events. */
const DEVICE_POLICY = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/\${iot:ClientId}` },
    { Effect: 'Allow', Action: ['iot:Publish', 'iot:Receive'], Resource: [`${ARN}:topic/dev/\${iot:ClientId}/*`, `${ARN}:topic/a/*`] },
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: [`${ARN}:topicfilter/dev/\${iot:ClientId}/*`, `${ARN}:topicfilter/dev/\${iot:ClientId}`, `${ARN}:topicfilter/a/#`] },
    { Effect: 'Deny', Action: 'iot:Receive', Resource: `${ARN}:topic/a/restricted/*` },
    { Effect: 'Allow', Action: 'iot:RetainPublish', Resource: `${ARN}:topic/dev/\${iot:ClientId}/retained` },
    {
      Effect: 'Allow',
      Action: 'iot:Subscribe',
      Resource: [
        `${ARN}:topicfilter/things/\${iot:Connection.Thing.ThingName}/*`,
        `${ARN}:topicfilter/rooms/\${iot:Connection.Thing.Attributes[room]}/*`,
        `${ARN}:topicfilter/cn/\${iot:Certificate.Subject.CommonName}/*`,
      ],
    },
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${ARN}:topicfilter/$aws/events/presence/*` },
    { Effect: 'Allow', Action: 'iot:Receive', Resource: `${ARN}:topic/$aws/events/presence/*` },
  ],
};

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
}

function newKeyPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function csrOf(keyPem: string, cn: string, dir: string): string {
  const keyFile = path.join(dir, `csr-${Math.random().toString(36).slice(2)}.key`);
  writeFileSync(keyFile, keyPem);
  return openssl(['req', '-new', '-key', keyFile, '-subj', `/CN=${cn}`, '-out', '-'], dir);
}

function connectDevice(server: Server, dev: Device, clientId: string, extra: Partial<IClientOptions> = {}): Promise<Outcome> {
  const ca = readFileSync(path.join(server.dataDir, 'root-ca.pem'), 'utf8');
  return new Promise((resolve) => {
    const client = mqtt.connect(`mqtts://127.0.0.1:${server.ports.mqtt}`, {
      key: dev.keyPem,
      cert: dev.certificatePem,
      ca,
      clientId,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      rejectUnauthorized: true,
      ...extra,
    });
    let settled = false;
    const timer = setTimeout(() => finish({ error: Object.assign(new Error('connect timed out'), { code: 'TIMEOUT' }) }), 6_000);
    function finish(o: Outcome): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (o.error !== undefined) client.end(true);
      resolve(o);
    }
    client.once('connect', () => finish({ client }));
    client.on('error', (error: Error & { code?: number | string }) => finish({ error }));
    client.once('close', () => finish({ error: Object.assign(new Error('closed before CONNACK'), { code: 'CLOSED' }) }));
  });
}

async function connected(server: Server, dev: Device, clientId: string, extra: Partial<IClientOptions> = {}): Promise<MqttClient> {
  const o = await connectDevice(server, dev, clientId, extra);
  if (o.error !== undefined) throw new Error(`connect failed: ${o.error.message} (${String(o.error.code)})\n${server.output().slice(-3000)}`);
  o.client.on('error', () => undefined);
  return o.client;
}

function collect(client: MqttClient): { topic: string; payload: string }[] {
  const got: { topic: string; payload: string }[] = [];
  client.on('message', (topic, payload) => got.push({ topic, payload: payload.toString() }));
  return got;
}

function closedWithin(client: MqttClient, ms: number): Promise<number> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    if (!client.connected) {
      resolve(0);
      return;
    }
    const t = setTimeout(() => reject(new Error(`client still connected after ${ms} ms`)), ms);
    client.once('close', () => {
      clearTimeout(t);
      resolve(Date.now() - start);
    });
  });
}

/** The SUBACK return code of one subscription (0x80 = refused). */
async function granted(client: MqttClient, filter: string): Promise<number> {
  try {
    const r = await client.subscribeAsync(filter, { qos: 1 });
    return r[0]?.qos ?? -1;
  } catch (error) {
    const packet = (error as { packet?: { granted?: number[] } }).packet;
    if (packet?.granted?.[0] !== undefined) return packet.granted[0];
    throw error;
  }
}

/** The fields of an API answer the tests read. */
interface CertificateAnswer {
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly certificateChainPem: string;
  readonly caCertificateId: string;
}

/** Reads an API answer body as {@link CertificateAnswer}. */
function answer(r: { body: unknown }): CertificateAnswer {
  return r.body as CertificateAnswer;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function refusalCount(server: Server, reason: string): Promise<number> {
  const text = await (await fetch(`${server.apiUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`gatehouse_mqtt_connect_refusals_total{reason="${reason}"}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

for (const dialect of DIALECTS) {
  describe(`device gateway end to end (${dialect.name})`, () => {
    let server: Server;
    let work: string;
    let seq = 0;

    async function issue(options: { thing?: string; policy?: string | null; tenant?: string } = {}): Promise<Device> {
      const keyPem = newKeyPem();
      const tenant = options.tenant === undefined ? {} : { tenant: options.tenant };
      const r = await server.api('POST', '/v1/certificates/from-csr', { certificateSigningRequest: csrOf(keyPem, `device-${++seq}`, work), setAsActive: true }, tenant);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      const body = answer(r);
      const dev = { certificateId: body.certificateId, certificatePem: body.certificatePem, keyPem, chainPem: body.certificateChainPem };
      if (options.thing !== undefined) {
        expect((await server.api('POST', '/v1/things', { thingName: options.thing }, tenant)).status).toBe(201);
        expect((await server.api('POST', `/v1/things/${options.thing}/principals`, { certificateId: dev.certificateId }, tenant)).status).toBeLessThan(300);
      }
      const policy = options.policy === undefined ? 'device' : options.policy;
      if (policy !== null) {
        const a = await server.api('POST', `/v1/policies/${policy}/attach`, { target: dev.certificateId }, tenant);
        expect(a.status, JSON.stringify(a.body)).toBeLessThan(300);
      }
      return dev;
    }

    beforeAll(async () => {
      work = mkdtempSync(path.join(tmpdir(), 'gh-gw-'));
      server = await startServer({ dialect });
      const p = await server.api('POST', '/v1/policies', { policyName: 'device', policyDocument: JSON.stringify(DEVICE_POLICY) });
      expect(p.status, JSON.stringify(p.body)).toBe(201);
    });
    afterAll(async () => {
      await server?.destroy();
      rmSync(work, { recursive: true, force: true });
    });

    it('connects with a Gatehouse-issued certificate and does QoS 0/1 pub/sub allowed by policy', async () => {
      const dev = await issue({ thing: 'thing-pubsub' });
      const c = await connected(server, dev, 'pubsub-1');
      const got = collect(c);
      await c.subscribeAsync('dev/pubsub-1/#', { qos: 1 });
      await c.publishAsync('dev/pubsub-1/t', 'q1', { qos: 1 });
      await c.publishAsync('dev/pubsub-1/t', 'q0', { qos: 0 });
      await waitFor(() => (got.length >= 2 ? true : undefined), 3_000, 'own messages');
      expect(got.map((m) => m.payload).sort()).toEqual(['q0', 'q1']);
      await c.endAsync();
    });

    it('refuses a subscription the policy does not allow (SUBACK 0x80) and disconnects on a denied publish', async () => {
      const dev = await issue();
      const c = await connected(server, dev, 'denied-1');
      expect(await granted(c, 'dev/other-device/#')).toBe(128);
      expect(c.connected).toBe(true);
      const closing = closedWithin(c, 3_000);
      c.publish('dev/other-device/x', 'nope', { qos: 1 });
      await closing;
      c.end(true);
    });

    it('checks iot:Receive on every delivery: a subscriber of a/# never receives a/restricted/x', async () => {
      const sub = await connected(server, await issue(), 'trap-sub');
      const pub = await connected(server, await issue(), 'trap-pub');
      const got = collect(sub);
      await sub.subscribeAsync('a/#', { qos: 1 });
      await pub.publishAsync('a/restricted/x', 'secret', { qos: 1 });
      await pub.publishAsync('a/open/x', 'public', { qos: 1 });
      await waitFor(() => (got.some((m) => m.topic === 'a/open/x') ? true : undefined), 3_000, 'a/open/x');
      await sleep(200);
      expect(got.map((m) => m.topic)).toEqual(['a/open/x']);
      await Promise.all([sub.endAsync(), pub.endAsync()]);
    });

    it('refuses a client id with "#" or "+" (a ${iot:ClientId} filter or a presence topic would widen) with CONNACK 2', async () => {
      const dev = await issue();
      for (const id of ['#', '+', 'a/#', 'x+y']) expect((await connectDevice(server, dev, id)).error?.code, id).toBe(2);
      const normal = await connected(server, dev, 'plain-id');
      expect(await granted(normal, 'dev/plain-id')).toBe(1);
      await normal.endAsync();
    });

    it('resolves thing, attribute and certificate policy variables; an unresolved variable grants nothing', async () => {
      expect((await server.api('POST', '/v1/things', { thingName: 'vars-thing', attributes: { room: 'kitchen' } })).status).toBe(201);
      const dev = await issue();
      expect((await server.api('POST', '/v1/things/vars-thing/principals', { certificateId: dev.certificateId })).status).toBeLessThan(300);
      const cn = new X509Certificate(dev.certificatePem).subject.split('\n').find((l) => l.startsWith('CN='))?.slice(3) ?? '';
      expect(cn).not.toBe('');
      const c = await connected(server, dev, 'vars-1');
      expect(await granted(c, 'things/vars-thing/state')).toBe(1);
      expect(await granted(c, 'things/other-thing/state')).toBe(128);
      expect(await granted(c, 'rooms/kitchen/temp')).toBe(1);
      expect(await granted(c, 'rooms/garage/temp')).toBe(128);
      expect(await granted(c, `cn/${cn}/x`)).toBe(1);
      await c.endAsync();
      // No thing attached: ${iot:Connection.Thing.ThingName} does not resolve, the statement does not apply.
      const lone = await connected(server, await issue(), 'vars-2');
      expect(await granted(lone, 'things//state')).toBe(128);
      expect(await granted(lone, 'things/vars-thing/state')).toBe(128);
      await lone.endAsync();
    });

    it('deletes a thing that has certificates only with detachPrincipals (as AWS refuses it); its live connection then loses the thing\'s grants', async () => {
      expect((await server.api('POST', '/v1/things', { thingName: 'doomed-thing', attributes: { room: 'attic' } })).status).toBe(201);
      const dev = await issue();
      expect((await server.api('POST', '/v1/things/doomed-thing/principals', { certificateId: dev.certificateId })).status).toBeLessThan(300);
      const c = await connected(server, dev, 'doomed-1');
      expect(await granted(c, 'things/doomed-thing/state')).toBe(1);
      const refused = await server.api('DELETE', '/v1/things/doomed-thing');
      expect(refused.status).toBe(409);
      expect(refused.body).toMatchObject({ code: 'REGISTRY_THING_HAS_PRINCIPALS', details: { certificateIds: [dev.certificateId] } });
      expect((await server.api('GET', '/v1/things/doomed-thing')).body.principals).toEqual([dev.certificateId]);
      expect(await granted(c, 'things/doomed-thing/state')).toBe(1);
      expect((await server.api('DELETE', '/v1/things/doomed-thing?detachPrincipals=true')).status).toBe(204);
      expect((await server.api('GET', '/v1/things/doomed-thing')).status).toBe(404);
      expect((await server.api('GET', `/v1/certificates/${dev.certificateId}`)).body.status).toBe('ACTIVE');
      await expect.poll(() => granted(c, 'things/doomed-thing/state'), { timeout: 5000, interval: 100 }).toBe(128);
      await c.endAsync();
      const audit = await server.api('GET', '/v1/audit?maxResults=50');
      expect(audit.body.entries.find((e: { action: string; target: string }) => e.action === 'thing.delete' && e.target === 'thing/doomed-thing')?.details).toEqual({ detachedPrincipals: [dev.certificateId] });
    });

    it('closes a live connection that loses iot:Connect: its thing deleted (thing-name policy), its policy detached or edited', async () => {
      const thingPolicy = {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/\${iot:Connection.Thing.ThingName}` },
          { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${ARN}:topicfilter/own/*` },
        ],
      };
      expect((await server.api('POST', '/v1/policies', { policyName: 'thing-connect', policyDocument: JSON.stringify(thingPolicy) })).status).toBe(201);
      const disconnects = async (): Promise<number> => {
        const line = (await (await fetch(`${server.apiUrl}/metrics`)).text()).split('\n').find((l) => l.startsWith('gatehouse_mqtt_enforcement_disconnects_total{reason="connect_no_longer_allowed"}'));
        return line === undefined ? 0 : Number(line.split(' ').pop());
      };
      const before = await disconnects();

      // 1. The thing named by the iot:Connect resource is deleted.
      const dev = await issue({ thing: 'connect-thing', policy: 'thing-connect' });
      const c = await connected(server, dev, 'connect-thing');
      expect(await granted(c, 'own/x')).toBe(1);
      const closing = closedWithin(c, 5_000);
      expect((await server.api('DELETE', '/v1/things/connect-thing?detachPrincipals=true')).status).toBe(204);
      await closing;
      c.end(true);
      expect((await connectDevice(server, dev, 'connect-thing')).error?.code).toBe(5);

      // 2. The policy that granted iot:Connect is detached from one certificate; the other certificate's connection stays.
      const two = await issue({ thing: 'connect-thing-2', policy: 'thing-connect' });
      const kept = await issue({ thing: 'connect-thing-3', policy: 'thing-connect' });
      const c2 = await connected(server, two, 'connect-thing-2');
      const c3 = await connected(server, kept, 'connect-thing-3');
      const closing2 = closedWithin(c2, 5_000);
      expect((await server.api('POST', '/v1/policies/thing-connect/detach', { target: two.certificateId })).status).toBeLessThan(300);
      await closing2;
      c2.end(true);

      expect(c3.connected).toBe(true);
      // 3. A new default version that no longer allows iot:Connect closes the rest.
      expect(await granted(c3, 'own/y')).toBe(1);
      const closing3 = closedWithin(c3, 5_000);
      const narrowed = { ...thingPolicy, Statement: [thingPolicy.Statement[1]] };
      const v = await server.api('POST', '/v1/policies/thing-connect/versions', { policyDocument: JSON.stringify(narrowed), setAsDefault: true });
      expect(v.status, JSON.stringify(v.body)).toBe(201);
      await closing3;
      c3.end(true);
      expect(await disconnects()).toBe(before + 3);
    });

    it('checks a will at CONNECT like a publish, drops it when the gateway shuts a certificate out, and keeps a persistent session to its certificate', async () => {
      const dev = await issue();
      const will = (topic: string, retain = false): Partial<IClientOptions> => ({ will: { topic, payload: Buffer.from('gone'), qos: 1, retain } });
      const willRefusals = await refusalCount(server, 'will_denied');
      for (const [topic, retain] of [['dev/other-device/x', false], ['dev/will-1/#', false], ['$aws/events/presence/connected/will-1', false], ['$aws/certificates/create/json/accepted', false], ['$aws/certificates/create/json', false], ['dev/will-1/x', true]] as const) {
        expect((await connectDevice(server, dev, 'will-1', will(topic, retain))).error?.code, topic).toBe(5);
      }
      expect(await refusalCount(server, 'will_denied')).toBe(willRefusals + 6);

      // an allowed will goes out when the connection drops, but not when the gateway closes it for a revoked certificate
      const watcher = await connected(server, await issue(), 'will-watch');
      const got = collect(watcher);
      await watcher.subscribeAsync('a/#', { qos: 1 });
      const dropped = await connected(server, dev, 'will-2', will('a/will/dropped'));
      (dropped.stream as unknown as { destroy(): void }).destroy();
      await waitFor(() => (got.some((m) => m.topic === 'a/will/dropped') ? true : undefined), 3_000, 'the will of a lost connection');
      const revoked = await issue();
      const shut = await connected(server, revoked, 'will-3', will('a/will/revoked'));
      const closing = closedWithin(shut, 3_000);
      expect((await server.api('POST', `/v1/certificates/${revoked.certificateId}/revoke`, { reason: 'keyCompromise' })).status).toBe(200);
      await closing;
      shut.end(true);
      await sleep(500);
      expect(got.map((m) => m.topic)).toEqual(['a/will/dropped']);
      await watcher.endAsync();

      // a persistent session is its certificate's: another certificate with the client id starts afresh
      const owner = await issue();
      const s1 = await connected(server, owner, 'sess-1', { clean: false });
      await s1.subscribeAsync('dev/sess-1/inbox', { qos: 1 });
      await s1.endAsync();
      const again = await connected(server, owner, 'sess-1', { clean: false });
      expect((again as unknown as { connackPacket?: { sessionPresent?: boolean } }).connackPacket?.sessionPresent).toBe(true);
      await again.endAsync();
      const other = await issue();
      const taker = await connectDevice(server, other, 'sess-1', { clean: false });
      expect(taker.error).toBeUndefined();
      expect((taker.client as unknown as { connackPacket?: { sessionPresent?: boolean } }).connackPacket?.sessionPresent ?? false).toBe(false);
      await taker.client?.endAsync();
      // ... and the owner, back, finds its session gone with the takeover (clean) rather than shared
      const back = await connected(server, owner, 'sess-1', { clean: false });
      expect((back as unknown as { connackPacket?: { sessionPresent?: boolean } }).connackPacket?.sessionPresent ?? false).toBe(false);
      await back.endAsync();

      // an empty client id with clean session 0: CONNACK 2 (MQTT-3.1.3-8), from a hand-written CONNECT
      const raw = tls.connect({ host: '127.0.0.1', port: server.ports.mqtt, key: dev.keyPem, cert: dev.certificatePem, ca: readFileSync(path.join(server.dataDir, 'root-ca.pem'), 'utf8'), servername: 'localhost' });
      await new Promise<void>((resolve, reject) => raw.once('secureConnect', resolve).once('error', reject));
      raw.write(Buffer.from([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x00, 0, 60, 0, 0]));
      const connack = await new Promise<Buffer>((resolve) => raw.once('data', (d: Buffer) => resolve(d)));
      expect([...connack.subarray(0, 4)]).toEqual([0x20, 2, 0, 2]);
      raw.destroy();
    });

    it('closes a live connection when its certificate expires', async () => {
      const shortLived = await makeCertificate({ subject: 'CN=short-lived', ca: false, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 4_000) });
      const keyPem = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(await webcrypto.subtle.exportKey('pkcs8', shortLived.privateKey)).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
      const reg = await server.api('POST', '/v1/certificates/register-without-ca', { certificatePem: shortLived.pem, status: 'ACTIVE' });
      expect(reg.status, JSON.stringify(reg.body)).toBe(201);
      expect((await server.api('POST', '/v1/policies/device/attach', { target: answer(reg).certificateId })).status).toBeLessThan(300);
      const c = await connected(server, { certificateId: answer(reg).certificateId, certificatePem: shortLived.pem, keyPem }, 'short-lived');
      const closedAfter = await closedWithin(c, 8_000);
      expect(closedAfter).toBeGreaterThan(1_000);
      c.end(true);
      expect((await connectDevice(server, { certificateId: '', certificatePem: shortLived.pem, keyPem }, 'short-lived')).error).toBeDefined();
    }, 30_000);

    it('refuses iot:Connect for a certificate without policy, and inactive, revoked, unknown, self-signed or missing certificates', async () => {
      const before = await refusalCount(server, 'connect_denied');
      const noPolicy = await issue({ policy: null });
      expect((await connectDevice(server, noPolicy, 'no-policy')).error?.code).toBe(5);
      expect(await refusalCount(server, 'connect_denied')).toBe(before + 1);

      const inactive = await issue();
      expect((await server.api('PATCH', `/v1/certificates/${inactive.certificateId}`, { status: 'INACTIVE' })).status).toBeLessThan(300);
      expect((await connectDevice(server, inactive, 'inactive-1')).error?.code).toBe(5);

      const revoked = await issue();
      expect((await server.api('POST', `/v1/certificates/${revoked.certificateId}/revoke`, { reason: 'keyCompromise' })).status).toBeLessThan(300);
      expect((await connectDevice(server, revoked, 'revoked-1')).error?.code).toBe(5);

      // Self-signed, never registered: refused at TLS (the handshake completes, the gateway closes the socket).
      const keyFile = path.join(work, 'selfsigned.key');
      writeFileSync(keyFile, newKeyPem());
      const selfSigned = { certificateId: '', keyPem: readFileSync(keyFile, 'utf8'), certificatePem: openssl(['req', '-x509', '-key', keyFile, '-subj', '/CN=stranger', '-days', '2', '-out', '-'], work) };
      const unverified = await refusalCount(server, 'tls_unverified');
      expect((await connectDevice(server, selfSigned, 'stranger')).error).toBeDefined();
      expect(await refusalCount(server, 'tls_unverified')).toBe(unverified + 1);

      // No client certificate at all.
      const ca = readFileSync(path.join(server.dataDir, 'root-ca.pem'), 'utf8');
      const bare = await new Promise<boolean>((resolve) => {
        const c = mqtt.connect(`mqtts://127.0.0.1:${server.ports.mqtt}`, { ca, clientId: 'bare', protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5_000 });
        c.once('connect', () => resolve(true));
        c.once('close', () => resolve(false));
        c.on('error', () => undefined);
        setTimeout(() => resolve(true), 6_000);
      });
      expect(bare).toBe(false);
      expect(await refusalCount(server, 'no_certificate')).toBeGreaterThanOrEqual(1);
    });

    it('accepts a certificate registered without a CA, matched by fingerprint', async () => {
      const keyFile = path.join(work, 'mar.key');
      writeFileSync(keyFile, newKeyPem());
      const certificatePem = openssl(['req', '-x509', '-key', keyFile, '-subj', '/CN=mar-device', '-days', '2', '-addext', 'basicConstraints=critical,CA:FALSE', '-out', '-'], work);
      const dev = { certificateId: '', keyPem: readFileSync(keyFile, 'utf8'), certificatePem };
      expect((await connectDevice(server, dev, 'mar-1')).error).toBeDefined();
      const r = await server.api('POST', '/v1/certificates/register-without-ca', { certificatePem, status: 'ACTIVE' });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      const certificateId = answer(r).certificateId;
      expect((await server.api('POST', '/v1/policies/device/attach', { target: certificateId })).status).toBeLessThan(300);
      const c = await connected(server, { ...dev, certificateId }, 'mar-1');
      await c.endAsync();
    });

    it('disconnects a live client within a second of revocation', async () => {
      const dev = await issue();
      const c = await connected(server, dev, 'to-revoke');
      const closing = closedWithin(c, 1_500);
      expect((await server.api('POST', `/v1/certificates/${dev.certificateId}/revoke`, { reason: 'keyCompromise' })).status).toBeLessThan(300);
      expect(await closing).toBeLessThan(1_500);
      c.end(true);
    });

    it('applies a policy change to live connections', async () => {
      await server.api('POST', '/v1/policies', { policyName: 'extra', policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['iot:Subscribe'], Resource: [`${ARN}:topicfilter/extra/*`] }] }) });
      const dev = await issue();
      const c = await connected(server, dev, 'live-policy');
      expect(await granted(c, 'extra/x')).toBe(128);
      expect((await server.api('POST', '/v1/policies/extra/attach', { target: dev.certificateId })).status).toBeLessThan(300);
      await sleep(300);
      expect(await granted(c, 'extra/x')).toBe(1);
      await c.endAsync();
    });

    it('reads the certificate of a live connection when a new policy needs its fields (a Deny on ${iot:Certificate.Subject.CommonName})', async () => {
      // The first policy reads no certificate field, so the connection's certificate is not parsed at connect; the
      // policy attached later does, and its Deny must apply to the live connection.
      await server.api('POST', '/v1/policies', { policyName: 'no-cert-vars', policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['iot:Connect', 'iot:Subscribe'], Resource: '*' }] }) });
      await server.api('POST', '/v1/policies', { policyName: 'deny-own-cn', policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'iot:Subscribe', Resource: `${ARN}:topicfilter/cn/\${iot:Certificate.Subject.CommonName}/*` }] }) });
      const dev = await issue({ policy: 'no-cert-vars' });
      const cn = new X509Certificate(dev.certificatePem).subject.split('\n').find((l) => l.startsWith('CN='))?.slice(3) ?? '';
      expect(cn).not.toBe('');
      const c = await connected(server, dev, 'cert-vars-later');
      expect(await granted(c, `cn/${cn}/x`)).toBe(1);
      expect((await server.api('POST', '/v1/policies/deny-own-cn/attach', { target: dev.certificateId })).status).toBeLessThan(300);
      await sleep(300);
      expect(await granted(c, `cn/${cn}/y`)).toBe(128);
      expect(await granted(c, 'cn/someone-else/y')).toBe(1);
      await c.endAsync();
      // A new connection of the same certificate sees both policies from its first packet.
      const again = await connected(server, dev, 'cert-vars-again');
      expect(await granted(again, `cn/${cn}/z`)).toBe(128);
      await again.endAsync();
    });

    it('disconnects the first connection when a second one uses the same client id', async () => {
      const dev = await issue();
      const first = await connected(server, dev, 'same-id');
      const closing = closedWithin(first, 3_000);
      const second = await connected(server, dev, 'same-id');
      await closing;
      expect(second.connected).toBe(true);
      first.end(true);
      await second.endAsync();
    });

    it('publishes presence events to subscribers allowed by policy', async () => {
      const observer = await connected(server, await issue(), 'observer');
      const got = collect(observer);
      await observer.subscribeAsync('$aws/events/presence/+/+', { qos: 0 });
      const dev = await issue();
      const c = await connected(server, dev, 'presence-dev');
      await c.endAsync();
      await waitFor(() => (got.filter((m) => m.topic.endsWith('/presence-dev')).length >= 2 ? true : undefined), 3_000, 'presence events');
      const events = got.filter((m) => m.topic.endsWith('/presence-dev')).map((m) => ({ topic: m.topic, body: JSON.parse(m.payload) as Record<string, unknown> }));
      expect(events[0]?.topic).toBe('$aws/events/presence/connected/presence-dev');
      expect(events[0]?.body).toMatchObject({ clientId: 'presence-dev', eventType: 'connected', principalIdentifier: dev.certificateId });
      expect(events[1]?.topic).toBe('$aws/events/presence/disconnected/presence-dev');
      expect(events[1]?.body).toMatchObject({ eventType: 'disconnected', disconnectReason: 'CLIENT_INITIATED_DISCONNECT' });
      expect(typeof events[1]?.body['timestamp']).toBe('number');
      await observer.endAsync();
    });

    it('trusts a CA registered while running, without a restart; refuses its unregistered certificates; SNI_ONLY needs SNI', async () => {
      openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'byo-ca.key', '-out', 'byo-ca.pem', '-subj', '/CN=BYO Test CA', '-days', '30',
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], work);
      writeFileSync(path.join(work, 'leaf.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
      const leaf = (name: string): Device => {
        const keyPem = newKeyPem();
        writeFileSync(path.join(work, `${name}.key`), keyPem);
        openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`], work);
        openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'byo-ca.pem', '-CAkey', 'byo-ca.key', '-CAcreateserial', '-days', '5', '-extfile', 'leaf.ext', '-out', `${name}.pem`], work);
        return { certificateId: '', keyPem, certificatePem: readFileSync(path.join(work, `${name}.pem`), 'utf8') };
      };
      const registered = leaf('byo-dev-1');
      const unregistered = leaf('byo-dev-2');
      // Not trusted yet: refused at TLS.
      expect((await connectDevice(server, registered, 'byo-1')).error).toBeDefined();

      const ca = await server.api('POST', '/v1/cas/register', { caCertificatePem: readFileSync(path.join(work, 'byo-ca.pem'), 'utf8'), certificateMode: 'SNI_ONLY', setAsActive: true });
      expect(ca.status, JSON.stringify(ca.body)).toBe(201);
      const reg = await server.api('POST', '/v1/certificates/register', { certificatePem: registered.certificatePem, setAsActive: true });
      expect(reg.status, JSON.stringify(reg.body)).toBe(201);
      expect((await server.api('POST', '/v1/policies/device/attach', { target: answer(reg).certificateId })).status).toBeLessThan(300);

      // The trust store reloads at once (retry briefly: the rebuild runs right after the API answered). The CA is
      // SNI_ONLY: the device must name the endpoint (the default tenant's is default.localhost).
      const sni = { servername: 'default.localhost' };
      let c: MqttClient | undefined;
      for (let i = 0; i < 20 && c === undefined; i++) {
        const o = await connectDevice(server, registered, 'byo-1', sni);
        if (o.client !== undefined) c = o.client;
        else await sleep(100);
      }
      expect(c?.connected).toBe(true);
      const sniRefusals = await refusalCount(server, 'sni_required');
      expect((await connectDevice(server, registered, 'byo-1b')).error?.code).toBe(5);
      expect((await connectDevice(server, registered, 'byo-1b', { servername: 'not-an-endpoint.localhost', rejectUnauthorized: false })).error?.code).toBe(5);
      expect(await refusalCount(server, 'sni_required')).toBe(sniRefusals + 2);

      const before = await refusalCount(server, 'unknown_certificate');
      expect((await connectDevice(server, unregistered, 'byo-2', sni)).error?.code).toBe(4);
      expect(await refusalCount(server, 'unknown_certificate')).toBe(before + 1);
      // With auto-registration (JITR), a first connection without SNI registers nothing.
      expect((await server.api('PATCH', `/v1/cas/${answer(ca).caCertificateId}`, { autoRegistrationStatus: 'ENABLE' })).status).toBeLessThan(300);
      await sleep(200);
      const unregisteredId = createHash('sha256').update(new X509Certificate(unregistered.certificatePem).raw).digest('hex');
      expect((await connectDevice(server, unregistered, 'byo-2')).error?.code).toBe(4);
      await waitFor(() => (server.output().includes('PROVISIONING_SNI_REQUIRED') ? true : undefined), 3_000, 'the JITR refusal in the log');
      expect((await server.api('GET', `/v1/certificates/${unregisteredId}`)).status).toBe(404);
      // With SNI it is registered PENDING_ACTIVATION (this first connection is refused, as AWS's JITR does).
      expect((await connectDevice(server, unregistered, 'byo-2', sni)).error?.code).toBe(4);
      expect((await server.api('GET', `/v1/certificates/${unregisteredId}`)).body.status).toBe('PENDING_ACTIVATION');

      // Deactivating the CA closes its live connections and refuses its certificates again.
      const live = c;
      if (live === undefined) throw new Error('unreachable');
      const closing = closedWithin(live, 1_500);
      expect((await server.api('PATCH', `/v1/cas/${answer(ca).caCertificateId}`, { status: 'INACTIVE' })).status).toBeLessThan(300);
      await closing;
      live.end(true);
      await sleep(200);
      expect((await connectDevice(server, registered, 'byo-1', sni)).error).toBeDefined();
    });

    it('selects the tenant by SNI and keeps tenants apart', async () => {
      expect((await server.api('POST', '/v1/tenants', { name: 'acme' })).status).toBe(201);
      const p = await server.api('POST', '/v1/policies', { policyName: 'device', policyDocument: JSON.stringify(DEVICE_POLICY) }, { tenant: 'acme' });
      expect(p.status, JSON.stringify(p.body)).toBe(201);
      const dev = await issue({ tenant: 'acme' });
      let c: MqttClient | undefined;
      let last = '';
      for (let i = 0; i < 20 && c === undefined; i++) {
        // Full server verification, host name included: the tenant's endpoint presents a certificate named
        // acme.localhost (the installation's `*.localhost` is a wildcard over a one-label name, which clients refuse).
        const o = await connectDevice(server, dev, 'acme-1', { servername: 'acme.localhost' });
        if (o.client !== undefined) c = o.client;
        else {
          last = `${o.error.message} ${String(o.error.code)}`;
          await sleep(100);
        }
      }
      expect(c?.connected, `${last}\n${server.output().slice(-2000)}`).toBe(true);
      await c?.endAsync();
      // Without SNI the default tenant answers: its trust store lacks acme's issuing CA and its registry lacks the
      // certificate, so the connection is refused (at TLS here, or with CONNACK 4 if the chain was sent).
      expect((await connectDevice(server, dev, 'acme-1')).error).toBeDefined();
      const withChain = { ...dev, certificatePem: dev.chainPem ?? '' };
      expect((await connectDevice(server, withChain, 'acme-1')).error?.code).toBe(4);
    });

    it('keeps a CA registered in two tenants (SNI_ONLY) apart: one tenant deactivating it does not stop the other\'s devices; DEFAULT mode stays in one tenant', async () => {
      for (const name of ['north', 'south', 'west']) expect((await server.api('POST', '/v1/tenants', { name })).status).toBe(201);
      openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'shared-ca.key', '-out', 'shared-ca.pem', '-subj', '/CN=Shared CA', '-days', '30',
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], work);
      const caPem = readFileSync(path.join(work, 'shared-ca.pem'), 'utf8');
      const north = { tenant: 'north' };
      const south = { tenant: 'south' };
      const regNorth = await server.api('POST', '/v1/cas/register', { caCertificatePem: caPem, certificateMode: 'SNI_ONLY', setAsActive: true }, north);
      expect(regNorth.status, JSON.stringify(regNorth.body)).toBe(201);
      const regSouth = await server.api('POST', '/v1/cas/register', { caCertificatePem: caPem, certificateMode: 'SNI_ONLY', setAsActive: true }, south);
      expect(regSouth.status, JSON.stringify(regSouth.body)).toBe(201);
      const caId = answer(regNorth).caCertificateId;

      // DEFAULT mode (with a valid proof of possession) is refused while another tenant holds the CA.
      const code = (await server.api('GET', '/v1/cas/registration-code', undefined, { tenant: 'west' })).body.registrationCode as string;
      writeFileSync(path.join(work, 'verify.key'), newKeyPem());
      openssl(['req', '-new', '-key', 'verify.key', '-subj', `/CN=${code}`, '-out', 'verify.csr'], work);
      openssl(['x509', '-req', '-in', 'verify.csr', '-CA', 'shared-ca.pem', '-CAkey', 'shared-ca.key', '-CAcreateserial', '-days', '2', '-out', 'verify.pem'], work);
      const inDefaultMode = await server.api('POST', '/v1/cas/register', { caCertificatePem: caPem, verificationCertificatePem: readFileSync(path.join(work, 'verify.pem'), 'utf8'), setAsActive: true }, { tenant: 'west' });
      expect(inDefaultMode.status, JSON.stringify(inDefaultMode.body)).toBe(409);
      expect(inDefaultMode.body.code).toBe('PROVISIONING_CA_REGISTERED_ELSEWHERE');
      // Nor can a tenant register a CA of the installation (owned, DEFAULT), even in SNI_ONLY mode.
      const issuing = (await issue()).chainPem?.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)?.[1];
      expect(issuing).toBeDefined();
      const ownedElsewhere = await server.api('POST', '/v1/cas/register', { caCertificatePem: issuing, certificateMode: 'SNI_ONLY' }, { tenant: 'west' });
      expect(ownedElsewhere.body.code, JSON.stringify(ownedElsewhere.body)).toBe('PROVISIONING_CA_REGISTERED_ELSEWHERE');

      // A device of south, under the shared CA.
      writeFileSync(path.join(work, 'leaf.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
      writeFileSync(path.join(work, 'south-dev.key'), newKeyPem());
      openssl(['req', '-new', '-key', 'south-dev.key', '-subj', '/CN=south-dev', '-out', 'south-dev.csr'], work);
      openssl(['x509', '-req', '-in', 'south-dev.csr', '-CA', 'shared-ca.pem', '-CAkey', 'shared-ca.key', '-CAcreateserial', '-days', '5', '-extfile', 'leaf.ext', '-out', 'south-dev.pem'], work);
      const dev: Device = { certificateId: '', keyPem: readFileSync(path.join(work, 'south-dev.key'), 'utf8'), certificatePem: readFileSync(path.join(work, 'south-dev.pem'), 'utf8') };
      const reg = await server.api('POST', '/v1/certificates/register', { certificatePem: dev.certificatePem, setAsActive: true }, south);
      expect(reg.status, JSON.stringify(reg.body)).toBe(201);
      expect((await server.api('POST', '/v1/policies', { policyName: 'device', policyDocument: JSON.stringify(DEVICE_POLICY) }, south)).status).toBe(201);
      expect((await server.api('POST', '/v1/policies/device/attach', { target: answer(reg).certificateId }, south)).status).toBeLessThan(300);
      const connectSouth = async (): Promise<Outcome> => {
        let o = await connectDevice(server, dev, 'south-dev', { servername: 'south.localhost' });
        for (let i = 0; i < 20 && o.error !== undefined; i++) {
          await sleep(100);
          o = await connectDevice(server, dev, 'south-dev', { servername: 'south.localhost' });
        }
        return o;
      };
      const first = await connectSouth();
      expect(first.error, String(first.error?.message)).toBeUndefined();
      first.client?.on('error', () => undefined);
      const live = first.client;
      if (live === undefined) throw new Error('unreachable');

      // North deactivates, then revokes, its own registration: south's live device stays, and connects again.
      expect((await server.api('PATCH', `/v1/cas/${caId}`, { status: 'INACTIVE' }, north)).status).toBeLessThan(300);
      expect((await server.api('POST', `/v1/cas/${caId}/revoke`, { reason: 'cessationOfOperation' }, north)).status).toBeLessThan(300);
      await sleep(500);
      expect(live.connected).toBe(true);
      const again = await connectDevice(server, dev, 'south-dev-2', { servername: 'south.localhost' });
      expect(again.error, String(again.error?.message)).toBeUndefined();
      await again.client?.endAsync();
      // South's own deactivation does stop it.
      const closing = closedWithin(live, 3_000);
      expect((await server.api('PATCH', `/v1/cas/${caId}`, { status: 'INACTIVE' }, south)).status).toBeLessThan(300);
      await closing;
      live.end(true);
    });

    it('disconnects a client that sends a packet above the size limit and stays healthy', async () => {
      const dev = await issue();
      const big = await connected(server, dev, 'big-1');
      const closing = closedWithin(big, 3_000);
      big.publish('dev/big-1/x', Buffer.alloc(200 * 1024, 1), { qos: 0 });
      await closing;
      big.end(true);
      const ok = await connected(server, dev, 'big-2');
      await ok.publishAsync('dev/big-2/x', 'small', { qos: 1 });
      await ok.endAsync();
    });

    it('serves the aws-iot-device-sdk-v2 MQTT 3.1.1 client (connect, subscribe, publish)', async () => {
      const dev = await issue();
      const certFile = path.join(work, 'sdk.pem');
      const keyFile = path.join(work, 'sdk.key');
      writeFileSync(certFile, dev.certificatePem);
      writeFileSync(keyFile, dev.keyPem);
      const config = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path(certFile, keyFile)
        .with_certificate_authority_from_path(undefined, path.join(server.dataDir, 'root-ca.pem'))
        .with_endpoint('localhost')
        .with_port(server.ports.mqtt)
        .with_client_id('sdk-1')
        .with_clean_session(true)
        .with_ping_timeout_ms(3_000)
        .build();
      const connection = new awsMqtt.MqttClient().new_connection(config);
      try {
        await connection.connect();
        const got: string[] = [];
        await connection.subscribe('dev/sdk-1/echo', awsMqtt.QoS.AtLeastOnce, (_topic, payload) => {
          got.push(Buffer.from(payload).toString());
        });
        await connection.publish('dev/sdk-1/echo', 'from-sdk', awsMqtt.QoS.AtLeastOnce);
        await waitFor(() => (got.length > 0 ? true : undefined), 3_000, 'sdk message');
        expect(got).toEqual(['from-sdk']);
      } finally {
        await connection.disconnect().catch(() => undefined);
      }
    });

    it('requires iot:RetainPublish for retained messages, and delivers retained messages through iot:Receive', async () => {
      const dev = await issue();
      const c = await connected(server, dev, 'retainer');
      await c.publishAsync('dev/retainer/retained', 'kept', { qos: 1, retain: true });
      await c.endAsync();
      const again = await connected(server, dev, 'retainer');
      const got = collect(again);
      await again.subscribeAsync('dev/retainer/#', { qos: 1 });
      await waitFor(() => (got.length > 0 ? true : undefined), 3_000, 'retained message');
      expect(got[0]).toEqual({ topic: 'dev/retainer/retained', payload: 'kept' });
      // Publish is allowed on a/open/r but RetainPublish is not: the client is disconnected.
      const closing = closedWithin(again, 3_000);
      again.publish('a/open/r', 'x', { qos: 1, retain: true });
      await closing;
      again.end(true);
    });

    it('filters a persistent session\'s offline queue through iot:Receive', async () => {
      const dev = await issue();
      const first = await connected(server, dev, 'persist-1', { clean: false });
      await first.subscribeAsync('a/#', { qos: 1 });
      await first.endAsync();
      const pub = await connected(server, await issue(), 'persist-pub');
      await pub.publishAsync('a/restricted/offline', 'secret', { qos: 1 });
      await pub.publishAsync('a/open/offline', 'public', { qos: 1 });
      await pub.endAsync();
      const ca = readFileSync(path.join(server.dataDir, 'root-ca.pem'), 'utf8');
      const got: string[] = [];
      const back = mqtt.connect(`mqtts://127.0.0.1:${server.ports.mqtt}`, { key: dev.keyPem, cert: dev.certificatePem, ca, clientId: 'persist-1', clean: false, protocolVersion: 4, reconnectPeriod: 0 });
      back.on('message', (topic) => got.push(topic));
      back.on('error', () => undefined);
      await waitFor(() => (got.includes('a/open/offline') ? true : undefined), 3_000, 'offline message');
      await sleep(200);
      expect(got).toEqual(['a/open/offline']);
      await back.endAsync();
    });

    it('never lets a device publish on reserved topics or subscribe to $SYS, whatever its policy', async () => {
      await server.api('POST', '/v1/policies', { policyName: 'wide', policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }] }) });
      const dev = await issue({ policy: 'wide' });
      const victim = await connected(server, await issue({ policy: 'wide' }), 'victim');
      const c = await connected(server, dev, 'wide-1');
      expect(await granted(c, '$SYS/#')).toBe(128);
      expect(await granted(c, 'anything/#')).toBe(1);
      const closing = closedWithin(c, 3_000);
      // aedes closes the client named in a $SYS/<other broker>/new/clients message: a device must not forge it.
      c.publish('$SYS/forged-broker/new/clients', 'victim', { qos: 1 });
      await closing;
      c.end(true);
      await sleep(200);
      expect(victim.connected).toBe(true);
      const d2 = await connected(server, dev, 'wide-2');
      const closing2 = closedWithin(d2, 3_000);
      d2.publish('$aws/events/presence/connected/fake', '{}', { qos: 1 });
      await closing2;
      d2.end(true);
      await victim.endAsync();
    });

    it('enforces the subscription and topic limits by disconnecting, and stays healthy', async () => {
      const dev = await issue();
      const c = await connected(server, dev, 'limits-1');
      const filters = Array.from({ length: 50 }, (_, i) => `dev/limits-1/${i}`);
      const r = await c.subscribeAsync(filters, { qos: 0 });
      expect(r.map((g) => g.qos)).toEqual(filters.map(() => 0));
      const closing = closedWithin(c, 3_000);
      c.subscribe('dev/limits-1/one-too-many', { qos: 0 }, () => undefined);
      await closing;
      c.end(true);

      const t = await connected(server, dev, 'limits-2');
      const closingT = closedWithin(t, 3_000);
      t.publish(`dev/limits-2/${'x'.repeat(300)}`, 'long', { qos: 1 });
      await closingT;
      t.end(true);

      const ok = await connected(server, dev, 'limits-3');
      expect(await granted(ok, 'dev/limits-3/fine')).toBe(1);
      await ok.endAsync();
      const text = await (await fetch(`${server.apiUrl}/metrics`)).text();
      expect(text).toMatch(/gatehouse_mqtt_enforcement_disconnects_total\{reason="subscription_limit"\} [1-9]/);
      expect(text).toMatch(/gatehouse_mqtt_enforcement_disconnects_total\{reason="topic_limit"\} [1-9]/);
    });

    it('keeps a tenant\'s retained messages within --mqtt-max-retained-bytes: a retained publish past it closes the connection; clearing makes room', async () => {
      const small = await startServer({ dialect, env: { GATEHOUSE_MQTT_MAX_RETAINED_BYTES: '4096' } });
      try {
        const doc = { Version: '2012-10-17', Statement: [
          { Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/\${iot:ClientId}` },
          { Effect: 'Allow', Action: ['iot:Publish', 'iot:RetainPublish'], Resource: `${ARN}:topic/dev/\${iot:ClientId}/*` },
        ] };
        expect((await small.api('POST', '/v1/policies', { policyName: 'retainer', policyDocument: JSON.stringify(doc) })).status).toBe(201);
        const keyPem = newKeyPem();
        const r = await small.api('POST', '/v1/certificates/from-csr', { certificateSigningRequest: csrOf(keyPem, 'retainer', work), setAsActive: true });
        expect((await small.api('POST', '/v1/policies/retainer/attach', { target: answer(r).certificateId })).status).toBeLessThan(300);
        const dev = { certificateId: answer(r).certificateId, certificatePem: answer(r).certificatePem, keyPem };
        const c = await connected(small, dev, 'ret-1');
        const kb = Buffer.alloc(1000, 0x61);
        for (const n of [1, 2, 3]) await c.publishAsync(`dev/ret-1/${n}`, kb, { qos: 1, retain: true });
        await c.publishAsync('dev/ret-1/1', kb, { qos: 1, retain: true }); // replacing one keeps the total
        const closing = closedWithin(c, 3_000);
        c.publish('dev/ret-1/4', kb, { qos: 1, retain: true });
        c.publish('dev/ret-1/5', kb, { qos: 1, retain: true });
        await closing;
        c.end(true);
        const again = await connected(small, dev, 'ret-1');
        await again.publishAsync('dev/ret-1/2', Buffer.alloc(0), { qos: 1, retain: true }); // cleared
        await again.publishAsync('dev/ret-1/4', kb, { qos: 1, retain: true });
        expect(again.connected).toBe(true);
        await again.endAsync();
        expect(await (await fetch(`${small.apiUrl}/metrics`)).text()).toMatch(/gatehouse_mqtt_enforcement_disconnects_total\{reason="retained_limit"\} 1/);
      } finally {
        await small.destroy();
      }
    }, 60_000);

    it('connects a device that presents a saved TLS session, with a full handshake (no resumption; no stateless tickets)', async () => {
      const dev = await issue();
      const ca = readFileSync(path.join(server.dataDir, 'root-ca.pem'), 'utf8');
      for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
        const first = tls.connect({ host: '127.0.0.1', port: server.ports.mqtt, servername: 'localhost', key: dev.keyPem, cert: dev.certificatePem, ca, maxVersion });
        // TLS 1.3 tickets arrive after the handshake: wait for one (the MQTT side never answers this socket).
        const saved = await new Promise<Buffer>((resolve, reject) => {
          first.once('session', resolve);
          first.once('error', reject);
        });
        first.destroy();
        const o = await connectDevice(server, dev, `resume-${maxVersion}`, { session: saved, maxVersion, servername: 'localhost' } as Partial<IClientOptions>);
        if (o.error !== undefined) throw new Error(`${maxVersion} connect with a saved session failed: ${o.error.message}`);
        const socket = o.client.stream as tls.TLSSocket;
        expect(socket.isSessionReused(), maxVersion).toBe(false);
        expect(socket.authorized, maxVersion).toBe(true);
        await o.client.publishAsync(`dev/resume-${maxVersion}/x`, 'ok', { qos: 1 });
        await o.client.endAsync();
      }
    });

    it('accepts mosquitto_pub with a Gatehouse bundle', async () => {
      const dev = await issue();
      const sub = await connected(server, dev, 'mosq-sub');
      const got = collect(sub);
      await sub.subscribeAsync('a/#', { qos: 1 });
      const pubDev = await issue();
      writeFileSync(path.join(work, 'mosq.pem'), pubDev.certificatePem);
      writeFileSync(path.join(work, 'mosq.key'), pubDev.keyPem);
      await execFileAsync('mosquitto_pub', [
        '-h', '127.0.0.1', '-p', String(server.ports.mqtt), '-V', 'mqttv311', '--cafile', path.join(server.dataDir, 'root-ca.pem'),
        '--cert', path.join(work, 'mosq.pem'), '--key', path.join(work, 'mosq.key'), '-i', 'mosq-pub', '-t', 'a/mosquitto', '-m', 'from-mosquitto', '-q', '1',
      ], { timeout: 10_000 });
      await waitFor(() => (got.length > 0 ? true : undefined), 3_000, 'mosquitto message');
      expect(got[0]).toEqual({ topic: 'a/mosquitto', payload: 'from-mosquitto' });
      await sub.endAsync();
    });
  });
}

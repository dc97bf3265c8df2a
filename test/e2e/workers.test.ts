// `gatehouse serve --workers 2` end to end (issue 4): two worker processes behind one port act as one broker through
// the Redis bus. The primary distributes connections round robin here (NODE_CLUSTER_SCHED_POLICY=rr), so that
// consecutive connections land on different workers and every cross-worker path below is exercised each run
// (in production the default is the kernel's distribution, which is not predictable).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provisionByClaim } from '../../src/device/index.ts';
import { createCsr, crlSerialKey, generateKeyPair, parseCertificate, readCrl } from '../../src/pki/index.ts';
import { DIALECTS } from '../support/dialects.ts';
import { startServer, waitFor } from '../support/server-process.ts';

type Server = Awaited<ReturnType<typeof startServer>>;

interface Device {
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly keyPem: string;
}

const ARN = 'arn:aws:iot:*:*';
const POLICY = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/*` },
    { Effect: 'Allow', Action: ['iot:Publish', 'iot:Receive', 'iot:RetainPublish'], Resource: `${ARN}:topic/w/*` },
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${ARN}:topicfilter/w/*` },
  ],
};

for (const dialect of DIALECTS) describe(`gatehouse serve --workers 2 (${dialect.name}, Redis bus)`, () => {
  let server: Server;
  let ca: string;
  const open: MqttClient[] = [];

  async function device(name: string): Promise<Device> {
    const keys = generateKeyPair('EC_P256');
    const csr = createCsr({ privateKeyPem: keys.privateKeyPem, subject: { CN: [name] } });
    const r = await server.api('POST', '/v1/certificates/from-csr', { certificateSigningRequest: csr, setAsActive: true });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const body = r.body as { certificateId: string; certificatePem: string };
    const a = await server.api('POST', '/v1/policies/workers-test/attach', { target: body.certificateId });
    expect(a.status, JSON.stringify(a.body)).toBeLessThan(300);
    return { certificateId: body.certificateId, certificatePem: body.certificatePem, keyPem: keys.privateKeyPem };
  }

  async function connect(dev: Device, clientId: string, clean = true): Promise<MqttClient> {
    const client = mqtt.connect(`mqtts://127.0.0.1:${server.ports.mqtt}`, {
      key: dev.keyPem, cert: dev.certificatePem, ca, clientId, clean, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, rejectUnauthorized: true,
    });
    open.push(client);
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error(`closed before CONNACK\n${server.output().slice(-2000)}`)));
    });
    client.on('error', () => undefined);
    return client;
  }

  function closedWithin(client: MqttClient, ms: number): Promise<void> {
    if (!client.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`still connected after ${ms} ms`)), ms);
      client.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  beforeAll(async () => {
    server = await startServer({ dialect, env: { GATEHOUSE_WORKERS: '2', NODE_CLUSTER_SCHED_POLICY: 'rr' } });
    ca = readFileSync(path.join(server.dataDir, 'root-ca.pem'), 'utf8');
    const p = await server.api('POST', '/v1/policies', { policyName: 'workers-test', policyDocument: POLICY });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
  }, 120_000);

  afterAll(async () => {
    for (const c of open) c.end(true);
    await server.destroy();
  });

  it('runs a primary and two workers, and names them in server.json', () => {
    const info = JSON.parse(readFileSync(path.join(server.dataDir, 'server.json'), 'utf8')) as { pid: number; workers: number[] };
    expect(info.workers).toHaveLength(2);
    expect(new Set([info.pid, ...info.workers]).size).toBe(3);
  });

  it('delivers messages between devices connected to different workers', async () => {
    const dev = await device('w-msg');
    const sub = await connect(dev, 'w-sub');
    const got: string[] = [];
    sub.on('message', (_t, payload) => got.push(payload.toString()));
    await sub.subscribeAsync('w/room', { qos: 1 });
    // Six publishers in a row: round robin puts three of them on the other worker.
    for (let i = 0; i < 6; i++) {
      const pub = await connect(dev, `w-pub-${i}`);
      await pub.publishAsync('w/room', `m${i}`, { qos: 1 });
      pub.end();
    }
    await waitFor(() => (got.length >= 6 ? true : undefined), 10_000, 'six messages').catch(() => undefined);
    expect(got.sort()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
  });

  it('keeps retained messages for subscribers of every worker', async () => {
    const dev = await device('w-ret');
    const pub = await connect(dev, 'w-retainer');
    await pub.publishAsync('w/state', 'on', { qos: 1, retain: true });
    for (let i = 0; i < 2; i++) {
      const sub = await connect(dev, `w-late-${i}`);
      const first = new Promise<string>((resolve) => sub.once('message', (_t, payload) => resolve(payload.toString())));
      await sub.subscribeAsync('w/state', { qos: 1 });
      expect(await Promise.race([first, new Promise<string>((resolve) => setTimeout(() => resolve('(nothing)'), 5000))])).toBe('on');
      sub.end();
    }
  });

  it('a second connection with the same client id closes the first, across workers', async () => {
    const dev = await device('w-dup');
    for (let round = 0; round < 2; round++) {
      const first = await connect(dev, 'w-dup');
      const second = await connect(dev, 'w-dup');
      await closedWithin(first, 5000);
      expect(second.connected).toBe(true);
      second.end(true);
    }
  });

  it('revoking a certificate through the API disconnects its devices on every worker within a second or two', async () => {
    const a = await device('w-rev-a');
    const b = await device('w-rev-b');
    // Consecutive connections alternate workers: each certificate has a connection on both.
    const clients = [await connect(a, 'w-rev-a1'), await connect(a, 'w-rev-a2'), await connect(b, 'w-rev-b1'), await connect(b, 'w-rev-b2')];
    for (const dev of [a, b]) {
      const r = await server.api('PATCH', `/v1/certificates/${dev.certificateId}`, { status: 'REVOKED' });
      expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
    }
    const started = Date.now();
    await Promise.all(clients.map((c) => closedWithin(c, 5000)));
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('puts a certificate revoked through one worker on the CRL that every worker serves', async () => {
    const dev = await device('w-crl');
    const cert = parseCertificate(dev.certificatePem);
    const crlPath = new URL(cert.crlDistributionPoints[0] ?? '').pathname.replace(/\.crl$/, '.pem');
    const issuer = parseCertificate((await server.api('GET', `/v1/cas/${/([0-9a-f]{64})\.pem$/.exec(crlPath)?.[1] ?? ''}`)).body.certificatePem as string);
    // Each read on a new connection: round robin sends consecutive ones to alternate workers, and each caches the CRL.
    const listedByEach = async (): Promise<boolean[]> => {
      const listed: boolean[] = [];
      for (let i = 0; i < 4; i++) {
        const pem = await new Promise<string>((resolve, reject) => {
          http.get(`${server.apiUrl}${crlPath}`, { agent: false }, (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve(body));
          }).on('error', reject);
        });
        listed.push((await readCrl(pem, issuer)).revokedSerials.has(crlSerialKey(cert.serialNumber)));
      }
      return listed;
    };
    expect(await listedByEach()).toEqual([false, false, false, false]);
    const r = await server.api('POST', `/v1/certificates/${dev.certificateId}/revoke`, { reason: 'keyCompromise' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    // the other worker hears of it over the bus
    await waitFor(async () => ((await listedByEach()).every(Boolean) ? true : undefined), 5000, 'the revoked certificate on every CRL read');
  });

  it('answers /metrics for the whole installation, whichever worker serves it', async () => {
    const dev = await device('w-metrics');
    expect((await server.api('PATCH', `/v1/certificates/${dev.certificateId}`, { status: 'INACTIVE' })).status).toBeLessThan(300);
    const refusals = async (): Promise<{ scope: string | null; count: number }> => {
      // a new connection each time (no keep-alive): round robin hands them to both workers
      const res = await fetch(`${server.apiUrl}/metrics`, { headers: { connection: 'close' } });
      const text = await res.text();
      const line = text.split('\n').find((l) => l.startsWith('gatehouse_mqtt_connect_refusals_total{') && l.includes('reason="certificate_inactive"'));
      return { scope: res.headers.get('gatehouse-metrics-scope'), count: line === undefined ? 0 : Number(line.split(' ').pop()) };
    };
    const before = await refusals();
    // four refused connections, alternating between the two workers
    for (let i = 0; i < 4; i++) await expect(connect(dev, `w-metrics-${i}`)).rejects.toThrow();
    for (let i = 0; i < 4; i++) {
      const after = await refusals();
      expect(after.scope).toBe('installation');
      expect(after.count - before.count).toBe(4);
    }
  });

  it('holds a claim to its rate limit across workers (the buckets live in Redis)', async () => {
    const template = {
      Parameters: { SerialNumber: { Type: 'String' } },
      Resources: {
        thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { 'Fn::Join': ['', ['w-sensor-', { Ref: 'SerialNumber' }]] } } },
        certificate: { Type: 'AWS::IoT::Certificate', Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' } },
        policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: 'workers-test' } },
      },
    };
    expect((await server.api('POST', '/v1/provisioning-templates', { templateName: 'w-fleet', templateBody: template })).status).toBe(201);
    const r = await server.api('POST', '/v1/provisioning-templates/w-fleet/claim-certificates', { batch: 'w-batch', ratePerMinute: 2 });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const claim = { certificatePem: r.body.certificatePem as string, privateKeyPem: r.body.keyPair.PrivateKey as string };
    const endpoint = { host: '127.0.0.1', port: server.ports.mqtt, caPem: ca, servername: 'localhost' };
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) {
      // Each flow is one claim connection: consecutive devices land on alternate workers (round robin), so
      // per-process buckets of 2 would let all three through.
      const outcome = await provisionByClaim({ endpoint, claim, templateName: 'w-fleet', parameters: { SerialNumber: `R${i}` }, clientId: `w-rate-${i}`, attempts: 1 }).then(
        (dev) => dev.thingName,
        (e: Error & { details?: { errorMessage?: string } }) => e.details?.errorMessage ?? e.message,
      );
      outcomes.push(outcome);
    }
    expect(outcomes.slice(0, 2)).toEqual(['w-sensor-R0', 'w-sensor-R1']);
    expect(outcomes[2]).toContain('PROVISIONING_RATE_LIMITED');
  });

  it('replaces a worker that dies, and keeps serving', async () => {
    const file = path.join(server.dataDir, 'server.json');
    const before = JSON.parse(readFileSync(file, 'utf8')) as { workers: number[] };
    const victim = before.workers[0] ?? 0;
    process.kill(victim, 'SIGKILL');
    const after = await waitFor(() => {
      const info = JSON.parse(readFileSync(file, 'utf8')) as { workers: number[] };
      return info.workers.length === 2 && !info.workers.includes(victim) ? info : undefined;
    }, 60_000, 'a replacement worker in server.json');
    expect(after.workers).toContain(before.workers[1]);
    const dev = await device('w-after');
    for (let i = 0; i < 2; i++) (await connect(dev, `w-after-${i}`)).end(true);
  }, 90_000);

  it('stops every worker on SIGTERM and releases the data directory', async () => {
    const info = JSON.parse(readFileSync(path.join(server.dataDir, 'server.json'), 'utf8')) as { workers: number[] };
    const code = await server.stop('SIGTERM');
    expect(code).toBe(0);
    for (const pid of info.workers) {
      expect(() => process.kill(pid, 0)).toThrow();
    }
  });
});

describe('gatehouse serve with an unreachable bus', () => {
  it('refuses to start with EVENTS_BUS_UNREACHABLE', async () => {
    const { execFile } = await import('node:child_process');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(path.join(tmpdir(), 'gh-bus-'));
    try {
      const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = execFile(process.execPath, [path.resolve(import.meta.dirname, '../../bin/gatehouse.js'), 'serve', '--workers', '2', '--bus-url', 'redis://127.0.0.1:1', '--api-port', '0', '--mqtt-port', '0', '--host', '127.0.0.1', '--log-level', 'warn'], { env: { ...process.env, GATEHOUSE_DATA_DIR: dir }, timeout: 60_000 }, (_error, stdout, stderr) => resolve({ code: child.exitCode, out: `${stdout}${stderr}` }));
      });
      expect(result.code).not.toBe(0);
      expect(result.out).toContain('EVENTS_BUS_UNREACHABLE');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});

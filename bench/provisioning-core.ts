/**
 * Diagnostic (not a goal of an issue): the CPU and wall time of the provisioning work alone, without TLS and MQTT, in
 * one process. A real `gatehouse serve` is started to set up the installation through the API (policy, templates,
 * claim, a BYO maker CA with proof of possession), then stopped; its data dir is opened here and the flows are called
 * directly, `--concurrency` at a time:
 *   - `jitp`:  AutoRegistration.handleUnknownCertificate (chain check, JITP template, certificate + thing + policy +
 *              attachments + audit in one transaction), as the gateway calls it for a never-seen certificate;
 *   - `fleet`: FleetProvisioning.createCertificateFromCsr + registerThing (CSR check and signing, ownership token,
 *              template, thing + attachments + audit), as the MQTT API calls them.
 * Comparing this with the server CPU per device of bench/jitp.ts and bench/fleet.ts splits provisioning from
 * connection handling. Device certificates and CSRs are made before the clock starts.
 *
 *   npx tsx bench/provisioning-core.ts [jitp|fleet] [N] [--concurrency 16]
 *
 * stdout: one JSON line; stderr: the human summary.
 */
import { performance } from 'node:perf_hooks';
import { readOrCreateKekFile } from '../src/app/data-dir.ts';
import * as pki from '../src/pki/index.ts';
import { AutoRegistration, CertificateAuthorityService, ControlPlane } from '../src/provisioning/index.ts';
import * as registry from '../src/registry/index.ts';
import { openStore } from '../src/store/index.ts';
import { createMakerCa, emit, fleetBenchTemplate, intOption, issueClientIdentity, machineLoad, parseArgs, round, say, startGatehouse, str } from './support.ts';

const BENCH = 'provisioning-core';
const args = parseArgs(process.argv.slice(2));
const mode = args.positional[0] === 'fleet' ? 'fleet' : 'jitp';
const n = intOption(args, 'n', 1000, 1);
const concurrency = intOption(args, 'concurrency', 16);
const WARM = 50;
const ARN = 'arn:aws:iot:*:*';
const POLICY = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/\${iot:Connection.Thing.ThingName}` }] };
const JITP_TEMPLATE = {
  Parameters: { 'AWS::IoT::Certificate::CommonName': { Type: 'String' } },
  Resources: {
    thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'AWS::IoT::Certificate::CommonName' } } },
    certificate: { Type: 'AWS::IoT::Certificate', Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' } },
    policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyDocument: JSON.stringify(POLICY) } },
  },
};
const FLEET_TEMPLATE = fleetBenchTemplate('bench-device');

// --- set up through the API of a real server, then stop it and open its data dir here
const gh = await startGatehouse({});
const maker = await createMakerCa('Bench Maker CA');
const code = str((await gh.api('GET', '/v1/cas/registration-code')).body, 'registrationCode');
const verification = maker.issuer.issue({ publicKey: pki.generateKeyPair('EC_P256').spkiDer, subject: { CN: [code] }, extendedKeyUsage: 'clientAuth', validityDays: 1 });
const caId = str((await gh.api('POST', '/v1/cas/register', { caCertificatePem: maker.certificate.pem, verificationCertificatePem: verification.pem, allowAutoRegistration: true, setAsActive: true })).body, 'caCertificateId');
await gh.api('POST', '/v1/provisioning-templates', { templateName: 'bench-jitp', templateBody: JITP_TEMPLATE, type: 'JITP' });
await gh.api('PATCH', `/v1/cas/${caId}`, { autoRegistrationStatus: 'ENABLE', registrationConfig: { templateName: 'bench-jitp' }, firstConnect: 'continue' });
await gh.api('POST', '/v1/policies', { policyName: 'bench-device', policyDocument: POLICY });
await gh.api('POST', '/v1/provisioning-templates', { templateName: 'bench-fleet', templateBody: FLEET_TEMPLATE });
const claimId = str((await gh.api('POST', '/v1/provisioning-templates/bench-fleet/claim-certificates', { batch: 'bench' })).body, 'certificateId');
const serverExit = new Promise((resolve) => setTimeout(resolve, 1500));
if (gh.pid !== undefined) process.kill(gh.pid, 'SIGTERM');
await serverExit;

const store = await openStore({ databaseUrl: undefined, dataDir: gh.dataDir });
try {
  const tenantId = registry.DEFAULT_TENANT;
  let events = 0;
  const sink = { emit: (): void => void (events += 1) };
  const total = WARM + n;
  let one: (i: number) => Promise<void>;
  if (mode === 'jitp') {
    const auto = new AutoRegistration(store, sink);
    const pems = Array.from({ length: total }, (_, i) => issueClientIdentity(maker.issuer, `dev-${i}`).certPem);
    one = async (i) => {
      const o = await auto.handleUnknownCertificate({ tenantId, certificate: pems[i] ?? '', clientId: `dev-${i}` });
      if (o.kind !== 'provisioned') throw new Error(`device ${i}: ${o.kind}${o.kind === 'refused' ? ` ${o.code} ${o.reason}` : ''}`);
    };
  } else {
    const kek = pki.parseKek(readOrCreateKekFile(gh.dataDir, pki.generateKek));
    const keyStore = new pki.EncryptedKeyStore({ kek, blobs: registry.createKeyBlobRepository(store.db) });
    const cas = new CertificateAuthorityService({ store, keyStore, publicUrl: 'http://127.0.0.1:1', onTrustChanged: () => undefined });
    const fleet = new ControlPlane(store, cas).fleet;
    const csrs = Array.from({ length: total }, (_, i) => pki.createCsr({ privateKeyPem: pki.generateKeyPair('EC_P256').privateKeyPem, subject: { CN: [`d${i}`] } }));
    const caller = { tenantId, certificateId: claimId, clientId: 'claim' };
    one = async (i) => {
      const r = await fleet.createCertificateFromCsr(caller, csrs[i] ?? '');
      await fleet.registerThing(caller, 'bench-fleet', { certificateOwnershipToken: r.certificateOwnershipToken, parameters: { SerialNumber: String(i) } });
    };
  }
  for (let i = 0; i < WARM; i += 1) await one(i);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let next = WARM;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) await one(next++);
  }));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  const cpuMs = (cpu.user + cpu.system) / 1000 / n;
  emit(BENCH, 'cpu_ms_per_device', cpuMs, 'ms', { mode, devices: n, concurrency, wallMsPerDevice: round(ms / n), events, dialect: store.dialect, ...machineLoad() });
  say(`[${BENCH}] ${mode}: ${n} devices at concurrency ${concurrency}: ${round(ms / n)} ms wall and ${round(cpuMs)} ms CPU (all threads of this process) per device; ${events} events`);
} finally {
  await store.close();
  await gh.destroy();
}

/**
 * Fleet provisioning by claim (issue 5, "Performance"): D simulated devices, with bounded concurrency, each run the
 * full by-claim flow: connect with the batch claim, key pair + CSR generated on the device, CreateCertificateFromCsr,
 * RegisterThing, disconnect, reconnect with the new certificate, one QoS 1 publish, disconnect. In the same run, raw
 * `node:tls` mutual-TLS handshakes/second; the flow needs two handshakes per device, so the ceiling is half the
 * handshake rate. Goal: ≥ 60% of that ceiling.
 *
 *   npx tsx bench/fleet.ts [D] [--concurrency 16] [--rounds 4] [--warmup 1000] [--log-level warn] [--client lean|sdk]
 *
 * Real `gatehouse serve` (SQLite, loopback). The raw baseline: a bare TLS server (own process) with a fresh EC P-256
 * server certificate and 50 EC P-256 client certificates made with `src/pki` (the claim's and devices' certificates
 * are EC P-256 too); its client TLS contexts are built once and reused.
 *
 * Device client (`--client`):
 * - `lean` (default, bench/lean-fleet-device.ts): the same protocol work as the SDK (same subscriptions, requests,
 *   unsubscriptions, publish; key pair and CSR made with `src/pki` on the device side) with hand-encoded MQTT 3.1.1
 *   over `connectMutualTls`, the raw baseline's TLS path: the claim's SecureContext is built once for the run, each
 *   device's new key and certificate are loaded into OpenSSL for its reconnection (in one client context per run that
 *   holds the trusted root, `singleUseIdentityContext`), servername 'localhost', full handshakes (`resumedSessions`
 *   must be 0). Client and server share 2 cores, so the ratio then measures the server rather than the device library.
 * - `sdk`: the device SDK (`src/device`: `provisionByClaim` with `attempts: 1`, so that no failure is hidden by its
 *   retries, then `connectDevice`; MQTT.js, a new TLS context per connection as a device would).
 *
 * stdout: one JSON line per measurement (each with `client`); stderr: the human summary.
 */
import { performance } from 'node:perf_hooks';
import { connectDevice, provisionByClaim } from '../src/device/index.ts';
import type { DeviceEndpoint } from '../src/device/index.ts';
import { runLeanFleetDevice } from './lean-fleet-device.ts';
import {
  clientSecureContext,
  createBenchPki,
  emit,
  FLEET_BENCH_DEVICE_POLICY,
  fleetBenchTemplate,
  intOption,
  machineLoad,
  measureRawHandshakes,
  ownCpuSeconds,
  parseArgs,
  percentile,
  processCpuSeconds,
  round,
  runPool,
  say,
  startGatehouse,
  str,
  warmupOption,
  withTimeout,
} from './support.ts';
import type { ClientIdentity, PoolResult, RawHandshakeResult } from './support.ts';

/** The device clients of this benchmark: `lean` (bench/lean-fleet-device.ts, the default) and `sdk` (`src/device`). */
const FLEET_CLIENTS = ['lean', 'sdk'] as const;
type FleetClient = (typeof FLEET_CLIENTS)[number];

/** Parses a `--client` value (default `lean`). */
function parseFleetClient(text: string | undefined): FleetClient {
  if (text === undefined) return 'lean';
  const found = FLEET_CLIENTS.find((c) => c === text);
  if (found === undefined) throw new Error(`--client must be one of ${FLEET_CLIENTS.join(', ')}, got "${text}"`);
  return found;
}

const BENCH = 'fleet';
const args = parseArgs(process.argv.slice(2));
const devices = intOption(args, 'devices', 600, 0);
const concurrency = intOption(args, 'concurrency', 16);
const rounds = intOption(args, 'rounds', 4);
/** Devices provisioned before anything is measured (JIT tier-up of the server's code; see the bench README). */
// 1000 devices: V8 is still optimizing the server's provisioning path after the first hundred (see bench/jitp.ts).
const warmup = warmupOption(args, 1000);
const logLevel = args.options.get('log-level') ?? 'warn';
const client = parseFleetClient(args.options.get('client'));
const GOAL = 0.6;
const AWS_REGISTER_THING_PER_SECOND = 10; // AWS IoT default RegisterThing quota, per account
const AZURE_DPS_PER_MINUTE = 1000; // Azure DPS registrations per minute per instance

const TEMPLATE = fleetBenchTemplate('bench-fleet-device');

interface FleetRound {
  readonly pool: PoolResult;
  readonly flowMs: readonly number[];
  readonly gatehouseCpuSeconds: number;
  readonly clientCpuSeconds: number;
  /** TLS connections that resumed a session (counted by the lean client; expected 0). */
  readonly resumedSessions: number;
}

const gh = await startGatehouse({ logLevel });
try {
  await gh.api('POST', '/v1/policies', { policyName: 'bench-fleet-device', policyDocument: FLEET_BENCH_DEVICE_POLICY });
  await gh.api('POST', '/v1/provisioning-templates', { templateName: 'bench-fleet', templateBody: TEMPLATE });
  const c = await gh.api('POST', '/v1/provisioning-templates/bench-fleet/claim-certificates', { batch: 'bench-batch' });
  const claim = { certificatePem: str(c.body, 'certificatePem'), privateKeyPem: str(c.body, 'keyPair.PrivateKey') };
  const endpoint: DeviceEndpoint = { host: '127.0.0.1', port: gh.mqttPort, caPem: gh.rootCaPem, servername: 'localhost' };
  say(`[${BENCH}] Gatehouse pid ${gh.pid ?? '?'} on 127.0.0.1:${gh.mqttPort}; template bench-fleet, one batch claim`);

  // The lean devices share the batch claim's SecureContext, built here once for the whole run (as the raw baseline
  // reuses its contexts); each device's new key and certificate are loaded into OpenSSL when it reconnects.
  const claimIdentity: ClientIdentity = { certPem: claim.certificatePem, keyPem: claim.privateKeyPem };
  if (client === 'lean') clientSecureContext(claimIdentity, gh.rootCaPem);

  /** Device `serial` with the SDK: claim → CSR → RegisterThing → reconnect with the new certificate → one publish. */
  const runSdkDevice = async (serial: string): Promise<number> => {
    const dev = await provisionByClaim({ endpoint, claim, templateName: 'bench-fleet', parameters: { SerialNumber: serial }, clientId: `claim-${serial}`, attempts: 1, timeoutMs: 15_000 });
    const mqttClient = await connectDevice(endpoint, dev, dev.thingName, { timeoutMs: 15_000 });
    mqttClient.on('error', () => undefined);
    try {
      await withTimeout(mqttClient.publishAsync(`things/${dev.thingName}/telemetry`, '{"hello":1}', { qos: 1 }), 15_000, 'PUBACK');
    } finally {
      await mqttClient.endAsync().catch(() => mqttClient.end(true));
    }
    return 0; // MQTT.js builds a new TLS context per connection: nothing to resume, and nothing counted
  };

  /** Device `serial` with the lean client: the same flow and the same protocol work; returns its resumed sessions. */
  const runLeanDevice = async (serial: string): Promise<number> => {
    const r = await runLeanFleetDevice({ host: endpoint.host, port: endpoint.port, servername: 'localhost', caPem: gh.rootCaPem, claim: claimIdentity, templateName: 'bench-fleet', serialNumber: serial, claimClientId: `claim-${serial}`, expectedThingName: `bench-${serial}`, timeoutMs: 15_000 });
    return r.resumedSessions;
  };
  const runDevice = client === 'lean' ? runLeanDevice : runSdkDevice;

  const runFleet = async (prefix: string, count: number, conc: number): Promise<FleetRound> => {
    const flowMs: number[] = [];
    let resumedSessions = 0;
    const g0 = processCpuSeconds(gh.pid);
    const c0 = ownCpuSeconds();
    const pool = await runPool(count, conc, 50_000, async (i) => {
      const t0 = performance.now();
      resumedSessions += await runDevice(`${prefix}${i}`);
      flowMs.push(performance.now() - t0);
    });
    return { pool, flowMs, gatehouseCpuSeconds: processCpuSeconds(gh.pid) - g0, clientCpuSeconds: ownCpuSeconds() - c0, resumedSessions };
  };

  const pki = await createBenchPki('fleet');
  const rawClients = Array.from({ length: 50 }, (_, i) => pki.issueClient(`raw-device-${i}`));
  const rawBase = { serverCertChainPem: pki.serverCertChainPem, serverKeyPem: pki.serverKeyPem, serverRootPem: pki.rootPem, clientCaPems: pki.clientCaPems, clients: rawClients, concurrency, timeLimitMs: 30_000 };

  // warm-up (JIT, caches, SQLite pages), not counted
  const warm = await runFleet('W', warmup, warmup > 100 ? concurrency : Math.min(concurrency, 8));
  if (warm.pool.failed > 0) say(`[${BENCH}] warm-up failures: ${warm.pool.errors.join(' | ')}`);

  const raws: RawHandshakeResult[] = [];
  const fleets: FleetRound[] = [];
  const perRound = Math.ceil(devices / rounds);
  for (let r = 0; r < rounds; r += 1) {
    raws.push(await measureRawHandshakes({ ...rawBase, count: Math.max(200, perRound * 2) }));
    fleets.push(await runFleet(`R${r}N`, perRound, concurrency));
  }
  const sum = (xs: readonly number[]): number => xs.reduce((a, x) => a + x, 0);
  const done = sum(fleets.map((f) => f.pool.completed));
  const failed = sum(fleets.map((f) => f.pool.failed));
  const devicesPerSecond = done / sum(fleets.map((f) => f.pool.seconds));
  const handshakesPerSecond = sum(raws.map((x) => x.pool.completed)) / sum(raws.map((x) => x.pool.seconds));
  const ceiling = handshakesPerSecond / 2;
  const ratio = devicesPerSecond / ceiling;
  const flow = fleets.flatMap((f) => [...f.flowMs]);
  const ghCpuMs = (sum(fleets.map((f) => f.gatehouseCpuSeconds)) * 1000) / Math.max(1, done);
  const clientCpuMs = (sum(fleets.map((f) => f.clientCpuSeconds)) * 1000) / Math.max(1, done);
  const bareCpuMs = sum(raws.map((x) => x.serverCpuMsPerHandshake)) / raws.length;
  const resumedSessions = sum(fleets.map((f) => f.resumedSessions));
  const ctx = { client, devices: perRound * rounds, rounds, concurrency, dialect: 'sqlite', logLevel, keyMode: 'csr (device-side key)', tls: raws[0]?.protocol ?? '?', ...machineLoad() };

  emit(BENCH, 'devices_per_second', devicesPerSecond, '1/s', { ...ctx, completed: done, failed, perRound: fleets.map((f) => round(f.pool.completed / f.pool.seconds)), resumedSessions: client === 'lean' ? resumedSessions : null, rawResumedSessions: sum(raws.map((x) => x.resumedSessions)) });
  emit(BENCH, 'device_flow_latency_p50', percentile(flow, 50), 'ms', ctx);
  emit(BENCH, 'device_flow_latency_p99', percentile(flow, 99), 'ms', ctx);
  emit(BENCH, 'raw_tls_handshakes_per_second', handshakesPerSecond, '1/s', { ...ctx, perRound: raws.map((x) => round(x.handshakesPerSecond)) });
  emit(BENCH, 'ceiling_devices_per_second', ceiling, '1/s', { ...ctx, handshakesPerDevice: 2 });
  emit(BENCH, 'ratio_to_ceiling', ratio, 'ratio', { ...ctx, goal: GOAL, met: ratio >= GOAL });
  emit(BENCH, 'gatehouse_cpu_ms_per_device', ghCpuMs, 'ms', ctx);
  emit(BENCH, 'client_cpu_ms_per_device', clientCpuMs, 'ms', { ...ctx, rawClientCpuMsPerHandshake: round(sum(raws.map((x) => x.clientCpuMsPerHandshake)) / raws.length) });
  emit(BENCH, 'bare_tls_server_cpu_ms_per_handshake', bareCpuMs, 'ms', ctx);
  const cpuRatio = (2 * bareCpuMs) / ghCpuMs;
  emit(BENCH, 'server_cpu_ratio_to_ceiling', cpuRatio, 'ratio', { ...ctx, note: '2 x bare TLS server CPU per handshake / Gatehouse CPU per device: the ratio to the ceiling if both were CPU-bound on a dedicated core; robust to machine noise' });
  emit(BENCH, 'aws_register_thing_quota_per_second', AWS_REGISTER_THING_PER_SECOND, '1/s', { note: 'AWS IoT default RegisterThing quota per account' });
  emit(BENCH, 'azure_dps_registrations_per_second', AZURE_DPS_PER_MINUTE / 60, '1/s', { note: 'Azure DPS 1,000 registrations per minute per instance' });

  say(`[${BENCH}] by-claim provisioning (claim → CSR → RegisterThing → reconnect → publish), ${client === 'lean' ? 'lean device client (bench/lean-fleet-device.ts)' : 'device SDK (src/device, MQTT.js)'}: ${round(devicesPerSecond)} devices/s (${done} ok, ${failed} failed; rounds ${fleets.map((f) => round(f.pool.completed / f.pool.seconds)).join(', ')}; concurrency ${concurrency})`);
  say(`[${BENCH}] per-device flow latency p50 ${round(percentile(flow, 50))} ms, p99 ${round(percentile(flow, 99))} ms`);
  say(`[${BENCH}] raw node:tls mTLS handshakes: ${round(handshakesPerSecond)} /s (rounds ${raws.map((x) => round(x.handshakesPerSecond)).join(', ')}) → ceiling ${round(ceiling)} devices/s`);
  say(`[${BENCH}] CPU: Gatehouse ${round(ghCpuMs)} ms per device, device simulator (${client}) ${round(clientCpuMs)} ms per device; bare TLS server ${round(bareCpuMs)} ms per handshake, raw client ${round(sum(raws.map((x) => x.clientCpuMsPerHandshake)) / raws.length)} ms per handshake`);
  say(`[${BENCH}] resumed TLS sessions: ${client === 'lean' ? resumedSessions : 'not counted (SDK)'} (device flows), ${sum(raws.map((x) => x.resumedSessions))} (raw)`);
  say(`[${BENCH}] server CPU ratio to ceiling (2 x bare / Gatehouse, noise-robust) ${round(cpuRatio)}`);
  say(`[${BENCH}] ratio to ceiling ${round(ratio)} (goal ≥ ${GOAL}: ${ratio >= GOAL ? 'met' : 'MISSED'}); for scale: AWS RegisterThing quota ${AWS_REGISTER_THING_PER_SECOND}/s per account, Azure DPS ${AZURE_DPS_PER_MINUTE}/min = ${round(AZURE_DPS_PER_MINUTE / 60)}/s per instance`);
  say(`[${BENCH}] load average ${ctx.loadavg.join(' ')} on ${ctx.cores} cores`);
  for (const e of [...new Set(fleets.flatMap((f) => [...f.pool.errors]))]) say(`  device error: ${e}`);
  for (const e of [...new Set(raws.flatMap((x) => [...x.pool.errors]))]) say(`  raw error: ${e}`);
} finally {
  await gh.destroy();
}

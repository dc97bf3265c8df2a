/**
 * Just-in-time provisioning (issue 6, "Performance"): N never-seen devices connect for the first time with
 * certificates signed by a device maker's CA (bring your own CA, registered through the API with proof of
 * possession, auto-registration on, a JITP template, first-connect mode `continue`). Each device: TLS handshake →
 * JITP (register certificate, thing, policy, attachments) → CONNACK → one QoS 1 publish allowed by the provisioned
 * policy → disconnect, with the same MQTT client code as bench/connect.ts. In the same run, raw `node:tls`
 * mutual-TLS handshakes/second with the same device certificates. Goals: provisioned devices/s ≥ 60% of the raw
 * handshake rate (one handshake per device) at high concurrency, and first-connect p99 < 50 ms at low concurrency.
 *
 *   npx tsx bench/jitp.ts [N] [--concurrency 16] [--latency-devices 50] [--rounds 4] [--warmup 2000] [--log-level warn]
 *
 * Passes (every device certificate is used once, so every device is never-seen):
 *   warm-up `--warmup` devices (default 2000, not counted: V8 is still optimizing the server's JITP path well after the
 *   first hundred devices) → latency pass: `--latency-devices` at concurrency 1 → throughput: N devices at
 *   `--concurrency`, alternated with the raw baseline over `--rounds` → diagnostic: the same N devices again, known.
 * Client TLS contexts are built before each timed pass, for both loads: a device builds its context once, at boot.
 * The bare TLS server (own process) has a fresh EC P-256 server certificate + issuing CA made with `src/pki`
 * (Gatehouse's listener key is sealed) and trusts the maker CA; device certificates are EC P-256, made in-process
 * with `createCertificateIssuer` over the maker CA key.
 *
 * stdout: one JSON line per measurement; stderr: the human summary.
 */
import { generateKeyPair } from '../src/pki/index.ts';
import { runMqttConnectLoad } from './mqtt-connect-load.ts';
import type { MqttConnectLoadResult } from './mqtt-connect-load.ts';
import {
  createBenchPki,
  createMakerCa,
  emit,
  intOption,
  issueClientIdentity,
  jitpBenchTemplate,
  machineLoad,
  measureRawHandshakes,
  parseArgs,
  percentile,
  prepareClientContexts,
  round,
  say,
  startGatehouse,
  str,
  warmupOption,
} from './support.ts';
import type { ClientIdentity, RawHandshakeResult } from './support.ts';

const BENCH = 'jitp';
const args = parseArgs(process.argv.slice(2));
const n = intOption(args, 'n', 1000, 0);
const concurrency = intOption(args, 'concurrency', 16);
const latencyDevices = intOption(args, 'latency-devices', 50);
const rounds = intOption(args, 'rounds', 4);
const logLevel = args.options.get('log-level') ?? 'warn';
/** Devices provisioned before anything is measured (JIT tier-up of the server's code; see the bench README). */
const WARM = warmupOption(args, 2000);
const RATIO_GOAL = 0.6;
const P99_GOAL_MS = 50;

const JITP_TEMPLATE = jitpBenchTemplate();

const gh = await startGatehouse({ logLevel });
try {
  // --- a maker CA registered with proof of possession, auto-registration + JITP template, first connect "continue"
  const maker = await createMakerCa('Bench Maker Device CA');
  const code = str((await gh.api('GET', '/v1/cas/registration-code')).body, 'registrationCode');
  const verification = maker.issuer.issue({ publicKey: generateKeyPair('EC_P256').spkiDer, subject: { CN: [code] }, extendedKeyUsage: 'clientAuth', validityDays: 1 });
  const reg = await gh.api('POST', '/v1/cas/register', { caCertificatePem: maker.certificate.pem, verificationCertificatePem: verification.pem, allowAutoRegistration: true, setAsActive: true });
  const caId = str(reg.body, 'caCertificateId');
  await gh.api('POST', '/v1/provisioning-templates', { templateName: 'bench-jitp', templateBody: JITP_TEMPLATE, type: 'JITP' });
  await gh.api('PATCH', `/v1/cas/${caId}`, { autoRegistrationStatus: 'ENABLE', registrationConfig: { templateName: 'bench-jitp' }, firstConnect: 'continue' });

  // --- never-seen device certificates, one per connection (CN = thing name = client id)
  const total = WARM + latencyDevices + n;
  const t0 = Date.now();
  const names = Array.from({ length: total }, (_, i) => `jitp-bench-${String(i).padStart(5, '0')}`);
  const devices: ClientIdentity[] = names.map((cn) => issueClientIdentity(maker.issuer, cn));
  say(`[${BENCH}] Gatehouse pid ${gh.pid ?? '?'} on 127.0.0.1:${gh.mqttPort}; maker CA ${caId.slice(0, 12)}… registered with proof of possession; ${total} device certificates made in ${round((Date.now() - t0) / 1000)} s`);

  const slice = (from: number, count: number): { clients: ClientIdentity[]; names: string[] } => ({ clients: devices.slice(from, from + count), names: names.slice(from, from + count) });
  const jitpLoad = async (from: number, count: number, conc: number): Promise<MqttConnectLoadResult> => {
    const s = slice(from, count);
    return runMqttConnectLoad({
      host: '127.0.0.1',
      port: gh.mqttPort,
      caPem: gh.rootCaPem,
      servername: 'localhost',
      clients: s.clients,
      count: s.clients.length,
      concurrency: conc,
      clientId: (i) => s.names[i] ?? `missing-${i}`,
      topic: (i) => `jitp/${s.names[i] ?? 'missing'}/hello`,
      timeLimitMs: 45_000,
      serverPid: gh.pid,
    });
  };

  if (WARM > 0) {
    const warm = await jitpLoad(0, WARM, Math.min(concurrency, WARM > 100 ? concurrency : 4));
    if (warm.pool.failed > 0) say(`[${BENCH}] warm-up failures: ${warm.pool.errors.join(' | ')}`);
  }

  // --- latency pass, concurrency 1 (client contexts built first, as in the throughput rounds)
  prepareClientContexts(devices.slice(WARM, WARM + latencyDevices), gh.rootCaPem);
  const lat = await jitpLoad(WARM, latencyDevices, 1);
  // diagnostic: the same devices again, now known (no JITP), concurrency 1: separates JITP from connect cost
  const known = await jitpLoad(WARM, latencyDevices, 1);

  // --- throughput passes alternated with the raw baseline
  const pki = await createBenchPki('jitp');
  const rawBase = { serverCertChainPem: pki.serverCertChainPem, serverKeyPem: pki.serverKeyPem, serverRootPem: pki.rootPem, clientCaPems: [maker.certificate.pem], timeLimitMs: 30_000 };
  const rawLow = await measureRawHandshakes({ ...rawBase, clients: devices.slice(WARM, WARM + latencyDevices), count: latencyDevices, concurrency: 1 });
  const raws: RawHandshakeResult[] = [];
  const loads: MqttConnectLoadResult[] = [];
  const perRound = Math.ceil(n / rounds);
  for (let r = 0; r < rounds; r += 1) {
    const from = WARM + latencyDevices + r * perRound;
    const count = Math.min(perRound, WARM + latencyDevices + n - from);
    // Both passes of the round get their client contexts built before they are timed (see prepareClientContexts).
    prepareClientContexts(devices.slice(from, from + count), pki.rootPem);
    prepareClientContexts(devices.slice(from, from + count), gh.rootCaPem);
    raws.push(await measureRawHandshakes({ ...rawBase, clients: devices.slice(from, from + count), count, concurrency }));
    loads.push(await jitpLoad(from, count, concurrency));
  }

  // diagnostic: the devices of the rounds again, now known, at the same concurrency: the connect cost without JITP
  const knownHigh = await jitpLoad(WARM + latencyDevices, n, concurrency);
  // --- one spot check through the API: the last device has its thing and an ACTIVE certificate
  const lastName = names[total - 1] ?? '';
  const thing = await gh.api('GET', `/v1/things/${lastName}`).then(() => 'found', (e: unknown) => `not found (${e instanceof Error ? e.message : String(e)})`);

  const sum = (xs: readonly number[]): number => xs.reduce((a, x) => a + x, 0);
  const done = sum(loads.map((x) => x.pool.completed));
  const failed = sum(loads.map((x) => x.pool.failed));
  const devicesPerSecond = done / sum(loads.map((x) => x.pool.seconds));
  const handshakesPerSecond = sum(raws.map((x) => x.pool.completed)) / sum(raws.map((x) => x.pool.seconds));
  const ratio = devicesPerSecond / handshakesPerSecond;
  const highConnack = loads.flatMap((x) => [...x.connackMs]);
  const ghCpuMs = sum(loads.map((x) => x.serverCpuMsPerConnect * x.pool.completed)) / Math.max(1, done);
  const bareCpuMs = sum(raws.map((x) => x.serverCpuMsPerHandshake)) / raws.length;
  const clientCpuMs = sum(loads.map((x) => x.clientCpuMsPerConnect * x.pool.completed)) / Math.max(1, done);
  const rawClientCpuMs = sum(raws.map((x) => x.clientCpuMsPerHandshake)) / raws.length;
  const ctx = { n: done + failed, rounds, concurrency, dialect: 'sqlite', logLevel, firstConnect: 'continue', tls: raws[0]?.protocol ?? '?', ...machineLoad() };
  const lowCtx = { ...ctx, n: latencyDevices, concurrency: 1, completed: lat.pool.completed, failed: lat.pool.failed };
  const p99Low = lat.connackP99Ms;

  emit(BENCH, 'provisioned_devices_per_second', devicesPerSecond, '1/s', { ...ctx, completed: done, failed, perRound: loads.map((x) => round(x.connectsPerSecond)) });
  emit(BENCH, 'first_connect_latency_p50_low_concurrency', lat.connackP50Ms, 'ms', lowCtx);
  emit(BENCH, 'first_connect_latency_p99_low_concurrency', p99Low, 'ms', { ...lowCtx, goal: P99_GOAL_MS, met: p99Low < P99_GOAL_MS });
  emit(BENCH, 'gatehouse_cpu_ms_per_device_low_concurrency', lat.serverCpuMsPerConnect, 'ms', lowCtx);
  emit(BENCH, 'known_device_connect_latency_p50_low_concurrency', known.connackP50Ms, 'ms', { ...lowCtx, completed: known.pool.completed, failed: known.pool.failed });
  emit(BENCH, 'known_device_connect_latency_p99_low_concurrency', known.connackP99Ms, 'ms', { ...lowCtx, completed: known.pool.completed, failed: known.pool.failed });
  emit(BENCH, 'first_connect_latency_p50_high_concurrency', percentile(highConnack, 50), 'ms', ctx);
  emit(BENCH, 'first_connect_latency_p99_high_concurrency', percentile(highConnack, 99), 'ms', ctx);
  emit(BENCH, 'raw_tls_handshakes_per_second', handshakesPerSecond, '1/s', { ...ctx, perRound: raws.map((x) => round(x.handshakesPerSecond)) });
  emit(BENCH, 'raw_tls_handshake_latency_p50_low_concurrency', rawLow.p50Ms, 'ms', { ...lowCtx, completed: rawLow.pool.completed, failed: rawLow.pool.failed });
  emit(BENCH, 'raw_tls_handshake_latency_p99_low_concurrency', rawLow.p99Ms, 'ms', { ...lowCtx, completed: rawLow.pool.completed, failed: rawLow.pool.failed });
  emit(BENCH, 'ratio_provisioned_to_handshakes', ratio, 'ratio', { ...ctx, goal: RATIO_GOAL, met: ratio >= RATIO_GOAL });
  emit(BENCH, 'gatehouse_cpu_ms_per_device', ghCpuMs, 'ms', ctx);
  emit(BENCH, 'bare_tls_server_cpu_ms_per_handshake', bareCpuMs, 'ms', ctx);
  emit(BENCH, 'client_cpu_ms_per_device', clientCpuMs, 'ms', { ...ctx, rawClientCpuMsPerHandshake: round(rawClientCpuMs) });
  emit(BENCH, 'known_device_connects_per_second_high_concurrency', knownHigh.connectsPerSecond, '1/s', { ...ctx, completed: knownHigh.pool.completed, failed: knownHigh.pool.failed });
  emit(BENCH, 'gatehouse_cpu_ms_per_known_connect_high_concurrency', knownHigh.serverCpuMsPerConnect, 'ms', ctx);
  const cpuRatio = bareCpuMs / ghCpuMs;
  emit(BENCH, 'server_cpu_ratio', cpuRatio, 'ratio', { ...ctx, note: 'bare TLS server CPU per handshake / Gatehouse CPU per provisioned device: the rate ratio if both were CPU-bound on a dedicated core; robust to machine noise' });

  say(`[${BENCH}] JITP first connect (continue mode) + publish: ${round(devicesPerSecond)} devices/s (${done} ok, ${failed} failed; rounds ${loads.map((x) => round(x.connectsPerSecond)).join(', ')}; concurrency ${concurrency})`);
  say(`[${BENCH}] first-connect latency (to CONNACK): concurrency 1 (${lat.pool.completed}/${latencyDevices} ok): p50 ${round(lat.connackP50Ms)} ms, p99 ${round(p99Low)} ms (goal < ${P99_GOAL_MS} ms: ${p99Low < P99_GOAL_MS ? 'met' : 'MISSED'}); concurrency ${concurrency}: p50 ${round(percentile(highConnack, 50))} ms, p99 ${round(percentile(highConnack, 99))} ms`);
  say(`[${BENCH}] diagnostic, concurrency 1: the same devices reconnecting once known (no JITP): p50 ${round(known.connackP50Ms)} ms, p99 ${round(known.connackP99Ms)} ms; Gatehouse CPU ${round(lat.serverCpuMsPerConnect)} ms per first connect vs ${round(known.serverCpuMsPerConnect)} ms per known connect`);
  say(`[${BENCH}] raw node:tls mTLS handshakes: ${round(handshakesPerSecond)} /s (rounds ${raws.map((x) => round(x.handshakesPerSecond)).join(', ')}); at concurrency 1: p50 ${round(rawLow.p50Ms)} ms, p99 ${round(rawLow.p99Ms)} ms`);
  say(`[${BENCH}] CPU: Gatehouse ${round(ghCpuMs)} ms per provisioned device; bare TLS server ${round(bareCpuMs)} ms per handshake`);
  say(`[${BENCH}] client CPU: ${round(clientCpuMs)} ms per JITP device; raw client ${round(rawClientCpuMs)} ms per handshake (client contexts built before each timed pass)`);
  say(`[${BENCH}] diagnostic, concurrency ${concurrency}: the same devices reconnecting once known: ${round(knownHigh.connectsPerSecond)} connects/s, Gatehouse CPU ${round(knownHigh.serverCpuMsPerConnect)} ms per connect (${knownHigh.pool.failed} failed)`);
  say(`[${BENCH}] server CPU ratio (bare/Gatehouse, noise-robust) ${round(cpuRatio)}`);
  say(`[${BENCH}] ratio ${round(ratio)} (goal ≥ ${RATIO_GOAL}: ${ratio >= RATIO_GOAL ? 'met' : 'MISSED'}); spot check ${lastName}: ${thing}; load average ${ctx.loadavg.join(' ')} on ${ctx.cores} cores`);
  for (const e of [...new Set([...lat.pool.errors, ...known.pool.errors, ...loads.flatMap((x) => [...x.pool.errors])])]) say(`  device error: ${e}`);
  for (const e of [...new Set(raws.flatMap((x) => [...x.pool.errors]))]) say(`  raw error: ${e}`);
} finally {
  await gh.destroy();
}

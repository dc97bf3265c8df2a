/**
 * Gateway connect rate (issue 4, "Performance"): N mTLS MQTT connections (CONNECT → CONNACK → one QoS 1 publish →
 * disconnect) with bounded concurrency against a real `gatehouse serve` (SQLite, loopback), next to raw `node:tls`
 * mutual-TLS handshakes per second against a bare TLS server, measured in the same run. Goal: MQTT connects/s ≥ 70%
 * of raw handshakes/s.
 *
 *   npx tsx bench/connect.ts [N] [--certs 200] [--concurrency 16] [--rounds 4] [--warmup 300] [--log-level warn] [--workers 1]
 *       [--client lean|mqttjs] [--compare-clients]
 *
 * Client certificates: `--certs` distinct EC P-256 device certificates issued by Gatehouse (`POST
 * /v1/certificates/from-csr`, ACTIVE, a permissive policy attached), used round-robin with a distinct client id per
 * connection. The raw baseline uses those same client certificates (the bare server trusts Gatehouse's root and
 * issuing CA); its server certificate + issuing CA are a fresh EC P-256 hierarchy made with `src/pki`, because
 * Gatehouse's listener key is sealed in its data dir (same algorithm, same chain shape: leaf + issuing CA).
 * The measurement alternates raw / MQTT `--rounds` times and sums them, to spread the noise of a shared machine.
 * `--warmup` connections (default 300, not counted) come first: the server's code tiers up in the JIT over the first
 * few hundred connections (the rounds of a run without it rose from 186 to 237/s).
 *
 * Client: `lean` (default, bench/lean-mqtt-client.ts) opens its TLS connection exactly like the raw baseline client
 * (same prebuilt context, same servername, full handshake), so the ratio compares servers and not client libraries;
 * `--client mqttjs` uses MQTT.js instead. `--workers N` starts the server with GATEHOUSE_WORKERS=N (node:cluster
 * primary + N workers, Redis bus on 127.0.0.1:6379); the server CPU is summed over its whole process tree.
 * `--compare-clients` also runs the other client in every round (the order alternates) and prints a paired
 * comparison of the client CPU per connection: lean, MQTT.js and the raw handshake client, on the same server.
 *
 * stdout: one JSON line per measurement; stderr: the human summary.
 */
import { createCsr, generateKeyPair } from '../src/pki/index.ts';
import { parseMqttLoadClient, runMqttConnectLoad } from './mqtt-connect-load.ts';
import type { MqttConnectLoadResult, MqttLoadClient } from './mqtt-connect-load.ts';
import {
  PERMISSIVE_POLICY,
  createBenchPki,
  emit,
  intOption,
  findProcessesByName,
  machineLoad,
  measureRawHandshakes,
  parseArgs,
  percentile,
  processTreeCpuSeconds,
  round,
  runPool,
  say,
  startGatehouse,
  str,
  warmupOption,
} from './support.ts';
import type { ClientIdentity, GatehouseProcess, RawHandshakeResult } from './support.ts';

const BENCH = 'connect';
const args = parseArgs(process.argv.slice(2));
const n = intOption(args, 'n', 1000, 0);
const certCount = Math.min(intOption(args, 'certs', 200), n);
const concurrency = intOption(args, 'concurrency', 16);
const rounds = intOption(args, 'rounds', 4);
const WARM = warmupOption(args, 300);
const logLevel = args.options.get('log-level') ?? 'warn';
const workers = intOption(args, 'workers', 1);
const client = parseMqttLoadClient(args.options.get('client'));
const compareClients = args.options.has('compare-clients');
const otherClient: MqttLoadClient = client === 'lean' ? 'mqttjs' : 'lean';
const GOAL = 0.7;

/** Issues `count` device certificates through the API, ACTIVE, with the permissive policy attached. */
async function issueDeviceCertificates(gh: GatehouseProcess, count: number): Promise<{ clients: ClientIdentity[]; chainPem: string }> {
  await gh.api('POST', '/v1/policies', { policyName: 'bench-all', policyDocument: PERMISSIVE_POLICY });
  const clients: ClientIdentity[] = new Array<ClientIdentity>(count);
  let chainPem = '';
  const pool = await runPool(count, 8, 120_000, async (i) => {
    const keys = generateKeyPair('EC_P256');
    const csr = createCsr({ privateKeyPem: keys.privateKeyPem, subject: { CN: [`bench-device-${i}`] } });
    const r = await gh.api('POST', '/v1/certificates/from-csr', { certificateSigningRequest: csr, setAsActive: true });
    const certificateId = str(r.body, 'certificateId');
    chainPem = str(r.body, 'certificateChainPem');
    await gh.api('POST', '/v1/policies/bench-all/attach', { target: certificateId });
    clients[i] = { certPem: str(r.body, 'certificatePem'), keyPem: keys.privateKeyPem };
  });
  if (pool.completed !== count) throw new Error(`issued ${pool.completed}/${count} device certificates: ${pool.errors.join(' | ')}`);
  return { clients, chainPem };
}

const gh = await startGatehouse({ logLevel, workers });
try {
  const t0 = Date.now();
  const { clients, chainPem } = await issueDeviceCertificates(gh, certCount);
  say(`[${BENCH}] Gatehouse pid ${gh.pid ?? '?'} (GATEHOUSE_WORKERS=${workers}, ${client} client) on 127.0.0.1:${gh.mqttPort}; issued ${certCount} device certificates in ${round((Date.now() - t0) / 1000)} s`);
  const pki = await createBenchPki('connect');
  const mqttBase = {
    host: '127.0.0.1',
    port: gh.mqttPort,
    caPem: gh.rootCaPem,
    servername: 'localhost',
    clients,
    concurrency,
    clientId: (i: number) => `bench-${i}`,
    topic: (i: number) => `bench/${i}/telemetry`,
    timeLimitMs: 45_000,
    serverPid: gh.pid,
    client,
  };
  const rawBase = {
    serverCertChainPem: pki.serverCertChainPem,
    serverKeyPem: pki.serverKeyPem,
    serverRootPem: pki.rootPem,
    clientCaPems: [gh.rootCaPem, chainPem],
    clients,
    concurrency,
    timeLimitMs: 30_000,
  };
  // warm-up of the gateway (JIT, caches), not counted
  if (WARM > 0) await runMqttConnectLoad({ ...mqttBase, count: WARM, clientId: (i) => `warm-${i}` });
  if (compareClients && WARM > 0) await runMqttConnectLoad({ ...mqttBase, client: otherClient, count: WARM, clientId: (i) => `warm-o-${i}` });

  const raws: RawHandshakeResult[] = [];
  const mqtts: MqttConnectLoadResult[] = [];
  const others: MqttConnectLoadResult[] = [];
  const perRound = Math.ceil(n / rounds);
  // With workers the Redis bus is part of the server, but not of its process tree: its CPU during the MQTT rounds is
  // reported apart (a diagnostic: the Redis on 127.0.0.1:6379 may also serve other users of the machine).
  const redisPid = workers > 1 ? findProcessesByName('redis-server')[0] : undefined;
  let redisSeconds = 0;
  for (let r = 0; r < rounds; r += 1) {
    raws.push(await measureRawHandshakes({ ...rawBase, count: perRound }));
    const other = async (): Promise<void> => {
      if (compareClients) others.push(await runMqttConnectLoad({ ...mqttBase, client: otherClient, count: perRound, clientId: (i) => `bench-${r}-o-${i}` }));
    };
    if (r % 2 === 1) await other();
    const redis0 = processTreeCpuSeconds(redisPid);
    mqtts.push(await runMqttConnectLoad({ ...mqttBase, count: perRound, clientId: (i) => `bench-${r}-${i}` }));
    redisSeconds += processTreeCpuSeconds(redisPid) - redis0;
    if (r % 2 === 0) await other();
  }
  const rawDone = raws.reduce((a, x) => a + x.pool.completed, 0);
  const rawSeconds = raws.reduce((a, x) => a + x.pool.seconds, 0);
  const mqttDone = mqtts.reduce((a, x) => a + x.pool.completed, 0);
  const mqttFailed = mqtts.reduce((a, x) => a + x.pool.failed, 0);
  const mqttSeconds = mqtts.reduce((a, x) => a + x.pool.seconds, 0);
  const handshakesPerSecond = rawDone / rawSeconds;
  const connectsPerSecond = mqttDone / mqttSeconds;
  const connack = mqtts.flatMap((x) => [...x.connackMs]);
  const ratio = connectsPerSecond / handshakesPerSecond;
  const avg = (xs: readonly number[]): number => xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length);
  const cpu = {
    gatehouseCpuMsPerConnect: round(avg(mqtts.map((x) => x.serverCpuMsPerConnect))),
    clientCpuMsPerConnect: round(avg(mqtts.map((x) => x.clientCpuMsPerConnect))),
    bareServerCpuMsPerHandshake: round(avg(raws.map((x) => x.serverCpuMsPerHandshake))),
    clientCpuMsPerHandshake: round(avg(raws.map((x) => x.clientCpuMsPerHandshake))),
  };
  const ctx = {
    n: perRound * rounds,
    rounds,
    concurrency,
    certificates: certCount,
    clientIds: 'distinct per connection',
    dialect: 'sqlite',
    logLevel,
    client,
    workers,
    serverProcesses: Math.max(...mqtts.map((x) => x.serverProcesses)),
    resumedSessions: raws.reduce((a, x) => a + x.resumedSessions, 0) + mqtts.reduce((a, x) => a + x.resumedSessions, 0),
    tls: raws[0]?.protocol ?? '?',
    ...machineLoad(),
  };
  emit(BENCH, 'mqtt_connects_per_second', connectsPerSecond, '1/s', { ...ctx, completed: mqttDone, failed: mqttFailed, perRound: mqtts.map((x) => round(x.connectsPerSecond)) });
  emit(BENCH, 'connack_latency_p50', percentile(connack, 50), 'ms', ctx);
  emit(BENCH, 'connack_latency_p99', percentile(connack, 99), 'ms', ctx);
  emit(BENCH, 'raw_tls_handshakes_per_second', handshakesPerSecond, '1/s', { ...ctx, completed: rawDone, failed: raws.reduce((a, x) => a + x.pool.failed, 0), perRound: raws.map((x) => round(x.handshakesPerSecond)) });
  emit(BENCH, 'ratio_connects_to_handshakes', ratio, 'ratio', { ...ctx, goal: GOAL, met: ratio >= GOAL });
  const byProcess = mqtts.map((x) => x.serverCpuMsPerConnectByProcess);
  emit(BENCH, 'gatehouse_cpu_ms_per_connect', cpu.gatehouseCpuMsPerConnect, 'ms', { ...ctx, byProcessPerRound: byProcess });
  emit(BENCH, 'bare_tls_server_cpu_ms_per_handshake', cpu.bareServerCpuMsPerHandshake, 'ms', ctx);
  if (redisPid !== undefined) emit(BENCH, 'redis_cpu_ms_per_connect', (redisSeconds * 1000) / Math.max(1, mqttDone), 'ms', { ...ctx, note: 'redis-server CPU during the MQTT rounds (not in the server CPU ratio; that Redis may have other users)' });
  emit(BENCH, 'client_cpu_ms_per_connect', cpu.clientCpuMsPerConnect, 'ms', ctx);
  emit(BENCH, 'client_cpu_ms_per_raw_handshake', cpu.clientCpuMsPerHandshake, 'ms', ctx);
  const cpuRatio = cpu.bareServerCpuMsPerHandshake / cpu.gatehouseCpuMsPerConnect;
  emit(BENCH, 'server_cpu_ratio', cpuRatio, 'ratio', { ...ctx, note: 'bare TLS server CPU per handshake / Gatehouse CPU per connection: the rate ratio if both were CPU-bound on a dedicated core; robust to machine noise' });
  say(`[${BENCH}] MQTT connect+publish+disconnect: ${round(connectsPerSecond)} /s (${mqttDone} ok, ${mqttFailed} failed; rounds ${mqtts.map((x) => round(x.connectsPerSecond)).join(', ')})`);
  say(`[${BENCH}] CONNACK latency p50 ${round(percentile(connack, 50))} ms, p99 ${round(percentile(connack, 99))} ms (concurrency ${concurrency})`);
  say(`[${BENCH}] raw node:tls mTLS handshakes: ${round(handshakesPerSecond)} /s (rounds ${raws.map((x) => round(x.handshakesPerSecond)).join(', ')}; ${ctx.tls})`);
  say(`[${BENCH}] CPU per connection: Gatehouse ${cpu.gatehouseCpuMsPerConnect} ms over ${ctx.serverProcesses} process(es) (${client} client ${cpu.clientCpuMsPerConnect} ms); bare TLS server ${cpu.bareServerCpuMsPerHandshake} ms per handshake (raw client ${cpu.clientCpuMsPerHandshake} ms); resumed TLS sessions ${ctx.resumedSessions}`);
  say(`[${BENCH}] server CPU ratio (bare/Gatehouse, noise-robust) ${round(cpuRatio)}`);
  if (redisPid !== undefined) say(`[${BENCH}] redis-server (pid ${redisPid}, not counted above) CPU ${round((redisSeconds * 1000) / Math.max(1, mqttDone))} ms per connect during the MQTT rounds`);
  if (ctx.serverProcesses > 1) say(`[${BENCH}] Gatehouse CPU ms per connect by process (primary first), per round: ${byProcess.map((b) => JSON.stringify(b)).join(' ')}`);
  say(`[${BENCH}] ratio ${round(ratio)} (goal ≥ ${GOAL}: ${ratio >= GOAL ? 'met' : 'MISSED'}); load average ${ctx.loadavg.join(' ')} on ${ctx.cores} cores`);
  if (compareClients) {
    const done = (xs: readonly MqttConnectLoadResult[]): number => xs.reduce((a, x) => a + x.pool.completed, 0);
    const perConnect = (xs: readonly MqttConnectLoadResult[], f: (x: MqttConnectLoadResult) => number): number => xs.reduce((a, x) => a + f(x) * x.pool.completed, 0) / Math.max(1, done(xs));
    const side = (xs: readonly MqttConnectLoadResult[]): Record<string, number> => ({
      connectsPerSecond: round(done(xs) / xs.reduce((a, x) => a + x.pool.seconds, 0)),
      clientCpuMsPerConnect: round(perConnect(xs, (x) => x.clientCpuMsPerConnect)),
      gatehouseCpuMsPerConnect: round(perConnect(xs, (x) => x.serverCpuMsPerConnect)),
      failed: xs.reduce((a, x) => a + x.pool.failed, 0),
    });
    const comparison = { [client]: side(mqtts), [otherClient]: side(others), raw: { clientCpuMsPerHandshake: cpu.clientCpuMsPerHandshake } };
    emit(BENCH, 'client_comparison', perConnect(others, (x) => x.clientCpuMsPerConnect) - perConnect(mqtts, (x) => x.clientCpuMsPerConnect), 'ms', { ...ctx, note: `client CPU per connection, ${otherClient} minus ${client}, same server, same rounds`, ...comparison });
    say(`[${BENCH}] client comparison (same server, alternating order): ${JSON.stringify(comparison)}`);
  }
  for (const e of [...new Set([...mqtts, ...others].flatMap((x) => [...x.pool.errors]))]) say(`  mqtt error: ${e}`);
  for (const e of [...new Set(raws.flatMap((x) => [...x.pool.errors]))]) say(`  raw error: ${e}`);
} finally {
  await gh.destroy();
}

/**
 * The floor under bench/connect.ts: the same MQTT load (mTLS connect → CONNACK → QoS 1 publish → PUBACK →
 * disconnect, lean client) against a bare aedes broker over `node:tls` — no authentication, no policies, no
 * events, no database — next to raw `node:tls` mutual-TLS handshakes against the same bare server without MQTT,
 * in the same run and with the same certificates (bench/raw-tls-server.ts, with and without `--aedes`).
 *
 * Gatehouse's gateway is aedes plus its own checks: when aedes alone already stays under 70% of the raw handshake
 * rate, the connect goal of issue 4 is bounded by the broker library, not by Gatehouse's code. Compare the CPU per
 * connection printed here with bench/connect.ts's.
 *
 *   npx tsx bench/aedes-floor.ts [N] [--concurrency 16] [--rounds 4]
 *
 * stdout: one JSON line per measurement; stderr: the human summary.
 */
import { runMqttConnectLoad } from './mqtt-connect-load.ts';
import { createBenchPki, emit, intOption, machineLoad, measureRawHandshakes, parseArgs, round, say, startRawTlsServer } from './support.ts';

const BENCH = 'aedes-floor';
const args = parseArgs(process.argv.slice(2));
const n = intOption(args, 'n', 1000, 0);
const concurrency = intOption(args, 'concurrency', 16);
const rounds = intOption(args, 'rounds', 4);

/** Sums of the rounds of one side: operations, wall seconds, and CPU ms of server and client. */
interface Totals {
  count: number;
  seconds: number;
  serverCpuMs: number;
  clientCpuMs: number;
}

function add(t: Totals, done: number, perSecond: number, serverCpuMsEach: number, clientCpuMsEach: number): void {
  t.count += done;
  t.seconds += done / perSecond;
  t.serverCpuMs += serverCpuMsEach * done;
  t.clientCpuMs += clientCpuMsEach * done;
}

const pki = await createBenchPki('aedes-floor');
const clients = Array.from({ length: 50 }, (_, i) => pki.issueClient(`floor-device-${i}`));
const aedesServer = await startRawTlsServer(pki, 'aedes');
try {
  const per = Math.max(1, Math.floor(n / rounds));
  const raw: Totals = { count: 0, seconds: 0, serverCpuMs: 0, clientCpuMs: 0 };
  const mqtt: Totals = { count: 0, seconds: 0, serverCpuMs: 0, clientCpuMs: 0 };
  for (let r = 0; r < rounds; r++) {
    const h = await measureRawHandshakes({ ...pki, serverRootPem: pki.rootPem, clients, count: per, concurrency });
    add(raw, h.pool.completed, h.handshakesPerSecond, h.serverCpuMsPerHandshake, h.clientCpuMsPerHandshake);
    const m = await runMqttConnectLoad({
      host: '127.0.0.1',
      port: aedesServer.port,
      caPem: pki.rootPem,
      servername: 'localhost',
      clients,
      count: per,
      concurrency,
      clientId: (i) => `floor-${r}-${i}`,
      topic: (i) => `floor/${i}`,
      serverPid: aedesServer.pid,
    });
    add(mqtt, m.pool.completed, m.connectsPerSecond, m.serverCpuMsPerConnect, m.clientCpuMsPerConnect);
    say(`[${BENCH}] round ${r + 1}: raw ${round(h.handshakesPerSecond)} handshakes/s, bare aedes ${round(m.connectsPerSecond)} connects/s (${m.pool.failed} failed)`);
  }
  const rawRate = raw.count / raw.seconds;
  const mqttRate = mqtt.count / mqtt.seconds;
  const rawServerCpu = raw.serverCpuMs / raw.count;
  const aedesServerCpu = mqtt.serverCpuMs / mqtt.count;
  emit(BENCH, 'raw_handshakes_per_second', round(rawRate), '1/s', { handshakes: raw.count, concurrency });
  emit(BENCH, 'bare_aedes_connects_per_second', round(mqttRate), '1/s', { connects: mqtt.count, concurrency });
  emit(BENCH, 'ratio', round(mqttRate / rawRate), 'ratio', { goal_of_issue_4: 0.7 });
  emit(BENCH, 'server_cpu_ms', round(aedesServerCpu), 'ms', { per: 'connect', bare_tls_server_ms_per_handshake: round(rawServerCpu) });
  emit(BENCH, 'server_cpu_ratio', round(rawServerCpu / aedesServerCpu), 'ratio', {});
  say(`[${BENCH}] bare aedes over node:tls ${round(mqttRate)} connects/s vs raw ${round(rawRate)} handshakes/s: ratio ${round(mqttRate / rawRate)}`);
  say(`[${BENCH}] CPU per connection: bare aedes server ${round(aedesServerCpu)} ms (client ${round(mqtt.clientCpuMs / mqtt.count)} ms); bare TLS server ${round(rawServerCpu)} ms per handshake (client ${round(raw.clientCpuMs / raw.count)} ms)`);
  say(`[${BENCH}] server CPU ratio (bare TLS / bare aedes) ${round(rawServerCpu / aedesServerCpu)}; load average ${machineLoad().loadavg.join(' ')}`);
} finally {
  await aedesServer.stop();
}

/**
 * The MQTT connect load shared by bench/connect.ts, bench/jitp.ts and bench/mosquitto-connect.sh, so that Gatehouse
 * and Mosquitto see identical client code: N times (bounded concurrency, bounded time) a client opens an MQTT 3.1.1
 * connection over mutual TLS (fresh TLS handshake, no session resumption), waits for CONNACK, publishes one QoS 1
 * message, waits for PUBACK and disconnects.
 *
 * Two clients: `lean` (default, bench/lean-mqtt-client.ts: hand-encoded packets over the same `tls.connect` as the
 * raw handshake baseline, so both sides of the connect/handshake ratio pay the same client-side TLS work and little
 * else) and `mqttjs` (MQTT.js, a real-world client library that costs 0.2–0.55 ms more client CPU per connection).
 * The server's CPU is that of its whole process tree (a node:cluster primary and its workers).
 *
 * As a command (prints one JSON line per measurement on stdout and a summary on stderr):
 *
 *   npx tsx bench/mqtt-connect-load.ts --port P --ca ca.pem --cert-dir dir [--host 127.0.0.1] [--servername localhost]
 *       [--n 1000] [--concurrency 16] [--label mosquitto] [--time-limit-s 60] [--server-pid PID] [--client lean|mqttjs]
 *
 * `--cert-dir` holds client-*.pem with the matching client-*.key; they are used round-robin with distinct client ids.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import mqtt from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { SecureContext } from 'node:tls';
import { runLeanMqttCycle } from './lean-mqtt-client.ts';
import { clientSecureContext, emit, intOption, machineLoad, ownCpuSeconds, parseArgs, percentile, processTreeCpuDelta, readProcessTreeCpu, round, runPool, say } from './support.ts';
import type { ClientIdentity, PoolResult } from './support.ts';

/** The MQTT client implementations of the load: `lean` (bench/lean-mqtt-client.ts, the default) and `mqttjs` (MQTT.js). */
export const MQTT_LOAD_CLIENTS = ['lean', 'mqttjs'] as const;
/** One of {@link MQTT_LOAD_CLIENTS}. */
export type MqttLoadClient = (typeof MQTT_LOAD_CLIENTS)[number];

/** Parses a `--client` value (default `lean`). */
export function parseMqttLoadClient(text: string | undefined): MqttLoadClient {
  if (text === undefined) return 'lean';
  const found = MQTT_LOAD_CLIENTS.find((c) => c === text);
  if (found === undefined) throw new Error(`--client must be one of ${MQTT_LOAD_CLIENTS.join(', ')}, got "${text}"`);
  return found;
}

/** Options of {@link runMqttConnectLoad}. */
export interface MqttConnectLoadOptions {
  readonly host: string;
  readonly port: number;
  readonly caPem: string;
  readonly servername: string;
  /** Client identities, used round-robin (`i % clients.length`). */
  readonly clients: readonly ClientIdentity[];
  /** Number of connections. */
  readonly count: number;
  readonly concurrency: number;
  /** MQTT client id of connection i. */
  readonly clientId: (i: number) => string;
  /** Topic of the one QoS 1 publish of connection i. */
  readonly topic: (i: number) => string;
  /** No connection starts after this (default 60 s). */
  readonly timeLimitMs?: number;
  /** Per-connection timeout for CONNACK and for PUBACK (default 15 s). */
  readonly timeoutMs?: number;
  /** The broker's pid, to report the CPU time per connection of it and its descendants (Linux /proc). */
  readonly serverPid?: number | undefined;
  /** Client implementation (default `lean`). */
  readonly client?: MqttLoadClient;
}

/** Result of {@link runMqttConnectLoad}. */
export interface MqttConnectLoadResult {
  readonly pool: PoolResult;
  /** Completed connect+publish+disconnect cycles per second of wall time. */
  readonly connectsPerSecond: number;
  /** Time from `mqtt.connect` to CONNACK (TCP + TLS handshake + CONNECT), ms. */
  readonly connackP50Ms: number;
  readonly connackP99Ms: number;
  /** Time of the whole cycle (to the closed socket), ms. */
  readonly cycleP50Ms: number;
  readonly cycleP99Ms: number;
  readonly connackMs: readonly number[];
  /** CPU time per completed cycle of the broker's process tree (NaN without `serverPid`) and of this client process, ms. */
  readonly serverCpuMsPerConnect: number;
  readonly clientCpuMsPerConnect: number;
  /** The client implementation used. */
  readonly client: MqttLoadClient;
  /** Number of processes of the broker's tree at the end (1 for a single process; primary + workers otherwise). */
  readonly serverProcesses: number;
  /** CPU ms per completed cycle of each process of the broker's tree, keyed `<comm>:<pid>`, the root first. */
  readonly serverCpuMsPerConnectByProcess: Readonly<Record<string, number>>;
  /** Connections that resumed a TLS session (expected 0; counted by the lean client only). */
  readonly resumedSessions: number;
}

function openClient(o: MqttConnectLoadOptions, i: number, identity: ClientIdentity): Promise<MqttClient> {
  const timeoutMs = o.timeoutMs ?? 15_000;
  // The TLS context (CA, certificate, key) is built once per identity and passed through to tls.connect, exactly as
  // the raw handshake baseline does; MQTT.js forwards unknown options to tls.connect.
  const options: IClientOptions & { secureContext: SecureContext } = {
    protocol: 'mqtts',
    host: o.host,
    port: o.port,
    servername: o.servername,
    secureContext: clientSecureContext(identity, o.caPem),
    clientId: o.clientId(i),
    protocolVersion: 4,
    clean: true,
    keepalive: 60,
    reconnectPeriod: 0,
    connectTimeout: timeoutMs,
    rejectUnauthorized: true,
  };
  const client = mqtt.connect(options);
  return new Promise<MqttClient>((resolve, reject) => {
    const cleanup = (): void => {
      client.removeListener('connect', onConnect);
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
    };
    const onConnect = (): void => {
      cleanup();
      client.on('error', () => undefined); // MQTT.js may report ECONNRESET after end()
      resolve(client);
    };
    const onError = (error: Error): void => {
      cleanup();
      client.end(true);
      reject(error);
    };
    const onClose = (): void => onError(new Error('connection closed before CONNACK'));
    client.once('connect', onConnect);
    client.once('error', onError);
    client.once('close', onClose);
  });
}

/** One MQTT.js cycle; returns the CONNACK time, ms. */
async function mqttJsCycle(o: MqttConnectLoadOptions, i: number, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  const client = await openClient(o, i, o.clients[i % o.clients.length] as ClientIdentity);
  const connackMs = performance.now() - t0;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.publishAsync(o.topic(i), `{"i":${i}}`, { qos: 1 }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`PUBACK timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    await client.endAsync().catch(() => client.end(true));
  }
  return connackMs;
}

/** Runs the connect → CONNACK → QoS 1 publish → disconnect load and measures it. */
export async function runMqttConnectLoad(o: MqttConnectLoadOptions): Promise<MqttConnectLoadResult> {
  if (o.clients.length === 0) throw new Error('runMqttConnectLoad needs at least one client identity');
  const timeoutMs = o.timeoutMs ?? 15_000;
  const kind = o.client ?? 'lean';
  const connack: number[] = [];
  const cycle: number[] = [];
  let resumedSessions = 0;
  const server0 = readProcessTreeCpu(o.serverPid); // the /proc scan happens before the client clock starts
  const client0 = ownCpuSeconds();
  const pool = await runPool(o.count, o.concurrency, o.timeLimitMs ?? 60_000, async (i) => {
    if (kind === 'lean') {
      const r = await runLeanMqttCycle({
        target: { host: o.host, port: o.port, servername: o.servername, caPem: o.caPem, identity: o.clients[i % o.clients.length] as ClientIdentity },
        clientId: o.clientId(i),
        topic: o.topic(i),
        payload: Buffer.from(`{"i":${i}}`),
        keepAliveSeconds: 60,
        timeoutMs,
      });
      connack.push(r.connackMs);
      cycle.push(r.cycleMs);
      if (r.resumed) resumedSessions += 1;
      return;
    }
    const t0 = performance.now();
    connack.push(await mqttJsCycle(o, i, timeoutMs));
    cycle.push(performance.now() - t0);
  });
  const clientCpuSeconds = ownCpuSeconds() - client0; // before the /proc scan, which is not client work
  const server = readProcessTreeCpu(o.serverPid);
  return {
    pool,
    connectsPerSecond: pool.completed / pool.seconds,
    connackP50Ms: percentile(connack, 50),
    connackP99Ms: percentile(connack, 99),
    cycleP50Ms: percentile(cycle, 50),
    cycleP99Ms: percentile(cycle, 99),
    connackMs: connack,
    serverCpuMsPerConnect: ((server.seconds - server0.seconds) * 1000) / Math.max(1, pool.completed),
    clientCpuMsPerConnect: (clientCpuSeconds * 1000) / Math.max(1, pool.completed),
    client: kind,
    serverProcesses: server.pids.length,
    serverCpuMsPerConnectByProcess: Object.fromEntries(Object.entries(processTreeCpuDelta(server0, server)).map(([k, v]) => [k, round((v * 1000) / Math.max(1, pool.completed))])),
    resumedSessions,
  };
}

/** Reads client-*.pem / client-*.key pairs of a directory. */
export function readClientDir(dir: string): ClientIdentity[] {
  return readdirSync(dir)
    .filter((f) => /^client-.*\.pem$/.test(f))
    .sort()
    .map((f) => ({ certPem: readFileSync(path.join(dir, f), 'utf8'), keyPem: readFileSync(path.join(dir, f.replace(/\.pem$/, '.key')), 'utf8') }));
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const need = (k: string): string => {
    const v = args.options.get(k);
    if (v === undefined) throw new Error(`--${k} is required`);
    return v;
  };
  const label = args.options.get('label') ?? 'broker';
  const clients = readClientDir(need('cert-dir'));
  const count = intOption(args, 'n', 1000);
  const concurrency = intOption(args, 'concurrency', 16);
  const base = {
    host: args.options.get('host') ?? '127.0.0.1',
    port: intOption(args, 'port', 8883),
    caPem: readFileSync(need('ca'), 'utf8'),
    servername: args.options.get('servername') ?? 'localhost',
    clients,
    concurrency,
    clientId: (i: number) => `bench-${i}`,
    topic: (i: number) => `bench/${i}/telemetry`,
    timeLimitMs: intOption(args, 'time-limit-s', 60) * 1000,
    serverPid: args.options.has('server-pid') ? intOption(args, 'server-pid', 1) : undefined,
    client: parseMqttLoadClient(args.options.get('client')),
  };
  await runMqttConnectLoad({ ...base, count: Math.min(50, count), concurrency: Math.min(concurrency, 8) }); // warm-up
  const r = await runMqttConnectLoad({ ...base, count });
  const ctx = { target: label, client: r.client, serverProcesses: r.serverProcesses, resumedSessions: r.resumedSessions, n: count, concurrency, certificates: clients.length, completed: r.pool.completed, failed: r.pool.failed, timedOut: r.pool.timedOut, ...machineLoad() };
  emit('mqtt-connect-load', 'mqtt_connects_per_second', r.connectsPerSecond, '1/s', ctx);
  emit('mqtt-connect-load', 'connack_latency_p50', r.connackP50Ms, 'ms', ctx);
  emit('mqtt-connect-load', 'connack_latency_p99', r.connackP99Ms, 'ms', ctx);
  emit('mqtt-connect-load', 'broker_cpu_ms_per_connect', r.serverCpuMsPerConnect, 'ms', ctx);
  emit('mqtt-connect-load', 'client_cpu_ms_per_connect', r.clientCpuMsPerConnect, 'ms', ctx);
  say(`${label} (${r.client} client): ${round(r.connectsPerSecond)} connects/s (${r.pool.completed}/${count} ok, ${r.pool.failed} failed, concurrency ${concurrency}, ${clients.length} certificates), CONNACK p50 ${round(r.connackP50Ms)} ms p99 ${round(r.connackP99Ms)} ms; CPU per connect: broker ${round(r.serverCpuMsPerConnect)} ms, client ${round(r.clientCpuMsPerConnect)} ms`);
  if (r.pool.errors.length > 0) say(`  errors: ${r.pool.errors.join(' | ')}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();

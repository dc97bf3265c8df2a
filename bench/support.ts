/**
 * Shared helpers of the connect / fleet / JITP benchmarks: argument parsing, a bounded worker pool, percentiles,
 * JSON-line output, a real `gatehouse serve` process on loopback (SQLite in a temp data dir), a throw-away EC P-256
 * PKI made with `src/pki`, and the raw `node:tls` mutual-TLS handshake baseline against a bare TLS server running in
 * its own process (bench/raw-tls-server.ts), so that it has the same process topology as the Gatehouse server.
 *
 * Benchmarks are not tests: they bind to 127.0.0.1 only and every loop is bounded in count and in time.
 */
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect, createSecureContext } from 'node:tls';
import type { SecureContext, TLSSocket } from 'node:tls';
import {
  EncryptedKeyStore,
  InMemoryKeyBlobRepository,
  createCertificateIssuer,
  createIntermediateCa,
  createRootCa,
  createServerCertificate,
  generateKek,
  generateKeyPair,
} from '../src/pki/index.ts';
import type { CertificateIssuer, ParsedCertificate } from '../src/pki/index.ts';

/** Repository root (the Gatehouse server is started from here). */
export const REPO = path.resolve(import.meta.dirname, '..');

// ---------------------------------------------------------------------------------------------------------------
// Arguments and output
// ---------------------------------------------------------------------------------------------------------------

/** `--key value` / `--flag` options and positional arguments of a benchmark command line. */
export interface BenchArgs {
  readonly positional: readonly string[];
  readonly options: ReadonlyMap<string, string>;
}

/** Parses `process.argv.slice(2)`-style arguments (`--key value`, `--key=value`, `--flag`). */
export function parseArgs(argv: readonly string[]): BenchArgs {
  const positional: string[] = [];
  const options = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i] ?? '';
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) options.set(a.slice(2, eq), a.slice(eq + 1));
      else {
        const next = argv[i + 1];
        if (next !== undefined && !next.startsWith('--')) {
          options.set(a.slice(2), next);
          i += 1;
        } else options.set(a.slice(2), 'true');
      }
    } else positional.push(a);
  }
  return { positional, options };
}

/** An integer option ≥ `min` (default 1), or the first positional argument when `positionalIndex` is given, else `fallback`. */
export function intOption(args: BenchArgs, name: string, fallback: number, positionalIndex?: number, min = 1): number {
  const text = args.options.get(name) ?? (positionalIndex === undefined ? undefined : args.positional[positionalIndex]);
  if (text === undefined) return fallback;
  const n = Number.parseInt(text, 10);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got "${text}"`);
  return n;
}

/** `--warmup N`: 0 is allowed (measure from the first device). */
export function warmupOption(args: BenchArgs, fallback: number): number {
  return intOption(args, 'warmup', fallback, undefined, 0);
}

/** Prints one machine-readable measurement as a single JSON line on stdout. */
export function emit(bench: string, metric: string, value: number, unit: string, context: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ bench, metric, value: round(value), unit, ...context })}\n`);
}

/** Prints a human-readable line on stderr (stdout carries only JSON lines). */
export function say(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** Rounds to 3 significant decimals for printing. */
export function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** The machine's 1/5/15-minute load averages and core count (the benchmark machine is shared). */
export function machineLoad(): { loadavg: number[]; cores: number } {
  return { loadavg: loadavg().map(round), cores: availableParallelism() };
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics and a bounded pool
// ---------------------------------------------------------------------------------------------------------------

/** The p-th percentile (0..100, nearest rank) of `values`; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

/** What {@link runPool} did. */
export interface PoolResult {
  readonly attempted: number;
  readonly completed: number;
  readonly failed: number;
  /** Wall time from the first start to the last completion, in seconds. */
  readonly seconds: number;
  /** Up to 5 distinct error messages. */
  readonly errors: readonly string[];
  /** True when the time limit stopped the pool before `count` tasks were started. */
  readonly timedOut: boolean;
}

/**
 * Runs `task(i)` for i = 0..count-1 with at most `concurrency` in flight, and starts no new task after
 * `timeLimitMs`. Each task must bound its own duration (timeouts), so the pool ends shortly after the limit.
 */
export async function runPool(count: number, concurrency: number, timeLimitMs: number, task: (i: number) => Promise<void>): Promise<PoolResult> {
  const start = performance.now();
  const deadline = start + timeLimitMs;
  let next = 0;
  let completed = 0;
  let failed = 0;
  let timedOut = false;
  const errors = new Set<string>();
  const worker = async (): Promise<void> => {
    for (;;) {
      if (next >= count) return;
      if (performance.now() > deadline) {
        timedOut = true;
        return;
      }
      const i = next;
      next += 1;
      try {
        await task(i);
        completed += 1;
      } catch (error) {
        failed += 1;
        if (errors.size < 5) errors.add(error instanceof Error ? error.message : String(error));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, () => worker()));
  return { attempted: next, completed, failed, seconds: (performance.now() - start) / 1000, errors: [...errors], timedOut };
}

/** Rejects after `ms` with `what` unless `promise` settles first. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Throw-away PKI (EC P-256, like Gatehouse's own CA and listener certificates)
// ---------------------------------------------------------------------------------------------------------------

/** A client identity (certificate chain and key, PEM). */
export interface ClientIdentity {
  readonly certPem: string;
  readonly keyPem: string;
}

/** A fresh root + issuing CA, a `localhost`/`127.0.0.1` server certificate, and a client issuer. */
export interface BenchPki {
  readonly rootPem: string;
  /** What a TLS server sends: server leaf + issuing CA. */
  readonly serverCertChainPem: string;
  readonly serverKeyPem: string;
  /** Issuer of client certificates (the issuing CA). */
  readonly issuer: CertificateIssuer;
  /** The CAs a server must trust to verify the clients issued here. */
  readonly clientCaPems: readonly string[];
  /** Issues one EC P-256 clientAuth certificate with common name `cn`. */
  issueClient(cn: string): ClientIdentity;
}

/** Issues EC P-256 clientAuth certificates with `issuer` (node:crypto signing, well under 1 ms each). */
export function issueClientIdentity(issuer: CertificateIssuer, cn: string): ClientIdentity {
  const keys = generateKeyPair('EC_P256');
  const issued = issuer.issue({ publicKey: keys.spkiDer, subject: { CN: [cn] }, extendedKeyUsage: 'clientAuth', validityDays: 2 });
  return { certPem: issued.pem, keyPem: keys.privateKeyPem };
}

/**
 * Creates a root → issuing CA → server leaf hierarchy with `src/pki` (the same algorithm, EC P-256, and the same
 * shape as Gatehouse's own CA). Used for the bare TLS server: Gatehouse's listener key is sealed in its data dir.
 */
export async function createBenchPki(name: string): Promise<BenchPki> {
  const keyStore = new EncryptedKeyStore({ kek: generateKek(), blobs: new InMemoryKeyBlobRepository() });
  const root = await createRootCa({ keyStore, commonName: `${name} Bench Root` });
  const intermediate = await createIntermediateCa({ keyStore, issuerCertificate: root.certificate, issuerSigner: await keyStore.getSigner(root.keyRef), commonName: `${name} Bench Issuing CA` });
  const issuer = createCertificateIssuer({ caCertificate: intermediate.certificate, signer: await keyStore.getSigner(intermediate.keyRef), chainPem: [intermediate.certificate.pem, root.certificate.pem] });
  const server = createServerCertificate({ issuer });
  return {
    rootPem: root.certificate.pem,
    serverCertChainPem: `${server.certificate.pem}${intermediate.certificate.pem}`,
    serverKeyPem: server.privateKeyPem,
    issuer,
    clientCaPems: [root.certificate.pem, intermediate.certificate.pem],
    issueClient: (cn) => issueClientIdentity(issuer, cn),
  };
}

/** A self-signed EC P-256 CA made with `src/pki` (a device maker's "bring your own" CA) and its issuer. */
export async function createMakerCa(commonName: string): Promise<{ certificate: ParsedCertificate; issuer: CertificateIssuer }> {
  const keyStore = new EncryptedKeyStore({ kek: generateKek(), blobs: new InMemoryKeyBlobRepository() });
  const root = await createRootCa({ keyStore, commonName });
  const issuer = createCertificateIssuer({ caCertificate: root.certificate, signer: await keyStore.getSigner(root.keyRef), chainPem: [] });
  return { certificate: root.certificate, issuer };
}

// ---------------------------------------------------------------------------------------------------------------
// Raw node:tls mutual-TLS handshake baseline
// ---------------------------------------------------------------------------------------------------------------

/** Options of {@link measureRawHandshakes}. */
export interface RawHandshakeOptions {
  /** Server certificate chain and key of the bare server. */
  readonly serverCertChainPem: string;
  readonly serverKeyPem: string;
  /** Root the clients trust for the server. */
  readonly serverRootPem: string;
  /** CAs the bare server trusts for client certificates (`requestCert: true, rejectUnauthorized: true`). */
  readonly clientCaPems: readonly string[];
  /** Client identities, used round-robin. */
  readonly clients: readonly ClientIdentity[];
  readonly count: number;
  readonly concurrency: number;
  readonly timeLimitMs?: number;
  /**
   * Untimed handshakes first (default 300): each call starts a fresh bare server process, and its JavaScript (the
   * `node:tls` and `net` layers) should be as warm as the Gatehouse side after its own warm-up.
   */
  readonly warmup?: number;
}

/** Result of {@link measureRawHandshakes}. */
export interface RawHandshakeResult {
  readonly handshakesPerSecond: number;
  readonly pool: PoolResult;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly protocol: string;
  /** Handshakes that resumed a TLS session (expected 0: every handshake is a full one). */
  readonly resumedSessions: number;
  /** CPU time per handshake of the bare server process (tree) and of this (client) process, ms. */
  readonly serverCpuMsPerHandshake: number;
  readonly clientCpuMsPerHandshake: number;
}

/** A bare TLS server in its own Node process (bench/raw-tls-server.ts) on 127.0.0.1. */
export interface RawTlsServer {
  readonly port: number;
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

/**
 * Starts bench/raw-tls-server.ts in a child process (same topology as the Gatehouse server: its own event loop).
 * `GATEHOUSE_BENCH_RAW_NODE_ARGS` (space-separated) adds Node options to it, e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`.
 */
export async function startRawTlsServer(o: Pick<RawHandshakeOptions, 'serverCertChainPem' | 'serverKeyPem' | 'clientCaPems'>, mode: 'raw' | 'aedes' = 'raw'): Promise<RawTlsServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gh-bench-tls-'));
  const material = path.join(dir, 'material.json');
  writeFileSync(material, JSON.stringify({ cert: o.serverCertChainPem, key: o.serverKeyPem, ca: o.clientCaPems }), { mode: 0o600 });
  const proc = spawn(process.execPath, [...(process.env['GATEHOUSE_BENCH_RAW_NODE_ARGS'] ?? '').split(' ').filter(Boolean), '--import', 'tsx', path.join(REPO, 'bench/raw-tls-server.ts'), material, ...(mode === 'aedes' ? ['--aedes'] : [])], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const done = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGTERM');
      await withTimeout(done, 5000, 'raw TLS server stop').catch(() => proc.kill('SIGKILL'));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const port = await withTimeout(new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"port":(\d+)/.exec(out);
      if (m?.[1] !== undefined) resolve(Number(m[1]));
    });
    proc.once('exit', (code) => reject(new Error(`raw TLS server exited (${String(code)}): ${err}`)));
  }), 30_000, 'raw TLS server start').catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  return { port, pid: proc.pid, stop };
}

const contexts = new WeakMap<ClientIdentity, Map<string, SecureContext>>();

/**
 * The client TLS context of `identity` trusting `caPem`, built once and reused (both the raw baseline and the MQTT
 * load use it, so neither pays PEM parsing and X509 store construction per connection, which is not handshake work).
 */
export function clientSecureContext(identity: ClientIdentity, caPem: string): SecureContext {
  let byCa = contexts.get(identity);
  if (byCa === undefined) {
    byCa = new Map();
    contexts.set(identity, byCa);
  }
  let ctx = byCa.get(caPem);
  if (ctx === undefined) {
    ctx = createSecureContext({ ca: caPem, cert: identity.certPem, key: identity.keyPem });
    byCa.set(caPem, ctx);
  }
  return ctx;
}

/**
 * Builds the client TLS contexts of `identities` for `caPem` ahead of a timed pass, so that a pass whose devices each
 * connect once (JITP) does not charge the client for building contexts that the other side of the comparison got in
 * its warm-up. A device builds its context once, at boot: that is not provisioning work.
 */
export function prepareClientContexts(identities: readonly ClientIdentity[], caPem: string): void {
  for (const identity of identities) clientSecureContext(identity, caPem);
}

/** One /proc/<pid>/stat line: parent pid and CPU ticks (utime + stime + cutime + cstime). */
interface ProcStat {
  readonly ppid: number;
  readonly ticks: number;
  readonly comm: string;
}

function readProcStat(pid: number): ProcStat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after "pid (comm) ": state ppid … utime(11) stime(12) cutime(13) cstime(14), 0-based from state
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]), comm };
  } catch {
    return undefined; // gone, or not Linux
  }
}

/** CPU of a process tree at one instant (see {@link readProcessTreeCpu}). */
export interface ProcessTreeCpu {
  /** CPU seconds of the root and its live descendants, including reaped children's (cutime + cstime). */
  readonly seconds: number;
  /** Pids in the tree (root first); empty when the root is gone or /proc is unavailable. */
  readonly pids: readonly number[];
  /** CPU seconds of each process of the tree (utime + stime + cutime + cstime) and its command name. */
  readonly byPid: ReadonlyMap<number, { readonly seconds: number; readonly comm: string }>;
}

/**
 * CPU seconds per process between two readings of the same tree, keyed `<comm>:<pid>` with the root first (processes
 * that appeared count from 0; processes that exited are left out, their CPU is in their parent's cutime).
 */
export function processTreeCpuDelta(before: ProcessTreeCpu, after: ProcessTreeCpu): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [pid, now] of after.byPid) out[`${now.comm}:${pid}`] = now.seconds - (before.byPid.get(pid)?.seconds ?? 0);
  return out;
}

/**
 * CPU seconds (user + system) used so far by process `pid` and all its descendants, from /proc (Linux; USER_HZ =
 * 100). The tree is found by scanning /proc/<pid>/stat for parent pids (this kernel has no
 * /proc/<pid>/task/<tid>/children). Each process contributes utime + stime + cutime + cstime, so the difference of
 * two readings is right when processes appear (they count from 0) or exit and are reaped (their total moves into the
 * parent's cutime/cstime) between them. Used for servers that fork workers (`GATEHOUSE_WORKERS`, node:cluster).
 */
export function readProcessTreeCpu(pid: number | undefined): ProcessTreeCpu {
  if (pid === undefined) return { seconds: Number.NaN, pids: [], byPid: new Map() };
  const root = readProcStat(pid);
  if (root === undefined) return { seconds: Number.NaN, pids: [], byPid: new Map() };
  const children = new Map<number, number[]>();
  const stats = new Map<number, ProcStat>([[pid, root]]);
  let names: string[] = [];
  try {
    names = readdirSync('/proc');
  } catch {
    names = [];
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const p = Number(name);
    if (p === pid) continue;
    const st = readProcStat(p);
    if (st === undefined) continue;
    stats.set(p, st);
    const siblings = children.get(st.ppid);
    if (siblings === undefined) children.set(st.ppid, [p]);
    else siblings.push(p);
  }
  const pids: number[] = [];
  const byPid = new Map<number, { seconds: number; comm: string }>();
  let ticks = 0;
  const queue = [pid];
  for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
    const st = stats.get(p);
    pids.push(p);
    ticks += st?.ticks ?? 0;
    byPid.set(p, { seconds: (st?.ticks ?? 0) / 100, comm: st?.comm ?? '?' });
    queue.push(...(children.get(p) ?? []));
  }
  return { seconds: ticks / 100, pids, byPid };
}

/** Pids of the processes whose command name (/proc/<pid>/stat comm) is `comm`, e.g. `redis-server`; read-only. */
export function findProcessesByName(comm: string): number[] {
  let names: string[] = [];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  return names.filter((n) => /^\d+$/.test(n) && readProcStat(Number(n))?.comm === comm).map(Number);
}

/** CPU seconds used so far by process `pid` and its descendants ({@link readProcessTreeCpu}); NaN when unavailable. */
export function processTreeCpuSeconds(pid: number | undefined): number {
  return readProcessTreeCpu(pid).seconds;
}

/**
 * Same as {@link processTreeCpuSeconds} (kept under its old name for bench/fleet.ts): since Gatehouse may run as a
 * node:cluster primary with workers, a server's CPU is always that of its whole process tree.
 */
export const processCpuSeconds = processTreeCpuSeconds;

/** CPU seconds (user + system) used so far by this process. */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Where and as whom a bench client opens a mutual-TLS connection ({@link connectMutualTls}). */
export interface MutualTlsTarget {
  readonly host: string;
  readonly port: number;
  /** SNI and the name the server certificate is checked against. */
  readonly servername: string;
  /** Root the client trusts for the server. */
  readonly caPem: string;
  readonly identity: ClientIdentity;
  /**
   * The identity is used for this one connection only (a device's new certificate): load its key and certificate
   * into the per-CA context of {@link singleUseIdentityContext} instead of building a context for it.
   */
  readonly singleUse?: boolean;
}

/**
 * Opens a mutual-TLS connection the one way every bench client does (the raw baseline and the lean MQTT client), so
 * that both do the same TLS work: the identity's prebuilt {@link clientSecureContext}, an explicit servername (SNI +
 * certificate check), server verification on, and no `session` option, hence always a full handshake (no
 * resumption; callers can check `isSessionReused()`).
 */
export function connectMutualTls(t: MutualTlsTarget): TLSSocket {
  const secureContext = t.singleUse === true ? singleUseIdentityContext(t.identity, t.caPem) : clientSecureContext(t.identity, t.caPem);
  // Synchronous from here to the SSL object: OpenSSL copies the context's key and certificate into the connection
  // when Node creates it, inside tlsConnect, so a later singleUseIdentityContext call cannot change this connection.
  return tlsConnect({ host: t.host, port: t.port, servername: t.servername, secureContext, rejectUnauthorized: true });
}

const singleUseContexts = new Map<string, SecureContext>();

/**
 * The client TLS context trusting `caPem` shared by identities that each connect once (a simulated device's new
 * certificate), holding `identity`'s key and certificate until the next call. Per identity it costs what a device
 * pays at boot to load its credentials into TLS (OpenSSL 3 decodes the key and the certificate: about 1 ms on this
 * machine) but not the context itself: `SSL_CTX_new` and a trust store holding `caPem` plus the 140 roots Node copies
 * into every store (about 1 ms more), which are the same for every simulated device and which a real device, with
 * its one trusted root, does not pay either. Call it right before creating the connection ({@link connectMutualTls}).
 */
export function singleUseIdentityContext(identity: ClientIdentity, caPem: string): SecureContext {
  let ctx = singleUseContexts.get(caPem);
  if (ctx === undefined) {
    ctx = createSecureContext({ ca: caPem });
    singleUseContexts.set(caPem, ctx);
  }
  const native = ctx.context as { setCert(pem: string): void; setKey(pem: string): void };
  // Certificate first: OpenSSL drops the previous identity's key when the new certificate does not match it, then
  // setKey checks the new key against the new certificate (a mismatch throws).
  native.setCert(identity.certPem);
  native.setKey(identity.keyPem);
  return ctx;
}

/** One full mutual-TLS handshake; resolves when the server's first byte (sent after it verified us) arrives. */
function handshakeOnce(port: number, caPem: string, client: ClientIdentity, timeoutMs: number): Promise<{ ms: number; protocol: string; resumed: boolean }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const socket = connectMutualTls({ host: '127.0.0.1', port, servername: 'localhost', caPem, identity: client });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`raw handshake timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('data', () => {
      clearTimeout(timer);
      const protocol = socket.getProtocol() ?? '?';
      const resumed = socket.isSessionReused();
      socket.destroy();
      resolve({ ms: performance.now() - t0, protocol, resumed });
    });
    socket.once('error', (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    });
  });
}

/**
 * Raw mutual-TLS handshakes per second: `count` full handshakes (no session resumption) with `concurrency` in
 * flight against a bare `tls.createServer({ requestCert: true, rejectUnauthorized: true })` in a child process,
 * each ended once the server has verified the client and answered one byte.
 */
export async function measureRawHandshakes(o: RawHandshakeOptions): Promise<RawHandshakeResult> {
  if (o.clients.length === 0) throw new Error('measureRawHandshakes needs at least one client identity');
  const server = await startRawTlsServer(o);
  try {
    const latencies: number[] = [];
    let protocol = '?';
    // warm-up (JIT, OpenSSL tables), not timed
    await runPool(o.warmup ?? 300, o.concurrency, 20_000, async (i) => {
      await handshakeOnce(server.port, o.serverRootPem, o.clients[i % o.clients.length] as ClientIdentity, 10_000);
    });
    let resumedSessions = 0;
    const server0 = processTreeCpuSeconds(server.pid);
    const client0 = ownCpuSeconds();
    const pool = await runPool(o.count, o.concurrency, o.timeLimitMs ?? 30_000, async (i) => {
      const r = await handshakeOnce(server.port, o.serverRootPem, o.clients[i % o.clients.length] as ClientIdentity, 10_000);
      latencies.push(r.ms);
      protocol = r.protocol;
      if (r.resumed) resumedSessions += 1;
    });
    const clientCpuSeconds = ownCpuSeconds() - client0; // before the /proc scan, which is not client work
    const serverCpuSeconds = processTreeCpuSeconds(server.pid) - server0;
    const done = Math.max(1, pool.completed);
    return {
      handshakesPerSecond: pool.completed / pool.seconds,
      pool,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      protocol,
      resumedSessions,
      serverCpuMsPerHandshake: (serverCpuSeconds * 1000) / done,
      clientCpuMsPerHandshake: (clientCpuSeconds * 1000) / done,
    };
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// A real Gatehouse server
// ---------------------------------------------------------------------------------------------------------------

/** An API answer with its body as unknown JSON. */
export interface ApiAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** A running `gatehouse serve` (SQLite in a temp data dir, loopback, ephemeral ports). */
export interface GatehouseProcess {
  readonly apiUrl: string;
  readonly mqttPort: number;
  readonly dataDir: string;
  /** The root devices trust (`root-ca.pem` of the data dir). */
  readonly rootCaPem: string;
  readonly pid: number | undefined;
  /** Calls the API with the admin token; throws unless the status is 2xx. */
  api(method: string, urlPath: string, body?: unknown): Promise<ApiAnswer>;
  /** The last ~64 KB of the server's output. */
  output(): string;
  /** Stops the server and removes its data dir. */
  destroy(): Promise<void>;
}

/** Reads a string at a dotted path of an unknown JSON value (throws when absent): `str(body, 'keyPair.PrivateKey')`. */
export function str(value: unknown, dotted: string): string {
  let v: unknown = value;
  for (const k of dotted.split('.')) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined;
  if (typeof v !== 'string') throw new Error(`expected a string at ${dotted} in ${JSON.stringify(value).slice(0, 300)}`);
  return v;
}

const live = new Set<ChildProcess>();

/** Start time (clock ticks after boot) of process `pid`, to tell it from a later process that reuses the pid. */
function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Sends SIGKILL to those of `pids` (descendants of a server we started) still alive after 2 s. */
async function stopLeftovers(pids: readonly number[]): Promise<void> {
  const started = new Map(pids.map((p) => [p, processStartTicks(p)]));
  const alive = (p: number): boolean => started.get(p) !== undefined && processStartTicks(p) === started.get(p);
  const deadline = Date.now() + 2000;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const p of pids.filter(alive)) {
    say(`[bench] server process ${p} outlived its primary: SIGKILL`);
    process.kill(p, 'SIGKILL');
  }
}
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', () => {
    for (const p of live) p.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const p of live) p.kill('SIGTERM');
      process.exit(130);
    });
  }
}

/** Options of {@link startGatehouse}. */
export interface GatehouseStartOptions {
  /** Default `warn`. */
  readonly logLevel?: string;
  /**
   * `GATEHOUSE_WORKERS` of the server (default 1: one process). With more, `gatehouse serve` is a node:cluster
   * primary forking that many workers that share the listeners; they need the Redis bus (default
   * redis://127.0.0.1:6379). Its CPU is then measured over the whole process tree ({@link processTreeCpuSeconds}).
   */
  readonly workers?: number;
}

/**
 * Starts `node bin/gatehouse.js serve` like the e2e tests do (test/support/server-process.ts), with SQLite in a
 * fresh data dir, all listeners on 127.0.0.1 with ephemeral ports, and waits for /healthz. Every other GATEHOUSE_*
 * variable of the caller's environment is removed; GATEHOUSE_WORKERS is set from `options.workers`.
 * `GATEHOUSE_V8_INTERRUPT_BUDGET` is passed on (see bin/gatehouse.js; `0` keeps V8's default tier-up budget).
 * `GATEHOUSE_BENCH_NODE_ARGS` (space-separated) adds Node options to the server, e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`;
 * `GATEHOUSE_BENCH_SERVER_LOG=<file>` copies the server's stdout and stderr to that file.
 */
export async function startGatehouse(options: GatehouseStartOptions = {}): Promise<GatehouseProcess> {
  hookExit();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'gh-bench-'));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('GATEHOUSE_')) env[k] = v;
  Object.assign(env, {
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_HOST: '127.0.0.1',
    GATEHOUSE_API_PORT: '0',
    GATEHOUSE_MQTT_PORT: '0',
    GATEHOUSE_HTTPS_PORT: '0',
    GATEHOUSE_LOG_LEVEL: options.logLevel ?? 'warn',
    GATEHOUSE_WORKERS: String(options.workers ?? 1),
  });
  // The server's V8 tier-up budget (bin/gatehouse.js) is kept, so that it can be compared (0 = V8's default).
  const budget = process.env['GATEHOUSE_V8_INTERRUPT_BUDGET'];
  if (budget !== undefined) env['GATEHOUSE_V8_INTERRUPT_BUDGET'] = budget;
  const nodeArgs = (process.env['GATEHOUSE_BENCH_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const proc = spawn(process.execPath, [...nodeArgs, path.join(REPO, 'bin/gatehouse.js'), 'serve'], { env, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let out = '';
  // GATEHOUSE_BENCH_SERVER_LOG=<file> also writes everything the server prints to that file (e.g. with --trace-deopt)
  const logFile = process.env['GATEHOUSE_BENCH_SERVER_LOG'];
  const log = logFile === undefined || logFile === '' ? undefined : createWriteStream(logFile);
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-65_536);
    log?.write(d);
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const destroy = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      // the primary should stop its workers; any of them still alive 2 s after it has gone is killed by pid
      const descendants = readProcessTreeCpu(proc.pid).pids.filter((p) => p !== proc.pid);
      const done = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGTERM');
      await withTimeout(done, 10_000, 'gatehouse stop').catch(() => proc.kill('SIGKILL'));
      if (descendants.length > 0) await stopLeftovers(descendants);
    }
    live.delete(proc);
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const serverFile = path.join(dataDir, 'server.json');
    const deadline = Date.now() + 60_000;
    let info: { apiUrl: string; ports: { mqtt: number } } | undefined;
    while (info === undefined) {
      if (proc.exitCode !== null) throw new Error(`gatehouse exited during start:\n${out}`);
      if (Date.now() > deadline) throw new Error(`gatehouse did not write server.json within 60 s:\n${out}`);
      if (existsSync(serverFile)) {
        try {
          info = JSON.parse(readFileSync(serverFile, 'utf8')) as { apiUrl: string; ports: { mqtt: number } };
        } catch {
          info = undefined;
        }
      }
      if (info === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    const apiUrl = info.apiUrl;
    for (;;) {
      const res = await fetch(`${apiUrl}/healthz`).catch(() => undefined);
      if (res?.status === 200) break;
      if (Date.now() > deadline) throw new Error(`gatehouse /healthz not ready:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const token = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    const rootCaPem = readFileSync(path.join(dataDir, 'root-ca.pem'), 'utf8');
    return {
      apiUrl,
      mqttPort: info.ports.mqtt,
      dataDir,
      rootCaPem,
      pid: proc.pid,
      output: () => out,
      destroy,
      async api(method, urlPath, body) {
        const headers: Record<string, string> = { authorization: `Bearer ${token}` };
        if (body !== undefined) headers['content-type'] = 'application/json';
        const res = await fetch(`${apiUrl}${urlPath}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
        const text = await res.text();
        let parsed: unknown = text;
        try {
          parsed = text === '' ? undefined : (JSON.parse(text) as unknown);
        } catch {
          // keep the text
        }
        if (res.status < 200 || res.status > 299) throw new Error(`${method} ${urlPath} → ${res.status}: ${text.slice(0, 500)}`);
        return { status: res.status, body: parsed };
      },
    };
  } catch (error) {
    await destroy();
    throw error;
  }
}

/** A policy allowing everything (the connect benchmark measures the gateway, not policy denials). */
export const PERMISSIVE_POLICY = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }] };

/** The device policy of the fleet benches' template (bench/fleet.ts, bench/ab-fleet.ts): connect as the thing, publish under it. */
export const FLEET_BENCH_DEVICE_POLICY = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: 'iot:Connect', Resource: 'arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}' },
    { Effect: 'Allow', Action: 'iot:Publish', Resource: 'arn:aws:iot:*:*:topic/things/${iot:Connection.Thing.ThingName}/*' },
  ],
} as const;

/**
 * The by-claim template of the fleet benches (`fleet.ts`, `provisioning-core.ts`): thing `bench-<SerialNumber>`, the
 * certificate ACTIVE, and the named policy attached.
 */
export function fleetBenchTemplate(policyName: string): Record<string, unknown> {
  return {
    Parameters: { SerialNumber: { Type: 'String' } },
    Resources: {
      thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { 'Fn::Join': ['', ['bench-', { Ref: 'SerialNumber' }]] } } },
      certificate: { Type: 'AWS::IoT::Certificate', Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' } },
      policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: policyName } },
    },
  };
}

/**
 * The JITP template of the JITP benches (`jitp.ts`, `ab-jitp.ts`): thing = the certificate's CN with a `country`
 * attribute (the certificate's C, default NL), the certificate ACTIVE, and an inline policy that lets the thing
 * connect with its own name as client id and publish under `jitp/<thing>/`.
 */
export function jitpBenchTemplate(): Record<string, unknown> {
  const arn = 'arn:aws:iot:*:*';
  return {
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
              { Effect: 'Allow', Action: 'iot:Connect', Resource: `${arn}:client/\${iot:Connection.Thing.ThingName}` },
              { Effect: 'Allow', Action: 'iot:Publish', Resource: `${arn}:topic/jitp/\${iot:Connection.Thing.ThingName}/*` },
            ],
          }),
        },
      },
    },
  };
}

/**
 * Bulk registration throughput (issue 7 "Performance"): N devices whose certificates were signed by a CA
 * registered in the tenant (thing + certificate registered under that CA + policy attachment), through the
 * real bulk task runner (file on disk, template, batches, result rows, checkpoints), on SQLite and on PostgreSQL.
 *
 *   npx tsx bench/bulk.ts [N] [sqlite|postgres]
 *       default N = 100000, both dialects; PostgreSQL from GATEHOUSE_BENCH_PG_URL (default
 *       postgres://root@127.0.0.1:5432/test), in a fresh schema dropped afterwards.
 *
 * Prints one JSON line per dialect: devices/s of the first run (generating the input is not counted), devices/s of
 * a re-run of the same file (every device already present), the CPU seconds of the first run (user + system, all
 * threads: comparable when the machine is shared), the CPU seconds of the main thread alone (the event loop, which
 * bounds the rate), the 1-minute load average and the peak RSS of the process.
 * `GATEHOUSE_BENCH_BATCH` sets lines per transaction (default: the runner's, 2000); `GATEHOUSE_BENCH_MATERIAL=csr` measures signing
 * CSRs instead (bounded by the PKI's issuing rate, see bench/issue.ts); `GATEHOUSE_BENCH_CACHE=<dir>` keeps the
 * generated input for the next run; `GATEHOUSE_BENCH_RERUN=0` skips the re-run; `GATEHOUSE_BENCH_TRACE=1` prints
 * progress, memory and WAL size every 5 s. Not part of the test run.
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EncryptedKeyStore, generateKek } from '../src/pki/index.ts';
import { BulkTaskRunner, CertificateAuthorityService, bootstrapInstallation, generateDeviceLines } from '../src/provisioning/index.ts';
import { DEFAULT_TENANT, createKeyBlobRepository, createProvisioningTemplate } from '../src/registry/index.ts';
import { createPostgresStoreDialect, createSqliteStoreDialect, createStore } from '../src/store/index.ts';
import type { Store } from '../src/store/index.ts';

const n = Number.parseInt(process.argv[2] ?? '100000', 10);
if (!Number.isInteger(n) || n <= 0) throw new Error('usage: tsx bench/bulk.ts [N]');
const PG_URL = process.env['GATEHOUSE_BENCH_PG_URL'] ?? 'postgres://root@127.0.0.1:5432/test';
/** `certificate` (default: existing certificates under a registered CA) or `csr` (Gatehouse signs every device). */
const MATERIAL = process.env['GATEHOUSE_BENCH_MATERIAL'] === 'csr' ? 'csr' : 'certificate';

const TEMPLATE = JSON.stringify({
  Parameters: { ThingName: { Type: 'String' } },
  Resources: {
    thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'ThingName' }, AttributePayload: { batch: 'bench' } } },
    certificate: { Type: 'AWS::IoT::Certificate', Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' } },
    policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyDocument: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}' } },
  },
});

const work = mkdtempSync(path.join(tmpdir(), 'gh-bench-bulk-'));
/** `GATEHOUSE_BENCH_CACHE=<dir>` keeps the generated CA and input there and reuses them on the next run with the same N. */
const CACHE = process.env['GATEHOUSE_BENCH_CACHE'];
const cachedInput = CACHE === undefined ? undefined : path.join(CACHE, `devices-${MATERIAL}-${n}.jsonl`);
if (CACHE !== undefined && existsSync(path.join(CACHE, 'ca.key'))) {
  for (const f of ['ca.pem', 'ca.key']) copyFileSync(path.join(CACHE, f), path.join(work, f));
} else execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=Bench Factory CA', '-days', '30',
  '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { cwd: work, stdio: 'ignore' });
const caPem = readFileSync(path.join(work, 'ca.pem'), 'utf8');
const input = cachedInput !== undefined && existsSync(cachedInput) ? cachedInput : path.join(work, 'devices.jsonl');
if (CACHE !== undefined) {
  mkdirSync(CACHE, { recursive: true });
  for (const f of ['ca.pem', 'ca.key']) copyFileSync(path.join(work, f), path.join(CACHE, f));
}
if (input !== cachedInput) {
  const started = Date.now();
  const out = createWriteStream(input);
  const material = MATERIAL === 'csr' ? { kind: 'csr' as const } : { kind: 'certificate' as const, caCertificatePem: caPem, caKeyPem: readFileSync(path.join(work, 'ca.key'), 'utf8') };
  for (const d of generateDeviceLines({ count: n, material, prefix: 'bench-' })) {
    if (!out.write(`${d.line}\n`)) await once(out, 'drain');
  }
  await new Promise<void>((resolve) => out.end(resolve));
  process.stderr.write(`generated ${n} devices in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  if (CACHE !== undefined && cachedInput !== undefined) {
    copyFileSync(input, cachedInput);
  }
}

/** `GATEHOUSE_BENCH_TRACE=1` prints progress, RSS and heap every 5 s to stderr. */
const TRACE = process.env['GATEHOUSE_BENCH_TRACE'] === '1';
/** CPU seconds of the main thread alone (Linux; undefined elsewhere): the event loop is what limits the rate. */
function mainThreadCpuSeconds(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}
function mb(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}

async function run(dialect: 'sqlite' | 'postgres'): Promise<void> {
  let store: Store;
  let dispose = async (): Promise<void> => {};
  if (dialect === 'sqlite') {
    store = createStore(createSqliteStoreDialect({ filename: path.join(work, 'bench.sqlite') }));
  } else {
    const schema = `gh_bench_${randomBytes(6).toString('hex')}`;
    store = createStore(createPostgresStoreDialect({ connectionString: `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`, maxConnections: 4 }));
    dispose = async () => {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`drop schema if exists "${schema}" cascade`);
      await client.end();
    };
  }
  try {
    await store.migrate();
    const kek = generateKek();
    const keyStore = new EncryptedKeyStore({ kek, blobs: createKeyBlobRepository(store.db) });
    const cas = new CertificateAuthorityService({ store, keyStore, publicUrl: 'http://127.0.0.1:8080', onTrustChanged: () => undefined });
    await bootstrapInstallation({ store, cas, kek, domain: 'bench.local', adminToken: undefined });
    const ctx = { tenantId: DEFAULT_TENANT, actor: 'bench' };
    await cas.registerCa(ctx, { caCertificatePem: caPem, certificateMode: 'SNI_ONLY', setAsActive: true });
    await store.transaction((trx) => createProvisioningTemplate(trx, ctx, { templateName: 'bench', templateBody: TEMPLATE }));
    const runner = new BulkTaskRunner({ store, cas, dataDir: path.join(work, dialect), ...(process.env['GATEHOUSE_BENCH_BATCH'] === undefined ? {} : { batchSize: Number(process.env['GATEHOUSE_BENCH_BATCH']) }) });
    const started = Date.now();
    const cpuBefore = process.cpuUsage();
    const mainCpuBefore = mainThreadCpuSeconds();
    const task = await runner.createTask(ctx, { templateName: 'bench', format: 'jsonl', input: createReadStream(input), maxBytes: 2 ** 31 });
    let view = task;
    let lastTrace = Date.now();
    if (TRACE) process.stderr.write(`${dialect}: start rss ${mb(process.memoryUsage().rss)} MB, peak so far ${Math.round(process.resourceUsage().maxRSS / 1024)} MB\n`);
    while (view.status === 'RUNNING') {
      await new Promise((r) => setTimeout(r, 200));
      view = await runner.getTask(ctx.tenantId, task.taskId);
      if (TRACE && Date.now() - lastTrace >= 5000) {
        lastTrace = Date.now();
        const m = process.memoryUsage();
        process.stderr.write(`${dialect}: ${view.processed} processed, ${((Date.now() - started) / 1000).toFixed(1)} s, rate ${view.rate}/s, rss ${mb(m.rss)} heap ${mb(m.heapUsed)}/${mb(m.heapTotal)} external ${mb(m.external)} MB${dialect === 'sqlite' ? `, WAL ${mb(statSync(path.join(work, 'bench.sqlite-wal'), { throwIfNoEntry: false })?.size ?? 0)} MB` : ''}\n`);
      }
    }
    const seconds = (Date.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const mainCpuAfter = mainThreadCpuSeconds();
    // The same file again: every device is reported as already present (`GATEHOUSE_BENCH_RERUN=0` skips it).
    const skipRerun = process.env['GATEHOUSE_BENCH_RERUN'] === '0';
    const rerunStarted = Date.now();
    const rerun = skipRerun ? view : await runner.createTask(ctx, { templateName: 'bench', format: 'jsonl', input: createReadStream(input), maxBytes: 2 ** 31 });
    let rerunView = rerun;
    while (!skipRerun && rerunView.status === 'RUNNING') {
      await new Promise((r) => setTimeout(r, 200));
      rerunView = await runner.getTask(ctx.tenantId, rerun.taskId);
    }
    const rerunSeconds = (Date.now() - rerunStarted) / 1000;
    await runner.close();
    const withCa = await store.db.selectFrom('certificates').select((eb) => eb.fn.countAll<number>().as('n')).where('ca_certificate_id', 'is not', null).where('created_by', 'in', ['bulk', 'bulk-csr']).executeTakeFirstOrThrow();
    process.stdout.write(`${JSON.stringify({
      bench: MATERIAL === 'csr' ? 'bulk-sign-csrs' : 'bulk-register-existing-certificates', dialect, devices: n, status: view.status, succeeded: view.succeeded, failed: view.failed,
      registeredUnderCa: Number(withCa.n), seconds: Math.round(seconds * 10) / 10, devicesPerSecond: Math.round(n / seconds),
      rerunAlreadyPresent: rerunView.alreadyPresent, rerunDevicesPerSecond: skipRerun ? null : Math.round(n / rerunSeconds),
      cpuSeconds: Math.round((cpu.user + cpu.system) / 1e5) / 10,
      mainThreadCpuSeconds: mainCpuBefore === undefined || mainCpuAfter === undefined ? null : Math.round((mainCpuAfter - mainCpuBefore) * 10) / 10,
      loadAverage1m: Math.round((loadavg()[0] ?? 0) * 10) / 10,
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    })}\n`);
  } finally {
    await store.close();
    await dispose();
  }
}

try {
  const only = process.argv[3];
  for (const d of ['sqlite', 'postgres'] as const) if (only === undefined || only === d) await run(d);
} finally {
  rmSync(work, { recursive: true, force: true });
}

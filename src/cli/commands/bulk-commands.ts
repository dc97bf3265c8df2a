import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { once } from 'node:events';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { loadClientConfig } from '../../config/index.ts';
import { fileErrorReason } from '../../errors/index.ts';
import { convertEspressifManifest, convertMicrochipManifest, convertPemDirectory, generateDeviceLines, manifestEntryToBulkLine } from '../../provisioning/index.ts';
import type { BulkTaskView, GeneratedMaterial, ManifestEntry } from '../../provisioning/index.ts';
import type { CliContext } from '../cli-context.ts';
import { ApiCallError } from '../client.ts';
import { CliErrors } from '../errors.ts';
import { collect, countOption, readInputFile, refuseExistingKeyFile, refuseUnwritableFile } from '../output.ts';

/** Base URL and headers of the configured server, for the streaming calls the JSON client does not make. */
function connection(c: CliContext, cmd: Command): { baseUrl: string; headers: Record<string, string> } {
  const client = c.client(cmd);
  const config = loadClientConfig(c.io.env, c.io.cwd);
  let token = config.token;
  const tokenFile = path.join(config.dataDir, 'admin-token');
  if (token === undefined && existsSync(tokenFile)) token = readFileSync(tokenFile, 'utf8').trim();
  const headers: Record<string, string> = {};
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  const tenant = c.globals(cmd).tenant;
  if (tenant !== undefined) headers['gatehouse-tenant'] = tenant;
  return { baseUrl: client.baseUrl, headers };
}

async function failure(res: Response): Promise<ApiCallError> {
  return ApiCallError.fromResponse(res.status, await res.text());
}

/** Uploads a file as the body of POST /v1/bulk-tasks, streaming (the file is never read whole). */
/** The size of the bulk input `file`, or CLI_FILE_UNREADABLE naming it. */
function fileSize(file: string): number {
  try {
    const st = statSync(file);
    if (st.isDirectory()) throw Object.assign(new Error('it is a directory'), { code: 'EISDIR' });
    return st.size;
  } catch (cause) {
    throw CliErrors.error('CLI_FILE_UNREADABLE', `cannot read the bulk input ${file}: ${fileErrorReason(cause)}`, { cause });
  }
}

async function uploadTask(c: CliContext, cmd: Command, file: string, templateName: string, format: 'jsonl' | 'csv'): Promise<BulkTaskView> {
  const { baseUrl, headers } = connection(c, cmd);
  const init: RequestInit & { duplex: 'half' } = {
    method: 'POST',
    headers: { ...headers, 'content-type': format === 'csv' ? 'text/csv' : 'application/x-ndjson', 'content-length': String(fileSize(file)) },
    body: Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>,
    duplex: 'half',
  };
  const res = await fetch(`${baseUrl}/v1/bulk-tasks?templateName=${encodeURIComponent(templateName)}&format=${format}`, init);
  if (!res.ok) throw await failure(res);
  return (await res.json()) as BulkTaskView;
}

function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/**
 * Follows a task until it leaves RUNNING (issue 7 §3): a live bar (done / total, rate, ETA, errors) on a TTY,
 * periodic plain lines otherwise. Both come from GET /v1/bulk-tasks/{id}, the numbers the API reports.
 */
async function followTask(c: CliContext, cmd: Command, taskId: string, intervalMs: number): Promise<BulkTaskView> {
  const client = c.client(cmd);
  // With --json, stdout carries only the final JSON document; progress goes to stderr.
  const json = c.globals(cmd).json === true;
  const stream = json ? process.stderr : process.stdout;
  const say = json ? c.io.stderr : c.io.stdout;
  const bar = stream.isTTY ? new cliProgress.SingleBar({ format: 'bulk {bar} {percentage}% | {value}/{total} | {rate}/s | ETA {etaText} | errors {failed}', hideCursor: true, stream }, cliProgress.Presets.shades_classic) : undefined;
  let started = false;
  let lastPrint = 0;
  for (;;) {
    const t = await client.call<BulkTaskView>('GET', `/v1/bulk-tasks/${encodeURIComponent(taskId)}`);
    const eta = t.rate > 0 ? (t.total - t.processed) / t.rate : Number.NaN;
    const payload = { rate: t.rate.toFixed(0), etaText: formatEta(eta), failed: t.failed };
    if (bar !== undefined) {
      if (!started) bar.start(t.total, t.processed, payload);
      else bar.update(t.processed, payload);
      started = true;
    } else if (Date.now() - lastPrint >= Math.max(intervalMs, 1000) || t.status !== 'RUNNING') {
      lastPrint = Date.now();
      const pct = t.total > 0 ? ((100 * t.processed) / t.total).toFixed(1) : '0.0';
      say(`${t.status.toLowerCase()} ${t.processed}/${t.total} (${pct}%) ${t.rate.toFixed(0)}/s ETA ${formatEta(eta)} errors ${t.failed}\n`);
    }
    if (t.status !== 'RUNNING' && t.status !== 'STOPPING') {
      bar?.stop();
      return t;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Streams GET /v1/bulk-tasks/{id}/{kind} to a file or stdout. */
async function download(c: CliContext, cmd: Command, taskId: string, kind: 'results' | 'errors', out: string | undefined): Promise<void> {
  // results hold the private keys the task generated: a new file (never one that exists), readable by its owner only
  if (out !== undefined) refuseExistingKeyFile(out, '--out');
  const { baseUrl, headers } = connection(c, cmd);
  const res = await fetch(`${baseUrl}/v1/bulk-tasks/${encodeURIComponent(taskId)}/${kind}`, { headers });
  if (!res.ok || res.body === null) throw await failure(res);
  const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  if (out === undefined) {
    for await (const chunk of body) c.io.stdout(Buffer.from(chunk as Uint8Array).toString('utf8'));
    return;
  }
  const file = createWriteStream(out, { flags: 'wx', mode: 0o600 });
  await once(file, 'open');
  for await (const chunk of body) if (!file.write(chunk)) await once(file, 'drain');
  await new Promise<void>((resolve, reject) => file.end((e?: Error | null) => (e ? reject(e) : resolve())));
}

async function writeLine(file: WriteStream, line: string): Promise<void> {
  // a stream that failed (its 'error' was emitted while no write waited) never drains: report its error instead
  if (file.errored !== null) throw file.errored;
  if (!file.write(`${line}\n`)) await once(file, 'drain');
}

async function closeFile(file: WriteStream): Promise<void> {
  if (file.errored !== null) throw file.errored;
  await new Promise<void>((resolve, reject) => file.end((e?: Error | null) => (e ? reject(e) : resolve())));
}

/** Extracts an archive (zip, 7z) with Debian's `7z` into `dir` (archives are opened by the CLI, never by the server). */
function extractArchive(archive: string, dir: string): void {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('7z', ['x', '-y', '-bd', `-o${dir}`, archive], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const e = error as { code?: string; stderr?: Buffer };
    throw CliErrors.error('CLI_ARCHIVE_UNREADABLE', e.code === 'ENOENT' ? 'opening archives needs the 7z command (Debian: apt-get install p7zip-full)' : `cannot extract ${path.basename(archive)}: ${e.stderr?.toString().trim() || 'unknown error'}`, { cause: error });
  }
}

/**
 * The PEM directory to import: `p` itself, or the extracted archive. An Infineon OPTIGA Trust M bundle is an
 * archive of archives; only the certificates of data object `slot` (E0E0 by default: the device identity) are kept.
 */
function pemDirectoryOf(p: string, vendor: string, slot: string, work: string): string {
  if (vendor === 'infineon') {
    const outer = path.join(work, 'bundle');
    extractArchive(p, outer);
    const inner = readdirSync(outer).filter((f) => f.endsWith(`_${slot}_Certs.7z`));
    if (inner.length === 0) throw CliErrors.error('CLI_ARCHIVE_UNREADABLE', `the bundle holds no *_${slot}_Certs.7z archive (data object ${slot}; --slot names another)`);
    const certs = path.join(work, 'certs');
    for (const f of inner) extractArchive(path.join(outer, f), certs);
    return certs;
  }
  let isDirectory: boolean;
  try {
    isDirectory = statSync(p).isDirectory();
  } catch (cause) {
    throw CliErrors.error('CLI_FILE_UNREADABLE', `cannot read the manifest ${p}: ${fileErrorReason(cause)}`, { cause });
  }
  if (isDirectory) return p;
  const certs = path.join(work, 'certs');
  extractArchive(p, certs);
  return certs;
}

interface GenerateOptions { count: string; out: string; caCert?: string; caKey?: string; keys: boolean; keysOut?: string; prefix: string; jobs?: string; startIndex?: string; nameWidth?: string }

function materialOf(o: GenerateOptions): GeneratedMaterial {
  if (!o.keys) return { kind: 'none' };
  if (o.caCert !== undefined && o.caKey !== undefined) return { kind: 'certificate', caCertificatePem: readInputFile(o.caCert, 'CA certificate'), caKeyPem: readInputFile(o.caKey, 'CA key') };
  return { kind: 'csr' };
}

/** Writes devices `start … start+count-1` to `o.out` (and their keys to `o.keysOut`). */
async function generateRange(o: GenerateOptions, count: number, start: number, width: number): Promise<void> {
  // errors surface through writeLine and closeFile, never as an unhandled 'error' event
  const out = createWriteStream(o.out).on('error', () => undefined);
  const keys = o.keysOut === undefined ? undefined : createWriteStream(o.keysOut, { mode: 0o600 }).on('error', () => undefined);
  for (const d of generateDeviceLines({ count, material: materialOf(o), prefix: o.prefix, startIndex: start, nameWidth: width })) {
    await writeLine(out, d.line);
    if (keys !== undefined && d.privateKeyPem !== undefined) await writeLine(keys, JSON.stringify({ ThingName: d.thingName, PrivateKey: d.privateKeyPem }));
  }
  await closeFile(out);
  if (keys !== undefined) await closeFile(keys);
}

/** Appends `part` to `target` (streaming) and removes it. */
async function appendFile(part: string, target: string): Promise<void> {
  await pipeline(createReadStream(part), createWriteStream(target, { flags: 'a' }));
  rmSync(part, { force: true });
}

interface StartOptions { template: string; file: string; format?: string; wait?: boolean; interval: string }

/**
 * Prints the task a `--wait` followed to its end, then fails (exit 1) unless every line was registered: a script that
 * waits for a task must not take a failed task, a stopped one or failed lines for success.
 */
function reportFollowed(c: CliContext, cmd: Command, t: BulkTaskView): void {
  c.print(cmd, t);
  const errors = `gatehouse bulk errors ${t.taskId}`;
  if (t.status === 'FAILED') throw CliErrors.error('CLI_BULK_INCOMPLETE', `task ${t.taskId} FAILED at line ${t.checkpointLine} of ${t.total}${t.error === null ? '' : `: ${t.error}`} (gatehouse bulk resume ${t.taskId} continues it)`);
  if (t.status === 'STOPPED') throw CliErrors.error('CLI_BULK_INCOMPLETE', `task ${t.taskId} was STOPPED at line ${t.checkpointLine} of ${t.total} (gatehouse bulk resume ${t.taskId} continues it)`);
  if (t.failed > 0) throw CliErrors.error('CLI_BULK_INCOMPLETE', `${t.failed} of ${t.total} lines of task ${t.taskId} failed (${errors} lists them)`);
}

async function startAndMaybeFollow(c: CliContext, cmd: Command, o: StartOptions): Promise<void> {
  // without --format, a .csv file is CSV (it used to be read as JSON lines: every line failed, "not valid JSON")
  const format = o.format ?? (path.extname(o.file).toLowerCase() === '.csv' ? 'csv' : 'jsonl');
  if (format !== 'jsonl' && format !== 'csv') throw CliErrors.error('CLI_USAGE_INVALID', '--format must be jsonl or csv');
  // every option is checked before the task is uploaded and started
  const interval = countOption('--interval', o.interval);
  const task = await uploadTask(c, cmd, o.file, o.template, format);
  if (o.wait !== true) {
    c.print(cmd, task);
    return;
  }
  if (c.globals(cmd).json !== true) c.io.stdout(`task ${task.taskId}: ${task.total} devices\n`);
  reportFollowed(c, cmd, await followTask(c, cmd, task.taskId, interval));
}

/** `gatehouse bulk …` and `gatehouse manifest import` (issue 7). */
export function bulkCommands(c: CliContext): Command[] {
  const b = new Command('bulk').description('bulk registration: start a task from JSON lines or CSV, follow it, stop, resume, download results and errors');
  b.command('start')
    .description('upload a device file (streamed) and start a bulk registration task')
    .requiredOption('--template <name>', 'provisioning template applied to every line')
    .requiredOption('--file <file>', 'JSON lines (one device per line) or CSV with a header')
    .addOption(new Option('--format <format>', 'input format (default: csv for a .csv file, else jsonl)').choices(['jsonl', 'csv']))
    .option('--wait', 'follow the task with a progress bar until it ends; exits 1 (CLI_BULK_INCOMPLETE) when it fails, is stopped or any line failed')
    .option('--interval <ms>', 'polling interval while waiting', '500')
    .action((o: StartOptions, cmd: Command) => c.run(() => startAndMaybeFollow(c, cmd, o)));
  // every task, page after page (it printed the first 100 only)
  b.command('list').description('list bulk tasks, newest first').action((_o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).listAll('/v1/bulk-tasks', 'tasks'))));
  b.command('describe <taskId>').description('progress and counters of a task').action((id: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('GET', `/v1/bulk-tasks/${encodeURIComponent(id)}`))));
  b.command('stop <taskId>').description('stop a task after the batch in flight').action((id: string, _o: unknown, cmd: Command) => c.run(async () => c.print(cmd, await c.client(cmd).call('POST', `/v1/bulk-tasks/${encodeURIComponent(id)}/stop`))));
  b.command('resume <taskId>')
    .description('resume a stopped, failed or interrupted task from its checkpoint')
    .option('--wait', 'follow the task until it ends; exits 1 (CLI_BULK_INCOMPLETE) when it fails, is stopped or any line failed')
    .option('--interval <ms>', 'polling interval while waiting', '500')
    .action((id: string, o: { wait?: boolean; interval: string }, cmd: Command) =>
      c.run(async () => {
        const interval = countOption('--interval', o.interval);
        const t = await c.client(cmd).call<BulkTaskView>('POST', `/v1/bulk-tasks/${encodeURIComponent(id)}/resume`);
        if (o.wait === true) reportFollowed(c, cmd, await followTask(c, cmd, t.taskId, interval));
        else c.print(cmd, t);
      }),
    );
  for (const kind of ['results', 'errors'] as const) {
    b.command(`${kind} <taskId>`)
      .description(kind === 'results' ? 'download every line\'s result as JSON lines' : 'download failed lines (line, code, message) as JSON lines')
      .option('--out <file>', 'write to a file instead of stdout')
      .action((id: string, o: { out?: string }, cmd: Command) => c.run(() => download(c, cmd, id, kind, o.out)));
  }
  b.command('generate')
    .description('generate N devices locally (keys + CSRs, or certificates signed by your CA) as bulk JSON lines, in parallel processes')
    .requiredOption('--count <n>', 'number of devices')
    .requiredOption('--out <file>', 'JSON lines file to write')
    .option('--ca <caCertificateId>', 'the registered CA the certificates are for (informational)')
    .option('--ca-cert <file>', 'CA certificate (PEM) that signs the device certificates')
    .option('--ca-key <file>', 'CA private key (PEM)')
    .option('--csr', 'write CSRs (the default without --ca-cert)')
    .option('--no-keys', 'write only thing names (Gatehouse generates the keys; development only)')
    .option('--keys-out <file>', 'also write each device\'s private key (JSON lines: ThingName, PrivateKey)')
    .option('--prefix <prefix>', 'thing name prefix', 'device-')
    .option('--jobs <n>', 'parallel processes (default: one per CPU)')
    .addOption(new Option('--start-index <n>').hideHelp())
    .addOption(new Option('--name-width <n>').hideHelp())
    .action((o: GenerateOptions, cmd: Command) =>
      c.run(async () => {
        const count = countOption('--count', o.count);
        if ((o.caCert === undefined) !== (o.caKey === undefined)) throw CliErrors.error('CLI_USAGE_INVALID', '--ca-cert and --ca-key go together');
        // (a part written by a child process, --start-index, goes to a file of its own)
        if (o.startIndex === undefined) {
          // the CSRs of --out belong to the keys of --keys-out: neither file may replace an existing one, nor each other
          refuseExistingKeyFile(o.out, '--out');
          if (o.keysOut !== undefined) {
            if (path.resolve(o.keysOut) === path.resolve(o.out)) throw CliErrors.error('CLI_USAGE_INVALID', '--out and --keys-out must be different files');
            refuseExistingKeyFile(o.keysOut, '--keys-out');
          }
        }
        const started = Date.now();
        const start = o.startIndex === undefined ? 1 : countOption('--start-index', o.startIndex);
        const width = o.nameWidth === undefined ? String(start + count - 1).length : countOption('--name-width', o.nameWidth);
        const jobs = Math.max(1, Math.min(o.jobs === undefined ? availableParallelism() : countOption('--jobs', o.jobs), Math.floor(count / 200) || 1));
        const per = Math.ceil(count / jobs);
        // Parts 1..jobs-1 in child processes (the same CLI), part 0 here; then the parts are appended in order.
        const children = Array.from({ length: jobs - 1 }, (_x, k) => {
          const j = k + 1;
          const args = [...process.execArgv, process.argv[1] ?? '', 'bulk', 'generate', '--jobs', '1', '--count', String(Math.min(per, count - j * per)), '--start-index', String(start + j * per),
            '--name-width', String(width), '--prefix', o.prefix, '--out', `${o.out}.part${j}`,
            ...(o.keysOut === undefined ? [] : ['--keys-out', `${o.keysOut}.part${j}`]), ...(o.caCert === undefined || o.caKey === undefined ? [] : ['--ca-cert', o.caCert, '--ca-key', o.caKey]), ...(o.keys ? [] : ['--no-keys'])];
          const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
          return new Promise<void>((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`generator part ${j} failed (exit ${String(code)})`)))));
        });
        await generateRange(o, Math.min(per, count), start, width);
        await Promise.all(children);
        for (let j = 1; j < jobs; j += 1) {
          await appendFile(`${o.out}.part${j}`, o.out);
          if (o.keysOut !== undefined) await appendFile(`${o.keysOut}.part${j}`, o.keysOut);
        }
        const secs = (Date.now() - started) / 1000;
        if (o.jobs !== '1' || o.startIndex === undefined) c.print(cmd, { file: o.out, count, material: materialOf(o).kind, jobs, seconds: Math.round(secs * 10) / 10 });
      }),
    );

  const m = new Command('manifest').description('supply-chain manifests of pre-provisioned secure elements');
  m.command('import <path>')
    .description('verify and convert a manufacturer manifest into a bulk task (refused entries are reported per line)')
    .addOption(new Option('--vendor <vendor>', 'manifest format (pem-dir: a directory, zip or 7z of PEM files; infineon: an OPTIGA Trust M bundle)').choices(['microchip', 'espressif', 'pem-dir', 'infineon']).makeOptionMandatory())
    .option('--slot <object>', 'Infineon: the data object whose certificates are imported', 'E0E0')
    .requiredOption('--template <name>', 'provisioning template (parameters ThingName and CertificatePem)')
    .option('--verifier <file>', 'Microchip manifest signer certificate (repeatable)', collect, [])
    .addOption(new Option('--thing-name <source>', 'Microchip: thing name from the certificate CN or the uniqueId').choices(['cn', 'uniqueId']).default('cn'))
    .option('--report <file>', 'also write the refused entries (JSON lines) here')
    .option('--wait', 'follow the task until it ends; exits 1 (CLI_BULK_INCOMPLETE) when it fails, is stopped or any line failed')
    .option('--interval <ms>', 'polling interval while waiting', '500')
    .action((p: string, o: { vendor: string; slot: string; template: string; verifier: string[]; thingName: 'cn' | 'uniqueId'; report?: string; wait?: boolean; interval: string }, cmd: Command) =>
      c.run(async () => {
        const dir = mkdtempSync(path.join(tmpdir(), 'gh-manifest-'));
        const file = path.join(dir, 'devices.jsonl');
        // Streams open asynchronously: a failure before they are open (a bad archive, no verifier) must neither crash
        // the CLI with an unhandled 'error' nor race the removal of `dir`. Their errors surface through writeLine
        // (`once(…, 'drain')` rejects on 'error') and closeFile (the end callback).
        const streams: WriteStream[] = [];
        const open = (f: string): WriteStream => {
          const s = createWriteStream(f);
          s.on('error', () => undefined);
          streams.push(s);
          return s;
        };
        try {
          if (o.report !== undefined) {
            refuseUnwritableFile(o.report, '--report');
          }
          const out = open(file);
          const report = o.report === undefined ? undefined : open(o.report);
          let devices = 0;
          let refused = 0;
          const take = async (e: ManifestEntry): Promise<void> => {
            await writeLine(out, manifestEntryToBulkLine(e));
            if (e.kind === 'device') devices += 1;
            else {
              refused += 1;
              if (report !== undefined) await writeLine(report, JSON.stringify({ entry: e.index, uniqueId: e.uniqueId, code: e.code, message: e.message }));
            }
          };
          if (o.vendor === 'microchip') {
            if (o.verifier.length === 0) throw CliErrors.error('CLI_USAGE_INVALID', '--verifier <signer.crt> is required for Microchip manifests');
            const verifiers = o.verifier.map((f) => readInputFile(f, 'verifier certificate'));
            for (const e of convertMicrochipManifest(readInputFile(p, 'manifest'), { verifiers, thingName: o.thingName })) await take(e);
          } else if (o.vendor === 'espressif') {
            // a missing or unreadable file gets CLI_FILE_UNREADABLE, as for the other vendors (it printed a raw ENOENT)
            const stream = createReadStream(p);
            await once(stream, 'open').catch((cause: unknown) => {
              throw CliErrors.error('CLI_FILE_UNREADABLE', `cannot read the manifest ${p}: ${fileErrorReason(cause)}`, { cause });
            });
            for await (const e of convertEspressifManifest(stream)) await take(e);
          } else {
            for (const e of convertPemDirectory(pemDirectoryOf(p, o.vendor, o.slot, dir))) await take(e);
          }
          await closeFile(out);
          if (report !== undefined) await closeFile(report);
          (c.globals(cmd).json === true ? c.io.stderr : c.io.stdout)(`manifest: ${devices} devices, ${refused} refused entries\n`);
          await startAndMaybeFollow(c, cmd, { template: o.template, file, format: 'jsonl', ...(o.wait === true ? { wait: true } : {}), interval: o.interval });
        } finally {
          await Promise.all(streams.map((s) => (s.closed ? Promise.resolve() : new Promise<void>((resolve) => s.destroy().once('close', () => resolve())))));
          rmSync(dir, { recursive: true, force: true });
        }
      }),
    );
  return [b, m];
}

import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sql } from 'kysely';
import { isGatehouseError } from '../../errors/index.ts';
import * as pki from '../../pki/index.ts';
import type { ParsedCertificate } from '../../pki/index.ts';
import * as registry from '../../registry/index.ts';
import type { CertificateStatus, Page, PageRequest, RegistryContext } from '../../registry/index.ts';
import { anyText, isPostgres } from '../../store/index.ts';
import type { Executor, Store } from '../../store/index.ts';
import { STORED_TEMPLATE_MAX_LENGTH, evaluateTemplate, parseTemplate } from '../../templates/index.ts';
import type { ProvisioningTemplate } from '../../templates/index.ts';
import { applyPlan } from '../apply-plan.ts';
import type { CertificateAuthorityService } from '../certificate-authority-service.ts';
import { DEVICE_CERTIFICATE_IS_CA, ProvisioningErrors } from '../errors.ts';
import { DEVICE_CERT_VALIDITY_DAYS } from '../manual.ts';
import { lookupCertificates, selectFastLines, selectPresentLines, writeFastLines } from './bulk-fast-path.ts';
import type { CertificateMaterial, LineOutcome, PreparedLine, TaskContext } from './bulk-line.ts';
import { HeapCompaction } from './heap-compaction.ts';
import { decodeSingleCertificatePem, readCertificateFields, verifyCertificateSignature } from './fast-certificate.ts';
import { insertRows } from './insert-rows.ts';
import { countRecords, readDeviceFile } from './input-readers.ts';
import type { BulkInputFormat, DeviceRecord } from './input-readers.ts';

/** Status of a bulk task (`bulk_tasks.status`). */
export type BulkTaskStatus = 'RUNNING' | 'STOPPING' | 'STOPPED' | 'COMPLETED' | 'FAILED';

/** What the API and CLI show of a task (issue 7 §3: the same numbers as the progress bar). */
export interface BulkTaskView {
  readonly taskId: string;
  readonly templateName: string;
  /**
   * The template version the task applies to every line, on every run (the default version when it was created);
   * null only for a task created by an earlier version of Gatehouse and not run since.
   */
  readonly templateVersionId: number | null;
  readonly format: string;
  readonly status: BulkTaskStatus;
  /** Device records in the input. */
  readonly total: number;
  /** Records with a result (succeeded + alreadyPresent + failed). */
  readonly processed: number;
  readonly succeeded: number;
  readonly alreadyPresent: number;
  readonly failed: number;
  /** Devices per second: of the current run while running, else over the task's life. */
  readonly rate: number;
  /** Checkpoint: every input line up to here has a result row. */
  readonly checkpointLine: number;
  readonly error: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** Options of the runner (built once by the API composition). */
export interface BulkTaskRunnerOptions {
  readonly store: Store;
  readonly cas: CertificateAuthorityService;
  /** Inputs are kept under `<dataDir>/bulk/<taskId>.input` so that a task can resume after a crash. */
  readonly dataDir: string;
  /** Lines per transaction (default 1000; the server passes `GATEHOUSE_BULK_BATCH_LINES`). */
  readonly batchSize?: number;
  /** Called when a task's loop fails as a whole (logging). */
  readonly onTaskError?: (taskId: string, error: unknown) => void;
}

/** Input of {@link BulkTaskRunner.createTask}. */
export interface CreateBulkTaskInput {
  readonly templateName: string;
  readonly format: BulkInputFormat;
  /** The raw input, streamed to disk, never held in memory. */
  readonly input: Readable;
  /** Largest accepted input in bytes. */
  readonly maxBytes: number;
}

/** The keys a line may use for its certificate material (besides template parameters of the same name). */
const CSR_KEYS = ['CSR', 'CertificateSigningRequest'] as const;
const PEM_KEYS = ['CertificatePem'] as const;
/** A manifest importer's refusal, carried through the bulk file so that it lands in the task's error report. */
const REFUSED_KEY = '$refused';
const PLACEHOLDER_ID = '0'.repeat(64);

interface ActiveRun {
  stopRequested: boolean;
  readonly startedAt: number;
  processedAtStart: number;
  processed: number;
  done: Promise<void>;
}

type TaskRow = {
  tenant_id: string; task_id: string; template_name: string; input_format: string; input_path: string; status: string; total_lines: number | null;
  processed_lines: number; succeeded: number; already_present: number; failed: number; options: string; error: string | null; created_at: string; updated_at: string;
  template_version_id: number | null; template_body_sha256: string | null;
};

/**
 * The label a generated private key is sealed under (AES-256-GCM under the KEK, see registry `sealSecret`): it binds
 * the sealed key to its result row, so a sealed value copied to another row or task does not open.
 */
export const bulkPrivateKeyLabel = (taskId: string, lineNo: number): string => `bulk-private-key:${taskId}:${lineNo}`;

/** The system setting that records that the private keys stored in clear by earlier versions have been sealed. */
const KEYS_SEALED_SETTING = 'bulk.private_keys_sealed';

/**
 * Seals the generated private keys that versions before sealing stored in clear in `bulk_task_results` (once per
 * database: a system setting records it; later versions only write sealed keys). Idempotent and safe against another
 * process doing the same (a row is only rewritten while it still holds the value read). Returns how many were sealed;
 * 0 without an installed sealer. Run at start, in the caller's transaction.
 */
export async function resealBulkPrivateKeys(db: Executor): Promise<number> {
  if (!registry.isSecretSealerInstalled() || (await registry.getSystemSetting(db, KEYS_SEALED_SETTING)) !== undefined) return 0;
  let sealed = 0;
  let after: { taskId: string; lineNo: number } | undefined;
  for (;;) {
    let q = db.selectFrom('bulk_task_results').select(['task_id', 'line_no', 'private_key_pem']).where('private_key_pem', 'is not', null);
    if (after !== undefined) {
      const a = after;
      q = q.where((eb) => eb.or([eb('task_id', '>', a.taskId), eb.and([eb('task_id', '=', a.taskId), eb('line_no', '>', a.lineNo)])]));
    }
    const rows = await q.orderBy('task_id').orderBy('line_no').limit(500).execute();
    for (const r of rows) {
      const stored = r.private_key_pem;
      if (stored === null || !registry.needsSealing(stored)) continue;
      const u = await db.updateTable('bulk_task_results').set({ private_key_pem: registry.sealSecret(bulkPrivateKeyLabel(r.task_id, r.line_no), stored) })
        .where('task_id', '=', r.task_id).where('line_no', '=', r.line_no).where('private_key_pem', '=', stored).executeTakeFirst();
      sealed += Number(u.numUpdatedRows);
    }
    const last = rows[rows.length - 1];
    if (last === undefined || rows.length < 500) break;
    after = { taskId: last.task_id, lineNo: last.line_no };
  }
  // (insert or nothing: two nodes starting together on one PostgreSQL database both succeed)
  await registry.claimSystemSetting(db, KEYS_SEALED_SETTING, registry.nowIso());
  return sealed;
}

/** SHA-256 (hex) of a template version's body, kept with the version id a task is pinned to. */
function bodyDigest(body: string): string {
  return createHash('sha256').update(body, 'utf8').digest('hex');
}

/** Page token of the task list (newest first): creation time and id of the last task of the page. */
function listKey(r: { created_at: string; task_id: string }): string {
  return `${r.created_at}|${r.task_id}`;
}

function errorOf(error: unknown): { code: string; message: string } {
  if (isGatehouseError(error)) return { code: error.code, message: error.message };
  return { code: 'PROVISIONING_BULK_LINE_FAILED', message: 'the line could not be written (database error)' };
}

/** Counts a byte stream and fails once it passes `max` (the upload limit, enforced while streaming). */
class ByteLimit extends Transform {
  private seen = 0;
  private readonly max: number;
  constructor(max: number) {
    super();
    this.max = max;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.max) cb(ProvisioningErrors.error('PROVISIONING_BULK_INPUT_TOO_LARGE', `the input exceeds ${this.max} bytes`));
    else cb(null, chunk);
  }
}

/**
 * Bulk registration (issue 7): runs tasks that turn a JSON-lines or CSV file of devices into things, certificates
 * and policy attachments through a provisioning template.
 *
 * Reliability: each line's result row is written in the same transaction as its resources, and the task's
 * checkpoint (`processed_lines`) and counters advance in that transaction too, per batch of lines. A crash loses at
 * most the batch in flight, which `resume` redoes; lines that already have a result row are skipped, so nothing is
 * duplicated. A line that fails inside the batch is rolled back to its savepoint and recorded as failed; a batch
 * that fails as a whole (e.g. a concurrent insert of the same thing) is redone line by line. One bad line fails alone.
 */

/** Batches prepared ahead of the one being written (bounded: memory is PREPARE_AHEAD × batch size lines). */
const PREPARE_AHEAD = 3;

export class BulkTaskRunner {
  private readonly o: BulkTaskRunnerOptions;
  private readonly active = new Map<string, ActiveRun>();
  private readonly batchSize: number;
  private closed = false;

  constructor(options: BulkTaskRunnerOptions) {
    this.o = options;
    this.batchSize = options.batchSize ?? 1000;
  }

  private get w(): registry.WriteOptions {
    return { rowLocks: this.o.store.supportsRowLocks };
  }

  /** Stores the input under the data directory, counts its records and starts the task (POST /v1/bulk-tasks). */
  async createTask(ctx: RegistryContext, input: CreateBulkTaskInput): Promise<BulkTaskView> {
    if (input.format !== 'jsonl' && input.format !== 'csv') throw ProvisioningErrors.error('PROVISIONING_BULK_FORMAT_INVALID', 'format must be jsonl or csv');
    const rec = await registry.getProvisioningTemplate(this.o.store.db, ctx.tenantId, input.templateName);
    parseTemplate(rec.templateBody, { type: rec.type, name: rec.templateName, maxLength: STORED_TEMPLATE_MAX_LENGTH });
    // The task is pinned to the version that is the default now: every run (resume) applies that same version.
    const templateVersionId = rec.defaultVersionId;
    const templateBodySha256 = bodyDigest(rec.templateBody);
    const taskId = randomUUID();
    const dir = path.join(this.o.dataDir, 'bulk');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const inputPath = path.join(dir, `${taskId}.input`);
    try {
      await pipeline(input.input, new ByteLimit(input.maxBytes), createWriteStream(inputPath, { mode: 0o600 }));
      const { total } = await countRecords(inputPath, input.format);
      if (total === 0) throw ProvisioningErrors.error('PROVISIONING_BULK_INPUT_EMPTY', 'the input has no device line');
      const now = registry.nowIso();
      await this.o.store.transaction(async (trx) => {
        await trx.insertInto('bulk_tasks').values({
          tenant_id: ctx.tenantId, task_id: taskId, template_name: rec.templateName, input_format: input.format, input_path: inputPath, status: 'RUNNING',
          total_lines: total, processed_lines: 0, succeeded: 0, already_present: 0, failed: 0, options: '{}', error: null, created_at: now, updated_at: now,
          template_version_id: templateVersionId, template_body_sha256: templateBodySha256,
        }).execute();
        await registry.appendAudit(trx, ctx, 'bulk.task.create', `bulk/${taskId}`, { templateName: rec.templateName, templateVersionId, format: input.format, total }, this.w.rowLocks);
      });
    } catch (error) {
      rmSync(inputPath, { force: true });
      throw error;
    }
    this.start(ctx, taskId);
    return this.getTask(ctx.tenantId, taskId);
  }

  private async row(tenantId: string, taskId: string, db: Executor = this.o.store.db): Promise<TaskRow> {
    const r = await db.selectFrom('bulk_tasks').selectAll().where('tenant_id', '=', tenantId).where('task_id', '=', taskId).executeTakeFirst();
    if (r === undefined) throw ProvisioningErrors.error('PROVISIONING_BULK_TASK_NOT_FOUND', `no bulk task ${taskId.slice(0, 64)} in this tenant`);
    return r;
  }

  private view(r: TaskRow): BulkTaskView {
    const processed = r.succeeded + r.already_present + r.failed;
    const run = this.active.get(r.task_id);
    let rate: number;
    if (run !== undefined) {
      const secs = (Date.now() - run.startedAt) / 1000;
      rate = secs > 0 ? (processed - run.processedAtStart) / secs : 0;
    } else {
      const secs = (Date.parse(r.updated_at) - Date.parse(r.created_at)) / 1000;
      rate = secs > 0 ? processed / secs : 0;
    }
    return {
      taskId: r.task_id,
      templateName: r.template_name,
      templateVersionId: r.template_version_id,
      format: r.input_format,
      status: r.status as BulkTaskStatus,
      total: r.total_lines ?? 0,
      processed,
      succeeded: r.succeeded,
      alreadyPresent: r.already_present,
      failed: r.failed,
      rate: Math.round(rate * 10) / 10,
      checkpointLine: r.processed_lines,
      error: r.error,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }

  /** GET /v1/bulk-tasks/{id}. */
  async getTask(tenantId: string, taskId: string): Promise<BulkTaskView> {
    return this.view(await this.row(tenantId, taskId));
  }

  /**
   * GET /v1/bulk-tasks: newest first, one page (`maxResults`, default 50, at most 250) and the `nextToken` of the
   * next one, as every list of the API. Throws REGISTRY_PAGINATION_TOKEN_INVALID for a token it did not give.
   */
  async listTasks(tenantId: string, page: PageRequest = {}): Promise<Page<BulkTaskView>> {
    const limit = registry.pageLimit(page);
    const after = registry.decodePageToken(page.nextToken);
    let q = this.o.store.db.selectFrom('bulk_tasks').selectAll().where('tenant_id', '=', tenantId);
    if (after !== undefined) {
      const cut = after.indexOf('|');
      if (cut < 0) throw registry.RegistryErrors.error('REGISTRY_PAGINATION_TOKEN_INVALID', 'nextToken is not valid');
      const createdAt = after.slice(0, cut);
      const taskId = after.slice(cut + 1);
      q = q.where((eb) => eb.or([eb('created_at', '<', createdAt), eb.and([eb('created_at', '=', createdAt), eb('task_id', '<', taskId)])]));
    }
    const rows = await q.orderBy('created_at', 'desc').orderBy('task_id', 'desc').limit(limit + 1).execute();
    return registry.toPage(rows, limit, listKey, (r) => this.view(r));
  }

  /** POST /v1/bulk-tasks/{id}/stop: the task stops after the batch in flight; `resume` continues it. */
  async stopTask(ctx: RegistryContext, taskId: string): Promise<BulkTaskView> {
    const r = await this.row(ctx.tenantId, taskId);
    const run = this.active.get(taskId);
    if (run !== undefined) {
      run.stopRequested = true;
      // Only a task still running shows STOPPING: its last batch may have just completed it.
      await this.o.store.db.updateTable('bulk_tasks').set({ status: 'STOPPING', updated_at: registry.nowIso() }).where('task_id', '=', taskId).where('status', '=', 'RUNNING').execute();
      await run.done;
    } else if (r.status === 'RUNNING' || r.status === 'STOPPING') {
      await this.setStatus(taskId, 'STOPPED');
    } else {
      throw ProvisioningErrors.error('PROVISIONING_BULK_TASK_STATE_INVALID', `task ${taskId} is ${r.status}`);
    }
    await this.audit(ctx, 'bulk.task.stop', taskId, {});
    return this.getTask(ctx.tenantId, taskId);
  }

  /**
   * Records who did what to a task: stop, resume, and each download of its results (they hold the private keys the
   * task generated) or errors.
   */
  async audit(ctx: RegistryContext, action: string, taskId: string, details: Record<string, unknown>): Promise<void> {
    await this.o.store.transaction((trx) => registry.appendAudit(trx, ctx, action, `bulk/${taskId}`, details, this.w.rowLocks));
  }

  /**
   * POST /v1/bulk-tasks/{id}/resume: continues a STOPPED or FAILED task, or one left RUNNING by a crash, from its
   * checkpoint. Lines that already have a result are not processed again.
   */
  async resumeTask(ctx: RegistryContext, taskId: string): Promise<BulkTaskView> {
    const r = await this.row(ctx.tenantId, taskId);
    if (this.active.has(taskId)) throw ProvisioningErrors.error('PROVISIONING_BULK_TASK_STATE_INVALID', `task ${taskId} is running`);
    if (r.status === 'COMPLETED') throw ProvisioningErrors.error('PROVISIONING_BULK_TASK_STATE_INVALID', `task ${taskId} is COMPLETED`);
    // Refused here, with its code, rather than marked FAILED by the run: the version the task started with must exist.
    await this.pinnedTemplate(ctx.tenantId, r);
    await this.setStatus(taskId, 'RUNNING', null);
    await this.audit(ctx, 'bulk.task.resume', taskId, { from: r.status });
    this.start(ctx, taskId);
    return this.getTask(ctx.tenantId, taskId);
  }

  /** Results (`kind` results: every line's outcome) or errors (failed lines only), as JSON lines, by line number. */
  async *streamResults(tenantId: string, taskId: string, kind: 'results' | 'errors'): AsyncGenerator<string> {
    await this.row(tenantId, taskId);
    let after = 0;
    for (;;) {
      let q = this.o.store.db.selectFrom('bulk_task_results').selectAll().where('task_id', '=', taskId).where('line_no', '>', after);
      if (kind === 'errors') q = q.where('outcome', '=', 'failed');
      const rows = await q.orderBy('line_no').limit(1000).execute();
      if (rows.length === 0) return;
      let out = '';
      for (const r of rows) {
        out += `${JSON.stringify(
          kind === 'errors'
            ? { line: r.line_no, thingName: r.thing_name, code: r.error_code, message: r.error_message }
            : {
                line: r.line_no, outcome: r.outcome, thingName: r.thing_name, certificateId: r.certificate_id,
                ...(r.certificate_pem === null ? {} : { certificatePem: r.certificate_pem }),
                // sealed under the KEK at rest; opened only here (a row of an earlier version, in clear, is read as is)
                ...(r.private_key_pem === null ? {} : { privateKeyPem: registry.openSecret(bulkPrivateKeyLabel(taskId, r.line_no), r.private_key_pem) }),
                ...(r.error_code === null ? {} : { code: r.error_code, message: r.error_message }),
              },
        )}\n`;
      }
      yield out;
      after = rows[rows.length - 1]?.line_no ?? after;
      if (rows.length < 1000) return;
    }
  }

  /** Stops every running task after its batch in flight (server shutdown); they resume with `resume`. */
  async close(): Promise<void> {
    this.closed = true;
    const runs = [...this.active.values()];
    for (const run of runs) run.stopRequested = true;
    await Promise.all(runs.map((r) => r.done));
  }

  /**
   * The template version the task is pinned to, parsed. Throws PROVISIONING_BULK_TEMPLATE_VERSION_GONE when that
   * version (or its template) was deleted, or its id now names another body, since the task started: a task never
   * switches versions. A task of an earlier Gatehouse (no version recorded) is pinned now to the current default.
   */
  private async pinnedTemplate(tenantId: string, r: TaskRow): Promise<ProvisioningTemplate> {
    const db = this.o.store.db;
    const name = r.template_name;
    const rec = await registry.findProvisioningTemplate(db, tenantId, name);
    const pinned = r.template_version_id === null ? `template "${name}"` : `version ${r.template_version_id} of template "${name}"`;
    const gone = (why: string): Error =>
      ProvisioningErrors.error('PROVISIONING_BULK_TEMPLATE_VERSION_GONE', `task ${r.task_id} applies ${pinned}, which ${why} since it started; it does not resume with another version (start a new task for the lines without a result)`);
    if (rec === undefined) throw gone(r.template_version_id === null ? 'was deleted' : 'was deleted with its template');
    let body: string;
    if (r.template_version_id === null) {
      body = rec.templateBody;
      await db.updateTable('bulk_tasks').set({ template_version_id: rec.defaultVersionId, template_body_sha256: bodyDigest(body) })
        .where('task_id', '=', r.task_id).where('template_version_id', 'is', null).execute();
    } else {
      const v = await db.selectFrom('provisioning_template_versions').select('body')
        .where('tenant_id', '=', tenantId).where('template_name', '=', name).where('version_id', '=', r.template_version_id).executeTakeFirst();
      if (v === undefined) throw gone('was deleted');
      if (r.template_body_sha256 !== null && bodyDigest(v.body) !== r.template_body_sha256) throw gone('was deleted (the id now names another version)');
      body = v.body;
    }
    return parseTemplate(body, { type: rec.type, name, maxLength: STORED_TEMPLATE_MAX_LENGTH });
  }

  private async setStatus(taskId: string, status: BulkTaskStatus, error?: string | null): Promise<void> {
    await this.o.store.db.updateTable('bulk_tasks').set({ status, updated_at: registry.nowIso(), ...(error === undefined ? {} : { error }) }).where('task_id', '=', taskId).execute();
  }

  private start(ctx: RegistryContext, taskId: string): void {
    if (this.closed || this.active.has(taskId)) return;
    const run: ActiveRun = { stopRequested: false, startedAt: Date.now(), processedAtStart: 0, processed: 0, done: Promise.resolve() };
    this.active.set(taskId, run);
    run.done = (async () => {
      try {
        await this.runTask(ctx, taskId, run);
      } catch (error) {
        this.o.onTaskError?.(taskId, error);
        await this.setStatus(taskId, 'FAILED', isGatehouseError(error) ? `${error.code}: ${error.message}` : 'internal error').catch(() => undefined);
      } finally {
        this.active.delete(taskId);
      }
    })();
  }

  private async runTask(ctx: RegistryContext, taskId: string, run: ActiveRun): Promise<void> {
    const db = this.o.store.db;
    const r = await this.row(ctx.tenantId, taskId);
    run.processedAtStart = r.succeeded + r.already_present + r.failed;
    const template = await this.pinnedTemplate(ctx.tenantId, r);
    const cas = await registry.listAllCas(db, ctx.tenantId);
    const anchors = cas.filter((c) => c.status === 'ACTIVE').map((c) => pki.parseCertificate(c.certificatePem));
    const anchorsByIssuer = new Map<string, ParsedCertificate[]>();
    for (const a of anchors) anchorsByIssuer.set(a.subjectNameDer.toString('hex'), [...(anchorsByIssuer.get(a.subjectNameDer.toString('hex')) ?? []), a]);
    const tc: TaskContext = {
      ctx: { tenantId: ctx.tenantId, actor: ctx.actor },
      taskId,
      template,
      declared: new Set(template.parameters.map((p) => p.name)),
      hasCertificate: template.resources.some((res) => res.kind === 'certificate'),
      anchors,
      anchorsByIssuer,
      revokedCaIds: new Set(cas.filter((c) => c.status === 'REVOKED').map((c) => c.caCertificateId)),
      issuer: undefined,
      inserts: new Map(),
      lastResultLineAtStart: await lastResultLine(db, taskId),
    };
    const checkpoint = r.processed_lines;
    let batch: DeviceRecord[] = [];
    let lastLine = checkpoint;
    // Up to PREPARE_AHEAD batches are prepared (parsing, signature checks in the thread pool) while the current one
    // is written, so that the thread pool never waits for the main thread's SQL. Writes stay strictly in order, so
    // the checkpoint only moves forward; batches prepared but not written when the task stops are simply dropped.
    let writing: Promise<void> = Promise.resolve();
    const compaction = new HeapCompaction();
    const ahead: Promise<{ lines: PreparedLine[]; last: number }>[] = [];
    const writeNext = async (): Promise<void> => {
      const next = ahead.shift();
      if (next === undefined) return;
      await writing;
      const prepared = await next;
      writing = this.writeBatch(tc, prepared.lines, prepared.last).then(() => compaction.afterBatch());
    };
    const flush = async (records: DeviceRecord[]): Promise<void> => {
      const preparing = this.prepareBatch(tc, records);
      preparing.catch(() => undefined);
      ahead.push(preparing);
      if (ahead.length >= PREPARE_AHEAD) await writeNext();
    };
    for await (const record of readDeviceFile(r.input_path, r.input_format as BulkInputFormat)) {
      if (record.lineNo <= checkpoint) continue;
      batch.push(record);
      lastLine = record.lineNo;
      if (batch.length >= this.batchSize) {
        await flush(batch);
        batch = [];
        if (run.stopRequested) {
          await writing;
          await this.setStatus(taskId, 'STOPPED');
          return;
        }
      }
    }
    if (batch.length > 0) await flush(batch);
    while (ahead.length > 0) await writeNext();
    await writing;
    await db.updateTable('bulk_tasks').set({ status: 'COMPLETED', processed_lines: lastLine, updated_at: registry.nowIso() }).where('task_id', '=', taskId).execute();
  }

  /** Skips lines that already have a result (resume) and prepares the others concurrently. */
  private async prepareBatch(tc: TaskContext, records: DeviceRecord[]): Promise<{ lines: PreparedLine[]; last: number }> {
    const first = records[0]?.lineNo ?? 0;
    const last = records[records.length - 1]?.lineNo ?? 0;
    // A resumed task may hold results past its checkpoint (lines written one by one after their batch failed).
    // Beyond the last of them no query is needed, and none is made: on SQLite it would wait for the batch being
    // written (one connection), which held back this batch's signature checks until then.
    const doneRows =
      first > tc.lastResultLineAtStart
        ? []
        : await this.o.store.db.selectFrom('bulk_task_results').select('line_no').where('task_id', '=', tc.taskId).where('line_no', '>=', first).where('line_no', '<=', last).execute();
    const done = new Set(doneRows.map((d) => d.line_no));
    const todo = records.filter((rec) => !done.has(rec.lineNo));
    return { lines: await Promise.all(todo.map((rec) => this.prepare(tc, rec))), last };
  }

  /**
   * Writes a prepared batch in one transaction — resources, result rows, counters and the checkpoint together. If
   * the transaction fails, the batch is redone line by line, each line in its own transaction, so a bad line fails
   * alone and nothing is half-written.
   */
  private async writeBatch(tc: TaskContext, prepared: PreparedLine[], last: number): Promise<void> {
    const lines = await this.markDuplicates(tc, prepared);
    const outcomes: LineOutcome[] = [];
    try {
      await this.o.store.transaction(async (trx) => {
        // Unchanged devices (re-runs) and pure creations are handled per batch; the rest go through applyPlan.
        const registered = await lookupCertificates(trx, tc, lines);
        const present = await selectPresentLines(trx, tc, lines, registered);
        const handled = new Set(present.map((o) => o.lineNo));
        outcomes.push(...present);
        const fast = await selectFastLines(trx, tc, lines.filter((p) => !handled.has(p.lineNo)), registered, this.w);
        outcomes.push(...(await writeFastLines(trx, tc, fast, this.w)));
        for (const f of fast) handled.add(f.lineNo);
        for (const p of lines) if (!handled.has(p.lineNo)) outcomes.push(await this.writeLineIsolated(trx, tc, p));
        await this.writeOutcomes(trx, tc, outcomes, last);
      });
    } catch {
      for (const p of lines) {
        try {
          await this.o.store.transaction(async (trx) => this.writeOutcomes(trx, tc, [await this.writeLine(trx, tc, p)], undefined));
        } catch (error) {
          const e = errorOf(error);
          await this.o.store.transaction(async (trx) => this.writeOutcomes(trx, tc, [failedOutcome(p.lineNo, p.thingName, e.code, e.message)], undefined));
        }
      }
      await this.o.store.db.updateTable('bulk_tasks').set({ processed_lines: last, updated_at: registry.nowIso() }).where('task_id', '=', tc.taskId).execute();
    }
    const run = this.active.get(tc.taskId);
    if (run !== undefined) run.processed += lines.length;
  }

  private async writeOutcomes(trx: Executor, tc: TaskContext, outcomes: readonly LineOutcome[], checkpoint: number | undefined): Promise<void> {
    const taskId = tc.taskId;
    for (let i = 0; i < outcomes.length; i += 100) {
      const slice = outcomes.slice(i, i + 100);
      await insertRows(trx, tc.inserts, 'bulk_task_results', slice.map((o) => ({
        task_id: taskId, line_no: o.lineNo, outcome: o.outcome, thing_name: o.thingName, certificate_id: o.certificateId, certificate_pem: o.certificatePem,
        // a generated key is sealed before it reaches the database (and any error or log of a failed insert)
        private_key_pem: o.privateKeyPem === null ? null : registry.sealSecret(bulkPrivateKeyLabel(taskId, o.lineNo), o.privateKeyPem), error_code: o.code, error_message: o.message,
      })));
    }
    const created = outcomes.filter((o) => o.outcome === 'created').length;
    const present = outcomes.filter((o) => o.outcome === 'present').length;
    const failed = outcomes.length - created - present;
    let u = trx.updateTable('bulk_tasks').set((eb) => ({
      succeeded: eb('succeeded', '+', created),
      already_present: eb('already_present', '+', present),
      failed: eb('failed', '+', failed),
      updated_at: registry.nowIso(),
    }));
    if (checkpoint !== undefined) u = u.set({ processed_lines: checkpoint });
    await u.where('task_id', '=', taskId).execute();
  }

  /** Refuses a thing name that an earlier line of the same task already used (in this batch or a committed one). */
  private async markDuplicates(tc: TaskContext, prepared: PreparedLine[]): Promise<PreparedLine[]> {
    const names = [...new Set(prepared.filter((p) => p.kind === 'ok' && p.thingName !== null).map((p) => p.thingName as string))];
    const earlier = new Set<string>();
    for (let i = 0; i < names.length; i += 500) {
      const part = names.slice(i, i + 500);
      const q = this.o.store.db.selectFrom('bulk_task_results').select('thing_name').where('task_id', '=', tc.taskId).where('outcome', '!=', 'failed');
      const rows = await (isPostgres(this.o.store.db) ? q.where('thing_name', '=', anyText(part)) : q.where('thing_name', 'in', part)).execute();
      for (const row of rows) if (row.thing_name !== null) earlier.add(row.thing_name);
    }
    return prepared.map((p) => {
      if (p.kind !== 'ok' || p.thingName === null) return p;
      if (earlier.has(p.thingName)) {
        return { kind: 'fail', lineNo: p.lineNo, thingName: p.thingName, code: 'PROVISIONING_BULK_DUPLICATE_THING', message: `thing "${p.thingName}" appears on an earlier line of this input` };
      }
      earlier.add(p.thingName);
      return p;
    });
  }

  /** Everything that needs no transaction: parse, evaluate the template, verify or issue the certificate. */
  private async prepare(tc: TaskContext, record: DeviceRecord): Promise<PreparedLine> {
    const lineNo = record.lineNo;
    if (record.kind === 'error') return { kind: 'fail', lineNo, thingName: null, code: record.code, message: record.message };
    const fields = { ...record.fields };
    let thingName: string | null = null;
    try {
      const refused = fields[REFUSED_KEY];
      if (refused !== undefined) return refusedLine(lineNo, fields, refused);
      const csrKey = CSR_KEYS.find((k) => fields[k] !== undefined);
      const pemKey = PEM_KEYS.find((k) => fields[k] !== undefined);
      if (csrKey !== undefined && pemKey !== undefined) throw ProvisioningErrors.error('PROVISIONING_BULK_MATERIAL_AMBIGUOUS', `line ${lineNo} has both a CSR and a certificate`);
      const csrPem = csrKey === undefined ? undefined : fields[csrKey];
      const certPem = pemKey === undefined ? undefined : fields[pemKey];
      // Material keys the template does not declare are Gatehouse's own line keys, not template parameters.
      for (const k of [...CSR_KEYS, ...PEM_KEYS]) if (!tc.declared.has(k)) delete fields[k];
      if (certPem !== undefined) {
        // The certificate is known first, so the template is evaluated once, with its id.
        const cert = await this.registeredCertificate(tc, certPem);
        const plan = evaluateTemplate(tc.template, { parameters: fields, certificateId: cert.certificateId }, { rejectUnknownParameters: true });
        return { kind: 'ok', lineNo, thingName: plan.thing?.thingName ?? null, plan, cert };
      }
      // Signing needs the thing name (subject, and reuse on a re-run): evaluate once to learn it, then with the id.
      const probe = evaluateTemplate(tc.template, { parameters: fields, certificateId: PLACEHOLDER_ID }, { rejectUnknownParameters: true });
      thingName = probe.thing?.thingName ?? null;
      let cert: CertificateMaterial | undefined;
      if (csrPem !== undefined) cert = await this.issuedCertificate(tc, thingName, pki.parseCsr(csrPem));
      else if (tc.hasCertificate || probe.certificate !== undefined) cert = await this.issuedCertificate(tc, thingName, undefined);
      const plan = cert === undefined ? probe : evaluateTemplate(tc.template, { parameters: fields, certificateId: cert.certificateId }, { rejectUnknownParameters: true });
      return { kind: 'ok', lineNo, thingName, plan, cert };
    } catch (error) {
      const e = isGatehouseError(error) ? { code: error.code, message: error.message } : { code: 'PROVISIONING_BULK_LINE_MALFORMED', message: `line ${lineNo} cannot be read` };
      return { kind: 'fail', lineNo, thingName, code: e.code, message: e.message };
    }
  }

  /**
   * A certificate brought by the line: verified against the tenant's ACTIVE CAs, or pinned without a CA (MAR).
   * The common case — one certificate whose issuer is a registered CA — takes the fast path (DER walk + signature
   * check in the thread pool); everything else, and every failure, takes the full `pki` path for its checks and codes.
   */
  private async registeredCertificate(tc: TaskContext, pem: string): Promise<CertificateMaterial> {
    const der = decodeSingleCertificatePem(pem);
    const fields = der === undefined ? undefined : readCertificateFields(der);
    if (fields !== undefined && !fields.isCa) {
      const now = Date.now();
      const candidates = (tc.anchorsByIssuer.get(fields.issuerNameDer.toString('hex')) ?? []).filter((a) => a.notBefore.getTime() <= now && now <= a.notAfter.getTime());
      if (candidates.length > 0 && fields.notBefore.getTime() <= now && now <= fields.notAfter.getTime()) {
        for (const anchor of candidates) {
          if (await verifyCertificateSignature(fields, anchor.publicKey)) {
            return {
              certificateId: fields.certificateId, pem: pki.encodePem('CERTIFICATE', fields.der), caCertificateId: anchor.certificateId, serialNumber: fields.serialNumber,
              subjectCommonName: fields.subjectCommonName, notBefore: fields.notBefore, notAfter: fields.notAfter, createdBy: 'bulk', reused: false, issued: false, privateKeyPem: null,
            };
          }
        }
      }
    }
    return this.registeredCertificateFull(tc, pem);
  }

  private registeredCertificateFull(tc: TaskContext, pem: string): CertificateMaterial {
    const [first, ...rest] = pki.splitPemChain(pem);
    const leaf = pki.parseCertificate(first ?? pem);
    if (leaf.isCa) throw ProvisioningErrors.error('PROVISIONING_CERTIFICATE_IS_CA', DEVICE_CERTIFICATE_IS_CA);
    const intermediates = rest.map((b) => pki.parseCertificate(b));
    const now = new Date();
    const named = [leaf, ...intermediates].some((c) => tc.anchors.some((a) => c.issuerNameDer.equals(a.subjectNameDer)));
    let caId: string | null = null;
    if (named) {
      const { anchor } = pki.verifyCertificateChain({ leaf, intermediates, anchors: tc.anchors, now, isRevoked: (c) => tc.revokedCaIds.has(c.certificateId) });
      caId = anchor.certificateId;
    } else {
      pki.assertCertificateTimeValid(leaf, now);
    }
    return {
      certificateId: leaf.certificateId, pem: leaf.pem, caCertificateId: caId, serialNumber: leaf.serialNumber, subjectCommonName: leaf.subject.CN?.[0] ?? null,
      notBefore: leaf.notBefore, notAfter: leaf.notAfter, createdBy: caId === null ? 'bulk-without-ca' : 'bulk', reused: false, issued: false, privateKeyPem: null,
    };
  }

  /**
   * A certificate Gatehouse signs: from the line's CSR, or for a key pair it generates (development only). On a
   * re-run, the thing's existing certificate for the same key (or any, for generated keys) is reused instead.
   */
  private async issuedCertificate(tc: TaskContext, thingName: string | null, csr: pki.ParsedCsr | undefined): Promise<CertificateMaterial> {
    if (thingName !== null) {
      const rows = await this.o.store.db
        .selectFrom('thing_principals').innerJoin('certificates', (j) => j.onRef('certificates.tenant_id', '=', 'thing_principals.tenant_id').onRef('certificates.certificate_id', '=', 'thing_principals.certificate_id'))
        .select(['certificates.certificate_id', 'certificates.certificate_pem', 'certificates.ca_certificate_id', 'certificates.serial_number', 'certificates.subject_cn', 'certificates.not_before', 'certificates.not_after', 'certificates.created_by'])
        .where('thing_principals.tenant_id', '=', tc.ctx.tenantId).where('thing_principals.thing_name', '=', thingName).execute();
      for (const row of rows) {
        if (csr !== undefined && !pki.parseCertificate(row.certificate_pem).spkiDer.equals(csr.spkiDer)) continue;
        return {
          certificateId: row.certificate_id, pem: row.certificate_pem, caCertificateId: row.ca_certificate_id, serialNumber: row.serial_number, subjectCommonName: row.subject_cn,
          notBefore: new Date(row.not_before), notAfter: new Date(row.not_after), createdBy: row.created_by, reused: true, issued: true, privateKeyPem: null,
        };
      }
    }
    tc.issuer ??= this.o.cas.issuerFor(tc.ctx.tenantId);
    const ready = await tc.issuer;
    const keys = csr === undefined ? pki.generateKeyPair('EC_P256') : undefined;
    const subject = csr?.subject ?? { CN: [thingName ?? 'Gatehouse device'] };
    const issued = ready.issuer.issue({
      publicKey: csr?.spkiDer ?? keys?.spkiDer ?? Buffer.alloc(0),
      subject,
      validityDays: DEVICE_CERT_VALIDITY_DAYS,
      extendedKeyUsage: 'clientAuth',
      crlDistributionPointUrl: this.o.cas.crlUrl(ready.ca.caCertificateId),
    });
    return {
      certificateId: issued.certificateId, pem: issued.pem, caCertificateId: ready.ca.caCertificateId, serialNumber: issued.serialNumber, subjectCommonName: subject.CN?.[0] ?? null,
      notBefore: issued.notBefore, notAfter: issued.notAfter, createdBy: csr === undefined ? 'bulk-keys' : 'bulk-csr', reused: false, issued: true, privateKeyPem: keys?.privateKeyPem ?? null,
    };
  }

  /**
   * Writes one line under a savepoint of the batch transaction: a line that fails (override conflict, missing
   * group, certificate attached elsewhere, …) is rolled back alone and recorded as failed; the batch goes on.
   */
  private async writeLineIsolated(trx: Executor, tc: TaskContext, p: PreparedLine): Promise<LineOutcome> {
    if (p.kind === 'fail') return failedOutcome(p.lineNo, p.thingName, p.code, p.message);
    await sql`savepoint bulk_line`.execute(trx);
    try {
      const outcome = await this.writeLine(trx, tc, p);
      await sql`release savepoint bulk_line`.execute(trx);
      return outcome;
    } catch (error) {
      await sql`rollback to savepoint bulk_line`.execute(trx);
      await sql`release savepoint bulk_line`.execute(trx);
      const e = errorOf(error);
      return failedOutcome(p.lineNo, p.thingName, e.code, e.message);
    }
  }

  /** Writes one line's resources and returns its outcome (inside the caller's transaction). */
  private async writeLine(trx: Executor, tc: TaskContext, p: PreparedLine): Promise<LineOutcome> {
    if (p.kind === 'fail') return failedOutcome(p.lineNo, p.thingName, p.code, p.message);
    const { ctx } = tc;
    const cert = p.cert;
    let certExisted = false;
    if (cert !== undefined) {
      const existing = await registry.findCertificate(trx, ctx.tenantId, cert.certificateId);
      certExisted = existing !== undefined;
      if (existing === undefined) {
        const status: CertificateStatus = p.plan.certificate?.status ?? 'ACTIVE';
        await registry.insertCertificate(trx, ctx, {
          certificateId: cert.certificateId, certificatePem: cert.pem, caCertificateId: cert.caCertificateId, status, serialNumber: cert.serialNumber,
          subjectCommonName: cert.subjectCommonName, notBefore: cert.notBefore, notAfter: cert.notAfter, createdBy: cert.createdBy,
        }, this.w);
      } else if (p.thingName !== null) {
        const owners = await registry.listPrincipalThings(trx, ctx.tenantId, cert.certificateId);
        const other = owners.find((t) => t !== p.thingName);
        if (other !== undefined) throw ProvisioningErrors.error('PROVISIONING_BULK_CERTIFICATE_CONFLICT', `the certificate of line ${p.lineNo} is attached to thing "${other}"`);
      }
    }
    const applied = await applyPlan(trx, ctx, p.plan, { certificateId: cert?.certificateId, rowLocks: this.w.rowLocks });
    const present = (cert === undefined || certExisted) && (p.plan.thing === undefined || applied.thingExisted);
    return {
      lineNo: p.lineNo,
      outcome: present ? 'present' : 'created',
      thingName: applied.thingName ?? null,
      certificateId: cert?.certificateId ?? null,
      certificatePem: cert?.issued === true ? cert.pem : null,
      privateKeyPem: cert?.privateKeyPem ?? null,
      code: null,
      message: null,
    };
  }
}

function failedOutcome(lineNo: number, thingName: string | null, code: string, message: string): LineOutcome {
  return { lineNo, outcome: 'failed', thingName, certificateId: null, certificatePem: null, privateKeyPem: null, code, message };
}

function refusedLine(lineNo: number, fields: Readonly<Record<string, string>>, refused: string): PreparedLine {
  let code = 'PROVISIONING_MANIFEST_ENTRY_REFUSED';
  let message = `line ${lineNo}: the manifest entry was refused`;
  try {
    const r = JSON.parse(refused) as { code?: unknown; message?: unknown };
    if (typeof r.code === 'string' && /^PROVISIONING_MANIFEST_[A-Z_]{1,64}$/.test(r.code) && r.code in ProvisioningErrors.specs) code = r.code;
    if (typeof r.message === 'string') message = r.message.slice(0, 500);
  } catch {
    // keep the generic refusal
  }
  const name = fields['ThingName'];
  return { kind: 'fail', lineNo, thingName: name === undefined ? null : name.slice(0, 128), code, message };
}

/** The highest line number with a result row of a task, or 0. */
async function lastResultLine(db: Executor, taskId: string): Promise<number> {
  const row = await db.selectFrom('bulk_task_results').select((eb) => eb.fn.max('line_no').as('last')).where('task_id', '=', taskId).executeTakeFirst();
  return Number(row?.last ?? 0);
}

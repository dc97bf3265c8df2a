import { createHash } from 'node:crypto';
import { prepare } from '../store/index.ts';
import type { AuditLogTable, Executor, PreparedQuery } from '../store/index.ts';
import type { AuditBatch, PendingAuditEntry, RegistryContext } from './context.ts';
import { nowIso } from './context.ts';

/** One audit entry as written. */
export interface AuditEntry {
  readonly seq: number;
  readonly tenantId: string;
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly details: Record<string, unknown>;
  readonly prevHash: string;
  readonly hash: string;
}

const GENESIS = '0'.repeat(64);

function hashEntry(e: { seq: number; tenantId: string; at: string; actor: string; action: string; target: string; details: string; prevHash: string }): string {
  return createHash('sha256')
    .update(JSON.stringify([e.seq, e.tenantId, e.at, e.actor, e.action, e.target, e.details, e.prevHash]))
    .digest('hex');
}

/**
 * Appends an entry to the append-only audit log inside the caller's transaction. Each entry carries the SHA-256
 * of the previous one; the head row is locked (PostgreSQL) or the writer is exclusive (SQLite), so the chain never forks.
 * Inside `withAuditBatch` (a context with `auditBatch`) the entry is held and written with the others of the batch.
 */
export async function appendAudit(
  trx: Executor,
  ctx: RegistryContext,
  action: string,
  target: string,
  details: Record<string, unknown> = {},
  rowLocks = false,
): Promise<void> {
  const entry: PendingAuditEntry = { tenantId: ctx.tenantId, at: nowIso(), actor: ctx.actor, action, target, details: JSON.stringify(details) };
  if (ctx.auditBatch !== undefined) {
    ctx.auditBatch.entries.push(entry);
    ctx.auditBatch.rowLocks ||= rowLocks;
    return;
  }
  await writeAuditEntries(trx, [entry], rowLocks);
}

/** Rows per multi-row insert (9 parameters each; well under SQLite's and PostgreSQL's parameter limits). */
const AUDIT_INSERT_CHUNK = 500;

// The chain head and the inserts of small batches (a provisioning flow writes 1–8 entries), prepared once per
// dialect (src/store/prepared.ts); bigger batches are built by Kysely in chunks.
const headForUpdate = prepare('audit head for update', (db, p: { id: number }) => db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', p.id).forUpdate());
const head = prepare('audit head', (db, p: { id: number }) => db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', p.id));
const moveHead = prepare('move audit head', (db, p: { id: number; seq: number; hash: string }) => db.updateTable('audit_head').set({ seq: p.seq, hash: p.hash }).where('id', '=', p.id));
const PREPARED_INSERT_MAX_ROWS = 16;
const insertRows = new Map<number, PreparedQuery<Record<string, unknown>, unknown>>();
const AUDIT_COLUMNS = ['seq', 'tenant_id', 'at', 'actor', 'action', 'target', 'details', 'prev_hash', 'hash'] as const;

function insertOf(n: number): PreparedQuery<Record<string, unknown>, unknown> {
  let q = insertRows.get(n);
  if (q === undefined) {
    q = prepare(`insert ${n} audit entries`, (db, p: Record<string, unknown>) =>
      db.insertInto('audit_log').values(Array.from({ length: n }, (_, i) => Object.fromEntries(AUDIT_COLUMNS.map((c) => [c, p[`${c}${i}`]])) as unknown as AuditLogTable)));
    insertRows.set(n, q);
  }
  return q;
}

/** Chains `entries` after the current head, in order: one head read, multi-row inserts, one head update. */
async function writeAuditEntries(trx: Executor, entries: readonly PendingAuditEntry[], rowLocks: boolean): Promise<void> {
  if (entries.length === 0) return;
  const current = await (rowLocks ? headForUpdate : head).first(trx, { id: 1 });
  if (current === undefined) throw new Error('the audit chain head row is missing');
  let seq = current.seq;
  let prevHash = current.hash;
  const rows = entries.map((e) => {
    seq += 1;
    const hash = hashEntry({ seq, tenantId: e.tenantId, at: e.at, actor: e.actor, action: e.action, target: e.target, details: e.details, prevHash });
    const row = { seq, tenant_id: e.tenantId, at: e.at, actor: e.actor, action: e.action, target: e.target, details: e.details, prev_hash: prevHash, hash };
    prevHash = hash;
    return row;
  });
  if (rows.length <= PREPARED_INSERT_MAX_ROWS) {
    const params: Record<string, unknown> = {};
    rows.forEach((row, i) => {
      for (const c of AUDIT_COLUMNS) params[`${c}${i}`] = row[c];
    });
    await insertOf(rows.length).run(trx, params);
  } else {
    for (let i = 0; i < rows.length; i += AUDIT_INSERT_CHUNK) await trx.insertInto('audit_log').values(rows.slice(i, i + AUDIT_INSERT_CHUNK)).execute();
  }
  await moveHead.run(trx, { id: 1, seq, hash: prevHash });
}

/**
 * Runs `fn` with a context whose audit entries are held in memory and chained and written together when `fn`
 * returns (three statements for the whole batch instead of three per entry; on PostgreSQL the chain head is locked
 * only for that last moment). Use it inside one transaction that has no savepoint: an entry must never outlive a
 * rolled-back part of its transaction. When `fn` throws, nothing is written and the caller's transaction rolls back.
 */
export async function withAuditBatch<T>(trx: Executor, ctx: RegistryContext, rowLocks: boolean, fn: (batchCtx: RegistryContext) => Promise<T>): Promise<T> {
  const batch: AuditBatch = { entries: [], rowLocks };
  const result = await fn({ ...ctx, auditBatch: batch });
  await writeAuditEntries(trx, batch.entries, batch.rowLocks);
  return result;
}

/** Result of checking the whole chain. */
export interface AuditVerification {
  readonly ok: boolean;
  readonly entries: number;
  /** First problem found: the sequence number and what is wrong. */
  readonly problem?: { readonly seq: number; readonly reason: 'hash_mismatch' | 'chain_broken' | 'missing_entry' | 'truncated' };
}

/** Recomputes every hash in order; detects an edited, deleted, inserted or truncated entry. */
export async function verifyAuditLog(db: Executor, batch = 5000): Promise<AuditVerification> {
  const head = await db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirstOrThrow();
  let prevHash = GENESIS;
  let expectedSeq = 1;
  let count = 0;
  for (;;) {
    const rows = await db.selectFrom('audit_log').selectAll().where('seq', '>=', expectedSeq).orderBy('seq').limit(batch).execute();
    for (const r of rows) {
      if (r.seq !== expectedSeq) return { ok: false, entries: count, problem: { seq: expectedSeq, reason: 'missing_entry' } };
      if (r.prev_hash !== prevHash) return { ok: false, entries: count, problem: { seq: r.seq, reason: 'chain_broken' } };
      const h = hashEntry({ seq: r.seq, tenantId: r.tenant_id, at: r.at, actor: r.actor, action: r.action, target: r.target, details: r.details, prevHash: r.prev_hash });
      if (h !== r.hash) return { ok: false, entries: count, problem: { seq: r.seq, reason: 'hash_mismatch' } };
      prevHash = r.hash;
      expectedSeq += 1;
      count += 1;
    }
    if (rows.length < batch) break;
  }
  if (head.seq !== count || head.hash !== prevHash) {
    return { ok: false, entries: count, problem: { seq: count + 1, reason: head.seq > count ? 'truncated' : 'chain_broken' } };
  }
  return { ok: true, entries: count };
}

/** Lists a tenant's audit entries, newest first. */
export async function listAudit(db: Executor, tenantId: string, options: { limit: number; beforeSeq?: number | undefined }): Promise<AuditEntry[]> {
  let q = db.selectFrom('audit_log').selectAll().where('tenant_id', '=', tenantId);
  if (options.beforeSeq !== undefined) q = q.where('seq', '<', options.beforeSeq);
  const rows = await q.orderBy('seq', 'desc').limit(options.limit).execute();
  return rows.map((r) => ({
    seq: r.seq,
    tenantId: r.tenant_id,
    at: r.at,
    actor: r.actor,
    action: r.action,
    target: r.target,
    details: JSON.parse(r.details) as Record<string, unknown>,
    prevHash: r.prev_hash,
    hash: r.hash,
  }));
}

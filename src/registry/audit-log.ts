import { createHash } from 'node:crypto';
import type { Executor } from '../store/index.ts';
import type { RegistryContext } from './context.ts';
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
 */
export async function appendAudit(
  trx: Executor,
  ctx: RegistryContext,
  action: string,
  target: string,
  details: Record<string, unknown> = {},
  rowLocks = false,
): Promise<void> {
  let q = trx.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1);
  if (rowLocks) q = q.forUpdate();
  const head = await q.executeTakeFirstOrThrow();
  const entry = {
    seq: head.seq + 1,
    tenantId: ctx.tenantId,
    at: nowIso(),
    actor: ctx.actor,
    action,
    target,
    details: JSON.stringify(details),
    prevHash: head.hash,
  };
  const hash = hashEntry(entry);
  await trx
    .insertInto('audit_log')
    .values({ seq: entry.seq, tenant_id: entry.tenantId, at: entry.at, actor: entry.actor, action, target, details: entry.details, prev_hash: entry.prevHash, hash })
    .execute();
  await trx.updateTable('audit_head').set({ seq: entry.seq, hash }).where('id', '=', 1).execute();
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

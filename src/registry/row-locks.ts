import type { Executor } from '../store/index.ts';

/** The tables {@link lockRow} locks rows of, with their key column. */
const LOCKABLE = { policies: 'policy_name', things: 'thing_name', thing_groups: 'thing_group_name' } as const;

/**
 * Locks a policy, thing or thing group row for the rest of the transaction where the store has row locks
 * (PostgreSQL; SQLite runs one write transaction at a time): `update` before deleting it, `share` before attaching to
 * it. Without it, a delete and a concurrent attach both succeeded and left attachments to nothing, which a later
 * policy or thing of the same name inherited; and concurrent deletes each wrote their own audit entry.
 */
export async function lockRow(db: Executor, table: keyof typeof LOCKABLE, tenantId: string, key: string, mode: 'update' | 'share', opts: { readonly rowLocks?: boolean | undefined }): Promise<void> {
  if (opts.rowLocks !== true) return;
  const q = db.selectFrom(table).select('tenant_id').where('tenant_id', '=', tenantId).where(LOCKABLE[table], '=', key);
  await (mode === 'update' ? q.forUpdate() : q.forShare()).execute();
}

import { Migrator, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../../test/support/dialects.ts';
import { createPostgresStoreDialect, createSqliteStoreDialect } from './index.ts';
import { migrationProvider } from './migrations.ts';
import { createStore } from './store.ts';
import type { Store } from './store.ts';

const ROWS = [
  { tenant_id: 't1', policy_name: 'device', target_type: 'certificate', target_id: 'c'.repeat(64) },
  { tenant_id: 't1', policy_name: 'device', target_type: 'certificate', target_id: 'a'.repeat(64) },
  { tenant_id: 't1', policy_name: 'extra', target_type: 'certificate', target_id: 'a'.repeat(64) },
  { tenant_id: 't1', policy_name: 'device', target_type: 'thinggroup', target_id: 'floor-1' },
  { tenant_id: 't2', policy_name: 'device', target_type: 'certificate', target_id: 'a'.repeat(64) },
];

/** Migration 0010: policy_attachments keyed by target first, rows kept, lookups by target and by policy indexed. */
for (const dialect of DIALECTS) {
  describe(`policy_attachments keyed by target (migration 0010, ${dialect.name})`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    beforeAll(async () => {
      const target = await dialect.serverDatabase();
      const storeDialect = target.url === undefined ? createSqliteStoreDialect({ filename: ':memory:' }) : createPostgresStoreDialect({ connectionString: target.url, maxConnections: 2 });
      store = createStore(storeDialect);
      dispose = async () => {
        await store.close();
        await target.dispose();
      };
      // Up to the migration before, with attachments in the old table; then to the latest.
      await storeDialect.prepare();
      const migrator = new Migrator({ db: store.db, provider: migrationProvider, ...(storeDialect.migrationSchema === undefined ? {} : { migrationTableSchema: storeDialect.migrationSchema }) });
      const before = await migrator.migrateTo('0009_certificate_partial_indexes');
      expect(before.error).toBeUndefined();
      await store.db.insertInto('policy_attachments').values(ROWS).execute();
      await store.migrate();
    });
    afterAll(async () => dispose());

    it('keeps every row and still refuses a duplicate attachment', async () => {
      const rows = await store.db.selectFrom('policy_attachments').selectAll().orderBy('tenant_id').orderBy('target_type').orderBy('target_id').orderBy('policy_name').execute();
      expect(rows).toHaveLength(ROWS.length);
      expect(new Set(rows.map((r) => JSON.stringify([r.tenant_id, r.policy_name, r.target_type, r.target_id])))).toEqual(new Set(ROWS.map((r) => JSON.stringify([r.tenant_id, r.policy_name, r.target_type, r.target_id]))));
      await expect(store.db.insertInto('policy_attachments').values(ROWS[0] as (typeof ROWS)[number]).execute()).rejects.toThrow();
      await store.db.insertInto('policy_attachments').values(ROWS[0] as (typeof ROWS)[number]).onConflict((oc) => oc.doNothing()).execute();
      expect((await store.db.selectFrom('policy_attachments').select('policy_name').where('tenant_id', '=', 't1').where('target_type', '=', 'certificate').where('target_id', '=', 'a'.repeat(64)).orderBy('policy_name').execute()).map((r) => r.policy_name)).toEqual(['device', 'extra']);
      expect((await store.db.selectFrom('policy_attachments').select('target_id').where('tenant_id', '=', 't1').where('policy_name', '=', 'device').orderBy('target_id').execute()).map((r) => r.target_id)).toEqual(['a'.repeat(64), 'c'.repeat(64), 'floor-1']);
    });

    it('has the key by target and the index by policy, and not the old index by target', async () => {
      if (dialect.name === 'sqlite') {
        const plan = async (text: string): Promise<string> => ((await sql.raw(`explain query plan ${text}`).execute(store.db)).rows as { detail: string }[]).map((r) => r.detail).join(' | ');
        expect(await plan(`select policy_name from policy_attachments where tenant_id = 't1' and target_type = 'certificate' and target_id = 'x'`)).toContain('sqlite_autoindex_policy_attachments');
        // (the registry names the index for this lookup: without statistics SQLite prefers the covering key)
        expect(await plan(`select target_id from policy_attachments indexed by policy_attachments_policy where tenant_id = 't1' and policy_name = 'device'`)).toContain('policy_attachments_policy (tenant_id=? AND policy_name=?)');
        const indexes = (await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'policy_attachments'`.execute(store.db)).rows.map((r) => r.name);
        expect(indexes).not.toContain('policy_attachments_target');
      } else {
        const defs = (await sql<{ indexname: string; indexdef: string }>`select indexname, indexdef from pg_indexes where tablename = 'policy_attachments' and schemaname = current_schema()`.execute(store.db)).rows;
        expect(defs.find((d) => d.indexname === 'policy_attachments_pk')?.indexdef).toContain('(tenant_id, target_type, target_id, policy_name)');
        expect(defs.find((d) => d.indexname === 'policy_attachments_policy')?.indexdef).toContain('(tenant_id, policy_name)');
        expect(defs.map((d) => d.indexname)).not.toContain('policy_attachments_target');
      }
    });
  });
}

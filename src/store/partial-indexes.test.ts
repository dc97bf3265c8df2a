import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteStoreDialect } from './dialects/sqlite/sqlite-store-dialect.ts';
import { createStore } from './store.ts';
import type { Store } from './store.ts';

/** Migration 0009: the transfer and CRL lookups use partial indexes, and no index on certificate_id alone is left. */
describe('certificate partial indexes (SQLite query plans)', () => {
  let store: Store;
  beforeAll(async () => {
    store = createStore(createSqliteStoreDialect({ filename: ':memory:' }));
    await store.migrate();
  });
  afterAll(async () => store.close());

  const plan = async (text: string): Promise<string> =>
    ((await sql.raw(`explain query plan ${text}`).execute(store.db)).rows as { detail: string }[]).map((r) => r.detail).join(' | ');

  it('uses them for the queries that name their condition', async () => {
    expect(await plan(`select * from certificates where certificate_id = 'x' and status = 'PENDING_TRANSFER'`)).toContain('certificates_pending_transfer');
    expect(await plan(`select certificate_id from certificates where transfer_to_tenant_id = 't' and status = 'PENDING_TRANSFER'`)).toContain('certificates_transfers_in');
    expect(await plan(`select serial_number from certificates where ca_certificate_id = 'c' and status = 'REVOKED'`)).toContain('certificates_revoked_by_ca');
    const indexes = (await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'certificates'`.execute(store.db)).rows.map((r) => r.name);
    expect(indexes).not.toContain('certificates_by_id');
  });
});

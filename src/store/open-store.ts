import path from 'node:path';
import { createPostgresStoreDialect } from './dialects/postgres/postgres-store-dialect.ts';
import { createSqliteStoreDialect } from './dialects/sqlite/sqlite-store-dialect.ts';
import { createStore } from './store.ts';
import type { Store } from './store.ts';

/** Where the store lives: a PostgreSQL URL, or SQLite in the data directory. */
export interface OpenStoreOptions {
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  /** Apply migrations (default true). A read-only check (`audit verify --offline`) opens the store as it is. */
  readonly migrate?: boolean | undefined;
}

/** Opens the configured store and applies migrations (unless `migrate` is false). */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const dialect =
    options.databaseUrl === undefined
      ? createSqliteStoreDialect({ filename: path.join(options.dataDir, 'gatehouse.db') })
      : createPostgresStoreDialect({ connectionString: options.databaseUrl });
  const store = createStore(dialect);
  if (options.migrate === false) return store;
  try {
    await store.migrate();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

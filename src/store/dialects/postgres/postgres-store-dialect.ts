import pg from 'pg';
import { PostgresDialect } from 'kysely';
import type { Dialect } from 'kysely';
import type { StoreDialect } from '../../store-dialect.ts';

/** Options of the PostgreSQL store. */
export interface PostgresStoreOptions {
  /** `postgres://user@host:port/db`; `?options=-c search_path=<schema>` selects a schema. */
  readonly connectionString: string;
  readonly maxConnections?: number;
}

/** PostgreSQL through `pg`: a pool; the schema named by `search_path` is created if absent. */
export function createPostgresStoreDialect(options: PostgresStoreOptions): StoreDialect {
  const pool = new pg.Pool({ connectionString: options.connectionString, max: options.maxConnections ?? 10 });
  const schema = /search_path=([A-Za-z0-9_]+)/.exec(decodeURIComponent(options.connectionString))?.[1];
  return {
    name: 'postgres',
    supportsRowLocks: true,
    // Kysely finds its bookkeeping tables by name in any schema unless told which one: name it, so that
    // installations sharing a database in different schemas never see each other's migrations.
    migrationSchema: schema ?? 'public',
    createKyselyDialect(): Dialect {
      return new PostgresDialect({ pool });
    },
    async prepare(): Promise<void> {
      if (schema !== undefined) await pool.query(`create schema if not exists "${schema}"`);
    },
    isUniqueViolation(error: unknown): boolean {
      return (error as { code?: unknown } | null)?.code === '23505';
    },
    dispose: () => Promise.resolve(),
  };
}

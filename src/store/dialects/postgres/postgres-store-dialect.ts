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
  return {
    name: 'postgres',
    supportsRowLocks: true,
    createKyselyDialect(): Dialect {
      return new PostgresDialect({ pool });
    },
    async prepare(): Promise<void> {
      const match = /search_path=([A-Za-z0-9_]+)/.exec(decodeURIComponent(options.connectionString));
      if (match?.[1] !== undefined) await pool.query(`create schema if not exists "${match[1]}"`);
    },
    isUniqueViolation(error: unknown): boolean {
      return (error as { code?: unknown } | null)?.code === '23505';
    },
    dispose: () => Promise.resolve(),
  };
}

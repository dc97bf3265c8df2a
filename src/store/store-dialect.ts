import type { Dialect } from 'kysely';

/** Names of the supported SQL dialects. */
export type DialectName = 'sqlite' | 'postgres';

/**
 * One SQL backend, as the store needs it (Kysely style: the same small files per dialect under
 * `dialects/<name>/`). The store never imports a driver's types; each dialect adapts its driver here.
 */
export interface StoreDialect {
  readonly name: DialectName;
  /** Builds the Kysely dialect (connection pool or single connection). */
  createKyselyDialect(): Dialect;
  /** Run once on a fresh connection before migrations (pragmas, schema creation). */
  prepare(): Promise<void>;
  /** True when `error` is a unique / primary-key violation. */
  isUniqueViolation(error: unknown): boolean;
  /** Whether `SELECT … FOR UPDATE` is supported (PostgreSQL); SQLite serialises writers instead. */
  readonly supportsRowLocks: boolean;
  /** Schema holding the migration bookkeeping tables (PostgreSQL: the `search_path` schema); undefined for SQLite. */
  readonly migrationSchema: string | undefined;
  /** Closes what `createKyselyDialect` did not hand to Kysely. */
  dispose(): Promise<void>;
}

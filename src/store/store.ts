import { Kysely, Migrator, sql } from 'kysely';
import type { Transaction } from 'kysely';
import { defineErrors } from '../errors/index.ts';
import { GroupCommit } from './group-commit.ts';
import { migrationProvider } from './migrations.ts';
import type { Database } from './schema.ts';
import type { DialectName, StoreDialect } from './store-dialect.ts';

/** Error codes of the store. */
export const StoreErrors = defineErrors({
  STORE_MIGRATION_FAILED: { kind: 'internal', description: 'A database migration failed; the database is left at the previous version.' },
  STORE_UNAVAILABLE: { kind: 'unavailable', description: 'The database cannot be reached.' },
});

/** Something that runs queries: the root Kysely instance or a transaction. */
export type Executor = Kysely<Database>;

/** The SQL store: one Kysely instance over SQLite or PostgreSQL, transactions, migrations. */
export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: DialectName;
  readonly supportsRowLocks: boolean;
  /** Runs `fn` in one transaction: every multi-row change goes through here, so a failure writes nothing. */
  transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T>;
  /** Applies pending migrations; returns the names applied. */
  migrate(): Promise<string[]>;
  isUniqueViolation(error: unknown): boolean;
  close(): Promise<void>;
}

/** Options of {@link createStore}. */
export interface CreateStoreOptions {
  /** Called with the SQL text of every statement run (tests check query plans with it). */
  readonly onQuery?: ((sql: string) => void) | undefined;
}

/** Builds a store over a dialect. Call `migrate()` before use. */
export function createStore(dialect: StoreDialect, options: CreateStoreOptions = {}): Store {
  const onQuery = options.onQuery;
  const db = new Kysely<Database>({ dialect: dialect.createKyselyDialect(), ...(onQuery === undefined ? {} : { log: (event) => onQuery(event.query.sql) }) });
  // SQLite has one writer: concurrent transactions share commits (see GroupCommit); PostgreSQL runs them side by side.
  const groups = dialect.name === 'sqlite' ? new GroupCommit(db) : undefined;
  let closed = false;
  return {
    db,
    dialect: dialect.name,
    supportsRowLocks: dialect.supportsRowLocks,
    transaction: (fn) => (groups === undefined ? db.transaction().execute(fn) : groups.run(fn)),
    async migrate(): Promise<string[]> {
      // A database that cannot be reached (refused connection, no such database, bad credentials) is told apart from
      // a migration that failed on a reachable one.
      try {
        await sql`select 1`.execute(db);
      } catch (error) {
        throw StoreErrors.error('STORE_UNAVAILABLE', `cannot reach the database: ${(error as Error).message || String(error)}`, { cause: error });
      }
      await dialect.prepare();
      const migrator = new Migrator({ db, provider: migrationProvider, ...(dialect.migrationSchema === undefined ? {} : { migrationTableSchema: dialect.migrationSchema }) });
      const { error, results } = await migrator.migrateToLatest();
      if (error !== undefined) {
        throw StoreErrors.error('STORE_MIGRATION_FAILED', `database migration failed: ${(error as Error).message}`, { cause: error });
      }
      return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
    },
    isUniqueViolation: (error) => dialect.isUniqueViolation(error),
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await db.destroy();
      await dialect.dispose();
    },
  };
}

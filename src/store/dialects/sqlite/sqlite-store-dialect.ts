import { mkdirSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { SqliteDialect } from 'kysely';
import type { Dialect, SqliteDatabase, SqliteStatement } from 'kysely';
import type { StoreDialect } from '../../store-dialect.ts';
import { createWalCheckpointer } from './wal-checkpointer.ts';

/** Options of the embedded SQLite store. */
export interface SqliteStoreOptions {
  /** Database file, or `:memory:`. */
  readonly filename: string;
}

/**
 * SQLite through better-sqlite3: WAL journal, NORMAL sync (durable at checkpoints, safe with WAL),
 * foreign keys on, a busy timeout so a concurrent CLI reader never fails at once.
 */
export function createSqliteStoreDialect(options: SqliteStoreOptions): StoreDialect {
  if (options.filename !== ':memory:') mkdirSync(path.dirname(options.filename), { recursive: true });
  const database = new BetterSqlite3(options.filename);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 5000');
  // 32 MiB of page cache: pages beyond it come from the OS page cache at the cost of a read and a copy. 64 MiB was a
  // fifth of the server's RSS after a 100,000-device bulk task and pushed it past 300 MB; 16 MiB cost the bulk
  // writer ~15% more CPU (bench/bulk.ts).
  database.pragma('cache_size = -32768');
  database.pragma('temp_store = MEMORY');
  // Kysely prepares every query anew; better-sqlite3 statements are reusable (execution is synchronous), so keep
  // the prepared statement of each SQL text (bounded) instead of paying sqlite3_prepare on every query.
  const statements = new Map<string, SqliteStatement>();
  const checkpointer = options.filename === ':memory:' ? undefined : createWalCheckpointer({ filename: options.filename }, (pages) => {
    if (database.open) database.pragma(`wal_autocheckpoint = ${pages}`);
  });
  const cached: SqliteDatabase = {
    prepare(text: string): SqliteStatement {
      // Kysely opens transactions with a deferred `begin`: when another process (a `--workers` sibling, the CLI)
      // writes meanwhile, a deferred reader cannot upgrade to a writer and fails at once with SQLITE_BUSY, without
      // the busy timeout. `begin immediate` takes the write lock up front and waits its turn instead.
      const sql = text === 'begin' ? 'begin immediate' : text;
      // Runs right after the statement (a microtask): a large commit may hand checkpoints to the background thread.
      if (sql === 'commit' && checkpointer !== undefined) queueMicrotask(() => checkpointer.afterCommit());
      let stmt = statements.get(sql);
      if (stmt === undefined) {
        stmt = database.prepare(sql);
        if (statements.size >= 2000) statements.clear();
        statements.set(sql, stmt);
      }
      return stmt;
    },
    close(): void {
      statements.clear();
      database.close();
    },
  };
  return {
    name: 'sqlite',
    supportsRowLocks: false,
    migrationSchema: undefined,
    createKyselyDialect(): Dialect {
      return new SqliteDialect({ database: cached });
    },
    prepare: () => Promise.resolve(),
    isUniqueViolation(error: unknown): boolean {
      const code = (error as { code?: unknown } | null)?.code;
      return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
    },
    dispose: () => checkpointer?.close() ?? Promise.resolve(),
  };
}

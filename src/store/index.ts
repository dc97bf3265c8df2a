export { createStore, StoreErrors, type Store, type Executor } from './store.ts';
export { anyText, isPostgres, prepare, type PreparedQuery } from './prepared.ts';
export { openStore, type OpenStoreOptions } from './open-store.ts';
export { createSqliteStoreDialect, type SqliteStoreOptions } from './dialects/sqlite/sqlite-store-dialect.ts';
export { createPostgresStoreDialect, type PostgresStoreOptions } from './dialects/postgres/postgres-store-dialect.ts';
export type { StoreDialect, DialectName } from './store-dialect.ts';
export type * from './schema.ts';
export type { Transaction } from 'kysely';

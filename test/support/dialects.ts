import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPostgresStoreDialect, createSqliteStoreDialect, createStore } from '../../src/store/index.ts';
import type { DialectName, Store } from '../../src/store/index.ts';

/** PostgreSQL server used by tests (CI starts it; override with GATEHOUSE_TEST_PG_URL). */
export const TEST_PG_URL = process.env['GATEHOUSE_TEST_PG_URL'] ?? 'postgres://root@127.0.0.1:5432/test';

/** A dialect the suites run against, and how to make a fresh, migrated, isolated store on it. */
export interface TestDialect {
  readonly name: DialectName;
  /** A fresh store (own SQLite file or own PostgreSQL schema) and a disposer that drops it. */
  create(): Promise<{ store: Store; url: string | undefined; dispose(): Promise<void> }>;
  /** A database URL for a server process (undefined = SQLite in its data dir) and a disposer. */
  serverDatabase(): Promise<{ url: string | undefined; dispose(): Promise<void> }>;
}

function schemaUrl(schema: string): string {
  return `${TEST_PG_URL}${TEST_PG_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await client.end();
  }
}

const ALL: readonly TestDialect[] = [
  {
    name: 'sqlite',
    async create() {
      const store = createStore(createSqliteStoreDialect({ filename: ':memory:' }));
      await store.migrate();
      return { store, url: undefined, dispose: () => store.close() };
    },
    serverDatabase: () => Promise.resolve({ url: undefined, dispose: () => Promise.resolve() }),
  },
  {
    name: 'postgres',
    async create() {
      const schema = `gh_t_${randomBytes(6).toString('hex')}`;
      const url = schemaUrl(schema);
      const store = createStore(createPostgresStoreDialect({ connectionString: url, maxConnections: 4 }));
      await store.migrate();
      return {
        store,
        url,
        async dispose() {
          await store.close();
          await dropSchema(schema);
        },
      };
    },
    serverDatabase() {
      const schema = `gh_e_${randomBytes(6).toString('hex')}`;
      return Promise.resolve({ url: schemaUrl(schema), dispose: () => dropSchema(schema) });
    },
  },
];

/**
 * The dialects every store-touching suite runs against (style.md: `for (const dialect of DIALECTS)`).
 * `GATEHOUSE_TEST_DIALECTS=sqlite` (comma list) narrows it locally; CI runs both.
 */
export const DIALECTS: readonly TestDialect[] = ALL.filter((d) => {
  const only = process.env['GATEHOUSE_TEST_DIALECTS'];
  return only === undefined || only === '' || only.split(',').includes(d.name);
});

import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';

/** Runs one SQL statement directly against a test server's database (to age rows or tamper on purpose). */
export async function execSql(server: { dataDir: string; databaseUrl: string | undefined }, statement: string): Promise<void> {
  if (server.databaseUrl === undefined) {
    const db = new BetterSqlite3(path.join(server.dataDir, 'gatehouse.db'));
    db.pragma('busy_timeout = 5000');
    try {
      db.exec(statement);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: server.databaseUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** Counts the rows of a table in a test server's database. */
export async function countRows(server: { dataDir: string; databaseUrl: string | undefined }, table: string): Promise<number> {
  if (!/^[a-z_]+$/.test(table)) throw new Error('bad table name');
  if (server.databaseUrl === undefined) {
    const db = new BetterSqlite3(path.join(server.dataDir, 'gatehouse.db'), { readonly: true });
    try {
      return (db.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: server.databaseUrl });
  await client.connect();
  try {
    const r = await client.query<{ n: string }>(`select count(*) as n from ${table}`);
    return Number(r.rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

/** Runs one query directly against a test server's database and returns its rows (to check what is stored). */
export async function selectRows(server: { dataDir: string; databaseUrl: string | undefined }, query: string): Promise<Record<string, unknown>[]> {
  if (server.databaseUrl === undefined) {
    const db = new BetterSqlite3(path.join(server.dataDir, 'gatehouse.db'), { readonly: true });
    try {
      return db.prepare(query).all() as Record<string, unknown>[];
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: server.databaseUrl });
  await client.connect();
  try {
    return (await client.query<Record<string, unknown>>(query)).rows;
  } finally {
    await client.end();
  }
}

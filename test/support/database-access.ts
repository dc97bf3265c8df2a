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

import { CompiledQuery, PostgresAdapter, sql } from 'kysely';
import type { Insertable } from 'kysely';
import type { Database, Executor } from '../../store/index.ts';

/**
 * SQL texts of multi-row INSERTs, by table, columns and row count, for one store (one SQL dialect). A bulk task
 * writes the same few shapes (chunks of the same size) thousands of times: compiling them once saves Kysely's
 * per-row parsing and compiling, and lets the SQLite dialect reuse its prepared statement for the same text.
 */
export type InsertStatements = Map<string, string>;

/** Most distinct shapes kept (tables × chunk sizes of one task stay far below). */
const MAX_SHAPES = 256;

/**
 * Inserts `rows` (all with the same keys, in the same order) with one multi-row INSERT, through the compiled text
 * of that shape when it is known. The first statement of a shape is compiled by Kysely and checked: its parameters
 * must be the row values in row-major order, or the text is not reused.
 */
export async function insertRows<T extends keyof Database>(db: Executor, statements: InsertStatements, table: T, rows: readonly Insertable<Database[T]>[]): Promise<void> {
  const first = rows[0];
  if (first === undefined) return;
  const columns = Object.keys(first);
  const params: unknown[] = [];
  for (const row of rows) {
    const values = row as Readonly<Record<string, unknown>>;
    for (const c of columns) params.push(values[c]);
  }
  if (db.getExecutor().adapter instanceof PostgresAdapter && rows.length > 1) {
    await insertRowsUnnest(db, statements, table, columns, rows);
    return;
  }
  const key = `${table}\u0000${rows.length}\u0000${columns.join('\u0000')}`;
  const text = statements.get(key);
  if (text !== undefined) {
    await db.executeQuery(CompiledQuery.raw(text, params));
    return;
  }
  const compiled = db.insertInto(table).values(rows).compile();
  const reusable = compiled.parameters.length === params.length && compiled.parameters.every((p, i) => p === params[i]);
  if (reusable && statements.size < MAX_SHAPES) statements.set(key, compiled.sql);
  await db.executeQuery(compiled);
}

/** A PostgreSQL column type name usable as an array element type in a cast (information_schema's udt_name). */
const PG_TYPE_NAME = /^[a-z_][a-z0-9_]*$/;

/**
 * PostgreSQL: `INSERT … SELECT * FROM unnest($1::type[], $2::type[], …)`, one array parameter per column whatever the
 * number of rows. A multi-row VALUES list of 1,000 rows has 17,000 parameters that the server parses, binds and plans
 * on every batch; the unnest form is one short statement (same rows, same order, same transaction).
 * The element types are read once per table from information_schema.
 */
async function insertRowsUnnest(db: Executor, statements: InsertStatements, table: string, columns: readonly string[], rows: readonly object[]): Promise<void> {
  const key = `${table}\u0000unnest\u0000${columns.join('\u0000')}`;
  let text = statements.get(key);
  if (text === undefined) {
    const found = await sql<{ column_name: string; udt_name: string }>`select column_name, udt_name from information_schema.columns where table_schema = current_schema() and table_name = ${table}`.execute(db);
    const types = new Map(found.rows.map((r) => [r.column_name, r.udt_name]));
    const casts = columns.map((c, i) => {
      const type = types.get(c);
      if (type === undefined || !PG_TYPE_NAME.test(type)) throw new Error(`bulk insert: column ${table}.${c} has no usable type`);
      return `$${i + 1}::${type}[]`;
    });
    const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`;
    text = `insert into ${quote(table)} (${columns.map(quote).join(', ')}) select * from unnest(${casts.join(', ')})`;
    if (statements.size < MAX_SHAPES) statements.set(key, text);
  }
  const arrays = columns.map((c) => rows.map((row) => (row as Readonly<Record<string, unknown>>)[c] ?? null));
  await db.executeQuery(CompiledQuery.raw(text, arrays));
}

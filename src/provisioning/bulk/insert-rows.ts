import { CompiledQuery } from 'kysely';
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

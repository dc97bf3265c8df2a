import { PostgresAdapter, createQueryId, sql } from 'kysely';
import type { CompiledQuery, Compilable, QueryResult, RawBuilder } from 'kysely';
import type { Executor } from './store.ts';

/**
 * Queries built and compiled once per dialect, then run with new parameter values.
 *
 * Why: Kysely builds an immutable operation tree and compiles it to SQL on every call, about 35–50 µs per statement
 * on the 2-core benchmark machine: as much as SQLite takes to run it. The provisioning hot paths (JITP, RegisterThing,
 * a device's first connection) run 20–30 statements each, so that was about a millisecond per device (bench/jitp.ts,
 * bench/fleet.ts profiles). A prepared query keeps Kysely's type-checked builder and its per-dialect SQL: the builder
 * runs once with placeholder values, the SQL and the positions of the placeholders are kept, and each call passes only
 * the values.
 *
 * Rules for a builder (checked when it is compiled, the first time it runs on a dialect):
 * - every value that varies comes from `p` and is passed to Kysely as a whole value (`where(col, '=', p.x)`,
 *   `values({ col: p.x })`, `set({ col: p.x })`); a placeholder inside another value (concatenated, in an array,
 *   in JSON) is refused, so is a builder that varies its shape by value;
 * - a parameter that is `undefined` when the query runs is refused (pass `null` for SQL NULL).
 */

const PLACEHOLDER = '\u0000gatehouse-prepared:';

/** A compiled form: the SQL, and for each parameter either the name of a value or a constant. */
interface Compiled {
  readonly template: CompiledQuery;
  readonly slots: readonly ({ readonly name: string } | { readonly constant: unknown })[];
}

/** A query prepared once per dialect; `run` returns Kysely's result (rows, numAffectedRows). */
export interface PreparedQuery<P extends object, R> {
  run(db: Executor, params: P): Promise<QueryResult<R>>;
  /** The rows. */
  all(db: Executor, params: P): Promise<R[]>;
  /** The first row, or undefined. */
  first(db: Executor, params: P): Promise<R | undefined>;
}

/**
 * Prepares `build` (see the module comment for its rules). `name` only names the query in errors.
 * Example: `const byName = prepare('thing by name', (db, p: { tenantId: string; name: string }) =>
 *   db.selectFrom('things').selectAll().where('tenant_id', '=', p.tenantId).where('thing_name', '=', p.name));`
 */
export function prepare<P extends object, R>(name: string, build: (db: Executor, p: P) => Compilable<R>): PreparedQuery<P, R> {
  const byAdapter = new WeakMap<object, Compiled>();
  const placeholders = new Proxy({}, { get: (_t, key) => (typeof key === 'string' ? `${PLACEHOLDER}${key}` : undefined) }) as P;

  const compile = (db: Executor): Compiled => {
    const template = build(db, placeholders).compile() as CompiledQuery;
    const slots = template.parameters.map((value) => {
      if (typeof value === 'string' && value.startsWith(PLACEHOLDER)) return { name: value.slice(PLACEHOLDER.length) };
      if (typeof value === 'string' && value.includes(PLACEHOLDER)) throw new Error(`prepared query "${name}": a parameter is used inside another value`);
      if (typeof value === 'object' && value !== null && JSON.stringify(value).includes(PLACEHOLDER.slice(1))) throw new Error(`prepared query "${name}": a parameter is used inside another value`);
      return { constant: value };
    });
    if (template.sql.includes(PLACEHOLDER.slice(1))) throw new Error(`prepared query "${name}": a parameter was inlined into the SQL text`);
    return { template, slots };
  };

  const run = async (db: Executor, params: P): Promise<QueryResult<R>> => {
    const adapter = db.getExecutor().adapter;
    let compiled = byAdapter.get(adapter);
    if (compiled === undefined) {
      compiled = compile(db);
      byAdapter.set(adapter, compiled);
    }
    const parameters = compiled.slots.map((slot) => {
      if (!('name' in slot)) return slot.constant;
      const value = (params as Record<string, unknown>)[slot.name];
      if (value === undefined) throw new Error(`prepared query "${name}": no value for parameter "${slot.name}"`);
      return value;
    });
    const query: CompiledQuery<R> = { query: compiled.template.query, queryId: createQueryId(), sql: compiled.template.sql, parameters };
    return db.executeQuery(query);
  };

  return {
    run,
    all: async (db, params) => (await run(db, params)).rows,
    first: async (db, params) => (await run(db, params)).rows[0],
  };
}

/** True on PostgreSQL (for the few statements written differently there, e.g. {@link anyText}). */
export function isPostgres(db: Executor): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

/**
 * PostgreSQL's `= any($1::text[])`: one array parameter instead of an IN list of hundreds (which the server parses,
 * binds and plans on every call). Use as `where(column, '=', anyText(values))` on PostgreSQL only.
 */
export function anyText(values: readonly string[]): RawBuilder<string> {
  return sql<string>`any(${values}::text[])`;
}

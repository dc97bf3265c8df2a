import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../../../test/support/dialects.ts';
import type { Store } from '../../store/index.ts';
import { insertRows } from './insert-rows.ts';
import type { InsertStatements } from './insert-rows.ts';

for (const dialect of DIALECTS) {
  describe(`insertRows (${dialect.name})`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    beforeAll(async () => {
      ({ store, dispose } = await dialect.create());
    });
    afterAll(async () => dispose());

    const row = (taskId: string, lineNo: number, outcome: string) => ({
      task_id: taskId, line_no: lineNo, outcome, thing_name: `t-${lineNo}`, certificate_id: null, certificate_pem: null, private_key_pem: null, error_code: null, error_message: null,
    });

    it('compiles a shape once and reuses its text with new values, per row count', async () => {
      const statements: InsertStatements = new Map();
      await insertRows(store.db, statements, 'bulk_task_results', [row('a', 1, 'created'), row('a', 2, 'failed')]);
      expect(statements.size).toBe(1);
      await insertRows(store.db, statements, 'bulk_task_results', [row('a', 3, 'present'), row('a', 4, 'created')]);
      expect(statements.size).toBe(1);
      await insertRows(store.db, statements, 'bulk_task_results', [row('a', 5, 'created')]);
      expect(statements.size).toBe(2);
      await insertRows(store.db, statements, 'bulk_task_results', []);
      const rows = await store.db.selectFrom('bulk_task_results').select(['line_no', 'outcome', 'thing_name']).where('task_id', '=', 'a').orderBy('line_no').execute();
      expect(rows).toEqual([
        { line_no: 1, outcome: 'created', thing_name: 't-1' },
        { line_no: 2, outcome: 'failed', thing_name: 't-2' },
        { line_no: 3, outcome: 'present', thing_name: 't-3' },
        { line_no: 4, outcome: 'created', thing_name: 't-4' },
        { line_no: 5, outcome: 'created', thing_name: 't-5' },
      ]);
    });

    it('fails as a whole on a duplicate key, like a Kysely insert', async () => {
      const statements: InsertStatements = new Map();
      await insertRows(store.db, statements, 'bulk_task_results', [row('b', 1, 'created'), row('b', 2, 'created')]);
      await expect(store.transaction((trx) => insertRows(trx, statements, 'bulk_task_results', [row('b', 3, 'created'), row('b', 1, 'created')]))).rejects.toSatisfy((e) => store.isUniqueViolation(e));
      const count = await store.db.selectFrom('bulk_task_results').select((eb) => eb.fn.countAll<number>().as('n')).where('task_id', '=', 'b').executeTakeFirstOrThrow();
      expect(Number(count.n)).toBe(2);
    });
  });
}

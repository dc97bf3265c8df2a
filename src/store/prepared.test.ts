import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../../test/support/dialects.ts';
import { prepare } from './prepared.ts';
import type { Store } from './store.ts';

const insertSetting = prepare('insert setting', (db, p: { key: string; value: string }) => db.insertInto('system_settings').values({ key: p.key, value: p.value }));
const settingByKey = prepare('setting by key', (db, p: { key: string }) => db.selectFrom('system_settings').select(['key', 'value']).where('key', '=', p.key));
const updateSetting = prepare('update setting', (db, p: { key: string; value: string }) => db.updateTable('system_settings').set({ value: p.value }).where('key', '=', p.key));
const keysLike = prepare('keys like, limited', (db, p: { prefix: string; n: number }) =>
  db.selectFrom('system_settings').select('key').where('key', 'like', p.prefix).where('value', 'is not', null).orderBy('key').limit(p.n));

for (const dialect of DIALECTS) {
  describe(`prepared queries (${dialect.name})`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    beforeAll(async () => {
      const s = await dialect.create();
      store = s.store;
      dispose = s.dispose;
    });
    afterAll(async () => dispose());

    it('run with new values each time, on the root and inside transactions', async () => {
      await insertSetting.run(store.db, { key: 'prep.a', value: '1' });
      await store.transaction(async (trx) => {
        await insertSetting.run(trx, { key: 'prep.b', value: '2' });
        expect(await settingByKey.first(trx, { key: 'prep.b' })).toEqual({ key: 'prep.b', value: '2' });
      });
      expect(await settingByKey.first(store.db, { key: 'prep.a' })).toEqual({ key: 'prep.a', value: '1' });
      expect(await settingByKey.first(store.db, { key: 'prep.none' })).toBeUndefined();
      const res = await updateSetting.run(store.db, { key: 'prep.a', value: '10' });
      expect(res.numAffectedRows).toBe(1n);
      expect((await updateSetting.run(store.db, { key: 'prep.none', value: 'x' })).numAffectedRows).toBe(0n);
      expect(await settingByKey.first(store.db, { key: 'prep.a' })).toEqual({ key: 'prep.a', value: '10' });
      expect(await keysLike.all(store.db, { prefix: 'prep.%', n: 1 })).toEqual([{ key: 'prep.a' }]);
      expect(await keysLike.all(store.db, { prefix: 'prep.%', n: 5 })).toEqual([{ key: 'prep.a' }, { key: 'prep.b' }]);
    });

    it('a failed transaction writes nothing', async () => {
      await expect(store.transaction(async (trx) => {
        await insertSetting.run(trx, { key: 'prep.rolled-back', value: '1' });
        await insertSetting.run(trx, { key: 'prep.rolled-back', value: '2' }); // primary key
      })).rejects.toThrow();
      expect(await settingByKey.first(store.db, { key: 'prep.rolled-back' })).toBeUndefined();
    });

    it('refuses a missing value and a placeholder used inside another value', async () => {
      await expect(settingByKey.first(store.db, {} as { key: string })).rejects.toThrow(/no value for parameter "key"/);
      const concatenated = prepare('bad', (db, p: { key: string }) => db.selectFrom('system_settings').selectAll().where('key', '=', `x${p.key}`));
      await expect(concatenated.first(store.db, { key: 'a' })).rejects.toThrow(/used inside another value/);
    });
  });
}

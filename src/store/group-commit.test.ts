import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteStoreDialect } from './dialects/sqlite/sqlite-store-dialect.ts';
import { GroupCommit } from './group-commit.ts';
import { createStore } from './store.ts';
import type { Store } from './store.ts';

describe('SQLite group commit', () => {
  let dir: string;
  let store: Store;
  let groups: GroupCommit;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'gh-group-'));
    store = createStore(createSqliteStoreDialect({ filename: path.join(dir, 'g.db') }));
    await store.migrate();
    groups = new GroupCommit(store.db);
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const put = (key: string) => groups.run(async (trx) => {
    await trx.insertInto('system_settings').values({ key, value: '1' }).execute();
    await trx.insertInto('system_settings').values({ key: `${key}.second`, value: '2' }).execute();
    return key;
  });
  const value = async (key: string) => (await store.db.selectFrom('system_settings').select('value').where('key', '=', key).executeTakeFirst())?.value;

  it('runs concurrent transactions in shared commits; a failing one leaves nothing and does not fail the others', async () => {
    const before = { ...groups.stats };
    const keys = Array.from({ length: 20 }, (_, i) => `g.${i}`);
    const results = await Promise.allSettled([
      ...keys.map((k) => put(k)),
      groups.run(async (trx) => {
        await trx.insertInto('system_settings').values({ key: 'g.failed', value: 'x' }).execute();
        throw new Error('the caller failed');
      }),
      groups.run(async (trx) => {
        await trx.insertInto('system_settings').values({ key: 'g.dup', value: 'x' }).execute();
        await trx.insertInto('system_settings').values({ key: 'g.dup', value: 'y' }).execute(); // primary key
      }),
      put('g.after'),
    ]);
    expect(results.slice(0, 20).map((r) => r.status)).toEqual(keys.map(() => 'fulfilled'));
    expect(results[20]).toMatchObject({ status: 'rejected', reason: { message: 'the caller failed' } });
    expect(results[21]?.status).toBe('rejected');
    expect(results[22]).toMatchObject({ status: 'fulfilled', value: 'g.after' });
    for (const k of [...keys, 'g.after']) {
      expect(await value(k)).toBe('1');
      expect(await value(`${k}.second`)).toBe('2');
    }
    expect(await value('g.failed')).toBeUndefined();
    expect(await value('g.dup')).toBeUndefined();
    const commits = groups.stats.commits - before.commits;
    expect(groups.stats.transactions - before.transactions).toBe(23);
    // started in one turn of the event loop, they share far fewer commits than transactions
    expect(commits).toBeLessThan(6);
  });

  it('transactions started in the same turn of the event loop share one commit, even on an idle store', async () => {
    await new Promise((resolve) => setImmediate(resolve));
    const before = { ...groups.stats };
    expect(await Promise.all(['t.1', 't.2', 't.3'].map((k) => put(k)))).toEqual(['t.1', 't.2', 't.3']);
    expect(groups.stats.commits - before.commits).toBe(1);
    expect(groups.stats.transactions - before.transactions).toBe(3);
    // one alone is a plain transaction
    expect(await put('t.alone')).toBe('t.alone');
    expect(groups.stats.commits - before.commits).toBe(2);
  });

  describe('commit delay', () => {
    const putWith = (g: GroupCommit, key: string) => g.run(async (trx) => {
      await trx.insertInto('system_settings').values({ key, value: '1' }).execute();
      return key;
    });
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

    it('after concurrent writers, a transaction waits and one that arrives during the delay joins its group', async () => {
      const g = new GroupCommit(store.db, { commitDelayMs: 300 });
      // two writers at once: a group of two shows concurrency
      expect(await Promise.all([putWith(g, 'd.a'), putWith(g, 'd.b')])).toEqual(['d.a', 'd.b']);
      expect(g.stats).toMatchObject({ commits: 1, transactions: 2, delayedGroups: 0 });
      await sleep(10); // (a transaction started while a group is being run joins the next one at once)
      const second = putWith(g, 'd.second'); // soon after concurrent writers: waits for company …
      await sleep(30);
      const third = putWith(g, 'd.third'); // … and gets it
      expect(await Promise.all([second, third])).toEqual(['d.second', 'd.third']);
      expect(g.stats).toMatchObject({ commits: 2, transactions: 4, delayedGroups: 1 });
      expect(await value('d.third')).toBe('1');
      // that group had company, so the next one waits too; alone, it ends the delaying
      await sleep(10);
      await putWith(g, 'd.fourth');
      expect(g.stats.delayedGroups).toBe(2);
      await sleep(10);
      await putWith(g, 'd.fifth');
      expect(g.stats.delayedGroups).toBe(2);
    });

    it('one writer at a time never waits', async () => {
      const g = new GroupCommit(store.db, { commitDelayMs: 100 });
      for (let i = 0; i < 10; i++) {
        await sleep(5); // a client that does something else between its transactions
        await putWith(g, `s.${i}`);
      }
      expect(g.stats).toMatchObject({ commits: 10, transactions: 10, delayedGroups: 0 });
    });

    it('a full group does not wait for the delay', async () => {
      const g = new GroupCommit(store.db, { commitDelayMs: 60_000 });
      await Promise.all([putWith(g, 'f.a'), putWith(g, 'f.b')]); // concurrent writers: the next group would wait a minute
      await sleep(10);
      const t0 = performance.now();
      await Promise.all(Array.from({ length: 64 }, (_, i) => putWith(g, `f.${i}`)));
      expect(performance.now() - t0).toBeLessThan(10_000);
      expect(g.stats).toMatchObject({ transactions: 66, delayedGroups: 1 });
    });

    it('0 turns the delay off', async () => {
      const g = new GroupCommit(store.db, { commitDelayMs: 0 });
      await putWith(g, 'z.0');
      await putWith(g, 'z.1');
      expect(g.stats.delayedGroups).toBe(0);
    });
  });

  it('a later transaction sees the writes of an earlier one of the same group', async () => {
    const first = put('g.seen');
    const second = groups.run(async (trx) => (await trx.selectFrom('system_settings').select('value').where('key', '=', 'g.seen.second').executeTakeFirst())?.value);
    expect(await first).toBe('g.seen');
    expect(await second).toBe('2');
  });

  it('when the group cannot go on, every transaction of it rejects and nothing is written', async () => {
    // a transaction that rolls everything back behind the group's back breaks its savepoints: the group fails as a whole
    // (an earlier transaction, committed in an earlier group, stays)
    expect(await put('g.earlier')).toBe('g.earlier');
    const victims = [
      groups.run(async (trx) => {
        await trx.insertInto('system_settings').values({ key: 'g.victim.1', value: '1' }).execute();
      }),
      groups.run(async (trx) => {
        await sql`rollback`.execute(trx);
        throw new Error('gone');
      }),
    ];
    const settled = await Promise.allSettled(victims);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
    expect(await value('g.victim.1')).toBeUndefined();
    expect(await value('g.earlier')).toBe('1');
  });
});

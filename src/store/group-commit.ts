import type { Kysely, Transaction } from 'kysely';
import type { Database } from './schema.ts';

/** Most transactions one commit carries. */
const MAX_GROUP = 64;

interface Pending {
  readonly fn: (trx: Transaction<Database>) => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit for SQLite: transactions that wait for the single connection while another one runs are then run
 * together, each in its own savepoint of one SQLite transaction, with one COMMIT for all of them.
 *
 * Why: SQLite has one writer, so concurrent transactions run one after the other anyway; what each of them pays
 * alone is BEGIN and above all COMMIT, which writes every page it dirtied to the WAL (about 1 ms for a JITP or
 * RegisterThing transaction on the 2-core benchmark machine, a third of the database time of a provisioned device).
 * Pages shared by the transactions of a group (the audit head, index pages) are written once per group.
 *
 * What each caller sees is what a transaction of its own gives:
 * - its function runs alone on the connection, after every earlier one, and sees their writes;
 * - if it throws, its savepoint is rolled back (nothing it wrote remains) and its promise rejects with its error;
 *   the others of the group go on;
 * - its promise settles only after the COMMIT that holds its writes succeeded; if that COMMIT (or a rollback to a
 *   savepoint) fails, every transaction of the group rejects with that error and nothing of the group is written.
 * A transaction starts at the end of the current turn of the event loop, with every other one started in that turn
 * (a group of one is a plain transaction): grouping adds no wait beyond that turn.
 */
export class GroupCommit {
  private readonly db: Kysely<Database>;
  private readonly queue: Pending[] = [];
  private running = false;
  /** How many COMMITs ran and how many transactions they carried (for tests and diagnostics). */
  readonly stats = { commits: 0, transactions: 0 };

  constructor(db: Kysely<Database>) {
    this.db = db;
  }

  run<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.running) {
        // Start at the end of this turn of the event loop (setImmediate), not at once: the transactions that other
        // sockets' callbacks of the same turn start (e.g. several first connections read in one poll) then share one
        // COMMIT. An idle store waits for nothing but the rest of the current turn.
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const group = this.queue.splice(0, MAX_GROUP);
        const only = group.length === 1 ? group[0] : undefined;
        if (only !== undefined) {
          await this.db.transaction().execute(only.fn).then((value) => {
            this.count(1);
            only.resolve(value);
          }, only.reject);
        } else {
          await this.runGroup(group);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private count(transactions: number): void {
    this.stats.commits += 1;
    this.stats.transactions += transactions;
  }

  private async runGroup(group: readonly Pending[]): Promise<void> {
    let trx;
    try {
      trx = await this.db.startTransaction().execute();
    } catch (error) {
      for (const p of group) p.reject(error);
      return;
    }
    const outcomes: { readonly ok: boolean; readonly value: unknown }[] = [];
    try {
      for (const [i, p] of group.entries()) {
        const name = `gatehouse_group_${i}`;
        const sp = await trx.savepoint(name).execute();
        let outcome: { ok: boolean; value: unknown };
        try {
          outcome = { ok: true, value: await p.fn(sp) };
        } catch (error) {
          outcome = { ok: false, value: error };
        }
        if (outcome.ok) await sp.releaseSavepoint(name).execute();
        else await (await sp.rollbackToSavepoint(name).execute()).releaseSavepoint(name).execute();
        outcomes.push(outcome);
      }
      await trx.commit().execute();
      this.count(group.length);
    } catch (error) {
      // a savepoint command or the COMMIT failed: nothing of the group is kept
      await trx.rollback().execute().catch(() => undefined);
      for (const p of group) p.reject(error);
      return;
    }
    group.forEach((p, i) => {
      const o = outcomes[i];
      if (o?.ok === true) p.resolve(o.value);
      else p.reject(o?.value);
    });
  }
}

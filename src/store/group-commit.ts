import type { Kysely, Transaction } from 'kysely';
import type { Database } from './schema.ts';

/** Most transactions one commit carries. */
const MAX_GROUP = 64;

/** Options of {@link GroupCommit}. */
export interface GroupCommitOptions {
  /**
   * How long a group waits for more transactions before it starts, while waiting pays (see {@link GroupCommit});
   * 0 starts every group at the end of the current event-loop turn. Default {@link DEFAULT_COMMIT_DELAY_MS}.
   */
  readonly commitDelayMs?: number;
}

/** Default wait of a group for company (measured on bench/jitp.ts: 2 ms -12% server CPU per device, 5 ms -4% more). */
export const DEFAULT_COMMIT_DELAY_MS = 5;

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
 * When a group starts: at the end of the current turn of the event loop, with every other transaction started in that
 * turn (a group of one is a plain transaction), or, while transactions keep coming, after a short commit delay
 * (`commitDelayMs`, as PostgreSQL's `commit_delay`): the transactions that arrive meanwhile join the group and share
 * its COMMIT. On bench/jitp.ts (one transaction per device, 16 devices in flight) a 5 ms delay lowered the server's
 * CPU per device by about 16% and raised the rate as much, at the cost of up to 5 ms of latency per transaction. The
 * delay only runs when the previous groups showed concurrent writers (a group of two or more, or transactions that
 * arrived while it ran) and ended less than two delays ago: one writer at a time (a sequential client, the CLI, a
 * device at a time) never waits, and a delayed group that nobody joined ends the delaying until concurrency shows
 * again. A full group ({@link MAX_GROUP}) starts at once.
 */
export class GroupCommit {
  private readonly db: Kysely<Database>;
  private readonly queue: Pending[] = [];
  private running = false;
  /** How many COMMITs ran and how many transactions they carried (for tests and diagnostics). */
  readonly stats = { commits: 0, transactions: 0, delayedGroups: 0 };
  private readonly commitDelayMs: number;
  /** Whether the last drain showed concurrent writers: a group of two or more, or a group formed while it ran. */
  private concurrent = false;
  /** The pending commit-delay timer, if any. */
  private delayTimer: NodeJS.Timeout | undefined;
  /** When the last drain ended: a transaction that comes more than two delays later found the store idle. */
  private lastDrainEnd = Number.NEGATIVE_INFINITY;

  constructor(db: Kysely<Database>, options: GroupCommitOptions = {}) {
    this.db = db;
    this.commitDelayMs = options.commitDelayMs ?? DEFAULT_COMMIT_DELAY_MS;
  }

  run<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (this.delayTimer !== undefined && this.queue.length >= MAX_GROUP) {
        // a full group does not wait
        clearTimeout(this.delayTimer);
        this.delayTimer = undefined;
        setImmediate(() => void this.drain(true));
        return;
      }
      if (!this.running) {
        this.running = true;
        // Concurrent writers lately (the last drain showed them and ended less than two delays ago): wait for company.
        // Otherwise start at the end of this turn of the event loop (setImmediate), not at once, so that the
        // transactions that other sockets' callbacks of the same turn start still share one COMMIT.
        const recent = performance.now() - this.lastDrainEnd < 2 * this.commitDelayMs;
        if (this.commitDelayMs > 0 && recent && this.concurrent) {
          this.delayTimer = setTimeout(() => {
            this.delayTimer = undefined;
            void this.drain(true);
          }, this.commitDelayMs);
        } else {
          setImmediate(() => void this.drain(false));
        }
      }
    });
  }

  private async drain(delayed: boolean): Promise<void> {
    this.running = true;
    if (delayed) this.stats.delayedGroups += 1;
    let groups = 0;
    let largest = 0;
    try {
      while (this.queue.length > 0) {
        const group = this.queue.splice(0, MAX_GROUP);
        groups += 1;
        largest = Math.max(largest, group.length);
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
      this.lastDrainEnd = performance.now();
      this.concurrent = largest >= 2 || groups >= 2;
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

import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Options of {@link createWalCheckpointer}. */
export interface WalCheckpointerOptions {
  /** The database file (WAL journal mode). */
  readonly filename: string;
  /** WAL size from which checkpoints move to the background thread (default 4 MiB, SQLite's autocheckpoint). */
  readonly startAtBytes?: number;
  /** How often the background thread also checkpoints on its own, for commits of other processes (default 250 ms). */
  readonly intervalMs?: number;
  /** Commits closer together than this share one checkpoint request (default 100 ms). */
  readonly minRequestGapMs?: number;
}

/** Takes over WAL checkpoints of a heavily written database; see {@link createWalCheckpointer}. */
export interface WalCheckpointer {
  /** Called after each commit of the main connection: starts the thread once the WAL has grown past the threshold, then asks it to checkpoint. */
  afterCommit(): void;
  close(): Promise<void>;
}

/** SQLite's default `wal_autocheckpoint`. */
const DEFAULT_AUTOCHECKPOINT_PAGES = 1000;
/** The main connection's own checkpoint while the thread runs: only if the thread falls far behind (64 MiB). */
const SAFETY_AUTOCHECKPOINT_PAGES = 16384;

// The worker is plain CommonJS evaluated from this string, so it needs no TypeScript loader.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.filename);
db.pragma('synchronous = NORMAL');
const checkpoint = () => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch { /* busy or closing: next tick */ } };
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'checkpoint') return checkpoint();
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/**
 * Moves WAL checkpoints of a file database to a second connection in a worker thread (SQLite WAL mode, "Checkpoint
 * Starvation" and `wal_checkpoint(PASSIVE)` in https://sqlite.org/wal.html).
 *
 * Why: with `synchronous = NORMAL` a commit only appends to the WAL, but the automatic checkpoint that follows a
 * large commit copies every page back into the database file and fsyncs both files on the committing thread. A
 * 1,000-line bulk batch dirties thousands of index pages, and better-sqlite3 is synchronous, so the event loop stood
 * still for the fsyncs of every batch. A PASSIVE checkpoint from another connection never blocks the writer and
 * changes nothing about durability. The thread only starts once the WAL has outgrown SQLite's own threshold, so
 * a lightly written database (tests, the CLI) never has one; the main connection keeps a far larger automatic
 * checkpoint as a safety net. Under continuous writing the WAL file can therefore grow to about 64 MiB plus one
 * transaction before it is rewound (it is removed when the database closes).
 */
export function createWalCheckpointer(options: WalCheckpointerOptions, setAutocheckpointPages: (pages: number) => void): WalCheckpointer {
  const walPath = `${options.filename}-wal`;
  const startAt = options.startAtBytes ?? 4 * 1024 * 1024;
  let worker: Worker | undefined;
  let closed = false;
  let failed = false;
  const minGapMs = options.minRequestGapMs ?? 100;
  let lastRequest = 0;
  return {
    afterCommit(): void {
      if (worker !== undefined) {
        // Soon after a commit, so the next writer can rewind the WAL, but at most once per `minGapMs`: every
        // checkpoint copies its pages back and fsyncs both files, and small transactions (JITP, RegisterThing: one
        // per device, 100+ per second) dirty the same index pages again and again. One checkpoint per commit cost
        // 6% of the server's CPU in bench/jitp.ts; the thread's own interval picks up the last commits of a burst.
        const now = performance.now();
        if (now - lastRequest < minGapMs) return;
        lastRequest = now;
        worker.postMessage('checkpoint');
        return;
      }
      if (closed || failed) return;
      let size: number;
      try {
        size = statSync(walPath).size;
      } catch {
        return;
      }
      if (size < startAt) return;
      try {
        worker = new Worker(WORKER_SOURCE, {
          eval: true,
          workerData: { driver: createRequire(import.meta.url).resolve('better-sqlite3'), filename: options.filename, intervalMs: options.intervalMs ?? 250 },
        });
      } catch {
        failed = true;
        return;
      }
      worker.unref();
      // A failing thread leaves checkpoints to the main connection (its automatic checkpoint is restored).
      worker.on('error', () => {
        failed = true;
        worker = undefined;
        if (!closed) setAutocheckpointPages(DEFAULT_AUTOCHECKPOINT_PAGES);
      });
      setAutocheckpointPages(SAFETY_AUTOCHECKPOINT_PAGES);
    },
    async close(): Promise<void> {
      closed = true;
      const w = worker;
      worker = undefined;
      if (w === undefined) return;
      // Referenced again while closing, so that the caller's `await close()` is not cut short by an empty event loop.
      w.ref();
      let timer: NodeJS.Timeout | undefined;
      const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
      w.postMessage('close');
      await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000)))]);
      clearTimeout(timer);
      await w.terminate();
    },
  };
}

/**
 * Keeps a long bulk task within the memory bound of issue 7 (< 300 MB for any input size). A task allocates a lot
 * of short-lived objects per line, and the batches in flight survive long enough to be promoted to V8's old
 * generation; V8 then lets that garbage grow to its heap-growth limit before a full collection (measured: the
 * server's RSS saw-toothed between 240 and 350 MB during a 100k-line task, while the live set fits in 160 MB). A
 * full collection every few batches keeps the peak near the live set for about 1–2% of the task's time; the rest of
 * the process (the gateway) sees a pause of a few tens of milliseconds each time.
 *
 * The collector is reached through V8's `--expose-gc` flag, set at run time for a fresh context only; when that
 * is not possible the compaction is skipped (memory is then bounded by V8's own heuristics).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collector: (() => void) | null | undefined;

function fullCollection(): (() => void) | null {
  if (collector !== undefined) return collector;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    collector = typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    collector = null;
  }
  return collector;
}

/**
 * Counts written batches and runs a full collection every `every` of them, or after a batch that ends at least
 * `maxIntervalMs` after the last collection. The interval matters when batches are slow: a line that brings a CSR is
 * signed by Gatehouse (its key objects and certificates hold native memory that only a collection releases), a
 * batch of them takes about a second, and ten of them took the server's RSS to 344 MB (30,000 CSRs,
 * `MATERIAL=csr bench/bulk-server.sh`); with a collection at least every second, 248 MB. On a faster machine
 * (2026-11-29, ~3,000 CSRs/s) a second of CSRs was again too much: 319 MB at 1 s, 266 MB at 400 ms; 100,000
 * certificate lines 277 MB at 1 s and 249 MB at 400 ms, for 6-11% of throughput (still 2,789 CSRs/s and 9,275 lines/s).
 */
export class HeapCompaction {
  private readonly every: number;
  private readonly maxIntervalMs: number;
  private written = 0;
  private lastCollection = performance.now();

  constructor(every = 10, maxIntervalMs = 400) {
    this.every = every;
    this.maxIntervalMs = maxIntervalMs;
  }

  /** Call after each written batch. */
  afterBatch(): void {
    this.written += 1;
    if (this.every <= 0) return;
    const now = performance.now();
    if (this.written % this.every !== 0 && now - this.lastCollection < this.maxIntervalMs) return;
    this.lastCollection = now;
    fullCollection()?.();
  }
}

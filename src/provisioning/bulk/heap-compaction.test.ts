import { describe, expect, it } from 'vitest';
import { HeapCompaction } from './heap-compaction.ts';

describe('HeapCompaction', () => {
  it('runs a full collection every N batches, which frees unreachable objects', () => {
    const compaction = new HeapCompaction(2, 60_000);
    let garbage: number[][] | undefined = Array.from({ length: 400 }, () => Array.from({ length: 10_000 }, (_, i) => i + 0.5));
    expect(garbage.length).toBe(400);
    garbage = undefined;
    const before = process.memoryUsage().heapUsed;
    compaction.afterBatch(); // 1 of 2: nothing yet
    compaction.afterBatch(); // 2 of 2: full collection
    const after = process.memoryUsage().heapUsed;
    // ~32 MB of doubles were unreachable: a full collection returns most of it.
    expect(before - after).toBeGreaterThan(16 * 1024 * 1024);
  });

  it('also collects after a batch that ends long after the last collection (slow batches)', async () => {
    const compaction = new HeapCompaction(1000, 50);
    await new Promise((resolve) => setTimeout(resolve, 80));
    let garbage: number[][] | undefined = Array.from({ length: 400 }, () => Array.from({ length: 10_000 }, (_, i) => i + 0.5));
    expect(garbage.length).toBe(400);
    garbage = undefined;
    const before = process.memoryUsage().heapUsed;
    compaction.afterBatch(); // 1 of 1000, but 80 ms after the last collection
    const after = process.memoryUsage().heapUsed;
    expect(before - after).toBeGreaterThan(16 * 1024 * 1024);
  });

  it('never collects with every = 0', () => {
    const compaction = new HeapCompaction(0);
    expect(() => {
      for (let i = 0; i < 5; i++) compaction.afterBatch();
    }).not.toThrow();
  });
});

import { describe, expect, it } from 'vitest';
import { ConnectCache } from './connect-cache.ts';

describe('ConnectCache', () => {
  it('shares one load between concurrent readers and reuses it until invalidated', async () => {
    const cache = new ConnectCache<number>();
    let loads = 0;
    const load = async (): Promise<number> => ++loads;
    const [a, b] = await Promise.all([cache.get('t', 'k', load), cache.get('t', 'k', load)]);
    expect([a, b, loads]).toEqual([1, 1, 1]);
    expect(await cache.get('t', 'k', load)).toBe(1);
    cache.invalidate('t', 'k');
    expect(await cache.get('t', 'k', load)).toBe(2);
  });

  it('keeps tenants apart and forgets a whole tenant at once', async () => {
    const cache = new ConnectCache<string>();
    await cache.get('t1', 'k', async () => 'one');
    await cache.get('t2', 'k', async () => 'two');
    cache.invalidateTenant('t1');
    expect(await cache.get('t1', 'k', async () => 'one again')).toBe('one again');
    expect(await cache.get('t2', 'k', async () => 'not read')).toBe('two');
  });

  it('does not keep failed loads, nor values that keep() refuses', async () => {
    const cache = new ConnectCache<string>();
    await expect(cache.get('t', 'k', () => Promise.reject(new Error('db down')))).rejects.toThrow('db down');
    expect(await cache.get('t', 'k', async () => 'ok')).toBe('ok');
    await cache.get('t', 'p', async () => 'PENDING', (v) => v === 'ACTIVE');
    expect(await cache.get('t', 'p', async () => 'ACTIVE', (v) => v === 'ACTIVE')).toBe('ACTIVE');
  });

  it('expires entries after the time limit and evicts the oldest beyond the size limit', async () => {
    let now = 0;
    const cache = new ConnectCache<number>({ ttlMs: 1000, maxEntries: 2, now: () => now });
    await cache.get('t', 'a', async () => 1);
    now = 999;
    expect(await cache.get('t', 'a', async () => 2)).toBe(1);
    now = 1000;
    expect(await cache.get('t', 'a', async () => 3)).toBe(3);
    await cache.get('t', 'b', async () => 4);
    await cache.get('t', 'c', async () => 5);
    expect(cache.size).toBe(2);
    expect(await cache.get('t', 'a', async () => 6)).toBe(6);
  });

  it('with a zero time limit reads every time', async () => {
    const cache = new ConnectCache<number>({ ttlMs: 0 });
    let loads = 0;
    await cache.get('t', 'k', async () => ++loads);
    await cache.get('t', 'k', async () => ++loads);
    expect(loads).toBe(2);
  });
});

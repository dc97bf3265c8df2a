/**
 * What the gateway reads from the database to admit a known device (its certificate record, its CA's status, its
 * effective policies and thing), kept per tenant + certificate so that a reconnecting device costs no query.
 *
 * Correctness rests on invalidation, not on the time limit: every change that can alter an admission decision
 * reaches the gateway as a `ChangeListener` call (certificate, policies, trust), locally or, with several workers,
 * through the cluster bus, and drops the entries it concerns before live connections are re-checked. Only facts of
 * ACTIVE certificates are kept (a pending or unknown certificate is read again on every connect, so activation by
 * any path is seen at once). The time limit is a backstop for writes that bypass the control plane (bulk import
 * of attachments): such a change reaches new connections within `ttlMs`.
 */

/** Options of {@link ConnectCache}. */
export interface ConnectCacheOptions {
  /** Longest time an entry is trusted (default 30 s; 0 disables the cache). */
  readonly ttlMs?: number | undefined;
  /** Most entries kept; the oldest go first (default 100 000). */
  readonly maxEntries?: number | undefined;
  /** Clock (tests). */
  readonly now?: (() => number) | undefined;
}

interface Entry<V> {
  readonly value: Promise<V>;
  readonly expiresAt: number;
  readonly tenantId: string;
}

/**
 * A map of promises keyed by tenant + key, with per-key and per-tenant invalidation. Concurrent readers of a
 * missing key share one load; a load that fails is not kept.
 */
export class ConnectCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: ConnectCacheOptions = {}) {
    this.ttlMs = options.ttlMs ?? 30_000;
    this.maxEntries = options.maxEntries ?? 100_000;
    this.now = options.now ?? Date.now;
  }

  /** Number of entries (expired ones included until they are read or evicted). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The value of `tenantId`/`key`, loaded by `load` when absent or expired. `keep(value)` decides whether a freshly
   * loaded value is kept (e.g. only facts of ACTIVE certificates).
   */
  get(tenantId: string, key: string, load: () => Promise<V>, keep: (value: V) => boolean = () => true): Promise<V> {
    const k = `${tenantId}\u0000${key}`;
    const t = this.now();
    const hit = this.entries.get(k);
    if (hit !== undefined && hit.expiresAt > t) return hit.value;
    if (hit !== undefined) this.entries.delete(k);
    const value = load();
    if (this.ttlMs <= 0) return value;
    const entry: Entry<V> = { value, expiresAt: t + this.ttlMs, tenantId };
    this.entries.set(k, entry);
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    const drop = (): void => {
      if (this.entries.get(k) === entry) this.entries.delete(k);
    };
    value.then((v) => {
      if (!keep(v)) drop();
    }, drop);
    return value;
  }

  /** Forgets one key of a tenant. */
  invalidate(tenantId: string, key: string): void {
    this.entries.delete(`${tenantId}\u0000${key}`);
  }

  /** Forgets every key of a tenant. */
  invalidateTenant(tenantId: string): void {
    for (const [k, e] of this.entries) if (e.tenantId === tenantId) this.entries.delete(k);
  }

  /** Forgets everything. */
  clear(): void {
    this.entries.clear();
  }
}

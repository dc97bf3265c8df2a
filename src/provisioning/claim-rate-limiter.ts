/** The fleet-provisioning calls a claim's rate limit counts, each on its own budget. */
export type ClaimOperation = 'create-certificate' | 'register-thing';

/**
 * What fleet provisioning asks of a rate limit: {@link ClaimRateLimiter} in one process, or a shared one (Redis)
 * when several processes serve the installation.
 */
export interface ClaimRateLimit {
  /** Takes one unit; 0 when taken, otherwise the milliseconds until one will be there. */
  take(tenantId: string, claimCertificateId: string, operation: ClaimOperation, ratePerMinute: number): number | Promise<number>;
  /** Gives back the unit of a call that then failed. */
  giveBack(tenantId: string, claimCertificateId: string, operation: ClaimOperation, ratePerMinute: number): void;
}

/** How many buckets a limiter holds before it looks for full (idle) ones to drop. */
const PRUNE_AT = 10_000;
const MINUTE_MS = 60_000;

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms). */
  at: number;
}

/**
 * Per-claim rate limits of fleet provisioning (issue 5 §3, "per-claim rate limits are optional"): a token bucket per
 * tenant, claim certificate and operation that holds at most `ratePerMinute` tokens and refills continuously at
 * `ratePerMinute` per minute. A claim of N per minute therefore lets N devices through at once, then one every 60/N
 * seconds. CreateKeysAndCertificate and CreateCertificateFromCsr share the `create-certificate` budget, RegisterThing
 * has its own, so one device's two calls count once in each. The rate is read with the claim on every call, so a
 * changed limit applies at once (a lower one trims the bucket).
 *
 * In memory: exact within one process. With the Redis bus (`--workers`, several nodes) the composition root swaps in
 * a shared limit (`FleetProvisioning.useRateLimit`), so that the limit holds for the installation as a whole.
 */
export class ClaimRateLimiter implements ClaimRateLimit {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  private static key(tenantId: string, claimCertificateId: string, operation: ClaimOperation): string {
    return `${tenantId}\u0000${claimCertificateId}\u0000${operation}`;
  }

  private refill(bucket: Bucket, ratePerMinute: number, now: number): void {
    const elapsed = Math.max(0, now - bucket.at);
    bucket.tokens = Math.min(ratePerMinute, bucket.tokens + (elapsed * ratePerMinute) / MINUTE_MS);
    bucket.at = now;
  }

  /**
   * Takes one token for `operation` of the claim. Returns 0 when taken, otherwise the milliseconds until a token
   * will be there (the caller refuses the request).
   */
  take(tenantId: string, claimCertificateId: string, operation: ClaimOperation, ratePerMinute: number): number {
    const now = this.now();
    const key = ClaimRateLimiter.key(tenantId, claimCertificateId, operation);
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= PRUNE_AT) this.prune(now);
      bucket = { tokens: ratePerMinute, at: now };
      this.buckets.set(key, bucket);
    } else {
      this.refill(bucket, ratePerMinute, now);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - bucket.tokens) * MINUTE_MS) / ratePerMinute);
  }

  /** Gives back the token of a call that then failed: a limit counts what was provisioned, not what was refused. */
  giveBack(tenantId: string, claimCertificateId: string, operation: ClaimOperation, ratePerMinute: number): void {
    const bucket = this.buckets.get(ClaimRateLimiter.key(tenantId, claimCertificateId, operation));
    if (bucket !== undefined) bucket.tokens = Math.min(ratePerMinute, bucket.tokens + 1);
  }

  /** Drops the buckets idle for a minute or more: refilled at `ratePerMinute` per minute up to `ratePerMinute`, they are full, which is what no bucket means. */
  private prune(now: number): void {
    for (const [key, bucket] of this.buckets) if (now - bucket.at >= MINUTE_MS) this.buckets.delete(key);
  }

  /** Buckets held (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }
}

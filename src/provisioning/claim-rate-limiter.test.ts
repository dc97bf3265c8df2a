import { describe, expect, it } from 'vitest';
import { ClaimRateLimiter } from './claim-rate-limiter.ts';

describe('ClaimRateLimiter', () => {
  it('lets N calls through at once, refuses the next one with the wait, then refills at N per minute', () => {
    let now = 1_000_000;
    const limiter = new ClaimRateLimiter(() => now);
    for (let i = 0; i < 3; i += 1) expect(limiter.take('t', 'claim', 'register-thing', 3)).toBe(0);
    expect(limiter.take('t', 'claim', 'register-thing', 3)).toBe(20_000);
    now += 19_999;
    expect(limiter.take('t', 'claim', 'register-thing', 3)).toBeGreaterThan(0);
    now += 1;
    expect(limiter.take('t', 'claim', 'register-thing', 3)).toBe(0);
    now += 10 * 60_000;
    for (let i = 0; i < 3; i += 1) expect(limiter.take('t', 'claim', 'register-thing', 3)).toBe(0);
    expect(limiter.take('t', 'claim', 'register-thing', 3)).toBeGreaterThan(0);
  });

  it('keeps one budget per tenant, claim and operation', () => {
    const limiter = new ClaimRateLimiter(() => 0);
    expect(limiter.take('t', 'a', 'create-certificate', 1)).toBe(0);
    expect(limiter.take('t', 'a', 'create-certificate', 1)).toBeGreaterThan(0);
    expect(limiter.take('t', 'a', 'register-thing', 1)).toBe(0);
    expect(limiter.take('t', 'b', 'create-certificate', 1)).toBe(0);
    expect(limiter.take('u', 'a', 'create-certificate', 1)).toBe(0);
  });

  it('gives back the token of a failed call, never above the limit', () => {
    const limiter = new ClaimRateLimiter(() => 0);
    expect(limiter.take('t', 'a', 'register-thing', 1)).toBe(0);
    limiter.giveBack('t', 'a', 'register-thing', 1);
    limiter.giveBack('t', 'a', 'register-thing', 1);
    expect(limiter.take('t', 'a', 'register-thing', 1)).toBe(0);
    expect(limiter.take('t', 'a', 'register-thing', 1)).toBeGreaterThan(0);
  });

  it('applies a changed rate at once: a lower limit trims the bucket', () => {
    const limiter = new ClaimRateLimiter(() => 0);
    expect(limiter.take('t', 'a', 'register-thing', 100)).toBe(0);
    expect(limiter.take('t', 'a', 'register-thing', 1)).toBe(0);
    expect(limiter.take('t', 'a', 'register-thing', 1)).toBe(60_000);
  });
});

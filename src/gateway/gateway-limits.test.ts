import { describe, expect, it } from 'vitest';
import { DEFAULT_GATEWAY_LIMITS, PacketSizeGuard, checkTopicLimits } from './gateway-limits.ts';

/** An MQTT fixed header for a packet whose remaining length is `n`, followed by `n` zero bytes. */
function packet(n: number): Buffer {
  const len: number[] = [];
  let x = n;
  do {
    let byte = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) byte |= 0x80;
    len.push(byte);
  } while (x > 0);
  return Buffer.concat([Buffer.from([0x30, ...len]), Buffer.alloc(n)]);
}

describe('PacketSizeGuard', () => {
  it('accepts packets up to the limit, across chunk boundaries', () => {
    const guard = new PacketSizeGuard(1000);
    const stream = Buffer.concat([packet(10), packet(997 - 1), packet(0), packet(200)]);
    for (let i = 0; i < stream.length; i += 7) expect(guard.feed(stream.subarray(i, i + 7))).toBeUndefined();
  });

  it('reports the first packet above the limit from its header alone', () => {
    const guard = new PacketSizeGuard(1000);
    expect(guard.feed(packet(100))).toBeUndefined();
    const big = packet(5000);
    expect(guard.feed(big.subarray(0, 3))).toMatch(/exceeds the limit of 1000 bytes/);
  });

  it('counts the fixed header in the size', () => {
    expect(new PacketSizeGuard(12).feed(packet(10))).toBeUndefined();
    expect(new PacketSizeGuard(11).feed(packet(10))).toMatch(/exceeds/);
  });

  it('refuses a remaining length of more than four bytes', () => {
    expect(new PacketSizeGuard(Number.MAX_SAFE_INTEGER).feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBe('malformed remaining length');
  });
});

describe('checkTopicLimits', () => {
  it('accepts ordinary topics and refuses too long or too deep ones', () => {
    expect(checkTopicLimits('a/b/c', DEFAULT_GATEWAY_LIMITS)).toBeUndefined();
    expect(checkTopicLimits('x'.repeat(257), DEFAULT_GATEWAY_LIMITS)).toMatch(/longer than 256 bytes/);
    expect(checkTopicLimits('é'.repeat(129), DEFAULT_GATEWAY_LIMITS)).toMatch(/longer/);
    expect(checkTopicLimits(Array(16).fill('l').join('/'), DEFAULT_GATEWAY_LIMITS)).toBeUndefined();
    expect(checkTopicLimits(Array(17).fill('l').join('/'), DEFAULT_GATEWAY_LIMITS)).toMatch(/more than 16 levels/);
  });
});

/**
 * Token buckets kept in Redis, so that a limit holds across every process and node of an installation (used for
 * per-claim rate limits when Gatehouse runs with the Redis bus). Each take/give-back is one atomic script run on
 * Redis' own clock (no skew between nodes); an idle bucket expires once it would be full again.
 */
import { Redis } from 'ioredis';

const SCRIPT = `
local cap = tonumber(ARGV[1])
local perMs = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil then tokens = cap; at = now end
tokens = math.min(cap, tokens + math.max(0, now - at) * perMs)
local wait = 0
if cost > 0 then
  if tokens >= cost then tokens = tokens - cost else wait = math.ceil((cost - tokens) / perMs) end
else
  tokens = math.min(cap, tokens - cost)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(cap / perMs) + 1000)
return wait
`;

type BucketCommand = (key: string, capacity: string, perMs: string, cost: string) => Promise<number>;

/** Token buckets in Redis: capacity `perMinute`, refilled continuously at `perMinute` per minute. */
export class RedisTokenBuckets {
  private readonly redis: Redis;
  private readonly run: BucketCommand;

  private constructor(redis: Redis) {
    this.redis = redis;
    redis.defineCommand('gatehouseTokenBucket', { numberOfKeys: 1, lua: SCRIPT });
    const command = Reflect.get(redis, 'gatehouseTokenBucket') as BucketCommand;
    this.run = command.bind(redis);
  }

  /** Connects to `url` (errors after the first connection go to `onError`; ioredis reconnects). */
  static async open(url: string, onError: (error: unknown) => void = () => undefined): Promise<RedisTokenBuckets> {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
    redis.on('error', onError);
    await redis.connect();
    return new RedisTokenBuckets(redis);
  }

  /** Takes one token of `key`; 0 when taken, else the milliseconds until one will be there. */
  async take(key: string, perMinute: number): Promise<number> {
    return Number(await this.run(key, String(perMinute), String(perMinute / 60_000), '1'));
  }

  /** Gives one token back (a call that took one then failed). */
  async giveBack(key: string, perMinute: number): Promise<void> {
    await this.run(key, String(perMinute), String(perMinute / 60_000), '-1');
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => undefined);
  }
}

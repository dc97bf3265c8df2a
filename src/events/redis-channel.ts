/**
 * A publish/subscribe channel over Redis (architecture.md "Scaling out": Redis carries what several `gatehouse`
 * processes must tell each other). Messages are JSON; each carries the id of the process that sent it so that a
 * process never handles its own messages twice (it already acted on them locally). Delivery is at most once, like
 * Redis pub/sub: a process that is disconnected from Redis misses messages, which is why consumers keep a time
 * limit on anything they cache (see `src/gateway/connect-cache.ts`).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { EventErrors } from './errors.ts';

/** Options of {@link RedisChannel.open}. */
export interface RedisChannelOptions {
  /** `redis://…` or `rediss://…`. */
  readonly url: string;
  /** Channel name (namespace it per installation). */
  readonly channel: string;
  /** Longest wait for the first connection (default 5 000 ms). */
  readonly connectTimeoutMs?: number | undefined;
  /** Told about connection errors after the channel is open (Redis reconnects by itself). */
  readonly onError?: ((error: unknown) => void) | undefined;
}

interface Envelope {
  readonly origin: string;
  readonly message: unknown;
}

/** Redis pub/sub on one channel, with a subscriber connection and a publisher connection. */
export class RedisChannel<T> {
  /** This process's id in envelopes. */
  readonly origin = randomUUID();
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly channel: string;
  private readonly handlers = new Set<(message: T) => void>();
  private closed = false;

  private constructor(pub: Redis, sub: Redis, channel: string) {
    this.pub = pub;
    this.sub = sub;
    this.channel = channel;
    sub.on('message', (ch: string, text: string) => {
      if (ch !== channel) return;
      let envelope: Envelope;
      try {
        envelope = JSON.parse(text) as Envelope;
      } catch {
        return;
      }
      if (envelope.origin === this.origin) return;
      for (const h of this.handlers) h(envelope.message as T);
    });
  }

  /** Connects both connections and subscribes; fails with `EVENTS_BUS_UNREACHABLE` when Redis does not answer. */
  static async open<T>(options: RedisChannelOptions): Promise<RedisChannel<T>> {
    const timeout = options.connectTimeoutMs ?? 5000;
    const connect = (): Redis => new Redis(options.url, { lazyConnect: true, connectTimeout: timeout, maxRetriesPerRequest: 2, enableOfflineQueue: true });
    const pub = connect();
    const sub = connect();
    const swallow = (): void => undefined;
    pub.on('error', swallow);
    sub.on('error', swallow);
    try {
      await Promise.all([pub.connect(), sub.connect()]);
      await sub.subscribe(options.channel);
    } catch (cause) {
      pub.disconnect();
      sub.disconnect();
      throw EventErrors.error('EVENTS_BUS_UNREACHABLE', `cannot reach the Redis bus at ${redactUrl(options.url)}: ${(cause as Error).message}`, { cause });
    }
    if (options.onError !== undefined) {
      pub.off('error', swallow).on('error', options.onError);
      sub.off('error', swallow).on('error', options.onError);
    }
    return new RedisChannel<T>(pub, sub, options.channel);
  }

  /** Sends `message` to every other process on the channel (fire and forget; failures go to `onError`). */
  publish(message: T): void {
    if (this.closed) return;
    const envelope: Envelope = { origin: this.origin, message };
    this.pub.publish(this.channel, JSON.stringify(envelope)).catch((error: unknown) => this.pub.emit('error', error));
  }

  /** Adds a handler of messages from other processes; returns its remover. */
  subscribe(handler: (message: T) => void): () => void {
    this.handlers.add(handler);
    return () => {
      this.handlers.delete(handler);
    };
  }

  /** Closes both connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers.clear();
    await Promise.allSettled([this.sub.quit(), this.pub.quit()]);
  }
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

/**
 * Webhook delivery of lifecycle events (issue 4 §6): each event is POSTed as JSON to every matching target with an
 * HMAC-SHA256 signature, retried with exponential backoff and jitter on network errors, timeouts, 408, 429 and
 * 5xx, and handed to a {@link DeadLetterSink} when it finally fails. Delivery is fully asynchronous and bounded:
 * a target that is down or slow never blocks the publisher (the gateway) and never grows memory without limit.
 *
 * Signature: header `gatehouse-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (receivers
 * recompute it with {@link signWebhookBody} and reject stale timestamps).
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { EventBus } from './event-bus.ts';
import type { LifecycleEvent } from './lifecycle-events.ts';
import { eventTypeOf, payloadOfEvent, topicOfEvent } from './lifecycle-events.ts';

/** Where events go. */
export interface WebhookTarget {
  readonly id: string;
  readonly url: string;
  /** HMAC key of the signature. */
  readonly secret: string;
  /** Only events of this tenant (undefined: every tenant). */
  readonly tenantId?: string | undefined;
  /** Only these event types (see `eventTypeOf`); undefined or empty: every type. */
  readonly events?: readonly string[] | undefined;
}

/** A delivery that failed for good. */
export interface DeadLetter {
  readonly targetId: string;
  readonly url: string;
  readonly deliveryId: string;
  readonly body: string;
  readonly attempts: number;
  readonly lastError: string;
  readonly failedAt: Date;
}

/** Keeps failed deliveries (a database table in production; {@link MemoryDeadLetterSink} by default). */
export interface DeadLetterSink {
  record(letter: DeadLetter): void | Promise<void>;
}

/** A bounded in-memory dead-letter list (newest kept). */
export class MemoryDeadLetterSink implements DeadLetterSink {
  private readonly max: number;
  readonly letters: DeadLetter[] = [];

  constructor(max = 1_000) {
    this.max = max;
  }

  /** Appends `letter`, dropping the oldest beyond the bound. */
  record(letter: DeadLetter): void {
    this.letters.push(letter);
    if (this.letters.length > this.max) this.letters.splice(0, this.letters.length - this.max);
  }
}

/** Options of {@link WebhookDispatcher}. */
export interface WebhookDispatcherOptions {
  /** The targets, or a function read at each event (targets configured at run time through the API). */
  readonly targets: readonly WebhookTarget[] | (() => readonly WebhookTarget[]);
  readonly deadLetters?: DeadLetterSink | undefined;
  /** Attempts per delivery, first one included (default 5). */
  readonly maxAttempts?: number | undefined;
  /** Delay before the first retry (default 500 ms); doubles each time, with ±20 % jitter. */
  readonly initialBackoffMs?: number | undefined;
  /** Upper bound of a retry delay (default 30 s). */
  readonly maxBackoffMs?: number | undefined;
  /** Time allowed for one HTTP attempt (default 5 s). */
  readonly timeoutMs?: number | undefined;
  /** Most deliveries pending at once (default 10 000); beyond, new ones go straight to the dead letters. */
  readonly maxPending?: number | undefined;
  /** Told when a dead-letter sink itself fails. */
  readonly onError?: ((error: unknown) => void) | undefined;
}

/** The signature of `body` sent at unix time `timestamp` (seconds), as the `v1` value of the header. */
export function signWebhookBody(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** The JSON body POSTed for an event. */
export function webhookBodyOf(event: LifecycleEvent, deliveryId: string): string {
  return JSON.stringify({ deliveryId, tenantId: event.tenantId, eventType: eventTypeOf(event), topic: topicOfEvent(event), event: payloadOfEvent(event) });
}

function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Delivers lifecycle events to webhooks. Subscribe it to a bus with {@link attach}. */
export class WebhookDispatcher {
  private readonly o: {
    readonly targets: () => readonly WebhookTarget[];
    readonly deadLetters: DeadLetterSink;
    readonly maxAttempts: number;
    readonly initialBackoffMs: number;
    readonly maxBackoffMs: number;
    readonly timeoutMs: number;
    readonly maxPending: number;
    readonly onError: ((error: unknown) => void) | undefined;
  };
  private pending = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly controllers = new Set<AbortController>();
  private closed = false;

  constructor(options: WebhookDispatcherOptions) {
    this.o = {
      targets: typeof options.targets === 'function' ? options.targets : ((t: readonly WebhookTarget[]) => () => t)(options.targets),
      deadLetters: options.deadLetters ?? new MemoryDeadLetterSink(),
      maxAttempts: options.maxAttempts ?? 5,
      initialBackoffMs: options.initialBackoffMs ?? 500,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      timeoutMs: options.timeoutMs ?? 5_000,
      maxPending: options.maxPending ?? 10_000,
      onError: options.onError,
    };
  }

  /** Subscribes to `bus`; returns the function that unsubscribes. */
  attach(bus: EventBus): () => void {
    return bus.subscribe((event) => this.dispatch(event));
  }

  /** Deliveries not yet finished (sent, retried or dead-lettered). */
  get pendingDeliveries(): number {
    return this.pending;
  }

  /** Starts delivering `event` to every matching target; returns at once. */
  dispatch(event: LifecycleEvent): void {
    if (this.closed) return;
    const type = eventTypeOf(event);
    for (const target of this.o.targets()) {
      if (target.tenantId !== undefined && target.tenantId !== event.tenantId) continue;
      if (target.events !== undefined && target.events.length > 0 && !target.events.includes(type)) continue;
      const deliveryId = randomUUID();
      const body = webhookBodyOf(event, deliveryId);
      if (this.pending >= this.o.maxPending) {
        this.deadLetter(target, deliveryId, body, 0, 'too many pending deliveries');
        continue;
      }
      this.pending++;
      void this.attempt(target, deliveryId, body, 1);
    }
  }

  /** Stops retrying and aborts requests in flight (pending deliveries are dropped, not dead-lettered). */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of this.controllers) c.abort();
    this.controllers.clear();
  }

  private async attempt(target: WebhookTarget, deliveryId: string, body: string, attempt: number): Promise<void> {
    if (this.closed) return;
    // a retry of a webhook deleted (or pointed elsewhere) meanwhile is dropped: its owner no longer wants it there
    if (attempt > 1 && !this.o.targets().some((t) => t.id === target.id && t.url === target.url)) {
      this.pending--;
      return;
    }
    let error: string;
    let again: boolean;
    const controller = new AbortController();
    this.controllers.add(controller);
    const timer = setTimeout(() => controller.abort(), this.o.timeoutMs);
    try {
      const timestamp = Math.floor(Date.now() / 1000);
      const res = await fetch(target.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'gatehouse-delivery': deliveryId,
          'gatehouse-signature': `t=${timestamp},v1=${signWebhookBody(target.secret, timestamp, body)}`,
        },
        body,
        signal: controller.signal,
        // a redirect would carry the body and its signature to wherever the receiver points (any host): not followed
        redirect: 'manual',
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) {
        this.pending--;
        return;
      }
      error = res.status >= 300 && res.status < 400 ? `HTTP ${res.status} (redirects are not followed)` : `HTTP ${res.status}`;
      again = retryable(res.status);
    } catch (cause) {
      error = controller.signal.aborted ? `timed out after ${this.o.timeoutMs} ms` : cause instanceof Error ? cause.message : String(cause);
      again = true;
    } finally {
      clearTimeout(timer);
      this.controllers.delete(controller);
    }
    if (this.closed) return;
    if (!again || attempt >= this.o.maxAttempts) {
      this.pending--;
      this.deadLetter(target, deliveryId, body, attempt, error);
      return;
    }
    const base = Math.min(this.o.maxBackoffMs, this.o.initialBackoffMs * 2 ** (attempt - 1));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    const retry = setTimeout(() => {
      this.timers.delete(retry);
      void this.attempt(target, deliveryId, body, attempt + 1);
    }, delay);
    retry.unref();
    this.timers.add(retry);
  }

  private deadLetter(target: WebhookTarget, deliveryId: string, body: string, attempts: number, lastError: string): void {
    try {
      const r = this.o.deadLetters.record({ targetId: target.id, url: target.url, deliveryId, body, attempts, lastError, failedAt: new Date() });
      if (r instanceof Promise) r.catch((error: unknown) => this.o.onError?.(error));
    } catch (error) {
      this.o.onError?.(error);
    }
  }
}

/**
 * The event bus (architecture.md "src/events"): in-process by default. Publishing never blocks and never throws:
 * each handler runs later, on its own, and a failing handler is reported to `onHandlerError` only — a slow or
 * broken consumer (webhook, broker) can never stall the gateway.
 */
import type { LifecycleEvent } from './lifecycle-events.ts';

/** Receives events; may be async (its promise is not awaited by the publisher). */
export type EventHandler = (event: LifecycleEvent) => void | Promise<void>;

/** Publish/subscribe for lifecycle events. A Redis/NATS implementation replaces it when scaled out. */
export interface EventBus {
  /** Queues `event` for every current subscriber; returns at once. */
  publish(event: LifecycleEvent): void;
  /** Adds a handler; returns the function that removes it. */
  subscribe(handler: EventHandler): () => void;
}

/** Options of {@link InProcessEventBus}. */
export interface InProcessEventBusOptions {
  /** Called when a handler throws or rejects (log it); the bus keeps going. */
  readonly onHandlerError?: (error: unknown, event: LifecycleEvent) => void;
}

/** The default, single-process bus. */
export class InProcessEventBus implements EventBus {
  private readonly handlers = new Set<EventHandler>();
  private readonly onHandlerError: (error: unknown, event: LifecycleEvent) => void;

  constructor(options: InProcessEventBusOptions = {}) {
    this.onHandlerError = options.onHandlerError ?? (() => undefined);
  }

  /** Queues `event` for every subscriber (handlers run on a later tick). */
  publish(event: LifecycleEvent): void {
    for (const handler of this.handlers) {
      setImmediate(() => {
        try {
          const result = handler(event);
          if (result instanceof Promise) result.catch((error: unknown) => this.onHandlerError(error, event));
        } catch (error) {
          this.onHandlerError(error, event);
        }
      });
    }
  }

  /** Adds `handler`; returns its remover. */
  subscribe(handler: EventHandler): () => void {
    this.handlers.add(handler);
    return () => {
      this.handlers.delete(handler);
    };
  }
}

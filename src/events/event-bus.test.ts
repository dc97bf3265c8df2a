import { describe, expect, it } from 'vitest';
import { InProcessEventBus } from './event-bus.ts';
import type { PresenceEvent } from './lifecycle-events.ts';
import { payloadOfEvent, topicOfEvent } from './lifecycle-events.ts';

const event: PresenceEvent = {
  kind: 'presence', tenantId: 't', eventType: 'disconnected', clientId: 'c1', timestamp: 1, principalIdentifier: 'abc', sessionIdentifier: 's',
  disconnectReason: 'CONNECTION_LOST', clientInitiatedDisconnect: false,
};

describe('InProcessEventBus', () => {
  it('delivers asynchronously, isolates failing handlers and unsubscribes', async () => {
    const errors: unknown[] = [];
    const bus = new InProcessEventBus({ onHandlerError: (e) => errors.push(e) });
    const got: string[] = [];
    bus.subscribe(() => {
      throw new Error('boom');
    });
    bus.subscribe(() => Promise.reject(new Error('async boom')));
    const off = bus.subscribe((e) => {
      got.push(e.kind === 'presence' ? e.clientId : e.eventType);
    });
    bus.publish(event);
    expect(got).toEqual([]); // never runs in the publisher's stack
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual(['c1']);
    expect(errors).toHaveLength(2);
    off();
    bus.publish(event);
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual(['c1']);
  });
});

describe('presence event shape', () => {
  it('uses the AWS topic and body, without the tenant', () => {
    expect(topicOfEvent(event)).toBe('$aws/events/presence/disconnected/c1');
    expect(payloadOfEvent(event)).toEqual({
      clientId: 'c1', timestamp: 1, eventType: 'disconnected', sessionIdentifier: 's', principalIdentifier: 'abc', disconnectReason: 'CONNECTION_LOST', clientInitiatedDisconnect: false,
    });
  });
});

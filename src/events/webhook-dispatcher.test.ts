import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { InProcessEventBus } from './event-bus.ts';
import type { PresenceEvent } from './lifecycle-events.ts';
import { MemoryDeadLetterSink, WebhookDispatcher, signWebhookBody } from './webhook-dispatcher.ts';

const event: PresenceEvent = {
  kind: 'presence', tenantId: 'acme', eventType: 'connected', clientId: 'c1', timestamp: 1, principalIdentifier: 'abc', sessionIdentifier: 's',
};

interface Received {
  readonly body: string;
  readonly signature: string;
}

let server: Server | undefined;
let dispatcher: WebhookDispatcher | undefined;

/** A local webhook receiver answering with the statuses in `statuses` (last one repeats); `hang` never answers. */
async function receiver(statuses: (number | 'hang')[]): Promise<{ url: string; got: Received[] }> {
  const got: Received[] = [];
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      got.push({ body, signature: String(req.headers['gatehouse-signature']) });
      const status = statuses[Math.min(got.length - 1, statuses.length - 1)] ?? 200;
      if (status === 'hang') return;
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got };
}

async function until(predicate: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

afterEach(async () => {
  dispatcher?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r) ?? r(undefined));
  server = undefined;
});

describe('WebhookDispatcher', () => {
  it('POSTs a signed JSON body', async () => {
    const { url, got } = await receiver([200]);
    const bus = new InProcessEventBus();
    dispatcher = new WebhookDispatcher({ targets: [{ id: 'h1', url, secret: 's3cret' }] });
    dispatcher.attach(bus);
    bus.publish(event);
    await until(() => got.length === 1 && dispatcher?.pendingDeliveries === 0);
    const first = got[0];
    if (first === undefined) throw new Error('unreachable');
    const body = JSON.parse(first.body) as Record<string, unknown>;
    expect(body).toMatchObject({ tenantId: 'acme', topic: '$aws/events/presence/connected/c1', event: { clientId: 'c1', eventType: 'connected' } });
    const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(first.signature);
    expect(m).not.toBeNull();
    expect(m?.[2]).toBe(signWebhookBody('s3cret', Number(m?.[1]), first.body));
  });

  it('follows no redirect: the body and its signature never reach the host a receiver points to', async () => {
    const { url: elsewhere, got } = await receiver([200]);
    const redirector = createServer((_req, res) => {
      res.statusCode = 307;
      res.setHeader('location', elsewhere);
      res.end();
    });
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', () => r()));
    try {
      const dead = new MemoryDeadLetterSink();
      const bus = new InProcessEventBus();
      dispatcher = new WebhookDispatcher({ targets: [{ id: 'r1', url: `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/hook`, secret: 'k' }], deadLetters: dead, initialBackoffMs: 5 });
      dispatcher.attach(bus);
      bus.publish(event);
      await until(() => dead.letters.length === 1);
      expect(dead.letters[0]).toMatchObject({ targetId: 'r1', attempts: 1, lastError: 'HTTP 307 (redirects are not followed)' });
      expect(got).toEqual([]);
    } finally {
      redirector.closeAllConnections();
      await new Promise((r) => redirector.close(r));
    }
  });

  it('drops the retries of a webhook deleted meanwhile (no more deliveries, no dead letter)', async () => {
    const { url, got } = await receiver([500]);
    const dead = new MemoryDeadLetterSink();
    let targets = [{ id: 'gone', url, secret: 'k' }];
    const bus = new InProcessEventBus();
    dispatcher = new WebhookDispatcher({ targets: () => targets, deadLetters: dead, initialBackoffMs: 50, maxAttempts: 5 });
    dispatcher.attach(bus);
    bus.publish(event);
    await until(() => got.length === 1);
    targets = [];
    await new Promise((r) => setTimeout(r, 400));
    expect(got).toHaveLength(1);
    expect(dead.letters).toEqual([]);
    expect(dispatcher.pendingDeliveries).toBe(0);
  });

  it('retries 5xx with backoff, then succeeds', async () => {
    const { url, got } = await receiver([500, 503, 200]);
    const dead = new MemoryDeadLetterSink();
    dispatcher = new WebhookDispatcher({ targets: [{ id: 'h1', url, secret: 'k' }], deadLetters: dead, initialBackoffMs: 10 });
    dispatcher.dispatch(event);
    await until(() => dispatcher?.pendingDeliveries === 0);
    expect(got).toHaveLength(3);
    expect(dead.letters).toHaveLength(0);
  });

  it('dead-letters after the last attempt, and at once on a 4xx', async () => {
    const { url, got } = await receiver([500]);
    const dead = new MemoryDeadLetterSink();
    dispatcher = new WebhookDispatcher({ targets: [{ id: 'down', url, secret: 'k' }], deadLetters: dead, initialBackoffMs: 5, maxAttempts: 3 });
    dispatcher.dispatch(event);
    await until(() => dead.letters.length === 1);
    expect(got).toHaveLength(3);
    expect(dead.letters[0]).toMatchObject({ targetId: 'down', attempts: 3, lastError: 'HTTP 500' });
    dispatcher.close();
    server?.close();

    const r2 = await receiver([400]);
    const dead2 = new MemoryDeadLetterSink();
    dispatcher = new WebhookDispatcher({ targets: [{ id: 'bad', url: r2.url, secret: 'k' }], deadLetters: dead2, initialBackoffMs: 5 });
    dispatcher.dispatch(event);
    await until(() => dead2.letters.length === 1);
    expect(r2.got).toHaveLength(1);
    expect(dead2.letters[0]).toMatchObject({ attempts: 1, lastError: 'HTTP 400' });
  });

  it('never blocks the publisher: a hanging target times out in the background; tenant filters apply', async () => {
    const { url } = await receiver(['hang']);
    const dead = new MemoryDeadLetterSink();
    dispatcher = new WebhookDispatcher({
      targets: [{ id: 'slow', url, secret: 'k' }, { id: 'other-tenant', url, secret: 'k', tenantId: 'someone-else' }],
      deadLetters: dead, timeoutMs: 50, maxAttempts: 2, initialBackoffMs: 5,
    });
    let returned = 0;
    for (let i = 0; i < 100; i++) {
      dispatcher.dispatch(event);
      returned++;
    }
    // Every dispatch returned before any delivery finished: nothing waited for the hanging target.
    expect(returned).toBe(100);
    expect(dispatcher.pendingDeliveries).toBe(100);
    expect(dead.letters).toHaveLength(0);
    await until(() => dead.letters.length === 100, 15_000);
    expect(dead.letters[0]?.lastError).toMatch(/timed out/);
  });

  it('bounds the pending deliveries', async () => {
    const { url } = await receiver(['hang']);
    const dead = new MemoryDeadLetterSink();
    dispatcher = new WebhookDispatcher({ targets: [{ id: 'slow', url, secret: 'k' }], deadLetters: dead, timeoutMs: 5_000, maxPending: 3 });
    for (let i = 0; i < 5; i++) dispatcher.dispatch(event);
    expect(dispatcher.pendingDeliveries).toBe(3);
    expect(dead.letters.map((l) => l.lastError)).toEqual(['too many pending deliveries', 'too many pending deliveries']);
  });
});

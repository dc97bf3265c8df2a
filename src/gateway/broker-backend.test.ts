import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { redisBrokerBackend } from './broker-backend.ts';
import type { BrokerBackend } from './broker-backend.ts';

const REDIS_URL = process.env['GATEHOUSE_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** Two processes of one installation, simulated by two backends on the same Redis and namespace (real Redis). */
describe('Redis broker backend', () => {
  const namespace = `gatehouse-test:${randomBytes(6).toString('hex')}`;
  const a = redisBrokerBackend(REDIS_URL, namespace)('tenant-a');
  const b = redisBrokerBackend(REDIS_URL, namespace)('tenant-a');
  const other = redisBrokerBackend(REDIS_URL, namespace)('tenant-b');
  afterAll(async () => {
    const close = (x: BrokerBackend) => new Promise<void>((resolve) => x.mq.close(() => resolve()));
    await Promise.all([close(a), close(b), close(other)]);
  });

  const subscribe = (backend: BrokerBackend, filter: string, got: string[]) =>
    new Promise<void>((resolve) => backend.mq.on(filter, (packet, done) => {
      got.push((packet as { topic: string }).topic);
      done();
    }, () => resolve()));
  const publish = (backend: BrokerBackend, topic: string) => new Promise<void>((resolve, reject) => backend.mq.emit({ topic, payload: Buffer.from('x') } as { topic: string }, (e) => (e ? reject(e) : resolve())));

  it('delivers across processes on wildcard filters whose topics hold Redis glob characters, and stays in the tenant', async () => {
    const got: string[] = [];
    const gotOther: string[] = [];
    await subscribe(a, 'sensors/+/[1]', got);
    await subscribe(a, 'odd/*?/#', got);
    await subscribe(other, '#', gotOther);
    for (const t of ['sensors/x/[1]', 'sensors/x/1', 'odd/*?/deep/er', 'odd/ab/c', 'odd/*?']) await publish(b, t);
    const deadline = Date.now() + 3000;
    while (got.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    expect(got.sort()).toEqual(['odd/*?', 'odd/*?/deep/er', 'sensors/x/[1]']);
    expect(gotOther).toEqual([]);
  });
});

/**
 * `/metrics` of a `--workers N` installation. Each worker counts what it serves (its connections, refusals,
 * provisioning outcomes), and the kernel hands a `/metrics` request to any one of them: alone, a worker's registry
 * under-reports the installation. So a worker asks the primary, which gathers every worker's registry over node:cluster
 * IPC (prom-client's AggregatorRegistry: counters and histograms summed, per label set) and sends the text back.
 *
 * If the gathering fails (a worker being replaced does not answer within prom-client's 5 s), the worker answers with
 * its own metrics and says so in the `Gatehouse-Metrics-Scope` header (`installation` or `worker`).
 */
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Registry } from 'prom-client';

const REQUEST = 'gatehouse-metrics-request';
const REPLY = 'gatehouse-metrics-reply';

/** Metrics text and what it covers. */
export interface ScopedMetrics {
  readonly text: string;
  readonly scope: 'installation' | 'worker';
}

function isMessage(m: unknown, type: string): m is { type: string; id: number; text?: string; error?: string } {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type && typeof (m as { id?: unknown }).id === 'number';
}

/** In the primary: answers the workers' requests with every worker's metrics, aggregated. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker: Worker, message: unknown) => {
    if (!isMessage(message, REQUEST)) return;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: REPLY, id: message.id, text }),
      (error: unknown) => worker.send({ type: REPLY, id: message.id, error: error instanceof Error ? error.message : String(error) }),
    );
  });
}

/**
 * In a worker: reports `registry` when the primary gathers, and returns the function that gets the installation's
 * metrics (or this worker's own, when the primary cannot gather them within `timeoutMs`).
 */
export function workerClusterMetrics(registry: Registry, timeoutMs = 7000): () => Promise<ScopedMetrics> {
  AggregatorRegistry.setRegistries(registry);
  // Constructing one installs prom-client's listener that answers the primary's gathering requests.
  const reporter = new AggregatorRegistry();
  void reporter;
  const pending = new Map<number, (m: { text?: string; error?: string } | undefined) => void>();
  let nextId = 0;
  process.on('message', (message: unknown) => {
    if (!isMessage(message, REPLY)) return;
    pending.get(message.id)?.(message);
  });
  return async () => {
    const id = nextId++;
    const answer = await new Promise<{ text?: string; error?: string } | undefined>((resolve) => {
      const timer = setTimeout(() => settle(undefined), timeoutMs);
      const settle = (m: { text?: string; error?: string } | undefined): void => {
        clearTimeout(timer);
        pending.delete(id);
        resolve(m);
      };
      pending.set(id, settle);
      if (process.send === undefined) settle(undefined);
      else process.send({ type: REQUEST, id });
    });
    if (answer?.text !== undefined) return { text: answer.text, scope: 'installation' };
    return { text: await registry.metrics(), scope: 'worker' };
  };
}

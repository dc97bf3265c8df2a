/**
 * `gatehouse serve --workers N` (architecture.md "Processes and ports"): this process becomes a node:cluster
 * primary that holds the data-dir lock, initialises the installation once, and forks N workers. Each worker runs
 * the full server (`startGatehouse` with role `worker`) on the same ports: the kernel spreads accepted connections
 * over the workers (cluster scheduling "none": every worker accepts on the shared socket, the primary never
 * touches a connection). The workers act as one installation through the database and the Redis bus
 * (`GATEHOUSE_BUS_URL`): MQTT delivery, retained messages and sessions, and registry change notifications.
 *
 * A worker that dies is replaced (at most 5 times a minute); the primary writes `server.json` once every worker is
 * ready, and on SIGTERM stops the workers before it releases the lock.
 */
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { GatehouseConfig } from '../config/index.ts';
import { RedisChannel, redactUrl } from '../events/index.ts';
import { serveClusterMetrics } from './cluster-metrics.ts';
import { DATA_FILES } from './data-dir.ts';
import { AppErrors } from './errors.ts';
import { busNamespaceOf, prepareInstallation } from './gatehouse.ts';

/** Message a worker sends to the primary once it listens. */
export interface WorkerReady {
  readonly type: 'gatehouse-worker-ready';
  readonly apiUrl: string;
  readonly ports: { readonly api: number; readonly mqtt: number };
}

/** Environment variable that tells a forked worker its index (0 runs the housekeeping). */
export const WORKER_INDEX_ENV = 'GATEHOUSE_WORKER_INDEX';

/** A running primary. */
export interface RunningCluster {
  readonly apiUrl: string;
  readonly ports: WorkerReady['ports'];
  readonly workerPids: () => number[];
  /** Stops every worker (SIGTERM, then SIGKILL after 10 s), removes server.json, releases the lock. */
  stop(): Promise<void>;
}

function isReady(message: unknown): message is WorkerReady {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'gatehouse-worker-ready';
}

/**
 * Starts the primary and its workers; resolves once every worker listens. `schedulingPolicyFromEnv`: keep the
 * policy Node read from `NODE_CLUSTER_SCHED_POLICY` (e.g. `rr`, round robin through the primary, which tests use to
 * put consecutive connections on different workers) instead of the kernel's distribution.
 */
export async function startCluster(config: GatehouseConfig, logger: Logger, schedulingPolicyFromEnv = false): Promise<RunningCluster> {
  const busUrl = config.busUrl;
  if (busUrl === undefined) throw AppErrors.error('APP_WORKER_FAILED', 'several workers need the Redis bus (GATEHOUSE_BUS_URL)');
  const { release, rootCaPem } = await prepareInstallation(config, logger);
  let stopping = false;
  const workers = new Map<number, Worker>(); // index → worker
  const restarts: number[] = [];
  let serverFile: string | undefined;
  let first: WorkerReady | undefined;
  const pids = (): number[] => [...workers.values()].map((w) => w.process.pid ?? 0);
  const writeServerFile = (): void => {
    if (serverFile === undefined || first === undefined) return;
    writeFileSync(serverFile, JSON.stringify({ pid: process.pid, apiUrl: first.apiUrl, ports: first.ports, workers: pids() }, null, 2));
  };
  try {
    // Fail early and clearly when the bus is missing, rather than in N workers at once.
    const probe = await RedisChannel.open({ url: busUrl, channel: `${busNamespaceOf(rootCaPem)}:probe` });
    await probe.close();
    logger.info({ workers: config.workers, bus: redactUrl(busUrl) }, 'starting workers');
    // Node's own NODE_CLUSTER_SCHED_POLICY=rr (round robin through the primary) stays available, e.g. for tests.
    if (!schedulingPolicyFromEnv) cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ serialization: 'json' });
    // /metrics answered by any worker covers every worker (cluster-metrics.ts).
    serveClusterMetrics();

    const fork = (index: number): Promise<WorkerReady> => {
      const worker = cluster.fork({ [WORKER_INDEX_ENV]: String(index) });
      workers.set(index, worker);
      return new Promise<WorkerReady>((resolve, reject) => {
        let ready = false;
        worker.on('message', (message: unknown) => {
          if (!isReady(message) || ready) return;
          ready = true;
          resolve(message);
        });
        worker.once('exit', (code, signal) => {
          if (workers.get(index) === worker) workers.delete(index);
          if (!ready) {
            reject(AppErrors.error('APP_WORKER_FAILED', `worker ${index} (pid ${worker.process.pid ?? '?'}) exited before it was ready (${signal ?? `code ${String(code)}`}); see its log above`));
            return;
          }
          if (stopping) return;
          const now = Date.now();
          restarts.push(now);
          while (restarts.length > 0 && (restarts[0] ?? now) < now - 60_000) restarts.shift();
          if (restarts.length > 5) {
            logger.fatal({ index }, 'workers keep dying (more than 5 restarts in a minute); stopping');
            process.kill(process.pid, 'SIGTERM');
            return;
          }
          logger.error({ index, pid: worker.process.pid, code, signal }, 'worker died; starting a replacement');
          fork(index).then(
            () => {
              if (!stopping) writeServerFile();
            },
            (error: unknown) => logger.error({ err: error, index }, 'replacement worker failed to start'),
          );
        });
      });
    };

    const readies = await Promise.all(Array.from({ length: config.workers }, (_, i) => fork(i)));
    first = readies[0];
    if (first === undefined) throw AppErrors.error('APP_WORKER_FAILED', 'no worker started');
    serverFile = path.join(config.dataDir, DATA_FILES.server);
    writeServerFile();
    logger.info({ apiUrl: first.apiUrl, ports: first.ports, workers: pids() }, 'gatehouse ready (workers)');
    let stopped: Promise<void> | undefined;
    return {
      apiUrl: first.apiUrl,
      ports: first.ports,
      workerPids: pids,
      stop() {
        stopped ??= (async () => {
          stopping = true;
          await stopWorkers([...workers.values()]);
          if (serverFile !== undefined) unlinkSync(serverFile);
          release();
          logger.info('gatehouse stopped');
        })();
        return stopped;
      },
    };
  } catch (error) {
    stopping = true;
    await stopWorkers([...workers.values()]);
    release();
    throw error;
  }
}

/** SIGTERM to each worker, SIGKILL to those still running 10 s later. */
async function stopWorkers(list: Worker[]): Promise<void> {
  await Promise.all(
    list.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.isDead()) {
            resolve();
            return;
          }
          const timer = setTimeout(() => w.process.kill('SIGKILL'), 10_000);
          w.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          w.process.kill('SIGTERM');
        }),
    ),
  );
}

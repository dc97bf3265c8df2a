export { startGatehouse, type RunningGatehouse, type StartOptions } from './gatehouse.ts';
export { startCluster, WORKER_INDEX_ENV, type RunningCluster, type WorkerReady } from './cluster.ts';
export { createLogger, REDACT_PATHS } from './logger.ts';
export { AppErrors } from './errors.ts';
export { DATA_FILES } from './data-dir.ts';

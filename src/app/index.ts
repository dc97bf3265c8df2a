export { startGatehouse, type RunningGatehouse } from './gatehouse.ts';
export { createLogger, REDACT_PATHS } from './logger.ts';
export { AppErrors } from './errors.ts';
export { DATA_FILES } from './data-dir.ts';

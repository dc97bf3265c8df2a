import { defineErrors } from '../errors/index.ts';

/** Error codes of process start-up. */
export const AppErrors = defineErrors({
  APP_DATA_DIR_LOCKED: { kind: 'conflict', description: 'Another Gatehouse process is running on this data directory.' },
  APP_DATA_DIR_UNUSABLE: { kind: 'invalid', description: 'The data directory cannot be created or written.' },
  APP_WORKER_FAILED: { kind: 'unavailable', description: 'A worker process (--workers) exited or did not become ready while Gatehouse was starting.' },
  APP_LISTEN_FAILED: { kind: 'unavailable', description: 'A listener could not bind its address and port (in use, or not permitted).' },
});

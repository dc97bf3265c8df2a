import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { AppErrors } from './errors.ts';

/** Files Gatehouse keeps in its data directory. */
export const DATA_FILES = {
  lock: 'gatehouse.lock',
  kek: 'kek',
  adminToken: 'admin-token',
  rootCa: 'root-ca.pem',
  server: 'server.json',
} as const;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the data directory's lock file (created exclusively, holding our pid). A lock left by a dead process is
 * taken over; a live holder makes start fail with a clear message. Returns the release function.
 */
export function lockDataDir(dir: string): () => void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw AppErrors.error('APP_DATA_DIR_UNUSABLE', `cannot create data directory ${dir}: ${(cause as Error).message}`, { cause });
  }
  const file = path.join(dir, DATA_FILES.lock);
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(file, 'utf8') === String(process.pid)) unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw AppErrors.error('APP_DATA_DIR_UNUSABLE', `cannot write in data directory ${dir}: ${(error as Error).message}`, { cause: error });
      }
      const holder = Number.parseInt(readFileSync(file, 'utf8'), 10);
      if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder)) {
        throw AppErrors.error('APP_DATA_DIR_LOCKED', `another Gatehouse process (pid ${holder}) is using the data directory ${dir}; stop it or choose another GATEHOUSE_DATA_DIR`);
      }
      unlinkSync(file);
    }
  }
  throw AppErrors.error('APP_DATA_DIR_LOCKED', `cannot take the lock of ${dir}`);
}

/** Reads the KEK file, creating it (random, 0600) on first start. Returns its text. */
export function readOrCreateKekFile(dir: string, generate: () => Buffer): string {
  const file = path.join(dir, DATA_FILES.kek);
  if (existsSync(file)) return readFileSync(file, 'utf8');
  const text = `${generate().toString('hex')}\n`;
  writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
  return text;
}

/** Writes a secret file with mode 0600. */
export function writeSecretFile(file: string, content: string): void {
  writeFileSync(file, content, { mode: 0o600 });
  chmodSync(file, 0o600);
}

import pino from 'pino';
import type { Logger } from 'pino';
import type { LogLevel } from '../config/index.ts';

/** Paths that must never reach a log line (tokens, keys); pino replaces them. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'token',
  '*.token',
  'privateKey',
  '*.privateKey',
  'PrivateKey',
  '*.PrivateKey',
  'keyPair',
  '*.keyPair',
  'serverKeyPem',
  'kek',
  'pin',
  '*.pin',
];

/** Builds the process logger: JSON lines to stdout (or a given stream), secrets redacted. */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  return pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { pid: process.pid } }, destination ?? process.stdout);
}

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileErrorReason, unwritableDirectoryReason } from '../errors/index.ts';
import { CliErrors } from './errors.ts';

/** Prints a result: JSON with `--json`, else a readable key/value or table form. */
export function printResult(value: unknown, json: boolean, write: (s: string) => void = (s) => process.stdout.write(s)): void {
  if (json) {
    write(`${JSON.stringify(value ?? null, null, 2)}\n`);
    return;
  }
  if (value === undefined || value === null) {
    write('ok\n');
    return;
  }
  if (Array.isArray(value)) {
    if (value.length === 0) {
      write('(none)\n');
      return;
    }
    for (const item of value) write(`${typeof item === 'object' && item !== null ? summarise(item as Record<string, unknown>) : String(item)}\n`);
    return;
  }
  if (typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (typeof v === 'string' && v.includes('\n')) write(`${k}:\n${v.trimEnd()}\n`);
      else write(`${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}\n`);
    }
    return;
  }
  write(`${typeof value === 'string' ? value : JSON.stringify(value)}\n`);
}

/** One line per list item: `key=value` pairs, nested values (a thing's attributes, an audit entry's details) as compact JSON. */
function summarise(o: Record<string, unknown>): string {
  return Object.entries(o)
    .map(([k, v]) => `${k}=${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`)
    .join('  ');
}

/** Parses repeated `k=v` options into a map; a key given twice, or a pair without `=`, is CLI_USAGE_INVALID. */
export function parseKeyValues(values: readonly string[]): Record<string, string> {
  // A Map, then own properties (Object.fromEntries): a key such as `__proto__` stays a key, not the prototype.
  const out = new Map<string, string>();
  for (const kv of values) {
    const i = kv.indexOf('=');
    if (i <= 0) throw CliErrors.error('CLI_USAGE_INVALID', `expected key=value, got "${kv}"`);
    const key = kv.slice(0, i);
    // a repeated key is a typo more often than an intent: no value silently replaces another
    const earlier = out.get(key);
    if (earlier !== undefined) throw CliErrors.error('CLI_USAGE_INVALID', `${key} is given twice ("${key}=${earlier}" and "${kv}")`);
    out.set(key, kv.slice(i + 1));
  }
  return Object.fromEntries(out);
}

/** Commander collector for repeatable options. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Reads a file named on the command line (UTF-8); a missing or unreadable one is CLI_FILE_UNREADABLE naming it. */
export function readInputFile(file: string, what = 'file'): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    throw CliErrors.error('CLI_FILE_UNREADABLE', `cannot read the ${what} ${file}: ${fileErrorReason(cause)}`, { cause });
  }
}

/**
 * A policy document given on the command line (JSON, or @file.json), sent as text: the server parses and validates it
 * and names what is wrong with a stable code and a JSON path (as AWS's CLI sends the document as a string).
 * A bare file name (`policy.json` for `@policy.json`, as `template create` takes its file) is refused with a hint
 * instead of reaching the server as malformed JSON.
 */
export function readDocument(value: string): string {
  if (value.startsWith('@')) return readInputFile(value.slice(1), 'document');
  const first = value.trimStart()[0];
  if (first !== '{' && first !== '[' && existsSync(value)) {
    throw CliErrors.error('CLI_USAGE_INVALID', `the document argument is JSON text or @file; "${value}" is a file: pass it as @${value}`);
  }
  return value;
}

/**
 * Refuses, before anything is created on the server, an `--out` directory that already holds one of `files`: a key
 * written there would replace another identity's key, which exists nowhere else (CLI_OUTPUT_EXISTS).
 */
export function refuseExistingOutput(dir: string, files: readonly string[]): void {
  const taken = files.filter((f) => existsSync(path.join(dir, f)));
  if (taken.length > 0) throw CliErrors.error('CLI_OUTPUT_EXISTS', `${dir} already holds ${taken.join(', ')}; choose another --out directory (key material is never overwritten)`);
  const problem = unwritableDirectoryReason(dir);
  if (problem !== undefined) throw CliErrors.error('CLI_USAGE_INVALID', `cannot write to --out ${dir}: ${problem}`);
}

/** Refuses a key file named by `option` that exists already (CLI_OUTPUT_EXISTS): the keys in it exist nowhere else. */
export function refuseExistingKeyFile(file: string, option: string): void {
  if (existsSync(file)) throw CliErrors.error('CLI_OUTPUT_EXISTS', `${option} ${file} exists already; choose another file (key material is never overwritten)`);
  refuseUnwritableFile(file, option);
}

/** Fails (CLI_USAGE_INVALID) before any work when the output file `file` of `option` cannot be written where it is. */
export function refuseUnwritableFile(file: string, option: string): void {
  const problem = unwritableDirectoryReason(path.dirname(path.resolve(file)), { mustExist: true });
  if (problem !== undefined) throw CliErrors.error('CLI_USAGE_INVALID', `cannot write ${option} ${file}: ${problem}`);
}

/** A whole number from `min` (digits only, at most 9), or CLI_USAGE_INVALID saying what `option` takes. */
function wholeNumber(option: string, value: string, min: number, takes: string): number {
  if (!/^[0-9]{1,9}$/.test(value) || Number(value) < min) throw CliErrors.error('CLI_USAGE_INVALID', `${option} must be ${takes}, got "${value}"`);
  return Number(value);
}

/**
 * A whole-number option (`--max-devices 5000`), or null for "none" when `none` is allowed: anything else is
 * CLI_USAGE_INVALID, never a silent NaN (which JSON turns into null, i.e. "no limit").
 */
export function wholeNumberOption(option: string, value: string, none: boolean, min = 1): number | null {
  if (none && value === 'none') return null;
  return wholeNumber(option, value, min, `a whole number from ${min}${none ? ' or "none"' : ''}`);
}

/** {@link wholeNumberOption} without "none". */
export function countOption(option: string, value: string, min = 1): number {
  return wholeNumber(option, value, min, `a whole number from ${min}`);
}

import type { Command } from 'commander';
import { loadClientConfig } from '../config/index.ts';
import { isGatehouseError } from '../errors/index.ts';
import { ApiCallError, ApiClient } from './client.ts';
import { printResult } from './output.ts';

/** Environment handed to the CLI by its entry point (the only place that reads process.env). */
export interface CliEnvironment {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}

/** Global options every command inherits. */
export interface GlobalOptions {
  readonly json?: boolean;
  readonly tenant?: string;
}

/** Shared helpers of command actions. */
export class CliContext {
  readonly io: CliEnvironment;
  constructor(io: CliEnvironment) {
    this.io = io;
  }

  /** The global options of `cmd`. */
  globals(cmd: Command): GlobalOptions {
    return cmd.optsWithGlobals<GlobalOptions>();
  }

  /** An API client for the configured server. */
  client(cmd: Command): ApiClient {
    return new ApiClient(loadClientConfig(this.io.env, this.io.cwd), { tenant: this.globals(cmd).tenant });
  }

  /** Prints per `--json`. */
  print(cmd: Command, value: unknown): void {
    printResult(value, this.globals(cmd).json === true, this.io.stdout);
  }

  /** Runs an action, turning errors into `error CODE: message` on stderr and exit code 1. */
  async run(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (error) {
      const coded = error instanceof ApiCallError || isGatehouseError(error);
      this.io.stderr(`error${coded ? ' ' : ': '}${describeError(error)}\n`);
      process.exitCode = 1;
    }
  }
}

/** An error as the CLI prints it: `CODE: message` and its details when it has a stable code, else its message. */
export function describeError(error: unknown): string {
  if (error instanceof ApiCallError || isGatehouseError(error)) return `${error.code}: ${error.message}${describeDetails(error.details, error.message)}`;
  return error instanceof Error ? error.message : String(error);
}

/** Whether `message` already says `value` as a word of its own (the 5 of a CONNACK code is not said by a port 45071). */
function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

function saysValue(message: string, value: string): boolean {
  const escaped = value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // a boundary is needed only where the value itself begins or ends with a word character
  const before = /^\w/.test(value) ? '(?<!\\w)' : '';
  const after = /\w$/.test(value) ? '(?!\\w)' : '';
  return new RegExp(`${before}${escaped}${after}`).test(message);
}

/**
 * The details of an error as the CLI prints them after its message: the JSON path of a template or document error
 * (` at $.Resources.thing…`), then the other scalar fields, and lists of scalars, that the message does not already say
 * (` (name: Missing)`, ` (things: a, b)`).
 */
export function describeDetails(details: Readonly<Record<string, unknown>> | undefined, message: string): string {
  if (details === undefined) return '';
  const path = details['path'];
  const at = typeof path === 'string' && !message.includes(path) ? ` at ${path}` : '';
  const rest = Object.entries(details)
    .map(([k, v]): [string, string | undefined] => [k, isScalar(v) ? String(v) : Array.isArray(v) && v.length > 0 && v.every(isScalar) ? v.map(String).join(', ') : undefined])
    .filter((e): e is [string, string] => e[0] !== 'path' && e[1] !== undefined && !saysValue(message, e[1]))
    .map(([k, v]) => `${k}: ${v}`);
  return `${at}${rest.length > 0 ? ` (${rest.join(', ')})` : ''}`;
}

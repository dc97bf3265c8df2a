import { spawn, execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestDialect } from './dialects.ts';

const execFileAsync = promisify(execFile);
export const REPO = path.resolve(import.meta.dirname, '../..');
export const BIN = path.join(REPO, 'bin/gatehouse.js');

/** A real `gatehouse serve` process on loopback with ephemeral ports. */
export interface ServerProcess {
  readonly apiUrl: string;
  readonly token: string;
  readonly dataDir: string;
  readonly env: Record<string, string>;
  readonly ports: { api: number; mqtt: number };
  readonly proc: ChildProcess;
  output(): string;
  /** Calls the API with the admin token (or `token`). */
  api(method: string, urlPath: string, body?: unknown, options?: { token?: string; tenant?: string; rawBody?: string; contentType?: string }): Promise<{ status: number; body: any; headers: Headers }>;
  /** Runs the CLI against this server. */
  cli(args: string[], extraEnv?: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Stops and removes the data directory and database. */
  destroy(): Promise<void>;
}

/** Options for startServer. */
export interface StartServerOptions {
  readonly dialect: TestDialect;
  readonly dataDir?: string;
  readonly databaseUrl?: string | undefined;
  readonly env?: Record<string, string>;
  readonly keepDatabase?: boolean;
}

/** Waits for `predicate` up to `ms`. */
export async function waitFor<T>(fn: () => T | undefined | Promise<T | undefined>, ms = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts a server process and waits until /healthz answers 200. */
export async function startServer(options: StartServerOptions): Promise<ServerProcess & { databaseUrl: string | undefined; disposeDatabase: () => Promise<void> }> {
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'gh-e2e-'));
  let databaseUrl = options.databaseUrl;
  let disposeDatabase = async (): Promise<void> => {};
  if (databaseUrl === undefined && options.dialect.name === 'postgres') {
    const db = await options.dialect.serverDatabase();
    databaseUrl = db.url;
    disposeDatabase = db.dispose;
  }
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_HOST: '127.0.0.1',
    GATEHOUSE_API_PORT: '0',
    GATEHOUSE_MQTT_PORT: '0',
    GATEHOUSE_HTTPS_PORT: '0',
    GATEHOUSE_LOG_LEVEL: 'info',
    ...(databaseUrl === undefined ? {} : { GATEHOUSE_DATABASE_URL: databaseUrl }),
    ...(options.env ?? {}),
  };
  delete env['GATEHOUSE_URL'];
  delete env['GATEHOUSE_TOKEN'];
  const nodeArgs = (process.env['GATEHOUSE_TEST_SERVER_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const proc = spawn(process.execPath, [...nodeArgs, BIN, 'serve'], { env, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const serverFile = path.join(dataDir, 'server.json');
  let exited = false;
  proc.on('exit', () => (exited = true));
  const info = await waitFor(() => {
    if (exited) throw new Error(`server exited during start:\n${out}`);
    if (!existsSync(serverFile)) return undefined;
    try {
      return JSON.parse(readFileSync(serverFile, 'utf8')) as { apiUrl: string; ports: { api: number; mqtt: number }; pid: number };
    } catch {
      return undefined;
    }
  }, 60_000, 'server.json');
  const token = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
  await waitFor(async () => ((await fetch(`${info.apiUrl}/healthz`).catch(() => undefined))?.status === 200 ? true : undefined), 20_000, 'healthz');
  const server = {
    apiUrl: info.apiUrl,
    token,
    dataDir,
    env,
    ports: info.ports,
    proc,
    databaseUrl,
    disposeDatabase,
    output: () => out,
    async api(method: string, urlPath: string, body?: unknown, o: { token?: string; tenant?: string; rawBody?: string; contentType?: string } = {}) {
      const headers: Record<string, string> = { authorization: `Bearer ${o.token ?? token}` };
      if (o.tenant !== undefined) headers['gatehouse-tenant'] = o.tenant;
      const payload = o.rawBody ?? (body === undefined ? undefined : JSON.stringify(body));
      if (payload !== undefined) headers['content-type'] = o.contentType ?? 'application/json';
      const res = await fetch(`${info.apiUrl}${urlPath}`, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        // keep text
      }
      return { status: res.status, body: parsed as any, headers: res.headers };
    },
    async cli(args: string[], extraEnv: Record<string, string> = {}) {
      try {
        const r = await execFileAsync(process.execPath, [BIN, ...args], { env: { ...env, GATEHOUSE_URL: info.apiUrl, GATEHOUSE_TOKEN: token, ...extraEnv }, cwd: REPO, timeout: 60_000 });
        return { code: 0, stdout: r.stdout, stderr: r.stderr };
      } catch (error) {
        const e = error as { code?: number; stdout?: string; stderr?: string };
        return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
      }
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (exited) return proc.exitCode;
      const done = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      proc.kill(signal);
      return done;
    },
    async destroy() {
      await server.stop();
      if (options.keepDatabase !== true) {
        rmSync(dataDir, { recursive: true, force: true });
        await disposeDatabase();
      }
    },
  };
  return server;
}

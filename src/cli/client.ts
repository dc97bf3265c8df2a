import { existsSync, readFileSync } from 'node:fs';
import { CliErrors } from './errors.ts';
import path from 'node:path';
import type { ClientConfig } from '../config/index.ts';

/** A failed API call, carrying the problem document's stable code. */
export class ApiCallError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(code: string, status: number, message: string) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/** Talks to a running server: `GATEHOUSE_URL` + `GATEHOUSE_TOKEN`, or the local data directory's server.json and admin-token. */
export class ApiClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;
  private readonly tenant: string | undefined;

  constructor(config: ClientConfig, options: { tenant?: string | undefined } = {}) {
    let url = config.url;
    const serverFile = path.join(config.dataDir, 'server.json');
    if (url === undefined && existsSync(serverFile)) {
      try {
        url = (JSON.parse(readFileSync(serverFile, 'utf8')) as { apiUrl?: string }).apiUrl;
      } catch {
        url = undefined;
      }
    }
    this.baseUrl = url ?? 'http://127.0.0.1:8080';
    let token = config.token;
    const tokenFile = path.join(config.dataDir, 'admin-token');
    if (token === undefined && existsSync(tokenFile)) token = readFileSync(tokenFile, 'utf8').trim();
    this.token = token;
    this.tenant = options.tenant;
  }

  /** Calls `method path` with a JSON body; returns the parsed JSON (undefined for 204). */
  async call<T = unknown>(method: string, urlPath: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token !== undefined) headers['authorization'] = `Bearer ${this.token}`;
    if (this.tenant !== undefined) headers['gatehouse-tenant'] = this.tenant;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${urlPath}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (cause) {
      throw new ApiCallError(CliErrors.error('CLI_SERVER_UNREACHABLE').code, 0, `cannot reach Gatehouse at ${this.baseUrl} (${(cause as Error).message}); is 'gatehouse serve' running? set GATEHOUSE_URL`);
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = text;
    }
    if (!res.ok) {
      const p = (parsed ?? {}) as { code?: string; detail?: string };
      throw new ApiCallError(p.code ?? `HTTP_${res.status}`, res.status, p.detail ?? text);
    }
    return parsed as T;
  }

  /** Fetches raw text (PEM downloads). */
  async text(urlPath: string): Promise<string> {
    const res = await fetch(`${this.baseUrl}${urlPath}`, { headers: this.token === undefined ? {} : { authorization: `Bearer ${this.token}` } });
    if (!res.ok) throw new ApiCallError(`HTTP_${res.status}`, res.status, await res.text());
    return res.text();
  }
}

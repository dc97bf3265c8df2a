import { existsSync, readFileSync } from 'node:fs';
import { CliErrors } from './errors.ts';
import path from 'node:path';
import type { ClientConfig } from '../config/index.ts';

/** Items per page when a list command reads a whole list (the API's largest `maxResults`). */
const LIST_PAGE = 250;

/** A failed API call, carrying the problem document's stable code. */
export class ApiCallError extends Error {
  readonly code: string;
  readonly status: number;
  /** The problem's `details` (e.g. the JSON path of a template error), when the server gave any. */
  readonly details: Readonly<Record<string, unknown>> | undefined;
  constructor(code: string, status: number, message: string, details?: Readonly<Record<string, unknown>>) {
    super(message);
    this.code = code;
    this.status = status;
    this.details = details;
  }

  /** The error of a failed API response body (an RFC 9457 problem, or any text). */
  static fromResponse(status: number, text: string): ApiCallError {
    let p: { code?: unknown; detail?: unknown; details?: unknown } | undefined;
    try {
      const parsed = JSON.parse(text) as unknown;
      if (typeof parsed === 'object' && parsed !== null) p = parsed;
    } catch {
      p = undefined;
    }
    const code = typeof p?.code === 'string' ? p.code : `HTTP_${status}`;
    const message = typeof p?.detail === 'string' ? p.detail : text;
    const details = typeof p?.details === 'object' && p.details !== null && !Array.isArray(p.details) ? (p.details as Record<string, unknown>) : undefined;
    return new ApiCallError(code, status, message, details);
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
    if (!res.ok) throw ApiCallError.fromResponse(res.status, text);
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = text;
    }
    return parsed as T;
  }

  /**
   * Every item of a paged list (`GET urlPath` answering `{ <key>: [...], nextToken? }`), following `nextToken` with
   * the API's largest page (250): a list command shows the whole list, as the AWS CLI does, not its first page.
   */
  async listAll<T = unknown>(urlPath: string, key: string, query: URLSearchParams = new URLSearchParams()): Promise<T[]> {
    const items: T[] = [];
    let token: string | undefined;
    do {
      const q = new URLSearchParams(query);
      q.set('maxResults', String(LIST_PAGE));
      if (token !== undefined) q.set('nextToken', token);
      const page = await this.call<Record<string, unknown> | undefined>('GET', `${urlPath}?${q.toString()}`);
      const list = page?.[key];
      if (!Array.isArray(list)) throw new ApiCallError('HTTP_200', 200, `the answer of GET ${urlPath} has no list "${key}"`);
      items.push(...(list as T[]));
      token = typeof page?.['nextToken'] === 'string' ? page['nextToken'] : undefined;
    } while (token !== undefined);
    return items;
  }

  /** Fetches raw text (PEM downloads). */
  async text(urlPath: string): Promise<string> {
    const res = await fetch(`${this.baseUrl}${urlPath}`, { headers: this.token === undefined ? {} : { authorization: `Bearer ${this.token}` } });
    // a refusal is a problem document like any other answer's (it printed as HTTP_404 and the raw JSON)
    if (!res.ok) throw ApiCallError.fromResponse(res.status, await res.text());
    return res.text();
  }
}

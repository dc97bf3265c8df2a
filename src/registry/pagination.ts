import { RegistryErrors } from './errors.ts';

/** Keyset pagination input of every list (AWS names: maxResults, nextToken). */
export interface PageRequest {
  readonly maxResults?: number | undefined;
  readonly nextToken?: string | undefined;
}

/** One page of results. */
export interface Page<T> {
  readonly items: T[];
  readonly nextToken?: string;
}

/** Default and maximum page size. */
export const PAGE_DEFAULT = 50;
export const PAGE_MAX = 250;

/** Decodes the key after which a page starts. */
export function decodePageToken(token: string | undefined): string | undefined {
  if (token === undefined || token === '') return undefined;
  try {
    const text = Buffer.from(token, 'base64url').toString('utf8');
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && 'k' in parsed && typeof parsed.k === 'string') return parsed.k;
  } catch {
    // falls through to the error below
  }
  throw RegistryErrors.error('REGISTRY_PAGINATION_TOKEN_INVALID', 'nextToken is not valid');
}

/** Builds a page from up to `limit + 1` rows ordered by `keyOf`. */
export function toPage<R, T>(rows: R[], limit: number, keyOf: (r: R) => string, map: (r: R) => T): Page<T> {
  const more = rows.length > limit;
  const slice = more ? rows.slice(0, limit) : rows;
  const items = slice.map(map);
  const last = slice[slice.length - 1];
  if (more && last !== undefined) {
    return { items, nextToken: Buffer.from(JSON.stringify({ k: keyOf(last) })).toString('base64url') };
  }
  return { items };
}

/** The effective page size. */
export function pageLimit(req: PageRequest): number {
  const n = req.maxResults ?? PAGE_DEFAULT;
  return Math.max(1, Math.min(PAGE_MAX, Math.trunc(n)));
}

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Executor } from '../store/index.ts';
import { nowIso } from './context.ts';
import { RegistryErrors } from './errors.ts';
import { assertValidName } from './names.ts';
import { DEFAULT_TENANT } from './tenants.ts';

/** Roles of API tokens (issue: admin, operator, installer, manufacturer, provider). */
export const ROLES = ['admin', 'operator', 'installer', 'manufacturer', 'provider'] as const;
/** One API token role. */
export type Role = (typeof ROLES)[number];

/** An API token as listed (never the secret itself). */
export interface ApiToken {
  readonly tokenId: string;
  readonly tenantId: string;
  readonly name: string;
  readonly role: Role;
  readonly createdAt: string;
  readonly revokedAt: string | null;
}

/** Hashes a presented token; only this hash is stored. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Throws unless `role` is one of ROLES. */
export function assertRole(role: unknown): Role {
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
    throw RegistryErrors.error('REGISTRY_ROLE_INVALID', `role must be one of ${ROLES.join(', ')}`);
  }
  return role as Role;
}

function toToken(r: { token_id: string; tenant_id: string; name: string; role: string; created_at: string; revoked_at: string | null }): ApiToken {
  return { tokenId: r.token_id, tenantId: r.tenant_id, name: r.name, role: assertRole(r.role), createdAt: r.created_at, revokedAt: r.revoked_at };
}

/** Creates a token; the returned `token` is shown once and never stored. `presetToken` is used for the admin preset. */
export async function createApiToken(
  db: Executor,
  input: { tenantId: string; name: string; role: Role; presetToken?: string | undefined },
): Promise<ApiToken & { token: string }> {
  assertValidName('token', input.name, 'name');
  const token = input.presetToken ?? `gh_${randomBytes(32).toString('base64url')}`;
  const row = { token_id: randomUUID(), tenant_id: input.tenantId, name: input.name, role: input.role, token_hash: hashToken(token), created_at: nowIso(), revoked_at: null };
  await db.insertInto('api_tokens').values(row).execute();
  return { ...toToken(row), token };
}

/** Finds the live token a bearer string designates. */
export async function findApiToken(db: Executor, token: string): Promise<ApiToken | undefined> {
  const r = await db.selectFrom('api_tokens').selectAll().where('token_hash', '=', hashToken(token)).where('revoked_at', 'is', null).executeTakeFirst();
  return r === undefined ? undefined : toToken(r);
}

/** Lists a tenant's tokens. */
export async function listApiTokens(db: Executor, tenantId: string): Promise<ApiToken[]> {
  const rows = await db.selectFrom('api_tokens').selectAll().where('tenant_id', '=', tenantId).orderBy('created_at').execute();
  return rows.map(toToken);
}

/**
 * Revokes a token of the tenant. The last live admin token of the default tenant is refused: nobody could then create
 * another token (or do anything else) through the API. With `rowLocks` (PostgreSQL) the live admin tokens are locked
 * first, so that two revocations at once cannot both pass the check.
 */
export async function revokeApiToken(db: Executor, tenantId: string, tokenId: string, rowLocks = false): Promise<void> {
  if (tenantId === DEFAULT_TENANT) {
    let q = db.selectFrom('api_tokens').select(['token_id']).where('tenant_id', '=', tenantId).where('role', '=', 'admin').where('revoked_at', 'is', null);
    if (rowLocks) q = q.forUpdate();
    const admins = (await q.execute()).map((r) => r.token_id);
    if (admins.length === 1 && admins[0] === tokenId) {
      throw RegistryErrors.error('REGISTRY_TOKEN_LAST_ADMIN', 'this is the last live admin token of the default tenant: revoking it would lock every caller out; create another admin token first');
    }
  }
  const res = await db.updateTable('api_tokens').set({ revoked_at: nowIso() }).where('tenant_id', '=', tenantId).where('token_id', '=', tokenId).where('revoked_at', 'is', null).executeTakeFirst();
  if (res.numUpdatedRows === 0n) throw RegistryErrors.error('REGISTRY_TOKEN_NOT_FOUND', `no live token ${tokenId}`);
}

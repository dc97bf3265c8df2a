import type { FastifyReply, FastifyRequest } from 'fastify';
import { DEFAULT_TENANT, findApiToken, getTenant } from '../registry/index.ts';
import type { Role } from '../registry/index.ts';
import type { Store } from '../store/index.ts';
import { ApiErrors } from './errors.ts';

const DEFAULT_ROLES: readonly Role[] = ['admin', 'operator'];

/**
 * Authenticates `Authorization: Bearer <token>` and authorises the route's roles. An admin of the default
 * tenant may act on another tenant with `Gatehouse-Tenant: <name>`; nobody else can reach another tenant.
 */
export function createAuthHook(store: Store): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async (request) => {
    const routeConfig = request.routeOptions.config;
    if (routeConfig.public === true) return;
    const header = request.headers.authorization;
    const match = header === undefined ? null : /^Bearer ([A-Za-z0-9._~+/=-]{16,256})$/.exec(header);
    if (match?.[1] === undefined) {
      throw ApiErrors.error('API_UNAUTHENTICATED', header === undefined ? 'send Authorization: Bearer <token>' : 'the Authorization header is not "Bearer <token>" with a token of 16 to 256 characters (A-Z a-z 0-9 . _ ~ + / = -)');
    }
    const token = await findApiToken(store.db, match[1]);
    if (token === undefined) throw ApiErrors.error('API_UNAUTHENTICATED', 'unknown or revoked token');
    const allowed = routeConfig.roles ?? DEFAULT_ROLES;
    if (!allowed.includes(token.role)) {
      throw ApiErrors.error('API_FORBIDDEN', `role "${token.role}" may not call this operation (allowed: ${allowed.join(', ')})`);
    }
    let tenantId = token.tenantId;
    const override = request.headers['gatehouse-tenant'];
    if (typeof override === 'string' && override !== '' && override !== token.tenantId) {
      if (token.role !== 'admin' || token.tenantId !== DEFAULT_TENANT) {
        throw ApiErrors.error('API_TENANT_OVERRIDE_FORBIDDEN', 'only an admin of the default tenant may use Gatehouse-Tenant');
      }
      tenantId = (await getTenant(store.db, override)).tenantId;
    }
    request.caller = { tokenId: token.tokenId, role: token.role, homeTenantId: token.tenantId, tenantId, actor: `token:${token.tokenId}` };
  };
}

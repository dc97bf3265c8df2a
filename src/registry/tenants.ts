import type { Executor } from '../store/index.ts';
import { nowIso } from './context.ts';
import { RegistryErrors } from './errors.ts';
import { assertValidName } from './names.ts';

/** A tenant: the unit of isolation (AWS account, Azure DPS instance). The id is its name. */
export interface Tenant {
  readonly tenantId: string;
  readonly name: string;
  /** Host name devices send as TLS SNI. */
  readonly endpoint: string;
  readonly createdAt: string;
}

/** The tenant every fresh installation has. */
export const DEFAULT_TENANT = 'default';

function toTenant(r: { tenant_id: string; name: string; endpoint: string; created_at: string }): Tenant {
  return { tenantId: r.tenant_id, name: r.name, endpoint: r.endpoint, createdAt: r.created_at };
}

/** Creates a tenant with endpoint `<name>.<domain>`. */
export async function createTenant(db: Executor, name: string, domain: string): Promise<Tenant> {
  assertValidName('tenant', name, 'name');
  const existing = await db.selectFrom('tenants').select('tenant_id').where('tenant_id', '=', name).executeTakeFirst();
  if (existing !== undefined) throw RegistryErrors.error('REGISTRY_TENANT_EXISTS', `tenant "${name}" already exists`);
  const row = { tenant_id: name, name, endpoint: `${name}.${domain}`, created_at: nowIso() };
  await db.insertInto('tenants').values(row).execute();
  return toTenant(row);
}

/** Reads a tenant or throws REGISTRY_TENANT_NOT_FOUND. */
export async function getTenant(db: Executor, name: string): Promise<Tenant> {
  const r = await db.selectFrom('tenants').selectAll().where('tenant_id', '=', name).executeTakeFirst();
  if (r === undefined) throw RegistryErrors.error('REGISTRY_TENANT_NOT_FOUND', `tenant "${name}" does not exist`);
  return toTenant(r);
}

/** Finds the tenant a TLS SNI host name designates, if any. */
export async function findTenantByEndpoint(db: Executor, endpoint: string): Promise<Tenant | undefined> {
  const r = await db.selectFrom('tenants').selectAll().where('endpoint', '=', endpoint.toLowerCase()).executeTakeFirst();
  return r === undefined ? undefined : toTenant(r);
}

/** Lists every tenant. */
export async function listTenants(db: Executor): Promise<Tenant[]> {
  const rows = await db.selectFrom('tenants').selectAll().orderBy('tenant_id').execute();
  return rows.map(toTenant);
}

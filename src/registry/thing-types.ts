import type { Executor } from '../store/index.ts';
import type { RegistryContext } from './context.ts';
import { nowIso } from './context.ts';
import { appendAudit } from './audit-log.ts';
import { RegistryErrors } from './errors.ts';
import { assertValidName } from './names.ts';
import type { Page, PageRequest } from './pagination.ts';
import { decodePageToken, pageLimit, toPage } from './pagination.ts';
import type { WriteOptions } from './things.ts';

/** A thing type. */
export interface ThingType {
  readonly thingTypeName: string;
  readonly description: string | null;
  readonly searchableAttributes: string[];
  readonly deprecated: boolean;
  readonly createdAt: string;
}

function toType(r: { thing_type_name: string; description: string | null; searchable_attributes: string; deprecated: number; created_at: string }): ThingType {
  return { thingTypeName: r.thing_type_name, description: r.description, searchableAttributes: JSON.parse(r.searchable_attributes) as string[], deprecated: r.deprecated === 1, createdAt: r.created_at };
}

/** Creates a thing type. */
export async function createThingType(db: Executor, ctx: RegistryContext, input: { thingTypeName: string; description?: string | undefined; searchableAttributes?: string[] | undefined }, opts: WriteOptions = {}): Promise<ThingType> {
  const name = assertValidName('thingType', input.thingTypeName);
  const exists = await db.selectFrom('thing_types').select('thing_type_name').where('tenant_id', '=', ctx.tenantId).where('thing_type_name', '=', name).executeTakeFirst();
  if (exists !== undefined) throw RegistryErrors.error('REGISTRY_THING_TYPE_EXISTS', `thing type "${name}" already exists`);
  const row = { tenant_id: ctx.tenantId, thing_type_name: name, description: input.description ?? null, searchable_attributes: JSON.stringify(input.searchableAttributes ?? []), deprecated: 0, created_at: nowIso() };
  await db.insertInto('thing_types').values(row).execute();
  await appendAudit(db, ctx, 'thingtype.create', `thingtype/${name}`, {}, opts.rowLocks);
  return toType(row);
}

/** Reads a thing type. */
export async function getThingType(db: Executor, tenantId: string, name: string): Promise<ThingType> {
  const r = await db.selectFrom('thing_types').selectAll().where('tenant_id', '=', tenantId).where('thing_type_name', '=', name).executeTakeFirst();
  if (r === undefined) throw RegistryErrors.error('REGISTRY_THING_TYPE_NOT_FOUND', `thing type "${name}" does not exist`);
  return toType(r);
}

/** Deprecates or un-deprecates a thing type. */
export async function setThingTypeDeprecated(db: Executor, ctx: RegistryContext, name: string, deprecated: boolean, opts: WriteOptions = {}): Promise<ThingType> {
  await getThingType(db, ctx.tenantId, name);
  await db.updateTable('thing_types').set({ deprecated: deprecated ? 1 : 0 }).where('tenant_id', '=', ctx.tenantId).where('thing_type_name', '=', name).execute();
  await appendAudit(db, ctx, deprecated ? 'thingtype.deprecate' : 'thingtype.undeprecate', `thingtype/${name}`, {}, opts.rowLocks);
  return getThingType(db, ctx.tenantId, name);
}

/** Deletes a thing type no thing uses. */
export async function deleteThingType(db: Executor, ctx: RegistryContext, name: string, opts: WriteOptions = {}): Promise<void> {
  await getThingType(db, ctx.tenantId, name);
  const used = await db.selectFrom('things').select('thing_name').where('tenant_id', '=', ctx.tenantId).where('thing_type_name', '=', name).limit(1).executeTakeFirst();
  if (used !== undefined) throw RegistryErrors.error('REGISTRY_THING_TYPE_IN_USE', `thing type "${name}" is used by thing "${used.thing_name}"`);
  await db.deleteFrom('thing_types').where('tenant_id', '=', ctx.tenantId).where('thing_type_name', '=', name).execute();
  await appendAudit(db, ctx, 'thingtype.delete', `thingtype/${name}`, {}, opts.rowLocks);
}

/** Lists thing types. */
export async function listThingTypes(db: Executor, tenantId: string, filter: PageRequest & { namePrefix?: string | undefined }): Promise<Page<ThingType>> {
  const limit = pageLimit(filter);
  const after = decodePageToken(filter.nextToken);
  let q = db.selectFrom('thing_types').selectAll().where('tenant_id', '=', tenantId);
  if (filter.namePrefix !== undefined) q = q.where('thing_type_name', '>=', filter.namePrefix).where('thing_type_name', '<', `${filter.namePrefix}\uffff`);
  if (after !== undefined) q = q.where('thing_type_name', '>', after);
  const rows = await q.orderBy('thing_type_name').limit(limit + 1).execute();
  return toPage(rows, limit, (r) => r.thing_type_name, toType);
}

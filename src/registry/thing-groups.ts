import type { Executor } from '../store/index.ts';
import type { RegistryContext } from './context.ts';
import { nowIso } from './context.ts';
import { appendAudit } from './audit-log.ts';
import { RegistryErrors } from './errors.ts';
import { assertValidAttributes, assertValidName } from './names.ts';
import type { Page, PageRequest } from './pagination.ts';
import { decodePageToken, pageLimit, toPage } from './pagination.ts';
import type { WriteOptions } from './things.ts';
import { lockRow } from './row-locks.ts';

/** A thing group. */
export interface ThingGroup {
  readonly thingGroupName: string;
  readonly description: string | null;
  readonly attributes: Record<string, string>;
  readonly createdAt: string;
}

function toGroup(r: { thing_group_name: string; description: string | null; attributes: string; created_at: string }): ThingGroup {
  return { thingGroupName: r.thing_group_name, description: r.description, attributes: JSON.parse(r.attributes) as Record<string, string>, createdAt: r.created_at };
}

/** Creates a thing group. */
export async function createThingGroup(db: Executor, ctx: RegistryContext, input: { thingGroupName: string; description?: string | undefined; attributes?: Record<string, string> | undefined }, opts: WriteOptions = {}): Promise<ThingGroup> {
  const name = assertValidName('thingGroup', input.thingGroupName);
  const attributes = assertValidAttributes(input.attributes);
  const exists = await db.selectFrom('thing_groups').select('thing_group_name').where('tenant_id', '=', ctx.tenantId).where('thing_group_name', '=', name).executeTakeFirst();
  if (exists !== undefined) throw RegistryErrors.error('REGISTRY_THING_GROUP_EXISTS', `thing group "${name}" already exists`);
  const row = { tenant_id: ctx.tenantId, thing_group_name: name, description: input.description ?? null, attributes: JSON.stringify(attributes), created_at: nowIso() };
  await db.insertInto('thing_groups').values(row).execute();
  await appendAudit(db, ctx, 'thinggroup.create', `thinggroup/${name}`, {}, opts.rowLocks);
  return toGroup(row);
}

/** Reads a thing group. */
export async function getThingGroup(db: Executor, tenantId: string, name: string): Promise<ThingGroup> {
  const r = await db.selectFrom('thing_groups').selectAll().where('tenant_id', '=', tenantId).where('thing_group_name', '=', name).executeTakeFirst();
  if (r === undefined) throw RegistryErrors.error('REGISTRY_THING_GROUP_NOT_FOUND', `thing group "${name}" does not exist`);
  return toGroup(r);
}

/** Deletes a group, its memberships and the policies attached to it. */
export async function deleteThingGroup(db: Executor, ctx: RegistryContext, name: string, opts: WriteOptions = {}): Promise<void> {
  await lockRow(db, 'thing_groups', ctx.tenantId, name, 'update', opts);
  await getThingGroup(db, ctx.tenantId, name);
  await db.deleteFrom('thing_group_members').where('tenant_id', '=', ctx.tenantId).where('thing_group_name', '=', name).execute();
  await db.deleteFrom('policy_attachments').where('tenant_id', '=', ctx.tenantId).where('target_type', '=', 'thinggroup').where('target_id', '=', name).execute();
  await db.deleteFrom('thing_groups').where('tenant_id', '=', ctx.tenantId).where('thing_group_name', '=', name).execute();
  await appendAudit(db, ctx, 'thinggroup.delete', `thinggroup/${name}`, {}, opts.rowLocks);
}

/** Lists thing groups. */
export async function listThingGroups(db: Executor, tenantId: string, filter: PageRequest & { namePrefix?: string | undefined }): Promise<Page<ThingGroup>> {
  const limit = pageLimit(filter);
  const after = decodePageToken(filter.nextToken);
  let q = db.selectFrom('thing_groups').selectAll().where('tenant_id', '=', tenantId);
  if (filter.namePrefix !== undefined) q = q.where('thing_group_name', '>=', filter.namePrefix).where('thing_group_name', '<', `${filter.namePrefix}\uffff`);
  if (after !== undefined) q = q.where('thing_group_name', '>', after);
  const rows = await q.orderBy('thing_group_name').limit(limit + 1).execute();
  return toPage(rows, limit, (r) => r.thing_group_name, toGroup);
}

import { randomUUID } from 'node:crypto';
import { prepare } from '../store/index.ts';
import type { Executor, ThingsTable } from '../store/index.ts';
import { lockRow } from './row-locks.ts';
import type { RegistryContext } from './context.ts';
import { nowIso } from './context.ts';
import { appendAudit } from './audit-log.ts';
import { RegistryErrors } from './errors.ts';
import { assertValidAttributes, assertValidName } from './names.ts';
import type { Page, PageRequest } from './pagination.ts';
import { decodePageToken, pageLimit, toPage } from './pagination.ts';

// The statements of the provisioning hot paths, prepared once per dialect (src/store/prepared.ts).
type ThingKey = { tenantId: string; thingName: string };
const thingByName = prepare('thing by name', (db, p: ThingKey) => db.selectFrom('things').selectAll().where('tenant_id', '=', p.tenantId).where('thing_name', '=', p.thingName));
const groupsOfThing = prepare('groups of a thing', (db, p: ThingKey) =>
  db.selectFrom('thing_group_members').select('thing_group_name').where('tenant_id', '=', p.tenantId).where('thing_name', '=', p.thingName).orderBy('thing_group_name'));
const insertThingRow = prepare('insert thing', (db, p: ThingsTable) => db.insertInto('things').values({
  tenant_id: p.tenant_id, thing_name: p.thing_name, thing_id: p.thing_id, thing_type_name: p.thing_type_name, attributes: p.attributes, version: p.version, created_at: p.created_at, updated_at: p.updated_at,
}));

/** A thing (device record). */
export interface Thing {
  readonly thingName: string;
  readonly thingId: string;
  readonly thingTypeName: string | null;
  readonly attributes: Record<string, string>;
  readonly version: number;
  readonly thingGroups: string[];
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** Input of createThing (AWS CreateThing + group membership). */
export interface CreateThingInput {
  readonly thingName: string;
  readonly attributes?: Record<string, string> | undefined;
  readonly thingTypeName?: string | undefined;
  readonly thingGroups?: readonly string[] | undefined;
}

/** Options for writes that flows share (row locks on PostgreSQL). */
export interface WriteOptions {
  readonly rowLocks?: boolean;
}

/** Options of the attach calls (policy to certificate, certificate to thing). */
export interface AttachOptions extends WriteOptions {
  /** The caller read or wrote both ends earlier in the same transaction (e.g. while applying a plan): skip re-reading them. */
  readonly endsVerified?: boolean;
}

async function assertThingTypeUsable(db: Executor, tenantId: string, name: string): Promise<void> {
  const t = await db.selectFrom('thing_types').select('deprecated').where('tenant_id', '=', tenantId).where('thing_type_name', '=', name).executeTakeFirst();
  if (t === undefined) throw RegistryErrors.error('REGISTRY_THING_TYPE_NOT_FOUND', `thing type "${name}" does not exist`);
  if (t.deprecated === 1) throw RegistryErrors.error('REGISTRY_THING_TYPE_DEPRECATED', `thing type "${name}" is deprecated`);
}

async function assertGroupsExist(db: Executor, tenantId: string, groups: readonly string[]): Promise<void> {
  if (groups.length === 0) return;
  const rows = await db.selectFrom('thing_groups').select('thing_group_name').where('tenant_id', '=', tenantId).where('thing_group_name', 'in', [...groups]).execute();
  const found = new Set(rows.map((r) => r.thing_group_name));
  const missing = groups.find((g) => !found.has(g));
  if (missing !== undefined) throw RegistryErrors.error('REGISTRY_THING_GROUP_NOT_FOUND', `thing group "${missing}" does not exist`);
}

async function groupsOf(db: Executor, tenantId: string, thingName: string): Promise<string[]> {
  const rows = await groupsOfThing.all(db, { tenantId, thingName });
  return rows.map((r) => r.thing_group_name);
}

/**
 * Creates a thing (AWS CreateThing semantics: creating an identical thing again is idempotent and returns it;
 * a different one under the same name is a conflict). Runs inside the caller's transaction.
 */
export async function createThing(db: Executor, ctx: RegistryContext, input: CreateThingInput, opts: WriteOptions = {}): Promise<Thing> {
  const thingName = assertValidName('thing', input.thingName);
  const attributes = assertValidAttributes(input.attributes);
  const groups = [...new Set(input.thingGroups ?? [])];
  groups.forEach((g) => assertValidName('thingGroup', g, 'thingGroups'));
  const typeName = input.thingTypeName ?? null;
  if (typeName !== null) {
    assertValidName('thingType', typeName, 'thingTypeName');
    await assertThingTypeUsable(db, ctx.tenantId, typeName);
  }
  await assertGroupsExist(db, ctx.tenantId, groups);
  const existing = await thingByName.first(db, { tenantId: ctx.tenantId, thingName });
  if (existing !== undefined) {
    const same = existing.thing_type_name === typeName && JSON.stringify(sortKeys(JSON.parse(existing.attributes) as Record<string, string>)) === JSON.stringify(sortKeys(attributes));
    if (!same) throw RegistryErrors.error('REGISTRY_THING_EXISTS', `thing "${thingName}" already exists with different properties`);
    for (const g of groups) await addThingToGroup(db, ctx, g, thingName, opts);
    return getThing(db, ctx.tenantId, thingName);
  }
  const now = nowIso();
  const row: ThingsTable = { tenant_id: ctx.tenantId, thing_name: thingName, thing_id: randomUUID(), thing_type_name: typeName, attributes: JSON.stringify(attributes), version: 1, created_at: now, updated_at: now };
  await insertThingRow.run(db, row);
  if (groups.length > 0) {
    await db.insertInto('thing_group_members').values(groups.map((g) => ({ tenant_id: ctx.tenantId, thing_group_name: g, thing_name: thingName }))).execute();
  }
  await appendAudit(db, ctx, 'thing.create', `thing/${thingName}`, { thingTypeName: typeName, thingGroups: groups }, opts.rowLocks);
  // What was just written, without reading it back (several groups: read them back in the database's collation order).
  if (groups.length > 1) return getThing(db, ctx.tenantId, thingName);
  return { thingName, thingId: row.thing_id, thingTypeName: typeName, attributes, version: 1, thingGroups: [...groups], createdAt: now, updatedAt: now };
}

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Reads a thing or throws REGISTRY_THING_NOT_FOUND. */
export async function getThing(db: Executor, tenantId: string, thingName: string): Promise<Thing> {
  const t = await findThing(db, tenantId, thingName);
  if (t === undefined) throw RegistryErrors.error('REGISTRY_THING_NOT_FOUND', `thing "${thingName}" does not exist`);
  return t;
}

/** Reads a thing if it exists. */
export async function findThing(db: Executor, tenantId: string, thingName: string): Promise<Thing | undefined> {
  const r = await thingByName.first(db, { tenantId, thingName });
  if (r === undefined) return undefined;
  return {
    thingName: r.thing_name,
    thingId: r.thing_id,
    thingTypeName: r.thing_type_name,
    attributes: JSON.parse(r.attributes) as Record<string, string>,
    version: r.version,
    thingGroups: await groupsOf(db, tenantId, thingName),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Input of updateThing: attributes merge (null value removes), optional type change, optimistic version. */
export interface UpdateThingInput {
  readonly attributes?: Record<string, string | null> | undefined;
  /** Replace all attributes instead of merging. */
  readonly replaceAttributes?: boolean | undefined;
  readonly thingTypeName?: string | null | undefined;
  readonly expectedVersion?: number | undefined;
}

/** Updates a thing's attributes or type (AWS UpdateThing). */
export async function updateThing(db: Executor, ctx: RegistryContext, thingName: string, input: UpdateThingInput, opts: WriteOptions = {}): Promise<Thing> {
  const current = await getThing(db, ctx.tenantId, thingName);
  if (input.expectedVersion !== undefined && input.expectedVersion !== current.version) {
    throw RegistryErrors.error('REGISTRY_THING_VERSION_CONFLICT', `thing "${thingName}" is at version ${current.version}, not ${input.expectedVersion}`);
  }
  let attributes = input.replaceAttributes === true ? {} : { ...current.attributes };
  if (input.attributes !== undefined) {
    const removals = Object.entries(input.attributes).filter(([, v]) => v === null).map(([k]) => k);
    const sets = Object.fromEntries(Object.entries(input.attributes).filter(([, v]) => v !== null));
    attributes = { ...attributes, ...assertValidAttributes(sets) };
    for (const k of removals) delete attributes[k];
    assertValidAttributes(attributes);
  }
  let typeName = current.thingTypeName;
  if (input.thingTypeName !== undefined) {
    typeName = input.thingTypeName;
    if (typeName !== null) {
      assertValidName('thingType', typeName, 'thingTypeName');
      await assertThingTypeUsable(db, ctx.tenantId, typeName);
    }
  }
  const res = await db
    .updateTable('things')
    .set({ attributes: JSON.stringify(attributes), thing_type_name: typeName, version: current.version + 1, updated_at: nowIso() })
    .where('tenant_id', '=', ctx.tenantId)
    .where('thing_name', '=', thingName)
    .where('version', '=', current.version)
    .executeTakeFirst();
  if (res.numUpdatedRows === 0n) throw RegistryErrors.error('REGISTRY_THING_VERSION_CONFLICT', `thing "${thingName}" changed concurrently`);
  await appendAudit(db, ctx, 'thing.update', `thing/${thingName}`, { version: current.version + 1 }, opts.rowLocks);
  return getThing(db, ctx.tenantId, thingName);
}

/** Deletes a thing, its group memberships and principal attachments. */
export async function deleteThing(db: Executor, ctx: RegistryContext, thingName: string, opts: WriteOptions & { detachPrincipals?: boolean } = {}): Promise<{ detachedPrincipals: string[] }> {
  await lockRow(db, 'things', ctx.tenantId, thingName, 'update', opts);
  await getThing(db, ctx.tenantId, thingName);
  const principals = (await db.selectFrom('thing_principals').select('certificate_id').where('tenant_id', '=', ctx.tenantId).where('thing_name', '=', thingName).orderBy('certificate_id').execute()).map((r) => r.certificate_id);
  // AWS DeleteThing refuses a thing with principals (InvalidRequestException): its devices would lose their thing unseen
  if (principals.length > 0 && opts.detachPrincipals !== true) {
    throw RegistryErrors.error(
      'REGISTRY_THING_HAS_PRINCIPALS',
      `thing "${thingName}" is still attached to ${principals.length === 1 ? 'a certificate' : `${principals.length} certificates`}: detach ${principals.length === 1 ? 'it' : 'them'} first, or delete with detachPrincipals=true (CLI --detach-principals)`,
      { details: { certificateIds: principals } },
    );
  }
  await db.deleteFrom('thing_group_members').where('tenant_id', '=', ctx.tenantId).where('thing_name', '=', thingName).execute();
  await db.deleteFrom('thing_principals').where('tenant_id', '=', ctx.tenantId).where('thing_name', '=', thingName).execute();
  await db.deleteFrom('things').where('tenant_id', '=', ctx.tenantId).where('thing_name', '=', thingName).execute();
  await appendAudit(db, ctx, 'thing.delete', `thing/${thingName}`, principals.length === 0 ? {} : { detachedPrincipals: principals }, opts.rowLocks);
  return { detachedPrincipals: principals };
}

/** Filters of listThings. */
export interface ListThingsFilter extends PageRequest {
  readonly namePrefix?: string | undefined;
  readonly thingTypeName?: string | undefined;
  readonly thingGroupName?: string | undefined;
  readonly attributeName?: string | undefined;
  readonly attributeValue?: string | undefined;
}

/** Lists things by name order, with prefix, type, group and attribute filters. */
export async function listThings(db: Executor, tenantId: string, filter: ListThingsFilter): Promise<Page<Omit<Thing, 'thingGroups'>>> {
  const limit = pageLimit(filter);
  const after = decodePageToken(filter.nextToken);
  let q = db.selectFrom('things').selectAll('things').where('things.tenant_id', '=', tenantId);
  if (filter.namePrefix !== undefined) q = q.where('things.thing_name', '>=', filter.namePrefix).where('things.thing_name', '<', `${filter.namePrefix}\uffff`);
  if (filter.thingTypeName !== undefined) q = q.where('things.thing_type_name', '=', filter.thingTypeName);
  if (filter.thingGroupName !== undefined) {
    const g = filter.thingGroupName;
    q = q.where((eb) =>
      eb.exists(
        eb.selectFrom('thing_group_members as m').select('m.thing_name').whereRef('m.tenant_id', '=', 'things.tenant_id').whereRef('m.thing_name', '=', 'things.thing_name').where('m.thing_group_name', '=', g),
      ),
    );
  }
  if (after !== undefined) q = q.where('things.thing_name', '>', after);
  const rows = await q.orderBy('things.thing_name').limit(filter.attributeName === undefined ? limit + 1 : 100_000).execute();
  let filtered = rows;
  if (filter.attributeName !== undefined) {
    const name = filter.attributeName;
    filtered = rows.filter((r) => {
      const v = (JSON.parse(r.attributes) as Record<string, string>)[name];
      return v !== undefined && (filter.attributeValue === undefined || v === filter.attributeValue);
    }).slice(0, limit + 1);
  }
  return toPage(filtered, limit, (r) => r.thing_name, (r) => ({
    thingName: r.thing_name,
    thingId: r.thing_id,
    thingTypeName: r.thing_type_name,
    attributes: JSON.parse(r.attributes) as Record<string, string>,
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }));
}

/** Adds a thing to a group (idempotent). */
export async function addThingToGroup(db: Executor, ctx: RegistryContext, groupName: string, thingName: string, opts: WriteOptions = {}): Promise<void> {
  await getThing(db, ctx.tenantId, thingName);
  await assertGroupsExist(db, ctx.tenantId, [groupName]);
  const exists = await db.selectFrom('thing_group_members').select('thing_name').where('tenant_id', '=', ctx.tenantId).where('thing_group_name', '=', groupName).where('thing_name', '=', thingName).executeTakeFirst();
  if (exists !== undefined) return;
  await db.insertInto('thing_group_members').values({ tenant_id: ctx.tenantId, thing_group_name: groupName, thing_name: thingName }).execute();
  await appendAudit(db, ctx, 'thinggroup.add-thing', `thinggroup/${groupName}`, { thingName }, opts.rowLocks);
}

/** Removes a thing from a group. */
export async function removeThingFromGroup(db: Executor, ctx: RegistryContext, groupName: string, thingName: string, opts: WriteOptions = {}): Promise<void> {
  const res = await db.deleteFrom('thing_group_members').where('tenant_id', '=', ctx.tenantId).where('thing_group_name', '=', groupName).where('thing_name', '=', thingName).executeTakeFirst();
  if (res.numDeletedRows === 0n) throw RegistryErrors.error('REGISTRY_ATTACHMENT_NOT_FOUND', `thing "${thingName}" is not in group "${groupName}"`);
  await appendAudit(db, ctx, 'thinggroup.remove-thing', `thinggroup/${groupName}`, { thingName }, opts.rowLocks);
}

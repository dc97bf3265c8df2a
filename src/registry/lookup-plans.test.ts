import { CompiledQuery } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteStoreDialect, createStore } from '../store/index.ts';
import type { Store } from '../store/index.ts';
import * as registry from './index.ts';

/**
 * Migration 0011 and the effective-policy query: the lookups a device's connection makes seek their index on every
 * equality of the WHERE, instead of reading every row of the tenant (SQLite has no statistics, and its planner used to
 * prefer a key that only satisfied the ORDER BY). The statements are the ones the registry really runs, captured.
 */
describe('lookups of a connecting device (SQLite query plans)', () => {
  let store: Store;
  const statements = new Set<string>();
  let capture = false;
  beforeAll(async () => {
    store = createStore(createSqliteStoreDialect({ filename: ':memory:' }), { onQuery: (text) => capture && statements.add(text) });
    await store.migrate();
  });
  afterAll(async () => store.close());

  /** The plan of a captured statement, every step on one line, `|` between them. */
  const plan = async (text: string): Promise<string> => {
    const parameters = Array.from(text.matchAll(/\?/g), () => 'x');
    const rows = (await store.db.executeQuery(CompiledQuery.raw(`explain query plan ${text}`, parameters))).rows as { detail: string }[];
    return rows.map((r) => r.detail).join(' | ');
  };
  const planOf = async (table: string): Promise<string> => {
    const text = [...statements].find((s) => s.includes(`from "${table}"`) || s.includes(`from "${table}" as`));
    expect(text, `a statement reading ${table}`).toBeDefined();
    return plan(text ?? '');
  };

  it('seek on every equality: things of a certificate, groups of a thing, a CA by id, the effective policies', async () => {
    const certificateId = 'c'.repeat(64);
    await store.transaction((trx) => registry.createThing(trx, { tenantId: 'default', actor: 'test' }, { thingName: 'plan-thing' }));
    capture = true;
    await registry.listPrincipalThings(store.db, 'default', certificateId);
    await registry.findThing(store.db, 'default', 'plan-thing');
    await registry.findOwnedCa(store.db, 'a'.repeat(64));
    await registry.findCertificateCa(store.db, 'default', 'a'.repeat(64));
    await registry.effectivePolicyDocuments(store.db, 'default', certificateId);
    capture = false;

    expect(await planOf('thing_principals')).toContain('thing_principals_by_certificate (tenant_id=? AND certificate_id=?)');
    expect(await planOf('ca_certificates')).toContain('ca_certificates_by_id (ca_certificate_id=?)');
    const groups = [...statements].find((s) => s.startsWith('select "thing_group_name" from "thing_group_members"'));
    expect(groups).toBeDefined();
    expect(await plan(groups ?? '')).toContain('thing_group_members_by_thing (tenant_id=? AND thing_name=?)');

    const effective = await planOf('policies');
    // From the certificate outwards: its things, their groups, the groups' attachments.
    expect(effective).toContain('SEARCH tp USING COVERING INDEX thing_principals_by_certificate (tenant_id=? AND certificate_id=?)');
    expect(effective).toContain('SEARCH m USING COVERING INDEX thing_group_members_by_thing (tenant_id=? AND thing_name=?)');
    expect(effective.indexOf('SEARCH tp')).toBeLessThan(effective.indexOf('SEARCH m'));

    // No statement of these lookups reads a table, or an index on the tenant alone.
    for (const text of statements) {
      const p = await plan(text);
      expect(p, text).not.toMatch(/(^|\| )SCAN /);
      expect(p, text).not.toMatch(/\(tenant_id=\?\)/);
    }
  });
});

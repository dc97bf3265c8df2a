import type { Kysely, Migration, MigrationProvider } from 'kysely';
import { PostgresAdapter, sql } from 'kysely';

/** Versioned migrations, applied in name order at start (architecture.md: `src/store`). */
const MIGRATIONS: Record<string, Migration> = {
  '0001_registry_and_pki': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('tenants')
        .addColumn('tenant_id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('endpoint', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('api_tokens')
        .addColumn('token_id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .execute();
      await db.schema
        .createTable('things')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('thing_name', 'text', (c) => c.notNull())
        .addColumn('thing_id', 'text', (c) => c.notNull())
        .addColumn('thing_type_name', 'text')
        .addColumn('attributes', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('things_pk', ['tenant_id', 'thing_name'])
        .execute();
      await db.schema
        .createTable('thing_types')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('thing_type_name', 'text', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('searchable_attributes', 'text', (c) => c.notNull())
        .addColumn('deprecated', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('thing_types_pk', ['tenant_id', 'thing_type_name'])
        .execute();
      await db.schema
        .createTable('thing_groups')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('thing_group_name', 'text', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('attributes', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('thing_groups_pk', ['tenant_id', 'thing_group_name'])
        .execute();
      await db.schema
        .createTable('thing_group_members')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('thing_group_name', 'text', (c) => c.notNull())
        .addColumn('thing_name', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('thing_group_members_pk', ['tenant_id', 'thing_group_name', 'thing_name'])
        .execute();
      await db.schema.createIndex('thing_group_members_thing').on('thing_group_members').columns(['tenant_id', 'thing_name']).execute();
      await db.schema
        .createTable('policies')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('policy_name', 'text', (c) => c.notNull())
        .addColumn('default_version_id', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('policies_pk', ['tenant_id', 'policy_name'])
        .execute();
      await db.schema
        .createTable('policy_versions')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('policy_name', 'text', (c) => c.notNull())
        .addColumn('version_id', 'integer', (c) => c.notNull())
        .addColumn('document', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('policy_versions_pk', ['tenant_id', 'policy_name', 'version_id'])
        .execute();
      await db.schema
        .createTable('policy_attachments')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('policy_name', 'text', (c) => c.notNull())
        .addColumn('target_type', 'text', (c) => c.notNull())
        .addColumn('target_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('policy_attachments_pk', ['tenant_id', 'policy_name', 'target_type', 'target_id'])
        .execute();
      await db.schema.createIndex('policy_attachments_target').on('policy_attachments').columns(['tenant_id', 'target_type', 'target_id']).execute();
      await db.schema
        .createTable('thing_principals')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('thing_name', 'text', (c) => c.notNull())
        .addColumn('certificate_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('thing_principals_pk', ['tenant_id', 'thing_name', 'certificate_id'])
        .execute();
      await db.schema.createIndex('thing_principals_cert').on('thing_principals').columns(['tenant_id', 'certificate_id']).execute();
      await db.schema
        .createTable('certificates')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('certificate_id', 'text', (c) => c.notNull())
        .addColumn('certificate_pem', 'text', (c) => c.notNull())
        .addColumn('ca_certificate_id', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('serial_number', 'text', (c) => c.notNull())
        .addColumn('subject_cn', 'text')
        .addColumn('not_before', 'text', (c) => c.notNull())
        .addColumn('not_after', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('hidden', 'integer', (c) => c.notNull())
        .addColumn('transfer_to_tenant_id', 'text')
        .addColumn('previous_status', 'text')
        .addColumn('revocation_reason', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('certificates_pk', ['tenant_id', 'certificate_id'])
        .execute();
      await db.schema.createIndex('certificates_ca').on('certificates').columns(['tenant_id', 'ca_certificate_id', 'status']).execute();
      await db.schema.createIndex('certificates_by_id').on('certificates').columns(['certificate_id']).execute();
      await db.schema
        .createTable('ca_certificates')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('ca_certificate_id', 'text', (c) => c.notNull())
        .addColumn('certificate_pem', 'text', (c) => c.notNull())
        .addColumn('subject_cn', 'text')
        .addColumn('serial_number', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('certificate_mode', 'text', (c) => c.notNull())
        .addColumn('owned', 'integer', (c) => c.notNull())
        .addColumn('key_ref', 'text')
        .addColumn('key_store', 'text')
        .addColumn('parent_ca_certificate_id', 'text')
        .addColumn('auto_registration', 'integer', (c) => c.notNull())
        .addColumn('registration_template', 'text')
        .addColumn('first_connect', 'text', (c) => c.notNull())
        .addColumn('crl_number', 'integer', (c) => c.notNull())
        .addColumn('not_before', 'text', (c) => c.notNull())
        .addColumn('not_after', 'text', (c) => c.notNull())
        .addColumn('revocation_reason', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('ca_certificates_pk', ['tenant_id', 'ca_certificate_id'])
        .execute();
      await db.schema
        .createTable('key_blobs')
        .addColumn('key_ref', 'text', (c) => c.primaryKey())
        .addColumn('blob', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('registration_codes')
        .addColumn('tenant_id', 'text', (c) => c.primaryKey())
        .addColumn('registration_code', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('audit_log')
        .addColumn('seq', 'integer', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('details', 'text', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_log_tenant').on('audit_log').columns(['tenant_id', 'seq']).execute();
      await db.schema
        .createTable('audit_head')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await sql`insert into audit_head (id, seq, hash) values (1, 0, ${'0'.repeat(64)})`.execute(db);
      await db.schema
        .createTable('system_settings')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0002_provisioning_templates': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('provisioning_templates')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('template_name', 'text', (c) => c.notNull())
        .addColumn('template_type', 'text', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('default_version_id', 'integer', (c) => c.notNull())
        .addColumn('pre_provisioning_hook', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('provisioning_templates_pk', ['tenant_id', 'template_name'])
        .execute();
      await db.schema
        .createTable('provisioning_template_versions')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('template_name', 'text', (c) => c.notNull())
        .addColumn('version_id', 'integer', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('provisioning_template_versions_pk', ['tenant_id', 'template_name', 'version_id'])
        .execute();
    },
  },
  '0003_bulk_tasks': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('bulk_tasks')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('task_id', 'text', (c) => c.primaryKey())
        .addColumn('template_name', 'text', (c) => c.notNull())
        .addColumn('input_format', 'text', (c) => c.notNull())
        .addColumn('input_path', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('total_lines', 'integer')
        .addColumn('processed_lines', 'integer', (c) => c.notNull())
        .addColumn('succeeded', 'integer', (c) => c.notNull())
        .addColumn('already_present', 'integer', (c) => c.notNull())
        .addColumn('failed', 'integer', (c) => c.notNull())
        .addColumn('options', 'text', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('bulk_tasks_tenant').on('bulk_tasks').columns(['tenant_id', 'created_at']).execute();
      await db.schema
        .createTable('bulk_task_results')
        .addColumn('task_id', 'text', (c) => c.notNull())
        .addColumn('line_no', 'integer', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('thing_name', 'text')
        .addColumn('certificate_id', 'text')
        .addColumn('certificate_pem', 'text')
        .addColumn('error_code', 'text')
        .addColumn('error_message', 'text')
        .addPrimaryKeyConstraint('bulk_task_results_pk', ['task_id', 'line_no'])
        .execute();
    },
  },
  '0004_bulk_task_results_keys': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('bulk_task_results').addColumn('private_key_pem', 'text').execute();
      await db.schema.createIndex('bulk_task_results_thing').on('bulk_task_results').columns(['task_id', 'thing_name']).execute();
    },
  },
  '0005_fleet_provisioning': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('claim_certificates')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('certificate_id', 'text', (c) => c.notNull())
        .addColumn('template_name', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('batch', 'text')
        .addColumn('max_devices', 'integer')
        .addColumn('devices_provisioned', 'integer', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('claim_certificates_pk', ['tenant_id', 'certificate_id'])
        .execute();
      await db.schema
        .createTable('ownership_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('certificate_id', 'text', (c) => c.notNull())
        .addColumn('claim_certificate_id', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('ownership_tokens_expiry').on('ownership_tokens').columns(['used_at', 'expires_at']).execute();
    },
  },
  '0006_webhooks': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('webhooks')
        .addColumn('webhook_id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('events', 'text', (c) => c.notNull())
        .addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('webhook_dead_letters')
        .addColumn('delivery_id', 'text', (c) => c.primaryKey())
        .addColumn('webhook_id', 'text', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('last_error', 'text', (c) => c.notNull())
        .addColumn('failed_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('webhook_dead_letters_hook').on('webhook_dead_letters').columns(['webhook_id', 'failed_at']).execute();
    },
  },
  '0007_registration_hooks': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('allow_list_entries')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('allow_list_entries_pk', ['tenant_id', 'value'])
        .execute();
      await db.schema
        .createTable('ca_registration_hooks')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('ca_certificate_id', 'text', (c) => c.notNull())
        .addColumn('allow_list', 'text')
        .addColumn('crl_pem', 'text')
        .addColumn('crl_url', 'text')
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('ca_registration_hooks_pk', ['tenant_id', 'ca_certificate_id'])
        .execute();
    },
  },
  '0008_claim_rate_limit': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('claim_certificates').addColumn('rate_per_minute', 'integer').execute();
    },
  },
  '0009_certificate_partial_indexes': {
    // Every registered certificate paid one more random-key index insert for `certificates_by_id`, which only the
    // transfer lookups (a handful of PENDING_TRANSFER rows) needed; CRL generation scanned the whole table for the
    // REVOKED rows of a CA. Partial indexes cover exactly those rows, so a bulk or JITP registration no longer
    // touches them (same syntax on SQLite and PostgreSQL).
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropIndex('certificates_by_id').execute();
      await sql`create index certificates_pending_transfer on certificates (certificate_id) where status = 'PENDING_TRANSFER'`.execute(db);
      await sql`create index certificates_transfers_in on certificates (transfer_to_tenant_id) where status = 'PENDING_TRANSFER'`.execute(db);
      await sql`create index certificates_revoked_by_ca on certificates (ca_certificate_id) where status = 'REVOKED'`.execute(db);
    },
  },
  '0010_policy_attachments_by_target': {
    // Certificates get their policy attached one by one (JITP, RegisterThing, bulk), and the key (tenant, policy,
    // type, target) plus the index (tenant, type, target) put each new row at a random place in two B-trees (the
    // target is a certificate id: a hash), each dirtying a page that the commit writes to the WAL. Keyed by target
    // first, the key also serves every lookup by target, and the lookups by policy get an index that grows at its end
    // (rowid order). Bulk registration of 100,000 devices spent 1.1 s inserting attachments and 2.6 s committing.
    async up(db: Kysely<unknown>): Promise<void> {
      if (db.getExecutor().adapter instanceof PostgresAdapter) {
        await sql`alter table policy_attachments drop constraint policy_attachments_pk`.execute(db);
        await sql`alter table policy_attachments add constraint policy_attachments_pk primary key (tenant_id, target_type, target_id, policy_name)`.execute(db);
        await sql`drop index policy_attachments_target`.execute(db);
        await sql`create index policy_attachments_policy on policy_attachments (tenant_id, policy_name)`.execute(db);
        return;
      }
      // SQLite cannot change a primary key: the table is rebuilt, in one transaction (Kysely runs SQLite migrations
      // outside of one, since not all DDL is transactional there; these statements are).
      await db.transaction().execute(async (trx) => {
        await sql`create table policy_attachments_new (tenant_id text not null, policy_name text not null, target_type text not null, target_id text not null, constraint policy_attachments_pk primary key (tenant_id, target_type, target_id, policy_name))`.execute(trx);
        await sql`insert into policy_attachments_new (tenant_id, policy_name, target_type, target_id) select tenant_id, policy_name, target_type, target_id from policy_attachments`.execute(trx);
        await sql`drop table policy_attachments`.execute(trx);
        await sql`alter table policy_attachments_new rename to policy_attachments`.execute(trx);
        await sql`create index policy_attachments_policy on policy_attachments (tenant_id, policy_name)`.execute(trx);
      });
    },
  },
  '0011_lookup_indexes_cover_their_order': {
    // A device's things (`thing_principals` by certificate) and a thing's groups (`thing_group_members` by thing) are
    // read at every first connection and in the effective-policy query, ordered by the other key column. The indexes
    // on (tenant, certificate) and (tenant, thing) did not hold that column, so SQLite's planner, which has no
    // statistics, preferred the primary key: it satisfies the ORDER BY, but only `tenant_id = ?` of the WHERE. Each
    // lookup then read every principal (or group member) of the tenant: 34 µs per JITP device at 5,000 devices, and
    // growing with the fleet. With the order column at the end, one index serves the whole WHERE and the ORDER BY.
    // `ca_certificates` gets an index on the CA id alone: the CA of a certificate is looked up in any tenant (a scan).
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropIndex('thing_principals_cert').execute();
      await db.schema.createIndex('thing_principals_by_certificate').on('thing_principals').columns(['tenant_id', 'certificate_id', 'thing_name']).execute();
      await db.schema.dropIndex('thing_group_members_thing').execute();
      await db.schema.createIndex('thing_group_members_by_thing').on('thing_group_members').columns(['tenant_id', 'thing_name', 'thing_group_name']).execute();
      await db.schema.createIndex('ca_certificates_by_id').on('ca_certificates').columns(['ca_certificate_id']).execute();
    },
  },
  '0012_bulk_task_template_version': {
    // A bulk task is pinned to the template version it started with: a resume after `create-version --set-as-default`
    // applied the new default to the remaining lines, so one task provisioned devices two ways. The version id is
    // kept with a SHA-256 of its body, which tells a version deleted and its id reused (or the template deleted and
    // created again) from the version itself. Tasks created before this migration have neither (pinned at their next run).
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('bulk_tasks').addColumn('template_version_id', 'integer').execute();
      await db.schema.alterTable('bulk_tasks').addColumn('template_body_sha256', 'text').execute();
    },
  },
};

/** Supplies the built-in migrations to Kysely's Migrator. */
export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(MIGRATIONS),
};

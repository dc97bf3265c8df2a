/**
 * The SQL schema as Kysely types. Every business row carries `tenant_id`. Timestamps are ISO-8601 UTC text and
 * booleans are 0/1 integers in both dialects, so queries and results are identical on SQLite and PostgreSQL.
 */

export interface TenantsTable {
  tenant_id: string;
  name: string;
  endpoint: string;
  created_at: string;
}

export interface ApiTokensTable {
  token_id: string;
  tenant_id: string;
  name: string;
  role: string;
  /** SHA-256 (hex) of the token; the token itself is never stored. */
  token_hash: string;
  created_at: string;
  revoked_at: string | null;
}

export interface ThingsTable {
  tenant_id: string;
  thing_name: string;
  thing_id: string;
  thing_type_name: string | null;
  attributes: string;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface ThingTypesTable {
  tenant_id: string;
  thing_type_name: string;
  description: string | null;
  searchable_attributes: string;
  deprecated: number;
  created_at: string;
}

export interface ThingGroupsTable {
  tenant_id: string;
  thing_group_name: string;
  description: string | null;
  attributes: string;
  created_at: string;
}

export interface ThingGroupMembersTable {
  tenant_id: string;
  thing_group_name: string;
  thing_name: string;
}

export interface PoliciesTable {
  tenant_id: string;
  policy_name: string;
  default_version_id: number;
  created_at: string;
  updated_at: string;
}

export interface PolicyVersionsTable {
  tenant_id: string;
  policy_name: string;
  version_id: number;
  document: string;
  created_at: string;
}

export interface PolicyAttachmentsTable {
  tenant_id: string;
  policy_name: string;
  /** `certificate` or `thinggroup`. */
  target_type: string;
  target_id: string;
}

export interface ThingPrincipalsTable {
  tenant_id: string;
  thing_name: string;
  certificate_id: string;
}

export interface CertificatesTable {
  tenant_id: string;
  certificate_id: string;
  certificate_pem: string;
  ca_certificate_id: string | null;
  status: string;
  serial_number: string;
  subject_cn: string | null;
  not_before: string;
  not_after: string;
  /** Which flow created the record (api, csr, keys, register, jitp, jitr, fleet, bulk, …). */
  created_by: string;
  /** Claim certificates and transient provisioning claims are not listed among certificates. */
  hidden: number;
  transfer_to_tenant_id: string | null;
  previous_status: string | null;
  revocation_reason: string | null;
  revoked_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface CaCertificatesTable {
  tenant_id: string;
  ca_certificate_id: string;
  certificate_pem: string;
  subject_cn: string | null;
  serial_number: string;
  status: string;
  /** DEFAULT or SNI_ONLY. */
  certificate_mode: string;
  /** 1 when Gatehouse holds the key (owned CA), 0 for a registered (BYO) CA. */
  owned: number;
  key_ref: string | null;
  key_store: string | null;
  parent_ca_certificate_id: string | null;
  auto_registration: number;
  registration_template: string | null;
  first_connect: string;
  crl_number: number;
  not_before: string;
  not_after: string;
  revocation_reason: string | null;
  revoked_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface KeyBlobsTable {
  key_ref: string;
  /** AES-256-GCM ciphertext (base64) of the PKCS#8 key; never clear text. */
  blob: string;
  created_at: string;
}

export interface RegistrationCodesTable {
  tenant_id: string;
  registration_code: string;
  created_at: string;
}

export interface AuditLogTable {
  seq: number;
  tenant_id: string;
  at: string;
  actor: string;
  action: string;
  target: string;
  details: string;
  prev_hash: string;
  hash: string;
}

export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
}

export interface SystemSettingsTable {
  key: string;
  value: string;
}

export interface ProvisioningTemplatesTable {
  tenant_id: string;
  template_name: string;
  /** FLEET_PROVISIONING or JITP. */
  template_type: string;
  description: string | null;
  enabled: number;
  default_version_id: number;
  /** JSON `{ type: 'webhook', url, secret?, timeoutMs? } | { type: 'allow-list', parameter }` or null. */
  pre_provisioning_hook: string | null;
  created_at: string;
  updated_at: string;
}

export interface ProvisioningTemplateVersionsTable {
  tenant_id: string;
  template_name: string;
  version_id: number;
  body: string;
  created_at: string;
}

export interface BulkTasksTable {
  tenant_id: string;
  task_id: string;
  template_name: string;
  /** jsonl | csv | microchip | espressif | pem-dir */
  input_format: string;
  /** Where the uploaded/streamed input is kept for resume (under the data directory). */
  input_path: string;
  /** RUNNING | STOPPING | STOPPED | COMPLETED | FAILED */
  status: string;
  total_lines: number | null;
  /** Checkpoint: every line up to here has a result row. */
  processed_lines: number;
  succeeded: number;
  already_present: number;
  failed: number;
  options: string;
  error: string | null;
  created_at: string;
  updated_at: string;
  /** The template version the task applies to every line, on every run (migration 0012); null for an older task until its next run. */
  template_version_id: number | null;
  /** SHA-256 (hex) of that version's body: a version deleted and its id reused is not taken for it. */
  template_body_sha256: string | null;
}

export interface BulkTaskResultsTable {
  task_id: string;
  line_no: number;
  /** created | present | failed */
  outcome: string;
  thing_name: string | null;
  certificate_id: string | null;
  certificate_pem: string | null;
  error_code: string | null;
  error_message: string | null;
  /**
   * Development only: the private key Gatehouse generated for a line that brought no CSR or certificate, sealed under
   * the KEK (`gh-sealed-v1:…`, bound to the task and line); rows of versions before sealing hold it in clear until the
   * next start seals them.
   */
  private_key_pem: string | null;
}

export interface ClaimCertificatesTable {
  tenant_id: string;
  certificate_id: string;
  template_name: string;
  /** batch (long-lived manufacturing claim) | trusted-user (5-minute claim) */
  kind: string;
  batch: string | null;
  max_devices: number | null;
  /** Optional limit: devices per minute (each of certificate creation and RegisterThing), null for none. */
  rate_per_minute: number | null;
  devices_provisioned: number;
  expires_at: string;
  revoked_at: string | null;
  created_at: string;
}

export interface OwnershipTokensTable {
  /** SHA-256 of the opaque token handed to the device. */
  token_hash: string;
  tenant_id: string;
  certificate_id: string;
  claim_certificate_id: string;
  expires_at: string;
  used_at: string | null;
  created_at: string;
}

export interface WebhooksTable {
  webhook_id: string;
  tenant_id: string;
  url: string;
  /** JSON array of event types; empty = all. */
  events: string;
  /** HMAC key of the signatures (needed in clear to sign; never returned after creation). */
  secret: string;
  created_at: string;
}

export interface WebhookDeadLettersTable {
  delivery_id: string;
  webhook_id: string;
  url: string;
  body: string;
  attempts: number;
  last_error: string;
  failed_at: string;
}

export interface AllowListEntriesTable {
  tenant_id: string;
  /** A certificate subject CN or serial number allowed by the JITR allow-list hook. */
  value: string;
  created_at: string;
}

export interface CaRegistrationHooksTable {
  tenant_id: string;
  ca_certificate_id: string;
  /** JSON `{ policyName?: string }` when the allow-list hook is on, else null. */
  allow_list: string | null;
  /** A CRL (PEM) uploaded for the CA, checked at JITR. */
  crl_pem: string | null;
  /** A URL the CRL is fetched from (cached), checked at JITR. */
  crl_url: string | null;
  updated_at: string;
}

/** The whole database as Kysely sees it. */
export interface Database {
  tenants: TenantsTable;
  api_tokens: ApiTokensTable;
  things: ThingsTable;
  thing_types: ThingTypesTable;
  thing_groups: ThingGroupsTable;
  thing_group_members: ThingGroupMembersTable;
  policies: PoliciesTable;
  policy_versions: PolicyVersionsTable;
  policy_attachments: PolicyAttachmentsTable;
  thing_principals: ThingPrincipalsTable;
  certificates: CertificatesTable;
  ca_certificates: CaCertificatesTable;
  key_blobs: KeyBlobsTable;
  registration_codes: RegistrationCodesTable;
  audit_log: AuditLogTable;
  audit_head: AuditHeadTable;
  system_settings: SystemSettingsTable;
  provisioning_templates: ProvisioningTemplatesTable;
  provisioning_template_versions: ProvisioningTemplateVersionsTable;
  bulk_tasks: BulkTasksTable;
  bulk_task_results: BulkTaskResultsTable;
  claim_certificates: ClaimCertificatesTable;
  ownership_tokens: OwnershipTokensTable;
  webhooks: WebhooksTable;
  webhook_dead_letters: WebhookDeadLettersTable;
  allow_list_entries: AllowListEntriesTable;
  ca_registration_hooks: CaRegistrationHooksTable;
}

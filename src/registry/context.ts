/** Who acts, in which tenant: every registry change is scoped by the tenant and audited with the actor. */
export interface RegistryContext {
  readonly tenantId: string;
  /** e.g. `token:<id>`, `device:<certificateId>`, `system`. */
  readonly actor: string;
  /** Set by `withAuditBatch`: the audit entries of this context are held and written once, at the end of the batch. */
  readonly auditBatch?: AuditBatch | undefined;
}

/** Audit entries appended inside `withAuditBatch`, waiting for their single write (see audit-log.ts). */
export interface AuditBatch {
  readonly entries: PendingAuditEntry[];
  /** Lock the chain head (PostgreSQL) when the batch is written. */
  rowLocks: boolean;
}

/** One audit entry before it gets its place in the hash chain. */
export interface PendingAuditEntry {
  readonly tenantId: string;
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  /** JSON text. */
  readonly details: string;
}

/** The current time as ISO-8601 UTC text (the store's timestamp format). */
export function nowIso(): string {
  return new Date().toISOString();
}

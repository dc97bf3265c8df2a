/** Who acts, in which tenant: every registry change is scoped by the tenant and audited with the actor. */
export interface RegistryContext {
  readonly tenantId: string;
  /** e.g. `token:<id>`, `device:<certificateId>`, `system`. */
  readonly actor: string;
}

/** The current time as ISO-8601 UTC text (the store's timestamp format). */
export function nowIso(): string {
  return new Date().toISOString();
}

import * as registry from '../registry/index.ts';
import type { CertificateRecord, PreProvisioningHook, RegistryContext } from '../registry/index.ts';
import type { ResourcePlan } from '../templates/index.ts';
import type { Executor, Store } from '../store/index.ts';
import { isGatehouseError } from '../errors/index.ts';
import { ProvisioningErrors } from './errors.ts';
import { allowListRefusal, hookDenied } from './pre-provisioning-hook.ts';

/** What applying a plan did. */
export interface AppliedPlan {
  readonly thingName: string | undefined;
  readonly certificateId: string | undefined;
  /** The certificate's record after the plan (its status as the plan left it). */
  readonly certificate: CertificateRecord | undefined;
  readonly policyNames: string[];
  /** True when the thing already existed. */
  readonly thingExisted: boolean;
}

/** Options of applyPlan. */
export interface ApplyPlanOptions {
  /** The certificate the plan's certificate resource designates, already registered in the tenant by the caller. */
  readonly certificateId?: string | undefined;
  /** That certificate's record as the caller wrote or read it in this transaction: saves reading it again. */
  readonly certificate?: CertificateRecord | undefined;
  /**
   * The certificate this provisioning is for (fleet RegisterThing): a plan without a certificate resource still
   * attaches its thing and policies to it, rather than leave them and an ACTIVE certificate unconnected.
   */
  readonly boundCertificateId?: string | undefined;
  readonly rowLocks?: boolean | undefined;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join('\u0000') === [...b].sort().join('\u0000');
}

/**
 * Applies a template's resource plan inside the caller's transaction, in the AWS order: certificate, thing,
 * policies, policy attachments, thing principal, certificate status. `OverrideSettings` decide what happens
 * to an existing thing: DO_NOTHING keeps it, REPLACE overwrites, MERGE adds (groups, attributes), FAIL refuses.
 */
export async function applyPlan(db: Executor, ctx: RegistryContext, plan: ResourcePlan, options: ApplyPlanOptions = {}): Promise<AppliedPlan> {
  const w = { rowLocks: options.rowLocks === true };
  const certificateId = plan.certificate === undefined ? options.boundCertificateId : plan.certificate.source.kind === 'id' ? plan.certificate.source.certificateId : options.certificateId;
  if (plan.certificate !== undefined && certificateId === undefined) {
    throw ProvisioningErrors.error('PROVISIONING_PLAN_INVALID', 'the plan names a certificate to register or issue, but none was supplied');
  }
  let cert: CertificateRecord | undefined;
  if (certificateId !== undefined) cert = options.certificate?.certificateId === certificateId ? options.certificate : await registry.getCertificate(db, ctx.tenantId, certificateId);

  let thingExisted = false;
  const t = plan.thing;
  if (t?.billingGroup !== undefined) {
    // AWS fails provisioning when the billing group does not exist; in Gatehouse none does (dropping it silently
    // provisioned the device as if the template had not asked)
    throw ProvisioningErrors.error('PROVISIONING_BILLING_GROUP_NOT_FOUND', `billing group "${t.billingGroup}" does not exist: Gatehouse has no billing groups; remove BillingGroup from the template`, { details: { billingGroup: t.billingGroup } });
  }
  if (t !== undefined) {
    const existing = await registry.findThing(db, ctx.tenantId, t.thingName);
    thingExisted = existing !== undefined;
    if (existing === undefined) {
      await registry.createThing(db, ctx, { thingName: t.thingName, attributes: { ...t.attributes }, thingTypeName: t.thingTypeName, thingGroups: t.thingGroups }, w);
    } else {
      const o = t.override;
      const attrsDiffer = JSON.stringify(Object.entries(existing.attributes).sort()) !== JSON.stringify(Object.entries(t.attributes).sort());
      const typeDiffers = (t.thingTypeName ?? null) !== existing.thingTypeName;
      const groupsDiffer = !sameSet(existing.thingGroups, t.thingGroups);
      const conflicts = [
        o.attributes === 'FAIL' && attrsDiffer ? 'attributes' : undefined,
        o.thingTypeName === 'FAIL' && typeDiffers ? 'thingTypeName' : undefined,
        o.thingGroups === 'FAIL' && groupsDiffer ? 'thingGroups' : undefined,
      ].filter((x): x is string => x !== undefined);
      if (conflicts.length > 0) {
        throw ProvisioningErrors.error('PROVISIONING_OVERRIDE_CONFLICT', `thing "${t.thingName}" exists with different ${conflicts.join(', ')} and the template says FAIL`, { details: { thingName: t.thingName, fields: conflicts } });
      }
      if ((o.attributes === 'REPLACE' && attrsDiffer) || (o.attributes === 'MERGE' && Object.entries(t.attributes).some(([k, v]) => existing.attributes[k] !== v)) || (o.thingTypeName === 'REPLACE' && typeDiffers)) {
        await registry.updateThing(db, ctx, t.thingName, {
          ...(o.attributes === 'REPLACE' ? { attributes: { ...t.attributes }, replaceAttributes: true } : o.attributes === 'MERGE' ? { attributes: { ...t.attributes } } : {}),
          ...(o.thingTypeName === 'REPLACE' ? { thingTypeName: t.thingTypeName ?? null } : {}),
        }, w);
      }
      if (o.thingGroups === 'REPLACE' || o.thingGroups === 'MERGE') {
        for (const g of t.thingGroups) if (!existing.thingGroups.includes(g)) await registry.addThingToGroup(db, ctx, g, t.thingName, w);
        if (o.thingGroups === 'REPLACE') for (const g of existing.thingGroups) if (!t.thingGroups.includes(g)) await registry.removeThingFromGroup(db, ctx, g, t.thingName, w);
      }
    }
  }

  const policyNames: string[] = [];
  for (const p of plan.policies) {
    if (p.policy.kind === 'name') {
      await registry.getPolicy(db, ctx.tenantId, p.policy.policyName);
      policyNames.push(p.policy.policyName);
    } else {
      const existing = await registry.findPolicy(db, ctx.tenantId, p.policy.suggestedName);
      if (existing === undefined) await registry.createPolicy(db, ctx, { policyName: p.policy.suggestedName, policyDocument: p.policy.document }, w);
      policyNames.push(p.policy.suggestedName);
    }
  }
  if (certificateId !== undefined && cert !== undefined) {
    // Every end was read or written above, in this transaction.
    const attach = { ...w, endsVerified: true };
    for (const name of policyNames) await registry.attachPolicy(db, ctx, name, { kind: 'certificate', certificateId }, attach);
    if (t !== undefined) await registry.attachThingPrincipal(db, ctx, t.thingName, certificateId, attach);
    if (plan.certificate !== undefined && cert.status !== plan.certificate.status) {
      cert = await registry.updateCertificateStatus(db, ctx, certificateId, plan.certificate.status, { ...w, current: cert });
    }
  }
  return { thingName: t?.thingName, certificateId, certificate: cert, policyNames, thingExisted };
}

/** What {@link checkPlan} found: whether the plan would apply now, and if not the error RegisterThing would answer. */
export type PlanCheck =
  | { readonly ok: true; readonly thingExists: boolean }
  | { readonly ok: false; readonly code: string; readonly message: string; readonly details?: Readonly<Record<string, unknown>> };

/** Thrown inside {@link checkPlan}'s transaction so that it rolls back: it carries the outcome out. */
class RolledBack extends Error {
  constructor(readonly applied: AppliedPlan) {
    super('dry run: rolled back');
  }
}

/**
 * Applies `plan` in a transaction that is always rolled back, to tell whether it would apply now (`template dry-run`):
 * a policy named by the template that does not exist, a thing group or type that does not exist, a thing whose
 * `OverrideSettings` say FAIL, a policy document that is not valid; and the template's built-in allow list (`hook`),
 * which needs no outside service. Without `certificateId` (no certificate given to the dry run) the plan's certificate
 * part is left out. Nothing is written, not even audit entries; a webhook hook is not called. Errors without a stable
 * code (the store failing) are thrown.
 */
export async function checkPlan(store: Store, ctx: RegistryContext, plan: ResourcePlan, certificateId: string | undefined, hook: PreProvisioningHook | null = null): Promise<PlanCheck> {
  if (hook?.type === 'allow-list') {
    const refusal = allowListRefusal(hook, plan.parameters);
    if (refusal !== undefined) {
      const denied = hookDenied(refusal);
      return { ok: false, code: denied.code, message: denied.message };
    }
  }
  const { certificate: _certificate, ...withoutCertificate } = plan;
  const checked: ResourcePlan = certificateId === undefined ? withoutCertificate : plan;
  try {
    await store.transaction(async (trx) => {
      throw new RolledBack(await applyPlan(trx, ctx, checked, { certificateId, rowLocks: store.supportsRowLocks }));
    });
  } catch (error) {
    if (error instanceof RolledBack) return { ok: true, thingExists: error.applied.thingExisted };
    if (isGatehouseError(error)) return { ok: false, code: error.code, message: error.message, ...(error.details === undefined ? {} : { details: error.details }) };
    throw error;
  }
  throw new Error('unreachable: the dry-run transaction always rolls back');
}

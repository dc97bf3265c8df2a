import { createHash, randomBytes } from 'node:crypto';
import { leastPrivilegeClaimPolicy } from '../policy/index.ts';
import * as registry from '../registry/index.ts';
import type { RegistryContext } from '../registry/index.ts';
import { prepare } from '../store/index.ts';
import type { ClaimCertificatesTable, Executor, OwnershipTokensTable, Store } from '../store/index.ts';
import { STORED_TEMPLATE_MAX_LENGTH, TemplateCache, evaluateTemplate } from '../templates/index.ts';
import { applyPlan } from './apply-plan.ts';
import type { AppliedPlan } from './apply-plan.ts';
import type { CertificateAuthorityService } from './certificate-authority-service.ts';
import { ClaimRateLimiter } from './claim-rate-limiter.ts';
import type { ClaimOperation, ClaimRateLimit } from './claim-rate-limiter.ts';
import { ProvisioningErrors } from './errors.ts';
import { createKeysAndCertificate, issueFromCsr } from './manual.ts';
import { allowListRefusal, hookDenied, runPreProvisioningHook } from './pre-provisioning-hook.ts';

/** Life of a certificate ownership token (protocols.md: one hour). */
export const OWNERSHIP_TOKEN_TTL_MS = 3600_000;
/** Life of a trusted-user provisioning claim (five minutes). */
export const TRUSTED_USER_CLAIM_TTL_MS = 5 * 60_000;

/** The identity of the connection calling the fleet-provisioning API. */
export interface CallerIdentity {
  readonly tenantId: string;
  /** The client certificate of the connection (a claim certificate, or a device's own). */
  readonly certificateId: string;
  readonly clientId: string;
}

/** RegisterThing request (protocols.md). */
export interface RegisterThingRequest {
  readonly certificateOwnershipToken: string;
  readonly parameters?: Readonly<Record<string, string>> | undefined;
}

/** Input of createClaimCertificate (POST /v1/provisioning-templates/{name}/claim-certificates). */
export interface CreateClaimInput {
  readonly batch: string;
  /** Devices this claim may provision in all (issue 5 §3, optional). */
  readonly maxDevices?: number | undefined;
  /** Devices this claim may provision per minute (issue 5 §3, optional; see ClaimRateLimiter). */
  readonly ratePerMinute?: number | undefined;
  readonly validityDays?: number | undefined;
}

/** New limits of a batch claim (PATCH /v1/claim-certificates/{id}): a number sets a limit, null removes it, absent keeps it. */
export interface ClaimLimitsUpdate {
  readonly maxDevices?: number | null | undefined;
  readonly ratePerMinute?: number | null | undefined;
}

/** A claim as listed. */
export interface ClaimView {
  readonly certificateId: string;
  readonly templateName: string;
  readonly kind: string;
  readonly batch: string | null;
  readonly devicesProvisioned: number;
  readonly maxDevices: number | null;
  readonly ratePerMinute: number | null;
  readonly expiresAt: string;
  readonly revokedAt: string | null;
}

type ClaimRow = Readonly<ClaimCertificatesTable>;

function claimView(r: ClaimRow): ClaimView {
  return {
    certificateId: r.certificate_id, templateName: r.template_name, kind: r.kind, batch: r.batch, devicesProvisioned: r.devices_provisioned,
    maxDevices: r.max_devices, ratePerMinute: r.rate_per_minute, expiresAt: r.expires_at, revokedAt: r.revoked_at,
  };
}

/** The claim a fleet-provisioning call was admitted under, and how to give back its rate-limit token if the call fails. */
interface ClaimAdmission {
  /** Undefined for a device's own certificate (no claim). */
  readonly claim: ClaimRow | undefined;
  readonly release: () => void;
}

const NOTHING_TO_RELEASE = (): void => undefined;

/** Name of the generated least-privilege policy of a template's claims. */
export function claimPolicyName(templateName: string): string {
  return `GatehouseClaim-${templateName}`;
}

const hashToken = (t: string): string => createHash('sha256').update(t).digest('hex');

// The statements of every CreateCertificateFromCsr / RegisterThing, prepared once per dialect (src/store/prepared.ts).
type ClaimKey = { tenantId: string; certificateId: string };
const claimById = prepare('claim by certificate', (db, p: ClaimKey) => db.selectFrom('claim_certificates').selectAll().where('tenant_id', '=', p.tenantId).where('certificate_id', '=', p.certificateId));
const insertToken = prepare('insert ownership token', (db, p: OwnershipTokensTable) => db.insertInto('ownership_tokens').values({
  token_hash: p.token_hash, tenant_id: p.tenant_id, certificate_id: p.certificate_id, claim_certificate_id: p.claim_certificate_id, expires_at: p.expires_at, used_at: p.used_at, created_at: p.created_at,
}));
const tokenByHash = prepare('ownership token by hash', (db, p: { tokenHash: string }) => db.selectFrom('ownership_tokens').selectAll().where('token_hash', '=', p.tokenHash));
const useToken = prepare('use ownership token', (db, p: { tokenHash: string; now: string }) => db.updateTable('ownership_tokens').set({ used_at: p.now }).where('token_hash', '=', p.tokenHash).where('used_at', 'is', null));
/** Counts a device against the claim's limit as it is at that moment: concurrent calls never exceed maxDevices. */
const countDevice = prepare('count a device against its claim', (db, p: ClaimKey) =>
  db.updateTable('claim_certificates')
    .set((eb) => ({ devices_provisioned: eb('devices_provisioned', '+', 1) }))
    .where('tenant_id', '=', p.tenantId)
    .where('certificate_id', '=', p.certificateId)
    .where((eb) => eb.or([eb('max_devices', 'is', null), eb('devices_provisioned', '<', eb.ref('max_devices'))])));

/** The refusal of a claim that provisioned its `maxDevices` (the same words at admission and in the transaction). */
function claimExhausted(maxDevices: number | null): Error {
  const limit = maxDevices === null ? 'its maximum number of devices' : `its limit of ${maxDevices} ${maxDevices === 1 ? 'device' : 'devices'} (maxDevices)`;
  return ProvisioningErrors.error('PROVISIONING_CLAIM_EXHAUSTED', `this claim reached ${limit}`);
}

/**
 * Fleet provisioning by claim and by trusted user (source documents: "Fleet provisioning by claim", "by trusted
 * user"): claim certificates with a generated least-privilege policy, the CreateKeysAndCertificate /
 * CreateCertificateFromCsr / RegisterThing operations behind the MQTT API, ownership tokens, the
 * pre-provisioning hook and the sweeper of never-registered certificates.
 */
export class FleetProvisioning {
  private readonly store: Store;
  private readonly cas: CertificateAuthorityService;
  private limiter: ClaimRateLimit;
  /** The fleet templates, parsed once per version rather than once per RegisterThing. */
  private readonly templates = new TemplateCache();

  constructor(store: Store, cas: CertificateAuthorityService, limiter: ClaimRateLimit = new ClaimRateLimiter()) {
    this.store = store;
    this.cas = cas;
    this.limiter = limiter;
  }

  /** Replaces the per-claim rate limit (the composition root passes a shared one when processes share a bus). */
  useRateLimit(limit: ClaimRateLimit): void {
    this.limiter = limit;
  }

  private get w(): registry.WriteOptions {
    return { rowLocks: this.store.supportsRowLocks };
  }

  private async fleetTemplate(tenantId: string, templateName: string): Promise<registry.ProvisioningTemplateRecord> {
    const t = await registry.getProvisioningTemplate(this.store.db, tenantId, templateName);
    if (t.type !== 'FLEET_PROVISIONING') throw ProvisioningErrors.error('PROVISIONING_TEMPLATE_TYPE_MISMATCH', `template "${templateName}" is a ${t.type} template`);
    return t;
  }

  private async ensureClaimPolicy(ctx: RegistryContext, templateName: string): Promise<string> {
    const name = claimPolicyName(templateName);
    await this.store.transaction(async (trx) => {
      if ((await registry.findPolicy(trx, ctx.tenantId, name)) === undefined) {
        await registry.createPolicy(trx, ctx, { policyName: name, policyDocument: leastPrivilegeClaimPolicy(templateName) }, this.w);
      }
    });
    return name;
  }

  /**
   * Issues the long-lived claim certificate of a manufacturing batch, with the template's least-privilege policy
   * (only the provisioning topics of that template). The key is returned once and never stored.
   */
  async createClaimCertificate(ctx: RegistryContext, templateName: string, input: CreateClaimInput): Promise<{ certificateId: string; certificatePem: string; certificateChainPem: string; keyPair: { PrivateKey: string; PublicKey: string }; policyName: string }> {
    await this.fleetTemplate(ctx.tenantId, templateName);
    const policyName = await this.ensureClaimPolicy(ctx, templateName);
    // issued INACTIVE, made ACTIVE with its policy and claim row in one transaction (removed again if that fails): no
    // ACTIVE certificate without its claim row and limits is ever left behind
    const issued = await createKeysAndCertificate(this.store, this.cas, ctx, { status: 'INACTIVE', subjectCommonName: `claim:${templateName}:${input.batch}`, createdBy: 'claim', ...(input.validityDays === undefined ? {} : { validityMinutes: input.validityDays * 1440 }) });
    await this.completeClaim(ctx, issued.certificateId, async (trx) => {
      await registry.attachPolicy(trx, ctx, policyName, { kind: 'certificate', certificateId: issued.certificateId }, this.w);
      await trx.insertInto('claim_certificates').values({
        tenant_id: ctx.tenantId, certificate_id: issued.certificateId, template_name: templateName, kind: 'batch', batch: input.batch, max_devices: input.maxDevices ?? null,
        rate_per_minute: input.ratePerMinute ?? null, devices_provisioned: 0, expires_at: issued.record.notAfter, revoked_at: null, created_at: registry.nowIso(),
      }).execute();
      await registry.appendAudit(trx, ctx, 'claim.create', `cert/${issued.certificateId}`, { templateName, batch: input.batch, maxDevices: input.maxDevices ?? null, ratePerMinute: input.ratePerMinute ?? null }, this.store.supportsRowLocks);
    });
    return { certificateId: issued.certificateId, certificatePem: issued.certificatePem, certificateChainPem: issued.certificateChainPem, keyPair: issued.keyPair, policyName };
  }

  /** Trusted user (AWS CreateProvisioningClaim): a claim valid five minutes, not listed among certificates. */
  async createProvisioningClaim(ctx: RegistryContext, templateName: string): Promise<{ certificateId: string; certificatePem: string; keyPair: { PrivateKey: string; PublicKey: string }; expiration: string }> {
    const t = await this.fleetTemplate(ctx.tenantId, templateName);
    if (!t.enabled) throw ProvisioningErrors.error('PROVISIONING_TEMPLATE_DISABLED', `template "${templateName}" is disabled`);
    const policyName = await this.ensureClaimPolicy(ctx, templateName);
    const issued = await createKeysAndCertificate(this.store, this.cas, ctx, { status: 'INACTIVE', subjectCommonName: `trusted-user-claim:${templateName}`, createdBy: 'trusted-user', hidden: true, validityMinutes: TRUSTED_USER_CLAIM_TTL_MS / 60_000 });
    await this.completeClaim(ctx, issued.certificateId, async (trx) => {
      await registry.attachPolicy(trx, ctx, policyName, { kind: 'certificate', certificateId: issued.certificateId }, this.w);
      await trx.insertInto('claim_certificates').values({
        tenant_id: ctx.tenantId, certificate_id: issued.certificateId, template_name: templateName, kind: 'trusted-user', batch: null, max_devices: 1,
        rate_per_minute: null, devices_provisioned: 0, expires_at: issued.record.notAfter, revoked_at: null, created_at: registry.nowIso(),
      }).execute();
      await registry.appendAudit(trx, ctx, 'claim.trusted-user.create', `provisioningtemplate/${templateName}`, { certificateId: issued.certificateId }, this.store.supportsRowLocks);
    });
    return { certificateId: issued.certificateId, certificatePem: issued.certificatePem, keyPair: issued.keyPair, expiration: issued.record.notAfter };
  }

  /**
   * Activates a claim certificate issued INACTIVE together with `rest` (its policy, claim row and audit entry), in one
   * transaction; when that fails the certificate is deleted again (it was never usable) and the error is rethrown.
   */
  private async completeClaim(ctx: RegistryContext, certificateId: string, rest: (trx: Executor) => Promise<void>): Promise<void> {
    try {
      await this.store.transaction(async (trx) => {
        await rest(trx);
        await registry.updateCertificateStatus(trx, ctx, certificateId, 'ACTIVE', this.w);
      });
    } catch (error) {
      await this.store.transaction((trx) => registry.deleteCertificate(trx, ctx, certificateId, { ...this.w, force: true })).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Revokes a claim certificate: it can no longer connect nor provision. Returns the certificate; the caller closes
   * its connections and marks its CA's CRL stale (`ControlPlane.revokeClaim`).
   */
  async revokeClaim(ctx: RegistryContext, certificateId: string): Promise<registry.CertificateRecord> {
    return this.store.transaction(async (trx) => {
      const res = await trx.updateTable('claim_certificates').set({ revoked_at: registry.nowIso() }).where('tenant_id', '=', ctx.tenantId).where('certificate_id', '=', certificateId).executeTakeFirst();
      if (res.numUpdatedRows === 0n) throw registry.RegistryErrors.error('REGISTRY_CERTIFICATE_NOT_FOUND', `no claim certificate ${certificateId}`);
      return registry.updateCertificateStatus(trx, ctx, certificateId, 'REVOKED', { ...this.w, reason: 'cessationOfOperation' });
    });
  }

  /** Changes the limits of a batch claim (devices in all, devices per minute); they apply to the next call. */
  async updateClaim(ctx: RegistryContext, certificateId: string, update: ClaimLimitsUpdate): Promise<ClaimView> {
    return this.store.transaction(async (trx) => {
      const row = await trx.selectFrom('claim_certificates').selectAll().where('tenant_id', '=', ctx.tenantId).where('certificate_id', '=', certificateId).executeTakeFirst();
      if (row?.kind !== 'batch') throw registry.RegistryErrors.error('REGISTRY_CERTIFICATE_NOT_FOUND', `no batch claim certificate ${certificateId}`);
      const set = {
        ...(update.maxDevices === undefined ? {} : { max_devices: update.maxDevices }),
        ...(update.ratePerMinute === undefined ? {} : { rate_per_minute: update.ratePerMinute }),
      };
      if (Object.keys(set).length === 0) return claimView(row);
      await trx.updateTable('claim_certificates').set(set).where('tenant_id', '=', ctx.tenantId).where('certificate_id', '=', certificateId).execute();
      const after = { ...row, ...set };
      await registry.appendAudit(trx, ctx, 'claim.update', `cert/${certificateId}`, { maxDevices: after.max_devices, ratePerMinute: after.rate_per_minute }, this.store.supportsRowLocks);
      return claimView(after);
    });
  }

  /**
   * Lists the claims of a template. No claims and no such template is REGISTRY_TEMPLATE_NOT_FOUND (a mistyped name is
   * not "no claims"); the claims of a deleted template are still listed, so that they can be found and revoked.
   */
  async listClaims(tenantId: string, templateName: string): Promise<ClaimView[]> {
    const rows = await this.store.db.selectFrom('claim_certificates').selectAll().where('tenant_id', '=', tenantId).where('template_name', '=', templateName).orderBy('created_at').execute();
    if (rows.length === 0) await registry.getProvisioningTemplate(this.store.db, tenantId, templateName);
    return rows.map(claimView);
  }

  /**
   * Checks the caller's claim and takes one unit of its rate limit for `operation` (a device's own certificate has no
   * claim: its policy alone decides). The admission's `release` gives the unit back when the call then fails.
   */
  private async admitClaim(caller: CallerIdentity, operation: ClaimOperation, templateName?: string): Promise<ClaimAdmission> {
    const claim = await claimById.first(this.store.db, { tenantId: caller.tenantId, certificateId: caller.certificateId });
    if (claim === undefined) return { claim, release: NOTHING_TO_RELEASE };
    if (claim.revoked_at !== null) throw ProvisioningErrors.error('PROVISIONING_CLAIM_REVOKED', 'the claim certificate is revoked');
    if (Date.parse(claim.expires_at) < Date.now()) throw ProvisioningErrors.error('PROVISIONING_CLAIM_REVOKED', 'the claim certificate has expired');
    if (templateName !== undefined && claim.template_name !== templateName) throw ProvisioningErrors.error('PROVISIONING_CLAIM_TEMPLATE_MISMATCH', `this claim is for template "${claim.template_name}"`);
    if (claim.max_devices !== null && claim.devices_provisioned >= claim.max_devices) throw claimExhausted(claim.max_devices);
    const rate = claim.rate_per_minute;
    if (rate === null) return { claim, release: NOTHING_TO_RELEASE };
    const limiter = this.limiter;
    const waitMs = await limiter.take(caller.tenantId, caller.certificateId, operation, rate);
    if (waitMs > 0) {
      const retryAfterSeconds = Math.ceil(waitMs / 1000);
      throw ProvisioningErrors.error('PROVISIONING_RATE_LIMITED', `this claim allows ${rate} devices per minute; retry in ${retryAfterSeconds} s`, { details: { ratePerMinute: rate, retryAfterSeconds } });
    }
    return { claim, release: () => limiter.giveBack(caller.tenantId, caller.certificateId, operation, rate) };
  }

  /**
   * A new ownership token, bound to the caller's claim; `write` stores its hash in the transaction that records the
   * certificate (a fleet certificate never exists without its token, nor a token without its certificate).
   */
  private ownershipToken(caller: CallerIdentity): { token: string; write: (trx: Executor, record: registry.CertificateRecord) => Promise<void> } {
    const token = randomBytes(32).toString('base64url');
    const write = async (trx: Executor, record: registry.CertificateRecord): Promise<void> => {
      const now = Date.now();
      await insertToken.run(trx, {
        token_hash: hashToken(token), tenant_id: caller.tenantId, certificate_id: record.certificateId, claim_certificate_id: caller.certificateId,
        expires_at: new Date(now + OWNERSHIP_TOKEN_TTL_MS).toISOString(), used_at: null, created_at: new Date(now).toISOString(),
      });
    };
    return { token, write };
  }

  /** CreateKeysAndCertificate: a new key pair and certificate (PENDING_ACTIVATION) and its ownership token. */
  async createKeysAndCertificate(caller: CallerIdentity): Promise<{ certificateId: string; certificatePem: string; privateKey: string; certificateOwnershipToken: string }> {
    const admission = await this.admitClaim(caller, 'create-certificate');
    try {
      const ctx = { tenantId: caller.tenantId, actor: `device:${caller.certificateId}` };
      const ownership = this.ownershipToken(caller);
      // the CN of the new certificate: the client id's first 64 characters (ub-common-name), never half a code point
      const r = await createKeysAndCertificate(this.store, this.cas, ctx, { status: 'PENDING_ACTIVATION', subjectCommonName: Array.from(caller.clientId).slice(0, 64).join('') || 'device', createdBy: 'fleet' }, { alsoWrite: ownership.write });
      return { certificateId: r.certificateId, certificatePem: r.certificatePem, privateKey: r.keyPair.PrivateKey, certificateOwnershipToken: ownership.token };
    } catch (error) {
      admission.release();
      throw error;
    }
  }

  /** CreateCertificateFromCsr: the key stays on the device; the certificate is PENDING_ACTIVATION. */
  async createCertificateFromCsr(caller: CallerIdentity, certificateSigningRequest: string): Promise<{ certificateId: string; certificatePem: string; certificateOwnershipToken: string }> {
    const admission = await this.admitClaim(caller, 'create-certificate');
    try {
      const ctx = { tenantId: caller.tenantId, actor: `device:${caller.certificateId}` };
      const ownership = this.ownershipToken(caller);
      const r = await issueFromCsr(this.store, this.cas, ctx, { certificateSigningRequest, status: 'PENDING_ACTIVATION', createdBy: 'fleet' }, { alsoWrite: ownership.write });
      return { certificateId: r.certificateId, certificatePem: r.certificatePem, certificateOwnershipToken: ownership.token };
    } catch (error) {
      admission.release();
      throw error;
    }
  }

  /**
   * RegisterThing: redeems the ownership token (single use, one hour, bound to the certificate, the tenant and the
   * claim that created it), runs the pre-provisioning hook, evaluates the template and applies the plan in one
   * transaction; the certificate leaves PENDING_ACTIVATION as the template says.
   */
  async registerThing(caller: CallerIdentity, templateName: string, request: RegisterThingRequest): Promise<{ thingName: string; deviceConfiguration: Record<string, string | number | boolean>; certificateId: string }> {
    const rec = await this.fleetTemplate(caller.tenantId, templateName);
    if (!rec.enabled) throw ProvisioningErrors.error('PROVISIONING_TEMPLATE_DISABLED', `template "${templateName}" is disabled`);
    const admission = await this.admitClaim(caller, 'register-thing', templateName);
    try {
      return await this.redeemAndApply(caller, rec, admission.claim, request);
    } catch (error) {
      admission.release();
      throw error;
    }
  }

  private async redeemAndApply(caller: CallerIdentity, rec: registry.ProvisioningTemplateRecord, claim: ClaimRow | undefined, request: RegisterThingRequest): Promise<{ thingName: string; deviceConfiguration: Record<string, string | number | boolean>; certificateId: string }> {
    const templateName = rec.templateName;
    const tokenHash = hashToken(request.certificateOwnershipToken);
    const token = await tokenByHash.first(this.store.db, { tokenHash });
    if (token === undefined || token.tenant_id !== caller.tenantId || token.claim_certificate_id !== caller.certificateId) {
      throw ProvisioningErrors.error('PROVISIONING_TOKEN_INVALID', 'the certificate ownership token is not valid for this connection');
    }
    if (token.used_at !== null) throw ProvisioningErrors.error('PROVISIONING_TOKEN_INVALID', 'the certificate ownership token was already used');
    if (Date.parse(token.expires_at) < Date.now()) throw ProvisioningErrors.error('PROVISIONING_TOKEN_EXPIRED', 'the certificate ownership token has expired');
    const certificateId = token.certificate_id;
    let parameters: Record<string, string> = { ...(request.parameters ?? {}) };
    const template = this.templates.parse(rec.templateBody, { type: 'FLEET_PROVISIONING', name: templateName, maxLength: STORED_TEMPLATE_MAX_LENGTH });
    const hook = rec.preProvisioningHook;
    if (hook !== null && hook.type === 'allow-list') {
      // the allow list reads the parameters as the template sees them (Defaults applied), as `template dry-run` does
      const refusal = allowListRefusal(hook, evaluateTemplate(template, { parameters, certificateId }).parameters);
      if (refusal !== undefined) throw hookDenied(refusal);
    } else if (hook !== null) {
      const cert = await registry.getCertificate(this.store.db, caller.tenantId, certificateId);
      const answer = await runPreProvisioningHook(hook, {
        claimCertificateId: caller.certificateId, certificateId: cert.certificateId, certificatePem: cert.certificatePem,
        templateArn: `arn:aws:iot:gatehouse:${caller.tenantId}:provisioningtemplate/${templateName}`, clientId: caller.clientId, parameters,
      });
      if (!answer.allowProvisioning) throw hookDenied(answer.reason);
      parameters = { ...parameters, ...answer.parameterOverrides };
    }
    const plan = evaluateTemplate(template, { parameters, certificateId });
    const w = this.w;
    // Devices registering the same new thing at once: the losers' transactions hit its unique key and roll back (the
    // token unspent); run again, they find the thing and attach to it, as one after the other would.
    const apply = (): Promise<AppliedPlan> => this.store.transaction((trx) =>
      registry.withAuditBatch(trx, { tenantId: caller.tenantId, actor: `device:${caller.certificateId}` }, this.store.supportsRowLocks, async (ctx) => {
        const used = await useToken.run(trx, { tokenHash, now: registry.nowIso() });
        if (used.numAffectedRows === 0n) throw ProvisioningErrors.error('PROVISIONING_TOKEN_INVALID', 'the certificate ownership token was already used');
        // the certificate this token was issued with must still be waiting for it: one an operator deactivated or
        // revoked meanwhile is not activated again by the device
        const current = await registry.getCertificate(trx, caller.tenantId, certificateId);
        if (current.status !== 'PENDING_ACTIVATION') {
          throw ProvisioningErrors.error('PROVISIONING_CERTIFICATE_NOT_PENDING', `certificate ${certificateId} is ${current.status}: it changed after it was created, and RegisterThing does not override that`);
        }
        const result = await applyPlan(trx, ctx, plan, { ...w, certificate: current, boundCertificateId: certificateId });
        if (plan.certificate === undefined) {
          // a template without a certificate resource still activates the certificate it provisions
          await registry.updateCertificateStatus(trx, ctx, certificateId, 'ACTIVE', { ...w, current: result.certificate });
        }
        if (claim !== undefined) {
          const counted = await countDevice.run(trx, { tenantId: caller.tenantId, certificateId: caller.certificateId });
          if (counted.numAffectedRows === 0n) throw claimExhausted(claim.max_devices);
        }
        await registry.appendAudit(trx, ctx, 'fleet.register-thing', `provisioningtemplate/${templateName}`, { thingName: result.thingName ?? null, certificateId }, this.store.supportsRowLocks);
        return result;
      }),
    );
    let applied: AppliedPlan | undefined;
    for (let attempt = 1; applied === undefined; attempt += 1) {
      try {
        applied = await apply();
      } catch (error) {
        if (attempt >= 3 || !this.store.isUniqueViolation(error)) throw error;
      }
    }
    return { thingName: applied.thingName ?? '', deviceConfiguration: { ...plan.deviceConfiguration }, certificateId };
  }

  /** Deletes certificates created through the fleet API whose ownership token expired unused. Returns how many. */
  async sweepUnregistered(now = new Date()): Promise<number> {
    const stale = await this.store.db.selectFrom('ownership_tokens').selectAll().where('used_at', 'is', null).where('expires_at', '<', now.toISOString()).limit(1000).execute();
    let deleted = 0;
    for (const t of stale) {
      await this.store.transaction(async (trx) => {
        const cert = await registry.findCertificate(trx, t.tenant_id, t.certificate_id);
        if (cert?.status === 'PENDING_ACTIVATION') {
          await registry.deleteCertificate(trx, { tenantId: t.tenant_id, actor: 'system:sweeper' }, t.certificate_id, { ...this.w, force: true });
          deleted += 1;
        }
        await trx.deleteFrom('ownership_tokens').where('token_hash', '=', t.token_hash).execute();
      });
    }
    return deleted;
  }
}

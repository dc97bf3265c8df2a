import { randomUUID } from 'node:crypto';
import * as registry from '../../registry/index.ts';
import { anyText, isPostgres } from '../../store/index.ts';
import type { Executor } from '../../store/index.ts';
import type { ResourcePlan, ThingPlan } from '../../templates/index.ts';
import type { CertificateMaterial, LineOutcome, PreparedLine, TaskContext } from './bulk-line.ts';
import { insertRows } from './insert-rows.ts';

/** A line that creates a new thing and registers a new certificate: written with multi-row inserts. */
export interface FastLine {
  readonly lineNo: number;
  readonly plan: ResourcePlan & { readonly thing: ThingPlan };
  readonly cert: CertificateMaterial;
  readonly policyNames: readonly string[];
}

const CHUNK = 500;

function chunks<T>(items: readonly T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function existingThings(trx: Executor, tenantId: string, names: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (const part of chunks([...new Set(names)])) {
    const q = trx.selectFrom('things').select('thing_name').where('tenant_id', '=', tenantId);
    for (const r of await (isPostgres(trx) ? q.where('thing_name', '=', anyText(part)) : q.where('thing_name', 'in', part)).execute()) found.add(r.thing_name);
  }
  return found;
}

/** Statuses of the batch's certificates that the tenant has registered already (one query per 500 lines). */
export async function lookupCertificates(trx: Executor, tc: TaskContext, lines: readonly PreparedLine[]): Promise<ReadonlyMap<string, string>> {
  const ids = [...new Set(lines.flatMap((p) => (p.kind === 'ok' && p.cert !== undefined ? [p.cert.certificateId] : [])))];
  const found = new Map<string, string>();
  for (const part of chunks(ids)) {
    const q = trx.selectFrom('certificates').select(['certificate_id', 'status']).where('tenant_id', '=', tc.ctx.tenantId);
    for (const r of await (isPostgres(trx) ? q.where('certificate_id', '=', anyText(part)) : q.where('certificate_id', 'in', part)).execute()) found.set(r.certificate_id, r.status);
  }
  return found;
}

/**
 * Picks the lines of a batch that only create (new thing, new certificate, existing or template-made policies,
 * existing groups and usable thing type): those need no per-line reads and no `OverrideSettings` decision. Every
 * other line goes through `applyPlan`, one by one, in the same transaction. Policies made from a template
 * document are created here once per batch, like `applyPlan` would.
 */
export async function selectFastLines(trx: Executor, tc: TaskContext, lines: readonly PreparedLine[], registered: ReadonlyMap<string, string>, w: registry.WriteOptions): Promise<FastLine[]> {
  const tenantId = tc.ctx.tenantId;
  const candidates = lines.flatMap((p) =>
    p.kind === 'ok' && p.cert !== undefined && !p.cert.reused && p.plan.thing !== undefined && p.plan.certificate !== undefined ? [{ p, thing: p.plan.thing, cert: p.cert }] : [],
  );
  if (candidates.length === 0) return [];
  const certCount = new Map<string, number>();
  for (const c of candidates) certCount.set(c.cert.certificateId, (certCount.get(c.cert.certificateId) ?? 0) + 1);
  const things = await existingThings(trx, tenantId, candidates.map((c) => c.thing.thingName));

  const types = [...new Set(candidates.flatMap((c) => (c.thing.thingTypeName === undefined ? [] : [c.thing.thingTypeName])))];
  const usableTypes = new Set<string>();
  if (types.length > 0) {
    for (const r of await trx.selectFrom('thing_types').select('thing_type_name').where('tenant_id', '=', tenantId).where('deprecated', '=', 0).where('thing_type_name', 'in', types).execute()) usableTypes.add(r.thing_type_name);
  }
  const groups = [...new Set(candidates.flatMap((c) => c.thing.thingGroups))];
  const knownGroups = new Set<string>();
  for (const part of chunks(groups)) {
    for (const r of await trx.selectFrom('thing_groups').select('thing_group_name').where('tenant_id', '=', tenantId).where('thing_group_name', 'in', part).execute()) knownGroups.add(r.thing_group_name);
  }
  // Policies: by name they must exist; from a document they are created once (deterministic name).
  const policyOk = new Map<string, boolean>();
  for (const c of candidates) {
    for (const pol of c.p.plan.policies) {
      const name = pol.policy.kind === 'name' ? pol.policy.policyName : pol.policy.suggestedName;
      if (policyOk.has(name)) continue;
      const found = await registry.findPolicy(trx, tenantId, name);
      if (found !== undefined) policyOk.set(name, true);
      else if (pol.policy.kind === 'document') {
        await registry.createPolicy(trx, tc.ctx, { policyName: name, policyDocument: pol.policy.document }, w);
        policyOk.set(name, true);
      } else policyOk.set(name, false);
    }
  }
  const fast: FastLine[] = [];
  for (const c of candidates) {
    const policyNames = c.p.plan.policies.map((pol) => (pol.policy.kind === 'name' ? pol.policy.policyName : pol.policy.suggestedName));
    const ok =
      certCount.get(c.cert.certificateId) === 1 &&
      !registered.has(c.cert.certificateId) &&
      !things.has(c.thing.thingName) &&
      (c.thing.thingTypeName === undefined || usableTypes.has(c.thing.thingTypeName)) &&
      c.thing.thingGroups.every((g) => knownGroups.has(g)) &&
      policyNames.every((n) => policyOk.get(n) === true);
    if (ok) fast.push({ lineNo: c.p.lineNo, plan: { ...c.p.plan, thing: c.thing }, cert: c.cert, policyNames: [...new Set(policyNames)] });
  }
  return fast;
}

/**
 * Writes the fast lines with multi-row inserts (certificates, things, group members, policy attachments, thing
 * principals) and one audit entry for the batch that names every thing and certificate it registered.
 */
export async function writeFastLines(trx: Executor, tc: TaskContext, fast: readonly FastLine[], w: registry.WriteOptions): Promise<LineOutcome[]> {
  if (fast.length === 0) return [];
  const tenantId = tc.ctx.tenantId;
  const now = registry.nowIso();
  // In certificate id order: consecutive rows of the id-keyed indexes (certificates, attachments, principals) then
  // land on neighbouring B-tree pages instead of all over the index.
  const byId = [...fast].sort((a, b) => (a.cert.certificateId < b.cert.certificateId ? -1 : a.cert.certificateId > b.cert.certificateId ? 1 : 0));
  for (const part of chunks(byId)) {
    await insertRows(trx, tc.inserts, 'certificates', part.map((f) => ({
      tenant_id: tenantId, certificate_id: f.cert.certificateId, certificate_pem: f.cert.pem, ca_certificate_id: f.cert.caCertificateId,
      status: f.plan.certificate?.status ?? 'ACTIVE', serial_number: f.cert.serialNumber, subject_cn: f.cert.subjectCommonName,
      not_before: f.cert.notBefore.toISOString(), not_after: f.cert.notAfter.toISOString(), created_by: f.cert.createdBy, hidden: 0,
      transfer_to_tenant_id: null, previous_status: null, revocation_reason: null, revoked_at: null, created_at: now, updated_at: now,
    })));
    await insertRows(trx, tc.inserts, 'things', part.map((f) => ({
      tenant_id: tenantId, thing_name: f.plan.thing.thingName, thing_id: randomUUID(), thing_type_name: f.plan.thing.thingTypeName ?? null,
      attributes: JSON.stringify(f.plan.thing.attributes), version: 1, created_at: now, updated_at: now,
    })));
    const members = part.flatMap((f) => [...new Set(f.plan.thing.thingGroups)].map((g) => ({ tenant_id: tenantId, thing_group_name: g, thing_name: f.plan.thing.thingName })));
    for (const m of chunks(members)) await insertRows(trx, tc.inserts, 'thing_group_members', m);
    const attachments = part.flatMap((f) => f.policyNames.map((n) => ({ tenant_id: tenantId, policy_name: n, target_type: 'certificate', target_id: f.cert.certificateId })));
    for (const a of chunks(attachments)) await insertRows(trx, tc.inserts, 'policy_attachments', a);
    await insertRows(trx, tc.inserts, 'thing_principals', part.map((f) => ({ tenant_id: tenantId, thing_name: f.plan.thing.thingName, certificate_id: f.cert.certificateId })));
  }
  await registry.appendAudit(trx, tc.ctx, 'bulk.register', `bulk/${tc.taskId}`, {
    lines: fast.map((f) => f.lineNo),
    things: fast.map((f) => f.plan.thing.thingName),
    certificates: fast.map((f) => f.cert.certificateId),
    policies: [...new Set(fast.flatMap((f) => f.policyNames))],
  }, w.rowLocks);
  return fast.map((f) => ({
    lineNo: f.lineNo, outcome: 'created', thingName: f.plan.thing.thingName, certificateId: f.cert.certificateId,
    certificatePem: f.cert.issued ? f.cert.pem : null, privateKeyPem: f.cert.privateKeyPem, code: null, message: null,
  }));
}

function sortedJson(o: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Finds the lines whose devices are already registered exactly as the plan says (a re-run of the same file):
 * certificate with the planned status, thing with the same type, attributes and groups, the certificate attached to
 * that thing and every planned policy attached to the certificate. They are reported `present` without writing,
 * whatever the `OverrideSettings`, since there is nothing to override. Any difference sends the line to `applyPlan`.
 */
export async function selectPresentLines(trx: Executor, tc: TaskContext, lines: readonly PreparedLine[], registered: ReadonlyMap<string, string>): Promise<LineOutcome[]> {
  const tenantId = tc.ctx.tenantId;
  const all = lines.flatMap((p) => (p.kind === 'ok' && p.cert !== undefined && p.plan.thing !== undefined && p.plan.certificate !== undefined ? [{ p, thing: p.plan.thing, cert: p.cert, status: p.plan.certificate.status }] : []));
  // Only lines whose certificate is registered already can be present.
  const certStatus = registered;
  const candidates = all.filter((c) => certStatus.has(c.cert.certificateId));
  if (candidates.length === 0) return [];
  const things = new Map<string, { type: string | null; attributes: string }>();
  const groups = new Map<string, string[]>();
  const principals = new Set<string>();
  const attached = new Set<string>();
  for (const part of chunks(candidates)) {
    const ids = part.map((c) => c.cert.certificateId);
    const names = part.map((c) => c.thing.thingName);
    for (const r of await trx.selectFrom('things').select(['thing_name', 'thing_type_name', 'attributes']).where('tenant_id', '=', tenantId).where('thing_name', 'in', names).execute()) {
      things.set(r.thing_name, { type: r.thing_type_name, attributes: sortedJson(JSON.parse(r.attributes) as Record<string, string>) });
    }
    for (const r of await trx.selectFrom('thing_group_members').select(['thing_name', 'thing_group_name']).where('tenant_id', '=', tenantId).where('thing_name', 'in', names).execute()) {
      groups.set(r.thing_name, [...(groups.get(r.thing_name) ?? []), r.thing_group_name]);
    }
    for (const r of await trx.selectFrom('thing_principals').select(['thing_name', 'certificate_id']).where('tenant_id', '=', tenantId).where('thing_name', 'in', names).execute()) principals.add(`${r.thing_name}\u0000${r.certificate_id}`);
    for (const r of await trx.selectFrom('policy_attachments').select(['policy_name', 'target_id']).where('tenant_id', '=', tenantId).where('target_type', '=', 'certificate').where('target_id', 'in', ids).execute()) attached.add(`${r.policy_name}\u0000${r.target_id}`);
  }
  const out: LineOutcome[] = [];
  for (const c of candidates) {
    const id = c.cert.certificateId;
    const t = things.get(c.thing.thingName);
    const g = [...new Set(groups.get(c.thing.thingName) ?? [])].sort();
    const planned = [...new Set(c.thing.thingGroups)].sort();
    const same =
      certStatus.get(id) === c.status &&
      t !== undefined &&
      t.type === (c.thing.thingTypeName ?? null) &&
      t.attributes === sortedJson(c.thing.attributes) &&
      g.join('\u0000') === planned.join('\u0000') &&
      principals.has(`${c.thing.thingName}\u0000${id}`) &&
      c.p.plan.policies.every((pol) => attached.has(`${pol.policy.kind === 'name' ? pol.policy.policyName : pol.policy.suggestedName}\u0000${id}`));
    if (same) {
      out.push({ lineNo: c.p.lineNo, outcome: 'present', thingName: c.thing.thingName, certificateId: id, certificatePem: c.cert.issued ? c.cert.pem : null, privateKeyPem: null, code: null, message: null });
    }
  }
  return out;
}

import type { ParsedCertificate } from '../pki/index.ts';
import * as registry from '../registry/index.ts';
import type { CaRecord } from '../registry/index.ts';
import type { Store } from '../store/index.ts';
import { CERTIFICATE_PARAMETERS, STORED_TEMPLATE_MAX_LENGTH, evaluateTemplate, parseTemplate } from '../templates/index.ts';
import type { TemplateCache } from '../templates/index.ts';
import { applyPlan } from './apply-plan.ts';
import { certificateRecordOf } from './certificate-record.ts';
import { ProvisioningErrors } from './errors.ts';

/** The `AWS::IoT::Certificate::*` parameters a JITP template gets from the device certificate (protocols.md). */
export function jitpParameters(cert: ParsedCertificate): Record<string, string> {
  const first = (k: string): string | undefined => cert.subject[k as keyof typeof cert.subject]?.[0];
  const out: Record<string, string> = { 'AWS::IoT::Certificate::Id': cert.certificateId };
  const map: [string, string][] = [
    ['AWS::IoT::Certificate::Country', 'C'],
    ['AWS::IoT::Certificate::Organization', 'O'],
    ['AWS::IoT::Certificate::OrganizationalUnit', 'OU'],
    ['AWS::IoT::Certificate::DistinguishedNameQualifier', 'dnQualifier'],
    ['AWS::IoT::Certificate::StateName', 'ST'],
    ['AWS::IoT::Certificate::CommonName', 'CN'],
    ['AWS::IoT::Certificate::SerialNumber', 'serialNumber'],
  ];
  for (const [param, field] of map) {
    const v = first(field);
    if (v !== undefined) out[param] = v;
  }
  return Object.fromEntries(Object.entries(out).filter(([k]) => CERTIFICATE_PARAMETERS.has(k) || k === 'AWS::IoT::Certificate::Id'));
}

/** Outcome of JITP for one certificate. */
export interface JitpOutcome {
  readonly thingName: string | undefined;
  /** False when another connection (or node) provisioned the certificate first. */
  readonly created: boolean;
  /** The certificate as this provisioning committed it (absent when `created` is false). */
  readonly certificate?: registry.CertificateRecord | undefined;
}

/** Options of provisionJustInTime. */
export interface JitpOptions {
  /** Parsed templates shared between calls (a template version is parsed once). */
  readonly templates?: TemplateCache | undefined;
}

/**
 * Just-in-time provisioning (source documents: "Just-in-Time Provisioning"): in one transaction, register the
 * certificate, run the CA's JITP template with the certificate's subject fields, create the thing and policy,
 * attach them and activate. A concurrent first connection of the same certificate finds it registered and
 * does nothing twice (the primary key decides, across nodes too).
 */
export async function provisionJustInTime(store: Store, tenantId: string, ca: CaRecord, cert: ParsedCertificate, actor: string, options: JitpOptions = {}): Promise<JitpOutcome> {
  if (ca.registrationTemplate === null) throw ProvisioningErrors.error('PROVISIONING_PLAN_INVALID', 'the CA has no JITP template');
  const rec = await registry.getProvisioningTemplate(store.db, tenantId, ca.registrationTemplate);
  if (rec.type !== 'JITP') throw ProvisioningErrors.error('PROVISIONING_TEMPLATE_TYPE_MISMATCH', `template "${rec.templateName}" is not a JITP template`);
  if (!rec.enabled) throw ProvisioningErrors.error('PROVISIONING_TEMPLATE_DISABLED', `template "${rec.templateName}" is disabled`);
  const parseOptions = { type: 'JITP', name: rec.templateName, maxLength: STORED_TEMPLATE_MAX_LENGTH } as const;
  const template = options.templates === undefined ? parseTemplate(rec.templateBody, parseOptions) : options.templates.parse(rec.templateBody, parseOptions);
  const params = jitpParameters(cert);
  const { ['AWS::IoT::Certificate::Id']: _id, ...parameters } = params;
  const plan = evaluateTemplate(template, { parameters, certificateId: cert.certificateId });
  const w = { rowLocks: store.supportsRowLocks };
  try {
    return await store.transaction((trx) =>
      registry.withAuditBatch(trx, { tenantId, actor }, store.supportsRowLocks, async (ctx) => {
        const registered = await registry.insertCertificate(trx, ctx, certificateRecordOf(cert, ca.caCertificateId, 'PENDING_ACTIVATION', 'jitp'), w);
        const applied = await applyPlan(trx, ctx, plan, { certificateId: cert.certificateId, certificate: registered, rowLocks: store.supportsRowLocks });
        const after = applied.certificate ?? (await registry.getCertificate(trx, tenantId, cert.certificateId));
        const final = after.status === 'PENDING_ACTIVATION' ? await registry.updateCertificateStatus(trx, ctx, cert.certificateId, 'ACTIVE', { ...w, current: after }) : after;
        await registry.appendAudit(trx, ctx, 'jitp.provisioned', `cert/${cert.certificateId}`, { caCertificateId: ca.caCertificateId, template: rec.templateName, thingName: applied.thingName ?? null }, store.supportsRowLocks);
        return { thingName: applied.thingName, created: true, certificate: final };
      }),
    );
  } catch (error) {
    if (store.isUniqueViolation(error) || (error as { code?: string }).code === 'REGISTRY_CERTIFICATE_EXISTS') {
      const existing = await registry.findCertificate(store.db, tenantId, cert.certificateId);
      if (existing !== undefined) return { thingName: (await registry.listPrincipalThings(store.db, tenantId, cert.certificateId))[0], created: false };
    }
    throw error;
  }
}

/**
 * The resource plan: what one evaluation of a provisioning template asks the registry to do.
 *
 * The registry applies it in one transaction, in the JITP order of protocols.md ("AWS provisioning
 * templates"): register the certificate, create the thing, create the policies, attach the policies to the
 * certificate, attach the certificate to the thing, set the certificate status. The plan is plain JSON
 * (no `undefined`, no Map, no class) so `gatehouse template dry-run` can print it as is.
 */
import type { CertificateOverride, ProvisioningTemplateType, ThingOverride } from './provisioning-template.ts';

/** Status a template may give a certificate (AWS: `Status`, default ACTIVE). */
export type PlannedCertificateStatus = 'ACTIVE' | 'INACTIVE';

/** A value of `DeviceConfiguration`: flat scalars only, returned to the device in the request's format. */
export type DeviceConfigurationValue = string | number | boolean;

/** The thing to create or update. */
export interface ThingPlan {
  readonly logicalId: string;
  /** Validated: 1–128 characters of `[a-zA-Z0-9:_-]`. */
  readonly thingName: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly thingTypeName?: string;
  /** Deduplicated, in template order. */
  readonly thingGroups: readonly string[];
  readonly billingGroup?: string;
  /** What to do if the thing exists; DO_NOTHING where the template says nothing. */
  readonly override: ThingOverride;
}

/** Where the certificate comes from. */
export type CertificatePlanSource =
  /** An existing certificate (JITP and fleet: `{"Ref": "AWS::IoT::Certificate::Id"}`); lower-case hex. */
  | { readonly kind: 'id'; readonly certificateId: string }
  /** A certificate to register (bulk registration), with its CA when the subject is ambiguous. */
  | { readonly kind: 'pem'; readonly certificatePem: string; readonly caCertificatePem?: string }
  /** A certificate to issue from a CSR (bulk registration). */
  | { readonly kind: 'csr'; readonly csr: string };

/** The certificate to register, issue or reuse, and the status it should end with. */
export interface CertificatePlan {
  readonly logicalId: string;
  readonly source: CertificatePlanSource;
  readonly status: PlannedCertificateStatus;
  readonly override: CertificateOverride;
}

/** A policy to attach to the certificate. */
export type PolicyPlanSource =
  /** An existing policy, by name. */
  | { readonly kind: 'name'; readonly policyName: string }
  /**
   * An inline document (compact JSON). `suggestedName` is deterministic — `<templateName>-<sha256 of document>`,
   * or the bare hash without a template name (AWS names such policies by the document's hash) — so applying the
   * same plan twice reuses one policy instead of creating another.
   */
  | { readonly kind: 'document'; readonly document: string; readonly suggestedName: string };

/** One policy resource of the plan. */
export interface PolicyPlan {
  readonly logicalId: string;
  readonly policy: PolicyPlanSource;
}

/** The result of `evaluateTemplate`. Resources whose `Condition` is false are absent. */
export interface ResourcePlan {
  readonly templateType: ProvisioningTemplateType;
  /** The effective value of every declared parameter (request value, else default). */
  readonly parameters: Readonly<Record<string, string>>;
  readonly certificate?: CertificatePlan;
  readonly thing?: ThingPlan;
  /** In template order. */
  readonly policies: readonly PolicyPlan[];
  /** Fleet provisioning: returned to the device in the RegisterThing response; `{}` for JITP. */
  readonly deviceConfiguration: Readonly<Record<string, DeviceConfigurationValue>>;
}

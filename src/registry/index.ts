export { RegistryErrors } from './errors.ts';
export type { RegistryContext, AuditBatch, PendingAuditEntry } from './context.ts';
export { nowIso } from './context.ts';
export { NAME_RULES, assertValidName, assertValidAttributes, assertCertificateId, type NameKind } from './names.ts';
export { PAGE_DEFAULT, PAGE_MAX, decodePageToken, pageLimit, toPage, type Page, type PageRequest } from './pagination.ts';
export { appendAudit, withAuditBatch, verifyAuditLog, listAudit, type AuditEntry, type AuditVerification } from './audit-log.ts';
export { DEFAULT_TENANT, createTenant, getTenant, findTenantByEndpoint, listTenants, type Tenant } from './tenants.ts';
export { ROLES, assertRole, hashToken, createApiToken, findApiToken, listApiTokens, revokeApiToken, type Role, type ApiToken } from './api-tokens.ts';
export {
  createThing, getThing, findThing, updateThing, deleteThing, listThings, addThingToGroup, removeThingFromGroup,
  type Thing, type CreateThingInput, type UpdateThingInput, type ListThingsFilter, type WriteOptions, type AttachOptions,
} from './things.ts';
export { createThingType, getThingType, setThingTypeDeprecated, deleteThingType, listThingTypes, type ThingType } from './thing-types.ts';
export { createThingGroup, getThingGroup, deleteThingGroup, listThingGroups, type ThingGroup } from './thing-groups.ts';
export {
  MAX_POLICY_VERSIONS, parsePolicyTarget, createPolicy, getPolicy, findPolicy, createPolicyVersion, listPolicyVersions, setDefaultPolicyVersion,
  deletePolicyVersion, deletePolicy, listPolicies, attachPolicy, detachPolicy, listPolicyTargets, listAttachedPolicies, effectivePolicyDocuments,
  type Policy, type PolicyVersion, type PolicyTarget,
} from './policies.ts';
export {
  CERTIFICATE_STATUSES, parseCertificateStatus, insertCertificate, getCertificate, findCertificate, listCertificates, updateCertificateStatus,
  deleteCertificate, transferCertificate, listIncomingTransfers, resolveTransfer, attachThingPrincipal, detachThingPrincipal, listThingPrincipals,
  listPrincipalThings, listRevokedByCa,
  type CertificateStatus, type CertificateRecord, type NewCertificateRecord, type ListCertificatesFilter, type UpdateCertificateStatusOptions,
} from './certificates.ts';
export {
  insertCa, getCa, listAllCas, listCas, updateCa, revokeCa, nextCrlNumber, listRevokedChildCas, findOwnedCa, findCertificateCa, listCaRegistrationsElsewhere, getOrCreateRegistrationCode,
  type CaRecord, type NewCaRecord, type CaStatus, type CaMode, type CertificateCaFacts, type FirstConnectMode, type CaUpdate,
} from './ca-certificates.ts';
export { claimSystemSetting, createKeyBlobRepository, getSystemSetting, setSystemSetting } from './key-blobs.ts';
export {
  MAX_TEMPLATE_VERSIONS, validateTemplateBody, createProvisioningTemplate, findProvisioningTemplate, getProvisioningTemplate, updateProvisioningTemplate,
  createProvisioningTemplateVersion, listProvisioningTemplateVersions, getProvisioningTemplateVersion, deleteProvisioningTemplateVersion, deleteProvisioningTemplate, listProvisioningTemplates,
  type ProvisioningTemplateRecord, type PreProvisioningHook, type TemplateClaimsOnDelete,
} from './provisioning-templates.ts';
export { WEBHOOK_EVENT_TYPES, createWebhook, listWebhooks, listAllWebhookTargets, deleteWebhook, insertDeadLetter, listDeadLetters, type Webhook } from './webhooks.ts';
export { getCaRegistrationHooks, setCaRegistrationHooks, addAllowListEntries, isAllowListed, listAllowList, removeAllowListEntry, type CaRegistrationHooks } from './registration-hooks.ts';
export { useSecretSealer, resealLegacySecrets, sealSecret, openSecret, needsSealing, isSecretSealerInstalled, type SecretSealer } from './secret-sealing.ts';

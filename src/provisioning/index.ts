export { ProvisioningErrors } from './errors.ts';
export { CertificateAuthorityService, type CertificateAuthorityServiceOptions, type ReadyIssuer, type CreateCaInput, type RegisterCaInput } from './certificate-authority-service.ts';
export { ControlPlane, type ChangeListener } from './control-plane.ts';
export { issueFromCsr, createKeysAndCertificate, DEVICE_CERT_VALIDITY_DAYS, type IssueFromCsrInput, type IssuedDeviceCertificate, type KeysAndCertificate } from './manual.ts';
export { registerCertificate, registerCertificateWithoutCa, findIssuingCa, type RegisterCertificateInput } from './mar.ts';
export { bootstrapInstallation, type BootstrapOptions, type InstallationMaterial } from './bootstrap.ts';
export { applyPlan, type AppliedPlan, type ApplyPlanOptions } from './apply-plan.ts';

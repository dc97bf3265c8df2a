import { defineErrors } from '../errors/index.ts';

/** Error codes of the provisioning flows. */
export const ProvisioningErrors = defineErrors({
  PROVISIONING_CA_NOT_OWNED: { kind: 'conflict', description: 'The CA is registered (BYO): Gatehouse does not hold its key and cannot issue with it.' },
  PROVISIONING_CA_NOT_ACTIVE: { kind: 'conflict', description: 'The CA is INACTIVE or REVOKED and cannot issue or vouch for certificates.' },
  PROVISIONING_CA_UNKNOWN_ISSUER: { kind: 'invalid', description: 'The certificate is not issued by any ACTIVE CA registered in this tenant.' },
  PROVISIONING_CA_PARENT_INVALID: { kind: 'invalid', description: 'The parent CA is not an owned, ACTIVE CA of this tenant.' },
  PROVISIONING_CERTIFICATE_IS_CA: { kind: 'invalid', description: 'A device certificate must not be a CA certificate.' },
  PROVISIONING_PLAN_INVALID: { kind: 'invalid', description: 'The template plan cannot be applied as given (e.g. a certificate resource without a certificate).' },
  PROVISIONING_OVERRIDE_CONFLICT: { kind: 'conflict', description: 'The thing exists with different properties and the template OverrideSettings say FAIL.' },
  PROVISIONING_TEMPLATE_DISABLED: { kind: 'conflict', description: 'The provisioning template is disabled.' },
  PROVISIONING_TEMPLATE_TYPE_MISMATCH: { kind: 'invalid', description: 'The template is of the wrong type for this flow (JITP vs FLEET_PROVISIONING).' },
  PROVISIONING_NOT_INITIALISED: { kind: 'internal', description: 'The installation has no issuing CA yet (bootstrap did not run).' },
});

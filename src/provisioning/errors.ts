import { defineErrors } from '../errors/index.ts';

/** Error codes of the provisioning flows. */
export const ProvisioningErrors = defineErrors({
  PROVISIONING_CA_NOT_OWNED: { kind: 'conflict', description: 'The CA is registered (BYO): Gatehouse does not hold its key and cannot issue with it.' },
  PROVISIONING_CA_NOT_ACTIVE: { kind: 'conflict', description: 'The CA is INACTIVE or REVOKED and cannot issue or vouch for certificates.' },
  PROVISIONING_CA_UNKNOWN_ISSUER: { kind: 'invalid', description: 'The certificate is not issued by any ACTIVE CA registered in this tenant.' },
  PROVISIONING_CERTIFICATE_IS_CA: { kind: 'invalid', description: 'A device certificate must not be a CA certificate.' },
  PROVISIONING_PLAN_INVALID: { kind: 'invalid', description: 'The template plan cannot be applied as given (e.g. a certificate resource without a certificate).' },
  PROVISIONING_OVERRIDE_CONFLICT: { kind: 'conflict', description: 'The thing exists with different properties and the template OverrideSettings say FAIL.' },
  PROVISIONING_TEMPLATE_DISABLED: { kind: 'forbidden', description: 'The provisioning template is disabled.' },
  PROVISIONING_TEMPLATE_TYPE_MISMATCH: { kind: 'invalid', description: 'The template is of the wrong type for this flow (JITP vs FLEET_PROVISIONING).' },
  PROVISIONING_HOOK_FAILED: { kind: 'forbidden', description: 'The pre-provisioning hook failed, answered badly or not within its timeout; the request is refused.' },
  PROVISIONING_HOOK_DENIED: { kind: 'forbidden', description: 'The pre-provisioning hook answered allowProvisioning: false.' },
  PROVISIONING_TOKEN_INVALID: { kind: 'invalid', description: 'The certificate ownership token is unknown, already used, of another tenant or of another claim.' },
  PROVISIONING_TOKEN_EXPIRED: { kind: 'invalid', description: 'The certificate ownership token is older than one hour.' },
  PROVISIONING_CLAIM_REVOKED: { kind: 'forbidden', description: 'The claim certificate was revoked and can no longer provision devices.' },
  PROVISIONING_CLAIM_EXHAUSTED: { kind: 'forbidden', description: 'The claim certificate reached its maximum number of devices.' },
  PROVISIONING_CLAIM_TEMPLATE_MISMATCH: { kind: 'forbidden', description: 'The claim certificate was issued for another provisioning template.' },
  PROVISIONING_RATE_LIMITED: { kind: 'rate_limited', description: 'Too many provisioning requests for this claim: it reached its rate limit (ratePerMinute devices per minute); retry later.' },
  PROVISIONING_AUTO_REGISTRATION_DISABLED: { kind: 'forbidden', description: 'The issuing CA does not allow auto-registration (JITP/JITR).' },
  PROVISIONING_CA_REGISTERED_ELSEWHERE: { kind: 'conflict', description: 'The CA is registered in another tenant: a CA may be in several tenants only when every registration is SNI_ONLY.' },
  PROVISIONING_CERTIFICATE_NOT_PENDING: { kind: 'conflict', description: 'RegisterThing for a certificate that is no longer PENDING_ACTIVATION (an operator deactivated or revoked it after it was created).' },
  PROVISIONING_BILLING_GROUP_NOT_FOUND: { kind: 'not_found', description: 'The template puts the thing in a billing group; Gatehouse has no billing groups, so provisioning fails as AWS fails for a missing one.' },
  PROVISIONING_SNI_REQUIRED: { kind: 'forbidden', description: 'The issuing CA is registered in SNI_ONLY mode: the device must send SNI naming the tenant endpoint.' },
  PROVISIONING_JITP_FAILED: { kind: 'internal', description: 'Just-in-time provisioning failed for an unexpected reason; nothing was written.' },
  PROVISIONING_CRL_UNAVAILABLE: { kind: 'unavailable', description: 'The CRL configured for a CA cannot be fetched or read; auto-registration fails closed.' },
  PROVISIONING_CA_KEY_STORE_MISMATCH: { kind: 'unavailable', description: 'The CA key lives in another key store (encrypted vs PKCS#11) than the one this server is configured with.' },
  PROVISIONING_NOT_INITIALISED: { kind: 'internal', description: 'The installation has no issuing CA yet (bootstrap did not run).' },
  PROVISIONING_BULK_TASK_NOT_FOUND: { kind: 'not_found', description: 'No bulk registration task with this id in this tenant.' },
  PROVISIONING_BULK_TASK_STATE_INVALID: { kind: 'conflict', description: 'The bulk task cannot be stopped or resumed in its current status.' },
  PROVISIONING_BULK_FORMAT_INVALID: { kind: 'invalid', description: 'The bulk input format is not supported (send application/x-ndjson or text/csv with format jsonl or csv).' },
  PROVISIONING_BULK_INPUT_TOO_LARGE: { kind: 'too_large', description: 'The uploaded bulk input exceeds the size limit.' },
  PROVISIONING_BULK_INPUT_EMPTY: { kind: 'invalid', description: 'The bulk input has no device line (or a CSV input has no header).' },
  PROVISIONING_BULK_LINE_MALFORMED: { kind: 'invalid', description: 'A bulk input line is not a JSON object of string values (JSON lines), or is not a well-formed CSV record (a quoted field not closed on its line, or text after its closing quote) or does not match the CSV header.' },
  PROVISIONING_BULK_LINE_TOO_LARGE: { kind: 'too_large', description: 'A bulk input line is longer than 64 KiB.' },
  PROVISIONING_BULK_DUPLICATE_THING: { kind: 'conflict', description: 'The thing name already appears on an earlier line of the same bulk input.' },
  PROVISIONING_BULK_MATERIAL_AMBIGUOUS: { kind: 'invalid', description: 'A bulk line carries both a CSR and a certificate; give one of them.' },
  PROVISIONING_BULK_CERTIFICATE_CONFLICT: { kind: 'conflict', description: 'The certificate of the line is already registered and attached to another thing.' },
  PROVISIONING_BULK_LINE_FAILED: { kind: 'internal', description: 'A bulk line failed for an unexpected reason (database error); the line wrote nothing and the task went on.' },
  PROVISIONING_BULK_TEMPLATE_VERSION_GONE: { kind: 'conflict', description: 'The template version a bulk task started with was deleted (or its template deleted or replaced) since: the task resumes only with that same version, never with another. Start a new task for the lines without a result.' },
  PROVISIONING_MANIFEST_MALFORMED: { kind: 'invalid', description: 'The manifest (or one of its entries) cannot be read: not the vendor format.' },
  PROVISIONING_MANIFEST_SIGNER_UNKNOWN: { kind: 'invalid', description: 'A manifest entry names a signer (kid / x5t#S256) that is not among the verifier certificates.' },
  PROVISIONING_MANIFEST_SIGNATURE_INVALID: { kind: 'invalid', description: 'A manifest entry JWS signature does not verify (tampered payload or signature, or wrong algorithm).' },
  PROVISIONING_MANIFEST_CHAIN_INVALID: { kind: 'invalid', description: 'The device certificate chain of a manifest entry (x5c) does not verify up to the signer CA, or does not match the entry key.' },
  PROVISIONING_MANIFEST_NO_CERTIFICATE: { kind: 'invalid', description: 'A verified manifest entry carries a device id but no certificate (e.g. Microchip TrustMANAGER); it is reported as a pre-authorized id, not registered.' },
  PROVISIONING_MANIFEST_ENTRY_REFUSED: { kind: 'invalid', description: 'A manifest entry was refused by the importer before registration.' },
});

/**
 * The message of PROVISIONING_CERTIFICATE_IS_CA for a device certificate. `openssl req -x509` marks what it makes a CA
 * unless told otherwise (OpenSSL 3's default v3_ca section), which is how most first self-signed test devices fail.
 */
export const DEVICE_CERTIFICATE_IS_CA = 'a device certificate must not have basicConstraints CA:true (openssl req -x509 sets it unless given -addext basicConstraints=critical,CA:FALSE)';

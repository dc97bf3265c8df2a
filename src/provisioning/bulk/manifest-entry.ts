import type { ProvisioningErrors } from '../errors.ts';

/** A manifest refusal code (stable, documented in docs/errors.md). */
export type ManifestRefusalCode = Extract<Parameters<typeof ProvisioningErrors.error>[0], `PROVISIONING_MANIFEST_${string}`>;

/** One entry of a supply-chain manifest after conversion: a device to register, or a refusal to report. */
export type ManifestEntry =
  | { readonly kind: 'device'; readonly index: number; readonly thingName: string; readonly certificatePem: string; readonly uniqueId?: string | undefined }
  | { readonly kind: 'refused'; readonly index: number; readonly thingName?: string | undefined; readonly uniqueId?: string | undefined; readonly code: ManifestRefusalCode; readonly message: string };

/**
 * The bulk JSON line of a manifest entry. Refusals travel through the bulk task as `$refused` lines, so that they
 * appear in the task's error report with their code and line number, beside the registration failures.
 */
export function manifestEntryToBulkLine(entry: ManifestEntry): string {
  if (entry.kind === 'device') return JSON.stringify({ ThingName: entry.thingName, CertificatePem: entry.certificatePem });
  return JSON.stringify({ ...(entry.thingName === undefined ? {} : { ThingName: entry.thingName }), $refused: { code: entry.code, message: entry.message } });
}

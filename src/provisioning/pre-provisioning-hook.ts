import { createHmac } from 'node:crypto';
import type { PreProvisioningHook } from '../registry/index.ts';
import type { GatehouseError } from '../errors/index.ts';
import { ProvisioningErrors } from './errors.ts';

/** What the hook is told (protocols.md "Pre-provisioning hook"). */
export interface PreProvisioningRequest {
  readonly claimCertificateId: string;
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly templateArn: string;
  readonly clientId: string;
  readonly parameters: Readonly<Record<string, string>>;
}

/** The hook's answer. */
export interface PreProvisioningResponse {
  readonly allowProvisioning: boolean;
  readonly parameterOverrides: Record<string, string>;
  /** Why the built-in allow list refused (a webhook's answer has no reason: the device is only told it was refused). */
  readonly reason?: string;
}

/** Default time a webhook has to answer; no answer in time means the request is refused. */
export const DEFAULT_HOOK_TIMEOUT_MS = 5000;

/** Signature header: `sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`. */
export function signHookBody(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

function parseAnswer(value: unknown): PreProvisioningResponse {
  if (typeof value !== 'object' || value === null) throw ProvisioningErrors.error('PROVISIONING_HOOK_FAILED', 'the pre-provisioning hook did not answer a JSON object');
  const v = value as { allowProvisioning?: unknown; parameterOverrides?: unknown };
  if (typeof v.allowProvisioning !== 'boolean') throw ProvisioningErrors.error('PROVISIONING_HOOK_FAILED', 'the pre-provisioning hook answer lacks a boolean allowProvisioning');
  const overrides: Record<string, string> = {};
  if (v.parameterOverrides !== undefined && v.parameterOverrides !== null) {
    if (typeof v.parameterOverrides !== 'object' || Array.isArray(v.parameterOverrides)) throw ProvisioningErrors.error('PROVISIONING_HOOK_FAILED', 'parameterOverrides must be an object of strings');
    for (const [k, x] of Object.entries(v.parameterOverrides as Record<string, unknown>)) {
      if (typeof x !== 'string') throw ProvisioningErrors.error('PROVISIONING_HOOK_FAILED', `parameterOverrides.${k} must be a string`);
      overrides[k] = x;
    }
  }
  return { allowProvisioning: v.allowProvisioning, parameterOverrides: overrides };
}

/** Why the built-in allow list refuses these parameters, or undefined when it allows them (pure: `template dry-run` uses it too). */
export function allowListRefusal(hook: Extract<PreProvisioningHook, { type: 'allow-list' }>, parameters: Readonly<Record<string, string>>): string | undefined {
  const value = parameters[hook.parameter];
  if (value !== undefined && hook.values.includes(value)) return undefined;
  return value === undefined ? `the parameter ${hook.parameter} is missing` : `${hook.parameter} "${value}" is not on the template's allow list`;
}

/** The error a device gets when the hook refuses it (PROVISIONING_HOOK_DENIED), with the allow list's reason if any. */
export function hookDenied(reason: string | undefined): GatehouseError {
  return ProvisioningErrors.error('PROVISIONING_HOOK_DENIED', `the pre-provisioning hook refused this device${reason === undefined ? '' : `: ${reason}`}`);
}

/**
 * Runs a template's pre-provisioning hook. A webhook gets the request as JSON, HMAC-signed
 * (`Gatehouse-Signature`, `Gatehouse-Timestamp`); any failure or no answer within the timeout refuses the request.
 * The built-in allow list checks one parameter against the uploaded values without any external service.
 */
export async function runPreProvisioningHook(hook: PreProvisioningHook, request: PreProvisioningRequest, options: { defaultTimeoutMs?: number } = {}): Promise<PreProvisioningResponse> {
  if (hook.type === 'allow-list') {
    const reason = allowListRefusal(hook, request.parameters);
    return reason === undefined ? { allowProvisioning: true, parameterOverrides: {} } : { allowProvisioning: false, parameterOverrides: {}, reason };
  }
  const body = JSON.stringify(request);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const headers: Record<string, string> = { 'content-type': 'application/json', 'gatehouse-timestamp': timestamp };
  if (hook.secret !== undefined) headers['gatehouse-signature'] = signHookBody(hook.secret, timestamp, body);
  const timeoutMs = hook.timeoutMs ?? options.defaultTimeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
  let res: Response;
  try {
    res = await fetch(hook.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  } catch (cause) {
    const timedOut = (cause as Error).name === 'TimeoutError';
    throw ProvisioningErrors.error('PROVISIONING_HOOK_FAILED', timedOut ? `the pre-provisioning hook did not answer within ${timeoutMs} ms` : 'the pre-provisioning hook could not be reached', { cause });
  }
  if (!res.ok) throw ProvisioningErrors.error('PROVISIONING_HOOK_FAILED', `the pre-provisioning hook answered HTTP ${res.status}`);
  let parsed: unknown;
  try {
    parsed = await res.json();
  } catch (cause) {
    throw ProvisioningErrors.error('PROVISIONING_HOOK_FAILED', 'the pre-provisioning hook answer is not JSON', { cause });
  }
  return parseAnswer(parsed);
}

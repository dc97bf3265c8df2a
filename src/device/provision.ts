import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createCsr, generateKeyPair } from '../pki/index.ts';
import { isGatehouseError, unwritableDirectoryReason } from '../errors/index.ts';
import type { DeviceCredentials, DeviceEndpoint } from './mqtt-connection.ts';
import { connectDevice } from './mqtt-connection.ts';
import { checkedTemplateName, FleetProvisioningClient } from './fleet-provisioning-client.ts';
import type { PayloadFormat } from './fleet-provisioning-client.ts';
import { DeviceErrors } from './errors.ts';

/** Options of provisionByClaim. */
export interface ProvisionByClaimOptions {
  readonly endpoint: DeviceEndpoint;
  /** The claim certificate and key (batch claim or trusted-user claim). */
  readonly claim: DeviceCredentials;
  readonly templateName: string;
  readonly parameters?: Record<string, string>;
  /** `csr` (default): the key is generated on the device and never sent. `server`: CreateKeysAndCertificate. */
  readonly keyMode?: 'csr' | 'server';
  readonly format?: PayloadFormat;
  readonly clientId?: string;
  /** Writes certificate.pem, private.key (0600), root-ca.pem, endpoint.txt, provisioning.json there. */
  readonly outDir?: string;
  /** Attempts for transient failures (connect errors, timeouts, 5xx / throttling), with exponential backoff. */
  readonly attempts?: number;
  readonly timeoutMs?: number;
  /** Called before each retry (e.g. to tell the user that the service throttles and when the next attempt comes). */
  readonly onRetry?: (retry: RetryInfo) => void;
}

/** What {@link withRetry} reports before it waits for the next attempt. */
export interface RetryInfo {
  /** The attempt that failed (1-based) and how many there are in all. */
  readonly attempt: number;
  readonly attempts: number;
  /** How long it waits before the next attempt. */
  readonly delayMs: number;
  readonly error: unknown;
}

/** The device's new identity. */
export interface ProvisionedDevice extends DeviceCredentials {
  readonly thingName: string;
  readonly certificateId: string;
  readonly deviceConfiguration: Record<string, unknown>;
}

function isTransient(error: unknown): boolean {
  if (!isGatehouseError(error)) return true;
  // a CONNACK refusal other than "server unavailable" (3) is an answer, not a failure: the same attempt gets the same one
  const connackCode = (error.details as { connackCode?: unknown } | undefined)?.connackCode;
  if (error.code === 'DEVICE_CONNECT_FAILED' && typeof connackCode === 'number') return connackCode === 3;
  if (error.code === 'DEVICE_CONNECT_FAILED' || error.code === 'DEVICE_REQUEST_TIMEOUT') return true;
  const status = Number((error.details as { statusCode?: unknown } | undefined)?.statusCode ?? 0);
  return status >= 500 || status === 429;
}

/** Retries `fn` on transient failures with exponential backoff (200 ms, 400 ms, …). Rejections are final. */
export async function withRetry<T>(fn: () => Promise<T>, attempts: number, onRetry?: (retry: RetryInfo) => void): Promise<T> {
  if (!Number.isInteger(attempts) || attempts < 1) throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', `attempts must be a whole number of at least 1, got ${String(attempts)}`);
  let last: unknown;
  for (let i = 0; i < attempts; i += 1) {
    try {
      return await fn();
    } catch (error) {
      last = error;
      if (!isTransient(error) || i === attempts - 1) throw error;
      const delayMs = 200 * 2 ** i;
      onRetry?.({ attempt: i + 1, attempts, delayMs, error });
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
  throw last;
}

/** The files of a saved identity that are never overwritten. */
const IDENTITY_FILES = ['certificate.pem', 'private.key'];

/**
 * Fails (DEVICE_CREDENTIALS_INVALID) when `dir` cannot take a new identity: it already holds one (whose key exists
 * nowhere else), or it is not a directory and cannot become one, or it is not writable. Checked before anything is
 * provisioned: a device registered on the server whose key could then not be saved would be lost. Creates nothing.
 */
export function refuseExistingIdentity(dir: string): void {
  const taken = IDENTITY_FILES.filter((f) => existsSync(path.join(dir, f)));
  if (taken.length > 0) throw DeviceErrors.error('DEVICE_CREDENTIALS_INVALID', `${dir} already holds ${taken.join(', ')}; an existing identity is never overwritten (choose another directory)`);
  const problem = unwritableDirectoryReason(dir);
  if (problem !== undefined) throw DeviceErrors.error('DEVICE_CREDENTIALS_INVALID', `cannot save the new identity in ${dir}: ${problem}`);
}

/** Writes a device identity to a directory that holds none yet (see {@link refuseExistingIdentity}): keys 0600. */
export function saveDeviceCredentials(dir: string, device: ProvisionedDevice, endpoint: DeviceEndpoint): void {
  refuseExistingIdentity(dir);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'certificate.pem'), device.certificatePem);
  writeFileSync(path.join(dir, 'private.key'), device.privateKeyPem, { mode: 0o600, flag: 'wx' });
  chmodSync(path.join(dir, 'private.key'), 0o600);
  writeFileSync(path.join(dir, 'root-ca.pem'), endpoint.caPem);
  writeFileSync(path.join(dir, 'endpoint.txt'), `${endpoint.host}:${endpoint.port}\n`);
  writeFileSync(path.join(dir, 'provisioning.json'), JSON.stringify({ thingName: device.thingName, certificateId: device.certificateId, deviceConfiguration: device.deviceConfiguration, servername: endpoint.servername ?? null }, null, 2));
}

/**
 * Fleet provisioning by claim, from the device's side: connect with the claim, get a certificate (CSR made here
 * by default), RegisterThing with the ownership token, and return (and optionally save) the new identity.
 */
export async function provisionByClaim(o: ProvisionByClaimOptions): Promise<ProvisionedDevice> {
  const clientId = o.clientId ?? `provision-${Math.random().toString(36).slice(2, 10)}`;
  if (clientId === '') throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', 'the client id must not be empty (it is also the common name of the CSR)');
  if (o.timeoutMs !== undefined && !(Number.isInteger(o.timeoutMs) && o.timeoutMs > 0)) throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', `timeoutMs must be a whole number of milliseconds above 0, got ${String(o.timeoutMs)}`);
  if (o.attempts !== undefined && !(Number.isInteger(o.attempts) && o.attempts >= 1)) throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', `attempts must be a whole number of at least 1, got ${String(o.attempts)}`);
  checkedTemplateName(o.templateName);
  // Checked before anything is provisioned: a taken or unwritable directory must not cost a certificate and a thing.
  if (o.outDir !== undefined) refuseExistingIdentity(o.outDir);
  const device = await withRetry(async () => {
    const client = await connectDevice(o.endpoint, o.claim, clientId, o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs });
    try {
      const api = new FleetProvisioningClient(client, { format: o.format ?? 'json', ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }) });
      let certificatePem: string;
      let privateKeyPem: string;
      let token: string;
      let certificateId: string;
      const csrMode = (o.keyMode ?? 'csr') === 'csr';
      // One SUBSCRIBE for the answers of both calls, kept until the connection ends.
      await api.subscribeToAnswers([csrMode ? api.topics.createCertificateFromCsr : api.topics.createKeysAndCertificate, api.topics.registerThing(o.templateName)]);
      if (csrMode) {
        const keys = generateKeyPair('EC_P256');
        const csr = createCsr({ privateKey: keys.privateKey, spkiDer: keys.spkiDer, subject: { CN: [clientId.slice(0, 64)] } });
        const r = await api.createCertificateFromCsr(csr);
        certificatePem = r.certificatePem;
        privateKeyPem = keys.privateKeyPem;
        token = r.certificateOwnershipToken;
        certificateId = r.certificateId;
      } else {
        const r = await api.createKeysAndCertificate();
        certificatePem = r.certificatePem;
        privateKeyPem = r.privateKey;
        token = r.certificateOwnershipToken;
        certificateId = r.certificateId;
      }
      const reg = await api.registerThing(o.templateName, { certificateOwnershipToken: token, ...(o.parameters === undefined ? {} : { parameters: o.parameters }) });
      return { thingName: reg.thingName, certificateId, deviceConfiguration: reg.deviceConfiguration, certificatePem, privateKeyPem };
    } finally {
      await client.endAsync().catch(() => undefined);
    }
  }, o.attempts ?? 3, o.onRetry);
  if (o.outDir !== undefined) saveDeviceCredentials(o.outDir, device, o.endpoint);
  return device;
}

/**
 * Fleet provisioning by trusted user: the installer's app obtained a 5-minute claim (certificate + key) from
 * the API and handed it to the device; the device then continues exactly as by claim.
 */
export function provisionByTrustedUser(o: ProvisionByClaimOptions): Promise<ProvisionedDevice> {
  return provisionByClaim(o);
}

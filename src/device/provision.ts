import { chmodSync, closeSync, existsSync, mkdirSync, openSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createCsr, generateKeyPair } from '../pki/index.ts';
import { isGatehouseError, unwritableDirectoryReason } from '../errors/index.ts';
import type { DeviceCredentials, DeviceEndpoint } from './mqtt-connection.ts';
import { assertEndpoint, checkDeviceCredentials, connectDevice } from './mqtt-connection.ts';
import { checkedFormat, checkedTemplateName, FleetProvisioningClient } from './fleet-provisioning-client.ts';
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
  /**
   * Longest wait before a retry that the service asks for when it throttles (Gatehouse's `retryAfterSeconds`; default
   * 30 000 ms). When the service asks for longer, the call fails at once with that rejection (its
   * `details.retryAfterSeconds` says when to come back) instead of spending its attempts in vain.
   */
  readonly maxRetryWaitMs?: number;
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
  // anything but the SDK's own errors is a bug or a misuse (a TypeError, say): the same attempt fails the same way
  if (!isGatehouseError(error)) return false;
  // the server's certificate did not verify (wrong root CA, wrong name): final
  if (error.code === 'DEVICE_CONNECT_FAILED' && typeof (error.details as { tlsCode?: unknown } | undefined)?.tlsCode === 'string') return false;
  // a CONNACK refusal other than "server unavailable" (3) is an answer, not a failure: the same attempt gets the same one
  const connackCode = (error.details as { connackCode?: unknown } | undefined)?.connackCode;
  if (error.code === 'DEVICE_CONNECT_FAILED' && typeof connackCode === 'number') return connackCode === 3;
  if (error.code === 'DEVICE_CONNECT_FAILED' || error.code === 'DEVICE_REQUEST_TIMEOUT') return true;
  const status = Number((error.details as { statusCode?: unknown } | undefined)?.statusCode ?? 0);
  return status >= 500 || status === 429;
}

/** The wait a throttling answer asks for (Gatehouse adds `retryAfterSeconds` to AWS's rejected payload), in ms. */
function requestedWaitMs(error: unknown): number | undefined {
  if (!isGatehouseError(error)) return undefined;
  const seconds = (error.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

/** Default of {@link ProvisionByClaimOptions.maxRetryWaitMs}. */
const DEFAULT_MAX_RETRY_WAIT_MS = 30_000;

/**
 * Retries `fn` on transient failures with exponential backoff (200 ms, 400 ms, …): connection failures other than a
 * refusal, timeouts, and answers with status 5xx or 429. A throttling answer that says when to come back is retried
 * then (not sooner), or not at all when that is more than `maxRetryWaitMs` away. Rejections, a server certificate that
 * does not verify, and errors that are not the SDK's own are final.
 */
export async function withRetry<T>(fn: () => Promise<T>, attempts: number, onRetry?: (retry: RetryInfo) => void, maxRetryWaitMs = DEFAULT_MAX_RETRY_WAIT_MS): Promise<T> {
  if (!Number.isInteger(attempts) || attempts < 1) throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', `attempts must be a whole number of at least 1, got ${String(attempts)}`);
  let last: unknown;
  for (let i = 0; i < attempts; i += 1) {
    try {
      return await fn();
    } catch (error) {
      last = error;
      if (!isTransient(error) || i === attempts - 1) throw error;
      const asked = requestedWaitMs(error);
      if (asked !== undefined && asked > maxRetryWaitMs) throw error;
      const delayMs = Math.max(200 * 2 ** i, asked ?? 0);
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

/**
 * Writes a device identity to a directory that holds none yet (see {@link refuseExistingIdentity}): keys 0600. Its
 * input is checked before any file is written (a matching certificate and key, an endpoint), so that a bad call leaves
 * no half-written directory behind. `reservedKey`: the directory's private.key was created empty by the caller
 * (provisionByClaim reserves it before provisioning) and is filled here.
 */
export function saveDeviceCredentials(dir: string, device: ProvisionedDevice, endpoint: DeviceEndpoint, reservedKey = false): void {
  if (typeof device !== 'object' || device === null) throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', 'saveDeviceCredentials needs the device ({ certificatePem, privateKeyPem, thingName, certificateId, deviceConfiguration })');
  checkDeviceCredentials(device, 'the identity to save');
  assertEndpoint(endpoint);
  if (!reservedKey) refuseExistingIdentity(dir);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'certificate.pem'), device.certificatePem, { flag: 'wx' });
  writeFileSync(path.join(dir, 'private.key'), device.privateKeyPem, { mode: 0o600, flag: reservedKey ? 'r+' : 'wx' });
  chmodSync(path.join(dir, 'private.key'), 0o600);
  writeFileSync(path.join(dir, 'root-ca.pem'), endpoint.caPem);
  writeFileSync(path.join(dir, 'endpoint.txt'), `${endpoint.host}:${endpoint.port}\n`);
  writeFileSync(path.join(dir, 'provisioning.json'), JSON.stringify({ thingName: device.thingName === '' ? null : device.thingName, certificateId: device.certificateId, deviceConfiguration: device.deviceConfiguration, servername: endpoint.servername ?? null }, null, 2));
}

/** The first `max` characters of `text`, counted in code points: a cut never splits a surrogate pair. */
function firstCodePoints(text: string, max: number): string {
  return Array.from(text).slice(0, max).join('');
}

/** A certificate with its key and ownership token, from CreateCertificateFromCsr or CreateKeysAndCertificate. */
interface IssuedIdentity {
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  readonly token: string;
}

/**
 * Claims `dir` for the new identity before anything is provisioned: private.key is created empty (0600) with an
 * exclusive open, so that two provisionings into one directory cannot both get a device whose key only one could keep.
 * Returns the function that gives the directory back when provisioning fails.
 */
function reserveIdentityDirectory(dir: string): () => void {
  refuseExistingIdentity(dir);
  const created = !existsSync(dir);
  mkdirSync(dir, { recursive: true });
  const keyFile = path.join(dir, 'private.key');
  try {
    closeSync(openSync(keyFile, 'wx', 0o600));
  } catch (cause) {
    throw DeviceErrors.error('DEVICE_CREDENTIALS_INVALID', `${dir} already holds private.key (another provisioning is saving its identity there); choose another directory`, { cause });
  }
  return () => {
    rmSync(keyFile, { force: true });
    if (created) {
      try {
        rmdirSync(dir); // only when still empty
      } catch {
        // something else was put there meanwhile: left as it is
      }
    }
  };
}

/**
 * Fleet provisioning by claim, from the device's side: connect with the claim, get a certificate (CSR made here
 * by default), RegisterThing with the ownership token, and return (and optionally save) the new identity.
 *
 * Retries (`attempts`) never make a second identity once RegisterThing may have been sent: a later attempt sends
 * RegisterThing again with the same certificate and token. When that finds the token already used (the first one went
 * through but its answer was lost), the device is most likely registered: DEVICE_REGISTRATION_UNCONFIRMED, with the
 * identity saved in `outDir` when one is given.
 */
export async function provisionByClaim(o: ProvisionByClaimOptions): Promise<ProvisionedDevice> {
  const clientId = o.clientId ?? `provision-${Math.random().toString(36).slice(2, 10)}`;
  if (clientId === '') throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', 'the client id must not be empty (it is also the common name of the CSR)');
  if (o.timeoutMs !== undefined && !(Number.isInteger(o.timeoutMs) && o.timeoutMs > 0)) throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', `timeoutMs must be a whole number of milliseconds above 0, got ${String(o.timeoutMs)}`);
  if (o.attempts !== undefined && !(Number.isInteger(o.attempts) && o.attempts >= 1)) throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', `attempts must be a whole number of at least 1, got ${String(o.attempts)}`);
  if (o.maxRetryWaitMs !== undefined && !(Number.isInteger(o.maxRetryWaitMs) && o.maxRetryWaitMs >= 0)) throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', `maxRetryWaitMs must be a whole number of milliseconds from 0, got ${String(o.maxRetryWaitMs)}`);
  const keyMode: unknown = o.keyMode ?? 'csr';
  // any other value used to mean "server": a typo made the service generate the private key
  if (keyMode !== 'csr' && keyMode !== 'server') throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', `keyMode must be "csr" (the key is made on the device) or "server" (CreateKeysAndCertificate), got ${JSON.stringify(keyMode)}`);
  const format = checkedFormat(o.format ?? 'json');
  if (o.outDir !== undefined && (typeof o.outDir !== 'string' || o.outDir === '')) throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', 'outDir must name a directory');
  assertEndpoint(o.endpoint);
  if (typeof o.claim !== 'object' || o.claim === null) throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', 'claim must be { certificatePem, privateKeyPem } of the claim certificate');
  // a key that is not the claim certificate's fails in TLS with a message naming neither: say which pair it is
  checkDeviceCredentials(o.claim, 'the claim');
  checkedTemplateName(o.templateName);
  // Claimed before anything is provisioned: a taken or unwritable directory must not cost a certificate and a thing.
  const release = o.outDir === undefined ? undefined : reserveIdentityDirectory(o.outDir);
  const csrMode = keyMode === 'csr';
  let issued: IssuedIdentity | undefined;
  let registerSent = false;
  try {
    const device = await withRetry(async () => {
      const client = await connectDevice(o.endpoint, o.claim, clientId, o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs });
      try {
        const api = new FleetProvisioningClient(client, { format, ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }) });
        // One SUBSCRIBE for the answers of both calls, kept until the connection ends.
        await api.subscribeToAnswers([...(issued === undefined ? [csrMode ? api.topics.createCertificateFromCsr : api.topics.createKeysAndCertificate] : []), api.topics.registerThing(o.templateName)]);
        if (issued === undefined) {
          if (csrMode) {
            const keys = generateKeyPair('EC_P256');
            const csr = createCsr({ privateKey: keys.privateKey, spkiDer: keys.spkiDer, subject: { CN: [firstCodePoints(clientId, 64)] } });
            const r = await api.createCertificateFromCsr(csr);
            issued = { certificateId: r.certificateId, certificatePem: r.certificatePem, privateKeyPem: keys.privateKeyPem, token: r.certificateOwnershipToken };
          } else {
            const r = await api.createKeysAndCertificate();
            issued = { certificateId: r.certificateId, certificatePem: r.certificatePem, privateKeyPem: r.privateKey, token: r.certificateOwnershipToken };
          }
        }
        const retried = registerSent;
        registerSent = true;
        let reg: { thingName: string; deviceConfiguration: Record<string, unknown> };
        try {
          reg = await api.registerThing(o.templateName, { certificateOwnershipToken: issued.token, ...(o.parameters === undefined ? {} : { parameters: o.parameters }) });
        } catch (error) {
          // the token the first RegisterThing carried is refused now (AWS and Gatehouse both answer errorCode
          // InvalidCertificateOwnershipToken): that one went through
          if (retried && isGatehouseError(error) && (error.details as { errorCode?: unknown } | undefined)?.errorCode === 'InvalidCertificateOwnershipToken') throw unconfirmed(issued, o.outDir, error);
          throw error;
        }
        return { thingName: reg.thingName, certificateId: issued.certificateId, deviceConfiguration: reg.deviceConfiguration, certificatePem: issued.certificatePem, privateKeyPem: issued.privateKeyPem };
      } finally {
        await client.endAsync().catch(() => undefined);
      }
    }, o.attempts ?? 3, o.onRetry, o.maxRetryWaitMs);
    if (o.outDir !== undefined) saveDeviceCredentials(o.outDir, device, o.endpoint, true);
    return device;
  } catch (error) {
    if (release !== undefined && !(isGatehouseError(error) && error.code === 'DEVICE_REGISTRATION_UNCONFIRMED')) release();
    else if (release !== undefined && issued !== undefined) saveDeviceCredentials(o.outDir ?? '', { ...issued, thingName: '', deviceConfiguration: {} }, o.endpoint, true);
    throw error;
  }
}

/** The error of a RegisterThing whose first answer was lost and whose retry found the token used. */
function unconfirmed(issued: IssuedIdentity, outDir: string | undefined, cause: unknown): Error {
  return DeviceErrors.error(
    'DEVICE_REGISTRATION_UNCONFIRMED',
    `RegisterThing's answer was lost and its retry found the ownership token already used: the device is most likely registered with certificate ${issued.certificateId}${outDir === undefined ? ' (give outDir to keep its key when this happens)' : `, whose identity is saved in ${outDir} (provisioning.json has no thing name)`}`,
    { cause, details: { certificateId: issued.certificateId } },
  );
}

/**
 * Fleet provisioning by trusted user: the installer's app obtained a 5-minute claim (certificate + key) from
 * the API and handed it to the device; the device then continues exactly as by claim.
 */
export function provisionByTrustedUser(o: ProvisionByClaimOptions): Promise<ProvisionedDevice> {
  return provisionByClaim(o);
}

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import { fileErrorReason } from '../errors/index.ts';
import { DeviceErrors } from './errors.ts';

/** Where a device connects: host, MQTT/TLS port, the root it trusts and, optionally, the SNI name (tenant endpoint). */
export interface DeviceEndpoint {
  readonly host: string;
  readonly port: number;
  readonly caPem: string;
  /** TLS SNI (e.g. `<tenant>.localhost`); defaults to `host`. */
  readonly servername?: string | undefined;
}

/** A device identity: certificate and private key (PEM). */
export interface DeviceCredentials {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

/** Reads one PEM file of a device's credentials; a missing or unreadable file is DEVICE_CREDENTIALS_INVALID naming it. */
export function readDeviceFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    throw DeviceErrors.error('DEVICE_CREDENTIALS_INVALID', `cannot read the ${what} ${file}: ${fileErrorReason(cause)}`, { cause });
  }
}

/**
 * Checks that a certificate and a private key (PEM) belong together before they go to TLS, whose own error ("key values
 * mismatch") names neither. Throws DEVICE_CREDENTIALS_INVALID; `label` says where they came from.
 */
export function checkDeviceCredentials(credentials: DeviceCredentials, label: string): void {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(credentials.certificatePem);
  } catch (cause) {
    throw DeviceErrors.error('DEVICE_CREDENTIALS_INVALID', `${label}: the certificate is not a PEM X.509 certificate`, { cause });
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(credentials.privateKeyPem);
  } catch (cause) {
    throw DeviceErrors.error('DEVICE_CREDENTIALS_INVALID', `${label}: the private key is not an unencrypted PEM private key`, { cause });
  }
  if (!certificate.checkPrivateKey(key)) throw DeviceErrors.error('DEVICE_CREDENTIALS_INVALID', `${label}: the private key does not match the certificate`);
}

/** Reads a certificate and its private key (e.g. `certificate.pem`/`private.key` or `claim.pem`/`claim.key`) and checks that they match. */
export function readCredentialFiles(certFile: string, keyFile: string): DeviceCredentials {
  const credentials = { certificatePem: readDeviceFile(certFile, 'certificate'), privateKeyPem: readDeviceFile(keyFile, 'private key') };
  checkDeviceCredentials(credentials, `${certFile} / ${keyFile}`);
  return credentials;
}

/** Parses `host:port` (`[v6]:port` for an IPv6 address); DEVICE_OPTIONS_INVALID when it is not one. */
export function parseEndpoint(text: string, caPem: string, servername?: string): DeviceEndpoint {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(text.trim());
  if (m?.[1] === undefined || m[2] === undefined) throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', `endpoint must be host:port, got "${text}"`);
  const endpoint = { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]), caPem, ...(servername === undefined ? {} : { servername }) };
  assertEndpoint(endpoint);
  return endpoint;
}

/**
 * Refuses an endpoint no connection could work with (DEVICE_OPTIONS_INVALID, which is never retried): no host, a
 * port outside 1–65535, or a root CA that is not a PEM certificate. Without this, each became a connection failure
 * that the SDK retried with backoff.
 */
export function assertEndpoint(endpoint: DeviceEndpoint): void {
  if (typeof endpoint !== 'object' || endpoint === null) throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', 'the endpoint must be an object { host, port, caPem, servername? }');
  const where = `endpoint ${endpoint.host}:${endpoint.port}`;
  if (typeof endpoint.host !== 'string' || endpoint.host === '') throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', 'the endpoint has no host');
  if (!Number.isInteger(endpoint.port) || endpoint.port < 1 || endpoint.port > 65_535) throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', `${where}: the port must be a whole number from 1 to 65535`);
  let readable = typeof endpoint.caPem === 'string' && endpoint.caPem.includes('-----BEGIN CERTIFICATE-----');
  try {
    if (readable) new X509Certificate(endpoint.caPem);
  } catch {
    readable = false;
  }
  if (!readable) throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', `${where}: caPem must be the PEM of the root CA the device trusts for the server`);
}

/** Opens an MQTT 3.1.1 connection over mutual TLS (clean session, no automatic reconnect). */
export async function connectDevice(endpoint: DeviceEndpoint, credentials: DeviceCredentials, clientId: string, options: { timeoutMs?: number } = {}): Promise<MqttClient> {
  assertEndpoint(endpoint);
  let client: MqttClient;
  try {
    client = openClient(endpoint, credentials, clientId, options);
  } catch (cause) {
    // Node builds the TLS context synchronously: unreadable PEM or a key that does not match the certificate
    checkDeviceCredentials(credentials, 'device credentials');
    throw DeviceErrors.error('DEVICE_CONNECT_FAILED', `cannot connect to ${endpoint.host}:${endpoint.port}: ${(cause as Error).message}`, { cause });
  }
  return new Promise<MqttClient>((resolve, reject) => {
    const fail = (error: Error): void => {
      client.end(true);
      // A CONNACK refusal carries its return code (MQTT 3.1.1 §3.2.2.3): kept in the details, so that retries skip the
      // refusals that another attempt cannot change (all but 3, server unavailable); for 2 (identifier rejected) the
      // message names the client id and the usual limit
      const code = (error as { code?: unknown }).code;
      const connackCode = typeof code === 'number' && code >= 1 && code <= 5 ? code : undefined;
      // the server's certificate did not verify against caPem or the name: another attempt gets the same answer
      const tlsCode = typeof code === 'string' && SERVER_VERIFICATION_ERRORS.has(code) ? code : undefined;
      const hint = connackCode === 2 ? ` (client id "${clientId.length > 40 ? `${clientId.slice(0, 40)}…` : clientId}", ${clientId.length} characters; AWS IoT and Gatehouse accept at most 128 by default)` : '';
      reject(DeviceErrors.error('DEVICE_CONNECT_FAILED', `cannot connect to ${endpoint.host}:${endpoint.port}: ${error.message}${hint}`, { cause: error, ...(connackCode === undefined ? {} : { details: { connackCode } }), ...(tlsCode === undefined ? {} : { details: { tlsCode } }) }));
    };
    client.once('connect', () => {
      client.removeListener('error', fail);
      resolve(client);
    });
    client.once('error', fail);
    client.once('close', () => fail(new Error('connection closed before CONNACK')));
  });
}

/**
 * Node's codes for a server certificate that does not verify (OpenSSL's verify results, and the host-name check): the
 * wrong root CA, or an endpoint name the certificate does not carry. Retrying cannot change them.
 */
const SERVER_VERIFICATION_ERRORS = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'INVALID_CA', 'INVALID_PURPOSE', 'HOSTNAME_MISMATCH', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * The host to open the socket to: a name under `.localhost` is the loopback host (RFC 6761 §6.3), as a tenant endpoint
 * `<tenant>.localhost` of the default domain is; resolvers without that rule (glibc's `files` and `dns`) fail on it
 * with ENOTFOUND. The name itself still goes in SNI and in the check of the server's certificate.
 */
function socketHost(host: string): string {
  return /^[^.]+(\.[^.]+)*\.localhost\.?$/i.test(host) ? 'localhost' : host;
}

/** The MQTT.js client of {@link connectDevice}: MQTT 3.1.1 over mutual TLS, clean session, no automatic reconnect. */
function openClient(endpoint: DeviceEndpoint, credentials: DeviceCredentials, clientId: string, options: { timeoutMs?: number }): MqttClient {
  return mqtt.connect({
    protocol: 'mqtts',
    host: socketHost(endpoint.host),
    port: endpoint.port,
    ca: endpoint.caPem,
    cert: credentials.certificatePem,
    key: credentials.privateKeyPem,
    // SNI names a host, never an IP address (RFC 6066 §3): an IP endpoint without a servername sends none, which
    // Gatehouse answers as the default tenant
    ...(endpoint.servername !== undefined ? { servername: endpoint.servername } : isIP(endpoint.host) === 0 ? { servername: endpoint.host } : {}),
    clientId,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: options.timeoutMs ?? 10_000,
    rejectUnauthorized: true,
  });
}

import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
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

/** Reads `certificate.pem`/`private.key` (or `claim.pem`/`claim.key`) and `root-ca.pem` from a directory. */
export function readCredentialFiles(certFile: string, keyFile: string): DeviceCredentials {
  try {
    return { certificatePem: readFileSync(certFile, 'utf8'), privateKeyPem: readFileSync(keyFile, 'utf8') };
  } catch (cause) {
    throw DeviceErrors.error('DEVICE_CREDENTIALS_INVALID', `cannot read ${certFile} / ${keyFile}: ${(cause as Error).message}`, { cause });
  }
}

/** Parses `host:port`. */
export function parseEndpoint(text: string, caPem: string, servername?: string): DeviceEndpoint {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(text.trim());
  if (m?.[1] === undefined || m[2] === undefined) throw DeviceErrors.error('DEVICE_CONNECT_FAILED', `endpoint must be host:port, got "${text}"`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]), caPem, ...(servername === undefined ? {} : { servername }) };
}

/** Opens an MQTT 3.1.1 connection over mutual TLS (clean session, no automatic reconnect). */
export async function connectDevice(endpoint: DeviceEndpoint, credentials: DeviceCredentials, clientId: string, options: { timeoutMs?: number } = {}): Promise<MqttClient> {
  const client = mqtt.connect({
    protocol: 'mqtts',
    host: endpoint.host,
    port: endpoint.port,
    ca: endpoint.caPem,
    cert: credentials.certificatePem,
    key: credentials.privateKeyPem,
    servername: endpoint.servername ?? endpoint.host,
    clientId,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: options.timeoutMs ?? 10_000,
    rejectUnauthorized: true,
  });
  return new Promise<MqttClient>((resolve, reject) => {
    const fail = (error: Error): void => {
      client.end(true);
      reject(DeviceErrors.error('DEVICE_CONNECT_FAILED', `cannot connect to ${endpoint.host}:${endpoint.port}: ${error.message}`, { cause: error }));
    };
    client.once('connect', () => {
      client.removeListener('error', fail);
      resolve(client);
    });
    client.once('error', fail);
    client.once('close', () => fail(new Error('connection closed before CONNACK')));
  });
}

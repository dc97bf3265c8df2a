/**
 * A lean fleet-provisioning device for bench/fleet.ts (`--client lean`, the default): the same protocol work as the
 * `src/device` SDK's `provisionByClaim` + `connectDevice` + one QoS 1 publish, over {@link LeanMqttSession}
 * (hand-encoded MQTT 3.1.1 over `connectMutualTls` from bench/support.ts, the raw baseline's TLS path) instead of MQTT.js.
 *
 * One device, as the SDK does it (src/device/provision.ts, src/device/fleet-provisioning-client.ts):
 * 1. mutual TLS with the batch claim (its SecureContext is built once per run and shared by every device, as the raw
 *    baseline reuses its contexts), CONNECT with `claim-<serial>`;
 * 2. an EC P-256 key pair and a CSR (CN = the claim client id) made on the device with `src/pki`;
 * 3. one SUBSCRIBE QoS 1 to the `/accepted` and `/rejected` answers of both calls (as the SDK's `provisionByClaim`
 *    does with `subscribeToAnswers`, and AWS's fleet-provisioning sample), kept until DISCONNECT;
 *    CreateCertificateFromCsr (protocols.md, "AWS fleet provisioning MQTT API"): PUBLISH QoS 1 the request to
 *    `$aws/certificates/create-from-csr/json`, wait for the answer (and the PUBACK);
 * 4. RegisterThing the same way on `$aws/provisioning-templates/<template>/provision/json`, with the ownership token
 *    and `parameters: { SerialNumber }`;
 * 5. DISCONNECT; then mutual TLS with the new key and certificate (OpenSSL loads both for this device; the TLS context
 *    around them, with the trusted root, is built once per run, see `singleUseIdentityContext` in bench/support.ts),
 *    CONNECT with the thing name, PUBLISH QoS 1 to `things/<thingName>/telemetry`, PUBACK, DISCONNECT.
 *
 * It checks the answers: a `/rejected` payload fails with its `errorCode`, `errorMessage` and `statusCode`; the
 * certificate must carry the device's public key; the thing name must be the expected one. It has no retries, no
 * CBOR, no CreateKeysAndCertificate and no credential files: bench/fleet.ts `--client sdk` runs the real SDK.
 */
import { createCsr, generateKeyPair } from '../src/pki/index.ts';
import { LeanMqttSession } from './lean-mqtt-client.ts';
import type { ClientIdentity, MutualTlsTarget } from './support.ts';

/** Options of {@link runLeanFleetDevice}. */
export interface LeanFleetDeviceOptions {
  readonly host: string;
  readonly port: number;
  /** SNI and the name the server certificate is checked against. */
  readonly servername: string;
  /** Root the device trusts for the server. */
  readonly caPem: string;
  /** The batch claim; pass the same object for every device so that its SecureContext is built once. */
  readonly claim: ClientIdentity;
  readonly templateName: string;
  /** Template parameter `SerialNumber`. */
  readonly serialNumber: string;
  /** Client id of the claim connection (the CSR's common name too, as in the SDK). */
  readonly claimClientId: string;
  /** The thing name RegisterThing must answer. */
  readonly expectedThingName: string;
  /** Limit of every wait (CONNACK, SUBACK, answer, PUBACK, UNSUBACK, close); default 15 s. */
  readonly timeoutMs?: number;
}

/** What one {@link runLeanFleetDevice} produced. */
export interface LeanFleetDeviceResult {
  readonly thingName: string;
  readonly certificateId: string;
  /** TLS connections of this device that resumed a session (of 2; expected 0). */
  readonly resumedSessions: number;
}

/** A `/rejected` answer (protocols.md error payload). */
interface RejectedPayload {
  readonly statusCode?: unknown;
  readonly errorCode?: unknown;
  readonly errorMessage?: unknown;
}

function parseJsonObject(payload: Buffer, topic: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch (cause) {
    throw new Error(`unreadable JSON answer on ${topic}`, { cause });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error(`answer on ${topic} is not a JSON object`);
  return body as Record<string, unknown>;
}

/** A field of a rejected payload for an error message: strings and numbers as they are, anything else as JSON. */
function field(value: unknown): string {
  if (typeof value === 'string' || typeof value === 'number') return String(value);
  return value === undefined ? '?' : JSON.stringify(value);
}

/**
 * Whether the first certificate of `pem` holds `spkiDer`: the SubjectPublicKeyInfo is copied verbatim into the
 * TBSCertificate (RFC 5280 §4.1.2.7), so a byte search in the DER is a cheap check without a full X.509 parse.
 */
function certificateCarriesKey(pem: string, spkiDer: Buffer): boolean {
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem);
  if (m?.[1] === undefined) return false;
  const der = Buffer.from(m[1], 'base64');
  return der[0] === 0x30 && der.includes(spkiDer);
}

function requireString(body: Record<string, unknown>, key: string, api: string): string {
  const value = body[key];
  if (typeof value !== 'string' || value.length === 0) throw new Error(`${api} accepted answer without ${key}`);
  return value;
}

/** The answer topics of a request topic. */
function answersOf(topic: string): [accepted: string, rejected: string] {
  return [`${topic}/accepted`, `${topic}/rejected`];
}

/**
 * One request of the fleet-provisioning MQTT API on a session already subscribed to its answers, as the SDK's
 * `FleetProvisioningClient.request` does after `subscribeToAnswers`: publish the JSON request (QoS 1), wait for the
 * answer and the PUBACK. Resolves with the accepted payload; a rejected one fails with its error fields.
 */
async function requestFleetApi(session: LeanMqttSession, api: string, topic: string, request: unknown): Promise<Record<string, unknown>> {
  const filters = answersOf(topic);
  const rejected = filters[1];
  const [, answer] = await Promise.all([session.publishQos1(topic, Buffer.from(JSON.stringify(request))), session.waitForMessage(filters)]);
  const body = parseJsonObject(answer.payload, answer.topic);
  if (answer.topic === rejected) {
    const r = body as RejectedPayload;
    throw new Error(`${api} rejected: ${field(r.errorCode)}: ${field(r.errorMessage)} (statusCode ${field(r.statusCode)})`);
  }
  return body;
}

/** Runs one device through claim → CSR → CreateCertificateFromCsr → RegisterThing → reconnect → one QoS 1 publish. */
export async function runLeanFleetDevice(o: LeanFleetDeviceOptions): Promise<LeanFleetDeviceResult> {
  const timeoutMs = o.timeoutMs ?? 15_000;
  const base = { host: o.host, port: o.port, servername: o.servername, caPem: o.caPem };
  const claimTarget: MutualTlsTarget = { ...base, identity: o.claim };
  let resumedSessions = 0;

  const claimSession = await LeanMqttSession.connect({ target: claimTarget, clientId: o.claimClientId, timeoutMs });
  let certificatePem: string;
  let certificateId: string;
  let thingName: string;
  let keys: ReturnType<typeof generateKeyPair>;
  try {
    if (claimSession.resumed) resumedSessions += 1;
    keys = generateKeyPair('EC_P256');
    const csr = createCsr({ privateKey: keys.privateKey, spkiDer: keys.spkiDer, subject: { CN: [o.claimClientId.slice(0, 64)] } });
    const createTopic = '$aws/certificates/create-from-csr/json';
    const provisionTopic = `$aws/provisioning-templates/${o.templateName}/provision/json`;
    await claimSession.subscribe([...answersOf(createTopic), ...answersOf(provisionTopic)], 1);
    const cert = await requestFleetApi(claimSession, 'CreateCertificateFromCsr', createTopic, { certificateSigningRequest: csr });
    certificatePem = requireString(cert, 'certificatePem', 'CreateCertificateFromCsr');
    certificateId = requireString(cert, 'certificateId', 'CreateCertificateFromCsr');
    const token = requireString(cert, 'certificateOwnershipToken', 'CreateCertificateFromCsr');
    const reg = await requestFleetApi(claimSession, 'RegisterThing', provisionTopic, { certificateOwnershipToken: token, parameters: { SerialNumber: o.serialNumber } });
    thingName = requireString(reg, 'thingName', 'RegisterThing');
    await claimSession.disconnect();
  } catch (error) {
    claimSession.destroy();
    throw error;
  }

  // Cheap checks of the answers: the certificate carries the device's key, the template named the thing. (Building the
  // device's SecureContext below also makes OpenSSL check that the key matches the certificate.)
  if (!certificateCarriesKey(certificatePem, keys.spkiDer)) throw new Error(`certificate ${certificateId} does not carry the device's public key`);
  if (thingName !== o.expectedThingName) throw new Error(`RegisterThing named the thing "${thingName}", expected "${o.expectedThingName}"`);

  // The new identity is loaded into OpenSSL for this one connection (`singleUse`: the key and certificate go into the
  // run's shared client context for that CA, see singleUseIdentityContext). The key goes to OpenSSL as the PKCS#8 PEM
  // that `generateKeyPair` encodes itself, as the SDK stores it (until 2026-11-30 a SEC1 PEM exported by OpenSSL: an
  // export plus setKey took 366-483 µs per key in a loop, this PEM plus setKey 354-429 µs).
  const device: ClientIdentity = { certPem: certificatePem, keyPem: keys.privateKeyPem };
  const session = await LeanMqttSession.connect({ target: { ...base, identity: device, singleUse: true }, clientId: thingName, timeoutMs });
  try {
    if (session.resumed) resumedSessions += 1;
    await session.publishQos1(`things/${thingName}/telemetry`, Buffer.from('{"hello":1}'));
    await session.disconnect();
  } catch (error) {
    session.destroy();
    throw error;
  }
  return { thingName, certificateId, resumedSessions };
}


/**
 * The AWS fleet-provisioning MQTT API on the gateway (protocols.md): `$aws/certificates/create/{fmt}`,
 * `$aws/certificates/create-from-csr/{fmt}` and `$aws/provisioning-templates/{name}/provision/{fmt}`, JSON or CBOR.
 * The gateway only decodes, calls `provisioning` and encodes; answers go to the asking connection only.
 */
import { decode as cborDecode, encode as cborEncode } from 'cbor-x';
import { isGatehouseError } from '../errors/index.ts';
import type { FleetProvisioning } from '../provisioning/index.ts';

/** A request a device published on a device-API topic. */
export interface DeviceApiRequest {
  readonly tenantId: string;
  readonly certificateId: string;
  readonly clientId: string;
  readonly topic: string;
  readonly payload: Buffer;
}

/** The answer, published to the asking connection only. */
export interface DeviceApiResponse {
  readonly topic: string;
  readonly payload: Buffer;
}

/** A topic router for request/response APIs served by the gateway itself ($aws/…, later $dps/…). */
export interface DeviceApiRouter {
  /** True for the request topics it serves (they are never delivered to other subscribers). */
  handles(topic: string): boolean;
  handle(request: DeviceApiRequest): Promise<DeviceApiResponse>;
}

type Format = 'json' | 'cbor';

const CREATE = /^\$aws\/certificates\/create\/(json|cbor)$/;
const CREATE_FROM_CSR = /^\$aws\/certificates\/create-from-csr\/(json|cbor)$/;
const PROVISION = /^\$aws\/provisioning-templates\/([0-9A-Za-z_-]{1,36})\/provision\/(json|cbor)$/;

/** The `/rejected` payload of protocols.md. */
interface Rejection {
  statusCode: number;
  errorCode: string;
  errorMessage: string;
  /** Extension (AWS clients ignore it): on a throttling answer, the seconds until a retry can succeed. */
  retryAfterSeconds?: number;
}

const INVALID = (message: string): Rejection => ({ statusCode: 400, errorCode: 'InvalidPayload', errorMessage: message });

/** Maps a Gatehouse error to the AWS error fields (the stable Gatehouse code leads the message). */
export function rejectionOf(error: unknown): Rejection {
  if (!isGatehouseError(error)) return { statusCode: 500, errorCode: 'InternalFailure', errorMessage: 'internal error' };
  const msg = `[${error.code}] ${error.message}`;
  const c = error.code;
  if (c === 'PROVISIONING_TOKEN_INVALID' || c === 'PROVISIONING_TOKEN_EXPIRED') return { statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken', errorMessage: msg };
  if (c.startsWith('TEMPLATE_')) return { statusCode: 400, errorCode: 'InvalidParameters', errorMessage: msg };
  if (c === 'REGISTRY_TEMPLATE_NOT_FOUND') return { statusCode: 404, errorCode: 'ResourceNotFound', errorMessage: msg };
  if (c === 'PROVISIONING_OVERRIDE_CONFLICT' || error.kind === 'conflict') return { statusCode: 409, errorCode: 'ResourceConflict', errorMessage: msg };
  if (error.kind === 'forbidden' || error.kind === 'unauthenticated') return { statusCode: 403, errorCode: 'AccessDenied', errorMessage: msg };
  if (error.kind === 'rate_limited') {
    const after = (error.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
    return { statusCode: 429, errorCode: 'Throttling', errorMessage: msg, ...(typeof after === 'number' ? { retryAfterSeconds: after } : {}) };
  }
  if (error.kind === 'not_found') return { statusCode: 404, errorCode: 'ResourceNotFound', errorMessage: msg };
  if (error.kind === 'invalid' || error.kind === 'too_large') return { statusCode: 400, errorCode: 'InvalidPayload', errorMessage: msg };
  if (error.kind === 'unavailable') return { statusCode: 503, errorCode: 'ServiceUnavailable', errorMessage: msg };
  return { statusCode: 500, errorCode: 'InternalFailure', errorMessage: msg };
}

function decode(format: Format, payload: Buffer): unknown {
  if (payload.length === 0) return {};
  return format === 'json' ? (JSON.parse(payload.toString('utf8')) as unknown) : (cborDecode(payload) as unknown);
}

function encode(format: Format, value: unknown): Buffer {
  return format === 'json' ? Buffer.from(JSON.stringify(value)) : Buffer.from(cborEncode(value));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Serves the fleet-provisioning API by calling {@link FleetProvisioning}. */
export class FleetProvisioningRouter implements DeviceApiRouter {
  private readonly fleet: FleetProvisioning;
  private readonly onUnexpected: ((error: unknown) => void) | undefined;

  /** `onUnexpected`: told of each failure that is not a Gatehouse error (the device gets InternalFailure): log it. */
  constructor(fleet: FleetProvisioning, onUnexpected?: (error: unknown) => void) {
    this.fleet = fleet;
    this.onUnexpected = onUnexpected;
  }

  handles(topic: string): boolean {
    return topic.startsWith('$aws/') && (CREATE.test(topic) || CREATE_FROM_CSR.test(topic) || PROVISION.test(topic));
  }

  async handle(request: DeviceApiRequest): Promise<DeviceApiResponse> {
    const { topic } = request;
    const format: Format = topic.endsWith('/cbor') ? 'cbor' : 'json';
    const answer = (ok: boolean, body: unknown): DeviceApiResponse => ({ topic: `${topic}/${ok ? 'accepted' : 'rejected'}`, payload: encode(format, body) });
    let body: unknown;
    try {
      body = decode(format, request.payload);
    } catch {
      return answer(false, INVALID(`the payload is not valid ${format.toUpperCase()}`));
    }
    if (!isRecord(body)) return answer(false, INVALID('the payload must be an object'));
    const caller = { tenantId: request.tenantId, certificateId: request.certificateId, clientId: request.clientId };
    try {
      if (CREATE.test(topic)) return answer(true, await this.fleet.createKeysAndCertificate(caller));
      if (CREATE_FROM_CSR.test(topic)) {
        const csr = body['certificateSigningRequest'];
        if (typeof csr !== 'string' || csr.length === 0) return answer(false, INVALID('certificateSigningRequest (PEM) is required'));
        return answer(true, await this.fleet.createCertificateFromCsr(caller, csr));
      }
      const m = PROVISION.exec(topic);
      const templateName = m?.[1] ?? '';
      const token = body['certificateOwnershipToken'];
      if (typeof token !== 'string' || token.length === 0 || token.length > 2048) return answer(false, { statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken', errorMessage: 'certificateOwnershipToken is required' });
      const params = body['parameters'];
      if (params !== undefined && !isRecord(params)) return answer(false, INVALID('parameters must be an object of strings'));
      const parameters: Record<string, string> = {};
      for (const [k, v] of Object.entries(params ?? {})) {
        if (typeof v !== 'string') return answer(false, INVALID(`parameters.${k.slice(0, 64)} must be a string`));
        if (k.length > 2048 || v.length > 4096) return answer(false, INVALID('a parameter key is limited to 2048 characters and a value to 4096'));
        parameters[k] = v;
      }
      const r = await this.fleet.registerThing(caller, templateName, { certificateOwnershipToken: token, parameters });
      return answer(true, { deviceConfiguration: r.deviceConfiguration, thingName: r.thingName });
    } catch (error) {
      if (!isGatehouseError(error)) this.onUnexpected?.(error);
      return answer(false, rejectionOf(error));
    }
  }
}

import { decode as cborDecode, encode as cborEncode } from 'cbor-x';
import type { MqttClient } from 'mqtt';
import { DeviceErrors } from './errors.ts';

/** Payload format of the fleet-provisioning topics. */
export type PayloadFormat = 'json' | 'cbor';

/** An answer on `/rejected` (protocols.md error payload). */
export interface RejectedPayload {
  readonly statusCode: number;
  readonly errorCode: string;
  readonly errorMessage: string;
  /** Gatehouse's extension on a throttling answer (statusCode 429): when a retry can succeed. */
  readonly retryAfterSeconds?: number;
}

/** `json` or `cbor`; anything else (e.g. `JSON`) would subscribe to topics no answer comes on. */
export function checkedFormat(format: unknown): PayloadFormat {
  if (format !== 'json' && format !== 'cbor') throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', `format must be "json" or "cbor", got ${JSON.stringify(format)}`);
  return format;
}

/**
 * A template name as it goes into a topic: AWS's (and Gatehouse's) rule, 1 to 36 of `0-9 A-Z a-z _ -`. Anything else
 * (a `/`, `+` or `#` would even change the topic's shape) is DEVICE_OPTIONS_INVALID rather than a refused request.
 */
export function checkedTemplateName(templateName: string): string {
  if (!/^[0-9A-Za-z_-]{1,36}$/.test(templateName)) {
    throw DeviceErrors.error('DEVICE_OPTIONS_INVALID', `template name ${JSON.stringify(templateName)} is not 1 to 36 characters of 0-9 A-Z a-z _ -`);
  }
  return templateName;
}

/**
 * The AWS fleet-provisioning MQTT API from the device's side (protocols.md): subscribe to `/accepted` and
 * `/rejected`, publish the request, wait for the answer on the same connection. Works against Gatehouse and AWS.
 *
 * A request subscribes to its two answer topics and unsubscribes afterwards, unless {@link subscribeToAnswers}
 * subscribed to them beforehand for the connection's life (as AWS's fleet-provisioning sample does): a device that
 * makes the certificate call and RegisterThing then sends one SUBSCRIBE instead of two SUBSCRIBE and two UNSUBSCRIBE
 * round trips.
 */
export class FleetProvisioningClient {
  private readonly client: MqttClient;
  private readonly format: PayloadFormat;
  private readonly timeoutMs: number;
  /** Answer topics subscribed for the connection's life by subscribeToAnswers. */
  private readonly standing = new Set<string>();
  /**
   * The request in flight: answers carry no request id (the API matches them by topic alone), so two requests at once
   * on one connection would both take the first answer (the same certificate, key and token). Requests wait their turn.
   */
  private turn: Promise<unknown> = Promise.resolve();

  constructor(client: MqttClient, options: { format?: PayloadFormat; timeoutMs?: number } = {}) {
    this.client = client;
    this.format = checkedFormat(options.format ?? 'json');
    this.timeoutMs = options.timeoutMs ?? 15_000;
  }

  /**
   * Whether the connection is gone for good: ended by the caller, or closed with automatic reconnection off. MQTT.js
   * would keep a packet sent then for a reconnect that never comes, and the request would never settle. (A client
   * still connecting, or one that will reconnect, is not: MQTT.js queues the packets and sends them once connected.)
   */
  private closedForGood(): boolean {
    const c = this.client;
    if (c.connected) return false;
    return c.disconnecting || c.disconnected || (c.options.reconnectPeriod === 0 && c.stream?.destroyed === true);
  }

  private encode(value: unknown): Buffer {
    return this.format === 'json' ? Buffer.from(JSON.stringify(value)) : Buffer.from(cborEncode(value));
  }

  private decode(payload: Buffer): unknown {
    return this.format === 'json' ? (JSON.parse(payload.toString('utf8')) as unknown) : (cborDecode(payload) as unknown);
  }

  /** The request topics of the API in this client's payload format. */
  get topics(): { readonly createKeysAndCertificate: string; readonly createCertificateFromCsr: string; registerThing(templateName: string): string } {
    const f = this.format;
    return {
      createKeysAndCertificate: `$aws/certificates/create/${f}`,
      createCertificateFromCsr: `$aws/certificates/create-from-csr/${f}`,
      registerThing: (templateName) => `$aws/provisioning-templates/${checkedTemplateName(templateName)}/provision/${f}`,
    };
  }

  /**
   * Subscribes, in one SUBSCRIBE, to the `/accepted` and `/rejected` answers of `requestTopics` for the rest of the
   * connection; requests to them then neither subscribe nor unsubscribe. Fails when the server refuses a filter.
   */
  async subscribeToAnswers(requestTopics: readonly string[]): Promise<void> {
    const filters = requestTopics.flatMap((t) => [`${t}/accepted`, `${t}/rejected`]).filter((f) => !this.standing.has(f));
    if (filters.length === 0) return;
    await this.subscribe(filters);
    for (const f of filters) this.standing.add(f);
  }

  /**
   * SUBSCRIBE at QoS 1. Filters the server refuses (SUBACK 0x80: the certificate's policy does not allow them, e.g. a
   * claim used with another template than its own) fail with DEVICE_REQUEST_REJECTED naming them, whether MQTT.js
   * reports them as a granted QoS of 128 or, as MQTT.js 5 does, as a "Subscribe error" carrying the SUBACK.
   */
  private async subscribe(filters: readonly string[]): Promise<void> {
    const refusal = (codes: readonly number[], cause?: unknown): Error => {
      const refused = filters.filter((_, i) => ((codes[i] ?? 0) & 0x80) !== 0);
      return DeviceErrors.error('DEVICE_REQUEST_REJECTED', `the server refused the subscription to ${(refused.length > 0 ? refused : filters).join(', ')} (SUBACK 0x80: not allowed by the certificate's policy; a claim certificate may use only the provisioning topics of its own template)`, cause === undefined ? undefined : { cause });
    };
    // MQTT.js would keep a SUBSCRIBE made on a closed connection for a reconnect that never comes (no answer, ever)
    if (this.closedForGood()) throw DeviceErrors.error('DEVICE_CONNECT_FAILED', `SUBSCRIBE to ${filters.join(', ')}: the connection is closed`);
    let granted: { topic: string; qos: number }[];
    try {
      granted = await this.client.subscribeAsync([...filters], { qos: 1 });
    } catch (cause) {
      const codes = (cause as { packet?: { granted?: unknown } } | null)?.packet?.granted;
      if (Array.isArray(codes) && codes.some((c) => typeof c === 'number' && (c & 0x80) !== 0)) throw refusal(codes as number[], cause);
      // no SUBACK refusal: the connection failed (retried by the flows as a transient failure)
      throw DeviceErrors.error('DEVICE_CONNECT_FAILED', `SUBSCRIBE to ${filters.join(', ')} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
    if (granted.some((g) => g.qos === 128)) throw refusal(granted.map((g) => g.qos));
  }

  /**
   * Publishes `request` to `topic` and resolves with the `/accepted` payload, or rejects with the `/rejected` one.
   * Requests on one client run one after the other (see `turn`).
   */
  request<T>(topic: string, request: unknown): Promise<T> {
    const run = this.turn.then(() => this.requestNow<T>(topic, request));
    this.turn = run.catch(() => undefined);
    return run;
  }

  private async requestNow<T>(topic: string, request: unknown): Promise<T> {
    const accepted = `${topic}/accepted`;
    const rejected = `${topic}/rejected`;
    const standing = this.standing.has(accepted) && this.standing.has(rejected);
    if (!standing) await this.subscribe([accepted, rejected]);
    try {
      return await new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          cleanup();
          reject(DeviceErrors.error('DEVICE_REQUEST_TIMEOUT', `no answer on ${accepted} within ${this.timeoutMs} ms`));
        }, this.timeoutMs);
        const onMessage = (t: string, payload: Buffer): void => {
          if (t !== accepted && t !== rejected) return;
          cleanup();
          let body: unknown;
          try {
            body = this.decode(payload);
          } catch (cause) {
            reject(DeviceErrors.error('DEVICE_REQUEST_REJECTED', `unreadable answer on ${t}`, { cause }));
            return;
          }
          if (t === accepted) resolve(body as T);
          else {
            const r = body as Partial<RejectedPayload>;
            const retryAfter = typeof r.retryAfterSeconds === 'number' ? { retryAfterSeconds: r.retryAfterSeconds } : {};
            reject(DeviceErrors.error('DEVICE_REQUEST_REJECTED', `${r.errorCode ?? 'Rejected'}: ${r.errorMessage ?? ''}`, { details: { statusCode: r.statusCode ?? 0, errorCode: r.errorCode ?? '', errorMessage: r.errorMessage ?? '', ...retryAfter } }));
          }
        };
        const onClose = (): void => {
          cleanup();
          reject(DeviceErrors.error('DEVICE_CONNECT_FAILED', `connection closed while waiting on ${accepted}`));
        };
        const cleanup = (): void => {
          clearTimeout(timer);
          this.client.removeListener('message', onMessage);
          this.client.removeListener('close', onClose);
        };
        if (this.closedForGood()) {
          onClose(); // closed before the request: MQTT.js would keep the PUBLISH for a reconnect that never comes
          return;
        }
        this.client.on('message', onMessage);
        this.client.once('close', onClose);
        this.client.publish(topic, this.encode(request), { qos: 1 }, (error) => {
          if (error !== undefined && error !== null) {
            cleanup();
            reject(DeviceErrors.error('DEVICE_CONNECT_FAILED', `publish to ${topic} failed: ${error.message}`, { cause: error }));
          }
        });
      });
    } finally {
      // MQTT.js keeps an UNSUBSCRIBE made on a closed connection for a reconnect that never comes (no settle, ever)
      if (!standing && !this.closedForGood()) await this.client.unsubscribeAsync([accepted, rejected]).catch(() => undefined);
    }
  }

  /** CreateKeysAndCertificate: the service makes the key (it travels over the TLS connection once). */
  createKeysAndCertificate(): Promise<{ certificateId: string; certificatePem: string; privateKey: string; certificateOwnershipToken: string }> {
    return this.request(this.topics.createKeysAndCertificate, {});
  }

  /** CreateCertificateFromCsr: the key never leaves the device. */
  createCertificateFromCsr(certificateSigningRequest: string): Promise<{ certificateId: string; certificatePem: string; certificateOwnershipToken: string }> {
    return this.request(this.topics.createCertificateFromCsr, { certificateSigningRequest });
  }

  /** RegisterThing with the ownership token and template parameters. */
  registerThing(templateName: string, input: { certificateOwnershipToken: string; parameters?: Record<string, string> }): Promise<{ thingName: string; deviceConfiguration: Record<string, unknown> }> {
    return this.request(this.topics.registerThing(templateName), input);
  }
}

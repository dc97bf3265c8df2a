/**
 * Limits of the device gateway (issue 4 §7), with defaults close to AWS IoT Core's quotas. A client that
 * exceeds one is disconnected (or refused) with a reason that is logged and counted in `/metrics`.
 */

/** Configurable limits; every field has a default in {@link DEFAULT_GATEWAY_LIMITS}. */
export interface GatewayLimits {
  /** Largest MQTT control packet accepted, in bytes (fixed header included). AWS: 128 KiB. */
  readonly maxPacketSize: number;
  /** Longest topic name or filter, in UTF-8 bytes. AWS: 256. */
  readonly maxTopicLength: number;
  /** Most levels in a topic name or filter (aedes refuses more as well). */
  readonly maxTopicLevels: number;
  /** Most subscriptions one connection may hold. AWS: 50. */
  readonly maxSubscriptionsPerClient: number;
  /**
   * Most concurrent connections (counted from TCP accept, before TLS and CONNECT) from one IP address; 0 = no
   * limit. Raise it (or set 0) behind a TCP load balancer that does not preserve client addresses.
   */
  readonly maxConnectionsPerIp: number;
  /** Most inbound QoS 2 messages awaiting PUBREL per client (aedes `maxInflightInbound`). */
  readonly maxInflightInbound: number;
  /**
   * Most bytes (topics and payloads) of retained messages one tenant's broker keeps. A retained publish past it closes
   * the connection (`retained_limit`); one device could otherwise fill the server's memory for every tenant. Counted
   * per process.
   */
  readonly maxRetainedBytes: number;
  /** Longest MQTT client id, in characters. AWS: 128. */
  readonly maxClientIdLength: number;
  /** Time allowed for the TLS handshake, in milliseconds. */
  readonly tlsHandshakeTimeoutMs: number;
  /** Time allowed between the TLS handshake and the MQTT CONNECT, in milliseconds. */
  readonly connectTimeoutMs: number;
}

/** The defaults of {@link GatewayLimits}. */
export const DEFAULT_GATEWAY_LIMITS: GatewayLimits = Object.freeze({
  maxPacketSize: 128 * 1024,
  maxTopicLength: 256,
  maxTopicLevels: 16,
  maxSubscriptionsPerClient: 50,
  maxConnectionsPerIp: 200,
  maxInflightInbound: 100,
  maxRetainedBytes: 64 * 1024 * 1024,
  maxClientIdLength: 128,
  tlsHandshakeTimeoutMs: 10_000,
  connectTimeoutMs: 30_000,
});

/** Why a topic name or filter is refused, or undefined when it is within the limits. */
export function checkTopicLimits(topic: string, limits: GatewayLimits): string | undefined {
  if (Buffer.byteLength(topic, 'utf8') > limits.maxTopicLength) return `topic longer than ${limits.maxTopicLength} bytes`;
  let levels = 1;
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 47) levels++;
  if (levels > limits.maxTopicLevels) return `topic has more than ${limits.maxTopicLevels} levels`;
  return undefined;
}

/**
 * Watches the bytes aedes reads from a connection and reports the first MQTT packet whose declared size exceeds
 * `maxPacketSize`, from its fixed header alone (so an oversized packet is refused before it is buffered).
 * Feed it every chunk in order.
 */
export class PacketSizeGuard {
  private readonly max: number;
  /** Bytes of the current packet body still to skip. */
  private skip = 0;
  /** 0: expecting a fixed-header first byte; 1..4: reading remaining-length byte n. */
  private headerState = 0;
  private remaining = 0;
  private multiplier = 1;

  constructor(maxPacketSize: number) {
    this.max = maxPacketSize;
  }

  /** Returns a reason once a packet is too large (or its length field is malformed); undefined otherwise. */
  feed(chunk: Buffer): string | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      if (this.headerState === 0) {
        this.headerState = 1;
        this.remaining = 0;
        this.multiplier = 1;
        i++;
        continue;
      }
      const byte = chunk[i] ?? 0;
      i++;
      this.remaining += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      if ((byte & 0x80) !== 0) {
        this.headerState++;
        if (this.headerState > 4) return 'malformed remaining length';
        continue;
      }
      const total = this.remaining + this.headerState + 1;
      if (total > this.max) return `packet of ${total} bytes exceeds the limit of ${this.max} bytes`;
      this.skip = this.remaining;
      this.headerState = 0;
    }
    return undefined;
  }
}

/**
 * A lean MQTT 3.1.1 client for the benchmarks, with packets encoded by hand and incoming bytes parsed incrementally:
 * - {@link runLeanMqttCycle}, the connect load (bench/mqtt-connect-load.ts): one cycle CONNECT → CONNACK → PUBLISH
 *   QoS 1 → PUBACK → DISCONNECT over mutual TLS;
 * - {@link LeanMqttSession}, a connection for request/response flows (bench/lean-fleet-device.ts, the fleet
 *   provisioning device): SUBSCRIBE/UNSUBSCRIBE, PUBLISH QoS 1, incoming PUBLISH (QoS 0 or 1, acknowledged), waiting
 *   for a message on one of several topics, DISCONNECT; every wait bounded by a timeout.
 *
 * Why: client and server share the 2 cores of the benchmark machine, so the load generator's own CPU shapes the
 * connect/handshake ratio. This client adds only a few writes and a byte parser to the very same TLS work as the raw
 * `node:tls` baseline client ({@link connectMutualTls}: same prebuilt context, same servername, full handshake), so
 * the MQTT side pays no client-library cost (streams, packet objects, store). Measured on the shared 2-core box
 * (bench/README-connect-fleet-jitp.md): about 0.75 ms more client CPU per connection than a bare handshake, mostly the
 * MQTT round trips themselves, and 0.2–0.55 ms less than MQTT.js, which stays available (`--client mqttjs`).
 *
 * Packet formats: MQTT 3.1.1 (OASIS, 2014) §2.2 fixed header and Remaining Length, §3.1 CONNECT, §3.2 CONNACK,
 * §3.3 PUBLISH, §3.4 PUBACK, §3.8 SUBSCRIBE, §3.9 SUBACK, §3.10 UNSUBSCRIBE, §3.11 UNSUBACK, §3.14 DISCONNECT.
 */
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import { connectMutualTls } from './support.ts';
import type { MutualTlsTarget } from './support.ts';

/** MQTT control packet types (MQTT 3.1.1 §2.2.1), the ones this client sends or expects. */
export const PacketType = { CONNECT: 1, CONNACK: 2, PUBLISH: 3, PUBACK: 4, SUBSCRIBE: 8, SUBACK: 9, UNSUBSCRIBE: 10, UNSUBACK: 11, DISCONNECT: 14 } as const;

/** CONNACK return codes (MQTT 3.1.1 §3.2.2.3). */
const CONNACK_RETURN_CODES: Readonly<Record<number, string>> = {
  0: 'accepted',
  1: 'unacceptable protocol version',
  2: 'identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};

/** Encodes the Remaining Length varint (MQTT 3.1.1 §2.2.3): 7 bits per byte, continuation bit 0x80, at most 4 bytes. */
export function encodeRemainingLength(length: number): Buffer {
  if (!Number.isInteger(length) || length < 0 || length > 268_435_455) throw new Error(`MQTT remaining length out of range: ${length}`);
  const bytes: number[] = [];
  let x = length;
  do {
    let byte = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) byte |= 0x80;
    bytes.push(byte);
  } while (x > 0);
  return Buffer.from(bytes);
}

/** A UTF-8 string with its 2-byte big-endian length prefix (MQTT 3.1.1 §1.5.3). */
function utf8String(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  if (body.length > 0xffff) throw new Error(`MQTT string longer than 65535 bytes: ${body.length}`);
  const out = Buffer.allocUnsafe(2 + body.length);
  out.writeUInt16BE(body.length, 0);
  body.copy(out, 2);
  return out;
}

function packet(firstByte: number, parts: readonly Buffer[]): Buffer {
  const length = parts.reduce((a, p) => a + p.length, 0);
  return Buffer.concat([Buffer.from([firstByte]), encodeRemainingLength(length), ...parts]);
}

/** CONNECT (MQTT 3.1.1 §3.1): protocol "MQTT" level 4, clean session, no will, no user name/password. */
export function encodeConnect(clientId: string, keepAliveSeconds: number): Buffer {
  const variableHeader = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, (keepAliveSeconds >> 8) & 0xff, keepAliveSeconds & 0xff]);
  return packet(PacketType.CONNECT << 4, [variableHeader, utf8String(clientId)]);
}

/** PUBLISH QoS 1 (MQTT 3.1.1 §3.3): DUP 0, RETAIN 0, topic, packet identifier, payload. */
export function encodePublishQos1(topic: string, packetId: number, payload: Buffer): Buffer {
  const id = Buffer.allocUnsafe(2);
  id.writeUInt16BE(packetId, 0);
  return packet((PacketType.PUBLISH << 4) | (1 << 1), [utf8String(topic), id, payload]);
}

/** PUBACK (MQTT 3.1.1 §3.4): the answer to a received QoS 1 PUBLISH. */
export function encodePuback(packetId: number): Buffer {
  return Buffer.from([PacketType.PUBACK << 4, 0x02, (packetId >> 8) & 0xff, packetId & 0xff]);
}

function packetIdBytes(packetId: number): Buffer {
  if (!Number.isInteger(packetId) || packetId < 1 || packetId > 0xffff) throw new Error(`MQTT packet identifier out of range: ${packetId}`);
  const id = Buffer.allocUnsafe(2);
  id.writeUInt16BE(packetId, 0);
  return id;
}

/** SUBSCRIBE (MQTT 3.1.1 §3.8): fixed-header flags 0010, packet identifier, then each topic filter with its QoS. */
export function encodeSubscribe(packetId: number, filters: readonly string[], qos: 0 | 1): Buffer {
  if (filters.length === 0) throw new Error('SUBSCRIBE needs at least one topic filter');
  return packet((PacketType.SUBSCRIBE << 4) | 0x02, [packetIdBytes(packetId), ...filters.flatMap((f) => [utf8String(f), Buffer.from([qos])])]);
}

/** UNSUBSCRIBE (MQTT 3.1.1 §3.10): fixed-header flags 0010, packet identifier, then the topic filters. */
export function encodeUnsubscribe(packetId: number, filters: readonly string[]): Buffer {
  if (filters.length === 0) throw new Error('UNSUBSCRIBE needs at least one topic filter');
  return packet((PacketType.UNSUBSCRIBE << 4) | 0x02, [packetIdBytes(packetId), ...filters.map(utf8String)]);
}

/** A PUBLISH received from the server (MQTT 3.1.1 §3.3). */
export interface ReceivedPublish {
  readonly topic: string;
  readonly qos: 0 | 1;
  /** Present for QoS 1 (the PUBACK names it). */
  readonly packetId: number | undefined;
  readonly payload: Buffer;
}

/**
 * Decodes an incoming PUBLISH (MQTT 3.1.1 §3.3): QoS from bits 1–2 of the flags, topic name, packet identifier when
 * QoS > 0, payload. QoS 2 is refused (this client never subscribes at QoS 2), QoS 3 is malformed (§3.3.1.2).
 */
export function decodePublish(p: MqttPacket): ReceivedPublish {
  const qos = (p.flags >> 1) & 0x03;
  if (qos > 1) throw new Error(`PUBLISH with QoS ${qos}: this client subscribes at QoS 1 at most`);
  if (p.body.length < 2) throw new Error('malformed PUBLISH: no topic length');
  const topicLength = p.body.readUInt16BE(0);
  let offset = 2 + topicLength;
  if (p.body.length < offset + (qos === 1 ? 2 : 0)) throw new Error('malformed PUBLISH: shorter than its topic and packet identifier');
  const topic = p.body.toString('utf8', 2, offset);
  let packetId: number | undefined;
  if (qos === 1) {
    packetId = p.body.readUInt16BE(offset);
    offset += 2;
  }
  return { topic, qos: qos === 1 ? 1 : 0, packetId, payload: p.body.subarray(offset) };
}

/** DISCONNECT (MQTT 3.1.1 §3.14). */
export const DISCONNECT_PACKET = Buffer.from([PacketType.DISCONNECT << 4, 0x00]);

/** One incoming control packet: its type, the flags of the first byte, and the bytes after the fixed header. */
export interface MqttPacket {
  readonly type: number;
  readonly flags: number;
  readonly body: Buffer;
}

/**
 * Splits a byte stream into MQTT control packets, whatever the chunking (a packet split over several TLS records or
 * several packets in one): `push` each chunk, get back the packets completed by it.
 */
export class MqttPacketReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): MqttPacket[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const packets: MqttPacket[] = [];
    for (;;) {
      const buf = this.pending;
      if (buf.length < 2) break;
      let length = 0;
      let multiplier = 1;
      let offset = 1;
      let complete = false;
      while (offset < buf.length && offset <= 4) {
        const byte = buf[offset] ?? 0;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        offset += 1;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (offset > 4) throw new Error('malformed MQTT remaining length (more than 4 bytes)');
        break; // the length itself is split: wait for more
      }
      if (buf.length < offset + length) break;
      const first = buf[0] ?? 0;
      packets.push({ type: first >> 4, flags: first & 0x0f, body: buf.subarray(offset, offset + length) });
      this.pending = buf.subarray(offset + length);
    }
    return packets;
  }
}

/** Options of {@link runLeanMqttCycle}. */
export interface LeanMqttCycleOptions {
  /** Where to connect and as whom (the same helper as the raw handshake baseline). */
  readonly target: MutualTlsTarget;
  readonly clientId: string;
  readonly topic: string;
  readonly payload: Buffer;
  /** Keep alive of the CONNECT, seconds (default 60). */
  readonly keepAliveSeconds?: number;
  /** Limit for each of: TLS + CONNECT → CONNACK, PUBLISH → PUBACK, DISCONNECT → closed socket (default 15 s). */
  readonly timeoutMs?: number;
}

/** Timings of one {@link runLeanMqttCycle}. */
export interface LeanMqttCycleResult {
  /** From `tls.connect` to CONNACK, ms. */
  readonly connackMs: number;
  /** From `tls.connect` to the closed socket, ms. */
  readonly cycleMs: number;
  /** Whether the TLS session was resumed (expected false: no session is ever offered). */
  readonly resumed: boolean;
}

type Phase = 'connack' | 'puback' | 'closing';

/**
 * One MQTT 3.1.1 cycle over mutual TLS: CONNECT (clean session) → CONNACK (return code 0, else rejects with the
 * code) → PUBLISH QoS 1 (packet id 1) → PUBACK (packet id 1) → DISCONNECT → end of the socket. Rejects on a TLS or
 * socket error, on a close before PUBACK, on an unexpected packet, or when a phase exceeds `timeoutMs`.
 */
export function runLeanMqttCycle(o: LeanMqttCycleOptions): Promise<LeanMqttCycleResult> {
  const timeoutMs = o.timeoutMs ?? 15_000;
  const t0 = performance.now();
  return new Promise<LeanMqttCycleResult>((resolve, reject) => {
    const socket: TLSSocket = connectMutualTls(o.target);
    const reader = new MqttPacketReader();
    let phase: Phase = 'connack';
    let connackMs = Number.NaN;
    let resumed = false;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(() => {
        if (phase === 'closing') finish(); // PUBACK arrived: the cycle succeeded, only the close is slow
        else fail(new Error(`${phase === 'connack' ? 'CONNACK' : 'PUBACK'} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
    };
    const finish = (): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      socket.destroy();
      resolve({ connackMs, cycleMs: performance.now() - t0, resumed });
    };
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const onPacket = (p: MqttPacket): void => {
      if (phase === 'connack' && p.type === PacketType.CONNACK && p.body.length === 2) {
        const code = p.body[1] ?? -1;
        if (code !== 0) {
          fail(new Error(`CONNACK return code ${code} (${CONNACK_RETURN_CODES[code] ?? 'unknown'})`));
          return;
        }
        connackMs = performance.now() - t0;
        phase = 'puback';
        arm();
        socket.write(encodePublishQos1(o.topic, 1, o.payload));
      } else if (phase === 'puback' && p.type === PacketType.PUBACK && p.body.length === 2) {
        const id = p.body.readUInt16BE(0);
        if (id !== 1) {
          fail(new Error(`PUBACK for packet id ${id}, expected 1`));
          return;
        }
        phase = 'closing';
        arm();
        socket.end(DISCONNECT_PACKET);
      } else {
        fail(new Error(`unexpected MQTT packet type ${p.type} (flags ${p.flags}, ${p.body.length} bytes) while waiting for ${phase}`));
      }
    };
    arm();
    // Written at once, as MQTT.js does: Node holds it until the handshake is done and then sends it right behind the
    // client's Finished, without waiting for a turn of the event loop.
    socket.write(encodeConnect(o.clientId, o.keepAliveSeconds ?? 60));
    socket.once('secureConnect', () => {
      resumed = socket.isSessionReused();
    });
    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      let packets: MqttPacket[];
      try {
        packets = reader.push(chunk);
      } catch (error) {
        fail(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      for (const p of packets) {
        if (settled) return;
        onPacket(p);
      }
    });
    socket.on('error', (error: Error) => {
      if (phase === 'closing') finish(); // a reset after our DISCONNECT does not undo a completed cycle
      else fail(error);
    });
    socket.once('close', () => {
      if (phase === 'closing') finish();
      else fail(new Error(`connection closed before ${phase === 'connack' ? 'CONNACK' : 'PUBACK'}`));
    });
  });
}

/** An incoming packet as {@link LeanMqttSession} hands it to its waiters: a decoded PUBLISH, or any other packet. */
type Incoming = { readonly kind: 'publish'; readonly publish: ReceivedPublish } | { readonly kind: 'packet'; readonly packet: MqttPacket };

/** A pending wait of a {@link LeanMqttSession}: takes the packet it matches (returns true), or fails. */
interface Waiter {
  offer(incoming: Incoming): boolean;
  fail(error: Error): void;
}

/** Options of {@link LeanMqttSession.connect}. */
export interface LeanMqttSessionOptions {
  /** Where to connect and as whom (the same helper, hence the same TLS work, as the raw handshake baseline). */
  readonly target: MutualTlsTarget;
  readonly clientId: string;
  /** Keep alive of the CONNECT, seconds (default 60). */
  readonly keepAliveSeconds?: number;
  /** Limit of every wait of this session (CONNACK, SUBACK, UNSUBACK, PUBACK, message, close); default 15 s. */
  readonly timeoutMs?: number;
}

/** Unmatched packets kept for a later wait; more than this fails the session (a server flooding the client). */
const MAX_BACKLOG = 64;

/**
 * One MQTT 3.1.1 connection over mutual TLS (clean session) for request/response flows, with hand-encoded packets:
 * {@link subscribe} (checks every SUBACK return code, 0x80 = failure), {@link unsubscribe}, {@link publishQos1}
 * (resolves on the matching PUBACK), {@link waitForMessage} on one of several topics, {@link disconnect}. Incoming
 * QoS 1 PUBLISH packets are acknowledged at once. A packet nobody waits for yet is kept (bounded) for the next wait,
 * so the order of the server's answers (PUBACK before or after a response message) does not matter. Every wait has a
 * timeout; a socket error or an early close fails every pending and later wait with an explicit error.
 */
export class LeanMqttSession {
  private readonly socket: TLSSocket;
  private readonly reader = new MqttPacketReader();
  private readonly timeoutMs: number;
  private readonly backlog: Incoming[] = [];
  private readonly waiters = new Set<Waiter>();
  /**
   * Why the session can no longer be used. Kept as a factory until a wait needs the Error: a normal disconnect and the
   * close that follows it then create no Error (and capture no stack) at all, which a device would not do either.
   */
  private failure: Error | (() => Error) | undefined;
  private closed = false;
  private lastPacketId = 0;
  private reused = false;

  private constructor(o: LeanMqttSessionOptions) {
    this.timeoutMs = o.timeoutMs ?? 15_000;
    this.socket = connectMutualTls(o.target);
    this.socket.once('secureConnect', () => {
      this.reused = this.socket.isSessionReused();
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (error: Error) => this.failAll(error));
    this.socket.once('close', () => {
      this.closed = true;
      this.failAll(() => new Error('connection closed by the server'));
    });
  }

  /**
   * Opens the TLS connection, writes CONNECT at once (Node sends it right after the handshake, as MQTT.js does) and
   * resolves on CONNACK with return code 0; any other code rejects with its meaning (MQTT 3.1.1 §3.2.2.3).
   */
  static async connect(o: LeanMqttSessionOptions): Promise<LeanMqttSession> {
    const session = new LeanMqttSession(o);
    try {
      session.socket.write(encodeConnect(o.clientId, o.keepAliveSeconds ?? 60));
      const code = await session.expect('CONNACK', (x) => (x.kind === 'packet' && x.packet.type === PacketType.CONNACK && x.packet.body.length === 2 ? (x.packet.body[1] ?? -1) : undefined));
      if (code !== 0) throw new Error(`CONNACK return code ${code} (${CONNACK_RETURN_CODES[code] ?? 'unknown'}) for client id ${o.clientId}`);
      return session;
    } catch (error) {
      session.destroy();
      throw error;
    }
  }

  /** Whether the TLS session was resumed (expected false: {@link connectMutualTls} never offers one). */
  get resumed(): boolean {
    return this.reused;
  }

  /** SUBSCRIBE to `filters` at `qos` (default 1) and wait for SUBACK; a return code 0x80 (§3.9.3) rejects. */
  async subscribe(filters: readonly string[], qos: 0 | 1 = 1): Promise<void> {
    const id = this.nextPacketId();
    const granted = this.expect(`SUBACK ${id}`, (x) => (x.kind === 'packet' && x.packet.type === PacketType.SUBACK && x.packet.body.length >= 2 && x.packet.body.readUInt16BE(0) === id ? x.packet.body.subarray(2) : undefined));
    this.write(encodeSubscribe(id, filters, qos));
    const codes = await granted;
    if (codes.length !== filters.length) throw new Error(`SUBACK ${id} has ${codes.length} return codes for ${filters.length} topic filters`);
    filters.forEach((filter, i) => {
      const code = codes[i] ?? -1;
      if (code === 0x80) throw new Error(`SUBSCRIBE to ${filter} refused by the server (SUBACK return code 0x80)`);
      if (code < 0 || code > qos) throw new Error(`SUBACK return code ${code} for ${filter} (asked for QoS ${qos})`);
    });
  }

  /** UNSUBSCRIBE from `filters` and wait for UNSUBACK. */
  async unsubscribe(filters: readonly string[]): Promise<void> {
    const id = this.nextPacketId();
    const acked = this.expect(`UNSUBACK ${id}`, (x) => (x.kind === 'packet' && x.packet.type === PacketType.UNSUBACK && x.packet.body.length === 2 && x.packet.body.readUInt16BE(0) === id ? true : undefined));
    this.write(encodeUnsubscribe(id, filters));
    await acked;
  }

  /** PUBLISH at QoS 1 and wait for the PUBACK with its packet identifier. */
  async publishQos1(topic: string, payload: Buffer): Promise<void> {
    const id = this.nextPacketId();
    const acked = this.expect(`PUBACK ${id} for ${topic}`, (x) => (x.kind === 'packet' && x.packet.type === PacketType.PUBACK && x.packet.body.length === 2 && x.packet.body.readUInt16BE(0) === id ? true : undefined));
    this.write(encodePublishQos1(topic, id, payload));
    await acked;
  }

  /** Waits for a PUBLISH on one of `topics` (exact topic names); one already received and not yet taken counts. */
  waitForMessage(topics: readonly string[]): Promise<ReceivedPublish> {
    return this.expect(`a message on ${topics.join(' or ')}`, (x) => (x.kind === 'publish' && topics.includes(x.publish.topic) ? x.publish : undefined));
  }

  /**
   * DISCONNECT, end the TLS stream and wait for the socket to close. A slow close (past the timeout) or a reset after
   * DISCONNECT does not fail: the exchange was complete.
   */
  async disconnect(): Promise<void> {
    if (this.closed) return;
    this.failAll(() => new Error('session disconnected'));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, this.timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.end(DISCONNECT_PACKET);
    });
  }

  /** Closes the socket at once (after a failure). */
  destroy(): void {
    this.failAll(() => new Error('session destroyed'));
    this.socket.destroy();
  }

  private nextPacketId(): number {
    this.lastPacketId = (this.lastPacketId % 0xffff) + 1;
    return this.lastPacketId;
  }

  private write(bytes: Buffer): void {
    if (this.failure !== undefined) return; // the pending wait rejects with the failure
    this.socket.write(bytes);
  }

  /** Resolves with `match`'s value for the first packet (already kept or yet to come) it accepts, within the timeout. */
  private expect<T>(what: string, match: (x: Incoming) => T | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      for (let i = 0; i < this.backlog.length; i += 1) {
        const value = match(this.backlog[i] as Incoming);
        if (value !== undefined) {
          this.backlog.splice(i, 1);
          resolve(value);
          return;
        }
      }
      if (this.failure !== undefined) {
        const failure = this.failureError();
        reject(new Error(`${failure.message} (while waiting for ${what})`, { cause: failure }));
        return;
      }
      const waiter: Waiter = {
        offer: (x) => {
          const value = match(x);
          if (value === undefined) return false;
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(value);
          return true;
        },
        fail: (error) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          reject(new Error(`${error.message} (while waiting for ${what})`, { cause: error }));
        },
      };
      const timer = setTimeout(() => waiter.fail(new Error(`timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
      this.waiters.add(waiter);
    });
  }

  private onData(chunk: Buffer): void {
    if (this.failure !== undefined) return;
    try {
      for (const p of this.reader.push(chunk)) {
        let incoming: Incoming;
        if (p.type === PacketType.PUBLISH) {
          const publish = decodePublish(p);
          if (publish.packetId !== undefined) this.socket.write(encodePuback(publish.packetId));
          incoming = { kind: 'publish', publish };
        } else incoming = { kind: 'packet', packet: p };
        let taken = false;
        for (const w of this.waiters) {
          if (w.offer(incoming)) {
            taken = true;
            break;
          }
        }
        if (!taken) {
          if (this.backlog.length >= MAX_BACKLOG) throw new Error(`more than ${MAX_BACKLOG} MQTT packets nobody waits for (last: type ${p.type})`);
          this.backlog.push(incoming);
        }
      }
    } catch (error) {
      this.failAll(error instanceof Error ? error : new Error(String(error)));
      this.socket.destroy();
    }
  }

  /** Records the first failure (an Error, or a factory of one) and fails every pending wait with it. */
  private failAll(failure: Error | (() => Error)): void {
    this.failure ??= failure;
    if (this.waiters.size === 0) return;
    const error = this.failureError();
    for (const w of [...this.waiters]) w.fail(error);
  }

  /** The recorded failure as an Error, created on first use. */
  private failureError(): Error {
    const f = this.failure;
    if (f === undefined) return new Error('session failed');
    if (f instanceof Error) return f;
    const error = f();
    this.failure = error;
    return error;
  }
}

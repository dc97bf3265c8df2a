/**
 * A lean MQTT 3.1.1 client for the connect load (bench/mqtt-connect-load.ts): one cycle CONNECT → CONNACK → PUBLISH
 * QoS 1 → PUBACK → DISCONNECT over mutual TLS, with packets encoded by hand and incoming bytes parsed incrementally.
 *
 * Why: client and server share the 2 cores of the benchmark machine, so the load generator's own CPU shapes the
 * connect/handshake ratio. This client adds only a few writes and a byte parser to the very same TLS work as the raw
 * `node:tls` baseline client ({@link connectMutualTls}: same prebuilt context, same servername, full handshake), so
 * the MQTT side pays no client-library cost (streams, packet objects, store). Measured on the shared 2-core box
 * (bench/README-connect-fleet-jitp.md): about 0.75 ms more client CPU per connection than a bare handshake, mostly the
 * MQTT round trips themselves, and 0.2–0.55 ms less than MQTT.js, which stays available (`--client mqttjs`).
 *
 * Packet formats: MQTT 3.1.1 (OASIS, 2014) §2.2 fixed header and Remaining Length, §3.1 CONNECT, §3.2 CONNACK,
 * §3.3 PUBLISH, §3.4 PUBACK, §3.14 DISCONNECT.
 */
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import { connectMutualTls } from './support.ts';
import type { MutualTlsTarget } from './support.ts';

/** MQTT control packet types (MQTT 3.1.1 §2.2.1), the ones this client sends or expects. */
export const PacketType = { CONNECT: 1, CONNACK: 2, PUBLISH: 3, PUBACK: 4, DISCONNECT: 14 } as const;

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

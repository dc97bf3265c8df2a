/**
 * Where a tenant's aedes broker keeps its messages and sessions. By default in the process (aedes' own emitter and
 * memory persistence). When Gatehouse runs as several processes (`--workers N`, or several nodes), every process
 * has its own broker per tenant, and they must act as one: `mqemitter-redis` carries each PUBLISH to the
 * subscribers of every process (and aedes' `$SYS/<id>/new/clients` message, which closes an older connection
 * with the same client id wherever it is), and `aedes-persistence-redis` keeps retained messages, persistent
 * sessions and their queued messages where any process finds them.
 *
 * Names are scoped per installation and per tenant (`<namespace>:<tenant>`): topics never cross tenants and two
 * installations can share one Redis.
 */
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';

const require = createRequire(import.meta.url);

/** The message emitter of a broker (an mqemitter): what aedes calls. */
export interface BrokerEmitter {
  on(topic: string, listener: (packet: unknown, done: () => void) => void, callback?: () => void): unknown;
  removeListener(topic: string, listener: (packet: unknown, done: () => void) => void, callback?: () => void): unknown;
  emit(packet: { topic: string }, callback?: (error?: Error) => void): void;
  close(callback: () => void): void;
}

/**
 * aedes announces every disconnect and (un)subscription on `$SYS/<broker>/disconnect/clients`,
 * `…/new/subscribes` and `…/new/unsubscribes`. Nothing consumes them: devices may not subscribe to `$SYS` (the
 * gateway refuses it) and aedes itself only listens to heartbeats, births and `new/clients`. Across processes each
 * would cost a Redis round trip per event, so they stay local.
 */
const LOCAL_ONLY_SYS = /^\$SYS\/[^/]+\/(?:disconnect\/clients|new\/subscribes|new\/unsubscribes)$/;

/** Wraps a shared emitter so that the informational `$SYS` announcements above are not sent to the bus. */
function withoutInformationalSys(mq: BrokerEmitter): BrokerEmitter {
  return {
    on: (topic, listener, callback) => mq.on(topic, listener, callback),
    removeListener: (topic, listener, callback) => mq.removeListener(topic, listener, callback),
    emit(packet, callback) {
      if (LOCAL_ONLY_SYS.test(packet.topic)) {
        if (callback !== undefined) setImmediate(callback);
        return;
      }
      mq.emit(packet, callback);
    },
    close: (callback) => mq.close(callback),
  };
}

/** The session/retained-message persistence of a broker (an aedes-persistence), as far as Gatehouse calls it. */
export interface BrokerPersistence {
  destroy(): unknown;
}

/** What `DeviceGatewayOptions.brokerBackend` returns for a tenant: aedes' `mq` and `persistence` options. */
export interface BrokerBackend {
  readonly mq: BrokerEmitter;
  readonly persistence: BrokerPersistence;
}

/** Makes the backend of one tenant's broker. */
export type BrokerBackendFactory = (tenantId: string) => BrokerBackend;

/**
 * mqemitter-redis turns a filter with MQTT wildcards into a Redis PSUBSCRIBE pattern by replacing `+` and `#` with
 * `*`, but leaves Redis' own glob characters (`*`, `?`, `[`, `]` and backslash, all legal in MQTT topics) as they are:
 * a filter such as `sensors/+/[1]` became a pattern whose `[1]` is a character class: it matched `sensors/a/1` and not
 * `sensors/a/[1]`, so a subscriber missed messages published on another process. Escaping them makes the pattern
 * match at least every topic the filter matches (each process then matches MQTT filters exactly itself). Exact topics
 * use SUBSCRIBE, where the channel name is literal, and are left alone.
 */
function withLiteralGlobCharacters<T extends object>(emitter: T): T {
  const e = emitter as T & { _subTopic?: (topic: string) => string };
  const toPattern = e._subTopic;
  if (typeof toPattern !== 'function') throw new Error('mqemitter-redis no longer has _subTopic: check the glob escaping of broker-backend.ts');
  e._subTopic = (topic: string): string => (topic.includes('+') || topic.includes('#') ? toPattern.call(emitter, topic.replace(/[\\*?[\]]/g, '\\$&')) : topic);
  return emitter;
}

type MqEmitterRedisPrefixCtor = new (prefix: string, options: { subConn: Redis; pubConn: Redis }) => BrokerEmitter;
type RedisPersistenceFactory = (options: { conn: Redis }) => BrokerBackend['persistence'];

/**
 * The Redis backend: `namespace` identifies the installation (several processes of one installation use the same
 * one). Each tenant's broker gets three Redis connections (publish, subscribe, persistence).
 */
export function redisBrokerBackend(url: string, namespace: string): BrokerBackendFactory {
  // Both packages are CommonJS without an ESM entry; the prefixed emitter is exported but not typed.
  const { MQEmitterRedisPrefix } = require('mqemitter-redis') as { MQEmitterRedisPrefix: MqEmitterRedisPrefixCtor };
  const persistence = require('aedes-persistence-redis') as RedisPersistenceFactory;
  // The emitter's own connections, made here rather than by mqemitter-redis, for one option: ioredis 5.8.2 and later
  // send their CLIENT SETINFO handshake after the commands queued while connecting. A SUBSCRIBE queued that way (the
  // emitter subscribes at once) put the connection in subscriber mode before ioredis's ready check (INFO), which then
  // threw "Connection in subscriber mode" as an uncaught exception (redis/ioredis#2037, fixed in ioredis 6; seen in 2 of
  // 25 runs of broker-backend.test.ts). Without that handshake the order is right. Auto-pipelining as mqemitter-redis sets it.
  const emitterConnection = (): Redis => new Redis(url, { disableClientInfo: true, enableAutoPipelining: true });
  return (tenantId) => {
    const scope = `${namespace}:${tenantId}`;
    return {
      // Topic prefix ends with '/': wildcards of device filters stay within the tenant's tree.
      mq: withoutInformationalSys(withLiteralGlobCharacters(new MQEmitterRedisPrefix(`${scope}/`, { subConn: emitterConnection(), pubConn: emitterConnection() }))),
      persistence: persistence({ conn: new Redis(url, { keyPrefix: `${scope}:`, enableAutoPipelining: true }) }),
    };
  };
}

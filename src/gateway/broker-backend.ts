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

/** The message emitter of a broker (an mqemitter), as far as Gatehouse calls it itself. */
export interface BrokerEmitter {
  close(callback: () => void): void;
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

type MqEmitterRedisPrefixCtor = new (prefix: string, options: { connectionString: string }) => BrokerBackend['mq'];
type RedisPersistenceFactory = (options: { conn: Redis }) => BrokerBackend['persistence'];

/**
 * The Redis backend: `namespace` identifies the installation (several processes of one installation use the same
 * one). Each tenant's broker gets three Redis connections (publish, subscribe, persistence).
 */
export function redisBrokerBackend(url: string, namespace: string): BrokerBackendFactory {
  // Both packages are CommonJS without an ESM entry; the prefixed emitter is exported but not typed.
  const { MQEmitterRedisPrefix } = require('mqemitter-redis') as { MQEmitterRedisPrefix: MqEmitterRedisPrefixCtor };
  const persistence = require('aedes-persistence-redis') as RedisPersistenceFactory;
  return (tenantId) => {
    const scope = `${namespace}:${tenantId}`;
    return {
      // Topic prefix ends with '/': wildcards of device filters stay within the tenant's tree.
      mq: new MQEmitterRedisPrefix(`${scope}/`, { connectionString: url }),
      persistence: persistence({ conn: new Redis(url, { keyPrefix: `${scope}:`, enableAutoPipelining: true }) }),
    };
  };
}

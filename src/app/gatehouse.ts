import { createHash } from 'node:crypto';
import { writeFileSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { Registry as MetricsRegistry, collectDefaultMetrics } from 'prom-client';
import { buildApiServer } from '../api/index.ts';
import type { GatehouseConfig } from '../config/index.ts';
import { InProcessEventBus, RedisChannel, RedisTokenBuckets } from '../events/index.ts';
import { DeviceGateway, FleetProvisioningRouter, redisBrokerBackend } from '../gateway/index.ts';
import type { BrokerBackendFactory } from '../gateway/index.ts';
import { bridgeChanges } from './cluster-bridge.ts';
import { workerClusterMetrics } from './cluster-metrics.ts';
import type { ChangeMessage } from './cluster-bridge.ts';
import { createAutoRegistrationHandler, createProvisioningEventSink, startWebhooks } from './device-wiring.ts';
import * as pki from '../pki/index.ts';
import { CertificateAuthorityService, ControlPlane, bootstrapInstallation, resealBulkPrivateKeys, tenantServerIdentity } from '../provisioning/index.ts';
import type { InstallationMaterial, ServerIdentity } from '../provisioning/index.ts';
import * as registry from '../registry/index.ts';
import { openStore } from '../store/index.ts';
import type { Store } from '../store/index.ts';
import { DATA_FILES, lockDataDir, readOrCreateKekFile, writeSecretFile } from './data-dir.ts';
import { AppErrors } from './errors.ts';

/** A running Gatehouse process. */
export interface RunningGatehouse {
  readonly config: GatehouseConfig;
  readonly store: Store;
  readonly controlPlane: ControlPlane;
  readonly material: InstallationMaterial;
  /** Actual bound ports (differ from the config when it asked for port 0). */
  readonly ports: { readonly api: number; readonly mqtt: number };
  readonly apiUrl: string;
  /** Stops accepting, lets in-flight requests finish, closes the database, releases the lock. */
  stop(): Promise<void>;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** How this process takes part in the installation. */
export interface StartOptions {
  /**
   * `single` (default): the one process — it takes the data-dir lock, initialises the installation and writes
   * `server.json`. `worker`: one of the `--workers` processes forked by `startCluster`; the primary holds the lock,
   * initialised the installation before forking, and writes `server.json` once every worker is ready.
   */
  readonly role?: 'single' | 'worker';
  /** Runs the periodic housekeeping (fleet sweeper); one worker does it (default true). */
  readonly housekeeping?: boolean;
}

/** The bus namespace of an installation: every process and node of it derives the same one from its root CA. */
export function busNamespaceOf(rootCaPem: string): string {
  return `gatehouse:${createHash('sha256').update(rootCaPem.trim()).digest('hex').slice(0, 16)}`;
}

/**
 * The composition root: the only place that builds dependencies (config → data dir → store → key store → CA
 * service → control plane → listeners) and wires them. Nothing else creates a database, logger or key store.
 */
export async function startGatehouse(config: GatehouseConfig, logger: Logger, options: StartOptions = {}): Promise<RunningGatehouse> {
  const role = options.role ?? 'single';
  const cleanups: Cleanups = [];
  if (role === 'single') cleanups.push(lockDataDir(config.dataDir));
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (error) {
        logger.warn({ err: error }, 'cleanup step failed');
      }
    }
  };
  try {
    const { store, controlPlane, material, tenantIdentity } = await openCore(config, logger, cleanups, role);

    const metrics = new MetricsRegistry();
    collectDefaultMetrics({ register: metrics, prefix: 'gatehouse_process_' });
    let health: 'starting' | 'ready' | 'stopping' = 'starting';
    const ports = { api: config.apiPort, mqtt: config.mqttPort };
    const api = await buildApiServer({
      config, store, logger, metrics, controlPlane,
      installationMetrics: role === 'worker' ? workerClusterMetrics(metrics) : undefined,
      health: () => health,
      deviceEndpoint: () => ({ mqttPort: ports.mqtt, rootCaPem: material.rootCaPem }),
    });
    cleanups.push(() => api.close());
    try {
      await api.listen({ host: config.host, port: config.apiPort });
    } catch (cause) {
      throw AppErrors.error('APP_LISTEN_FAILED', `cannot listen on ${config.host}:${config.apiPort}: ${(cause as Error).message}`, { cause });
    }
    const address = api.server.address();
    if (typeof address === 'object' && address !== null) ports.api = address.port;
    const apiUrl = `http://${urlHost(config.host)}:${ports.api}`;

    // ---- the bus shared with the other processes of the installation (workers, nodes) ----
    let brokerBackend: BrokerBackendFactory | undefined;
    if (config.busUrl !== undefined) {
      const namespace = busNamespaceOf(material.rootCaPem);
      const channel = await RedisChannel.open<ChangeMessage>({
        url: config.busUrl,
        channel: `${namespace}:changes`,
        onError: (error) => logger.warn({ err: error }, 'bus connection error (Redis reconnects by itself)'),
      });
      cleanups.push(() => channel.close());
      cleanups.push(bridgeChanges(controlPlane, channel, logger));
      brokerBackend = redisBrokerBackend(config.busUrl, namespace);
      // Per-claim rate limits count for the installation, not per process.
      const buckets = await RedisTokenBuckets.open(config.busUrl, (error) => logger.warn({ err: error }, 'rate-limit connection error'));
      cleanups.push(() => buckets.close());
      const bucketKey = (tenantId: string, claimId: string, operation: string): string => `${namespace}:claim-rate:${tenantId}:${claimId}:${operation}`;
      controlPlane.fleet.useRateLimit({
        take: (tenantId, claimId, operation, perMinute) => buckets.take(bucketKey(tenantId, claimId, operation), perMinute),
        giveBack: (tenantId, claimId, operation, perMinute) => {
          buckets.giveBack(bucketKey(tenantId, claimId, operation), perMinute).catch((error: unknown) => logger.warn({ err: error }, 'rate-limit give-back failed'));
        },
      });
      logger.info({ namespace }, 'sharing MQTT delivery, sessions and change notifications over the Redis bus');
    }

    // ---- device gateway: MQTT over mutual TLS, events, webhooks, JITP/JITR, fleet provisioning API ----
    const events = new InProcessEventBus({ onHandlerError: (error) => logger.warn({ err: error }, 'event handler failed') });
    const provisioningEvents = createProvisioningEventSink(events, metrics);
    controlPlane.setEventSink(provisioningEvents);
    cleanups.push(await startWebhooks(store, events, controlPlane, logger));
    const gateway = await DeviceGateway.create({
      unknownCertificateHandler: createAutoRegistrationHandler(store, provisioningEvents, controlPlane, logger.child({ module: 'auto-registration' })),
      deviceApis: [new FleetProvisioningRouter(controlPlane.fleet, (error) => logger.error({ err: error, module: 'fleet' }, 'a fleet-provisioning request failed unexpectedly (the device got InternalFailure)'))],
      store,
      logger: logger.child({ module: 'gateway' }),
      metrics,
      serverCertificateChainPem: material.serverCertificateChainPem,
      serverKeyPem: material.serverKeyPem,
      rootCaPem: material.rootCaPem,
      domain: config.domain,
      tenantServerIdentity: tenantIdentity,
      limits: config.mqttLimits,
      events,
      brokerBackend,
    });
    cleanups.push(() => gateway.close());
    controlPlane.addListener(gateway);
    try {
      ports.mqtt = await gateway.listen({ host: config.host, port: config.mqttPort });
    } catch (cause) {
      throw AppErrors.error('APP_LISTEN_FAILED', `cannot listen on ${config.host}:${config.mqttPort}: ${(cause as Error).message}`, { cause });
    }
    // Certificates created by the fleet API and never registered are deleted after their token's life.
    const sweeper = options.housekeeping === false ? undefined : setInterval(() => {
      controlPlane.fleet.sweepUnregistered().then(
        (n) => { if (n > 0) logger.info({ deleted: n }, 'swept unregistered fleet certificates'); },
        (error: unknown) => logger.warn({ err: error }, 'fleet sweeper failed'),
      );
    }, 5 * 60_000);
    sweeper?.unref();
    cleanups.push(() => clearInterval(sweeper));
    // ---- end device gateway ----
    if (role === 'single') {
      const serverFile = path.join(config.dataDir, DATA_FILES.server);
      writeFileSync(serverFile, JSON.stringify({ pid: process.pid, apiUrl, ports }, null, 2));
      cleanups.push(() => unlinkSync(serverFile));
    }
    health = 'ready';
    logger.info({ apiUrl, ports }, 'gatehouse ready');
    let stopping: Promise<void> | undefined;
    return {
      config,
      store,
      controlPlane,
      material,
      ports,
      apiUrl,
      stop() {
        stopping ??= (async () => {
          health = 'stopping';
          await cleanup();
          logger.info('gatehouse stopped');
        })();
        return stopping;
      },
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** Cleanup steps, run in reverse order. */
type Cleanups = (() => Promise<void> | void)[];

/**
 * Opens what every process of an installation needs: KEK, store (migrated), key store, CA service, control plane,
 * and the installation material (bootstrapped on first start: root CA, server certificate, admin token).
 */
async function openCore(config: GatehouseConfig, logger: Logger, cleanups: Cleanups, role: 'single' | 'worker' | 'primary'): Promise<{ store: Store; controlPlane: ControlPlane; material: InstallationMaterial; tenantIdentity: (tenantId: string) => Promise<ServerIdentity> }> {
  const kek = pki.parseKek(config.kek ?? readOrCreateKekFile(config.dataDir, pki.generateKek));
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  cleanups.push(() => store.close());
  logger.info({ dialect: store.dialect, dataDir: config.dataDir }, 'store ready');
  // Webhook and pre-provisioning hook secrets are stored sealed under the KEK (src/registry/secret-sealing.ts);
  // rows written before that are sealed now.
  registry.useSecretSealer({ seal: (label, secret) => pki.sealText(kek, secret, label), open: (label, stored) => pki.openSealedText(kek, stored, label), isSealed: pki.isSealedText });
  cleanups.push(() => registry.useSecretSealer(undefined));
  const resealed = await store.transaction((trx) => registry.resealLegacySecrets(trx));
  if (resealed > 0) logger.info({ secrets: resealed }, 'sealed the webhook secrets stored in clear by an earlier version');
  // So are the private keys bulk tasks generated (bulk_task_results); an earlier version kept them in clear.
  const resealedKeys = await store.transaction((trx) => resealBulkPrivateKeys(trx));
  if (resealedKeys > 0) logger.info({ keys: resealedKeys }, 'sealed the bulk task private keys stored in clear by an earlier version');

  let keyStore: pki.KeyStore;
  if (config.pkcs11 === undefined) {
    keyStore = new pki.EncryptedKeyStore({ kek, blobs: registry.createKeyBlobRepository(store.db) });
  } else {
    const p11 = pki.Pkcs11KeyStore.open(config.pkcs11);
    cleanups.push(() => p11.close());
    keyStore = p11;
    logger.info({ library: config.pkcs11.libraryPath, token: config.pkcs11.tokenLabel }, 'CA keys live in the PKCS#11 token');
  }
  const trust: { changed?: (tenantId: string) => void } = {};
  const cas = new CertificateAuthorityService({
    store,
    keyStore,
    publicUrl: config.publicUrl,
    onTrustChanged: (tenantId) => trust.changed?.(tenantId),
  });
  const controlPlane = new ControlPlane(store, cas);
  trust.changed = (tenantId) => controlPlane.notifyTrustChanged(tenantId);
  // Trust changes from this process or, replayed from the cluster bus, from another one.
  controlPlane.addListener({ trustChanged: () => cas.forgetIssuers(), crlStale: (caId) => cas.invalidateCrl(caId) });

  const material = await bootstrapInstallation({ store, cas, kek, domain: config.domain, adminToken: config.adminToken });
  if (role !== 'worker') writeFileSync(path.join(config.dataDir, DATA_FILES.rootCa), material.rootCaPem);
  if (material.createdAdminToken !== undefined) {
    writeSecretFile(path.join(config.dataDir, DATA_FILES.adminToken), `${material.createdAdminToken}\n`);
    process.stdout.write(
      `\nGatehouse initialised ${config.dataDir}\n  admin API token (shown once, also in ${path.join(config.dataDir, DATA_FILES.adminToken)}, mode 0600):\n  ${material.createdAdminToken}\n\n`,
    );
  }
  return { store, controlPlane, material, tenantIdentity: (tenantId) => tenantServerIdentity({ store, cas, kek }, tenantId) };
}

/**
 * What the primary of `--workers N` does before forking: takes the data-dir lock, migrates the database and
 * initialises the installation (so that workers never race to do it), then closes the store. Returns the lock's
 * release function and the installation's root CA.
 */
export async function prepareInstallation(config: GatehouseConfig, logger: Logger): Promise<{ release: () => void; rootCaPem: string }> {
  const release = lockDataDir(config.dataDir);
  const cleanups: Cleanups = [];
  try {
    const { material } = await openCore(config, logger, cleanups, 'primary');
    return { release, rootCaPem: material.rootCaPem };
  } catch (error) {
    release();
    throw error;
  } finally {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (error) {
        logger.warn({ err: error }, 'cleanup step failed');
      }
    }
  }
}

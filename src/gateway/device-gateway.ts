/**
 * The device gateway (issue 4): MQTT 3.1.1 over mutual TLS, one aedes broker per tenant (topics, client ids,
 * retained messages and sessions never cross tenants), authentication by certificate at CONNECT, authorization by
 * IoT policy on CONNECT / PUBLISH / SUBSCRIBE / every delivery, limits, and presence events.
 *
 * It is a `ChangeListener` of the control plane: a trust change rebuilds the tenant's TLS trust store, a policy or
 * certificate change re-evaluates live connections at once (a certificate that is no longer ACTIVE, or whose CA is
 * no longer ACTIVE, has its connections closed).
 */
import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { Aedes } from 'aedes';
import type { AedesPublishPacket, AuthenticateError, Client, PublishPacket, Subscription } from 'aedes';
import type { BrokerBackendFactory } from './broker-backend.ts';
import type { Logger } from 'pino';
import type { CertificateCaFacts } from '../registry/index.ts';
import { Counter, Gauge } from 'prom-client';
import type { Registry as MetricsRegistry } from 'prom-client';
import { payloadOfEvent, topicOfEvent } from '../events/index.ts';
import type { DisconnectReason, EventBus, LifecycleEvent } from '../events/index.ts';
import type { ChangeListener } from '../provisioning/index.ts';
import type { Store } from '../store/index.ts';
import type { PolicyCertificate } from '../policy/index.ts';
import { CONNACK_CODE_OF_REFUSAL, CertificateAuthenticator } from './authenticator.ts';
import type { CertificateFacts, RefusalReason, UnknownCertificateHandler } from './authenticator.ts';
import { ConnectCache } from './connect-cache.ts';
import type { DeviceApiRouter } from './fleet-provisioning-router.ts';
import { DeviceTlsListener } from './device-tls.ts';
import type { PeerIdentity, TenantServerIdentity } from './device-tls.ts';
import { DEFAULT_GATEWAY_LIMITS, PacketSizeGuard, checkTopicLimits } from './gateway-limits.ts';
import type { GatewayLimits } from './gateway-limits.ts';
import { PolicyEnforcer, policyCertificateOf } from './policy-enforcer.ts';
import type { ConnectionPolicy, PrincipalPolicies } from './policy-enforcer.ts';

/** Options of {@link DeviceGateway.create}. */
export interface DeviceGatewayOptions {
  readonly store: Store;
  readonly logger: Logger;
  /** The process metrics registry (`/metrics`). */
  readonly metrics: MetricsRegistry;
  /** Server certificate followed by its issuing chain, PEM. */
  readonly serverCertificateChainPem: string;
  readonly serverKeyPem: string;
  /** The installation root CA PEM (trusted by the default tenant). */
  readonly rootCaPem: string;
  /** Domain of tenant endpoints `<tenant>.<domain>`. */
  readonly domain: string;
  /** The server certificate of each tenant other than the default (see `DeviceTlsListenerOptions.tenantServerIdentity`). */
  readonly tenantServerIdentity?: TenantServerIdentity | undefined;
  /** Overrides of {@link DEFAULT_GATEWAY_LIMITS}. */
  readonly limits?: Partial<GatewayLimits> | undefined;
  /** Region written in resource ARNs (see `policy-enforcer.ts`). */
  readonly region?: string | undefined;
  /** Where presence events go (and come back from, to be published on the tenant's broker). */
  readonly events?: EventBus | undefined;
  /** JITP / JITR / claim extension point; without it unknown certificates are refused. */
  readonly unknownCertificateHandler?: UnknownCertificateHandler | undefined;
  /** Request/response APIs the gateway serves itself (fleet provisioning); answers go to the asker only. */
  readonly deviceApis?: readonly DeviceApiRouter[] | undefined;
  /** Told when a device-API handler fails unexpectedly (it already answered nothing; log or count it). */
  readonly onDeviceApiError?: ((error: unknown) => void) | undefined;
  /**
   * How long the registry facts of an admitted certificate (record, CA status, policies, thing) are reused by
   * later connections without a query (default 30 000 ms; 0 = read on every connect). Changes made through the
   * control plane invalidate them at once; see `connect-cache.ts`.
   */
  readonly connectCacheTtlMs?: number | undefined;
  /**
   * Shared message/session backend of the tenant brokers (see `broker-backend.ts`) when several processes serve
   * the installation; none: in-process. With one, lifecycle events are published even by a process that has no
   * device of the tenant (the subscribers may be connected to another process).
   */
  readonly brokerBackend?: BrokerBackendFactory | undefined;
}

/** The policies of a certificate together with the certificate fields that policy variables read. */
interface PrincipalFacts {
  readonly principal: PrincipalPolicies;
  /** Absent when no policy of the principal reads a certificate field (see PrincipalPolicies.readsCertificate). */
  readonly certificate: PolicyCertificate | undefined;
}

/** The longest delay a Node timer holds (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Why the gateway itself closed a connection (label of `gatehouse_mqtt_enforcement_disconnects_total`). */
export type EnforcementReason =
  | 'certificate_no_longer_active'
  | 'connect_no_longer_allowed'
  | 'publish_denied'
  | 'publish_reserved_topic'
  | 'topic_limit'
  | 'subscription_limit'
  | 'packet_too_large'
  | 'retained_limit';

/** State of one authenticated connection. */
interface Connection {
  readonly client: Client;
  readonly tenantId: string;
  readonly certificateId: string;
  readonly clientId: string;
  readonly identity: PeerIdentity;
  readonly sessionIdentifier: string;
  policy: ConnectionPolicy;
  readonly subscriptions: Set<string>;
  disconnectReason: DisconnectReason | undefined;
  /** True once the `connected` presence event is out (it always precedes `disconnected`). */
  announced?: boolean;
  /** Closed by the gateway because its certificate or iot:Connect no longer holds: its will is not published. */
  revoked?: boolean;
}

/**
 * Topics devices may never publish on, whatever their policy: lifecycle events are the gateway's, and aedes acts on
 * `$SYS/<broker>/new/clients` messages (it closes the named client), so a device must not be able to forge them.
 */
const RESERVED_PUBLISH_PREFIXES = ['$aws/events/', '$SYS/'] as const;
/**
 * The answer topics of the `$aws/…` request/response APIs (`…/accepted`, `…/rejected`): only the service publishes
 * there, as in AWS IoT. A device that could publish on them (a claim's policy grants `$aws/certificates/create/*`)
 * would forge answers to other devices listening on the same topics, and hand them its own certificate and key.
 */
const RESERVED_ANSWER_TOPIC = /^\$aws\/.+\/(?:accepted|rejected)$/;
/** Filters devices may never subscribe to: the broker's internal `$SYS` tree (client ids of the tenant). */
const RESERVED_SUBSCRIBE_PREFIX = '$SYS';

/** aedes' announcements of connections and (un)subscriptions (see {@link DeviceGateway.publishesNothingReads}). */
const ANNOUNCEMENT = /^\$SYS\/[^/]+\/(?:new\/clients|disconnect\/clients|new\/subscribes|new\/unsubscribes)$/;

function connKey(tenantId: string, certificateId: string): string {
  return `${tenantId}\u0000${certificateId}`;
}

function refusalError(reason: RefusalReason, detail: string): AuthenticateError {
  const code = CONNACK_CODE_OF_REFUSAL[reason];
  return Object.assign(new Error(`${reason}: ${detail}`), { returnCode: code });
}

/** The MQTT-over-mTLS device endpoint. Build with {@link DeviceGateway.create}, then {@link listen}. */
export class DeviceGateway implements ChangeListener {
  private readonly o: DeviceGatewayOptions;
  private readonly limits: GatewayLimits;
  private readonly log: Logger;
  private readonly tls: DeviceTlsListener;
  private readonly authenticator: CertificateAuthenticator;
  private readonly enforcer: PolicyEnforcer;
  private readonly certificateFacts: ConnectCache<CertificateFacts>;
  /** Status and mode of each CA by tenant and id (its registration there, else the owned CA), for certificates whose facts are not cached yet (e.g. just provisioned). */
  private readonly caStatuses: ConnectCache<CertificateCaFacts | undefined>;
  /** The certificate whose persistent session each tenant client id holds (see preConnect). In memory, per process. */
  private readonly sessionOwners = new Map<string, string>();
  /** Bytes of retained messages per tenant, by topic (see keepRetained). */
  private readonly retained = new Map<string, { bytes: number; sizes: Map<string, number> }>();
  /** The notAfter (ms) of each authenticated connection's certificate, for {@link closeAtExpiry}. */
  private readonly notAfters = new WeakMap<Client, number>();
  /** Connections whose CONNECT had an empty client id with clean session 0, refused at authentication. */
  private readonly emptyPersistentIds = new WeakSet<Client>();
  private readonly principalFacts: ConnectCache<PrincipalFacts>;
  private readonly brokers = new Map<string, Promise<Aedes>>();
  private readonly identities = new WeakMap<Duplex, PeerIdentity>();
  private readonly connections = new WeakMap<Client, Connection>();
  /** Live connections by tenant + certificate. */
  private readonly byCertificate = new Map<string, Set<Connection>>();
  /** Live connections by tenant. */
  private readonly byTenant = new Map<string, Set<Connection>>();
  /** Live connection per tenant + client id (to name the reason when a second connection takes over). */
  private readonly byClientId = new Map<string, Connection>();
  /**
   * Certificates with a live connection or an authentication in progress: `version` is bumped by every
   * certificateChanged, so that an authentication racing a change is redone. Entries go with their last holder.
   */
  private readonly watches = new Map<string, { version: number; holders: number }>();
  /** Bumped by policiesChanged / trustChanged of a tenant: an authentication that read older state is redone. */
  private readonly tenantGenerations = new Map<string, number>();
  private readonly refusals: Counter<'reason'>;
  private readonly enforcements: Counter<'reason'>;
  private readonly unsubscribeEvents: (() => void) | undefined;
  private closed = false;

  private constructor(options: DeviceGatewayOptions, tlsListener: DeviceTlsListener) {
    this.o = options;
    this.limits = { ...DEFAULT_GATEWAY_LIMITS, ...(options.limits ?? {}) };
    this.log = options.logger;
    this.certificateFacts = new ConnectCache({ ttlMs: options.connectCacheTtlMs });
    this.caStatuses = new ConnectCache({ ttlMs: options.connectCacheTtlMs, maxEntries: 10_000 });
    this.principalFacts = new ConnectCache({ ttlMs: options.connectCacheTtlMs });
    this.authenticator = new CertificateAuthenticator({
      store: options.store,
      unknownCertificateHandler: options.unknownCertificateHandler,
      maxClientIdLength: this.limits.maxClientIdLength,
      cache: this.certificateFacts,
      caStatusCache: this.caStatuses,
    });
    this.enforcer = new PolicyEnforcer({ store: options.store, logger: options.logger, region: options.region });
    this.refusals = new Counter({
      name: 'gatehouse_mqtt_connect_refusals_total',
      help: 'Device connections refused by the gateway (TLS or MQTT CONNECT), by reason.',
      labelNames: ['reason'],
      registers: [options.metrics],
    });
    this.enforcements = new Counter({
      name: 'gatehouse_mqtt_enforcement_disconnects_total',
      help: 'Live device connections closed by the gateway (policy, revocation, limits), by reason.',
      labelNames: ['reason'],
      registers: [options.metrics],
    });
    const byTenant = this.byTenant;
    new Gauge({
      name: 'gatehouse_mqtt_connections',
      help: 'Authenticated device MQTT connections.',
      registers: [options.metrics],
      collect() {
        let n = 0;
        for (const set of byTenant.values()) n += set.size;
        this.set(n);
      },
    });
    this.tls = tlsListener;
    this.unsubscribeEvents = options.events?.subscribe((event) => this.deliverEvent(event));
  }

  /** Builds the gateway: loads tenants and trust stores. Does not listen yet. */
  static async create(options: DeviceGatewayOptions): Promise<DeviceGateway> {
    const limits = { ...DEFAULT_GATEWAY_LIMITS, ...(options.limits ?? {}) };
    const ref: { gateway?: DeviceGateway } = {};
    const tlsListener = await DeviceTlsListener.create({
      store: options.store,
      logger: options.logger,
      serverCertificateChainPem: options.serverCertificateChainPem,
      serverKeyPem: options.serverKeyPem,
      rootCaPem: options.rootCaPem,
      domain: options.domain,
      tenantServerIdentity: options.tenantServerIdentity,
      limits,
      onConnection: (socket, identity) => ref.gateway?.accept(socket, identity),
      onRefusal: (reason) => ref.gateway?.refusals.inc({ reason }),
    });
    ref.gateway = new DeviceGateway(options, tlsListener);
    return ref.gateway;
  }

  /** Listens on `host:port` (0 = ephemeral) and returns the bound port. */
  listen(options: { host: string; port: number }): Promise<number> {
    return this.tls.listen(options.host, options.port);
  }

  /** Stops the listener, closes every broker and connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribeEvents?.();
    await this.tls.close();
    const brokers = await Promise.allSettled(this.brokers.values());
    await Promise.all(
      brokers.map((b) => (b.status === 'fulfilled' ? new Promise<void>((resolve) => b.value.close(() => resolve())) : Promise.resolve())),
    );
  }

  // ---- ChangeListener ----

  /** A certificate's status or attachments changed: re-check it and its live connections now. */
  certificateChanged(tenantId: string, certificateId: string): void {
    this.certificateFacts.invalidate(tenantId, certificateId);
    this.principalFacts.invalidate(tenantId, certificateId);
    const key = connKey(tenantId, certificateId);
    const watch = this.watches.get(key);
    if (watch !== undefined) watch.version++;
    const live = this.byCertificate.get(key);
    if (live === undefined || live.size === 0) return;
    void this.recheckCertificate(tenantId, certificateId, [...live]);
  }

  /** Policies or group attachments of a tenant changed: recompute the policies of its live connections. */
  policiesChanged(tenantId: string): void {
    this.principalFacts.invalidateTenant(tenantId);
    this.bumpTenant(tenantId);
    const live = this.byTenant.get(tenantId);
    if (live === undefined || live.size === 0) return;
    const byCert = new Map<string, Connection[]>();
    for (const c of live) {
      const list = byCert.get(c.certificateId) ?? [];
      list.push(c);
      byCert.set(c.certificateId, list);
    }
    for (const [certificateId, conns] of byCert) void this.refreshPolicies(tenantId, certificateId, conns);
  }

  /** The trusted CAs of a tenant changed: rebuild its trust store, and re-check its live connections (CA status). */
  trustChanged(tenantId: string): void {
    // A CA may issue certificates of other tenants (the installation root): forget every CA status.
    this.certificateFacts.clear();
    this.caStatuses.clear();
    this.bumpTenant(tenantId);
    this.tls.rebuildTrust(tenantId).catch((error: unknown) => this.log.error({ err: error, tenantId }, 'trust store rebuild failed'));
    const live = this.byTenant.get(tenantId);
    if (live === undefined) return;
    const byCert = new Map<string, Connection[]>();
    for (const c of live) byCert.set(c.certificateId, [...(byCert.get(c.certificateId) ?? []), c]);
    for (const [certificateId, conns] of byCert) void this.recheckCertificate(tenantId, certificateId, conns);
  }

  private bumpTenant(tenantId: string): void {
    this.tenantGenerations.set(tenantId, (this.tenantGenerations.get(tenantId) ?? 0) + 1);
  }

  /** A tenant was created: learn its endpoint. */
  tenantsChanged(): void {
    this.tls.reloadTenants().catch((error: unknown) => this.log.error({ err: error }, 'tenant reload failed'));
  }

  // ---- connections ----

  private accept(socket: tls.TLSSocket, identity: PeerIdentity): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.identities.set(socket, identity);
    this.brokerOf(identity.tenantId).then(
      (broker) => {
        if (socket.destroyed) return;
        broker.handle(socket);
        // Observe what aedes reads (after it attached its 'readable' listener, so this adds no flowing mode).
        const guard = new PacketSizeGuard(this.limits.maxPacketSize);
        const onData = (chunk: Buffer): void => {
          const problem = guard.feed(chunk);
          if (problem === undefined) return;
          socket.off('data', onData);
          this.log.warn({ tenantId: identity.tenantId, certificateId: identity.certificateId, problem }, 'device disconnected: packet too large');
          this.enforcements.inc({ reason: 'packet_too_large' });
          socket.destroy();
        };
        socket.on('data', onData);
      },
      (error: unknown) => {
        this.log.error({ err: error, tenantId: identity.tenantId }, 'cannot create the tenant broker');
        socket.destroy();
      },
    );
  }

  private brokerOf(tenantId: string): Promise<Aedes> {
    let broker = this.brokers.get(tenantId);
    if (broker === undefined) {
      broker = this.createBroker(tenantId);
      this.brokers.set(tenantId, broker);
      broker.catch(() => this.brokers.delete(tenantId));
    }
    return broker;
  }

  private async createBroker(tenantId: string): Promise<Aedes> {
    const backend = this.o.brokerBackend?.(tenantId);
    let broker: Aedes;
    try {
      broker = await this.newBroker(tenantId, backend);
    } catch (error) {
      backend?.mq.close(() => undefined);
      if (backend !== undefined) void Promise.resolve(backend.persistence.destroy()).catch(() => undefined);
      throw error;
    }
    return broker;
  }

  private async newBroker(tenantId: string, backend: ReturnType<BrokerBackendFactory> | undefined): Promise<Aedes> {
    const broker = await Aedes.createBroker({
      // Unique per process when brokers of several processes share a backend (aedes closes an older connection
      // with the same client id only when the announcement comes from another broker id).
      id: backend === undefined ? `gatehouse-${tenantId}` : `gatehouse-${tenantId}-${process.pid}-${randomUUID().slice(0, 8)}`,
      ...(backend === undefined ? {} : { mq: backend.mq, persistence: backend.persistence }),
      connectTimeout: this.limits.connectTimeoutMs,
      maxClientsIdLength: this.limits.maxClientIdLength,
      maxTopicLevels: this.limits.maxTopicLevels,
      maxInflightInbound: this.limits.maxInflightInbound,
      preConnect: (client, packet, done) => {
        this.preConnect(client, packet);
        done(null, true);
      },
      authenticate: (client, _username, _password, done) => {
        this.authenticate(client).then(
          (error) => done(error, error === null),
          (error: unknown) => done(refusalError('internal_error', String(error)), false),
        );
      },
      authorizePublish: (client, packet, callback) => callback(this.authorizePublish(client, packet)),
      authorizeSubscribe: (client, subscription, callback) => {
        const r = this.authorizeSubscribe(client, subscription);
        if (r instanceof Error) callback(r);
        else callback(null, r);
      },
      authorizeForward: (client, packet) => this.authorizeForward(client, packet),
    });
    // `connected` goes out when the CONNACK is written: aedes' 'clientReady' comes only after the session's offline
    // queue is flushed, which a fast client can outlive (it saw CONNACK and already disconnected).
    broker.on('connackSent', (packet, client) => {
      if (packet.returnCode === 0) this.onClientReady(client);
    });
    broker.on('clientReady', (client) => this.onClientReady(client));
    broker.on('clientDisconnect', (client) => this.onClientDisconnect(client));
    broker.on('keepaliveTimeout', (client) => {
      const c = this.connections.get(client);
      if (c !== undefined) c.disconnectReason ??= 'MQTT_KEEP_ALIVE_TIMEOUT';
    });
    broker.on('clientError', (client, error) => {
      const c = this.connections.get(client);
      if (c !== undefined) c.disconnectReason ??= 'CLIENT_ERROR';
      this.log.debug({ err: error, clientId: client.id, tenantId }, 'device client error');
    });
    broker.on('connectionError', (_client, error) => this.log.debug({ err: error, tenantId }, 'device connection error before CONNECT'));
    // aedes reports background failures (will clean-up) as 'error' events: never let one crash the process.
    const emitter: EventEmitter = broker;
    emitter.on('error', (error: unknown) => this.log.error({ err: error, tenantId }, 'device broker error'));
    broker.on('unsubscribe', (topics, client) => {
      const c = this.connections.get(client);
      if (c !== undefined) for (const t of topics) c.subscriptions.delete(t);
    });
    this.publishesNothingReads(broker, backend !== undefined);
    return broker;
  }

  /**
   * Ends, before the broker routes them, the publishes nothing can read:
   * - device-API requests (`$aws/certificates/…`, `$aws/provisioning-templates/…`): the gateway serves them, and
   *   `authorizeForward` refuses them to every subscriber anyway;
   * - aedes' announcements of each connection, disconnection and (un)subscription on `$SYS/<broker>/…`: devices may
   *   not subscribe to `$SYS`. With a shared backend, `new/clients` still goes out: it tells the brokers of other
   *   processes to close an older connection with the same client id (the others never leave this process, see
   *   broker-backend.ts). Alone, the broker's own `new/clients` listener ignores its own announcements.
   * Each of them cost a routed publish (a packet object, a walk of the subscription trie, the listeners): four to six
   * per device provisioned by claim. aedes calls its own `publish` for all of them, so the instance's method is
   * wrapped; what passes goes through unchanged.
   */
  private publishesNothingReads(broker: Aedes, sharedBackend: boolean): void {
    const apis = this.o.deviceApis ?? [];
    // aedes' typings show `publish(packet, done)`; its handlers call `publish(packet, client, done)`.
    const route = broker.publish.bind(broker) as unknown as (packet: PublishPacket, client: Client | null, done: (error?: Error) => void) => void;
    const wrapped = (packet: PublishPacket, clientOrDone: Client | null | ((error?: Error) => void), maybeDone?: (error?: Error) => void): void => {
      const client = typeof clientOrDone === 'function' ? null : (clientOrDone ?? null);
      const done = (typeof clientOrDone === 'function' ? clientOrDone : maybeDone) ?? ((): void => undefined);
      const topic = packet.topic;
      const unread = client !== null
        ? apis.some((r) => r.handles(topic))
        : topic.startsWith('$SYS/') && ANNOUNCEMENT.test(topic) && !(sharedBackend && topic.endsWith('/new/clients'));
      if (unread) {
        process.nextTick(done);
        return;
      }
      route(packet, client, done);
    };
    Object.assign(broker, { publish: wrapped });
  }

  /**
   * Before aedes reads the CONNECT: a persistent session belongs to the certificate that made it. Another certificate
   * connecting with the same client id and clean session 0 gets a fresh session (session present 0) rather than the
   * other's subscriptions and queued messages. An empty client id with clean session 0 is marked for refusal
   * (MQTT-3.1.3-8: CONNACK 2; aedes would make up an id for a session nobody could resume).
   */
  private preConnect(client: Client, packet: { clientId: string; clean?: boolean | undefined }): void {
    if (packet.clean !== false) return;
    if (packet.clientId === '') {
      this.emptyPersistentIds.add(client);
      return;
    }
    const identity = this.identities.get(client.conn);
    if (identity === undefined) return;
    const owner = this.sessionOwners.get(connKey(identity.tenantId, packet.clientId));
    if (owner !== undefined && owner !== identity.certificateId) packet.clean = true;
  }

  /**
   * Closes a live connection when its certificate expires (a trusted-user claim after its 5 minutes, say), as a new
   * connection would be refused then. One timer per connection, cleared at close; validities beyond what a timer holds
   * (about 24 days) are checked again then.
   */
  private closeAtExpiry(conn: Connection): void {
    const notAfter = this.notAfters.get(conn.client);
    if (notAfter === undefined || !Number.isFinite(notAfter)) return;
    const arm = (): void => {
      const left = notAfter - Date.now();
      if (left <= 0) {
        this.enforce(conn, 'certificate_no_longer_active', 'AUTHORIZATION_FAILURE', `certificate expired at ${new Date(notAfter).toISOString()}`);
        return;
      }
      const timer = setTimeout(arm, Math.min(left + 1, MAX_TIMER_MS));
      timer.unref();
      conn.client.conn.once('close', () => clearTimeout(timer));
    };
    arm();
  }

  /** Returns null when the client may connect, else the refusal (already counted and logged). */
  private async authenticate(client: Client): Promise<AuthenticateError | null> {
    const identity = this.identities.get(client.conn);
    if (identity === undefined) return this.refuse('tls_unverified', 'no TLS identity for this connection', client, undefined);
    if (this.emptyPersistentIds.has(client)) return this.refuse('client_id_invalid', 'an empty client id needs clean session 1 (MQTT-3.1.3-8)', client, identity);
    const clientId = client.id;
    const key = connKey(identity.tenantId, identity.certificateId);
    const watch = this.watch(key);
    let kept = false;
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const version = watch.version;
        const generation = this.tenantGenerations.get(identity.tenantId) ?? 0;
        const result = await this.authenticateOnce(client, identity, clientId);
        if (result instanceof Error) return result;
        // A certificate, policy or trust change arrived while we were reading: read again (at most twice more; after
        // that, accept and re-check at once, since from now on changes reach this connection through the index).
        const stale = watch.version !== version || (this.tenantGenerations.get(identity.tenantId) ?? 0) !== generation;
        if (stale && attempt < 2) continue;
        if (client.closed || client.conn.destroyed) return refusalError('internal_error', 'connection closed during authentication');
        const conn: Connection = {
          client,
          tenantId: identity.tenantId,
          certificateId: identity.certificateId,
          clientId,
          identity,
          sessionIdentifier: randomUUID(),
          policy: result,
          subscriptions: new Set(),
          disconnectReason: undefined,
        };
        // aedes closes a previous connection with the same client id when this one registers.
        const previous = this.byClientId.get(connKey(conn.tenantId, clientId));
        if (previous !== undefined && previous.client !== client) previous.disconnectReason ??= 'DUPLICATE_CLIENTID';
        this.connections.set(client, conn);
        this.index(conn);
        kept = true;
        this.closeAtExpiry(conn);
        // who owns the persistent session of this client id now (a clean session ends any earlier one)
        if (client.clean) this.sessionOwners.delete(connKey(conn.tenantId, clientId));
        else this.sessionOwners.set(connKey(conn.tenantId, clientId), conn.certificateId);
        client.conn.once('close', () => this.unindex(conn));
        if (stale) void this.recheckCertificate(conn.tenantId, conn.certificateId, [conn]);
        return null;
      }
      return this.refuse('internal_error', 'unreachable', client, identity);
    } finally {
      if (!kept) this.unwatch(key);
    }
  }

  /** One pass of the checks: the connection's policy state, or the (counted) refusal. */
  private async authenticateOnce(client: Client, identity: PeerIdentity, clientId: string): Promise<ConnectionPolicy | AuthenticateError> {
    const auth = await this.authenticator.authenticate(identity, clientId);
    if (!auth.ok) return this.refuse(auth.reason, auth.detail, client, identity);
    this.notAfters.set(client, Date.parse(auth.certificate.notAfter));
    let facts: PrincipalFacts;
    try {
      facts = await this.principalOf(identity);
    } catch (error) {
      return this.refuse('internal_error', error instanceof Error ? error.message : String(error), client, identity);
    }
    const policy = this.enforcer.connectionPolicy(identity.tenantId, clientId, facts.principal, facts.certificate);
    if (!this.enforcer.canConnect(policy)) return this.refuse('connect_denied', `iot:Connect denied on client/${clientId}`, client, identity);
    // aedes holds the CONNECT's will in `_will` while authenticating
    const will = (client as unknown as { _will?: { topic?: unknown; retain?: unknown } | null })._will;
    if (will !== undefined && will !== null) {
      const problem = this.willProblem(policy, String(will.topic), will.retain === true);
      if (problem !== undefined) return this.refuse('will_denied', problem, client, identity);
    }
    return policy;
  }

  /**
   * Why a CONNECT's will could never be published, or undefined: checked at CONNECT as a PUBLISH would be (AWS does
   * the same), so a device learns at once, and a will cannot carry a wildcard, a reserved topic or a device-API request.
   */
  private willProblem(policy: ConnectionPolicy, topic: string, retain: boolean): string | undefined {
    if (/[#+\u0000]/.test(topic)) return `will topic ${JSON.stringify(topic)} holds a wildcard or U+0000`;
    const limit = checkTopicLimits(topic, this.limits);
    if (limit !== undefined) return `will topic: ${limit}`;
    if (RESERVED_PUBLISH_PREFIXES.some((p) => topic.startsWith(p)) || RESERVED_ANSWER_TOPIC.test(topic) || this.o.deviceApis?.some((r) => r.handles(topic)) === true) return `will topic ${topic} is reserved`;
    if (!this.enforcer.canPublish(policy, topic, retain)) return `${retain ? 'iot:Publish/iot:RetainPublish' : 'iot:Publish'} denied on the will topic/${topic}`;
    return undefined;
  }

  /** The effective policies and policy-variable certificate fields of a connection's certificate (cached). */
  private principalOf(identity: PeerIdentity): Promise<PrincipalFacts> {
    return this.principalFacts.get(identity.tenantId, identity.certificateId, async () => {
      const principal = await this.enforcer.loadPrincipal(identity.tenantId, identity.certificateId);
      // Certificate fields only for policies that read them (a policy change reloads these facts, from a live socket).
      if (!principal.readsCertificate) return { principal, certificate: undefined };
      // Parsed from the live socket; a socket closed meanwhile yields no certificate: fail this load (not cached).
      const peer = identity.peerCertificate;
      if ((peer as Partial<typeof peer>).raw === undefined) throw new Error('the connection closed before its certificate was read');
      return { principal, certificate: policyCertificateOf(peer) };
    });
  }

  private watch(key: string): { version: number; holders: number } {
    let w = this.watches.get(key);
    if (w === undefined) this.watches.set(key, (w = { version: 0, holders: 0 }));
    w.holders++;
    return w;
  }

  private unwatch(key: string): void {
    const w = this.watches.get(key);
    if (w === undefined) return;
    w.holders--;
    if (w.holders <= 0) this.watches.delete(key);
  }

  private refuse(reason: RefusalReason, detail: string, client: Client, identity: PeerIdentity | undefined): AuthenticateError {
    this.refusals.inc({ reason });
    this.log.info({ reason, detail, clientId: client.id, tenantId: identity?.tenantId, certificateId: identity?.certificateId }, 'device connection refused');
    return refusalError(reason, detail);
  }

  private index(conn: Connection): void {
    const key = connKey(conn.tenantId, conn.certificateId);
    let set = this.byCertificate.get(key);
    if (set === undefined) this.byCertificate.set(key, (set = new Set()));
    set.add(conn);
    let tenant = this.byTenant.get(conn.tenantId);
    if (tenant === undefined) this.byTenant.set(conn.tenantId, (tenant = new Set()));
    tenant.add(conn);
    this.byClientId.set(connKey(conn.tenantId, conn.clientId), conn);
  }

  private unindex(conn: Connection): void {
    const key = connKey(conn.tenantId, conn.certificateId);
    const set = this.byCertificate.get(key);
    set?.delete(conn);
    if (set?.size === 0) this.byCertificate.delete(key);
    this.unwatch(key);
    const idKey = connKey(conn.tenantId, conn.clientId);
    if (this.byClientId.get(idKey) === conn) this.byClientId.delete(idKey);
    const tenant = this.byTenant.get(conn.tenantId);
    tenant?.delete(conn);
    if (tenant?.size === 0) this.byTenant.delete(conn.tenantId);
  }

  private async recheckCertificate(tenantId: string, certificateId: string, conns: Connection[]): Promise<void> {
    const first = conns[0];
    if (first === undefined) return;
    const auth = await this.authenticator.authenticate(first.identity, first.clientId);
    if (!auth.ok) {
      for (const c of conns) this.enforce(c, 'certificate_no_longer_active', 'AUTHORIZATION_FAILURE', auth.detail);
      return;
    }
    await this.refreshPolicies(tenantId, certificateId, conns);
  }

  private async refreshPolicies(tenantId: string, certificateId: string, conns: Connection[]): Promise<void> {
    try {
      const first = conns.find((c) => !c.client.conn.destroyed) ?? conns[0];
      if (first === undefined) return;
      const facts = await this.principalOf(first.identity);
      for (const c of conns) {
        c.policy = this.enforcer.connectionPolicy(tenantId, c.clientId, facts.principal, facts.certificate);
        // A live connection keeps only what a new connection would get: losing iot:Connect (a policy detached or
        // edited, the thing that a ${iot:Connection.Thing.ThingName} resource named deleted) closes it.
        if (!this.enforcer.canConnect(c.policy)) {
          this.enforce(c, 'connect_no_longer_allowed', 'AUTHORIZATION_FAILURE', `iot:Connect no longer allowed on client/${c.clientId}`);
        }
      }
      this.log.debug({ tenantId, certificateId, connections: conns.length }, 'live connection policies refreshed');
    } catch (error) {
      this.log.error({ err: error, tenantId, certificateId }, 'cannot refresh policies of live connections; closing them');
      for (const c of conns) this.enforce(c, 'certificate_no_longer_active', 'SERVER_INITIATED_DISCONNECT', 'policy refresh failed');
    }
  }

  private enforce(conn: Connection, reason: EnforcementReason, disconnectReason: DisconnectReason, detail: string): void {
    if (conn.client.closed) return;
    conn.revoked = true;
    conn.disconnectReason ??= disconnectReason;
    this.enforcements.inc({ reason });
    this.log.info({ reason, detail, tenantId: conn.tenantId, clientId: conn.clientId, certificateId: conn.certificateId }, 'device disconnected by the gateway');
    conn.client.close();
  }

  // ---- authorization hooks ----

  private authorizePublish(client: Client | null, packet: PublishPacket): Error | null {
    if (client === null) return null; // the broker's own messages ($SYS, presence events)
    const conn = this.connections.get(client);
    if (conn === undefined) return new Error('not authenticated');
    const topic = packet.topic;
    // aedes publishes the will of a closed client through here: not for a certificate the gateway has just shut out
    // (revoked, deactivated, its iot:Connect gone), which would otherwise publish once more, fleet requests included
    const isWill = client.closed;
    if (isWill && conn.revoked === true) return new Error('will dropped: the connection was closed for its certificate');
    if (topic.includes('\u0000')) return this.deny(conn, 'topic_limit', 'a topic name must not hold U+0000 (MQTT-1.5.3-2)');
    const problem = checkTopicLimits(topic, this.limits);
    if (problem !== undefined) return this.deny(conn, 'topic_limit', problem);
    if (RESERVED_PUBLISH_PREFIXES.some((p) => topic.startsWith(p)) || RESERVED_ANSWER_TOPIC.test(topic)) return this.deny(conn, 'publish_reserved_topic', `${topic} is reserved`);
    if (!this.enforcer.canPublish(conn.policy, topic, packet.retain)) {
      return this.deny(conn, 'publish_denied', `${packet.retain ? 'iot:Publish/iot:RetainPublish' : 'iot:Publish'} denied on topic/${topic}`);
    }
    if (packet.retain) {
      const problem = this.keepRetained(conn.tenantId, topic, Buffer.byteLength(packet.payload));
      if (problem !== undefined) return this.deny(conn, 'retained_limit', problem);
    }
    const api = isWill ? undefined : this.o.deviceApis?.find((r) => r.handles(topic));
    if (api !== undefined) this.serveDeviceApi(api, conn, topic, Buffer.from(packet.payload));
    return null;
  }

  /**
   * Accounts for a retained message (an empty payload removes the topic's): undefined when it fits the tenant's
   * {@link GatewayLimits.maxRetainedBytes}, else why not (and nothing changes).
   */
  private keepRetained(tenantId: string, topic: string, payloadBytes: number): string | undefined {
    let store = this.retained.get(tenantId);
    if (store === undefined) this.retained.set(tenantId, (store = { bytes: 0, sizes: new Map() }));
    const before = store.sizes.get(topic) ?? 0;
    const size = payloadBytes === 0 ? 0 : Buffer.byteLength(topic) + payloadBytes;
    if (store.bytes - before + size > this.limits.maxRetainedBytes) {
      return `the tenant's retained messages would exceed ${this.limits.maxRetainedBytes} bytes (--mqtt-max-retained-bytes); clear some with empty retained publishes`;
    }
    store.bytes += size - before;
    if (size === 0) store.sizes.delete(topic);
    else store.sizes.set(topic, size);
    return undefined;
  }

  /** Runs a device-API request and publishes the answer to the asking connection only (if its policy lets it receive it). */
  private serveDeviceApi(api: DeviceApiRouter, conn: Connection, topic: string, payload: Buffer): void {
    api.handle({ tenantId: conn.tenantId, certificateId: conn.certificateId, clientId: conn.clientId, topic, payload }).then(
      (res) => {
        if (conn.client.closed || !this.enforcer.canReceive(conn.policy, res.topic)) return;
        conn.client.publish({ cmd: 'publish', topic: res.topic, payload: res.payload, qos: 0, retain: false, dup: false }, (error?: Error) => {
          if (error !== undefined && error !== null) this.log.debug({ err: error, clientId: conn.clientId }, 'device API answer not delivered');
        });
      },
      (error: unknown) => {
        this.o.onDeviceApiError?.(error);
        this.log.error({ err: error, topic, clientId: conn.clientId }, 'device API request failed');
      },
    );
  }

  private authorizeSubscribe(client: Client, subscription: Subscription): Subscription | null | Error {
    const conn = this.connections.get(client);
    if (conn === undefined) return new Error('not authenticated');
    const filter = subscription.topic;
    const problem = checkTopicLimits(filter, this.limits);
    if (problem !== undefined) return this.deny(conn, 'topic_limit', problem);
    if (!conn.subscriptions.has(filter) && conn.subscriptions.size >= this.limits.maxSubscriptionsPerClient) {
      return this.deny(conn, 'subscription_limit', `more than ${this.limits.maxSubscriptionsPerClient} subscriptions`);
    }
    if (filter.startsWith(RESERVED_SUBSCRIBE_PREFIX) || !this.enforcer.canSubscribe(conn.policy, filter)) {
      this.log.debug({ tenantId: conn.tenantId, clientId: conn.clientId, filter }, 'subscription refused by policy');
      return null; // SUBACK 0x80 for this filter; the connection stays
    }
    conn.subscriptions.add(filter);
    return subscription;
  }

  private authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    const conn = this.connections.get(client);
    if (conn === undefined) return null;
    // Device-API requests are served by the gateway, never delivered to other subscribers.
    if (this.o.deviceApis?.some((r) => r.handles(packet.topic)) === true) return null;
    return this.enforcer.canReceive(conn.policy, packet.topic) ? packet : null;
  }

  private deny(conn: Connection, reason: EnforcementReason, detail: string): Error {
    conn.disconnectReason ??= reason === 'publish_denied' || reason === 'publish_reserved_topic' ? 'AUTHORIZATION_FAILURE' : 'CLIENT_ERROR';
    this.enforcements.inc({ reason });
    this.log.info({ reason, detail, tenantId: conn.tenantId, clientId: conn.clientId }, 'device disconnected by the gateway');
    return new Error(`${reason}: ${detail}`);
  }

  // ---- presence events ----

  private onClientReady(client: Client): void {
    const conn = this.connections.get(client);
    if (conn === undefined || conn.announced === true) return;
    conn.announced = true;
    this.o.events?.publish({
      kind: 'presence',
      tenantId: conn.tenantId,
      eventType: 'connected',
      clientId: conn.clientId,
      timestamp: Date.now(),
      principalIdentifier: conn.certificateId,
      sessionIdentifier: conn.sessionIdentifier,
      ipAddress: conn.identity.remoteAddress,
    });
  }

  private onClientDisconnect(client: Client): void {
    const conn = this.connections.get(client);
    if (conn === undefined) return;
    if (conn.announced !== true && Reflect.get(client, 'connackSent') === true) this.onClientReady(client);
    const clean = Reflect.get(client, '_disconnected') === true;
    const reason: DisconnectReason = conn.disconnectReason ?? (clean ? 'CLIENT_INITIATED_DISCONNECT' : 'CONNECTION_LOST');
    this.o.events?.publish({
      kind: 'presence',
      tenantId: conn.tenantId,
      eventType: 'disconnected',
      clientId: conn.clientId,
      timestamp: Date.now(),
      principalIdentifier: conn.certificateId,
      sessionIdentifier: conn.sessionIdentifier,
      ipAddress: conn.identity.remoteAddress,
      disconnectReason: reason,
      clientInitiatedDisconnect: reason === 'CLIENT_INITIATED_DISCONNECT',
    });
  }

  /** Publishes a lifecycle event on its tenant's broker (delivery is then filtered by each subscriber's policy). */
  private deliverEvent(event: LifecycleEvent): void {
    if (this.closed) return;
    const broker = this.o.brokerBackend === undefined ? this.brokers.get(event.tenantId) : this.brokerOf(event.tenantId);
    if (broker === undefined) return;
    void broker.then((b) => {
      if (b.closed) return;
      b.publish({ cmd: 'publish', topic: topicOfEvent(event), payload: Buffer.from(JSON.stringify(payloadOfEvent(event))), qos: 0, retain: false, dup: false }, (error) => {
        if (error !== undefined && error !== null) this.log.warn({ err: error, tenantId: event.tenantId }, 'presence event not published');
      });
    }, () => undefined);
  }
}

/** Convenience for the composition root: {@link DeviceGateway.create}. */
export function createDeviceGateway(options: DeviceGatewayOptions): Promise<DeviceGateway> {
  return DeviceGateway.create(options);
}

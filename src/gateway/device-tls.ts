/**
 * The device TLS listener (issue 4 §1–3): mutual TLS 1.2/1.3 with one trust store per tenant, chosen by SNI.
 *
 * - `SNICallback` maps the SNI host name to a tenant (`<tenant>.<domain>`; no SNI, `<domain>` or an unknown name
 *   mean the default tenant) and answers with that tenant's SecureContext, whose `ca` holds the tenant's ACTIVE CA
 *   certificates (and their ACTIVE ancestors, so that an owned intermediate chains to the installation root).
 *   Never the public root store. The default tenant's context is the server's own, so its connections keep it.
 * - `rebuildTrust(tenant)` replaces a tenant's context at once (the listener's own for the default tenant): trust
 *   changes apply to the next handshake without a restart.
 * - Node verifies the client chain with OpenSSL but, with `rejectUnauthorized: false`, completes the handshake
 *   anyway: `socket.authorized` is checked here. An unverified client certificate is refused unless it is
 *   registered ACTIVE without a CA in the SNI tenant (multi-account registration), matched by exact SHA-256
 *   fingerprint; OpenSSL has still checked that the client holds its key (CertificateVerify).
 */
import { constants, createHash } from 'node:crypto';
import type { X509Certificate } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import * as pki from '../pki/index.ts';
import * as registry from '../registry/index.ts';
import type { Store } from '../store/index.ts';
import type { GatewayLimits } from './gateway-limits.ts';

/** Who is at the other end of a device TLS connection, as established by the handshake. */
export interface PeerIdentity {
  /** The tenant selected by SNI. */
  readonly tenantId: string;
  /** SHA-256 of the client certificate's DER, lower-case hex (the AWS certificateId). */
  readonly certificateId: string;
  /** True when OpenSSL verified the chain against the tenant's trust store; false for a fingerprint match. */
  readonly chainVerified: boolean;
  /** The client certificate, DER. */
  readonly certificateDer: Buffer;
  /**
   * The client certificate as Node parsed it (subject, issuer, alternative names, serial). Parsed on first read,
   * which must happen while the socket is open (the gateway reads it only when it has no cached copy).
   */
  readonly peerCertificate: tls.PeerCertificate;
  /** The SNI host name sent by the client, if any. */
  readonly servername: string | undefined;
  /**
   * True when the SNI host name is a known endpoint name (a tenant's, or the bare domain for the default tenant); false
   * for none or an unknown name, which land in the default tenant. Devices of an SNI_ONLY CA must send one.
   */
  readonly endpointNamed: boolean;
  /**
   * DER of the certificates above the leaf in the verified path (intermediates, then the anchor); empty when the
   * chain was not verified. Built on first read (only unknown certificates need it), while the socket is open.
   */
  readonly chainDer: readonly Buffer[];
  readonly remoteAddress: string | undefined;
}

/** Why the TLS layer refused a connection (also a label of the refusal counter). */
export type TlsRefusalReason = 'no_certificate' | 'tls_unverified' | 'too_many_connections_from_ip' | 'tls_handshake_failed';

/** Gives the server certificate chain and key that a tenant's endpoint presents (see `DeviceTlsListenerOptions`). */
export type TenantServerIdentity = (tenantId: string) => Promise<{ readonly certificateChainPem: string; readonly keyPem: string }>;

/** Options of {@link DeviceTlsListener}. */
export interface DeviceTlsListenerOptions {
  readonly store: Store;
  readonly logger: Logger;
  /** Server certificate followed by its issuing chain, PEM. */
  readonly serverCertificateChainPem: string;
  readonly serverKeyPem: string;
  /** The installation root CA, trusted by the default tenant (device certificates issued by Gatehouse chain to it). */
  readonly rootCaPem: string;
  /** Tenant endpoints are `<tenant>.<domain>`; `<domain>` itself means the default tenant. */
  readonly domain: string;
  /**
   * The server certificate (chain, key) a tenant other than the default presents, named after its endpoint; none: the
   * installation's certificate for every tenant (its `*.<domain>` does not verify under a one-label domain).
   */
  readonly tenantServerIdentity?: TenantServerIdentity | undefined;
  readonly limits: GatewayLimits;
  /** Receives every connection that passed the TLS checks. */
  readonly onConnection: (socket: tls.TLSSocket, identity: PeerIdentity) => void;
  /** Told about every refusal at the TLS layer (metrics). */
  readonly onRefusal: (reason: TlsRefusalReason) => void;
}

/** Returns the certificate id (SHA-256 of the DER, lower-case hex) of a DER certificate. */
export function certificateIdOfDer(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/**
 * The verified path as OpenSSL built it, above the leaf: intermediates the device sent or the trust store holds,
 * then the anchor. `leaf` must come from `getPeerX509Certificate()` during 'secureConnection': Node drops the peer
 * chain once application data flows, but the X509Certificate objects taken then keep their issuers.
 */
function verifiedChainDer(leaf: X509Certificate): Buffer[] {
  const chain: Buffer[] = [];
  let cur: X509Certificate = leaf;
  for (let depth = 0; depth < 8; depth += 1) {
    const next: X509Certificate | undefined = cur.issuerCertificate;
    if (next === undefined) break;
    const der = next.raw;
    if (der.equals(cur.raw)) break;
    chain.push(der);
    cur = next;
  }
  return chain;
}

/** The mutual-TLS listener of the device gateway, with per-tenant trust stores that reload live. */
export class DeviceTlsListener {
  private readonly o: DeviceTlsListenerOptions;
  private readonly server: tls.Server;
  /** Lower-case endpoint host name → tenant id. */
  private endpoints = new Map<string, string>();
  private readonly contexts = new Map<string, tls.SecureContext>();
  private readonly building = new Map<string, Promise<tls.SecureContext>>();
  /** Incremented by every rebuild request, so that a slow older build never replaces a newer one. */
  private readonly generations = new Map<string, number>();
  private readonly perIp = new Map<string, number>();
  private readonly sockets = new Set<Socket>();

  private constructor(options: DeviceTlsListenerOptions, defaultContextOptions: tls.SecureContextOptions) {
    this.o = options;
    this.server = tls.createServer({
      ...defaultContextOptions,
      requestCert: true,
      rejectUnauthorized: false,
      handshakeTimeout: options.limits.tlsHandshakeTimeoutMs,
      SNICallback: (servername, cb) => this.selectContext(servername, cb),
    });
    this.installDefaultContext(tls.createSecureContext(defaultContextOptions));
    this.server.on('connection', (socket: Socket) => this.onTcpConnection(socket));
    this.server.on('secureConnection', (socket: tls.TLSSocket) => this.onSecureConnection(socket));
    this.server.on('tlsClientError', (error: Error & { code?: string }, socket: tls.TLSSocket) => {
      this.o.logger.debug({ err: error, remoteAddress: socket.remoteAddress }, 'device TLS handshake failed');
      // ECONNRESET: the peer hung up, or the per-IP limit already refused (and counted) the socket.
      if (error.code !== 'ECONNRESET') this.o.onRefusal('tls_handshake_failed');
    });
  }

  /** Loads tenants and the default tenant's trust store, and builds the (not yet listening) listener. */
  static async create(options: DeviceTlsListenerOptions): Promise<DeviceTlsListener> {
    const defaultOptions = await DeviceTlsListener.contextOptions(options, registry.DEFAULT_TENANT);
    const listener = new DeviceTlsListener(options, defaultOptions);
    await listener.reloadTenants();
    return listener;
  }

  /** Binds `host:port` (0 = ephemeral) and returns the bound port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        this.server.on('error', (error) => this.o.logger.error({ err: error }, 'device TLS listener error'));
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops accepting and destroys open sockets. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
  }

  /** The tenant an SNI host name designates (default tenant for none or an unknown name). */
  tenantOf(servername: string | false | null | undefined): string {
    if (typeof servername !== 'string' || servername === '') return registry.DEFAULT_TENANT;
    return this.endpoints.get(servername.toLowerCase()) ?? registry.DEFAULT_TENANT;
  }

  /** Re-reads the tenant endpoints (a tenant was created). */
  async reloadTenants(): Promise<void> {
    const tenants = await registry.listTenants(this.o.store.db);
    const next = new Map<string, string>();
    next.set(this.o.domain.toLowerCase(), registry.DEFAULT_TENANT);
    for (const t of tenants) next.set(t.endpoint.toLowerCase(), t.tenantId);
    this.endpoints = next;
  }

  /**
   * Rebuilds the trust store of `tenantId` from the registry and installs it for the next handshakes (for the
   * default tenant also as the server's own context, used when the client sends no SNI).
   */
  async rebuildTrust(tenantId: string): Promise<void> {
    const generation = (this.generations.get(tenantId) ?? 0) + 1;
    this.generations.set(tenantId, generation);
    const options = await DeviceTlsListener.contextOptions(this.o, tenantId);
    if (this.generations.get(tenantId) !== generation) return;
    // The default tenant's context is the server's own (see selectContext); every other tenant's is in `contexts`.
    if (tenantId === registry.DEFAULT_TENANT) this.installDefaultContext(tls.createSecureContext(options));
    else this.contexts.set(tenantId, tls.createSecureContext(options));
    this.o.logger.info({ tenantId }, 'device TLS trust store reloaded');
  }

  /**
   * Makes `ctx` the server's own context: the one every connection starts with, kept for connections without SNI and
   * for the default tenant (see selectContext). Node 20's `server.setSecureContext(options)` rebuilds it from a fixed
   * list of options that leaves out `allowPartialTrustChain`, so that a device under a registered intermediate whose
   * root is not registered would be refused there; the prebuilt context is installed as `_sharedCreds`, the
   * property Node's connection listener reads (checked here, so that a Node without it fails at start, not silently).
   */
  private installDefaultContext(ctx: tls.SecureContext): void {
    const server = this.server as unknown as { _sharedCreds?: tls.SecureContext };
    if (server._sharedCreds === undefined) throw new Error('this Node.js has no tls.Server _sharedCreds: the device listener cannot install its trust store');
    server._sharedCreds = ctx;
  }

  private static async contextOptions(o: DeviceTlsListenerOptions, tenantId: string): Promise<tls.SecureContextOptions> {
    const db = o.store.db;
    const cas = await registry.listAllCas(db, tenantId);
    const pems = new Map<string, string>();
    const add = (pem: string): void => {
      pems.set(pem.trim(), pem);
    };
    if (tenantId === registry.DEFAULT_TENANT) add(o.rootCaPem);
    const trusted = await trustedCas(db, cas);
    const seen = new Set<string>();
    for (const ca of trusted) {
      add(ca.certificatePem);
      // Owned intermediates chain to CAs that may live in another tenant (the installation root): OpenSSL needs
      // the whole path to a self-signed anchor. Bounded walk.
      let parent = ca.parentCaCertificateId;
      for (let depth = 0; parent !== null && depth < 8 && !seen.has(parent); depth++) {
        seen.add(parent);
        const rec = await registry.findOwnedCa(db, parent);
        if (rec === undefined || rec.status !== 'ACTIVE') break;
        add(rec.certificatePem);
        parent = rec.parentCaCertificateId;
      }
    }
    const own = tenantId === registry.DEFAULT_TENANT || o.tenantServerIdentity === undefined ? undefined : await o.tenantServerIdentity(tenantId);
    return {
      cert: own?.certificateChainPem ?? o.serverCertificateChainPem,
      key: own?.keyPem ?? o.serverKeyPem,
      // An empty array (no trusted CA) is still "given": Node then trusts nothing rather than the public roots.
      ca: [...pems.values()],
      minVersion: 'TLSv1.2',
      // A registered CA is a trust anchor even when it is not self-signed: a device maker may register only its
      // issuing intermediate, as AWS IoT allows (`trustedCas` leaves out a CA whose registered issuer is not ACTIVE).
      allowPartialTrustChain: true,
      // No stateless session tickets. OpenSSL 3.0 builds each one (two per TLS 1.3 handshake) by encoding the session
      // and decoding it again, peer certificate and public key included: ~13% of the server's CPU per device connect
      // (perf, bench/connect.ts: 3.74-4.2 -> 2.92-3.26 ms per connect). TLS 1.3 then sends stateful tickets, which
      // name a session the server does not keep (Node's API can neither stop them nor keep sessions per tenant
      // context without more work), so a device presenting one gets a full handshake, as it does in TLS 1.2: the
      // endpoint offers no session resumption (test/e2e/gateway.test.ts).
      secureOptions: constants.SSL_OP_NO_TICKET,
    };
  }

  private selectContext(servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void {
    const tenantId = this.tenantOf(servername);
    // The default tenant's trust is the server's own context (built from the same options at start and replaced with
    // it by `rebuildTrust`): answering no context keeps it, and spares OpenSSL the switch to an equal one
    // (`SSL_set_SSL_CTX` copies the certificate setup and the CA name list): 0.02-0.08 ms per handshake on a bare server
    // (bench README, 2026-11-30 01:30).
    if (tenantId === registry.DEFAULT_TENANT) {
      cb(null);
      return;
    }
    const ready = this.contexts.get(tenantId);
    if (ready !== undefined) {
      cb(null, ready);
      return;
    }
    let pending = this.building.get(tenantId);
    if (pending === undefined) {
      pending = DeviceTlsListener.contextOptions(this.o, tenantId).then((options) => {
        const ctx = tls.createSecureContext(options);
        if (!this.contexts.has(tenantId)) this.contexts.set(tenantId, ctx);
        return this.contexts.get(tenantId) ?? ctx;
      });
      pending.finally(() => this.building.delete(tenantId)).catch(() => undefined);
      this.building.set(tenantId, pending);
    }
    pending.then(
      (ctx) => cb(null, ctx),
      (error: unknown) => {
        this.o.logger.error({ err: error, tenantId }, 'cannot build the tenant trust store');
        cb(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  private onTcpConnection(socket: Socket): void {
    // MQTT is request/response on small packets: without TCP_NODELAY, Nagle + delayed ACK hold each CONNACK ~40 ms.
    socket.setNoDelay(true);
    const ip = socket.remoteAddress ?? 'unknown';
    const count = (this.perIp.get(ip) ?? 0) + 1;
    if (this.o.limits.maxConnectionsPerIp > 0 && count > this.o.limits.maxConnectionsPerIp) {
      this.o.logger.warn({ remoteAddress: ip, limit: this.o.limits.maxConnectionsPerIp }, 'device connection refused: too many connections from this address');
      this.o.onRefusal('too_many_connections_from_ip');
      socket.destroy();
      return;
    }
    this.perIp.set(ip, count);
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      const left = (this.perIp.get(ip) ?? 1) - 1;
      if (left <= 0) this.perIp.delete(ip);
      else this.perIp.set(ip, left);
    });
  }

  private onSecureConnection(socket: tls.TLSSocket): void {
    socket.on('error', (error) => this.o.logger.debug({ err: error }, 'device socket error'));
    const servername = typeof socket.servername === 'string' ? socket.servername : undefined;
    const tenantId = this.tenantOf(servername);
    const endpointNamed = servername !== undefined && this.endpoints.has(servername.toLowerCase());
    const x509 = socket.getPeerX509Certificate();
    if (x509 === undefined) {
      this.refuse(socket, 'no_certificate', tenantId, undefined);
      return;
    }
    const certificateDer = x509.raw;
    const certificateId = certificateIdOfDer(certificateDer);
    const identity = (chainVerified: boolean): PeerIdentity => {
      let peer: tls.PeerCertificate | undefined;
      let chain: Buffer[] | undefined;
      return {
        tenantId,
        certificateId,
        chainVerified,
        certificateDer,
        servername,
        endpointNamed,
        remoteAddress: socket.remoteAddress,
        get peerCertificate(): tls.PeerCertificate {
          return (peer ??= socket.getPeerCertificate(false));
        },
        get chainDer(): readonly Buffer[] {
          return (chain ??= chainVerified ? verifiedChainDer(x509) : []);
        },
      };
    };
    if (socket.authorized) {
      this.o.onConnection(socket, identity(true));
      return;
    }
    // Not verified by OpenSSL: only an exact fingerprint match of a certificate registered ACTIVE without a CA.
    // (Bytes the client sends meanwhile stay buffered in the socket: nothing reads it yet.)
    registry.findCertificate(this.o.store.db, tenantId, certificateId).then(
      (rec) => {
        if (socket.destroyed) return;
        if (rec !== undefined && rec.caCertificateId === null && rec.status === 'ACTIVE') {
          this.o.onConnection(socket, identity(false));
          return;
        }
        this.refuse(socket, 'tls_unverified', tenantId, certificateId, String(socket.authorizationError));
      },
      (error: unknown) => {
        this.o.logger.error({ err: error }, 'certificate lookup failed during TLS admission');
        this.refuse(socket, 'tls_unverified', tenantId, certificateId, 'lookup failed');
      },
    );
  }

  private refuse(socket: tls.TLSSocket, reason: TlsRefusalReason, tenantId: string, certificateId: string | undefined, detail?: string): void {
    this.o.logger.info({ reason, tenantId, certificateId, detail, remoteAddress: socket.remoteAddress }, 'device connection refused at TLS');
    this.o.onRefusal(reason);
    socket.destroy();
  }
}

/**
 * The ACTIVE CAs of a tenant that are trust anchors of its device listener. With partial chains allowed, an
 * intermediate verifies devices on its own, so one is left out when a registered CA above it is not ACTIVE: its
 * owned parent (any tenant), or for a registered intermediate the tenant's CA whose subject is its issuer.
 * Deactivating or revoking a root thus still cuts off every intermediate under it, as it did when OpenSSL needed
 * the path to a self-signed root.
 */
async function trustedCas(db: Store['db'], cas: readonly registry.CaRecord[]): Promise<registry.CaRecord[]> {
  const parsed = new Map<string, pki.ParsedCertificate>();
  const parse = (ca: registry.CaRecord): pki.ParsedCertificate => {
    let p = parsed.get(ca.caCertificateId);
    if (p === undefined) parsed.set(ca.caCertificateId, (p = pki.parseCertificate(ca.certificatePem)));
    return p;
  };
  const bySubject = new Map<string, registry.CaRecord[]>();
  for (const ca of cas) {
    const key = parse(ca).subjectNameDer.toString('hex');
    bySubject.set(key, [...(bySubject.get(key) ?? []), ca]);
  }
  const issuerActive = async (start: registry.CaRecord): Promise<boolean> => {
    let current = start;
    for (let depth = 0; depth < 8; depth++) {
      if (current.parentCaCertificateId !== null) {
        const parent = await registry.findOwnedCa(db, current.parentCaCertificateId);
        if (parent === undefined) return true;
        if (parent.status !== 'ACTIVE') return false;
        current = parent;
        continue;
      }
      const cert = parse(current);
      if (cert.isSelfIssued) return true;
      const issuers = (bySubject.get(cert.issuerNameDer.toString('hex')) ?? []).filter((c) => c.caCertificateId !== current.caCertificateId);
      if (issuers.length === 0) return true;
      const active = issuers.find((c) => c.status === 'ACTIVE');
      if (active === undefined) return false;
      current = active;
    }
    return true;
  };
  const out: registry.CaRecord[] = [];
  for (const ca of cas) if (ca.status === 'ACTIVE' && (await issuerActive(ca))) out.push(ca);
  return out;
}

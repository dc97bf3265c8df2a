import type { Logger } from 'pino';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { GatehouseConfig } from '../config/index.ts';
import type { Role } from '../registry/index.ts';
import type { Store } from '../store/index.ts';
import type { ControlPlane } from '../provisioning/index.ts';

/** Who is calling, resolved from the bearer token (and the Gatehouse-Tenant header for default-tenant admins). */
export interface Caller {
  readonly tokenId: string;
  readonly role: Role;
  /** The token's own tenant. */
  readonly homeTenantId: string;
  /** The tenant the request acts on. */
  readonly tenantId: string;
  /** Audit actor. */
  readonly actor: string;
}

/** What the API needs, built by the composition root. */
export interface ApiDependencies {
  readonly config: GatehouseConfig;
  readonly store: Store;
  readonly logger: Logger;
  readonly metrics: MetricsRegistry;
  readonly controlPlane: ControlPlane;
  /**
   * State of the process: `/healthz` answers 200 only while it is `ready` (every listener up), and 503 with the state
   * while it is `starting` or `stopping`.
   */
  readonly health: () => 'starting' | 'ready' | 'stopping';
  /**
   * The metrics of the whole installation when this process is one of several workers (see src/app/cluster-metrics.ts);
   * absent: `metrics` is the installation's.
   */
  readonly installationMetrics?: (() => Promise<{ readonly text: string; readonly scope: 'installation' | 'worker' }>) | undefined;
  /** Device-facing connection details (ports are known once the listeners are bound). */
  readonly deviceEndpoint: () => { readonly mqttPort: number; readonly rootCaPem: string };
}

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller | undefined;
  }
  interface FastifyContextConfig {
    /** Roles allowed to call the route; absent means admin and operator. `public` routes need no token. */
    roles?: readonly Role[];
    public?: boolean;
  }
}

/**
 * Authorization by IoT policy on every MQTT operation (issue 4 §4–5; protocols.md "AWS IoT policy language").
 *
 * Per connection the gateway builds one {@link ConnectionPolicy}: the `PolicyContext` (client id, the thing
 * attached to the certificate with its type and attributes, the certificate's subject and issuer) and the compiled
 * effective policies (certificate + thing groups), compiled once per distinct document and shared by every
 * connection. Checks: `iot:Connect` on `client/<clientId>`; `iot:Publish` (and `iot:RetainPublish` when retained)
 * on `topic/<t>`; `iot:Subscribe` on `topicfilter/<f>`; `iot:Receive` on `topic/<t>` for every delivery.
 *
 * ARNs are built with one region and a per-tenant 12-digit account id ({@link accountIdOfTenant}), so that
 * policies written with bare `*` resources, `arn:aws:iot:*:*:…` and the tenant's exact ARNs all match.
 */
import { createHash } from 'node:crypto';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import { authorize, compilePolicy, parsePolicyDocument, resourceArn } from '../policy/index.ts';
import type { CertificateNameValues, CompiledPolicy, PolicyCertificate, PolicyContext, PolicyThing } from '../policy/index.ts';
import * as registry from '../registry/index.ts';
import type { Store } from '../store/index.ts';

/** The region written in the ARNs the gateway authorizes (policies may name it or use `*`). */
export const DEFAULT_POLICY_REGION = 'us-east-1';

/** The 12-digit account id of a tenant in resource ARNs: stable, derived from the tenant id. */
export function accountIdOfTenant(tenantId: string): string {
  const known = accountIds.get(tenantId);
  if (known !== undefined) return known;
  const id = computeAccountId(tenantId);
  if (accountIds.size >= 10_000) accountIds.clear();
  accountIds.set(tenantId, id);
  return id;
}

const accountIds = new Map<string, string>();

function computeAccountId(tenantId: string): string {
  const n = createHash('sha256').update(`gatehouse-tenant:${tenantId}`).digest().readBigUInt64BE(0) % 1_000_000_000_000n;
  return n.toString().padStart(12, '0');
}

/** What the policies of a certificate say, independent of the connection (shared by its connections). */
export interface PrincipalPolicies {
  readonly policies: readonly CompiledPolicy[];
  readonly thing: PolicyThing | undefined;
  readonly isAttached: boolean;
  /**
   * Whether any of the policies reads a certificate field (`iot:Certificate.*`): only then does the connection's
   * certificate need to be parsed into {@link PolicyCertificate} (Node's `getPeerCertificate`, a large share of a
   * first connection's gateway work).
   */
  readonly readsCertificate: boolean;
}

/** The authorization state of one connection. Replaced as a whole when policies or attachments change. */
export interface ConnectionPolicy {
  readonly context: PolicyContext;
  readonly policies: readonly CompiledPolicy[];
}

/** Options of {@link PolicyEnforcer}. */
export interface PolicyEnforcerOptions {
  readonly store: Store;
  readonly logger: Logger;
  /** Region of the ARNs (default {@link DEFAULT_POLICY_REGION}). */
  readonly region?: string | undefined;
  /** Most compiled documents kept (default 10 000). */
  readonly compiledCacheSize?: number | undefined;
}

const DENY_ALL = compilePolicy(
  parsePolicyDocument({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'iot:*', Resource: '*' }] }),
  'gatehouse-invalid-policy',
);

function nameValues(name: unknown): CertificateNameValues {
  const out: Record<string, readonly string[]> = {};
  if (typeof name !== 'object' || name === null) return out;
  for (const [key, value] of Object.entries(name as Record<string, unknown>)) {
    if (typeof value === 'string') out[key] = [value];
    else if (Array.isArray(value)) out[key] = value.filter((v): v is string => typeof v === 'string');
  }
  return out;
}

const ALT_NAME_KEYS: Readonly<Record<string, string>> = { DNS: 'DNSName', 'IP Address': 'IPAddress', email: 'RFC822Name', URI: 'UniformResourceIdentifier', DirName: 'DirectoryName' };

function altNames(text: string | undefined): CertificateNameValues | undefined {
  if (text === undefined || text === '') return undefined;
  const out: Record<string, string[]> = {};
  for (const part of text.split(', ')) {
    const colon = part.indexOf(':');
    if (colon <= 0) continue;
    const key = ALT_NAME_KEYS[part.slice(0, colon)];
    if (key === undefined) continue;
    (out[key] ??= []).push(part.slice(colon + 1));
  }
  return out;
}

/** The certificate fields policy variables read, from Node's parsed peer certificate. */
export function policyCertificateOf(peer: tls.PeerCertificate): PolicyCertificate {
  return {
    subject: nameValues(peer.subject),
    issuer: nameValues(peer.issuer),
    subjectAlternativeName: altNames(peer.subjectaltname),
    serialNumber: peer.serialNumber,
  };
}

const readsCertificateCache = new WeakMap<CompiledPolicy, boolean>();

/**
 * Whether a compiled policy mentions a certificate policy variable anywhere (resources, conditions). Checked on the
 * normalized document re-serialized, where a variable name cannot hide behind JSON escapes: a superset of the
 * variables the evaluator can read, so a policy that reads a certificate field is never evaluated without it.
 */
export function readsCertificateFields(policy: CompiledPolicy): boolean {
  let reads = readsCertificateCache.get(policy);
  if (reads === undefined) {
    reads = JSON.stringify(policy.document).includes('iot:Certificate.');
    readsCertificateCache.set(policy, reads);
  }
  return reads;
}

/** Loads, compiles and evaluates IoT policies for the gateway. */
export class PolicyEnforcer {
  private readonly o: PolicyEnforcerOptions;
  private readonly region: string;
  private readonly compiled = new Map<string, CompiledPolicy>();
  private readonly cacheSize: number;

  constructor(options: PolicyEnforcerOptions) {
    this.o = options;
    this.region = options.region ?? DEFAULT_POLICY_REGION;
    this.cacheSize = options.compiledCacheSize ?? 10_000;
  }

  /** Reads the effective policies of a certificate and the thing it is attached to (two or three queries). */
  async loadPrincipal(tenantId: string, certificateId: string): Promise<PrincipalPolicies> {
    const db = this.o.store.db;
    const [documents, thingNames] = await Promise.all([
      registry.effectivePolicyDocuments(db, tenantId, certificateId),
      registry.listPrincipalThings(db, tenantId, certificateId),
    ]);
    const policies = documents.map((d) => this.compile(tenantId, d.policyName, d.document));
    const firstThing = [...thingNames].sort()[0];
    let thing: PolicyThing | undefined;
    if (firstThing !== undefined) {
      const rec = await registry.findThing(db, tenantId, firstThing);
      if (rec !== undefined) thing = { thingName: rec.thingName, thingTypeName: rec.thingTypeName ?? undefined, attributes: rec.attributes };
    }
    return { policies, thing, isAttached: thingNames.length > 0, readsCertificate: policies.some((p) => readsCertificateFields(p)) };
  }

  /** Builds the authorization state of one connection. */
  connectionPolicy(tenantId: string, clientId: string, principal: PrincipalPolicies, certificate: PolicyCertificate | undefined): ConnectionPolicy {
    const context: PolicyContext = {
      clientId,
      thing: principal.thing,
      isAttached: principal.isAttached,
      certificate,
      region: this.region,
      accountId: accountIdOfTenant(tenantId),
    };
    return { context, policies: principal.policies };
  }

  /** `iot:Connect` on `client/<clientId>`. */
  canConnect(cp: ConnectionPolicy): boolean {
    return authorize(cp.policies, { action: 'iot:Connect', resource: resourceArn('client', cp.context.clientId, cp.context) }, cp.context) === 'allow';
  }

  /** `iot:Publish` on `topic/<topic>`, and `iot:RetainPublish` too when `retain`. */
  canPublish(cp: ConnectionPolicy, topic: string, retain: boolean): boolean {
    const resource = resourceArn('topic', topic, cp.context);
    if (authorize(cp.policies, { action: 'iot:Publish', resource }, cp.context) !== 'allow') return false;
    return !retain || authorize(cp.policies, { action: 'iot:RetainPublish', resource }, cp.context) === 'allow';
  }

  /** `iot:Subscribe` on `topicfilter/<filter>`. */
  canSubscribe(cp: ConnectionPolicy, filter: string): boolean {
    return authorize(cp.policies, { action: 'iot:Subscribe', resource: resourceArn('topicfilter', filter, cp.context) }, cp.context) === 'allow';
  }

  /** `iot:Receive` on `topic/<topic>` (every delivery). */
  canReceive(cp: ConnectionPolicy, topic: string): boolean {
    return authorize(cp.policies, { action: 'iot:Receive', resource: resourceArn('topic', topic, cp.context) }, cp.context) === 'allow';
  }

  /** Compiles a stored document once; a document that no longer compiles denies everything (fail closed). */
  private compile(tenantId: string, name: string, document: string): CompiledPolicy {
    const key = `${name}\u0000${document}`;
    const hit = this.compiled.get(key);
    if (hit !== undefined) return hit;
    let policy: CompiledPolicy;
    try {
      policy = compilePolicy(parsePolicyDocument(document), name);
    } catch (error) {
      this.o.logger.error({ err: error, tenantId, policyName: name }, 'stored policy does not compile; it denies everything');
      policy = DENY_ALL;
    }
    if (this.compiled.size >= this.cacheSize) this.compiled.clear();
    this.compiled.set(key, policy);
    return policy;
  }
}

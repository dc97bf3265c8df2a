import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigErrors } from './errors.ts';

/** Log levels accepted by the logger. */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** Every setting of Gatehouse, parsed once, frozen (architecture.md: `src/config`). */
export interface GatehouseConfig {
  /** Bind address of every listener. */
  readonly host: string;
  readonly apiPort: number;
  readonly mqttPort: number;
  readonly httpsPort: number;
  /** `postgres://…` switches to PostgreSQL; undefined means SQLite in the data directory. */
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly logLevel: LogLevel;
  /** Tenants get the endpoint `<tenant>.<domain>`; the default tenant also answers to `<domain>`. */
  readonly domain: string;
  /** Presets the admin API token on first start (otherwise a random one is generated). */
  readonly adminToken: string | undefined;
  /** Key-encryption key for CA private keys (64 hex chars or base64 of 32 bytes); else `<dataDir>/kek`. */
  readonly kek: string | undefined;
  /** Base URL under which this server is reachable by devices and relying parties (CRL distribution points). */
  readonly publicUrl: string;
  /** Number of worker processes sharing the listeners (1: this process serves; more: node:cluster workers). */
  readonly workers: number;
  /**
   * Redis URL of the bus shared by worker processes and nodes: cross-process MQTT delivery, retained messages and
   * persistent sessions, registry change notifications. Required for `workers` > 1 (default then
   * `redis://127.0.0.1:6379`); unset with one worker means everything stays in process.
   */
  readonly busUrl: string | undefined;
  /** CA keys in a PKCS#11 token instead of encrypted blobs (all three set, or none). */
  readonly pkcs11: { readonly libraryPath: string; readonly tokenLabel: string; readonly pin: string } | undefined;
  /**
   * Lines per transaction of a bulk registration task (1-10000, default 1000). Larger batches commit less often and
   * hold more lines in memory: up to four batches are in flight, and the faster the machine the more often all four
   * are. bench/bulk-server.sh 100000 on 2026-11-29 (quiet 2-core machine): 1000 lines 10,695-10,859 devices/s, server
   * peak RSS 277-279 MB; 2000 lines 11,206-11,533/s but 335-337 MB, over the 300 MB budget (on a crowded machine the
   * same morning 2000 lines had peaked at 273 MB).
   */
  readonly bulkBatchLines: number;
  /**
   * Longest provisioning template body accepted by create, new version and validate, in characters (default 10240,
   * AWS's limit; 1024-262144). Templates already stored are not checked again when they run.
   */
  readonly templateMaxLength: number;
  /** MQTT limits of the device gateway; undefined keeps the gateway's default (AWS IoT's values). */
  readonly mqttLimits: {
    readonly maxPacketSize?: number;
    readonly maxTopicLength?: number;
    readonly maxTopicLevels?: number;
    readonly maxSubscriptionsPerClient?: number;
    readonly maxConnectionsPerIp?: number;
    readonly maxInflightInbound?: number;
    readonly maxRetainedBytes?: number;
  };
}

/** Template body limit by default (AWS's), and the most that may be configured (the API's body limit is 1 MiB). */
const DEFAULT_TEMPLATE_MAX_LENGTH = 10_240;
const MAX_TEMPLATE_MAX_LENGTH = 262_144;

type Kind = 'string' | 'port' | 'count' | 'logLevel' | 'limit';

type SettingKey = Exclude<keyof GatehouseConfig, 'mqttLimits' | 'pkcs11'> | `mqttLimits.${keyof GatehouseConfig['mqttLimits']}` | 'pkcs11.libraryPath' | 'pkcs11.tokenLabel' | 'pkcs11.pin';

interface SettingSpec {
  readonly key: SettingKey;
  readonly env: string;
  readonly flag: string;
  readonly kind: Kind;
  readonly description: string;
}

/** The one schema of every setting: env name, CLI flag and meaning (kept in step with README and `--help`). */
export const SETTINGS: readonly SettingSpec[] = [
  { key: 'host', env: 'GATEHOUSE_HOST', flag: 'host', kind: 'string', description: 'bind address (default 0.0.0.0)' },
  { key: 'apiPort', env: 'GATEHOUSE_API_PORT', flag: 'api-port', kind: 'port', description: 'REST API port (default 8080; 0 = any free port)' },
  { key: 'mqttPort', env: 'GATEHOUSE_MQTT_PORT', flag: 'mqtt-port', kind: 'port', description: 'device MQTT over mutual TLS port (default 8883)' },
  { key: 'httpsPort', env: 'GATEHOUSE_HTTPS_PORT', flag: 'https-port', kind: 'port', description: 'reserved for device HTTPS (EST, Azure DPS), which is not built yet: nothing listens on it (default 8443)' },
  { key: 'databaseUrl', env: 'GATEHOUSE_DATABASE_URL', flag: 'database-url', kind: 'string', description: 'postgres://… URL; SQLite in the data directory when unset' },
  { key: 'dataDir', env: 'GATEHOUSE_DATA_DIR', flag: 'data-dir', kind: 'string', description: 'data directory (default ./gatehouse-data)' },
  { key: 'logLevel', env: 'GATEHOUSE_LOG_LEVEL', flag: 'log-level', kind: 'logLevel', description: 'fatal|error|warn|info|debug|trace|silent (default info)' },
  { key: 'domain', env: 'GATEHOUSE_DOMAIN', flag: 'domain', kind: 'string', description: 'domain of tenant endpoints <tenant>.<domain> (default localhost)' },
  { key: 'adminToken', env: 'GATEHOUSE_ADMIN_TOKEN', flag: 'admin-token', kind: 'string', description: 'preset admin API token used on first start' },
  { key: 'kek', env: 'GATEHOUSE_KEK', flag: 'kek', kind: 'string', description: 'key-encryption key for CA keys (else <data dir>/kek)' },
  { key: 'publicUrl', env: 'GATEHOUSE_PUBLIC_URL', flag: 'public-url', kind: 'string', description: 'public base URL of the API (CRL distribution points); default http://localhost:<api port>' },
  { key: 'workers', env: 'GATEHOUSE_WORKERS', flag: 'workers', kind: 'count', description: 'worker processes sharing the listeners (default 1; more than 1 needs the Redis bus, see --bus-url)' },
  { key: 'busUrl', env: 'GATEHOUSE_BUS_URL', flag: 'bus-url', kind: 'string', description: 'redis://… bus shared by workers and nodes (MQTT delivery, sessions, change notifications); default redis://127.0.0.1:6379 when workers > 1' },
  { key: 'pkcs11.libraryPath', env: 'GATEHOUSE_PKCS11_LIBRARY', flag: 'pkcs11-library', kind: 'string', description: 'PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so): CA keys are made and used in the token' },
  { key: 'pkcs11.tokenLabel', env: 'GATEHOUSE_PKCS11_TOKEN', flag: 'pkcs11-token', kind: 'string', description: 'label of the PKCS#11 token holding the CA keys' },
  { key: 'pkcs11.pin', env: 'GATEHOUSE_PKCS11_PIN', flag: 'pkcs11-pin', kind: 'string', description: 'user PIN of the PKCS#11 token' },
  { key: 'templateMaxLength', env: 'GATEHOUSE_TEMPLATE_MAX_LENGTH', flag: 'template-max-length', kind: 'limit', description: 'longest provisioning template body in characters, 1024-262144 (default 10240, as AWS)' },
  { key: 'bulkBatchLines', env: 'GATEHOUSE_BULK_BATCH_LINES', flag: 'bulk-batch-lines', kind: 'limit', description: 'lines per transaction of a bulk task, 1-10000 (default 1000)' },
  { key: 'mqttLimits.maxPacketSize', env: 'GATEHOUSE_MQTT_MAX_PACKET_BYTES', flag: 'mqtt-max-packet-bytes', kind: 'limit', description: 'largest MQTT packet in bytes (default 131072)' },
  { key: 'mqttLimits.maxTopicLength', env: 'GATEHOUSE_MQTT_MAX_TOPIC_LENGTH', flag: 'mqtt-max-topic-length', kind: 'limit', description: 'longest topic in bytes (default 256)' },
  { key: 'mqttLimits.maxTopicLevels', env: 'GATEHOUSE_MQTT_MAX_TOPIC_LEVELS', flag: 'mqtt-max-topic-levels', kind: 'limit', description: 'most topic levels (default 16)' },
  { key: 'mqttLimits.maxSubscriptionsPerClient', env: 'GATEHOUSE_MQTT_MAX_SUBSCRIPTIONS', flag: 'mqtt-max-subscriptions', kind: 'limit', description: 'most subscriptions per client (default 50)' },
  { key: 'mqttLimits.maxConnectionsPerIp', env: 'GATEHOUSE_MQTT_MAX_CONNECTIONS_PER_IP', flag: 'mqtt-max-connections-per-ip', kind: 'limit', description: 'concurrent connections per IP, 0 = no limit (default 200)' },
  { key: 'mqttLimits.maxInflightInbound', env: 'GATEHOUSE_MQTT_MAX_INFLIGHT', flag: 'mqtt-max-inflight', kind: 'limit', description: 'inbound QoS 2 messages in flight per client (default 100)' },
  { key: 'mqttLimits.maxRetainedBytes', env: 'GATEHOUSE_MQTT_MAX_RETAINED_BYTES', flag: 'mqtt-max-retained-bytes', kind: 'limit', description: 'retained messages per tenant, in bytes of topics and payloads (default 67108864)' },
];

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Where settings come from, lowest precedence first: config file, then environment, then CLI flags. */
export interface ConfigSources {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Values from CLI flags, keyed by setting key. */
  readonly flags?: Readonly<Partial<Record<SettingKey, string | number>>>;
  /** Path of an optional JSON config file (`--config`, or `GATEHOUSE_CONFIG`). */
  readonly configFile?: string | undefined;
  readonly cwd?: string;
}

function parseValue(spec: SettingSpec, raw: unknown, origin: string): string | number {
  const text = typeof raw === 'number' ? String(raw) : raw;
  if (typeof text !== 'string') {
    throw ConfigErrors.error('CONFIG_INVALID', `${origin}: ${spec.key} must be a string or number`);
  }
  switch (spec.kind) {
    case 'string':
      if (text.trim() === '') throw ConfigErrors.error('CONFIG_INVALID', `${origin}: ${spec.key} must not be empty`);
      return text;
    case 'port': {
      const n = Number(text);
      if (!/^\d+$/.test(text) || n > 65535) {
        throw ConfigErrors.error('CONFIG_INVALID', `${origin}: ${spec.key} must be a port number 0-65535, got "${text}"`);
      }
      return n;
    }
    case 'count': {
      const n = Number(text);
      if (!/^\d+$/.test(text) || n < 1 || n > 64) {
        throw ConfigErrors.error('CONFIG_INVALID', `${origin}: ${spec.key} must be a whole number 1-64, got "${text}"`);
      }
      return n;
    }
    case 'limit': {
      const n = Number(text);
      if (!/^\d+$/.test(text) || n > 1_000_000_000) {
        throw ConfigErrors.error('CONFIG_INVALID', `${origin}: ${spec.key} must be a whole number 0-1000000000, got "${text}"`);
      }
      return n;
    }
    case 'logLevel':
      if (!LOG_LEVELS.includes(text as LogLevel)) {
        throw ConfigErrors.error('CONFIG_INVALID', `${origin}: ${spec.key} must be one of ${LOG_LEVELS.join(', ')}, got "${text}"`);
      }
      return text;
  }
}

function readConfigFile(file: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw ConfigErrors.error('CONFIG_FILE_UNREADABLE', `cannot read config file ${file}: ${(cause as Error).message}`, { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw ConfigErrors.error('CONFIG_FILE_UNREADABLE', `config file ${file} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * Builds the frozen configuration from defaults, an optional JSON config file (keys are setting keys such as
 * `apiPort`), the environment and CLI flags, validating every value with a message naming its origin.
 */
export function loadConfig(sources: ConfigSources): GatehouseConfig {
  const cwd = sources.cwd ?? process.cwd();
  const values: Record<string, string | number | undefined> = {};
  const file = sources.configFile ?? sources.env['GATEHOUSE_CONFIG'];
  if (file !== undefined && file !== '') {
    const content = readConfigFile(path.resolve(cwd, file));
    for (const [key, raw] of Object.entries(content)) {
      const spec = SETTINGS.find((s) => s.key === key);
      if (spec === undefined) {
        throw ConfigErrors.error('CONFIG_UNKNOWN_SETTING', `config file ${file}: unknown setting "${key}" (known: ${SETTINGS.map((s) => s.key).join(', ')})`);
      }
      values[key] = parseValue(spec, raw, `config file ${file}`);
    }
  }
  for (const spec of SETTINGS) {
    const raw = sources.env[spec.env];
    if (raw !== undefined && raw !== '') values[spec.key] = parseValue(spec, raw, spec.env);
  }
  for (const spec of SETTINGS) {
    const raw = sources.flags?.[spec.key];
    if (raw !== undefined) values[spec.key] = parseValue(spec, raw, `--${spec.flag}`);
  }
  const str = (k: SettingKey): string | undefined => {
    const v = values[k];
    return typeof v === 'string' ? v : undefined;
  };
  const limit = (k: SettingKey): number | undefined => {
    const v = values[k];
    return typeof v === 'number' ? v : undefined;
  };
  const num = (k: SettingKey, d: number): number => {
    const v = values[k];
    return typeof v === 'number' ? v : d;
  };
  const apiPort = num('apiPort', 8080);
  const workers = num('workers', 1);
  const databaseUrl = str('databaseUrl');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw ConfigErrors.error('CONFIG_INVALID', 'GATEHOUSE_DATABASE_URL must be a postgres:// URL (leave it unset for the embedded SQLite)');
  }
  const p11 = [str('pkcs11.libraryPath'), str('pkcs11.tokenLabel'), str('pkcs11.pin')] as const;
  const p11Set = p11.filter((v) => v !== undefined).length;
  if (p11Set !== 0 && p11Set !== 3) {
    throw ConfigErrors.error('CONFIG_INVALID', 'GATEHOUSE_PKCS11_LIBRARY, GATEHOUSE_PKCS11_TOKEN and GATEHOUSE_PKCS11_PIN go together: set all three or none');
  }
  const bulkBatchLines = num('bulkBatchLines', 1000);
  if (bulkBatchLines < 1 || bulkBatchLines > 10_000) {
    throw ConfigErrors.error('CONFIG_INVALID', `GATEHOUSE_BULK_BATCH_LINES must be a whole number 1-10000, got ${bulkBatchLines}`);
  }
  const templateMaxLength = num('templateMaxLength', DEFAULT_TEMPLATE_MAX_LENGTH);
  if (templateMaxLength < 1024 || templateMaxLength > MAX_TEMPLATE_MAX_LENGTH) {
    throw ConfigErrors.error('CONFIG_INVALID', `GATEHOUSE_TEMPLATE_MAX_LENGTH must be a whole number 1024-${MAX_TEMPLATE_MAX_LENGTH}, got ${templateMaxLength}`);
  }
  const config: GatehouseConfig = {
    host: str('host') ?? '0.0.0.0',
    apiPort,
    mqttPort: num('mqttPort', 8883),
    httpsPort: num('httpsPort', 8443),
    databaseUrl,
    dataDir: path.resolve(cwd, str('dataDir') ?? 'gatehouse-data'),
    logLevel: (str('logLevel') as LogLevel | undefined) ?? 'info',
    domain: str('domain') ?? 'localhost',
    adminToken: str('adminToken'),
    kek: str('kek'),
    publicUrl: (str('publicUrl') ?? `http://localhost:${apiPort}`).replace(/\/+$/, ''),
    workers,
    busUrl: str('busUrl') ?? (workers > 1 ? 'redis://127.0.0.1:6379' : undefined),
    bulkBatchLines,
    templateMaxLength,
    pkcs11: p11[0] !== undefined && p11[1] !== undefined && p11[2] !== undefined ? Object.freeze({ libraryPath: p11[0], tokenLabel: p11[1], pin: p11[2] }) : undefined,
    mqttLimits: Object.freeze(Object.fromEntries(
      (['maxPacketSize', 'maxTopicLength', 'maxTopicLevels', 'maxSubscriptionsPerClient', 'maxConnectionsPerIp', 'maxInflightInbound', 'maxRetainedBytes'] as const)
        .map((k) => [k, limit(`mqttLimits.${k}`)] as const)
        .filter(([, v]) => v !== undefined),
    ) as GatehouseConfig['mqttLimits']),
  };
  return Object.freeze(config);
}

/** Settings the CLI needs to talk to a running server (`GATEHOUSE_URL`, `GATEHOUSE_TOKEN`). */
export interface ClientConfig {
  readonly url: string | undefined;
  readonly token: string | undefined;
  readonly dataDir: string;
}

/** True for an http(s) URL with a host and nothing after the path (no query, no fragment). */
function isHttpBaseUrl(text: string): boolean {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return false;
  }
  return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' && u.search === '' && u.hash === '';
}

/** Reads the CLI's client settings from the environment (the only other place env is read). */
export function loadClientConfig(env: Readonly<Record<string, string | undefined>>, cwd: string = process.cwd()): ClientConfig {
  const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);
  const url = nonEmpty(env['GATEHOUSE_URL'])?.replace(/\/+$/, '');
  if (url !== undefined && !isHttpBaseUrl(url)) {
    // without a scheme, `new URL('10.0.0.5:8080')` even parses, as the scheme "10.0.0.5:"
    throw ConfigErrors.error('CONFIG_INVALID', `GATEHOUSE_URL must be the server's http:// or https:// URL, e.g. http://127.0.0.1:8080 (got "${url}")`);
  }
  return Object.freeze({
    url,
    token: nonEmpty(env['GATEHOUSE_TOKEN']),
    dataDir: path.resolve(cwd, nonEmpty(env['GATEHOUSE_DATA_DIR']) ?? 'gatehouse-data'),
  });
}

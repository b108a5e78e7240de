import { parseAlgorithmList } from '../adapters/jwks/jwks-token-verifier.ts';
import { ConfigError } from '../domain/errors.ts';
import { isPasswordHash } from '../domain/password-hash.ts';

/**
 * The service's whole configuration, read from the environment in one place
 * (the contract's table). Every value is validated here: a bad one stops
 * start-up with one line naming the variable, never a silent default.
 */
export interface Config {
  port: number;
  host: string;
  basePath: string;
  logLevel: LogLevel;
  nodeId: number;
  /** Where embedded mode keeps its database and dev-issuer key. */
  dataDir: string;
  /** Serve `GET <basePath>/metrics` and count; off: the route answers 404 and nothing is counted. */
  metricsEnabled: boolean;
  ws: {
    path: string;
    requireEncryption: boolean;
    ecdhInfo: string;
    allowedOrigins?: string[];
    maxConnections?: number;
    maxFrameBytes: number;
    maxBufferedBytes: number;
    roomAllowPatterns: RegExp[];
    /** How long a silent instance's clients stay listed (heartbeat every third of it). */
    presenceTtlMs: number;
  };
  /** Unset: the in-process bus (single instance). */
  redis?: { url?: string; host?: string; port?: number; password?: string; db?: number };
  channelPrefix: string;
  jwt: {
    /** Unset: the embedded dev issuer. */
    jwksUrl?: string;
    issuer?: string;
    audience?: string;
    algorithms: string[];
  };
  /** Service principals for REST Basic auth: name → scrypt hash. */
  basicAuthUsers: Map<string, string>;
  databaseUrl?: string;
  kafka?: {
    brokers: string[];
    clientId: string;
    groupId: string;
    topic: string;
    ssl: boolean;
    sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
    sessionTimeoutMs: number;
    heartbeatIntervalMs: number;
    maxWaitTimeMs: number;
    retry: { initialDelayMs: number; maxDelayMs: number };
  };
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const read = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  const kafkaBrokers = list(read('APP_ENV_KAFKA_BROKERS'));
  const redisUrl = read('APP_ENV_WEBSOCKET_REDIS_URL');
  const redisHost = read('APP_ENV_WEBSOCKET_REDIS_HOST');

  const config: Config = {
    port: integer('PORT', read('PORT'), 3000, 0, 65_535),
    host: read('HOST') ?? '0.0.0.0',
    // `/` means the routes sit at the root: an empty prefix, never `//health`.
    basePath: rootAsEmpty(path('APP_ENV_BASE_PATH', read('APP_ENV_BASE_PATH') ?? '/v1/api/signal')),
    logLevel: oneOf('APP_ENV_LOG_LEVEL', read('APP_ENV_LOG_LEVEL') ?? 'info', LOG_LEVELS),
    nodeId: nodeId(env.APP_ENV_NODE_ID),
    dataDir: read('APP_ENV_DATA_DIR') ?? '.data',
    metricsEnabled: boolean('APP_ENV_METRICS_ENABLED', read('APP_ENV_METRICS_ENABLED'), true),
    ws: {
      path: path('APP_ENV_WEBSOCKET_PATH', read('APP_ENV_WEBSOCKET_PATH') ?? '/stream'),
      requireEncryption: boolean('APP_ENV_WEBSOCKET_REQUIRE_ENCRYPTION', read('APP_ENV_WEBSOCKET_REQUIRE_ENCRYPTION'), true),
      ecdhInfo: read('APP_ENV_WEBSOCKET_ECDH_INFO') ?? 'ignis-ecdh-p256-aes-256-gcm-v1',
      allowedOrigins: optionalList(read('APP_ENV_WEBSOCKET_ALLOWED_ORIGINS')),
      maxConnections: optionalInteger('APP_ENV_WEBSOCKET_MAX_CONNECTIONS', read('APP_ENV_WEBSOCKET_MAX_CONNECTIONS'), 1, 10_000_000),
      maxFrameBytes: integer('APP_ENV_WEBSOCKET_MAX_FRAME_BYTES', read('APP_ENV_WEBSOCKET_MAX_FRAME_BYTES'), 128 * 1024, 1024, 64 * 1024 * 1024),
      maxBufferedBytes: integer(
        'APP_ENV_WEBSOCKET_MAX_BUFFERED_BYTES',
        read('APP_ENV_WEBSOCKET_MAX_BUFFERED_BYTES'),
        1024 * 1024,
        16 * 1024,
        1024 * 1024 * 1024,
      ),
      roomAllowPatterns: patterns('APP_ENV_WEBSOCKET_ROOM_ALLOW', read('APP_ENV_WEBSOCKET_ROOM_ALLOW')),
      presenceTtlMs: 1000 * integer('APP_ENV_WEBSOCKET_PRESENCE_TTL_SECONDS', read('APP_ENV_WEBSOCKET_PRESENCE_TTL_SECONDS'), 30, 3, 3600),
    },
    channelPrefix: read('APP_ENV_WEBSOCKET_REDIS_CHANNEL_PREFIX') ?? '',
    jwt: {
      jwksUrl: optionalUrl('APP_ENV_JWKS_URL', read('APP_ENV_JWKS_URL'), ['http:', 'https:']),
      issuer: read('APP_ENV_JWT_ISSUER'),
      audience: read('APP_ENV_JWT_AUDIENCE'),
      algorithms: algorithms(read('APP_ENV_JWT_ALGORITHMS') ?? 'ES256,RS256,EdDSA'),
    },
    basicAuthUsers: serviceUsers(read('APP_ENV_BASIC_AUTH_USERS')),
    databaseUrl: optionalUrl('APP_ENV_DB_URL', read('APP_ENV_DB_URL'), ['postgres:', 'postgresql:']),
  };

  if (redisUrl !== undefined || redisHost !== undefined) {
    config.redis = {
      url: optionalUrl('APP_ENV_WEBSOCKET_REDIS_URL', redisUrl, ['redis:', 'rediss:']),
      host: redisHost,
      port: optionalInteger('APP_ENV_WEBSOCKET_REDIS_PORT', read('APP_ENV_WEBSOCKET_REDIS_PORT'), 1, 65_535),
      password: env.APP_ENV_WEBSOCKET_REDIS_PASSWORD || undefined,
      db: optionalInteger('APP_ENV_WEBSOCKET_REDIS_DB', read('APP_ENV_WEBSOCKET_REDIS_DB'), 0, 10_000),
    };
  }

  if (kafkaBrokers.length > 0) {
    for (const broker of kafkaBrokers) {
      if (!/^[^\s:/]+:\d{1,5}$/.test(broker)) throw new ConfigError('APP_ENV_KAFKA_BROKERS', `"${broker}" is not host:port`);
    }
    const mechanism = read('APP_ENV_KAFKA_SASL_MECHANISM');
    config.kafka = {
      brokers: kafkaBrokers,
      clientId: read('APP_ENV_KAFKA_CLIENT_ID') ?? 'signal',
      groupId: read('APP_ENV_KAFKA_GROUP_ID') ?? 'signal',
      topic: read('APP_ENV_KAFKA_TOPIC') ?? 'signal.activity-notification',
      ssl: boolean('APP_ENV_KAFKA_SSL', read('APP_ENV_KAFKA_SSL'), false),
      sessionTimeoutMs: integer('APP_ENV_KAFKA_SESSION_TIMEOUT_MS', read('APP_ENV_KAFKA_SESSION_TIMEOUT_MS'), 30_000, 3_000, 300_000),
      heartbeatIntervalMs: integer('APP_ENV_KAFKA_HEARTBEAT_INTERVAL_MS', read('APP_ENV_KAFKA_HEARTBEAT_INTERVAL_MS'), 3_000, 100, 60_000),
      maxWaitTimeMs: integer('APP_ENV_KAFKA_MAX_WAIT_MS', read('APP_ENV_KAFKA_MAX_WAIT_MS'), 5_000, 10, 60_000),
      retry: {
        initialDelayMs: integer('APP_ENV_KAFKA_RETRY_INITIAL_DELAY_MS', read('APP_ENV_KAFKA_RETRY_INITIAL_DELAY_MS'), 200, 10, 60_000),
        maxDelayMs: integer('APP_ENV_KAFKA_RETRY_MAX_DELAY_MS', read('APP_ENV_KAFKA_RETRY_MAX_DELAY_MS'), 10_000, 10, 600_000),
      },
    };
    if (config.kafka.heartbeatIntervalMs >= config.kafka.sessionTimeoutMs) {
      throw new ConfigError('APP_ENV_KAFKA_HEARTBEAT_INTERVAL_MS', 'must be shorter than APP_ENV_KAFKA_SESSION_TIMEOUT_MS');
    }
    if (mechanism !== undefined) {
      config.kafka.sasl = {
        mechanism: oneOf('APP_ENV_KAFKA_SASL_MECHANISM', mechanism.toLowerCase(), ['plain', 'scram-sha-256', 'scram-sha-512'] as const),
        username: read('APP_ENV_KAFKA_SASL_USERNAME') ?? '',
        password: env.APP_ENV_KAFKA_SASL_PASSWORD ?? '',
      };
    }
  }
  return config;
}

/**
 * The snowflake worker id must differ between running processes. Set but
 * empty usually means a deployment template failed to fill it in, which would
 * silently give every replica the default: refused.
 */
function nodeId(raw: string | undefined): number {
  if (raw !== undefined && raw.trim() === '') throw new ConfigError('APP_ENV_NODE_ID', 'is set but empty');
  return integer('APP_ENV_NODE_ID', raw?.trim(), 9, 0, 1023);
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
}

function optionalList(value: string | undefined): string[] | undefined {
  const entries = list(value);
  return entries.length === 0 ? undefined : entries;
}

function integer(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  return optionalInteger(name, value, min, max) ?? fallback;
}

function optionalInteger(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new ConfigError(name, `"${value}" is not a whole number`);
  const parsed = Number(value);
  if (parsed < min || parsed > max) throw new ConfigError(name, `${parsed} is outside ${min}..${max}`);
  return parsed;
}

function boolean(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const lower = value.toLowerCase();
  if (lower === 'true' || lower === '1' || lower === 'yes') return true;
  if (lower === 'false' || lower === '0' || lower === 'no') return false;
  throw new ConfigError(name, `"${value}" is not true or false`);
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new ConfigError(name, `"${value}" is not one of ${allowed.join(', ')}`);
}

function rootAsEmpty(value: string): string {
  return value === '/' ? '' : value;
}

function path(name: string, value: string): string {
  if (!value.startsWith('/') || /\s|\?|#/.test(value)) throw new ConfigError(name, `"${value}" is not an absolute URL path`);
  return value.length > 1 && value.endsWith('/') ? value.slice(0, -1) : value;
}

function optionalUrl(name: string, value: string | undefined, protocols: string[]): string | undefined {
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(name, 'is not a valid URL');
  }
  if (!protocols.includes(url.protocol)) throw new ConfigError(name, `must use ${protocols.join(' or ')}`);
  return value;
}

function algorithms(value: string): string[] {
  try {
    return parseAlgorithmList(value);
  } catch (error) {
    throw new ConfigError('APP_ENV_JWT_ALGORITHMS', (error as Error).message);
  }
}

function patterns(name: string, value: string | undefined): RegExp[] {
  return list(value).map((source) => {
    try {
      return new RegExp(`^(?:${source})$`);
    } catch {
      throw new ConfigError(name, `"${source}" is not a valid regular expression`);
    }
  });
}

function serviceUsers(value: string | undefined): Map<string, string> {
  const users = new Map<string, string>();
  for (const entry of list(value)) {
    const colon = entry.indexOf(':');
    const name = colon === -1 ? '' : entry.slice(0, colon);
    const hash = colon === -1 ? '' : entry.slice(colon + 1);
    // Never echo the entry: it holds a password hash.
    if (name.length === 0) throw new ConfigError('APP_ENV_BASIC_AUTH_USERS', 'each entry must be user:hash');
    if (!isPasswordHash(hash)) {
      throw new ConfigError('APP_ENV_BASIC_AUTH_USERS', `the hash of "${name}" is not one printed by npm run hash-password`);
    }
    users.set(name, hash);
  }
  return users;
}

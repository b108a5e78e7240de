import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/bootstrap/config.ts';
import { ConfigError } from '../../src/domain/errors.ts';
import { hashPassword } from '../../src/domain/password-hash.ts';
import { ROOT } from '../fixtures/server-process.ts';

function failure(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('runs on the embedded defaults with no configuration at all', () => {
    const config = loadConfig({});
    expect(config.port).toBe(3000);
    expect(config.host).toBe('0.0.0.0');
    expect(config.basePath).toBe('/v1/api/signal');
    expect(config.ws.path).toBe('/stream');
    expect(config.ws.requireEncryption).toBe(true);
    expect(config.ws.ecdhInfo).toBe('ignis-ecdh-p256-aes-256-gcm-v1');
    expect(config.ws.maxFrameBytes).toBe(131_072);
    expect(config.jwt.algorithms).toEqual(['ES256', 'RS256', 'EdDSA']);
    expect(config.nodeId).toBe(9);
    expect(config.redis).toBeUndefined();
    expect(config.kafka).toBeUndefined();
    expect(config.databaseUrl).toBeUndefined();
    expect(config.jwt.jwksUrl).toBeUndefined();
  });

  it('reads the production settings', () => {
    const config = loadConfig({
      PORT: '8080',
      APP_ENV_WEBSOCKET_REDIS_URL: 'redis://redis:6379/2',
      APP_ENV_WEBSOCKET_REDIS_CHANNEL_PREFIX: 'prod:',
      APP_ENV_WEBSOCKET_ALLOWED_ORIGINS: 'https://a.example, https://b.example',
      APP_ENV_WEBSOCKET_MAX_CONNECTIONS: '50000',
      APP_ENV_JWKS_URL: 'https://id.example/.well-known/jwks.json',
      APP_ENV_JWT_ISSUER: 'https://id.example',
      APP_ENV_KAFKA_BROKERS: 'k1:9092,k2:9092',
      APP_ENV_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      APP_ENV_KAFKA_SASL_USERNAME: 'signal',
      APP_ENV_KAFKA_SASL_PASSWORD: 'secret',
      APP_ENV_DB_URL: 'postgres://u:p@db:5432/signal',
    });
    expect(config.port).toBe(8080);
    expect(config.redis?.url).toBe('redis://redis:6379/2');
    expect(config.channelPrefix).toBe('prod:');
    expect(config.ws.allowedOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(config.ws.maxConnections).toBe(50_000);
    expect(config.kafka).toMatchObject({ brokers: ['k1:9092', 'k2:9092'], topic: 'signal.activity-notification', groupId: 'signal' });
    expect(config.kafka?.sasl?.mechanism).toBe('scram-sha-512');
    expect(config.kafka).toMatchObject({ sessionTimeoutMs: 30_000, heartbeatIntervalMs: 3_000, maxWaitTimeMs: 5_000, retry: { initialDelayMs: 200, maxDelayMs: 10_000 } });
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ APP_ENV_JWT_ALGORITHMS: 'ES256,HS256' }, 'APP_ENV_JWT_ALGORITHMS'],
    [{ APP_ENV_JWT_ALGORITHMS: 'none' }, 'APP_ENV_JWT_ALGORITHMS'],
    [{ APP_ENV_JWT_ALGORITHMS: 'ES999' }, 'APP_ENV_JWT_ALGORITHMS'],
    [{ APP_ENV_JWKS_URL: 'not a url' }, 'APP_ENV_JWKS_URL'],
    [{ APP_ENV_JWKS_URL: 'ftp://x/jwks' }, 'APP_ENV_JWKS_URL'],
    [{ APP_ENV_DB_URL: 'mysql://x/y' }, 'APP_ENV_DB_URL'],
    [{ APP_ENV_WEBSOCKET_REDIS_URL: 'http://x' }, 'APP_ENV_WEBSOCKET_REDIS_URL'],
    [{ APP_ENV_WEBSOCKET_REQUIRE_ENCRYPTION: 'maybe' }, 'APP_ENV_WEBSOCKET_REQUIRE_ENCRYPTION'],
    [{ APP_ENV_WEBSOCKET_MAX_CONNECTIONS: '-1' }, 'APP_ENV_WEBSOCKET_MAX_CONNECTIONS'],
    [{ APP_ENV_NODE_ID: '1024' }, 'APP_ENV_NODE_ID'],
    [{ APP_ENV_LOG_LEVEL: 'loud' }, 'APP_ENV_LOG_LEVEL'],
    [{ APP_ENV_BASE_PATH: 'v1' }, 'APP_ENV_BASE_PATH'],
    [{ APP_ENV_KAFKA_BROKERS: 'k1' }, 'APP_ENV_KAFKA_BROKERS'],
    [{ APP_ENV_KAFKA_BROKERS: 'k1:9092', APP_ENV_KAFKA_SASL_MECHANISM: 'gssapi' }, 'APP_ENV_KAFKA_SASL_MECHANISM'],
    [{ APP_ENV_WEBSOCKET_ROOM_ALLOW: 'ok,(' }, 'APP_ENV_WEBSOCKET_ROOM_ALLOW'],
    [{ APP_ENV_BASIC_AUTH_USERS: 'svc:plaintext-password' }, 'APP_ENV_BASIC_AUTH_USERS'],
    [{ APP_ENV_NODE_ID: '' }, 'APP_ENV_NODE_ID'],
    [{ APP_ENV_WEBSOCKET_PRESENCE_TTL_SECONDS: '1' }, 'APP_ENV_WEBSOCKET_PRESENCE_TTL_SECONDS'],
    [{ APP_ENV_KAFKA_BROKERS: 'k1:9092', APP_ENV_KAFKA_SESSION_TIMEOUT_MS: 'soon' }, 'APP_ENV_KAFKA_SESSION_TIMEOUT_MS'],
    [{ APP_ENV_KAFKA_BROKERS: 'k1:9092', APP_ENV_KAFKA_SESSION_TIMEOUT_MS: '6000', APP_ENV_KAFKA_HEARTBEAT_INTERVAL_MS: '6000' }, 'APP_ENV_KAFKA_HEARTBEAT_INTERVAL_MS'],
  ])('refuses %o naming %s', (env, variable) => {
    const error = failure(env);
    expect(error.variable).toBe(variable);
    expect(error.message.startsWith(`${variable}: `)).toBe(true);
  });

  it('never echoes a secret in the error', () => {
    expect(failure({ APP_ENV_DB_URL: 'postgres//user:hunter2@db' }).message).not.toContain('hunter2');
    expect(failure({ APP_ENV_BASIC_AUTH_USERS: 'svc:hunter2' }).message).not.toContain('hunter2');
  });

  it('accepts service users with hashes from hash-password', async () => {
    const hash = await hashPassword('a long enough password');
    expect(loadConfig({ APP_ENV_BASIC_AUTH_USERS: `svc-a:${hash}, svc-b:${hash}` }).basicAuthUsers.get('svc-b')).toBe(hash);
  });

  it('stops start-up with one line naming the variable', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/bootstrap/main.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', PORT: 'eighty' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual(['signal: invalid configuration: PORT: "eighty" is not a whole number']);
  });

  it('hash-password prints a hash that verifies, alone on the last line', async () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/bootstrap/hash-password.ts', 'a long enough password'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(0);
    const hash = result.stdout.trim().split('\n').at(-1) as string;
    const { verifyPassword } = await import('../../src/domain/password-hash.ts');
    expect(await verifyPassword('a long enough password', hash)).toBe(true);
    expect(await verifyPassword('another password', hash)).toBe(false);
  });
});

/** The HKDF info every bench client and signal server agree on (signal's default). */
export const ECDH_INFO = 'ignis-ecdh-p256-aes-256-gcm-v1';

/**
 * The environment of a bench signal server: loopback, ephemeral port, quiet
 * logs, and embedded mode whatever the caller's environment says (every
 * external dependency blanked). `extra` adds or overrides variables, e.g.
 * a Redis URL for the two-instance scenarios.
 */
export function signalServerEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    APP_ENV_DATA_DIR: dataDir,
    APP_ENV_LOG_LEVEL: 'warn',
    APP_ENV_WEBSOCKET_ECDH_INFO: ECDH_INFO,
    APP_ENV_WEBSOCKET_REDIS_URL: '',
    APP_ENV_WEBSOCKET_REDIS_HOST: '',
    APP_ENV_JWKS_URL: '',
    APP_ENV_KAFKA_BROKERS: '',
    APP_ENV_DB_URL: '',
    APP_ENV_WEBSOCKET_MAX_CONNECTIONS: '',
    APP_ENV_WEBSOCKET_ALLOWED_ORIGINS: '',
    ...extra,
  };
}

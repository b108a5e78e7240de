/**
 * Structured logging: one JSON line per call. `fields` carries the keys
 * operators search for (clientId, userId, event, room, code, topic,
 * partition, offset, recipientId, instanceId, requestId). Never pass a
 * token, a key or a password. The method shapes match pino's so pino is the
 * production adapter without a wrapper.
 */
export interface Logger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** For tests and tools that want no output. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

import { pino } from 'pino';
import type { Logger } from '../application/ports/logger.port.ts';
import type { LogLevel } from './config.ts';

/**
 * One JSON line per event on stdout, with ISO timestamps and the instance id
 * on every line so that logs from several replicas can be told apart.
 */
export function createLogger(level: LogLevel, instanceId: string): Logger {
  return pino({
    level,
    base: { instanceId },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }) as unknown as Logger;
}

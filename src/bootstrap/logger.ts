import { pino } from 'pino';
import type { Logger } from '../application/ports/logger.port.ts';
import type { LogLevel } from './config.ts';

/**
 * Lines waiting for stdout beyond this are dropped rather than let the heap
 * grow without bound while nothing reads the logs.
 */
const MAX_BUFFERED_LOG_BYTES = 16 * 1024 * 1024;

type Destination = ReturnType<typeof pino.destination>;
let stdout: Destination | undefined;

/**
 * stdout, written asynchronously. A synchronous write to a pipe whose
 * reader lags (a log shipper, a container runtime under load) meets EAGAIN,
 * and pino's synchronous destination then sleeps the whole thread 100 ms per
 * retry: the event loop stalled for hundreds of milliseconds with the CPU
 * idle, sockets and timers waiting behind a log line. Written
 * asynchronously, lines queue in memory (bounded, above) and go out in
 * order; whatever is still queued is written before the process exits.
 */
function stdoutDestination(): Destination {
  if (stdout === undefined) {
    const destination = pino.destination({ dest: 1, sync: false, maxLength: MAX_BUFFERED_LOG_BYTES });
    process.once('exit', () => {
      try {
        destination.flushSync();
      } catch {
        // Nothing left to write to, or not open yet: exiting anyway.
      }
    });
    stdout = destination;
  }
  return stdout;
}

/**
 * One JSON line per event on stdout, with ISO timestamps and the instance id
 * on every line so that logs from several replicas can be told apart.
 */
export function createLogger(level: LogLevel, instanceId: string): Logger {
  return pino(
    {
      level,
      base: { instanceId },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stdoutDestination(),
  ) as unknown as Logger;
}

/** Resolves once every line logged so far has been handed to stdout (bounded by `timeoutMs`). */
export function flushLogs(timeoutMs = 1_000): Promise<void> {
  const destination = stdout;
  if (destination === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    try {
      destination.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

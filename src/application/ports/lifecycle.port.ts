/**
 * Optional capabilities of adapters, each checked where it is used rather
 * than forced onto every port.
 */

/** Releases connections and timers; safe to call twice. */
export interface Closeable {
  close(): Promise<void>;
}

export interface DependencyHealth {
  /** Stable name shown by /ready: `redis`, `database`, `kafka`. */
  name: string;
  ready: boolean;
  /** Short operator-facing reason when not ready. */
  detail?: string;
}

/** Reports whether the adapter can currently do its job. Must not block. */
export interface HealthReporter {
  health(): DependencyHealth;
}

export function isCloseable(value: unknown): value is Closeable {
  return typeof (value as Partial<Closeable> | null)?.close === 'function';
}

export function isHealthReporter(value: unknown): value is HealthReporter {
  return typeof (value as Partial<HealthReporter> | null)?.health === 'function';
}

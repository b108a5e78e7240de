import type { Cancel, Clock } from '../../application/ports/clock.port.ts';

/** setTimeout cannot wait longer than this; later deadlines are reached in hops. */
const MAX_TIMEOUT_MS = 2_147_483_647;

/** Wall-clock time and Node timers. Timers never keep the process alive. */
export class SystemClock implements Clock {
  now(): number {
    return Date.now();
  }

  schedule(at: number, fn: () => void): Cancel {
    let handle: NodeJS.Timeout | undefined;
    const arm = (): void => {
      const delay = at - Date.now();
      if (delay > MAX_TIMEOUT_MS) {
        handle = setTimeout(arm, MAX_TIMEOUT_MS);
      } else {
        handle = setTimeout(fn, Math.max(0, delay));
      }
      handle.unref();
    };
    arm();
    return () => {
      if (handle !== undefined) clearTimeout(handle);
      handle = undefined;
    };
  }
}

/** A clock moved by hand, for deterministic lifecycle tests. */
export class ManualClock implements Clock {
  private current: number;
  private readonly pending = new Set<{ at: number; fn: () => void }>();

  constructor(start = 1_700_000_000_000) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  schedule(at: number, fn: () => void): Cancel {
    const entry = { at, fn };
    this.pending.add(entry);
    return () => {
      this.pending.delete(entry);
    };
  }

  /** Moves time forward, running every timer that falls due, in deadline order. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      let next: { at: number; fn: () => void } | undefined;
      for (const entry of this.pending) if (entry.at <= target && (next === undefined || entry.at < next.at)) next = entry;
      if (next === undefined) break;
      this.pending.delete(next);
      this.current = Math.max(this.current, next.at);
      next.fn();
    }
    this.current = target;
  }
}

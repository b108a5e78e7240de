import type { Cancel, Clock } from '../../application/ports/clock.port.ts';

/** Deadlines are kept in slots of this many milliseconds; a timer runs at the first sweep after its slot. */
export const SLOT_MS = 100;

/**
 * One scheduled call. Kept in the set of its slot until it runs or is
 * cancelled; `fn` is cleared when either happened.
 */
interface Entry {
  fn: (() => void) | undefined;
  readonly slot: number;
}

/** A sweep that finds more slots than this between two sweeps (a stall, or the wall clock stepped forward) walks the table instead. */
const WALK_LIMIT = 1_024;

/**
 * Wall-clock time, and timers in one shared table of 100 ms slots swept by
 * a single Node timer. Connection timers (authentication and handshake
 * deadlines, heartbeat checks, token expiry: two per idle connection) are
 * seconds to hours long and need no millisecond precision; a Node
 * `setTimeout` per timer cost ~0.5 KB of heap each (the `Timeout` object,
 * the closures around it, and a `TimersList` for nearly every distinct
 * delay), where a slot entry costs an object and a set slot. A timer runs
 * no earlier than its deadline and normally within 100–200 ms after it.
 * Timers never keep the process alive.
 */
export class SystemClock implements Clock {
  readonly #slots = new Map<number, Set<Entry>>();
  /** The first slot not swept yet. */
  #nextSlot = 0;
  #sweeper: NodeJS.Timeout | undefined;

  now(): number {
    return Date.now();
  }

  schedule(at: number, fn: () => void): Cancel {
    // With no timers waiting the sweep has stopped and its position is stale.
    if (this.#sweeper === undefined) this.#nextSlot = Math.floor(Date.now() / SLOT_MS) + 1;
    // The slot whose start is at or after the deadline, so that sweeping it is never early.
    const slot = Math.max(Math.ceil(at / SLOT_MS), this.#nextSlot);
    const entry: Entry = { fn, slot };
    let entries = this.#slots.get(slot);
    if (entries === undefined) this.#slots.set(slot, (entries = new Set()));
    entries.add(entry);
    if (this.#sweeper === undefined) {
      this.#sweeper = setInterval(() => this.#sweep(), SLOT_MS);
      this.#sweeper.unref();
    }
    return () => this.#cancel(entry);
  }

  /** Timers waiting (for tests and diagnostics). */
  get pending(): number {
    let count = 0;
    for (const entries of this.#slots.values()) count += entries.size;
    return count;
  }

  #cancel(entry: Entry): void {
    if (entry.fn === undefined) return;
    entry.fn = undefined;
    const entries = this.#slots.get(entry.slot);
    if (entries === undefined) return;
    entries.delete(entry);
    if (entries.size === 0) this.#slots.delete(entry.slot);
  }

  #sweep(): void {
    const last = Math.floor(Date.now() / SLOT_MS);
    const first = this.#nextSlot;
    if (last < first) return;
    // Moved on first: a timer scheduled by one that runs now goes to a later sweep, never to a slot already passed.
    this.#nextSlot = last + 1;
    if (last - first < WALK_LIMIT) {
      for (let slot = first; slot <= last; slot++) this.#runSlot(slot);
    } else {
      for (const slot of [...this.#slots.keys()].filter((key) => key <= last).sort((a, b) => a - b)) this.#runSlot(slot);
    }
    if (this.#slots.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  #runSlot(slot: number): void {
    const entries = this.#slots.get(slot);
    if (entries === undefined) return;
    this.#slots.delete(slot);
    for (const entry of entries) {
      const fn = entry.fn;
      if (fn === undefined) continue;
      entry.fn = undefined;
      // One failing timer must not keep the others of its slot from running.
      try {
        fn();
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
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

import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Waiting for the machine to go quiet before a scenario starts. The work a
 * scenario leaves behind outlives it: the pipeline's PostgreSQL writes its
 * dirty pages and checkpoints after the bench database is dropped, a
 * server's exit frees memory, the kernel reclaims sockets. On 2 cores
 * that spill-over lands on the next scenario's first rounds (the REST
 * scenario of 2026-12-07 19:31, run right after the pipeline, spent 78 µs
 * of CPU per request in its first rounds and 50 µs in its last, the limit
 * beside it 42 and 37).
 */

/** Busy and total jiffies of all CPUs together, from the first line of /proc/stat; undefined without /proc. */
export function cpuJiffies(): { busy: number; total: number } | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/stat', 'utf8');
  } catch {
    return undefined;
  }
  const line = text.slice(0, text.indexOf('\n'));
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest counts are already in user)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** The share (0–1) of all CPUs busy between two readings. */
export function busyShare(from: { busy: number; total: number }, to: { busy: number; total: number }): number {
  const total = to.total - from.total;
  return total <= 0 ? 0 : (to.busy - from.busy) / total;
}

export interface QuietOptions {
  /** The machine counts as quiet once a window's busy share is at most this (0–1). */
  maxBusyShare: number;
  /** Length of each measured window. */
  windowMs: number;
  /** Windows in a row that must be quiet. */
  quietWindows: number;
  /** Give up waiting after this long (a machine shared with others may never be quiet). */
  timeoutMs: number;
}

export const DEFAULT_QUIET: QuietOptions = { maxBusyShare: 0.15, windowMs: 500, quietWindows: 2, timeoutMs: 30_000 };

export interface QuietReport {
  /** How long the wait took. */
  waitedMs: number;
  /** Whether the machine went quiet before the timeout. */
  quiet: boolean;
  /** Busy share of the last window measured. */
  lastBusyShare: number;
}

/**
 * Resolves once `quietWindows` consecutive windows were at most
 * `maxBusyShare` busy, or at the timeout (reported, not thrown: a busy
 * machine still gets measured, and the report says so). Without /proc it
 * returns at once.
 */
export async function waitForQuiet(options: QuietOptions = DEFAULT_QUIET, read: () => { busy: number; total: number } | undefined = cpuJiffies): Promise<QuietReport> {
  const started = Date.now();
  let previous = read();
  if (previous === undefined) return { waitedMs: 0, quiet: true, lastBusyShare: 0 };
  let inARow = 0;
  let lastBusyShare = 0;
  while (Date.now() - started < options.timeoutMs) {
    await sleep(options.windowMs);
    const current = read();
    if (current === undefined) break;
    lastBusyShare = busyShare(previous, current);
    previous = current;
    inARow = lastBusyShare <= options.maxBusyShare ? inARow + 1 : 0;
    if (inARow >= options.quietWindows) return { waitedMs: Date.now() - started, quiet: true, lastBusyShare };
  }
  return { waitedMs: Date.now() - started, quiet: false, lastBusyShare };
}

import { describe, expect, it } from 'vitest';
import { busyShare, cpuJiffies, waitForQuiet } from '../../bench/lib/quiet.ts';

/** A /proc/stat reader that plays back the given busy shares, one per window, of 100 jiffies each. */
function playback(shares: number[]): () => { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  let index = -1;
  return () => {
    if (index >= 0) {
      const share = shares[Math.min(index, shares.length - 1)]!;
      busy += share * 100;
      total += 100;
    }
    index += 1;
    return { busy, total };
  };
}

describe('waiting for a quiet machine before a bench scenario', () => {
  it('reads the busy share of all CPUs from /proc/stat', () => {
    const first = cpuJiffies();
    expect(first).toBeDefined();
    expect(first!.total).toBeGreaterThan(0);
    expect(first!.busy).toBeLessThanOrEqual(first!.total);
    expect(busyShare({ busy: 10, total: 100 }, { busy: 40, total: 200 })).toBeCloseTo(0.3);
    expect(busyShare({ busy: 10, total: 100 }, { busy: 10, total: 100 })).toBe(0);
  });

  it('returns after the given number of quiet windows in a row, not at the first quiet one', async () => {
    const report = await waitForQuiet({ maxBusyShare: 0.2, windowMs: 5, quietWindows: 2, timeoutMs: 5_000 }, playback([0.9, 0.1, 0.8, 0.1, 0.05, 0.9]));
    expect(report.quiet).toBe(true);
    expect(report.lastBusyShare).toBeCloseTo(0.05);
    // Five windows were read: the quiet one at the second was broken by the third.
    expect(report.waitedMs).toBeGreaterThanOrEqual(5 * 5 - 2);
  });

  it('gives up at the timeout on a machine that stays busy, and says so', async () => {
    const report = await waitForQuiet({ maxBusyShare: 0.2, windowMs: 5, quietWindows: 2, timeoutMs: 60 }, playback([0.7]));
    expect(report.quiet).toBe(false);
    expect(report.lastBusyShare).toBeCloseTo(0.7);
    expect(report.waitedMs).toBeGreaterThanOrEqual(60);
  });

  it('does not wait where there is no /proc', async () => {
    const report = await waitForQuiet({ maxBusyShare: 0.2, windowMs: 1_000, quietWindows: 2, timeoutMs: 10_000 }, () => undefined);
    expect(report).toEqual({ waitedMs: 0, quiet: true, lastBusyShare: 0 });
  });
});

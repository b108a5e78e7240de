import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SLOT_MS, SystemClock } from '../../src/adapters/system/system-clock.ts';

const START = 1_800_000_000_000;

describe('SystemClock timers (one shared table of slots)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(START);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs a timer no earlier than its deadline and within two slots after it', () => {
    const clock = new SystemClock();
    const ran: number[] = [];
    clock.schedule(START + 1_234, () => ran.push(Date.now()));
    vi.advanceTimersByTime(1_233);
    expect(ran).toEqual([]);
    vi.advanceTimersByTime(2 * SLOT_MS);
    expect(ran).toHaveLength(1);
    expect(ran[0]).toBeGreaterThanOrEqual(START + 1_234);
    expect(ran[0]).toBeLessThanOrEqual(START + 1_234 + 2 * SLOT_MS);
  });

  it('runs timers in deadline order, each once, and forgets them', () => {
    const clock = new SystemClock();
    const ran: string[] = [];
    clock.schedule(START + 5_000, () => ran.push('c'));
    clock.schedule(START + 300, () => ran.push('a'));
    clock.schedule(START + 2_000, () => ran.push('b'));
    expect(clock.pending).toBe(3);
    vi.advanceTimersByTime(10_000);
    expect(ran).toEqual(['a', 'b', 'c']);
    expect(clock.pending).toBe(0);
  });

  it('runs a deadline already passed at the next sweep', () => {
    const clock = new SystemClock();
    let ran = false;
    clock.schedule(START - 60_000, () => (ran = true));
    expect(ran).toBe(false);
    vi.advanceTimersByTime(2 * SLOT_MS);
    expect(ran).toBe(true);
  });

  it('cancels, and a cancel after the run or a second cancel does nothing', () => {
    const clock = new SystemClock();
    const ran: string[] = [];
    const cancelA = clock.schedule(START + 500, () => ran.push('a'));
    const cancelB = clock.schedule(START + 500, () => ran.push('b'));
    cancelA();
    cancelA();
    expect(clock.pending).toBe(1);
    vi.advanceTimersByTime(1_000);
    expect(ran).toEqual(['b']);
    cancelB();
    expect(clock.pending).toBe(0);
  });

  it('runs a timer that a running timer schedules for now, at a later sweep, not never', () => {
    const clock = new SystemClock();
    const ran: string[] = [];
    clock.schedule(START + 200, () => {
      ran.push('first');
      clock.schedule(Date.now(), () => ran.push('second'));
    });
    vi.advanceTimersByTime(200);
    expect(ran).toEqual(['first']);
    vi.advanceTimersByTime(2 * SLOT_MS);
    expect(ran).toEqual(['first', 'second']);
  });

  it('catches up after the wall clock jumps forward by hours, in deadline order', () => {
    const clock = new SystemClock();
    const ran: string[] = [];
    clock.schedule(START + 3 * 3_600_000, () => ran.push('late'));
    clock.schedule(START + 2 * 3_600_000, () => ran.push('early'));
    clock.schedule(START + 9 * 3_600_000, () => ran.push('not yet'));
    vi.setSystemTime(START + 4 * 3_600_000);
    vi.advanceTimersByTime(2 * SLOT_MS);
    expect(ran).toEqual(['early', 'late']);
    expect(clock.pending).toBe(1);
  });

  it('stops its sweep when nothing waits and starts it again for the next timer', () => {
    const clock = new SystemClock();
    clock.schedule(START + 100, () => undefined);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(500);
    expect(vi.getTimerCount()).toBe(0);
    let ran = false;
    clock.schedule(Date.now() + 1_000, () => (ran = true));
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(1_300);
    expect(ran).toBe(true);
  });
});

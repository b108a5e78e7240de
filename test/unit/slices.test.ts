import { describe, expect, it } from 'vitest';
import { forEachInSlices } from '../../src/adapters/ws/slices.ts';

describe('forEachInSlices', () => {
  it('visits the first slice at once and each further slice in its own macrotask, in order', async () => {
    const tasks: Array<() => void> = [];
    const seen: number[] = [];
    const done = forEachInSlices([1, 2, 3, 4, 5, 6, 7], 3, (item) => seen.push(item), (task) => tasks.push(task));
    expect(seen).toEqual([1, 2, 3]);
    expect(tasks).toHaveLength(1);
    tasks.shift()!();
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    tasks.shift()!();
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(tasks).toHaveLength(0);
    await expect(done).resolves.toBeUndefined();
  });

  it('lets timers and I/O run between slices with the default scheduler', async () => {
    const seen: number[] = [];
    let seenWhenImmediateRan = -1;
    const immediate = new Promise<void>((resolve) =>
      setImmediate(() => {
        seenWhenImmediateRan = seen.length;
        resolve();
      }),
    );
    await Promise.all([forEachInSlices(Array.from({ length: 100 }, (_, index) => index), 10, (item) => seen.push(item)), immediate]);
    expect(seenWhenImmediateRan).toBeGreaterThanOrEqual(10);
    expect(seenWhenImmediateRan).toBeLessThan(100);
    expect(seen).toEqual(Array.from({ length: 100 }, (_, index) => index));
  });

  it('resolves at once for no items and refuses a slice size that is not a positive integer', async () => {
    await expect(forEachInSlices([], 5, () => undefined)).resolves.toBeUndefined();
    expect(() => forEachInSlices([1], 0, () => undefined)).toThrow(/size/);
    expect(() => forEachInSlices([1], 2.5, () => undefined)).toThrow(/size/);
  });
});

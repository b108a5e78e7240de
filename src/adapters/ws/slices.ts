/** Runs a callback in a later macrotask, after pending I/O (setImmediate in production). */
export type Later = (task: () => void) => void;

/**
 * Calls `each` for every item, `size` items per macrotask, and resolves
 * when all are done. A loop over every socket of the instance (10,000
 * pings at 20-40 µs of write syscall each) would hold the event loop for
 * hundreds of milliseconds; in slices, timers and I/O run in between.
 * The items are a snapshot: what joins later is not visited, and `each`
 * decides what to do with an item that is no longer relevant.
 */
export function forEachInSlices<T>(items: readonly T[], size: number, each: (item: T) => void, later: Later = setImmediate): Promise<void> {
  if (!Number.isSafeInteger(size) || size < 1) throw new Error('size must be a positive integer');
  return new Promise((resolve) => {
    let next = 0;
    const slice = (): void => {
      const end = Math.min(items.length, next + size);
      while (next < end) each(items[next++] as T);
      if (next < items.length) later(slice);
      else resolve();
    };
    slice();
  });
}

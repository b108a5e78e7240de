import { readdir, stat } from 'node:fs/promises';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

/**
 * prom-client's default collectors that walk every handle or file
 * descriptor of the process on each scrape, synchronously: at 20,000
 * sockets a scrape held the event loop for about 55 ms (open fds 23 ms by
 * `readdirSync('/proc/self/fd')`, active handles 12 + 9 ms by
 * `process._getActiveHandles()` twice, active resources 5 + 3 ms by
 * `getActiveResourcesInfo()` twice). They are replaced below by collectors
 * that cost the same at any connection count, or walk the list once.
 */
const REPLACED = [
  'process_open_fds',
  'nodejs_active_handles',
  'nodejs_active_handles_total',
  'nodejs_active_resources',
  'nodejs_active_resources_total',
] as const;

const FD_DIRECTORY = '/proc/self/fd';

/** What the collectors read; tests replace it. */
export interface ProcessProbe {
  /** `st_size` of /proc/self/fd: the number of open fds since Linux 6.2, 0 before. */
  fdDirectorySize(): Promise<number>;
  /** Entries of /proc/self/fd (read in libuv's thread pool, not on the event loop). */
  fdDirectoryEntries(): Promise<number>;
  /** One name per active handle, request or timer (`process.getActiveResourcesInfo`). */
  activeResources(): readonly string[];
}

const linuxProbe: ProcessProbe = {
  fdDirectorySize: async () => (await stat(FD_DIRECTORY)).size,
  fdDirectoryEntries: async () => (await readdir(FD_DIRECTORY)).length,
  activeResources: () => process.getActiveResourcesInfo(),
};

/**
 * Node's process metrics (CPU, memory, event loop, GC, fds, active
 * resources) under their standard names, in `registry`. Every default
 * series is kept except `nodejs_active_handles` and its total, which only
 * repeat the handle part of `nodejs_active_resources` through an internal
 * Node API; `nodejs_active_resources{type}` and `_total` come from one walk
 * of the resource list per scrape, and `process_open_fds` from one stat of
 * /proc/self/fd (Linux 6.2+; older kernels count its entries off the event
 * loop).
 */
export function registerProcessMetrics(registry: Registry, probe: ProcessProbe = linuxProbe): void {
  collectDefaultMetrics({ register: registry });
  for (const name of REPLACED) registry.removeSingleMetric(name);
  const registers = [registry];

  if (process.platform === 'linux') {
    new Gauge({
      name: 'process_open_fds',
      help: 'Number of open file descriptors.',
      registers,
      async collect() {
        try {
          const size = await probe.fdDirectorySize();
          this.set(size > 0 ? size : await probe.fdDirectoryEntries());
        } catch {
          // No /proc: the series stays at its last value.
        }
      },
    });
  }

  // One walk of the resource list serves both series of a scrape.
  let walk: { byType: Map<string, number>; total: number } | undefined;
  const walkOnce = (): { byType: Map<string, number>; total: number } => {
    if (walk === undefined) {
      const byType = new Map<string, number>();
      const resources = probe.activeResources();
      for (const type of resources) byType.set(type, (byType.get(type) ?? 0) + 1);
      walk = { byType, total: resources.length };
      queueMicrotask(() => {
        walk = undefined;
      });
    }
    return walk;
  };
  new Gauge({
    name: 'nodejs_active_resources',
    help: 'Number of active resources that are currently keeping the event loop alive, grouped by async resource type.',
    labelNames: ['type'],
    registers,
    collect() {
      this.reset();
      for (const [type, count] of walkOnce().byType) this.set({ type }, count);
    },
  });
  new Gauge({
    name: 'nodejs_active_resources_total',
    help: 'Total number of active resources.',
    registers,
    collect() {
      this.set(walkOnce().total);
    },
  });
}

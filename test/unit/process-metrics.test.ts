import { readdirSync } from 'node:fs';
import { Registry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import { registerProcessMetrics, type ProcessProbe } from '../../src/adapters/metrics/process-metrics.ts';
import { parseExposition, total } from '../fixtures/prometheus-text.ts';

function fakeProbe(overrides: Partial<ProcessProbe> = {}): ProcessProbe & { walks: number; entriesRead: number } {
  const probe = {
    walks: 0,
    entriesRead: 0,
    fdDirectorySize: async () => 1234,
    fdDirectoryEntries: async () => {
      probe.entriesRead++;
      return 77;
    },
    activeResources: () => {
      probe.walks++;
      return ['TCPSocketWrap', 'TCPSocketWrap', 'Timeout', 'TCPServerWrap', 'TCPSocketWrap'];
    },
    ...overrides,
  };
  return probe;
}

const scrape = async (registry: Registry) => parseExposition(await registry.metrics());

describe('registerProcessMetrics', () => {
  it('keeps the standard process series and drops the internal-API handle series', async () => {
    const registry = new Registry();
    registerProcessMetrics(registry, fakeProbe());
    const scraped = await scrape(registry);
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_max_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(scraped.types.has(name), name).toBe(true);
    }
    expect(scraped.types.has('nodejs_active_handles')).toBe(false);
    expect(scraped.types.has('nodejs_active_handles_total')).toBe(false);
  });

  it('walks the active resources once per scrape for both series, by type', async () => {
    const registry = new Registry();
    const probe = fakeProbe();
    registerProcessMetrics(registry, probe);
    const scraped = await scrape(registry);
    expect(probe.walks).toBe(1);
    expect(total(scraped, 'nodejs_active_resources', { type: 'TCPSocketWrap' })).toBe(3);
    expect(total(scraped, 'nodejs_active_resources', { type: 'Timeout' })).toBe(1);
    expect(total(scraped, 'nodejs_active_resources_total')).toBe(5);
    await scrape(registry);
    expect(probe.walks).toBe(2);
  });

  it('drops a resource type that went away since the last scrape', async () => {
    const registry = new Registry();
    let resources = ['Timeout', 'FSReqCallback'];
    registerProcessMetrics(registry, fakeProbe({ activeResources: () => resources }));
    expect(total(await scrape(registry), 'nodejs_active_resources', { type: 'FSReqCallback' })).toBe(1);
    resources = ['Timeout'];
    const scraped = await scrape(registry);
    expect(scraped.samples.some((sample) => sample.name === 'nodejs_active_resources' && sample.labels.type === 'FSReqCallback')).toBe(false);
  });

  it.runIf(process.platform === 'linux')('counts open fds from the size of /proc/self/fd without listing it', async () => {
    const registry = new Registry();
    const probe = fakeProbe();
    registerProcessMetrics(registry, probe);
    expect(total(await scrape(registry), 'process_open_fds')).toBe(1234);
    expect(probe.entriesRead).toBe(0);
  });

  it.runIf(process.platform === 'linux')('lists /proc/self/fd where the kernel reports no size (before Linux 6.2)', async () => {
    const registry = new Registry();
    const probe = fakeProbe({ fdDirectorySize: async () => 0 });
    registerProcessMetrics(registry, probe);
    expect(total(await scrape(registry), 'process_open_fds')).toBe(77);
    expect(probe.entriesRead).toBe(1);
  });

  it.runIf(process.platform === 'linux')('reports the real number of open fds and active resources with the default probe', async () => {
    const registry = new Registry();
    const scrapeSpy = vi.spyOn(process as unknown as { _getActiveHandles: () => unknown[] }, '_getActiveHandles');
    registerProcessMetrics(registry);
    const scraped = await scrape(registry);
    const listed = readdirSync('/proc/self/fd').length - 1;
    // Other work of the test process may open or close a few in between.
    expect(Math.abs(total(scraped, 'process_open_fds') - listed)).toBeLessThanOrEqual(5);
    expect(total(scraped, 'nodejs_active_resources_total')).toBeGreaterThan(0);
    expect(scrapeSpy).not.toHaveBeenCalled();
    scrapeSpy.mockRestore();
  });
});

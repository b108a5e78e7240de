import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { MirroredHistogram } from '../../src/adapters/metrics/mirrored-histogram.ts';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const HELP = 'HTTP request duration by route template and method';

/** The same observations into prom-client's Histogram and into a MirroredHistogram, each in a registry of its own. */
function both(observations: Array<[Record<'route' | 'method', string>, number]>) {
  const reference = new Registry();
  const histogram = new Histogram({ name: 'd_seconds', help: HELP, labelNames: ['route', 'method'], buckets: BUCKETS, registers: [reference] });
  const mirrored = new Registry();
  const fast = new MirroredHistogram({ name: 'd_seconds', help: HELP, buckets: BUCKETS, registers: [mirrored] });
  const series = new Map<string, ReturnType<typeof fast.series>>();
  for (const [labels, value] of observations) {
    histogram.observe(labels, value);
    const key = `${labels.route} ${labels.method}`;
    if (!series.has(key)) series.set(key, fast.series(labels));
    series.get(key)!.observe(value);
  }
  return { reference, mirrored, fast };
}

const status = { route: '/socket/websocket/clients/status', method: 'GET' };
const markRead = { route: '/notifications/:id/mark-read', method: 'PATCH' };
const odd = { route: 'a "quoted" \\ route\nwith a newline', method: 'GET' };

describe('MirroredHistogram', () => {
  it("writes exactly prom-client's exposition for the same observations, bounds and overflow included", async () => {
    const { reference, mirrored } = both([
      [status, 0.0012],
      [status, 0.005],
      [markRead, 0.3],
      [status, 0],
      [markRead, 12],
      [odd, 2.5],
      [status, 0.07],
    ]);
    expect(await mirrored.metrics()).toBe(await reference.metrics());
    expect(await mirrored.getMetricsAsJSON()).toEqual(await reference.getMetricsAsJSON());
  });

  it('writes only the HELP and TYPE lines before the first series, like prom-client', async () => {
    const { reference, mirrored } = both([]);
    expect(await mirrored.metrics()).toBe(await reference.metrics());
  });

  it('starts again from zero after a reset, keeping its series', async () => {
    const { mirrored, fast } = both([[status, 0.2]]);
    mirrored.resetMetrics();
    const again = new Registry();
    const fresh = new MirroredHistogram({ name: 'd_seconds', help: HELP, buckets: BUCKETS, registers: [again] });
    fresh.series(status);
    expect(await mirrored.metrics()).toBe(await again.metrics());
    expect(fast.type).toBe('histogram');
  });
});

import type { Metric, Registry } from 'prom-client';

/** One label set of a MirroredHistogram: keep it, and observe through it. */
export interface HistogramSeries {
  observe(value: number): void;
}

interface Series {
  readonly labels: Readonly<Record<string, string>>;
  /** Per bucket, not cumulative; the last slot is above the highest bound. */
  readonly counts: number[];
  sum: number;
  count: number;
}

/** One exported sample, in the shape prom-client's registry formats. */
interface Sample {
  labels: Record<string, string | number>;
  sharedLabels: Readonly<Record<string, string>>;
  value: number;
  metricName: string;
  /** prom-client's own: null on bucket samples, undefined on the sum and count. */
  exemplar: null | undefined;
}

/**
 * A histogram kept in plain numbers and handed to a prom-client registry
 * in prom-client's own shape only when scraped, like mirroredCounter:
 * prom-client's Histogram validates and hashes the label set on every
 * observation (~1–2 µs, the largest JavaScript cost left on a REST
 * request), where a series made once costs a bucket search and three adds.
 * The text exposition is the one prom-client's Histogram writes for the
 * same observations (test/unit/mirrored-histogram.test.ts).
 */
export class MirroredHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: readonly number[];
  readonly #series: Series[] = [];

  constructor(config: { name: string; help: string; buckets: readonly number[]; registers: readonly Registry[] }) {
    this.name = config.name;
    this.help = config.help;
    this.#bounds = [...config.buckets].sort((a, b) => a - b);
    // The registry reads metrics through get(), getForPromString() and reset(), which this provides.
    for (const registry of config.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** A new series for `labels` (one per label set: the caller keeps it), exported from then on. */
  series(labels: Readonly<Record<string, string>>): HistogramSeries {
    const series: Series = { labels, counts: new Array<number>(this.#bounds.length + 1).fill(0), sum: 0, count: 0 };
    this.#series.push(series);
    const bounds = this.#bounds;
    return {
      observe(value) {
        let index = 0;
        while (index < bounds.length && value > bounds[index]!) index++;
        series.counts[index]!++;
        series.sum += value;
        series.count++;
      },
    };
  }

  /** Samples with the series' labels kept apart, as the registry's text formatter takes them. */
  async getForPromString(): Promise<{ name: string; help: string; type: string; values: Sample[]; aggregator: string }> {
    const values: Sample[] = [];
    for (const series of this.#series) {
      let cumulative = 0;
      this.#bounds.forEach((bound, index) => {
        cumulative += series.counts[index]!;
        values.push(sample({ le: bound }, series.labels, cumulative, `${this.name}_bucket`, null));
      });
      values.push(sample({ le: '+Inf' }, series.labels, series.count, `${this.name}_bucket`, null));
      values.push(sample({}, series.labels, series.sum, `${this.name}_sum`, undefined));
      values.push(sample({}, series.labels, series.count, `${this.name}_count`, undefined));
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** Samples with every label on each, as getMetricsAsJSON returns them. */
  async get(): Promise<{ name: string; help: string; type: string; values: Omit<Sample, 'sharedLabels'>[]; aggregator: string }> {
    const data = await this.getForPromString();
    return { ...data, values: data.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } })) };
  }

  /** Back to zero; the series stay (their holders keep observing into them). */
  reset(): void {
    for (const series of this.#series) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }
}

function sample(
  labels: Record<string, string | number>,
  sharedLabels: Readonly<Record<string, string>>,
  value: number,
  metricName: string,
  exemplar: null | undefined,
): Sample {
  return { labels, sharedLabels, value, metricName, exemplar };
}

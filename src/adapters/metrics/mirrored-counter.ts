import { Counter, type LabelValues, type Registry } from 'prom-client';

export type LabelledValue = readonly [LabelValues<string>, number];

/**
 * A counter whose values are kept elsewhere (plain numbers, cheap to bump
 * on a hot path) and copied in when the registry is scraped; the label
 * sets `read` returns are exactly the series exposed. `read` must return
 * totals that never decrease.
 */
export function mirroredCounter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  read: () => Iterable<LabelledValue>,
): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}

/** A map's entries as labelled values, the key turned into labels. */
export function labelled<K>(map: ReadonlyMap<K, number>, labels: (key: K) => LabelValues<string>): LabelledValue[] {
  return [...map].map(([key, value]) => [labels(key), value] as const);
}

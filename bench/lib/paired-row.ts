import type { ResultRow } from './results.ts';
import { median, significant, spread } from './stats.ts';

/**
 * One result row from paired rounds (signal's round i ran next to the
 * limit's round i): the medians, every round, the per-round ratios and the
 * spread, so that a reader can tell a steady ratio from a lucky one.
 */
export function pairedRow(
  scenario: string,
  metric: string,
  unit: string,
  signalValues: readonly number[],
  limitValues: readonly number[],
  params: Record<string, unknown>,
): ResultRow {
  if (signalValues.length !== limitValues.length) throw new RangeError(`${scenario}/${metric}: rounds are not paired`);
  const signal = shown(median(signalValues));
  const limit = shown(median(limitValues));
  return {
    scenario,
    metric,
    unit,
    signal,
    peer: null,
    limit,
    ratioToPeer: null,
    ratioToLimit: signal / limit,
    params: {
      ...params,
      signalRounds: signalValues.map((value) => significant(value)),
      limitRounds: limitValues.map((value) => significant(value)),
      pairedRatios: signalValues.map((value, index) => significant(value / limitValues[index]!)),
      signalSpread: significantAll(spread(signalValues)),
      limitSpread: significantAll(spread(limitValues)),
    },
  };
}

/** Large figures are whole numbers; small ones keep three significant digits. */
export function shown(value: number): number {
  return value >= 1000 ? Math.round(value) : significant(value);
}

/** Every value, or undefined when one is missing (no /proc, say). */
export function allDefined(values: ReadonlyArray<number | undefined>): number[] | undefined {
  return values.every((value) => value !== undefined) ? (values as number[]) : undefined;
}

export function sumDefined(values: ReadonlyArray<number | undefined>): number | undefined {
  return allDefined(values)?.reduce((a, b) => a + b, 0);
}

function significantAll(record: { min: number; median: number; max: number }): { min: number; median: number; max: number } {
  return { min: significant(record.min), median: significant(record.median), max: significant(record.max) };
}

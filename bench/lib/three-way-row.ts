import type { ResultRow } from './results.ts';
import { median, significant, spread } from './stats.ts';

/**
 * One result row from rounds in which signal, the peer and the limit took
 * turns (round i of each ran back to back): the medians, every round, the
 * per-round ratios and the spreads, so that a reader can tell a steady ratio
 * from a lucky one. Ratios are signal divided by the other, whatever the
 * metric's direction; the unit says which way is better.
 */
export interface ThreeWayRounds {
  signal: readonly number[];
  peer: readonly number[];
  limit: readonly number[];
}

export function threeWayRow(scenario: string, metric: string, unit: string, rounds: ThreeWayRounds, params: Record<string, unknown>): ResultRow {
  const { signal: s, peer: p, limit: l } = rounds;
  if (s.length !== p.length || s.length !== l.length) throw new RangeError(`${scenario}/${metric}: rounds are not paired`);
  const signal = shown(median(s));
  const peer = shown(median(p));
  const limit = shown(median(l));
  return {
    scenario,
    metric,
    unit,
    signal,
    peer,
    limit,
    ratioToPeer: signal / peer,
    ratioToLimit: signal / limit,
    params: {
      ...params,
      signalRounds: s.map((value) => significant(value)),
      peerRounds: p.map((value) => significant(value)),
      limitRounds: l.map((value) => significant(value)),
      pairedRatiosToPeer: s.map((value, index) => significant(value / p[index]!)),
      pairedRatios: s.map((value, index) => significant(value / l[index]!)),
      signalSpread: spreadOf(s),
      peerSpread: spreadOf(p),
      limitSpread: spreadOf(l),
    },
  };
}

/** Large figures are whole numbers; small ones keep three significant digits. */
function shown(value: number): number {
  return Math.abs(value) >= 1000 ? Math.round(value) : significant(value);
}

function spreadOf(values: readonly number[]): { min: number; median: number; max: number } {
  const { min, median: middle, max } = spread(values);
  return { min: significant(min), median: significant(middle), max: significant(max) };
}

import type { ReliabilityScenario, ScenarioResult } from '../scenario.ts';
import { cleanupAll } from './cleanup.ts';

/**
 * Runs scenarios one after another, each within its time bound. Whatever a
 * scenario does (throws, hangs, leaves a rejection behind) becomes a failed
 * row with the reason; the runner itself carries on.
 */
export interface ScenarioRun {
  scenario: ReliabilityScenario;
  result: ScenarioResult;
  durationMs: number;
  limitMs: number;
  timedOut: boolean;
}

export interface RunOptions {
  quick: boolean;
  log?: (line: string) => void;
  /** Bound for scenarios that set none. */
  defaultLimitMs?: { quick: number; full: number };
}

export const DEFAULT_LIMIT_MS = { quick: 90_000, full: 600_000 };

class TimedOut extends Error {}

export async function runScenarios(scenarios: readonly ReliabilityScenario[], options: RunOptions): Promise<ScenarioRun[]> {
  const runs: ScenarioRun[] = [];
  // Anything that escapes a scenario is charged to the one that is running.
  let strays: string[] = [];
  const onRejection = (reason: unknown) => strays.push(`unhandled rejection: ${describe(reason)}`);
  const onException = (error: unknown) => strays.push(`uncaught exception: ${describe(error)}`);
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  try {
    for (const scenario of scenarios) {
      strays = [];
      const limits = scenario.timeLimitMs ?? options.defaultLimitMs ?? DEFAULT_LIMIT_MS;
      const limitMs = options.quick ? limits.quick : limits.full;
      const controller = new AbortController();
      const started = performance.now();
      options.log?.(`${scenario.name}: started (bound ${Math.round(limitMs / 1000)} s)`);
      let timer: NodeJS.Timeout | undefined;
      let result: ScenarioResult;
      let timedOut = false;
      try {
        result = await Promise.race([
          Promise.resolve().then(() => scenario.run({ quick: options.quick, signal: controller.signal, log: options.log })),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new TimedOut()), limitMs);
          }),
        ]);
        if (!isResult(result)) result = { pass: false, measured: `the scenario returned no result: ${describe(result)}` };
      } catch (error) {
        timedOut = error instanceof TimedOut;
        if (timedOut) controller.abort();
        result = {
          pass: false,
          measured: timedOut ? `Did not finish within its bound of ${Math.round(limitMs / 1000)} s; stopped.` : `The scenario failed with an error: ${describe(error)}`,
          details: timedOut ? undefined : { error: (error as Error)?.stack?.split('\n').slice(0, 8).join('\n') ?? describe(error) },
        };
      } finally {
        clearTimeout(timer);
      }
      const leftovers = await cleanupAll();
      if (leftovers.length > 0) result = { ...result, details: { ...result.details, cleanupProblems: leftovers } };
      if (strays.length > 0) {
        result = {
          ...result,
          pass: false,
          measured: `${result.measured} Also ${strays.length} unhandled error(s) in the runner process while it ran: ${strays.slice(0, 3).join('; ')}.`,
          details: { ...result.details, unhandled: strays.slice(0, 20) },
        };
      }
      const durationMs = Math.round(performance.now() - started);
      options.log?.(`${scenario.name}: ${result.pass ? 'pass' : 'FAIL'} in ${(durationMs / 1000).toFixed(1)} s`);
      runs.push({ scenario, result, durationMs, limitMs, timedOut });
    }
  } finally {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  }
  return runs;
}

function isResult(value: unknown): value is ScenarioResult {
  return typeof value === 'object' && value !== null && typeof (value as ScenarioResult).pass === 'boolean' && typeof (value as ScenarioResult).measured === 'string';
}

function describe(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  try {
    return String(value);
  } catch {
    return 'an unprintable value';
  }
}

/**
 * The contract between `npm run reliability` and its scenarios. A scenario
 * module exports `scenario: ReliabilityScenario` and is listed by name in
 * registry.ts. The runner calls `run` once, alone, within a time bound, and
 * turns what it returns (or throws) into one row of docs/reliability.md.
 *
 * Stable on purpose: fault, load and attack scenarios are written by
 * different people against this file. Add optional fields only.
 */

export type ScenarioCategory = 'fault' | 'load' | 'attack';

export interface ScenarioOptions {
  /** `--quick`: a reduced run; the whole quick suite must finish in under 3 minutes. */
  quick: boolean;
  /**
   * Aborted when the runner gives up on the scenario (its time bound passed).
   * Optional to honour: the runner also stops every server and process a
   * scenario registered with `onCleanup` (lib/cleanup.ts).
   */
  signal?: AbortSignal;
  /** Progress lines for the console (never part of the report). */
  log?: (line: string) => void;
}

export interface ScenarioResult {
  /** What was observed, in one or two sentences with the numbers in them. */
  measured: string;
  pass: boolean;
  /** Machine-readable evidence (counts, first violations, timings); shown under the table. */
  details?: Record<string, unknown>;
  /** Lines for the report's notes section (findings worth reading without the details). */
  notes?: string[];
}

export interface ReliabilityScenario {
  /** Unique, kebab-case; `--only <name>` selects it. */
  name: string;
  category: ScenarioCategory;
  /** What was done, for a reader of the report. */
  what: string;
  /** What must hold for a pass. */
  expected: string;
  /** Overrides the runner's default bound (quick 150 s, full 600 s). */
  timeLimitMs?: { quick: number; full: number };
  run(options: ScenarioOptions): Promise<ScenarioResult>;
}

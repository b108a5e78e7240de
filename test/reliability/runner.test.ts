import { describe, expect, it } from 'vitest';
import { onCleanup } from './lib/cleanup.ts';
import { renderReport, STANDING_NOTES, type Machine } from './lib/report.ts';
import { runScenarios } from './lib/runner.ts';
import { scenarios } from './registry.ts';
import type { ReliabilityScenario, ScenarioResult } from './scenario.ts';

/** The runner's promises: every scenario ends as a row, whatever it does, and the report says so. */
const make = (name: string, run: ReliabilityScenario['run'], timeLimitMs?: ReliabilityScenario['timeLimitMs']): ReliabilityScenario => ({
  name,
  category: 'fault',
  what: `${name} | with a pipe`,
  expected: 'something',
  ...(timeLimitMs === undefined ? {} : { timeLimitMs }),
  run,
});

const machine: Machine = { cpu: 'Test CPU', cores: 2, memoryGiB: 4, os: 'linux', node: 'v20.0.0', load: 0.5, commit: 'abc1234' };

describe('runScenarios', () => {
  it('turns passes, failures, errors, hangs and non-results into rows and carries on', async () => {
    let cleanedUp = false;
    let aborted = false;
    const runs = await runScenarios(
      [
        make('passes', async () => ({ pass: true, measured: 'fine', notes: ['a note'] })),
        make('fails', async () => ({ pass: false, measured: 'broken' })),
        make('throws', async () => {
          throw new Error('boom');
        }),
        make(
          'hangs',
          ({ signal }) => {
            onCleanup(() => {
              cleanedUp = true;
            });
            signal?.addEventListener('abort', () => {
              aborted = true;
            });
            return new Promise<ScenarioResult>(() => undefined);
          },
          { quick: 200, full: 200 },
        ),
        make('returns nothing', async () => undefined as unknown as ScenarioResult),
      ],
      { quick: true },
    );
    expect(runs.map((run) => [run.scenario.name, run.result.pass, run.timedOut])).toEqual([
      ['passes', true, false],
      ['fails', false, false],
      ['throws', false, false],
      ['hangs', false, true],
      ['returns nothing', false, false],
    ]);
    expect(runs[2]?.result.measured).toContain('boom');
    expect(runs[3]?.result.measured).toContain('within its bound of 0 s');
    expect(runs[4]?.result.measured).toContain('no result');
    expect(cleanedUp).toBe(true);
    expect(aborted).toBe(true);

    const report = renderReport({ runs, quick: true, date: new Date('2026-01-02T03:04:05Z'), machine, durationMs: 1234 });
    expect(report).toContain('| date | 2026-01-02T03:04:05.000Z |');
    expect(report).toContain('| machine | Test CPU, 2 cores, 4 GiB, linux |');
    expect(report).toContain('| Node | v20.0.0 |');
    expect(report).toContain('| mode | quick (`--quick`) |');
    expect(report).toContain('| scenario | what was done | expected | measured | result |');
    expect(report).toContain('| passes (fault, ');
    expect(report).toContain('passes \\| with a pipe');
    expect(report.match(/\*\*FAIL\*\*/g)).toHaveLength(4);
    expect(report).toContain('- passes: a note');
    for (const note of STANDING_NOTES) expect(report).toContain(note);
    expect(report).toContain('No load or attack scenario is registered yet.');
  });
});

describe('the registry', () => {
  it('lists each scenario once, under a kebab-case name, with what and expected filled in', () => {
    const names = scenarios.map((scenario) => scenario.name);
    expect(new Set(names).size).toBe(names.length);
    for (const scenario of scenarios) {
      expect(scenario.name).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
      expect(['fault', 'load', 'attack']).toContain(scenario.category);
      expect(scenario.what.length).toBeGreaterThan(20);
      expect(scenario.expected.length).toBeGreaterThan(20);
    }
    expect(names).toEqual(expect.arrayContaining(['stream-frame-fuzz', 'token-attacks', 'authorization', 'rest-input', 'dependency-audit']));
  });
});

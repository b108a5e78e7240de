import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from '../fixtures/server-process.ts';
import { describeMachine, renderReport } from './lib/report.ts';
import { runScenarios } from './lib/runner.ts';
import { scenarios } from './registry.ts';

/**
 * `npm run reliability [-- --quick] [--only <name>]... [--out <file>] [--list]`
 *
 * Runs the registered scenarios one at a time and writes docs/reliability.md.
 * Exits 0 when every scenario passed, 1 when one failed (the report is
 * written either way), 2 on a usage error.
 */
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    out: { type: 'string' },
    list: { type: 'boolean', default: false },
  },
  strict: true,
});

if (values.list === true) {
  for (const scenario of scenarios) process.stdout.write(`${scenario.name}\t${scenario.category}\n`);
  process.exit(0);
}

const only = values.only ?? [];
const unknown = only.filter((name) => !scenarios.some((scenario) => scenario.name === name));
if (unknown.length > 0) {
  process.stderr.write(`reliability: no scenario named ${unknown.join(', ')}; known: ${scenarios.map((s) => s.name).join(', ')}\n`);
  process.exit(2);
}
const selected = only.length === 0 ? scenarios : scenarios.filter((scenario) => only.includes(scenario.name));
const quick = values.quick === true;
const out = resolve(values.out ?? resolve(ROOT, 'docs/reliability.md'));

const began = performance.now();
const log = (line: string): void => {
  process.stderr.write(`[reliability ${((performance.now() - began) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
};

async function main(): Promise<number> {
  const date = new Date();
  const machine = describeMachine();
  log(`${quick ? 'quick' : 'full'} run of ${selected.length} scenarios on ${machine.cpu} (${machine.cores} cores), Node ${machine.node}`);
  const runs = await runScenarios(selected, { quick, log });
  const report = renderReport({ runs, quick, date, machine, durationMs: performance.now() - began });
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, report);
  const failed = runs.filter((run) => !run.result.pass);
  for (const run of runs) log(`${run.result.pass ? 'pass' : 'FAIL'}  ${run.scenario.name}: ${run.result.measured}`);
  log(`wrote ${out}: ${runs.length - failed.length}/${runs.length} passed in ${((performance.now() - began) / 1000).toFixed(0)} s`);
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`reliability: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);

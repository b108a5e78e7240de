import { mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { summarizeProfileFile } from './lib/cpu-profile.ts';
import { killAll, ROOT } from './lib/processes.ts';
import { waitForQuiet } from './lib/quiet.ts';
import { writeResults, type ResultRow, type Scenario } from './lib/results.ts';
import { broadcastScenario } from './scenarios/broadcast.ts';
import { pipelineScenario } from './scenarios/pipeline.ts';
import { restStatusScenario } from './scenarios/rest-status.ts';
import { connectionAdmissionScenario } from './scenarios/connection-admission.ts';
import { idleMemoryScenario } from './scenarios/idle-memory.ts';
import { roomFanoutRedisScenario } from './scenarios/room-fanout-redis.ts';

/**
 * `npm run bench`: runs every scenario (or those named with --scenario) and
 * writes latest.json and latest.md.
 *
 *   --quick           small sizes and one or two rounds, scenarios side by side: a check that every scenario runs, not a measurement
 *   --out <dir>       where to write the results (default bench/results)
 *   --profile <dir>   also record a CPU profile of the signal server and print its top functions
 *   --scenario <name> only this scenario (repeatable)
 */
const SCENARIOS: readonly Scenario[] = [broadcastScenario, pipelineScenario, restStatusScenario, roomFanoutRedisScenario, connectionAdmissionScenario, idleMemoryScenario];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    profile: { type: 'string' },
    scenario: { type: 'string', multiple: true },
  },
  strict: true,
});

const quick = values.quick === true;
const outDir = resolve(values.out ?? join(ROOT, 'bench/results'));
const profileDir = values.profile === undefined ? undefined : resolve(values.profile);
const selected = values.scenario === undefined ? SCENARIOS : SCENARIOS.filter((scenario) => values.scenario!.includes(scenario.name));
if (selected.length === 0) {
  process.stderr.write(`bench: no scenario named ${values.scenario!.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}\n`);
  process.exit(2);
}

// Everything is bounded: a hung server or client fleet ends the run, never
// the machine. The bound is per scenario, so running more of them never
// trips it.
const scenarioBoundMs = (quick ? 90 : 15 * 60) * 1000;
function armDeadline(name: string): NodeJS.Timeout {
  const timer = setTimeout(() => {
    process.stderr.write(`bench: scenario ${name} gave up after ${scenarioBoundMs / 1000} s\n`);
    killAll();
    process.exit(1);
  }, scenarioBoundMs);
  timer.unref();
  return timer;
}

const log = (line: string): void => {
  process.stderr.write(`[bench ${(performance.now() / 1000).toFixed(1).padStart(5)} s] ${line}\n`);
};

async function main(): Promise<void> {
  const date = new Date();
  const started = performance.now();
  if (profileDir !== undefined) await mkdir(profileDir, { recursive: true });
  const runOne = async (scenario: (typeof selected)[number], say: (line: string) => void): Promise<ResultRow[]> => {
    say(`scenario ${scenario.name}${quick ? ' (quick)' : ''}`);
    const deadline = armDeadline(scenario.name);
    const result = await scenario.run({ quick, profileDir, log: say });
    clearTimeout(deadline);
    return result;
  };
  const rows: ResultRow[] = [];
  if (quick) {
    // Quick mode measures nothing, so the scenarios run side by side (each
    // has its own servers, ports, Redis and database): the run takes about as
    // long as the slowest one. Rows keep the scenarios' order.
    const results = await Promise.all(selected.map((scenario) => runOne(scenario, (line) => log(`${scenario.name}: ${line}`))));
    for (const each of results) rows.push(...each);
  } else {
    // Full runs measure: one scenario at a time, nothing else on the machine,
    // and each starts once what the one before left running has died down
    // (bench/lib/quiet.ts). The wait is recorded with the scenario's rows.
    for (const scenario of selected) {
      const settled = await waitForQuiet();
      log(`machine ${settled.quiet ? 'quiet' : 'still busy'} after ${(settled.waitedMs / 1000).toFixed(1)} s (last ${Math.round(settled.lastBusyShare * 100)} % busy)`);
      const result = await runOne(scenario, log);
      for (const row of result) row.params = { ...row.params, quietBefore: settled };
      rows.push(...result);
    }
  }
  const durationSec = (performance.now() - started) / 1000;
  const written = await writeResults(outDir, rows, { scenarios: selected, quick, date, durationSec });
  for (const row of rows) {
    log(`${row.scenario} ${row.metric}: signal ${row.signal} ${row.unit}, limit ${row.limit}, signal/limit ${row.ratioToLimit.toFixed(2)}`);
  }
  log(`wrote ${written.json} and ${written.markdown} in ${Math.round(durationSec)} s`);
  if (profileDir !== undefined) {
    for (const file of (await readdir(profileDir)).filter((name) => name.endsWith('.cpuprofile'))) {
      process.stdout.write(`${await summarizeProfileFile(join(profileDir, file))}\n`);
    }
  }
}

main().then(
  () => {
    killAll();
    process.exit(0);
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
    killAll();
    process.exit(1);
  },
);

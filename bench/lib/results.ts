import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';

/**
 * One measured figure. `signal` is this project; `peer` a comparable
 * product measured the same way (none yet); `limit` the bare baseline doing
 * only the unavoidable work. Ratios are signal divided by the other, so for
 * a higher-is-better metric 1.0 means "as fast as".
 */
export interface ResultRow {
  scenario: string;
  metric: string;
  unit: string;
  signal: number;
  peer: number | null;
  limit: number;
  ratioToPeer: number | null;
  ratioToLimit: number;
  params: Record<string, unknown>;
}

export interface ScenarioOptions {
  quick: boolean;
  /** When set, the scenario writes a CPU profile of the signal server here. */
  profileDir?: string;
  log(line: string): void;
}

/** A benchmark scenario: one module under bench/scenarios/, run by bench/run.ts. */
export interface Scenario {
  readonly name: string;
  /** One sentence for the report: what is measured. */
  readonly summary: string;
  run(options: ScenarioOptions): Promise<ResultRow[]>;
}

export interface Machine {
  cpuModel: string;
  cores: number;
  node: string;
  os: string;
  memoryGiB: number;
}

export function machine(): Machine {
  const all = cpus();
  return {
    cpuModel: all[0]?.model.trim() ?? 'unknown',
    cores: all.length,
    node: process.version,
    os: `${platform()} ${release()}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
  };
}

export async function writeResults(
  outDir: string,
  rows: readonly ResultRow[],
  context: { scenarios: readonly Scenario[]; quick: boolean; date: Date; durationSec: number },
): Promise<{ json: string; markdown: string }> {
  await mkdir(outDir, { recursive: true });
  const json = join(outDir, 'latest.json');
  const markdown = join(outDir, 'latest.md');
  await writeFile(json, `${JSON.stringify(rows, null, 2)}\n`);
  await writeFile(markdown, renderMarkdown(rows, context));
  return { json, markdown };
}

function renderMarkdown(
  rows: readonly ResultRow[],
  context: { scenarios: readonly Scenario[]; quick: boolean; date: Date; durationSec: number },
): string {
  const host = machine();
  const figure = (value: number | null): string => (value === null ? '–' : formatNumber(value));
  const ratio = (value: number | null): string => (value === null ? '–' : value.toFixed(2));
  const lines = [
    '# Benchmark results',
    '',
    `- Date: ${context.date.toISOString()}${context.quick ? ' (quick run: fewer broadcasts and rounds)' : ''}`,
    `- Machine: ${host.cpuModel}, ${host.cores} cores, ${host.memoryGiB} GiB, ${host.os}`,
    `- Node: ${host.node}`,
    `- Wall time of the run: ${Math.round(context.durationSec)} s`,
    '',
    '| scenario | metric | unit | signal | peer | limit | signal/peer | signal/limit |',
    '|---|---|---|---:|---:|---:|---:|---:|',
    ...rows.map(
      (row) =>
        `| ${row.scenario} | ${row.metric} | ${row.unit} | ${figure(row.signal)} | ${figure(row.peer)} | ${figure(row.limit)} | ${ratio(row.ratioToPeer)} | ${ratio(row.ratioToLimit)} |`,
    ),
    '',
    'Figures are medians over alternating rounds (signal, limit, signal, limit, …); each row\'s `params` in',
    '`latest.json` hold every round, the min and max. See `bench/README.md` for what each scenario does.',
    '',
    '## Scenarios',
    '',
    ...context.scenarios.map((scenario) => `- **${scenario.name}**: ${scenario.summary}`),
    '',
    '## Parameters',
    '',
    ...rows.flatMap((row) => [`### ${row.scenario} / ${row.metric}`, '', '```json', JSON.stringify(row.params, null, 2), '```', '']),
  ];
  return `${lines.join('\n')}`;
}

function formatNumber(value: number): string {
  return Math.abs(value) >= 100 ? Math.round(value).toLocaleString('en-US') : value.toPrecision(3);
}

import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { ROOT } from './processes.ts';

/**
 * Reads a V8 `.cpuprofile` (what `node --cpu-prof` and the inspector's
 * Profiler.stop produce) and ranks functions by self time and by total
 * (inclusive) time, leaving out idle samples.
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionCost {
  name: string;
  location: string;
  selfMs: number;
  totalMs: number;
}

export interface ProfileSummary {
  busyMs: number;
  idleMs: number;
  functions: FunctionCost[];
}

const IDLE = '(idle)';

function describe(node: ProfileNode): { name: string; location: string } {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName === '' ? '(anonymous)' : functionName;
  if (url === '') return { name, location: '' };
  if (!url.startsWith('file://')) return { name, location: `${url}:${lineNumber + 1}` };
  // Project files run through the tsx transform, whose line numbers are not the source's.
  const path = relative(ROOT, new URL(url).pathname);
  return { name, location: path.endsWith('.ts') ? path : `${path}:${lineNumber + 1}` };
}

export function summarizeProfile(profile: CpuProfile): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const costs = new Map<string, FunctionCost>();
  const keyOf = new Map<number, string>();
  for (const node of profile.nodes) {
    const { name, location } = describe(node);
    const key = `${name} ${location}`;
    keyOf.set(node.id, key);
    if (!costs.has(key)) costs.set(key, { name, location, selfMs: 0, totalMs: 0 });
  }

  let busyMs = 0;
  let idleMs = 0;
  for (let index = 0; index < profile.samples.length; index++) {
    const id = profile.samples[index]!;
    // A sample's delta is the time until the next one; the last has none.
    const ms = (profile.timeDeltas[index + 1] ?? 0) / 1000;
    const node = byId.get(id);
    if (node === undefined) continue;
    if (node.callFrame.functionName === IDLE) {
      idleMs += ms;
      continue;
    }
    busyMs += ms;
    costs.get(keyOf.get(id)!)!.selfMs += ms;
    // Inclusive time counts a recursive function once per sample.
    const seen = new Set<string>();
    for (let current: number | undefined = id; current !== undefined; current = parent.get(current)) {
      const key = keyOf.get(current)!;
      if (seen.has(key)) continue;
      seen.add(key);
      costs.get(key)!.totalMs += ms;
    }
  }
  return { busyMs, idleMs, functions: [...costs.values()] };
}

export function renderSummary(summary: ProfileSummary, top = 25): string {
  const percent = (ms: number): string => `${((ms * 100) / summary.busyMs).toFixed(1).padStart(5)}%`;
  const row = (cost: FunctionCost, ms: number): string =>
    `${ms.toFixed(0).padStart(7)} ms ${percent(ms)}  ${cost.name}${cost.location === '' ? '' : `  ${cost.location}`}`;
  const bySelf = [...summary.functions].sort((a, b) => b.selfMs - a.selfMs).slice(0, top);
  const byTotal = [...summary.functions]
    .filter((cost) => cost.location !== '' && cost.name !== '(root)')
    .sort((a, b) => b.totalMs - a.totalMs)
    .slice(0, top);
  return [
    `busy ${summary.busyMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms`,
    '',
    `top ${top} by self time (share of busy time):`,
    ...bySelf.map((cost) => row(cost, cost.selfMs)),
    '',
    `top ${top} JavaScript functions by total time:`,
    ...byTotal.map((cost) => row(cost, cost.totalMs)),
    '',
  ].join('\n');
}

export async function summarizeProfileFile(path: string, top = 25): Promise<string> {
  const profile = JSON.parse(await readFile(path, 'utf8')) as CpuProfile;
  return `${path}\n${renderSummary(summarizeProfile(profile), top)}`;
}

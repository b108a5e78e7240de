import { execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const ROOT = resolve(import.meta.dirname, '../..');

/**
 * Every child the bench starts is registered here, so that a thrown error,
 * a timeout or Ctrl-C never leaves a server or a client fleet running.
 */
const children = new Set<ChildProcess>();
let guardsInstalled = false;

function installGuards(): void {
  if (guardsInstalled) return;
  guardsInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL is the only thing that fits.
  process.on('exit', () => killAll());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

/** Registers a child that was not started through spawnNode (e.g. a redis-server) for the same clean-up. */
export function track(child: ChildProcess): ChildProcess {
  installGuards();
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function killAll(): void {
  for (const child of children) {
    if (isRunning(child)) child.kill('SIGKILL');
  }
  children.clear();
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

export function exitOf(child: ChildProcess): Promise<void> {
  if (!isRunning(child)) return Promise.resolve();
  return new Promise((done) => child.once('exit', () => done()));
}

/** Waits up to `graceMs` for the child to leave on its own, then kills it. */
export async function reap(child: ChildProcess, graceMs: number): Promise<void> {
  const exited = exitOf(child);
  const timer = setTimeout(() => {
    if (isRunning(child)) child.kill('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
  children.delete(child);
}

let softLimitCache: number | undefined;
let hardLimitCache: number | undefined;

function readLimit(flag: '-Sn' | '-Hn'): number {
  const text = execFileSync('bash', ['-c', `ulimit ${flag}`], { encoding: 'utf8' }).trim();
  return text === 'unlimited' ? Number.POSITIVE_INFINITY : Number(text);
}

/** The open-file limits children inherit from this process. */
export function fdLimits(): { soft: number; hard: number } {
  softLimitCache ??= readLimit('-Sn');
  hardLimitCache ??= readLimit('-Hn');
  return { soft: softLimitCache, hard: hardLimitCache };
}

/** Descriptors a node process needs beyond its sockets (stdio, libuv, tsx, the IPC pipe). */
export const FD_HEADROOM = 128;

export interface NodeChildOptions {
  script: string;
  env?: Record<string, string>;
  /** Extra flags for node itself (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /** Sockets the child will hold at once; raises its fd limit when needed. */
  sockets: number;
  ipc?: boolean;
}

/**
 * Starts `node --import tsx <script>` from the project root. When the
 * inherited soft fd limit is too small for the sockets it will hold, the
 * child is started through `bash -c 'ulimit -n …; exec node …'`, which
 * keeps the pid (exec) and the IPC descriptor.
 */
export function spawnNode(options: NodeChildOptions): ChildProcess {
  installGuards();
  const needed = options.sockets + FD_HEADROOM;
  const { soft, hard } = fdLimits();
  if (needed > hard) {
    throw new Error(`a child needs ${needed} file descriptors but the hard limit is ${hard}; spread the sockets over more processes`);
  }
  const nodeArgs = [...(options.nodeArgs ?? []), '--import', 'tsx', options.script];
  const stdio: StdioOptions = options.ipc === true ? ['pipe', 'pipe', 'pipe', 'ipc'] : ['pipe', 'pipe', 'pipe'];
  const env = { ...process.env, ...options.env };
  const child =
    needed <= soft
      ? spawn(process.execPath, nodeArgs, { cwd: ROOT, env, stdio })
      : spawn('bash', ['-c', `ulimit -n ${needed} && exec "$@"`, 'bash', process.execPath, ...nodeArgs], { cwd: ROOT, env, stdio });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** The last lines of a child's stderr, for error messages. */
export function captureStderr(child: ChildProcess, keep = 40): () => string {
  const lines: string[] = [];
  if (child.stderr !== null) {
    createInterface({ input: child.stderr }).on('line', (line) => {
      lines.push(line);
      if (lines.length > keep) lines.shift();
    });
  }
  return () => lines.join('\n');
}

/** Rejects after `ms` with a message naming what was awaited. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${typeof what === 'string' ? what : what()}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

let ticksPerSecond: number | undefined;

/**
 * CPU time (user + system, ms) a process has used so far, from
 * /proc/<pid>/stat; undefined where there is no /proc. Clock-tick
 * resolution (usually 10 ms), so only differences over seconds mean much.
 */
export function cpuTimeMs(pid: number | undefined): number | undefined {
  const times = cpuTimesMs(pid);
  return times === undefined ? undefined : times.user + times.system;
}

/** The same, with user and system time apart. */
export function cpuTimesMs(pid: number | undefined): { user: number; system: number } | undefined {
  if (pid === undefined) return undefined;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Field 2 (comm) may contain spaces; count fields from the closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return { user: (Number(fields[11]) * 1000) / ticksPerSecond, system: (Number(fields[12]) * 1000) / ticksPerSecond };
}

import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { captureStderr, isRunning, reap, spawnNode, withTimeout } from './processes.ts';
import type { PaceSpec } from './room-pacer.ts';
import type { MemorySample, ServerReply } from './server-commands.ts';

/** A bench server process (bench/signal-server.ts or bench/limit-server.ts), seen from the bench. */
export interface BenchServer {
  readonly name: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** Writes one broadcast trigger; `dataText` is the JSON text of the `data` value. */
  broadcast(dataText: string): void;
  profileStart(): Promise<void>;
  profileStop(path: string): Promise<void>;
  /** Publishes to a room at a fixed rate inside the server; resolves with the count once all were sent. */
  publishRoom(spec: PaceSpec): Promise<number>;
  /** The server's memory after a full collection (when started with `--expose-gc`). */
  memory(): Promise<MemorySample>;
  /** Writes one command line and waits for the next reply of that kind. */
  command(line: string, kind: ServerReply['bench'], timeoutMs: number): Promise<ServerReply>;
  stop(): Promise<void>;
}

export interface ServerSpec {
  name: string;
  script: string;
  env: Record<string, string>;
  sockets: number;
  nodeArgs?: string[];
  startTimeoutMs?: number;
}

export async function startBenchServer(spec: ServerSpec): Promise<BenchServer> {
  const child = spawnNode({ script: spec.script, env: spec.env, sockets: spec.sockets, nodeArgs: spec.nodeArgs });
  const stderr = captureStderr(child);
  // A write to a dead child fails with EPIPE; the exit is what reports it.
  child.stdin!.on('error', () => undefined);
  const waiters = new Map<ServerReply['bench'], Array<(reply: ServerReply) => void>>();
  const errors: string[] = [];

  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (!line.startsWith('{"bench"')) return; // the server's own log lines
    const reply = JSON.parse(line) as ServerReply;
    if (reply.bench === 'error') errors.push(reply.message ?? 'unknown error');
    const queue = waiters.get(reply.bench);
    queue?.shift()?.(reply);
  });

  const next = (kind: ServerReply['bench'], ms: number): Promise<ServerReply> =>
    withTimeout(
      new Promise<ServerReply>((resolveReply, rejectReply) => {
        const queue = waiters.get(kind) ?? [];
        queue.push(resolveReply);
        waiters.set(kind, queue);
        child.once('exit', (code) => rejectReply(new Error(`${spec.name} server exited (${code}) while waiting for ${kind}:\n${stderr()}`)));
      }),
      ms,
      () => `${spec.name} server: ${kind}\n${stderr()}`,
    );

  let ready: ServerReply;
  try {
    ready = await next('ready', spec.startTimeoutMs ?? 30_000);
  } catch (error) {
    await reap(child, 0);
    throw error;
  }

  const write = (line: string): void => {
    if (errors.length > 0) throw new Error(`${spec.name} server reported: ${errors.join('; ')}`);
    if (!isRunning(child)) throw new Error(`${spec.name} server is not running:\n${stderr()}`);
    child.stdin!.write(`${line}\n`);
  };

  return {
    name: spec.name,
    port: ready.port!,
    child,
    broadcast: (dataText) => write(dataText),
    profileStart: async () => {
      const started = next('profile-started', 10_000);
      write('profile-start');
      await started;
    },
    profileStop: async (path) => {
      const saved = next('profile-saved', 30_000);
      write(`profile-stop ${path}`);
      await saved;
    },
    publishRoom: async (pace) => {
      const published = next('published', pace.durationMs + 30_000);
      write(`publish-room ${JSON.stringify(pace)}`);
      return (await published).count!;
    },
    memory: async () => {
      const sampled = next('memory', 30_000);
      write('memory');
      return (await sampled).memory!;
    },
    command: async (line, kind, timeoutMs) => {
      const answered = next(kind, timeoutMs);
      write(line);
      return answered;
    },
    stop: async () => {
      if (isRunning(child)) child.stdin!.end('quit\n');
      await reap(child, 10_000);
      if (errors.length > 0) throw new Error(`${spec.name} server reported: ${errors.join('; ')}`);
    },
  };
}

import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { createInterface } from 'node:readline';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { pace, type PaceSpec } from './room-pacer.ts';

/**
 * The control channel of a bench server process (signal's and the limit's
 * alike): one command per stdin line, one `{"bench": …}` JSON line per reply
 * on stdout. Keeping the trigger identical for both servers means the
 * comparison measures the servers, not how they are poked.
 *
 *   `{…}`                 broadcast this JSON value as the `data` of event `bench`
 *   `profile-start`       start the V8 CPU profiler (same profiler as `node --cpu-prof`)
 *   `profile-stop <path>` stop it and write a `.cpuprofile` there
 *   `publish-room {…}`    publish to a room at a fixed rate (room-pacer.ts's PaceSpec); replies `published`
 *   `memory`              collect garbage (when started with --expose-gc), then report the process's memory
 *   `quit`                stop gracefully and exit 0
 *
 * stdin closing (the bench died) counts as `quit`.
 */
export const BENCH_EVENT = 'bench';

export interface MemorySample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** Whether a full collection ran first (the process has `--expose-gc`). */
  collected: boolean;
}

export interface ServerReply {
  bench: 'ready' | 'profile-started' | 'profile-saved' | 'published' | 'memory' | 'result' | 'error';
  port?: number;
  path?: string;
  message?: string;
  /** `published`: messages sent. */
  count?: number;
  memory?: MemorySample;
  /** `result`: the figures of a measuring process's command (bench/handshake-limit.ts). */
  result?: Record<string, number>;
}

export interface CommandHandlers {
  /** Called synchronously for each broadcast line, in order. */
  broadcast(data: unknown): void;
  /** One message to one room; only servers that have rooms offer it. */
  toRoom?(room: string, data: unknown): void;
  stop(): Promise<void>;
}

/**
 * Two full collections a turn apart (the second one frees what the first
 * one's finalisers released), then the memory figures.
 */
async function sampleMemory(): Promise<MemorySample> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc !== undefined) {
    gc();
    await nextTurn();
    gc();
  }
  const usage = process.memoryUsage();
  return {
    rss: usage.rss,
    heapUsed: usage.heapUsed,
    heapTotal: usage.heapTotal,
    external: usage.external,
    arrayBuffers: usage.arrayBuffers,
    collected: gc !== undefined,
  };
}

export function reply(message: ServerReply): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

export function serveCommands(handlers: CommandHandlers): void {
  let session: Session | undefined;
  let quitting = false;

  const quit = (): void => {
    if (quitting) return;
    quitting = true;
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    handlers.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };

  const profileStart = async (): Promise<void> => {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    reply({ bench: 'profile-started' });
  };

  const profileStop = async (path: string): Promise<void> => {
    if (session === undefined) throw new Error('profiler not started');
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    session = undefined;
    await writeFile(path, JSON.stringify(profile));
    reply({ bench: 'profile-saved', path });
  };

  const fail = (error: unknown): void => reply({ bench: 'error', message: (error as Error).message });

  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.startsWith('{')) {
      let data: unknown;
      try {
        data = JSON.parse(line);
      } catch (error) {
        fail(error);
        return;
      }
      handlers.broadcast(data);
    } else if (line === 'profile-start') {
      profileStart().catch(fail);
    } else if (line.startsWith('profile-stop ')) {
      profileStop(line.slice('profile-stop '.length)).catch(fail);
    } else if (line.startsWith('publish-room ')) {
      const toRoom = handlers.toRoom;
      if (toRoom === undefined) return fail(new Error('this server has no rooms'));
      let spec: PaceSpec;
      try {
        spec = JSON.parse(line.slice('publish-room '.length)) as PaceSpec;
      } catch (error) {
        return fail(error);
      }
      pace(spec, (room, data) => toRoom(room, data)).then((count) => reply({ bench: 'published', count }), fail);
    } else if (line === 'memory') {
      sampleMemory().then((memory) => reply({ bench: 'memory', memory }), fail);
    } else if (line === 'quit') {
      quit();
    } else if (line.length > 0) {
      fail(new Error(`unknown command: ${line.slice(0, 40)}`));
    }
  });
  lines.on('close', quit);
}

import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { createInterface } from 'node:readline';

/**
 * The control channel of a bench server process (signal's and the limit's
 * alike): one command per stdin line, one `{"bench": …}` JSON line per reply
 * on stdout. Keeping the trigger identical for both servers means the
 * comparison measures the servers, not how they are poked.
 *
 *   `{…}`                 broadcast this JSON value as the `data` of event `bench`
 *   `profile-start`       start the V8 CPU profiler (same profiler as `node --cpu-prof`)
 *   `profile-stop <path>` stop it and write a `.cpuprofile` there
 *   `quit`                stop gracefully and exit 0
 *
 * stdin closing (the bench died) counts as `quit`.
 */
export const BENCH_EVENT = 'bench';

export interface ServerReply {
  bench: 'ready' | 'profile-started' | 'profile-saved' | 'error';
  port?: number;
  path?: string;
  message?: string;
}

export interface CommandHandlers {
  /** Called synchronously for each broadcast line, in order. */
  broadcast(data: unknown): void;
  stop(): Promise<void>;
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
    } else if (line === 'quit') {
      quit();
    } else if (line.length > 0) {
      fail(new Error(`unknown command: ${line.slice(0, 40)}`));
    }
  });
  lines.on('close', quit);
}

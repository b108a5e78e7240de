import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { reap, track, withTimeout } from './processes.ts';

/**
 * A redis-server child owned by one scenario: its own port on 127.0.0.1,
 * no persistence, killed with the rest of the bench's children. Each run
 * also uses its own channel prefixes, so even a shared Redis would not mix
 * runs.
 */
export interface BenchRedis {
  readonly url: string;
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<BenchRedis> {
  const port = await freePort();
  const child = track(
    spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let output = '';
  const ready = new Promise<void>((resolveReady, rejectReady) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.includes('Ready to accept connections')) resolveReady();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', rejectReady);
    child.once('exit', (code) => rejectReady(new Error(`redis-server exited (${code}):\n${output.slice(-2000)}`)));
  });
  try {
    await withTimeout(ready, 10_000, () => `redis-server start:\n${output.slice(-2000)}`);
  } catch (error) {
    await reap(child, 0);
    throw error;
  }
  return { url: `redis://127.0.0.1:${port}`, pid: child.pid, stop: () => reap(child, 0) };
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, rejectPort) => {
    const server = createServer();
    server.once('error', rejectPort);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

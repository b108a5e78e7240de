import type { ChildProcess } from 'node:child_process';
import { captureStderr, reap, spawnNode, withTimeout } from './processes.ts';

/** The IPC protocol of bench/lib/http-load-worker.ts. */
export type ToLoadWorker =
  | {
      type: 'round';
      host: string;
      port: number;
      path: string;
      connections: number;
      durationMs: number;
      /** How long responses in flight at the deadline may take before the round fails. */
      graceMs: number;
      /** Every response body must start with this. */
      expectPrefix: string;
    }
  | { type: 'close' };

export interface LoadReport {
  type: 'report';
  /** Responses completed (and checked) within the duration. */
  requests: number;
  /** Responses that arrived after the deadline (not counted). */
  late: number;
  durationMs: number;
  requestsPerSec: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  bodyBytes: number;
}

type FromLoadWorker = LoadReport | { type: 'failed'; message: string };

/**
 * A load-generator process seen from the bench: one round at a time, each
 * on fresh keep-alive connections opened before the clock starts.
 */
export class HttpLoad {
  private readonly stderr: () => string;

  private constructor(readonly child: ChildProcess) {
    this.stderr = captureStderr(child);
  }

  static start(connections: number): HttpLoad {
    return new HttpLoad(spawnNode({ script: 'bench/lib/http-load-worker.ts', sockets: connections, ipc: true }));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  round(spec: Omit<Extract<ToLoadWorker, { type: 'round' }>, 'type'>): Promise<LoadReport> {
    const done = new Promise<LoadReport>((resolveRound, rejectRound) => {
      const onMessage = (message: FromLoadWorker): void => {
        cleanup();
        if (message.type === 'report') resolveRound(message);
        else rejectRound(new Error(`load generator: ${message.message}`));
      };
      const onExit = (code: number | null): void => {
        cleanup();
        rejectRound(new Error(`load generator exited (${code}):\n${this.stderr()}`));
      };
      const cleanup = (): void => {
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
      };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
    });
    this.child.send({ type: 'round', ...spec } satisfies ToLoadWorker);
    return withTimeout(done, spec.durationMs + spec.graceMs + 30_000, `load round against port ${spec.port}`);
  }

  async close(): Promise<void> {
    if (this.child.connected) this.child.send({ type: 'close' } satisfies ToLoadWorker);
    await reap(this.child, 5_000);
  }
}

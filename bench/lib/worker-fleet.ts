import type { ChildProcess } from 'node:child_process';
import { captureStderr, reap, spawnNode, withTimeout } from './processes.ts';

/**
 * A set of client worker processes spoken to over IPC, for the scenarios
 * whose clients are not broadcast counters (latency, admission). Every
 * message a worker sends is `{type, …}`; `{type: 'failed', message}` or an
 * unexpected exit fails whatever the bench is waiting on at once, instead of
 * letting it run into a timeout.
 */
export interface WorkerMessage {
  type: string;
}

interface Worker<Out extends WorkerMessage> {
  readonly child: ChildProcess;
  readonly stderr: () => string;
  readonly waiting: Array<{ type: Out['type']; resolve: (message: Out) => void }>;
}

export class WorkerFleet<In extends WorkerMessage, Out extends WorkerMessage> {
  private failure: Error | null = null;
  private readonly rejects = new Set<(error: Error) => void>();
  private closing = false;

  private constructor(
    private readonly label: string,
    private readonly workers: Array<Worker<Out>>,
  ) {
    for (const worker of workers) {
      worker.child.on('message', (message: Out) => this.dispatch(worker, message));
      worker.child.once('exit', (code) => {
        if (!this.closing) this.fail(new Error(`${label} worker exited (${code}):\n${worker.stderr()}`));
      });
    }
  }

  /** One worker per entry of `sockets` (the connections it will hold, for its fd limit). */
  static spawn<In extends WorkerMessage, Out extends WorkerMessage>(label: string, script: string, sockets: number[]): WorkerFleet<In, Out> {
    const workers = sockets.map((count) => {
      const child = spawnNode({ script, sockets: count, ipc: true });
      return { child, stderr: captureStderr(child), waiting: [] };
    });
    return new WorkerFleet<In, Out>(label, workers);
  }

  get size(): number {
    return this.workers.length;
  }

  get pids(): number[] {
    return this.workers.flatMap((worker) => (worker.child.pid === undefined ? [] : [worker.child.pid]));
  }

  /** Sends `message(index)` to every worker and waits for one `reply` from each. */
  async ask<T extends Out['type']>(message: (index: number) => In, reply: T, timeoutMs: number, what: string): Promise<Array<Extract<Out, { type: T }>>> {
    if (this.failure !== null) throw this.failure;
    const replies = this.workers.map(
      (worker) =>
        new Promise<Extract<Out, { type: T }>>((resolveReply) => {
          worker.waiting.push({ type: reply, resolve: resolveReply as (message: Out) => void });
        }),
    );
    this.workers.forEach((worker, index) => worker.child.send(message(index)));
    let rejectFailure: (error: Error) => void = () => undefined;
    const failed = new Promise<never>((_, reject) => {
      rejectFailure = reject;
      this.rejects.add(reject);
    });
    try {
      return await withTimeout(Promise.race([Promise.all(replies), failed]), timeoutMs, `${this.label}: ${what}`);
    } finally {
      this.rejects.delete(rejectFailure);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const worker of this.workers) {
      if (worker.child.connected) worker.child.send({ type: 'close' });
    }
    await Promise.all(this.workers.map((worker) => reap(worker.child, 5_000)));
  }

  private dispatch(worker: Worker<Out>, message: Out): void {
    if (message.type === 'failed') {
      this.fail(new Error(`${this.label} worker: ${(message as unknown as { message: string }).message}`));
      return;
    }
    const index = worker.waiting.findIndex((entry) => entry.type === message.type);
    if (index === -1) return;
    const [entry] = worker.waiting.splice(index, 1);
    entry!.resolve(message);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const reject of this.rejects) reject(this.failure);
  }
}

/** Splits `total` into `parts` nearly equal whole shares. */
export function shares(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, index) => Math.floor(total / parts) + (index < total % parts ? 1 : 0));
}

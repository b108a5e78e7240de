import type { ChildProcess } from 'node:child_process';
import { absoluteNow, type FromWorker, type Target, type ToWorker } from './client-messages.ts';
import { captureStderr, fdLimits, FD_HEADROOM, reap, spawnNode, withTimeout } from './processes.ts';

export interface PoolSpec {
  target: Target;
  url: string;
  clients: number;
  /** Worker processes to spread the clients over (raised when the fd limit demands it). */
  workers: number;
  /** Per-client tokens (signal); empty for the limit and the peer. */
  tokens: string[];
  ecdhInfo: string;
  connectTimeoutMs: number;
  /** Loopback source addresses for the clients (needed beyond one address's ephemeral ports). */
  localAddresses?: string[];
}

export interface RoundResult {
  /** Decrypted, parsed, in-order deliveries counted by the clients. */
  delivered: number;
  /** From just before the first trigger to the last client's last decrypted frame. */
  elapsedMs: number;
  deliveriesPerSec: number;
}

interface Worker {
  readonly child: ChildProcess;
  readonly stderr: () => string;
  readonly inbox: Array<(message: FromWorker) => boolean>;
}

/**
 * The client fleet for one server: several worker processes, each holding
 * a slice of the connections. The bench drives rounds from here: it keeps
 * `window` broadcasts in flight and triggers the next one each time every
 * client has decrypted an earlier one, which paces the sender to what the
 * clients keep up with and bounds the bytes queued per socket.
 */
export class ClientPool {
  private nextSeq = 0;
  private failure: Error | null = null;
  private onDone: ((seq: number, at: number) => void) | null = null;

  private constructor(
    readonly spec: PoolSpec,
    private readonly workers: Worker[],
  ) {
    for (const worker of workers) {
      worker.child.on('message', (message: FromWorker) => this.dispatch(worker, message));
      worker.child.once('exit', (code) => {
        this.failure ??= new Error(`${spec.target} client worker exited (${code}):\n${worker.stderr()}`);
      });
    }
  }

  static async open(spec: PoolSpec): Promise<ClientPool> {
    // Each worker must hold its slice of sockets within the hard fd limit.
    const perWorkerCap = Math.max(1, fdLimits().hard - FD_HEADROOM);
    const count = Math.min(spec.clients, Math.max(spec.workers, Math.ceil(spec.clients / perWorkerCap)));
    const workers: Worker[] = [];
    for (let index = 0; index < count; index++) {
      const share = Math.floor(spec.clients / count) + (index < spec.clients % count ? 1 : 0);
      const child = spawnNode({ script: 'bench/lib/client-worker.ts', sockets: share, ipc: true });
      workers.push({ child, stderr: captureStderr(child), inbox: [] });
    }
    const pool = new ClientPool(spec, workers);
    try {
      let offset = 0;
      await withTimeout(
        Promise.all(
          workers.map((worker, index) => {
            const share = Math.floor(spec.clients / count) + (index < spec.clients % count ? 1 : 0);
            const tokens = spec.tokens.slice(offset, offset + share);
            offset += share;
            const connected = pool.expect(worker, 'connected');
            pool.post(worker, {
              type: 'connect',
              target: spec.target,
              url: spec.url,
              tokens,
              clients: share,
              concurrency: 64,
              ecdhInfo: spec.ecdhInfo,
              localAddresses: spec.localAddresses,
            });
            return connected;
          }),
        ),
        spec.connectTimeoutMs,
        `${spec.clients} ${spec.target} clients connecting`,
      );
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  /** Runs `count` broadcasts through `trigger` with at most `window` not yet fully delivered. */
  async round(count: number, window: number, trigger: (seq: number) => void, timeoutMs: number): Promise<RoundResult> {
    const first = this.nextSeq;
    this.nextSeq += count;
    await Promise.all(this.workers.map((worker) => this.roundReady(worker, first, count)));

    const workersDone = new Uint16Array(count);
    let sent = 0;
    let completed = 0;
    let lastAt = 0;
    const startedAt = absoluteNow();
    const fire = (): void => {
      while (sent < count && sent - completed < window) trigger(first + sent++);
    };
    const finished = new Promise<void>((resolveRound, rejectRound) => {
      this.onDone = (seq, at) => {
        if (at > lastAt) lastAt = at;
        if (++workersDone[seq - first]! < this.workers.length) return;
        completed++;
        if (completed === count) return resolveRound();
        try {
          fire();
        } catch (error) {
          rejectRound(error);
        }
      };
    });
    try {
      fire();
      await withTimeout(this.guard(finished), timeoutMs, () => `${this.spec.target} round of ${count} broadcasts (${completed} completed)`);
    } finally {
      this.onDone = null;
    }

    const reports = await Promise.all(this.workers.map((worker) => this.report(worker)));
    let delivered = 0;
    for (const report of reports) {
      if (report.outOfOrder > 0 || report.unexpected > 0 || report.lost > 0) {
        throw new Error(`${this.spec.target} clients saw ${report.outOfOrder} out-of-order, ${report.unexpected} unexpected frames, ${report.lost} lost clients`);
      }
      delivered += report.delivered;
    }
    const expected = count * this.spec.clients;
    if (delivered !== expected) throw new Error(`${this.spec.target}: ${delivered} deliveries counted, ${expected} expected`);
    const elapsedMs = lastAt - startedAt;
    return { delivered, elapsedMs, deliveriesPerSec: (delivered * 1000) / elapsedMs };
  }

  /** The worker processes' pids, for CPU accounting. */
  get pids(): number[] {
    return this.workers.flatMap((worker) => (worker.child.pid === undefined ? [] : [worker.child.pid]));
  }

  async close(): Promise<void> {
    for (const worker of this.workers) {
      if (worker.child.connected) worker.child.send({ type: 'close' } satisfies ToWorker);
    }
    await Promise.all(this.workers.map((worker) => reap(worker.child, 5_000)));
  }

  private dispatch(worker: Worker, message: FromWorker): void {
    if (message.type === 'done') {
      this.onDone?.(message.seq, message.at);
      return;
    }
    if (message.type === 'failed') {
      this.failure ??= new Error(`${this.spec.target} client worker: ${message.message}`);
    }
    const index = worker.inbox.findIndex((accept) => accept(message));
    if (index !== -1) worker.inbox.splice(index, 1);
  }

  private post(worker: Worker, message: ToWorker): void {
    if (this.failure !== null) throw this.failure;
    worker.child.send(message);
  }

  private expect<K extends FromWorker['type']>(worker: Worker, type: K): Promise<Extract<FromWorker, { type: K }>> {
    return this.guard(
      new Promise((resolveMessage) => {
        worker.inbox.push((message) => {
          if (message.type !== type) return false;
          resolveMessage(message as Extract<FromWorker, { type: K }>);
          return true;
        });
      }),
    );
  }

  private roundReady(worker: Worker, first: number, count: number): Promise<unknown> {
    const ready = this.expect(worker, 'round-ready');
    this.post(worker, { type: 'round', first, count });
    return withTimeout(ready, 10_000, 'client worker round reset');
  }

  private report(worker: Worker): Promise<Extract<FromWorker, { type: 'report' }>> {
    const report = this.expect(worker, 'report');
    this.post(worker, { type: 'report' });
    return withTimeout(report, 10_000, 'client worker report');
  }

  /** Settles with the first failure a worker reports, instead of waiting out a timeout. */
  private guard<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolveGuard, rejectGuard) => {
      const poll = setInterval(() => {
        if (this.failure === null) return;
        clearInterval(poll);
        rejectGuard(this.failure);
      }, 50);
      promise.then(
        (value) => {
          clearInterval(poll);
          if (this.failure !== null) rejectGuard(this.failure);
          else resolveGuard(value);
        },
        (error: unknown) => {
          clearInterval(poll);
          rejectGuard(error);
        },
      );
    });
  }
}

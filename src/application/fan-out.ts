import type { LiveConnection } from './local-connections.ts';

/** Runs a callback in a later macrotask, after pending I/O (setImmediate in production). */
export type Scheduler = (task: () => void) => void;

export interface FanOutOptions {
  /**
   * Deliveries handed out per macrotask, direct sends included; the rest
   * waits for the next one. A sealed delivery costs ~15 µs of CPU on a calm
   * core and 40-100 µs of wall time on a contended one (write syscall
   * included), so 2,048 keep a macrotask to tens of milliseconds: a
   * broadcast to 20,000 clients never holds the event loop for the whole
   * second it can take, and heartbeats, handshakes and REST calls are served
   * in between. Sends that fit the budget go out at once, so frames for one
   * socket within a macrotask still leave in one corked write.
   */
  sliceSize?: number;
  schedule?: Scheduler;
  /** A delivery that throws is reported here and the others still go out. */
  onError?: (error: unknown) => void;
}

interface Job {
  readonly targets: readonly LiveConnection[];
  readonly text: string;
  next: number;
}

const DEFAULT_SLICE = 2048;

/**
 * Hands one frame text to many connections, at most `sliceSize` per
 * macrotask. Per-connection order is the order of the calls: while anything
 * is queued, every later send (even to a single client) queues behind it,
 * and the queue is worked in FIFO order. The targets of a send are fixed
 * when it is made; a connection that closes before its turn is skipped by
 * its own `deliver`.
 */
export class FanOut {
  private readonly sliceSize: number;
  private readonly schedule: Scheduler;
  private readonly onError: (error: unknown) => void;
  private readonly queue: Job[] = [];
  private head = 0;
  /** Deliveries handed out since the last tick. */
  private spent = 0;
  private tickArmed = false;

  constructor(options: FanOutOptions = {}) {
    this.sliceSize = options.sliceSize ?? DEFAULT_SLICE;
    if (!Number.isSafeInteger(this.sliceSize) || this.sliceSize < 1) throw new Error('sliceSize must be a positive integer');
    this.schedule = options.schedule ?? setImmediate;
    this.onError = options.onError ?? rethrowLater;
  }

  /** Deliveries accepted but not yet handed to their connections. */
  get pending(): number {
    let count = 0;
    for (let i = this.head; i < this.queue.length; i++) {
      const job = this.queue[i] as Job;
      count += job.targets.length - job.next;
    }
    return count;
  }

  /** Sends to one connection, behind whatever is queued. */
  one(connection: LiveConnection, text: string): void {
    if (!this.idle()) {
      this.queue.push({ targets: [connection], text, next: 0 });
      return;
    }
    this.spend(1);
    connection.deliver(text);
  }

  /**
   * Sends to every target not in `exclude` and returns how many that is.
   * A send that fits what is left of this macrotask's budget, on an idle
   * queue, goes out at once without copying the targets.
   */
  many(targets: ReadonlySet<LiveConnection> | Iterable<LiveConnection>, text: string, exclude?: ReadonlySet<string>): number {
    if (this.idle() && exclude === undefined && targets instanceof Set && this.spent + targets.size <= this.sliceSize) {
      this.spend(targets.size);
      for (const connection of targets as ReadonlySet<LiveConnection>) this.deliverOne(connection, text);
      return targets.size;
    }
    const list: LiveConnection[] = [];
    for (const connection of targets) {
      if (exclude === undefined || !exclude.has(connection.id)) list.push(connection);
    }
    if (list.length === 0) return 0;
    const wasIdle = this.idle();
    this.queue.push({ targets: list, text, next: 0 });
    // An idle queue starts at once with what is left of the budget.
    if (wasIdle) this.work();
    else this.armTick();
    return list.length;
  }

  private idle(): boolean {
    return this.head === this.queue.length;
  }

  private spend(count: number): void {
    this.spent += count;
    this.armTick();
  }

  private armTick(): void {
    if (this.tickArmed) return;
    this.tickArmed = true;
    this.schedule(this.tick);
  }

  /** A new macrotask: a fresh budget, and the queue worked with it. */
  private readonly tick = (): void => {
    this.tickArmed = false;
    this.spent = 0;
    if (!this.idle()) this.work();
  };

  private deliverOne(connection: LiveConnection, text: string): void {
    try {
      connection.deliver(text);
    } catch (error) {
      this.onError(error);
    }
  }

  private work(): void {
    let budget = this.sliceSize - this.spent;
    while (budget > 0 && this.head < this.queue.length) {
      const job = this.queue[this.head] as Job;
      const end = Math.min(job.targets.length, job.next + budget);
      budget -= end - job.next;
      this.spent += end - job.next;
      // `next` moves before each delivery, so one that throws is not repeated.
      while (job.next < end) this.deliverOne(job.targets[job.next++] as LiveConnection, job.text);
      if (job.next === job.targets.length) this.queue[this.head++] = EMPTY_JOB;
    }
    if (this.idle()) {
      this.queue.length = 0;
      this.head = 0;
    }
    // Next macrotask: the budget renews and whatever is left goes on.
    this.armTick();
  }
}

function rethrowLater(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}

const EMPTY_JOB: Job = { targets: [], text: '', next: 0 };

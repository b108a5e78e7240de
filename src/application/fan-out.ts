import type { LiveConnection } from './local-connections.ts';

/** Runs a callback in a later macrotask, after pending I/O (setImmediate in production). */
export type Scheduler = (task: () => void) => void;

export interface FanOutOptions {
  /**
   * The most deliveries handed out per macrotask, direct sends included
   * (default 2,048; fewer while deliveries are slow, see `sliceTargetMs`);
   * the rest waits for the next one. A broadcast to 20,000 clients thus
   * never holds the event loop for the whole second it can take, and
   * heartbeats, handshakes and REST calls are served in between. Sends that
   * fit the budget go out at once, so frames for one socket within a
   * macrotask still leave in one corked write.
   */
  sliceSize?: number;
  /**
   * Wall time a slice should take, the socket writes that follow it
   * included. The fan-out measures what its bursts cost per delivery and
   * hands out fewer than `sliceSize` per macrotask when deliveries are slow
   * (a contended CPU, many sockets to write): 2,048 deliveries took 75-230
   * ms at 10,000 connections on 2 shared cores, while 20 ms keeps the
   * event loop answering timers, heartbeats and REST calls in between.
   */
  sliceTargetMs?: number;
  /** Milliseconds from any origin (performance.now in production). */
  now?: () => number;
  /**
   * The transport's write batching. Without it, each macrotask's writes
   * leave when it ends (one write per socket per macrotask). With it, while
   * a backlog of several sends is worked, writes are held across slices, so
   * a socket that gets several frames of the backlog (broadcasts queued back
   * to back) sends them in one write: a flush costs per socket, not per
   * frame. They are released when fewer than two sends remain queued, when
   * a slice reached mostly sockets that were not waiting yet (holding buys
   * nothing there), when flushing the sockets that wait would take twice
   * `sliceTargetMs` at the measured cost of a socket's flush, or after
   * `holdWritesMs`.
   */
  writes?: WriteBatch;
  /** Longest a backlog's writes are held (default 50 ms); bounds the latency batching adds. */
  holdWritesMs?: number;
  schedule?: Scheduler;
  /** A delivery that throws is reported here and the others still go out. */
  onError?: (error: unknown) => void;
}

/** Held writes, one buffer per socket (ws-gateway's `socketWrites`). */
export interface WriteBatch {
  /** From now on, what is written waits in each socket's buffer. */
  hold(): void;
  /** Sends what waits, one write per socket, and stops holding. */
  release(): void;
  /** Sockets with writes waiting. */
  readonly waiting: number;
}

interface Job {
  readonly targets: readonly LiveConnection[];
  /**
   * Frame texts every target gets, in order. Sends queued back to back to
   * the same connections share one job, worked connection by connection:
   * each socket gets all of them within one slice, so they leave in one
   * write however small the slices are.
   */
  readonly texts: string[];
  /** Index of the next target; the targets before it have had every text. */
  next: number;
}

const DEFAULT_SLICE = 2048;
const DEFAULT_SLICE_TARGET_MS = 20;
/** Bursts smaller than this say too little about the cost of a delivery to be measured. */
const MEASURED_BURST = 64;
/** However slow deliveries are, a slice hands out at least this many. */
const MIN_SLICE = 64;
/**
 * The first slices, before anything was measured: cold code and sockets
 * that never wrote cost several times a warm delivery (2,048 first
 * deliveries took 205 ms on 10,000 fresh connections), and the limit grows
 * halfway to what the target allows with every measured slice.
 */
const FIRST_SLICE = 256;
const DEFAULT_HOLD_WRITES_MS = 50;
/**
 * Most texts one job carries. Worked connection by connection, a merged
 * job gives its last connection its first text only after every earlier
 * connection had all of them; 16 frames of a few hundred bytes fill a
 * write, and more would only delay that first text further.
 */
const MERGED_TEXTS = 16;

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
  private readonly sliceTargetMs: number;
  private readonly now: () => number;
  /** Deliveries per macrotask at the measured cost: between MIN_SLICE and sliceSize. */
  private limit: number;
  private readonly schedule: Scheduler;
  private readonly onError: (error: unknown) => void;
  private readonly writes: WriteBatch | undefined;
  private readonly holdWritesMs: number;
  /** When the writes now held began to be held; -1 when none are. */
  private heldSince = -1;
  private heldSlices = 0;
  /** Measured wall time of one socket's flush; starts at a contended machine's cost. */
  private flushMsPerSocket = 0.04;
  private readonly queue: Job[] = [];
  private head = 0;
  /** Deliveries handed out since the last tick. */
  private spent = 0;
  private tickArmed = false;

  constructor(options: FanOutOptions = {}) {
    this.sliceSize = options.sliceSize ?? DEFAULT_SLICE;
    if (!Number.isSafeInteger(this.sliceSize) || this.sliceSize < 1) throw new Error('sliceSize must be a positive integer');
    this.sliceTargetMs = options.sliceTargetMs ?? DEFAULT_SLICE_TARGET_MS;
    if (!(this.sliceTargetMs > 0)) throw new Error('sliceTargetMs must be positive');
    this.now = options.now ?? performance.now.bind(performance);
    this.limit = Math.min(FIRST_SLICE, this.sliceSize);
    this.schedule = options.schedule ?? setImmediate;
    this.onError = options.onError ?? rethrowLater;
    this.writes = options.writes;
    this.holdWritesMs = options.holdWritesMs ?? DEFAULT_HOLD_WRITES_MS;
    if (!(this.holdWritesMs >= 0)) throw new Error('holdWritesMs must not be negative');
  }

  /** Deliveries the current macrotask may hand out, as measured so far. */
  get currentSliceSize(): number {
    return this.limit;
  }

  /** Deliveries accepted but not yet handed to their connections. */
  get pending(): number {
    let count = 0;
    for (let i = this.head; i < this.queue.length; i++) {
      const job = this.queue[i] as Job;
      count += (job.targets.length - job.next) * job.texts.length;
    }
    return count;
  }

  /** Sends to one connection, behind whatever is queued. */
  one(connection: LiveConnection, text: string): void {
    if (!this.idle()) {
      this.queue.push({ targets: [connection], texts: [text], next: 0 });
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
    if (this.idle() && exclude === undefined && targets instanceof Set && this.spent + targets.size <= this.limit) {
      this.spend(targets.size);
      const started = targets.size >= MEASURED_BURST ? this.now() : 0;
      for (const connection of targets as ReadonlySet<LiveConnection>) this.deliverOne(connection, text);
      if (started !== 0) this.measure(started, targets.size);
      return targets.size;
    }
    const list: LiveConnection[] = [];
    for (const connection of targets) {
      if (exclude === undefined || !exclude.has(connection.id)) list.push(connection);
    }
    if (list.length === 0) return 0;
    const wasIdle = this.idle();
    const last = wasIdle ? undefined : (this.queue[this.queue.length - 1] as Job);
    if (last !== undefined && last.next === 0 && last.texts.length < MERGED_TEXTS && sameTargets(last.targets, list)) {
      // The same connections as the send queued last, which has not
      // started: its targets get this text right after its own.
      last.texts.push(text);
      this.armTick();
      return list.length;
    }
    this.queue.push({ targets: list, texts: [text], next: 0 });
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

  /**
   * Times a burst once the current callback is over: ticks queued by the
   * deliveries (the transport's uncorked writes) run before microtasks, so
   * the cost of the writes counts too. The next limit moves halfway to what
   * the target allows at this cost.
   */
  private measure(started: number, count: number): void {
    queueMicrotask(() => this.adapt((this.now() - started) / count));
  }

  /** Moves the limit halfway to what the target allows at this cost per delivery. */
  private adapt(perDelivery: number): void {
    const fits = perDelivery > 0 ? this.sliceTargetMs / perDelivery : this.sliceSize;
    const next = Math.round((this.limit + Math.min(this.sliceSize, fits)) / 2);
    this.limit = Math.max(Math.min(MIN_SLICE, this.sliceSize), Math.min(this.sliceSize, next));
  }

  /** Sends the held writes and learns what a socket's flush costs. */
  private releaseWrites(): void {
    const sockets = this.writes!.waiting;
    const started = this.now();
    this.heldSince = -1;
    this.writes!.release();
    if (sockets >= MEASURED_BURST) this.flushMsPerSocket = (this.flushMsPerSocket + (this.now() - started) / sockets) / 2;
  }

  private work(): void {
    const started = this.now();
    const spentBefore = this.spent;
    let budget = this.limit - this.spent;
    // Holding pays only when frames queue up for the same sockets: a
    // backlog of several sends. One wide send reaches each socket once.
    if (this.writes !== undefined && this.heldSince < 0 && budget > 0 && this.queue.length - this.head >= 2) {
      this.writes.hold();
      this.heldSince = started;
      this.heldSlices = 0;
    }
    const waitingBefore = this.writes?.waiting ?? 0;
    while (budget > 0 && this.head < this.queue.length) {
      const job = this.queue[this.head] as Job;
      const texts = job.texts;
      // A connection gets all of a job's texts in the same slice; a slice
      // that has handed out nothing yet takes one connection whatever it costs.
      let connections = Math.floor(budget / texts.length);
      if (connections === 0) {
        if (this.spent > spentBefore) break;
        connections = 1;
      }
      const end = Math.min(job.targets.length, job.next + connections);
      const dealt = (end - job.next) * texts.length;
      budget -= dealt;
      this.spent += dealt;
      if (texts.length === 1) {
        const text = texts[0] as string;
        // `next` moves before each delivery, so one that throws is not repeated.
        while (job.next < end) this.deliverOne(job.targets[job.next++] as LiveConnection, text);
      } else {
        while (job.next < end) {
          const connection = job.targets[job.next++] as LiveConnection;
          for (const text of texts) this.deliverOne(connection, text);
        }
      }
      if (job.next === job.targets.length) this.queue[this.head++] = EMPTY_JOB;
    }
    const handed = this.spent - spentBefore;
    if (this.heldSince < 0) {
      if (handed >= MEASURED_BURST) this.measure(started, handed);
    } else {
      // Sealing and flushing are timed apart: a flush costs per socket, not per frame.
      const delivered = this.now();
      if (handed >= MEASURED_BURST) this.adapt((delivered - started) / handed);
      this.heldSlices++;
      const waiting = this.writes!.waiting;
      const mostlyNewSockets = this.heldSlices > 1 && handed >= MEASURED_BURST && 2 * (waiting - waitingBefore) > handed;
      if (
        this.queue.length - this.head < 2 ||
        mostlyNewSockets ||
        waiting * this.flushMsPerSocket >= 2 * this.sliceTargetMs ||
        delivered - this.heldSince >= this.holdWritesMs
      ) {
        this.releaseWrites();
      }
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

/** Whether two target lists hold the same connections in the same order (checked before a merge). */
function sameTargets(a: readonly LiveConnection[], b: readonly LiveConnection[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const EMPTY_JOB: Job = { targets: [], texts: [], next: 0 };

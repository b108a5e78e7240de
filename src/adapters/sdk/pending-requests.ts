/**
 * `join`/`leave` requests waiting for their `joined`/`left` reply, keyed by
 * the request id the client put on the frame. Each one settles exactly
 * once: by its reply, its timeout, a failed write or the end of the session.
 */
import { RequestTimeoutError } from './client-errors.ts';
import type { RoomsResult } from './client-types.ts';

interface PendingRequest {
  reply: string;
  resolve: (result: RoomsResult) => void;
  reject: (error: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class PendingRequests {
  private readonly entries = new Map<string, PendingRequest>();
  private readonly timeoutMs: number;
  private seq = 0;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** Registers a request for `event` answered by `reply`; the id goes on the outgoing frame. */
  open(event: string, reply: string): { id: string; result: Promise<RoomsResult> } {
    this.seq += 1;
    const id = String(this.seq);
    const result = new Promise<RoomsResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.entries.delete(id);
        reject(new RequestTimeoutError(event, this.timeoutMs));
      }, this.timeoutMs);
      this.entries.set(id, { reply, resolve, reject, timer });
    });
    return { id, result };
  }

  /** Settles request `id` when `reply` is the event it waits for; false leaves the frame to others. */
  answer(id: string | undefined, reply: string, result: RoomsResult): boolean {
    const request = id === undefined ? undefined : this.entries.get(id);
    if (id === undefined || request === undefined || request.reply !== reply) return false;
    this.entries.delete(id);
    clearTimeout(request.timer);
    request.resolve(result);
    return true;
  }

  fail(id: string, error: unknown): void {
    const request = this.entries.get(id);
    if (request === undefined) return;
    this.entries.delete(id);
    clearTimeout(request.timer);
    request.reject(error);
  }

  failAll(error: unknown): void {
    for (const request of this.entries.values()) {
      clearTimeout(request.timer);
      request.reject(error);
    }
    this.entries.clear();
  }
}

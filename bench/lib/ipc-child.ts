import type { ChildProcess } from 'node:child_process';
import { captureStderr, reap, spawnNode, withTimeout } from './processes.ts';

interface Waiter<M> {
  accept(message: M): boolean;
  reject(error: Error): void;
}

/**
 * A helper process driven over IPC with `{type, …}` messages, where a
 * `{type: 'failed', message}` from the child fails whatever the bench is
 * waiting for at once (and everything after), instead of a timeout later.
 */
export class IpcChild<To extends { type: string }, From extends { type: string }> {
  private failure: Error | null = null;
  private readonly waiters: Array<Waiter<From>> = [];
  private readonly stderr: () => string;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.stderr = captureStderr(child);
    child.on('message', (message: From | { type: 'failed'; message: string }) => {
      if (message.type === 'failed') return this.fail(new Error(`${name}: ${(message as { message: string }).message}`));
      const index = this.waiters.findIndex((waiter) => waiter.accept(message as From));
      if (index !== -1) this.waiters.splice(index, 1);
    });
    child.once('exit', (code) => this.fail(new Error(`${name} exited (${code}):\n${this.stderr()}`)));
  }

  static spawn<To extends { type: string }, From extends { type: string }>(name: string, script: string, sockets: number): IpcChild<To, From> {
    return new IpcChild<To, From>(name, spawnNode({ script, sockets, ipc: true }));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The next message of this type (registered now: call before triggering what sends it). */
  next<K extends From['type']>(type: K, timeoutMs: number, what = type as string): Promise<Extract<From, { type: K }>> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const waiter = new Promise<Extract<From, { type: K }>>((resolveMessage, rejectMessage) => {
      this.waiters.push({
        accept: (message) => {
          if (message.type !== type) return false;
          resolveMessage(message as Extract<From, { type: K }>);
          return true;
        },
        reject: rejectMessage,
      });
    });
    return withTimeout(waiter, timeoutMs, `${this.name}: ${what}`);
  }

  post(message: To): void {
    if (this.failure !== null) throw this.failure;
    this.child.send(message);
  }

  request<K extends From['type']>(message: To, type: K, timeoutMs: number): Promise<Extract<From, { type: K }>> {
    const answer = this.next(type, timeoutMs, `${message.type} → ${type}`);
    this.post(message);
    return answer;
  }

  /** Throws the child's failure, if it reported one. */
  check(): void {
    if (this.failure !== null) throw this.failure;
  }

  async close(message: To): Promise<void> {
    if (this.child.connected) this.child.send(message);
    await reap(this.child, 5_000);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.failure);
  }
}

import type { Target } from './client-connect.ts';

/**
 * The IPC messages between the bench and its client worker processes
 * (bench/lib/client-worker.ts). Sequence numbers are the `seq` of each
 * broadcast payload; a round covers `[first, first + count)`.
 */
export type { Target };

export type ToWorker =
  | {
      type: 'connect';
      target: Target;
      url: string;
      /** One per client for signal (its dev-issuer JWT); empty for the limit and the peer. */
      tokens: string[];
      clients: number;
      /** Connections being opened at once. */
      concurrency: number;
      ecdhInfo: string;
      /** Loopback source addresses, used round-robin; absent: the system's choice. */
      localAddresses?: string[];
    }
  | { type: 'round'; first: number; count: number }
  | { type: 'report' }
  | { type: 'close' };

export type FromWorker =
  | { type: 'connected'; clients: number; ms: number }
  /** Every client of this worker has decrypted broadcast `seq`; `at` is absolute (timeOrigin + now) ms. */
  | { type: 'done'; seq: number; at: number }
  | { type: 'round-ready' }
  | { type: 'report'; delivered: number; outOfOrder: number; unexpected: number; lost: number }
  | { type: 'failed'; message: string };

/** Absolute high-resolution wall time, comparable across processes on one machine. */
export function absoluteNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * IPC messages of the latency and admission client workers
 * (latency-worker.ts, admission-worker.ts), driven through WorkerFleet.
 */

export type LatencyTarget = 'signal' | 'peer' | 'limit';

export type ToLatencyWorker =
  | {
      type: 'connect';
      target: LatencyTarget;
      url: string;
      /** One per client for signal; empty for the peer and the limit. */
      tokens: string[];
      clients: number;
      room: string;
      ecdhInfo: string;
      concurrency: number;
    }
  /** Starts counting messages `[first, first + count)`. */
  | { type: 'round'; first: number; count: number }
  /** Replies once every client has every message of the round, or after `waitMs` with what arrived. */
  | { type: 'report'; waitMs: number }
  | { type: 'close' };

export type FromLatencyWorker =
  | { type: 'connected'; clients: number; ms: number }
  | { type: 'round-ready' }
  | {
      type: 'report';
      delivered: number;
      expected: number;
      outOfOrder: number;
      unexpected: number;
      /** Publish (due time) → decrypted and parsed, µs, one per delivery. */
      latenciesUs: number[];
    }
  | { type: 'failed'; message: string };

export type AdmissionTarget = 'signal' | 'peer';

export type ToAdmissionWorker =
  | {
      type: 'run';
      target: AdmissionTarget;
      url: string;
      /** Reused round-robin: a token may open any number of connections. */
      tokens: string[];
      ecdhInfo: string;
      /** Connections in flight at once in this worker. */
      lanes: number;
      durationMs: number;
    }
  | { type: 'close' };

export type FromAdmissionWorker =
  | {
      type: 'result';
      /** Connections that reached `connected` (signal: key derived) within the run. */
      completed: number;
      failed: number;
      firstError?: string;
      elapsedMs: number;
      /** Connect → connected, ms, one per completed connection. */
      latenciesMs: number[];
    }
  | { type: 'failed'; message: string };

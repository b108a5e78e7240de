/** The IPC protocol of bench/lib/push-client-worker.ts (members of the bench merchant, receiving pushes). */
export type ToPushWorker =
  | { type: 'connect'; url: string; ecdhInfo: string; members: Array<{ userId: string; token: string }> }
  /** Expect `count` pushes per member, of events whose id starts with `prefix`. */
  | { type: 'round'; prefix: string; count: number }
  | { type: 'report' }
  | { type: 'close' };

export type FromPushWorker =
  | { type: 'connected'; members: number }
  | { type: 'round-ready' }
  /** Every member has decrypted every push of the round; `at` is absolute (timeOrigin + now) ms. */
  | { type: 'done'; at: number }
  | { type: 'report'; pushes: number; complete: number }
  | { type: 'failed'; message: string };

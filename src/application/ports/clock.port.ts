export type Cancel = () => void;

/**
 * Time and timers, so that connection lifecycles can be driven by a manual
 * clock in tests. `schedule` runs `fn` once, no earlier than `at` (epoch ms);
 * the returned function cancels it and is safe to call after it ran.
 */
export interface Clock {
  now(): number;
  schedule(at: number, fn: () => void): Cancel;
}

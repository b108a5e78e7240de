/**
 * When the SDK tries again after an established session is lost:
 * exponential backoff with jitter, capped, optionally bounded in attempts.
 */
export interface ReconnectOptions {
  initialDelayMs?: number;
  maxDelayMs?: number;
  factor?: number;
  /** Fraction of each delay that is randomised away, so clients cut off together do not return together. */
  jitter?: number;
  maxAttempts?: number;
}
export type ReconnectPolicy = Required<ReconnectOptions>;

export const DEFAULT_RECONNECT: ReconnectPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 0.5,
  maxAttempts: Number.POSITIVE_INFINITY,
};

/** The policy an option asks for; `false` means never reconnect (null). */
export function reconnectPolicyFrom(option: boolean | ReconnectOptions | undefined): ReconnectPolicy | null {
  const reconnect = option ?? true;
  if (reconnect === false) return null;
  return { ...DEFAULT_RECONNECT, ...(reconnect === true ? {} : reconnect) };
}

/**
 * Delay before reconnect attempt `attempt` (1-based). Jitter only ever
 * shortens the delay, so `maxDelayMs` stays a true ceiling.
 */
export function backoffDelay(attempt: number, policy: ReconnectPolicy, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** (attempt - 1));
  return Math.round(base * (1 - policy.jitter * random()));
}

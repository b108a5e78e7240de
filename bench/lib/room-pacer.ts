/**
 * Open-loop publishing to a room at a fixed rate, for the latency
 * scenarios: message i is due at start + i / rate whatever happened to the
 * earlier ones, and carries its due time (not the time it actually left) as
 * `t`, so a server that falls behind is charged for the wait instead of
 * quietly publishing later (no coordinated omission). Runs inside the server
 * process, so no pipe or bench process sits between the clock and the
 * publish. Both the signal and the peer server use this same module.
 */
export interface PaceSpec {
  room: string;
  /** Messages per second to the room. */
  rate: number;
  durationMs: number;
  /** `seq` of the first message; later ones count up from it. */
  firstSeq: number;
  /** Exact JSON size of each message's data. */
  payloadBytes: number;
}

/**
 * Monotonic microseconds (CLOCK_MONOTONIC through hrtime): one clock for
 * every process on the machine, unaffected by wall-clock adjustments.
 */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** `{"seq":…,"t":…,"pad":"xx…"}`, padded to exactly `bytes` bytes of JSON. */
export function timedPayload(seq: number, t: number, bytes: number): { seq: number; t: number; pad: string } {
  const bare = JSON.stringify({ seq, t, pad: '' }).length;
  return { seq, t, pad: 'x'.repeat(Math.max(0, bytes - bare)) };
}

/** Publishes `rate × duration` messages through `publish`; resolves with how many were sent. */
export function pace(spec: PaceSpec, publish: (room: string, data: unknown) => void): Promise<number> {
  const total = Math.max(1, Math.round((spec.rate * spec.durationMs) / 1000));
  const intervalUs = 1e6 / spec.rate;
  const startUs = monotonicUs();
  let sent = 0;
  return new Promise((resolvePace, rejectPace) => {
    const tick = (): void => {
      try {
        const elapsedUs = monotonicUs() - startUs;
        const due = Math.min(total, Math.floor(elapsedUs / intervalUs) + 1);
        while (sent < due) {
          const dueAt = Math.round(startUs + sent * intervalUs);
          publish(spec.room, timedPayload(spec.firstSeq + sent, dueAt, spec.payloadBytes));
          sent++;
        }
        if (sent >= total) return resolvePace(sent);
        const waitMs = (startUs + sent * intervalUs - monotonicUs()) / 1000;
        setTimeout(tick, Math.max(0, waitMs));
      } catch (error) {
        rejectPace(error);
      }
    };
    tick();
  });
}

/**
 * 64-bit ids that sort by creation time, made without coordination:
 * 41 bits of milliseconds since `epochMs`, 10 bits of node id (unique per
 * running process, `APP_ENV_NODE_ID`), 12 bits of sequence within the
 * millisecond. Kept as decimal strings everywhere: they do not fit a JS
 * number.
 */

export const SNOWFLAKE_EPOCH_MS = 1_704_067_200_000; // 2024-01-01T00:00:00Z
export const MAX_NODE_ID = 1023;

const NODE_BITS = 10n;
const SEQUENCE_BITS = 12n;
const MAX_SEQUENCE = 4095;
const MAX_TIMESTAMP = 2 ** 41 - 1;

export class SnowflakeGenerator {
  readonly #nodeId: bigint;
  readonly #now: () => number;
  readonly #epochMs: number;
  /** Milliseconds since the epoch of the last id; -1 before the first. */
  #lastMs = -1;
  #sequence = 0;

  constructor(nodeId: number, now: () => number = Date.now, epochMs = SNOWFLAKE_EPOCH_MS) {
    if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId > MAX_NODE_ID) {
      throw new RangeError(`snowflake node id must be an integer in 0..${MAX_NODE_ID}`);
    }
    this.#nodeId = BigInt(nodeId);
    this.#now = now;
    this.#epochMs = epochMs;
  }

  /**
   * Strictly greater than every id this generator returned before. When the
   * clock goes backwards the last timestamp is reused, and when a
   * millisecond's 4096 sequence numbers run out the next millisecond is
   * borrowed instead of spinning until the clock reaches it. Either way ids
   * run ahead of the clock only while they are being asked for faster than
   * it moves, and the clock catches up afterwards.
   */
  next(): string {
    const elapsed = Math.floor(this.#now() - this.#epochMs);
    if (!Number.isFinite(elapsed) || elapsed < 0) {
      // Clamping would restart the sequence at an old time and repeat ids
      // issued by an earlier run of this node.
      throw new RangeError('clock is before the snowflake epoch');
    }
    let ms = Math.max(elapsed, this.#lastMs);
    if (ms === this.#lastMs) {
      if (this.#sequence < MAX_SEQUENCE) {
        this.#sequence += 1;
      } else {
        ms += 1;
        this.#sequence = 0;
      }
    } else {
      this.#sequence = 0;
    }
    if (ms > MAX_TIMESTAMP) throw new RangeError('snowflake timestamp exhausted (41 bits)');
    this.#lastMs = ms;
    return ((BigInt(ms) << (NODE_BITS + SEQUENCE_BITS)) | (this.#nodeId << SEQUENCE_BITS) | BigInt(this.#sequence)).toString();
  }
}

export interface SnowflakeParts {
  /** Unix milliseconds. */
  timestampMs: number;
  nodeId: number;
  sequence: number;
}

/** Splits an id into its fields, e.g. to see which process made it and when. */
export function decodeSnowflake(id: string, epochMs = SNOWFLAKE_EPOCH_MS): SnowflakeParts {
  if (!/^\d{1,20}$/.test(id)) throw new RangeError('not a snowflake id');
  const value = BigInt(id);
  if (value >= 1n << 63n) throw new RangeError('not a snowflake id');
  return {
    timestampMs: Number(value >> (NODE_BITS + SEQUENCE_BITS)) + epochMs,
    nodeId: Number((value >> SEQUENCE_BITS) & ((1n << NODE_BITS) - 1n)),
    sequence: Number(value & ((1n << SEQUENCE_BITS) - 1n)),
  };
}

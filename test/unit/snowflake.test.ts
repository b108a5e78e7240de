import { describe, expect, it } from 'vitest';
import { decodeSnowflake, SNOWFLAKE_EPOCH_MS, SnowflakeGenerator } from '../../src/domain/snowflake.ts';

/** A clock the test moves by hand. */
function manualClock(start: number) {
  let time = start;
  return { now: () => time, set: (value: number) => { time = value; } };
}

function expectStrictlyIncreasing(ids: readonly string[]): void {
  for (let index = 1; index < ids.length; index += 1) {
    if (BigInt(ids[index] as string) <= BigInt(ids[index - 1] as string)) {
      throw new Error(`id ${index} (${ids[index]}) is not greater than ${ids[index - 1]}`);
    }
  }
}

const T0 = SNOWFLAKE_EPOCH_MS + 1_000_000;

describe('SnowflakeGenerator', () => {
  it('lays out 41 bits of time, 10 of node id and 12 of sequence', () => {
    const generator = new SnowflakeGenerator(0b1010110011, () => T0);
    const first = BigInt(generator.next());
    const second = BigInt(generator.next());
    expect(first).toBe((1_000_000n << 22n) | (0b1010110011n << 12n));
    expect(second).toBe(first + 1n);
    expect(decodeSnowflake(second.toString())).toEqual({ timestampMs: T0, nodeId: 0b1010110011, sequence: 1 });
  });

  it('encodes the highest node id without touching the other fields', () => {
    const id = new SnowflakeGenerator(1023, () => T0).next();
    expect(decodeSnowflake(id)).toEqual({ timestampMs: T0, nodeId: 1023, sequence: 0 });
    expect((BigInt(id) >> 12n) & 0x3ffn).toBe(1023n);
  });

  it('restarts the sequence when the millisecond changes', () => {
    const clock = manualClock(T0);
    const generator = new SnowflakeGenerator(5, clock.now);
    generator.next();
    generator.next();
    clock.set(T0 + 7);
    expect(decodeSnowflake(generator.next())).toEqual({ timestampMs: T0 + 7, nodeId: 5, sequence: 0 });
  });

  it('is strictly increasing over 100k ids from the real clock', () => {
    const generator = new SnowflakeGenerator(9);
    const ids = Array.from({ length: 100_000 }, () => generator.next());
    expectStrictlyIncreasing(ids);
    expect(new Set(ids).size).toBe(100_000);
    expect(ids.every((id) => decodeSnowflake(id).nodeId === 9)).toBe(true);
  });

  it('borrows the next millisecond when 4096 ids are asked within one, without waiting', () => {
    const generator = new SnowflakeGenerator(1, () => T0);
    const ids = Array.from({ length: 10_000 }, () => generator.next());
    expectStrictlyIncreasing(ids);
    expect(decodeSnowflake(ids[4095] as string)).toEqual({ timestampMs: T0, nodeId: 1, sequence: 4095 });
    expect(decodeSnowflake(ids[4096] as string)).toEqual({ timestampMs: T0 + 1, nodeId: 1, sequence: 0 });
    expect(decodeSnowflake(ids[9999] as string)).toEqual({ timestampMs: T0 + 2, nodeId: 1, sequence: 9999 - 8192 });
  });

  it('stays monotonic when the clock goes backwards', () => {
    const clock = manualClock(T0);
    const generator = new SnowflakeGenerator(3, clock.now);
    const before = generator.next();
    clock.set(T0 - 5_000);
    const during = [generator.next(), generator.next()];
    clock.set(T0 + 1);
    const after = generator.next();
    expectStrictlyIncreasing([before, ...during, after]);
    expect(decodeSnowflake(during[0] as string)).toEqual({ timestampMs: T0, nodeId: 3, sequence: 1 });
    expect(decodeSnowflake(after)).toEqual({ timestampMs: T0 + 1, nodeId: 3, sequence: 0 });
  });

  it('lets the clock catch up after borrowing instead of reusing a borrowed millisecond', () => {
    const clock = manualClock(T0);
    const generator = new SnowflakeGenerator(3, clock.now);
    const burst = Array.from({ length: 4097 }, () => generator.next());
    clock.set(T0 + 1);
    const next = generator.next();
    expectStrictlyIncreasing([...burst, next]);
    expect(decodeSnowflake(next)).toEqual({ timestampMs: T0 + 1, nodeId: 3, sequence: 1 });
  });

  it('never collides across generators with different node ids', () => {
    const clock = manualClock(T0);
    const generators = [0, 1, 512, 1023].map((node) => new SnowflakeGenerator(node, clock.now));
    const ids = new Set<string>();
    for (let round = 0; round < 6_000; round += 1) {
      if (round % 1_000 === 0) clock.set(T0 + round / 1_000);
      for (const generator of generators) ids.add(generator.next());
    }
    expect(ids.size).toBe(24_000);
  });

  it('honours a custom epoch', () => {
    const epoch = Date.UTC(2020, 0, 1);
    const id = new SnowflakeGenerator(2, () => epoch + 42, epoch).next();
    expect(BigInt(id) >> 22n).toBe(42n);
    expect(decodeSnowflake(id, epoch).timestampMs).toBe(epoch + 42);
  });

  it('refuses node ids outside 0..1023 and clocks before the epoch', () => {
    for (const bad of [-1, 1024, 1.5, Number.NaN]) {
      expect(() => new SnowflakeGenerator(bad)).toThrow(RangeError);
    }
    expect(() => new SnowflakeGenerator(0, () => SNOWFLAKE_EPOCH_MS - 1).next()).toThrow('clock is before the snowflake epoch');
  });

  it('refuses strings that are not ids when decoding', () => {
    for (const bad of ['', '-1', '12a', '9223372036854775808', '1'.repeat(21)]) {
      expect(() => decodeSnowflake(bad)).toThrow(RangeError);
    }
  });
});

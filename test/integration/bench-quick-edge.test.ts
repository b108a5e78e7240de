import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expectWellFormedResults, runQuickBench } from './bench-quick-run.ts';

/**
 * The quick mode of the edge scenarios that compare signal with the
 * Socket.IO peer: room fan-out over Redis (its own redis-server), connection
 * admission, and idle memory per connection. Shape only, never the figures.
 */
const KILL_AFTER_MS = 170_000;
const SCENARIOS = ['room-fanout-redis', 'connection-admission', 'idle-memory-20k'];
const out = mkdtempSync(join(tmpdir(), 'signal-bench-test-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('npm run bench -- --quick (room-fanout-redis, connection-admission, idle-memory-20k)', () => {
  it(
    'writes well-formed rows with a peer figure for every metric, every round in params',
    async () => {
      const { code, stderr } = await runQuickBench(out, SCENARIOS, KILL_AFTER_MS);
      expect(code, stderr).toBe(0);
      const rows = expectWellFormedResults(out);
      expect(rows.map((row) => `${String(row.scenario)}/${String(row.metric)}`)).toEqual(
        expect.arrayContaining([
          'room-fanout-redis/latency_p50',
          'room-fanout-redis/latency_p99',
          'connection-admission/connections_per_sec',
          'idle-memory-20k/rss_per_connection',
        ]),
      );
      for (const row of rows) {
        const params = row.params as Record<string, unknown>;
        // Every figure here is compared with Socket.IO as well as with the limit.
        expect(row.peer, String(row.metric)).not.toBeNull();
        for (const key of ['signalRounds', 'peerRounds', 'limitRounds']) {
          expect(Array.isArray(params[key]), `${String(row.metric)} ${key}`).toBe(true);
        }
        expect((params.peerRounds as unknown[]).length).toBe((params.signalRounds as unknown[]).length);
      }
      const admission = rows.find((row) => row.metric === 'connections_per_sec')!.params as Record<string, unknown>;
      expect(Object.keys(admission.stepCostsUs as object)).toContain('signalAcceptHandshakeCpuUs');
      // Linux (/proc): the clients' CPU and the bound it puts on any server on these cores.
      if (process.platform === 'linux') {
        const clients = admission.clientCpuUsPerConnection as Record<string, number>;
        expect(clients.signal).toBeGreaterThan(0);
        expect(clients.peer).toBeGreaterThan(0);
        const bound = admission.machineBound as Record<string, number>;
        const expected = (bound.cores * 1e6) / (bound.signalClientCpuUs + bound.limitServerCpuUs);
        // Figures are kept to three significant digits.
        expect(Math.abs(bound.connectionsPerSec / expected - 1)).toBeLessThan(0.01);
      }
      const memory = rows.find((row) => row.metric === 'rss_per_connection')!.params as Record<string, unknown>;
      expect(memory.connections).toBe(1_000);
    },
    KILL_AFTER_MS + 5_000,
  );
});

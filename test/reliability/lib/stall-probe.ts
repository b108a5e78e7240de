/**
 * A diagnostic preload for a signal instance started by a reliability
 * scenario: it notes every event-loop stall and every GC pause over 5 ms,
 * with the process's uptime, in `stalls-<pid>.log`, and records a CPU
 * profile (`cpu-<pid>.cpuprofile`, 30 s or $STALL_PROBE_PROFILE_MS) each time
 * the process gets SIGUSR2. Lines of two instances line up by time, which
 * tells a stall of the instance's own work (one instance) from the
 * machine's (both at once).
 *
 *   RELIABILITY_INSTANCE_NODE_OPTIONS="--import tsx --import $PWD/test/reliability/lib/stall-probe.ts" \
 *     npm run reliability -- --quick --only hold-20k --out /tmp/hold.md
 *   kill -USR2 <instance pid>     # during the hold, for a profile
 *
 * Files go to $STALL_PROBE_DIR (default: the OS temp directory). Not loaded
 * unless asked for.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance, PerformanceObserver } from 'node:perf_hooks';

const dir = process.env.STALL_PROBE_DIR ?? tmpdir();
const PROFILE_MS = Number(process.env.STALL_PROBE_PROFILE_MS ?? 30_000);
const TICK_MS = 10;
const STALL_MS = 50;
const lines: string[] = [];
const flush = (): void => {
  if (lines.length === 0) return;
  appendFileSync(join(dir, `stalls-${process.pid}.log`), `${lines.join('\n')}\n`);
  lines.length = 0;
};

new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.duration > 5) lines.push(`gc ${Math.round(entry.startTime)} ms: ${entry.duration.toFixed(1)} ms`);
  }
}).observe({ entryTypes: ['gc'] });

let last = performance.now();
setInterval(() => {
  const now = performance.now();
  const late = now - last - TICK_MS;
  if (late > STALL_MS) lines.push(`stall ${Math.round(last)} ms: ${Math.round(late)} ms, heap ${Math.round(process.memoryUsage().heapUsed / 1048576)} MiB`);
  last = now;
}, TICK_MS).unref();
setInterval(flush, 1_000).unref();
process.on('exit', flush);

let profiling = false;
process.on('SIGUSR2', () => {
  if (profiling) return;
  profiling = true;
  const session = new Session();
  session.connect();
  session.post('Profiler.enable', () =>
    session.post('Profiler.start', () => {
      lines.push(`profile from ${Math.round(performance.now())} ms`);
      setTimeout(() => {
        session.post('Profiler.stop', (error, result) => {
          if (error === null) writeFileSync(join(dir, `cpu-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
          session.disconnect();
          profiling = false;
        });
      }, PROFILE_MS).unref();
    }),
  );
});

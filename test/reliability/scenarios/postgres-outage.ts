import { pause, within } from '../../fixtures/cleanup-stack.ts';
import { merchantEvent } from '../../fixtures/pipeline-harness.ts';
import { createdAtByEvent, startPipelineRig, watchCommits } from '../../fixtures/pipeline-rig.ts';
import { errorLines } from '../../fixtures/signal-service.ts';
import { Checks } from '../lib/checks.ts';
import { withCleanupStack } from '../lib/cleanup.ts';
import type { ReliabilityScenario, ScenarioOptions, ScenarioResult } from '../scenario.ts';

/**
 * PostgreSQL goes away while activity events stream in through Kafka. The
 * service reaches the real server through a TCP proxy, and the proxy is cut
 * (every connection reset, every new one refused) for the outage; the real
 * server is never touched. Events keep arriving on a fake broker at a steady
 * rate before, during and after. During the outage the committed offset is
 * sampled against the rows actually stored, and every commit of the whole
 * run is checked against the creation time of the rows it acknowledges.
 */
const MEMBERS = ['u-po-1', 'u-po-2'];

export const scenario: ReliabilityScenario = {
  name: 'postgres-outage',
  category: 'fault',
  what:
    '2,000 activity events (quick: 300) for a merchant of 2 members stream through a fake Kafka broker at 100/s (quick: 60/s); PostgreSQL is cut off behind a TCP proxy for 10 s (quick: 4 s) in the middle of the stream, then restored.',
  expected:
    'Afterwards every event has exactly its 2 rows (none lost, none duplicated) and the offset is committed to the end; no commit ever acknowledged an event whose rows did not exist yet (sampled during the outage, and every commit checked against row creation times); /ready answers 503 naming the database during the outage and 200 after; nothing is parked on the DLQ; the process keeps running.',
  timeLimitMs: { quick: 90_000, full: 240_000 },
  run,
};

async function run({ quick, log }: ScenarioOptions): Promise<ScenarioResult> {
  const total = quick ? 300 : 2_000;
  const rate = quick ? 60 : 100;
  const outageAfterMs = quick ? 1_000 : 5_000;
  const outageMs = quick ? 4_000 : 10_000;
  return withCleanupStack(async (stack) => {
    const rig = await startPipelineRig(stack, { label: 'pgoutage', members: MEMBERS, proxy: true });
    const proxy = rig.proxy!;
    log?.('service fetching');
    const watch = watchCommits(rig, 600_000);
    stack.defer('stop watching commits', () => watch.stop());
    const eventIds = Array.from({ length: total }, (_, index) => `ev-po-${index}`);

    const misplaced: string[] = [];
    const streamStart = performance.now();
    const streaming = (async () => {
      let sent = 0;
      while (sent < total) {
        const due = Math.min(total, Math.floor(((performance.now() - streamStart) * rate) / 1000));
        for (; sent < due; sent++) {
          const [landed] = rig.broker.produce(rig.topic, [{ value: JSON.stringify(merchantEvent(eventIds[sent]!, rig.merchantId)) }]);
          if (landed?.offset !== String(sent)) misplaced.push(`${eventIds[sent]} at ${landed?.offset}`);
        }
        await pause(10);
      }
    })();

    await pause(outageAfterMs);
    const before = await readiness(rig.service.http);
    proxy.cut();
    const cutAt = Date.now();
    log?.(`database cut at offset ${rig.committed()}`);
    const samples: Array<{ at: number; committed: number; storedPrefix: number; ready: number; readyDetail: string }> = [];
    while (Date.now() - cutAt < outageMs) {
      const committed = rig.committed();
      const storedPrefix = await rig.database.completeEvents(eventIds.slice(0, committed), MEMBERS.length);
      const probe = await readiness(rig.service.http);
      samples.push({ at: Date.now() - cutAt, committed, storedPrefix, ready: probe.status, readyDetail: probe.database });
      await pause(200);
    }
    proxy.restore();
    const restoredAt = Date.now();
    log?.(`database restored after ${restoredAt - cutAt} ms at offset ${rig.committed()}`);
    const readyAgainMs = await within(async () => (await readiness(rig.service.http)).status === 200, 30_000, 100);
    await streaming;
    const drained = await within(() => rig.committed() === total, quick ? 45_000 : 120_000, 100);
    const drainedAfterCutMs = drained === null ? null : Date.now() - cutAt;
    log?.(`committed ${rig.committed()}/${total}`);
    await pause(300);
    watch.stop();

    const counts = await rig.database.countsByEvent(eventIds);
    const missing = eventIds.filter((eventId) => (counts.get(eventId) ?? 0) < MEMBERS.length);
    const extra = eventIds.filter((eventId) => (counts.get(eventId) ?? 0) > MEMBERS.length);
    const duplicatePairs = await rig.database.duplicatePairs(eventIds);
    const rows = [...counts.values()].reduce((sum, count) => sum + count, 0);
    const createdAt = await createdAtByEvent(rig.database);
    // The latest row creation among events 0..i, for every i.
    const prefixCreated: number[] = [];
    eventIds.forEach((eventId, index) => (prefixCreated[index] = Math.max(prefixCreated[index - 1] ?? 0, createdAt.get(eventId) ?? Infinity)));
    const earlyCommits = watch.commits.filter((commit) => commit.offset > 0 && !(prefixCreated[commit.offset - 1]! <= commit.at));
    const sampledViolations = samples.filter((sample) => sample.storedPrefix < sample.committed);
    const outageSamples = samples.length;
    const notReady = samples.filter((sample) => sample.ready === 503 && sample.readyDetail.startsWith('false'));
    const answered503 = samples.filter((sample) => sample.ready === 503).length;
    const firstNotReadyMs = samples.find((sample) => sample.ready === 503)?.at ?? Number.NaN;
    const dlq = rig.broker.partitionCount(`${rig.topic}.dlq`) === 0 ? 0 : rig.broker.messages(`${rig.topic}.dlq`).length;
    const retries = rig.service.logsWith('kafka message failed; retrying the same message').length;
    const processedLines = rig.service.outcomes('processed').length;
    const committedDuringOutage = samples.at(-1)!.committed - samples[0]!.committed;

    const checks = new Checks();
    checks.record('events produced in order', misplaced.length === 0, 'offset = index', misplaced.slice(0, 3).join(', ') || 'in order');
    checks.record('ready before the outage', before.status === 200, '200', String(before.status));
    checks.record('events with missing rows', missing.length === 0, '0', `${missing.length} (${missing.slice(0, 3).join(', ')})`);
    checks.record('events with extra rows', extra.length === 0, '0', String(extra.length));
    checks.record('duplicate (event, recipient) rows', duplicatePairs.length === 0, '0', String(duplicatePairs.length));
    checks.record('rows', rows === total * MEMBERS.length, String(total * MEMBERS.length), String(rows));
    checks.record('committed to the end', drained !== null, `${total}`, String(rig.committed()));
    checks.record('commits ahead of stored rows (sampled in the outage)', sampledViolations.length === 0, '0', JSON.stringify(sampledViolations.slice(0, 3)));
    checks.record('commits before their rows were created (whole run)', earlyCommits.length === 0, '0', JSON.stringify(earlyCommits.slice(0, 3)));
    checks.record('/ready 503 naming the database in the outage', notReady.length > 0, '> 0 samples', `${notReady.length}/${outageSamples}`);
    checks.record('/ready 200 after the outage', readyAgainMs !== null, 'within 30 s', readyAgainMs === null ? 'never' : `${readyAgainMs} ms`);
    checks.record('DLQ messages', dlq === 0, '0', String(dlq));
    checks.record('service running', rig.service.child.exitCode === null && rig.service.child.signalCode === null, 'running', 'exited');
    checks.record('error log lines', errorLines(rig.service).length === 0, '0', String(errorLines(rig.service).length));
    checks.record('messages processed once each', processedLines === total, String(total), String(processedLines));

    const measured =
      `${total} events, database cut for ${restoredAt - cutAt} ms: ${total - missing.length}/${total} events complete, ${rows} rows, ` +
      `${duplicatePairs.length} duplicate pairs; committed offset moved by ${committedDuringOutage} during the outage and never ahead of the stored rows ` +
      `(${sampledViolations.length} sampled and ${earlyCommits.length} of ${watch.commits.length} commits ahead); /ready 503 in ${answered503}/${outageSamples} outage samples ` +
      `(first after ${firstNotReadyMs} ms; the database named in ${notReady.length}), 200 again ${readyAgainMs} ms after the restore; ${retries} retries; everything committed ${drainedAfterCutMs === null ? 'never' : `${(drainedAfterCutMs / 1000).toFixed(1)} s after the cut`}. ${checks.summary()}`;
    return {
      measured,
      pass: checks.passed,
      details: {
        total,
        rate,
        outageMs: restoredAt - cutAt,
        rows,
        missing: missing.length,
        extra: extra.length,
        duplicatePairs: duplicatePairs.length,
        commits: watch.commits.length,
        earlyCommits: earlyCommits.slice(0, 5),
        samples,
        retries,
        dlq,
        readyAgainMs,
        answered503,
        drainedAfterCutMs,
        checks: checks.outcomes,
      },
    };
  });
}

async function readiness(http: string): Promise<{ status: number; database: string }> {
  try {
    const response = await fetch(`${http}/ready`, { signal: AbortSignal.timeout(2_000) });
    const body = (await response.json()) as { dependencies?: Array<{ name: string; ready: boolean; detail?: string }> };
    const database = body.dependencies?.find((dependency) => dependency.name === 'database');
    return { status: response.status, database: database === undefined ? 'absent' : `${database.ready} ${database.detail ?? ''}`.trim() };
  } catch (error) {
    return { status: 0, database: (error as Error).message };
  }
}

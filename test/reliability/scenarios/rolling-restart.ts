import { startBalancedCluster } from '../../fixtures/balanced-cluster.ts';
import { pause, within } from '../../fixtures/cleanup-stack.ts';
import { reconnectsAfter } from '../../fixtures/fleet/fleet-analysis.ts';
import { absoluteNow } from '../../fixtures/fleet/fleet-protocol.ts';
import { PacedPublisher } from '../../fixtures/paced-publisher.ts';
import { prepareEnv, spreadOf } from '../../fixtures/reliability-env.ts';
import { errorLines, untilReady, type SignalService } from '../../fixtures/signal-service.ts';
import { Checks } from '../lib/checks.ts';
import { withCleanupStack } from '../lib/cleanup.ts';
import type { ReliabilityScenario, ScenarioOptions, ScenarioResult } from '../scenario.ts';

/**
 * A deployment rolls: instance A is taken out of the load balancer's
 * rotation and sent SIGTERM, a new A is started and put back once /ready
 * says 200, then the same for B. The clients are the project's SDK behind a
 * round-robin TCP proxy; each 1001 close sends them through the SDK's
 * backoff to whatever is in rotation. At the end every SDK client must be
 * in session and must receive one last broadcast.
 */
const RECONNECT_BOUND_MS = 10_000;

interface Step {
  instance: string;
  exit: string;
  shutdownMs: number;
  replacementReadyMs: number;
  allBackMs: number | null;
}

export const scenario: ReliabilityScenario = {
  name: 'rolling-restart',
  category: 'fault',
  what:
    '1,000 SDK clients (quick: 200) on two instances behind a round-robin TCP proxy; A is taken out of rotation, SIGTERMed and replaced (new process, back in rotation once /ready is 200), then B the same way.',
  expected:
    'Each old instance exits 0; every client that lost its session (close 1001) is in session again within 10 s; none is stranded: all SDK clients are `encrypted` at the end, the presence registry lists exactly them, and each receives a final broadcast exactly once.',
  timeLimitMs: { quick: 120_000, full: 180_000 },
  run,
};

async function run({ quick, log }: ScenarioOptions): Promise<ScenarioResult> {
  const clientCount = quick ? 200 : 1_000;
  return withCleanupStack(async (stack) => {
    const setup = await prepareEnv(stack, 'rolling', { redis: true, database: true });
    const cluster = await startBalancedCluster(stack, setup, { clientCount, presenceTtlMs: 30_000, openTimeoutMs: 90_000 });
    const { a, b, proxy, presence, fleet, outcome } = cluster;
    log?.(`${outcome.ok} SDK clients connected in ${Math.round(outcome.ms)} ms`);
    const startedAt = absoluteNow();

    const steps: Step[] = [];
    const replace = async (old: SignalService, name: string): Promise<SignalService> => {
      proxy.remove(old.port);
      const termAt = Date.now();
      const exit = await old.kill('SIGTERM');
      const shutdownMs = Date.now() - termAt;
      const replacement = await cluster.startInstance(name);
      const replacementReadyMs = Date.now() - termAt;
      await untilReady(replacement, 20_000);
      proxy.add(replacement.port);
      const allBack = await within(async () => (await fleet.report()).open === clientCount, 30_000, 100);
      const allBackMs = allBack === null ? null : Date.now() - termAt;
      steps.push({ instance: old.name, exit: `${exit.code ?? exit.signal}`, shutdownMs, replacementReadyMs, allBackMs });
      log?.(`${old.name} replaced by ${name}: shutdown ${shutdownMs} ms, all clients back ${allBackMs === null ? 'never' : `${allBackMs} ms`} after SIGTERM`);
      return replacement;
    };
    const a2 = await replace(a, 'A2');
    const b2 = await replace(b, 'B2');

    const listed = await within(async () => (await presence.count()) === clientCount, 10_000);
    const publisher = await PacedPublisher.connect({ redisUrl: setup.redis!.url, channelPrefix: setup.prefix, rate: 1, targetOf: () => ({ kind: 'broadcast' }) });
    stack.defer('close the publisher', () => publisher.close());
    const finalSeq = publisher.sent;
    await publisher.publishOne({ kind: 'broadcast' });
    const deliveredMs = await within(async () => ((await fleet.report()).groups.get('all')?.perSeq[finalSeq] ?? 0) >= clientCount, 10_000);
    await pause(300);

    const report = await fleet.report({ detail: true });
    const reconnects = reconnectsAfter(report.perClient, startedAt);
    const final = report.groups.get('all')?.perSeq[finalSeq] ?? 0;
    const notEncrypted = report.perClient.filter((client) => !client.open).length;
    const records = await presence.all();
    const recordIds = new Set(records.map((record) => record.id));
    const unlisted = report.perClient.filter((client) => !recordIds.has(client.clientId)).length;
    const perInstance = Object.fromEntries([a2, b2].map((service) => [service.name, records.filter((record) => record.instanceId === service.instanceId).length]));
    const spread = spreadOf(reconnects.durations);

    const checks = new Checks();
    checks.record('clients connected', outcome.ok === clientCount, String(clientCount), String(outcome.ok));
    for (const step of steps) {
      checks.record(`${step.instance} exit`, step.exit === '0', '0', step.exit);
      checks.record(`${step.instance}: all clients in session again`, step.allBackMs !== null, 'all', step.allBackMs === null ? 'not all' : 'all');
    }
    checks.record('sessions lost', reconnects.durations.length + reconnects.stranded.length > 0, '> 0', String(reconnects.durations.length));
    checks.record('longest reconnect', spread.max <= RECONNECT_BOUND_MS, `<= ${RECONNECT_BOUND_MS} ms`, `${spread.max} ms`);
    checks.record('stranded clients', reconnects.stranded.length === 0 && notEncrypted === 0, '0', `${reconnects.stranded.length} stranded, ${notEncrypted} not encrypted`);
    checks.record('presence lists exactly the clients', listed !== null && unlisted === 0 && records.length === clientCount, String(clientCount), `${records.length} (${unlisted} clients unlisted)`);
    checks.record('final broadcast delivered', final === clientCount && deliveredMs !== null, String(clientCount), String(final));
    checks.record('duplicate deliveries', report.duplicates === 0, '0', String(report.duplicates));
    for (const service of [a2, b2]) checks.record(`${service.name} error lines`, errorLines(service).length === 0, '0', String(errorLines(service).length));

    const measured =
      `${clientCount} clients, ${reconnects.durations.length} sessions lost over two restarts (close codes ${JSON.stringify(reconnects.closeCodes)}): ` +
      `reconnected in p50 ${spread.p50} / p95 ${spread.p95} / max ${spread.max} ms; ${reconnects.stranded.length} stranded, ${notEncrypted} not in session at the end; ` +
      `shutdowns ${steps.map((step) => `${step.instance} ${step.shutdownMs} ms (exit ${step.exit})`).join(', ')}; ` +
      `final broadcast reached ${final}/${clientCount}; presence lists ${records.length} (${JSON.stringify(perInstance)}). ${checks.summary()}`;
    return {
      measured,
      pass: checks.passed,
      details: { clientCount, steps, reconnect: spread, closeCodes: reconnects.closeCodes, stranded: reconnects.stranded.slice(0, 20), notEncrypted, final, perInstance, proxy: proxy.counts, checks: checks.outcomes },
    };
  });
}

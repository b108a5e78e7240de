import { CleanupStack, pause, within } from '../../fixtures/cleanup-stack.ts';
import { merchantEvent, Recipient } from '../../fixtures/pipeline-harness.ts';
import { startPipelineRig } from '../../fixtures/pipeline-rig.ts';
import { errorLines } from '../../fixtures/signal-service.ts';
import { Checks } from '../lib/checks.ts';
import { onCleanup } from '../lib/cleanup.ts';
import type { ReliabilityScenario, ScenarioOptions, ScenarioResult } from '../scenario.ts';

/**
 * At-least-once delivery at its worst: every activity event is on the topic
 * twice, the copies shuffled (a producer retrying, a replayed partition),
 * while the recipients are connected. The store's (event, recipient)
 * uniqueness and the push-only-what-was-created rule must turn that into
 * exactly one row and one push per recipient and event.
 */
const MEMBERS = ['u-rs-1', 'u-rs-2', 'u-rs-3'];

export const scenario: ReliabilityScenario = {
  name: 'redelivery-storm',
  category: 'fault',
  what:
    '10,000 activity events (quick: 1,000) for a merchant of 3 members, each produced twice in a shuffled order (20,000 messages) onto one partition of a fake Kafka broker, consumed by the real service while all 3 recipients are connected.',
  expected:
    'Exactly 10,000 × 3 rows, no duplicate (event, recipient) pair; each recipient decrypts exactly one push per event (10,000 distinct push ids, each the id of its own row); every message is committed and none parked on the DLQ; no error lines.',
  timeLimitMs: { quick: 120_000, full: 420_000 },
  run,
};

async function run({ quick, log }: ScenarioOptions): Promise<ScenarioResult> {
  const total = quick ? 1_000 : 10_000;
  const seed = Date.now() % 2 ** 31;
  const stack = new CleanupStack();
  const release = onCleanup(() => stack.run());
  try {
    const rig = await startPipelineRig(stack, { label: 'redelivery', members: MEMBERS });
    const recipients = await Promise.all(MEMBERS.map((userId) => Recipient.connect(rig.service, rig.issuer, userId)));
    stack.defer('close the recipients', () => recipients.forEach((recipient) => recipient.close()));
    log?.('recipients connected');

    const eventIds = Array.from({ length: total }, (_, index) => `ev-rs-${index}`);
    const order = shuffle([...eventIds, ...eventIds], mulberry32(seed));
    const startedAt = Date.now();
    rig.broker.produce(
      rig.topic,
      order.map((eventId) => ({ value: JSON.stringify(merchantEvent(eventId, rig.merchantId)) })),
    );
    const messages = order.length;
    let lastLog = Date.now();
    const drainedMs = await within(
      () => {
        if (Date.now() - lastLog > 10_000) {
          lastLog = Date.now();
          log?.(`committed ${rig.committed()}/${messages}`);
        }
        return rig.committed() === messages;
      },
      quick ? 90_000 : 380_000,
      100,
    );
    const elapsedMs = Date.now() - startedAt;
    log?.(`committed ${rig.committed()}/${messages} after ${elapsedMs} ms`);
    await within(() => recipients.every((recipient) => recipient.pushes.length >= total), 10_000, 50);
    await pause(300);

    const counts = await rig.database.countsByEvent(eventIds);
    const rows = await rig.database.rows(eventIds);
    const duplicatePairs = await rig.database.duplicatePairs(eventIds);
    const complete = eventIds.filter((eventId) => counts.get(eventId) === MEMBERS.length).length;
    const perRecipient = recipients.map((recipient) => {
      const own = new Set(rows.filter((row) => row.recipientId === recipient.userId).map((row) => row.id));
      const ids = new Set(recipient.pushes.map((push) => push.id));
      const events = new Set(recipient.pushes.map((push) => push.eventId));
      return {
        userId: recipient.userId,
        pushes: recipient.pushes.length,
        distinctIds: ids.size,
        distinctEvents: events.size,
        notOwnRow: recipient.pushes.filter((push) => !own.has(push.id) || push.recipientId !== recipient.userId).length,
        closed: recipient.closed,
      };
    });
    const dlq = rig.broker.partitionCount(`${rig.topic}.dlq`) === 0 ? 0 : rig.broker.messages(`${rig.topic}.dlq`).length;
    const processed = rig.service.outcomes('processed').length;
    const alreadyStored = rig.service.logsWith('event already stored: nothing new to push').length;
    const retries = rig.service.logsWith('kafka message failed; retrying the same message').length;

    const checks = new Checks();
    checks.record('all messages committed', drainedMs !== null, String(messages), String(rig.committed()));
    checks.record('rows', rows.length === total * MEMBERS.length, String(total * MEMBERS.length), String(rows.length));
    checks.record('events with exactly their rows', complete === total, String(total), String(complete));
    checks.record('duplicate (event, recipient) pairs', duplicatePairs.length === 0, '0', String(duplicatePairs.length));
    for (const each of perRecipient) {
      checks.record(`${each.userId} pushes`, each.pushes === total, String(total), String(each.pushes));
      checks.record(`${each.userId} distinct push ids`, each.distinctIds === total, String(total), String(each.distinctIds));
      checks.record(`${each.userId} distinct events pushed`, each.distinctEvents === total, String(total), String(each.distinctEvents));
      checks.record(`${each.userId} pushes not matching its own row`, each.notOwnRow === 0, '0', String(each.notOwnRow));
      checks.record(`${each.userId} still connected`, !each.closed, 'connected', each.closed ? 'closed' : 'connected');
    }
    checks.record('messages processed', processed === messages, String(messages), String(processed));
    checks.record('DLQ messages', dlq === 0, '0', String(dlq));
    checks.record('error log lines', errorLines(rig.service).length === 0, '0', String(errorLines(rig.service).length));

    const rate = Math.round((messages / Math.max(1, elapsedMs)) * 1000);
    const measured =
      `${messages} messages (${total} events × 2, shuffled, seed ${seed}) consumed in ${(elapsedMs / 1000).toFixed(1)} s (${rate} msg/s): ` +
      `${rows.length} rows (${duplicatePairs.length} duplicate pairs), ${alreadyStored} copies recognised as already stored; ` +
      `pushes per recipient ${perRecipient.map((each) => `${each.pushes} (${each.distinctIds} distinct)`).join(', ')}; ${retries} retries. ${checks.summary()}`;
    return {
      measured,
      pass: checks.passed,
      details: { total, messages, seed, elapsedMs, rate, rows: rows.length, duplicatePairs: duplicatePairs.length, perRecipient, alreadyStored, retries, dlq, checks: checks.outcomes },
    };
  } finally {
    await release();
  }
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let index = items.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    [items[index], items[other]] = [items[other]!, items[index]!];
  }
  return items;
}

/** A small seeded generator, so a failing order can be replayed from the seed in the report. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

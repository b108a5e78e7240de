import fc from 'fast-check';
import { sessionPlan, type SessionPlan } from './frame-arbitraries.ts';
import { runSession, type SessionOutcome } from './fuzz-session.ts';
import { checkLiveness } from './liveness.ts';
import type { SignalTarget } from './targets.ts';

/**
 * Drives many fuzzing sessions at once against one server until a frame
 * budget is spent, checking between batches that the server still answers a
 * fresh handshake and /health.
 */
export interface FuzzOptions {
  target: SignalTarget;
  /** Frames to send in total (sessions end early on closes, so more sessions are opened as needed). */
  frames: number;
  /** Connections fuzzing at the same time. */
  parallel: number;
  seed: number;
  /** Stop (and say so) when this much time has passed. */
  budgetMs: number;
  /** A liveness check after this many sessions. */
  livenessEvery: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface FuzzReport {
  seed: number;
  framesSent: number;
  sessions: number;
  durationMs: number;
  sentByKind: Record<string, number>;
  sentByLabel: Record<string, number>;
  replies: Record<string, number>;
  closes: Record<string, number>;
  probes: Record<string, number>;
  replaysSent: number;
  /** Replays on connections that stayed open to the probe, and how many of them got their reply once more. */
  replaysChecked: number;
  replaysHandled: number;
  promisedReplies: number;
  answeredReplies: number;
  violationCount: number;
  /** The first violations, each once, with how often it was seen. */
  violations: Array<{ text: string; seen: number }>;
  liveness: { checks: number; failures: string[] };
  stoppedEarly: string | null;
}

const add = (into: Record<string, number>, key: string, by = 1) => {
  into[key] = (into[key] ?? 0) + by;
};

/** Session plans, a batch at a time, reproducible from the seed. */
function* plans(seed: number): Generator<SessionPlan> {
  for (let batch = 0; ; batch++) yield* fc.sample(sessionPlan, { numRuns: 50, seed: seed + batch });
}

export async function fuzzStream(options: FuzzOptions): Promise<FuzzReport> {
  const started = performance.now();
  const report: FuzzReport = {
    seed: options.seed,
    framesSent: 0,
    sessions: 0,
    durationMs: 0,
    sentByKind: {},
    sentByLabel: {},
    replies: {},
    closes: {},
    probes: {},
    replaysSent: 0,
    replaysChecked: 0,
    replaysHandled: 0,
    promisedReplies: 0,
    answeredReplies: 0,
    violationCount: 0,
    violations: [],
    liveness: { checks: 0, failures: [] },
    stoppedEarly: null,
  };
  const token = await options.target.token('fuzz-user');
  const source = plans(options.seed);
  const seen = new Map<string, { text: string; seen: number }>();
  let sinceLiveness = 0;
  let lastLog = performance.now();

  const absorb = (outcome: SessionOutcome) => {
    report.sessions += 1;
    report.framesSent += outcome.framesSent;
    report.replaysSent += outcome.replaysSent;
    report.replaysChecked += outcome.replaysChecked;
    report.replaysHandled += outcome.replaysHandled;
    report.promisedReplies += outcome.promised;
    report.answeredReplies += outcome.answered;
    for (const [label, n] of Object.entries(outcome.sentByLabel)) {
      add(report.sentByLabel, label, n);
      add(report.sentByKind, label.split(':')[0] as string, n);
    }
    for (const [reply, n] of Object.entries(outcome.replies)) add(report.replies, reply, n);
    add(report.closes, outcome.close);
    add(report.probes, outcome.probe);
    for (const text of outcome.violations) {
      report.violationCount += 1;
      // "<kind> | <detail>": the kind is what repeats, the detail is one example.
      const shape = text.split(' | ')[0] as string;
      const entry = seen.get(shape);
      if (entry !== undefined) entry.seen += 1;
      else if (seen.size < 40) seen.set(shape, { text, seen: 1 });
    }
  };

  const stopReason = (): string | null => {
    if (options.signal?.aborted === true) return 'aborted by the runner';
    if (performance.now() - started > options.budgetMs) return `time budget of ${Math.round(options.budgetMs / 1000)} s spent`;
    if (options.target.health().exited !== null) return `server ${options.target.health().exited}`;
    return null;
  };

  let livenessRunning: Promise<void> | null = null;
  const liveness = async () => {
    report.liveness.checks += 1;
    const problem = await checkLiveness(options.target);
    if (problem !== null) report.liveness.failures.push(`after ${report.sessions} sessions: ${problem}`);
  };

  const worker = async () => {
    while (report.framesSent < options.frames) {
      const reason = stopReason();
      if (reason !== null) {
        report.stoppedEarly ??= reason;
        return;
      }
      const plan = source.next().value as SessionPlan;
      absorb(await runSession({ wsUrl: options.target.wsUrl, token }, plan));
      if (++sinceLiveness >= options.livenessEvery && livenessRunning === null) {
        sinceLiveness = 0;
        livenessRunning = liveness().finally(() => {
          livenessRunning = null;
        });
      }
      if (options.log !== undefined && performance.now() - lastLog > 10_000) {
        lastLog = performance.now();
        options.log(`fuzz: ${report.framesSent}/${options.frames} frames, ${report.sessions} sessions, ${report.violationCount} violations`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.parallel }, worker));
  await livenessRunning;
  // The last word: after everything, a fresh client must still get in.
  await liveness();
  report.violations = [...seen.values()];
  report.durationMs = Math.round(performance.now() - started);
  return report;
}

/** The expectations of the fuzz scenario, as a list of failures (empty: pass). */
export function fuzzFailures(report: FuzzReport, framesWanted: number): string[] {
  const failures: string[] = [];
  if (report.stoppedEarly !== null && report.framesSent < framesWanted) failures.push(`stopped early: ${report.stoppedEarly}`);
  if (report.violationCount > 0) failures.push(`${report.violationCount} protocol violations`);
  if (report.liveness.failures.length > 0) failures.push(`liveness failed ${report.liveness.failures.length} times`);
  if ((report.probes.timeout ?? 0) > 0) failures.push(`${report.probes.timeout} connections hung`);
  return failures;
}

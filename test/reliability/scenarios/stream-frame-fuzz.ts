import type { ReliabilityScenario } from '../scenario.ts';
import { fuzzFailures, fuzzStream, type FuzzReport } from '../lib/frame-fuzz.ts';
import { healthSummary, startChildTarget, type TargetHealth } from '../lib/targets.ts';

const FULL_FRAMES = 100_000;
const QUICK_FRAMES = 3_000;

/** How the fuzz went, in one paragraph of the report. */
export function describeFuzz(report: FuzzReport, health: TargetHealth): string {
  const seconds = report.durationMs / 1000;
  const closes = Object.entries(report.closes)
    .filter(([kind]) => kind.startsWith('server:'))
    .map(([kind, n]) => `${kind.slice(7)}×${n}`)
    .join(' ');
  const kinds = report.violations.map((violation) => `${violation.text.split(' | ')[0]} (×${violation.seen})`).join('; ');
  const errors = new Map<string, number>();
  for (const line of health.errorLogs) errors.set(line.msg, (errors.get(line.msg) ?? 0) + 1);
  return [
    `${report.framesSent} frames over ${report.sessions} connections in ${seconds.toFixed(0)} s (${Math.round(report.framesSent / seconds)}/s).`,
    `${report.violationCount} protocol violations${kinds === '' ? '' : `: ${kinds}`}.`,
    `Promised join/leave replies answered: ${report.answeredReplies}/${report.promisedReplies}.`,
    `Server closes: ${closes || 'none'}.`,
    `Liveness (fresh handshake + /health): ${report.liveness.checks - report.liveness.failures.length}/${report.liveness.checks}.`,
    `${healthSummary(health)}${errors.size === 0 ? '' : ` (${[...errors].map(([msg, n]) => `"${msg}" ×${n}`).join(', ')})`}.`,
  ].join(' ');
}

export const scenario: ReliabilityScenario = {
  name: 'stream-frame-fuzz',
  category: 'attack',
  what:
    'Property-based fuzzing of /stream (fast-check) against signal run as a child process: random and mutated JSON, wrong types in every field of ' +
    'authenticate/join/leave/heartbeat/encrypted/custom, strings up to and over the 128 KiB frame limit, nesting up to 60,000 levels, binary frames, ' +
    'invalid UTF-8 in text and binary frames, encrypted frames with bad base64, short/long IVs, flipped tag and ciphertext bits, wrong keys, and replays ' +
    `of valid encrypted frames; ${FULL_FRAMES.toLocaleString('en')} frames in a full run (${QUICK_FRAMES.toLocaleString('en')} quick), before and after the handshake, many connections at once.`,
  expected:
    'The process never exits and logs no unhandled rejection or uncaught exception; a fresh client still completes the handshake and /health answers 200; ' +
    'every server frame is one of the six protocol error frames, `connected` after a valid authenticate, or an encrypted joined/left reply; every close is ' +
    '1007, 1008, 1009, 4001, 4003, 4004 or 4006 with the documented reason; every join/leave with an id is answered (protocol §6); no tampered frame is handled.',
  timeLimitMs: { quick: 100_000, full: 720_000 },
  async run({ quick, signal, log }) {
    const target = await startChildTarget({ freshDatabase: true });
    let report: FuzzReport;
    try {
      report = await fuzzStream({
        target,
        frames: quick ? QUICK_FRAMES : FULL_FRAMES,
        parallel: quick ? 6 : 12,
        seed: 20_261_121,
        budgetMs: quick ? 60_000 : 600_000,
        livenessEvery: quick ? 40 : 250,
        signal,
        log,
      });
    } finally {
      await target.stop();
    }
    // Read after stop(): a shutdown that fails or hangs is part of the verdict.
    const health = target.health();
    const failures = fuzzFailures(report, quick ? QUICK_FRAMES : FULL_FRAMES);
    if (health.exited !== null) failures.push(`server ${health.exited}`);
    if (health.crashLines.length > 0) failures.push(`${health.crashLines.length} unhandled-error lines on stderr`);
    return {
      pass: failures.length === 0,
      measured: describeFuzz(report, health),
      details: {
        failures,
        seed: report.seed,
        violations: report.violations,
        sentByKind: report.sentByKind,
        replies: report.replies,
        closes: report.closes,
        probes: report.probes,
        replays: { sent: report.replaysSent, onConnectionsOpenToTheEnd: report.replaysChecked, handledAgain: report.replaysHandled },
        liveness: report.liveness,
        stoppedEarly: report.stoppedEarly,
        crashLines: health.crashLines.slice(0, 20),
        errorLogs: health.errorLogs.slice(0, 10),
      },
      notes: [
        `Replays: ${report.replaysSent} valid encrypted frames were sent a second time on their connection; of the ${report.replaysChecked} on connections that stayed open to the end, ${report.replaysHandled} were decrypted and handled again (a second joined/left reply). The server processes a replay like a new frame: replay protection is not part of the protocol (docs/protocol.md §5.3 has no sequence number); nothing crashed.`,
      ],
    };
  },
};

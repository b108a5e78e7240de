import type { ReliabilityScenario } from '../scenario.ts';
import { describeFinding, judgeAudit, runNpmAudit } from '../lib/dependency-audit.ts';

export const scenario: ReliabilityScenario = {
  name: 'dependency-audit',
  category: 'attack',
  what: '`npm audit --omit=dev --json` over the production dependency tree (package-lock.json), against the registry configured for npm.',
  expected: 'The audit endpoint answers and reports no high or critical advisory (lower ones are listed in the notes).',
  async run() {
    const audit = await runNpmAudit();
    if (audit.timedOut) {
      return { pass: false, measured: 'npm audit did not finish within 120 s: no verdict.', notes: ['Dependency audit: no result (npm audit timed out).'] };
    }
    const verdict = judgeAudit(audit.stdout);
    const findings = verdict.findings.map(describeFinding);
    if (verdict.status === 'unreachable' || verdict.status === 'unreadable') {
      return {
        pass: false,
        measured: `No verdict: the audit endpoint could not be used (${verdict.problem}).`,
        details: { status: verdict.status, problem: verdict.problem, exitCode: audit.code },
        notes: [`Dependency audit: not available on this machine (${verdict.problem}); findings unknown, not "none".`],
      };
    }
    const counts = Object.entries(verdict.counts).map(([severity, n]) => `${n} ${severity}`).join(', ');
    return {
      pass: verdict.pass,
      measured: verdict.status === 'clean' ? 'No advisory for any production dependency.' : `Advisories: ${counts}.`,
      details: { status: verdict.status, counts: verdict.counts, findings: verdict.findings },
      notes: [findings.length === 0 ? 'Dependency audit findings: none.' : `Dependency audit findings: ${findings.join(' | ')}`],
    };
  },
};

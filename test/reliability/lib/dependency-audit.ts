import { spawn } from 'node:child_process';
import { ROOT } from '../../fixtures/server-process.ts';

/**
 * `npm audit --omit=dev --json` on the production dependency tree, read
 * into a verdict. The registry's audit endpoint is a network dependency: when
 * it cannot be reached that is the result, never a silent pass.
 */
export type Severity = 'info' | 'low' | 'moderate' | 'high' | 'critical';

export interface AuditFinding {
  name: string;
  severity: Severity;
  /** Advisory titles (or the packages the finding comes through). */
  via: string[];
  range: string;
  fix: string;
}

export interface AuditVerdict {
  status: 'clean' | 'findings' | 'unreachable' | 'unreadable';
  pass: boolean;
  counts: Partial<Record<Severity, number>>;
  findings: AuditFinding[];
  /** Why the audit could not be read, for unreachable/unreadable. */
  problem?: string;
}

const BLOCKING: ReadonlySet<Severity> = new Set(['high', 'critical']);

/** Reads npm's JSON (audit report v2, or its `{error}` object). */
export function judgeAudit(stdout: string): AuditVerdict {
  let report: Record<string, unknown>;
  try {
    report = JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    return { status: 'unreadable', pass: false, counts: {}, findings: [], problem: `npm audit printed no JSON: ${stdout.slice(0, 200)}` };
  }
  const error = report.error as { code?: string; summary?: string } | undefined;
  if (error !== undefined) {
    // npm puts the HTTP failure in `message` and a network failure in `error.code`/`error.summary`.
    const parts = [error.code, typeof report.message === 'string' ? report.message : undefined, (error.summary ?? '').split('\n')[0]];
    const problem = parts.filter((part) => part !== undefined && part !== '').join(': ') || 'the audit endpoint answered with an error';
    return { status: 'unreachable', pass: false, counts: {}, findings: [], problem };
  }
  const vulnerabilities = report.vulnerabilities as Record<string, Record<string, unknown>> | undefined;
  if (vulnerabilities === undefined || typeof vulnerabilities !== 'object') {
    return { status: 'unreadable', pass: false, counts: {}, findings: [], problem: 'no "vulnerabilities" object in the report' };
  }
  const findings: AuditFinding[] = Object.values(vulnerabilities).map((entry) => ({
    name: String(entry.name),
    severity: String(entry.severity) as Severity,
    via: (Array.isArray(entry.via) ? entry.via : []).map((via: unknown) =>
      typeof via === 'string' ? `via ${via}` : `${(via as { title?: string }).title ?? 'advisory'}${(via as { url?: string }).url === undefined ? '' : ` (${(via as { url?: string }).url})`}`,
    ),
    range: String(entry.range ?? ''),
    fix: fixText(entry.fixAvailable),
  }));
  const counts: Partial<Record<Severity, number>> = {};
  for (const finding of findings) counts[finding.severity] = (counts[finding.severity] ?? 0) + 1;
  const blocking = findings.some((finding) => BLOCKING.has(finding.severity));
  return { status: findings.length === 0 ? 'clean' : 'findings', pass: !blocking, counts, findings };
}

function fixText(fix: unknown): string {
  if (fix === true) return 'fix available (npm audit fix)';
  if (fix === false || fix === undefined) return 'no fix available';
  const detail = fix as { name?: string; version?: string; isSemVerMajor?: boolean };
  return `fix: ${detail.name}@${detail.version}${detail.isSemVerMajor === true ? ' (semver-major)' : ''}`;
}

/** Runs the audit in the project root, bounded in time. */
export function runNpmAudit(timeoutMs = 120_000): Promise<{ stdout: string; code: number | null; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['audit', '--omit=dev', '--json'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.resume();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(chunks).toString('utf8'), code, timedOut });
    });
    child.on('error', () => {
      clearTimeout(timer);
      resolve({ stdout: '', code: null, timedOut });
    });
  });
}

export function describeFinding(finding: AuditFinding): string {
  return `${finding.name} (${finding.severity}, ${finding.range || 'any version'}): ${finding.via.join('; ')}; ${finding.fix}`;
}

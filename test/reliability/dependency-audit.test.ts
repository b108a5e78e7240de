import { describe, expect, it } from 'vitest';
import { describeFinding, judgeAudit } from './lib/dependency-audit.ts';

/**
 * How the dependency-audit scenario reads npm's answer. The audit itself
 * needs the registry and runs in `npm run reliability`, not here.
 */
const report = (vulnerabilities: Record<string, unknown>) => JSON.stringify({ auditReportVersion: 2, vulnerabilities, metadata: {} });
const advisory = (name: string, severity: string) => ({
  name,
  severity,
  via: [{ title: `${name} does a bad thing`, url: `https://github.com/advisories/${name}`, severity }],
  range: '<1.2.3',
  fixAvailable: { name, version: '1.2.3', isSemVerMajor: false },
});

describe('reading npm audit', () => {
  it('passes a clean tree', () => {
    expect(judgeAudit(report({}))).toEqual({ status: 'clean', pass: true, counts: {}, findings: [] });
  });

  it('passes low and moderate findings but lists them', () => {
    const verdict = judgeAudit(report({ a: advisory('a', 'moderate'), b: { ...advisory('b', 'low'), via: ['a'], fixAvailable: false } }));
    expect(verdict.pass).toBe(true);
    expect(verdict.counts).toEqual({ moderate: 1, low: 1 });
    expect(verdict.findings.map(describeFinding)).toEqual([
      'a (moderate, <1.2.3): a does a bad thing (https://github.com/advisories/a); fix: a@1.2.3',
      'b (low, <1.2.3): via a; no fix available',
    ]);
  });

  it.each(['high', 'critical'])('fails on a %s finding', (severity) => {
    const verdict = judgeAudit(report({ a: advisory('a', severity) }));
    expect(verdict).toMatchObject({ status: 'findings', pass: false, counts: { [severity]: 1 } });
  });

  it('reports an unreachable audit endpoint as no verdict, never as a pass', () => {
    const refused = JSON.stringify({ message: '405 Method Not Allowed - POST https://registry.example/-/npm/v1/security/advisories/bulk', statusCode: 405, error: { summary: '', detail: '' } });
    expect(judgeAudit(refused)).toMatchObject({ status: 'unreachable', pass: false, problem: '405 Method Not Allowed - POST https://registry.example/-/npm/v1/security/advisories/bulk' });
    const offline = JSON.stringify({ error: { code: 'ENOTFOUND', summary: 'request to https://registry.example failed\nmore', detail: '' } });
    expect(judgeAudit(offline)).toMatchObject({ status: 'unreachable', pass: false, problem: 'ENOTFOUND: request to https://registry.example failed' });
    expect(judgeAudit('npm ERR! something')).toMatchObject({ status: 'unreadable', pass: false });
  });
});

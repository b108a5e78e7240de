/**
 * A list of named observations, each compared with what the protocol or the
 * contract promises. The scenario turns it into one report row and the
 * vitest suites assert that its failures are empty, so both read the same
 * evidence.
 */
export interface CheckOutcome {
  name: string;
  pass: boolean;
  expected: string;
  observed: string;
}

export class Checks {
  readonly outcomes: CheckOutcome[] = [];

  record(name: string, pass: boolean, expected: string, observed: string): boolean {
    this.outcomes.push({ name, pass, expected, observed });
    return pass;
  }

  /** Deep equality through canonical JSON (key order ignored). */
  equal(name: string, observed: unknown, expected: unknown): boolean {
    const want = canonical(expected);
    const got = canonical(observed);
    return this.record(name, want === got, want, got);
  }

  get failures(): CheckOutcome[] {
    return this.outcomes.filter((outcome) => !outcome.pass);
  }

  get passed(): boolean {
    return this.failures.length === 0;
  }

  /** "41/43 checks held; failed: a (expected x, observed y); ..." */
  summary(limit = 6): string {
    const failed = this.failures;
    const head = `${this.outcomes.length - failed.length}/${this.outcomes.length} checks held`;
    if (failed.length === 0) return head;
    const listed = failed
      .slice(0, limit)
      .map((outcome) => `${outcome.name} (expected ${clip(outcome.expected)}, observed ${clip(outcome.observed)})`);
    const more = failed.length > limit ? `; and ${failed.length - limit} more` : '';
    return `${head}; failed: ${listed.join('; ')}${more}`;
  }
}

export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return inner;
    return Object.fromEntries(Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)));
  }) ?? 'undefined';
}

export function clip(text: string, max = 160): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}

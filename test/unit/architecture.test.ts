import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Imports point inward only: domain ← application ← adapters ← bootstrap.
 * No exemption list: a new arrow the wrong way fails here.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const SRC = join(ROOT, 'src');
const LAYERS = ['domain', 'application', 'adapters', 'bootstrap'] as const;
type Layer = (typeof LAYERS)[number];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

const MIGRATIONS = join(ROOT, 'migrations');

function layerOf(path: string): Layer | null {
  // Migrations are the database adapter's schema history: they sit at the adapter layer.
  if (!relative(MIGRATIONS, path).startsWith('..')) return 'adapters';
  const top = relative(SRC, path).split(/[\\/]/)[0];
  return (LAYERS as readonly string[]).includes(top ?? '') ? (top as Layer) : null;
}

const SPECIFIER = /(?:import|export)\s[^'"`]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;

export function importsOf(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(SPECIFIER)) found.push((match[1] ?? match[2] ?? match[3]) as string);
  return found;
}

/**
 * Packages the domain may use: node's pure modules, and the two that turn
 * notification markdown into safe HTML. Rendering and sanitising are pure
 * string functions, and the sanitiser is the security boundary for every
 * notification body, so it belongs with the rule it enforces.
 */
const DOMAIN_ALLOWED_PACKAGES = new Set(['node:crypto', 'marked', 'sanitize-html']);

export function violations(files: Array<{ path: string; text: string }>): string[] {
  const problems: string[] = [];
  for (const { path, text } of files) {
    const from = layerOf(path);
    if (from === null) {
      problems.push(`${relative(ROOT, path)} is outside the layers`);
      continue;
    }
    for (const specifier of importsOf(text)) {
      if (specifier.startsWith('.')) {
        const target = resolve(dirname(path), specifier);
        const to = layerOf(target);
        if (to === null) {
          problems.push(`${relative(ROOT, path)} imports ${specifier}, outside the layers`);
        } else if (LAYERS.indexOf(to) > LAYERS.indexOf(from)) {
          problems.push(`${relative(ROOT, path)} (${from}) imports ${specifier} (${to})`);
        }
      } else if (from === 'domain' && !DOMAIN_ALLOWED_PACKAGES.has(specifier)) {
        problems.push(`${relative(ROOT, path)} (domain) imports the package ${specifier}`);
      } else if (from === 'application' && !specifier.startsWith('node:')) {
        problems.push(`${relative(ROOT, path)} (application) imports the package ${specifier}`);
      }
    }
  }
  return problems;
}

describe('architecture', () => {
  it('has every import pointing inward', () => {
    const files = [...sourceFiles(SRC), ...sourceFiles(MIGRATIONS)].map((path) => ({ path, text: readFileSync(path, 'utf8') }));
    expect(files.length).toBeGreaterThan(10);
    expect(violations(files)).toEqual([]);
  });

  it('reads the environment only in bootstrap', () => {
    const offenders = sourceFiles(SRC)
      .filter((path) => layerOf(path) !== 'bootstrap')
      .filter((path) => /process\.env/.test(readFileSync(path, 'utf8')))
      .map((path) => relative(ROOT, path));
    expect(offenders).toEqual([]);
  });

  it('catches an outward arrow and a framework in the domain (the check itself can fail)', () => {
    const problems = violations([
      { path: join(SRC, 'domain/x.ts'), text: "import { a } from '../application/y.ts';\nimport { Elysia } from 'elysia';" },
      { path: join(SRC, 'application/z.ts'), text: "export { b } from '../adapters/w.ts';" },
      { path: join(SRC, 'adapters/ok.ts'), text: "import type { c } from '../domain/c.ts';\nconst m = await import('../bootstrap/m.ts');" },
    ]);
    expect(problems).toEqual([
      'src/domain/x.ts (domain) imports ../application/y.ts (application)',
      'src/domain/x.ts (domain) imports the package elysia',
      'src/application/z.ts (application) imports ../adapters/w.ts (adapters)',
      'src/adapters/ok.ts (adapters) imports ../bootstrap/m.ts (bootstrap)',
    ]);
  });
});

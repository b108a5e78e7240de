import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { DEV_ISSUER, DevIssuer } from '../../src/adapters/jwks/dev-issuer.ts';
import { JwksTokenVerifier } from '../../src/adapters/jwks/jwks-token-verifier.ts';

const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const TOKEN_SCRIPT = join(REPO_ROOT, 'src/bootstrap/token.ts');
// Run tsx through node directly: `npx` in a temp dir without node_modules could try to download it.
const TSX_CLI = createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx/cli');

const tempDirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'signal-dev-issuer-'));
  tempDirs.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

function verifierFor(issuer: DevIssuer): JwksTokenVerifier {
  return new JwksTokenVerifier({ localJwks: issuer.jwks(), algorithms: ['ES256'], issuer: DEV_ISSUER });
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runTokenCommand(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [TSX_CLI, TOKEN_SCRIPT, ...args], { cwd, env, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolvePromise({ code, stdout, stderr });
    });
  });
}

function envWithout(...names: string[]): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of names) delete env[name];
  return env;
}

describe('DevIssuer', () => {
  it('signs tokens that a second instance loaded from the same dir verifies', async () => {
    const dir = join(await tempDir(), 'nested', '.data');
    const first = await DevIssuer.loadOrCreate(dir);
    const second = await DevIssuer.loadOrCreate(dir);
    expect(second.jwks()).toEqual(first.jwks());

    const token = await first.sign({ userId: 'u-1', roles: ['ADMIN', 'USER'], email: 'u1@example.test', name: 'U' });
    const identity = await verifierFor(second).verify(token);
    expect(identity).toMatchObject({
      userId: 'u-1',
      roles: [
        { id: 'ADMIN', identifier: 'ADMIN', priority: 0 },
        { id: 'USER', identifier: 'USER', priority: 0 },
      ],
      email: 'u1@example.test',
      name: 'U',
    });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ sub: 'u-1', userId: 'u-1', iss: DEV_ISSUER });
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(3600);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', kid: first.kid });
  });

  it('publishes only the public half of its key', async () => {
    const issuer = await DevIssuer.loadOrCreate(await tempDir());
    const [key] = issuer.jwks().keys;
    expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: issuer.kid });
    expect(key).not.toHaveProperty('d');
  });

  it('keeps the key file private to its owner', async () => {
    const dir = await tempDir();
    await DevIssuer.loadOrCreate(dir);
    const file = join(dir, 'dev-issuer.json');
    const stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    expect(stored).toHaveProperty('d');
    expect(typeof stored['kid']).toBe('string');
    if (process.platform !== 'win32') expect((await stat(file)).mode & 0o077).toBe(0);
  });

  it('agrees on one key when several instances start from an empty dir at once', async () => {
    const dir = await tempDir();
    const issuers = await Promise.all([1, 2, 3, 4].map(() => DevIssuer.loadOrCreate(dir)));
    expect(new Set(issuers.map((issuer) => issuer.kid)).size).toBe(1);
  });

  it('honours expiresInSec and refuses nonsense input', async () => {
    const issuer = await DevIssuer.loadOrCreate(await tempDir());
    const claims = decodeJwt(await issuer.sign({ userId: 'u', expiresInSec: 60 }));
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(60);
    await expect(issuer.sign({ userId: 'u', expiresInSec: 0 })).rejects.toThrow();
    await expect(issuer.sign({ userId: ' ' })).rejects.toThrow();
  });

  it('refuses a corrupt key file instead of replacing it', async () => {
    const dir = await tempDir();
    const file = join(dir, 'dev-issuer.json');
    await writeFile(file, '{"kty":"EC"}');
    await expect(DevIssuer.loadOrCreate(dir)).rejects.toThrow(/dev-issuer\.json/);
    expect(await readFile(file, 'utf8')).toBe('{"kty":"EC"}');
  });

  it('is rejected by a verifier that trusts a different dev key', async () => {
    const mine = await DevIssuer.loadOrCreate(await tempDir());
    const theirs = await DevIssuer.loadOrCreate(await tempDir());
    const token = await mine.sign({ userId: 'u-1' });
    await expect(verifierFor(theirs).verify(token)).rejects.toMatchObject({ code: 'ERR_TOKEN_INVALID' });
  });
});

describe('npm run token', () => {
  it('prints a token from the dev key kept in .data/ under the working directory', async () => {
    const cwd = await tempDir();
    const args = ['--user', 'u1', '--role', 'ADMIN', '--ttl', '120'];
    const result = await runTokenCommand(args, cwd, envWithout('APP_ENV_JWKS_URL'));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const token = lines[0] ?? '';

    // The server, loading the same dir, accepts what the command printed.
    const server = await DevIssuer.loadOrCreate(join(cwd, '.data'));
    const identity = await verifierFor(server).verify(token);
    expect(identity.userId).toBe('u1');
    expect(identity.roles).toEqual([{ id: 'ADMIN', identifier: 'ADMIN', priority: 0 }]);
    const claims = decodeJwt(token);
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(120);
  });

  it('refuses when APP_ENV_JWKS_URL is set', async () => {
    const cwd = await tempDir();
    const env = { ...process.env, APP_ENV_JWKS_URL: 'https://id.example.test/.well-known/jwks.json' };
    const result = await runTokenCommand(['--user', 'u1'], cwd, env);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('APP_ENV_JWKS_URL');
  });

  it('refuses without --user', async () => {
    const cwd = await tempDir();
    const result = await runTokenCommand(['--role', 'ADMIN'], cwd, envWithout('APP_ENV_JWKS_URL'));
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('--user');
  });
});

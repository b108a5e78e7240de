import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importJWK, SignJWT, type JWK } from 'jose';
import type { Logger } from '../../../src/application/ports/logger.port.ts';
import type { StartOverrides } from '../../../src/bootstrap/start.ts';
import { createFreshDatabase, type FreshDatabase } from '../../fixtures/fresh-database.ts';
import { spawnServer } from '../../fixtures/server-process.ts';
import { startTestServer, type TestServer } from '../../fixtures/test-server.ts';
import { onCleanup } from './cleanup.ts';

/**
 * A running signal under attack, either in this process (fast, for the
 * vitest subset) or as a child process (the runner: a crash or an
 * unhandled rejection then shows up as an exit and on stderr, exactly as in
 * production).
 */
export interface SignalTarget {
  readonly kind: 'in-process' | 'child-process';
  /** ws://host:port/stream */
  readonly wsUrl: string;
  /** http://host:port/v1/api/signal */
  readonly http: string;
  /** The fresh PostgreSQL database it uses, when it was given one. */
  readonly databaseUrl?: string;
  /** A token from the embedded dev issuer (not available with APP_ENV_JWKS_URL). */
  token(userId: string, roles?: string[]): Promise<string>;
  /** What went wrong inside the server so far. */
  health(): TargetHealth;
  stop(): Promise<void>;
}

export interface TargetHealth {
  /** Why the process ended, if it did before stop(). */
  exited: string | null;
  /** Unhandled rejections, uncaught exceptions, stack frames: anything that means a crash path ran. */
  crashLines: string[];
  /** Error-level log lines (handled, but internal failures): message and fields. */
  errorLogs: Array<{ msg: string; fields: Record<string, unknown> }>;
}

export interface TargetOptions {
  env?: Record<string, string>;
  /** A brand-new database on the shared PostgreSQL server (migrated by the service itself). */
  freshDatabase?: boolean;
  /** In-process only. */
  overrides?: StartOverrides;
}

const CRASH_PATTERN = /unhandled|uncaught|triggerUncaughtException|^\s+at\s|\berror\b|fatal|out of memory|segmentation/i;

/** A logger for in-process servers that keeps error-level lines as evidence and drops the rest. */
function capturingLogger(errors: TargetHealth['errorLogs']): Logger {
  const logger: Logger = {
    debug() {},
    info() {},
    warn() {},
    error(fields, message) {
      errors.push({ msg: message, fields });
    },
    child() {
      return logger;
    },
  };
  return logger;
}

async function maybeFreshDatabase(wanted: boolean | undefined, label: string): Promise<FreshDatabase | undefined> {
  if (wanted !== true) return undefined;
  const fresh = await createFreshDatabase(label);
  onCleanup(() => fresh.drop());
  return fresh;
}

export async function startInProcessTarget(options: TargetOptions = {}): Promise<SignalTarget> {
  const fresh = await maybeFreshDatabase(options.freshDatabase, 'relin');
  const errorLogs: TargetHealth['errorLogs'] = [];
  const crashLines: string[] = [];
  // In one process a stray rejection cannot be pinned on the server for sure; counted while it runs.
  const onRejection = (reason: unknown) => crashLines.push(`unhandledRejection: ${describe(reason)}`);
  const onException = (error: unknown) => crashLines.push(`uncaughtException: ${describe(error)}`);
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  const env = { ...(fresh === undefined ? {} : { APP_ENV_DB_URL: fresh.url }), ...options.env };
  let server: TestServer;
  try {
    server = await startTestServer(env, {
      logger: capturingLogger(errorLogs),
      ...(fresh === undefined ? {} : { persistence: 'database' as const }),
      ...options.overrides,
    });
  } catch (error) {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
    throw error;
  }
  const stop = onCleanup(async () => {
    try {
      await server.running.stop();
    } finally {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
      rmSync(server.dataDir, { recursive: true, force: true });
    }
  });
  return {
    kind: 'in-process',
    wsUrl: server.url,
    http: server.http,
    databaseUrl: fresh?.url,
    token: (userId, roles) => server.token(userId, roles),
    health: () => ({ exited: null, crashLines: [...crashLines], errorLogs: [...errorLogs] }),
    stop,
  };
}

export async function startChildTarget(options: TargetOptions = {}): Promise<SignalTarget> {
  const fresh = await maybeFreshDatabase(options.freshDatabase, 'relchild');
  const dataDir = mkdtempSync(join(tmpdir(), 'signal-reliability-'));
  const env: Record<string, string> = {
    APP_ENV_DATA_DIR: dataDir,
    ...(fresh === undefined ? {} : { APP_ENV_DB_URL: fresh.url }),
    ...options.env,
  };
  const child = await spawnServer(env, 60_000);
  let stopping = false;
  let exited: string | null = null;
  void child.exited.then(({ code, signal }) => {
    if (!stopping) exited = `exited with code ${code} signal ${signal}`;
  });
  const errorLogs: TargetHealth['errorLogs'] = [];
  const loggedCrashes: string[] = [];
  // The log array would grow by a few lines per connection; keep only what is evidence.
  const sweep = (): void => {
    for (const entry of child.logs.splice(0)) {
      const text = typeof entry.msg === 'string' ? entry.msg : typeof entry.raw === 'string' ? entry.raw : '';
      if (/unhandled|uncaught/i.test(text)) loggedCrashes.push(`log: ${text.slice(0, 200)}`);
      if (entry.level === 'error' || entry.level === 'fatal') {
        const { msg, ...fields } = entry;
        errorLogs.push({ msg: String(msg), fields });
      }
    }
  };
  const sweeper = setInterval(sweep, 500);
  sweeper.unref();
  const port = child.port;
  let key: { privateKey: CryptoKey | Uint8Array; kid: string } | undefined;

  const stop = onCleanup(async () => {
    clearInterval(sweeper);
    stopping = true;
    const outcome = await Promise.race([
      child.kill('SIGTERM'),
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 12_000).unref()),
    ]);
    if (outcome === null) {
      exited ??= 'did not stop within 12 s of SIGTERM';
      await child.kill('SIGKILL');
    } else if (outcome.code !== 0 && exited === null) {
      exited = `shutdown ended with code ${outcome.code} signal ${outcome.signal}`;
    }
    sweep();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return {
    kind: 'child-process',
    wsUrl: `ws://127.0.0.1:${port}/stream`,
    http: `http://127.0.0.1:${port}${env.APP_ENV_BASE_PATH ?? '/v1/api/signal'}`,
    databaseUrl: fresh?.url,
    token: async (userId, roles = []) => {
      key ??= await loadDevIssuerKey(dataDir);
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ userId, roles: roles.map((identifier) => ({ id: identifier, identifier, priority: 0 })) })
        .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
        .setSubject(userId)
        .setIssuer('signal-dev')
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .sign(key.privateKey);
    },
    health: () => {
      sweep();
      const crashLines = [...loggedCrashes, ...child.stderr.filter((line) => CRASH_PATTERN.test(line))];
      return { exited, crashLines, errorLogs: [...errorLogs] };
    },
    stop,
  };
}

/** The dev issuer's private key, as the child wrote it to its data dir. */
async function loadDevIssuerKey(dataDir: string): Promise<{ privateKey: CryptoKey | Uint8Array; kid: string }> {
  const jwk = JSON.parse(await readFile(join(dataDir, 'dev-issuer.json'), 'utf8')) as JWK;
  const { kty, crv, x, y, d } = jwk;
  return { privateKey: await importJWK({ kty, crv, x, y, d }, 'ES256'), kid: String(jwk.kid) };
}

function describe(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  return String(value);
}

/** One line summarising a target's health for a report. */
export function healthSummary(health: TargetHealth): string {
  const parts = [
    health.exited === null ? 'server stayed up' : `server ${health.exited}`,
    `${health.crashLines.length} unhandled-error lines`,
    `${health.errorLogs.length} error-level log lines`,
  ];
  return parts.join(', ');
}

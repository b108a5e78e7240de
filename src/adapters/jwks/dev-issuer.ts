import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import type { CryptoKey, JSONWebKeySet, JWK } from 'jose';

/** The `iss` of every dev token; the dev-mode verifier checks for it. */
export const DEV_ISSUER = 'signal-dev';

export const DEV_ISSUER_ALGORITHM = 'ES256';

/** Kept under the data dir so that the server and `npm run token` share one key. */
export const DEV_ISSUER_KEY_FILE = 'dev-issuer.json';

export interface DevTokenInput {
  userId: string;
  /** Role identifiers, e.g. `ADMIN`. */
  roles?: string[];
  email?: string;
  name?: string;
  /** Default 3600. */
  expiresInSec?: number;
}

/**
 * The embedded issuer for zero-configuration mode: one ES256 key pair, its
 * public half served as a JWKS, its private half signing tokens for local
 * development. Never used when a real JWKS is configured.
 */
export class DevIssuer {
  private readonly privateKey: CryptoKey;
  private readonly publicJwk: JWK;

  private constructor(privateKey: CryptoKey, publicJwk: JWK) {
    this.privateKey = privateKey;
    this.publicJwk = publicJwk;
  }

  /**
   * Reads the key from `<dataDir>/dev-issuer.json`, creating it when absent.
   * A corrupt file is an error rather than silently replaced: replacing it
   * would invalidate every token already handed out.
   */
  static async loadOrCreate(dataDir: string): Promise<DevIssuer> {
    const file = join(dataDir, DEV_ISSUER_KEY_FILE);
    let privateJwk = await readKeyFile(file);
    if (privateJwk === undefined) {
      await mkdir(dataDir, { recursive: true });
      privateJwk = await createKeyFile(file);
    }
    return DevIssuer.fromPrivateJwk(privateJwk, file);
  }

  private static async fromPrivateJwk(jwk: JWK, file: string): Promise<DevIssuer> {
    const { kty, crv, x, y, d, kid } = jwk;
    if (kty !== 'EC' || crv !== 'P-256' || !x || !y || !d || !kid) {
      throw new Error(`${file} does not hold an ES256 private JWK with a kid; delete it to create a new key`);
    }
    const privateKey = await importJWK({ kty, crv, x, y, d }, DEV_ISSUER_ALGORITHM);
    if (privateKey instanceof Uint8Array) throw new Error(`${file} holds a symmetric key`);
    return new DevIssuer(privateKey, { kty, crv, x, y, kid, alg: DEV_ISSUER_ALGORITHM, use: 'sig' });
  }

  /** The public key set, to serve at the dev JWKS route and to verify with. */
  jwks(): JSONWebKeySet {
    return { keys: [{ ...this.publicJwk }] };
  }

  get kid(): string {
    return this.publicJwk.kid as string;
  }

  async sign(input: DevTokenInput): Promise<string> {
    if (input.userId.trim() === '') throw new Error('userId must not be empty');
    const expiresInSec = input.expiresInSec ?? 3600;
    if (!Number.isSafeInteger(expiresInSec) || expiresInSec <= 0) {
      throw new Error('expiresInSec must be a positive integer');
    }
    // Dev roles have no row id of their own; the identifier doubles as the id
    // so that the claim has the same shape as the identity service's.
    const roles = (input.roles ?? []).map((identifier) => ({ id: identifier, identifier, priority: 0 }));
    const claims: Record<string, unknown> = { userId: input.userId, roles };
    if (input.email !== undefined) claims['email'] = input.email;
    if (input.name !== undefined) claims['name'] = input.name;
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: DEV_ISSUER_ALGORITHM, kid: this.kid, typ: 'JWT' })
      .setSubject(input.userId)
      .setIssuer(DEV_ISSUER)
      .setIssuedAt(now)
      .setExpirationTime(now + expiresInSec)
      .sign(this.privateKey);
  }
}

async function readKeyFile(file: string): Promise<JWK | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as JWK;
  } catch {
    // reported below, without echoing the file's (secret) content
  }
  throw new Error(`${file} is not valid JSON; delete it to create a new key`);
}

/**
 * The server and a `npm run token` process may both start from an empty data
 * dir at once. The key is written in full to a private temp file and then
 * hard-linked into place, which fails if the name exists: whoever loses the
 * race reads the winner's complete file instead of a half-written one.
 */
async function createKeyFile(file: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(DEV_ISSUER_ALGORITHM, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const { kty, crv, x, y, d } = jwk;
  const kid = await calculateJwkThumbprint({ kty, crv, x, y } as JWK);
  const stored: JWK = { kty, crv, x, y, d, kid, alg: DEV_ISSUER_ALGORITHM, use: 'sig' };

  const text = `${JSON.stringify(stored, null, 2)}\n`;
  const temp = `${file}.${randomUUID()}.tmp`;
  await writeFile(temp, text, { mode: 0o600, flag: 'wx' });
  try {
    await placeExclusively(temp, file, text);
    return stored;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const winner = await readKeyFile(file);
    if (winner === undefined) throw err;
    return winner;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** Some mounted volumes refuse hard links; an exclusive create still keeps the first writer's key. */
async function placeExclusively(temp: string, file: string, text: string): Promise<void> {
  try {
    await link(temp, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    await writeFile(file, text, { mode: 0o600, flag: 'wx' });
  }
}

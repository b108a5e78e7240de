import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify } from 'jose';
import type { CryptoKey, JSONWebKeySet, JWTPayload, JWTVerifyGetKey, JWTVerifyOptions } from 'jose';
import type { TokenVerifier } from '../../application/ports/token-verifier.port.ts';
import { identityFromClaims } from '../../domain/claims.ts';
import type { Identity } from '../../domain/identity.ts';
import {
  KeySetUnavailableError,
  SignalError,
  TokenAlgorithmError,
  TokenExpiredError,
  TokenInvalidError,
} from '../../domain/errors.ts';

/**
 * Asymmetric JWS algorithms only. With a public key set, accepting an HMAC
 * algorithm would let anyone who reads the JWKS forge tokens by using the
 * public key bytes as the shared secret, and `none` needs no key at all.
 */
export const SUPPORTED_ALGORITHMS: readonly string[] = Object.freeze([
  'ES256',
  'ES384',
  'ES512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'EdDSA',
]);

/**
 * Parses a comma-separated allow-list such as `ES256,RS256,EdDSA`. Throws a
 * plain Error naming the first bad entry; the caller knows which variable the
 * text came from and turns it into a config error.
 */
export function parseAlgorithmList(text: string): string[] {
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) throw new Error('the algorithm list is empty');
  for (const entry of entries) assertSupportedAlgorithm(entry);
  return [...new Set(entries)];
}

function assertSupportedAlgorithm(alg: string): void {
  if (SUPPORTED_ALGORITHMS.includes(alg)) return;
  if (alg.toLowerCase() === 'none') throw new Error(`algorithm "${alg}" is never accepted`);
  if (/^hs\d+$/i.test(alg)) throw new Error(`algorithm "${alg}" is HMAC, which is never accepted with a key set`);
  throw new Error(`unsupported algorithm "${alg}" (supported: ${SUPPORTED_ALGORITHMS.join(', ')})`);
}

export interface JwksTokenVerifierOptions {
  /** Remote key set of the identity service. Exactly one of `jwksUrl` and `localJwks`. */
  jwksUrl?: string;
  /** In-memory key set, used for the embedded dev issuer. */
  localJwks?: JSONWebKeySet;
  algorithms: string[];
  issuer?: string;
  audience?: string;
  /** Allowed clock skew for `exp`/`nbf`, in seconds. Default 30. */
  clockToleranceSec?: number;
  /** Bound on one fetch of the remote key set. Default 5000. */
  timeoutMs?: number;
  /** After a key set refresh, how long an unknown `kid` does not trigger another one. Default 30000. */
  cooldownMs?: number;
  /** How long a fetched key set is used before it is fetched again. Default 600000. */
  cacheMaxAgeMs?: number;
  /** Longer tokens are refused before any decoding. Default 8192 characters. */
  maxTokenLength?: number;
}

/** The part of jose's local and remote key sets that verification uses. */
type KeySet = (header: Parameters<JWTVerifyGetKey>[0], token: Parameters<JWTVerifyGetKey>[1]) => Promise<CryptoKey>;

/**
 * Beyond jose's own fetch timeout, a remote key resolution gets this much
 * slack before the outer deadline gives up on it; jose's abort normally wins
 * and reports the timeout itself.
 */
const DEADLINE_SLACK_MS = 250;

export class JwksTokenVerifier implements TokenVerifier {
  private readonly keySet: KeySet;
  private readonly remote: boolean;
  private readonly verifyOptions: JWTVerifyOptions;
  private readonly timeoutMs: number;
  private readonly maxTokenLength: number;

  constructor(options: JwksTokenVerifierOptions) {
    const hasUrl = options.jwksUrl !== undefined;
    const hasLocal = options.localJwks !== undefined;
    if (hasUrl === hasLocal) throw new Error('exactly one of jwksUrl and localJwks must be given');
    if (options.algorithms.length === 0) throw new Error('the algorithm allow-list is empty');
    for (const alg of options.algorithms) assertSupportedAlgorithm(alg);

    this.timeoutMs = positiveInteger(options.timeoutMs ?? 5000, 'timeoutMs');
    this.maxTokenLength = positiveInteger(options.maxTokenLength ?? 8192, 'maxTokenLength');
    const clockTolerance = options.clockToleranceSec ?? 30;
    if (!Number.isFinite(clockTolerance) || clockTolerance < 0) throw new Error('clockToleranceSec must be >= 0');

    if (options.jwksUrl !== undefined) {
      const url = new URL(options.jwksUrl);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('jwksUrl must be an http(s) URL');
      this.keySet = createRemoteJWKSet(url, {
        timeoutDuration: this.timeoutMs,
        cooldownDuration: nonNegative(options.cooldownMs ?? 30_000, 'cooldownMs'),
        cacheMaxAge: nonNegative(options.cacheMaxAgeMs ?? 600_000, 'cacheMaxAgeMs'),
      });
      this.remote = true;
    } else {
      this.keySet = createLocalJWKSet(options.localJwks as JSONWebKeySet);
      this.remote = false;
    }

    this.verifyOptions = { algorithms: [...options.algorithms], clockTolerance };
    if (options.issuer !== undefined) this.verifyOptions.issuer = options.issuer;
    if (options.audience !== undefined) this.verifyOptions.audience = options.audience;
  }

  async verify(token: string): Promise<Identity> {
    if (typeof token !== 'string' || token === '') throw new TokenInvalidError('token missing');
    if (token.length > this.maxTokenLength) throw new TokenInvalidError('token too long');

    let payload: JWTPayload;
    try {
      payload = await this.verifySignatureAndClaims(token);
    } catch (err) {
      throw toDomainError(err);
    }
    const identity = identityFromClaims(payload);
    if (identity === null) throw new TokenInvalidError('token has no user id');
    return identity;
  }

  private async verifySignatureAndClaims(token: string): Promise<JWTPayload> {
    try {
      return (await jwtVerify(token, this.resolveKey, this.verifyOptions)).payload;
    } catch (err) {
      if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
      // Several keys fit (a token without `kid`, or a kid reused during a key
      // rotation): the token is good if any one of them verifies it.
      for await (const key of err) {
        try {
          return (await jwtVerify(token, key, this.verifyOptions)).payload;
        } catch (inner) {
          if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
        }
      }
      throw new TokenInvalidError('signature verification failed');
    }
  }

  /**
   * Key resolution is where the network is touched, so its failures are
   * classified here, while it is still known that they came from the key set
   * and not from the token.
   */
  private readonly resolveKey: JWTVerifyGetKey = async (header, token) => {
    try {
      const pending = this.keySet(header, token);
      return this.remote ? await withDeadline(pending, this.timeoutMs + DEADLINE_SLACK_MS) : await pending;
    } catch (err) {
      throw keySetError(err);
    }
  };
}

function keySetError(err: unknown): unknown {
  if (err instanceof SignalError || err instanceof errors.JWKSMultipleMatchingKeys) return err;
  if (err instanceof errors.JWKSNoMatchingKey) return new TokenInvalidError('no matching key in the key set');
  if (err instanceof errors.JOSENotSupported) return new TokenAlgorithmError();
  if (isTimeout(err)) return new KeySetUnavailableError('key set fetch timed out', { cause: err });
  return new KeySetUnavailableError('key set could not be loaded', { cause: err });
}

/** A body that stalls after the headers surfaces as a parse error caused by the abort, not as JWKSTimeout. */
function isTimeout(err: unknown): boolean {
  if (err instanceof errors.JWKSTimeout) return true;
  return err instanceof Error && err.cause instanceof Error && err.cause.name === 'TimeoutError';
}

/**
 * Reasons are fixed strings or jose claim names only. No cause is attached
 * for token failures: jose puts the decoded claims on its errors, and those
 * must not reach a log through an error serializer.
 */
function toDomainError(err: unknown): SignalError {
  if (err instanceof SignalError) return err;
  if (err instanceof errors.JWTExpired) return new TokenExpiredError('token expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' && err.reason === 'check_failed') return new TokenExpiredError('token not yet valid');
    return new TokenInvalidError(`unexpected "${err.claim}" claim`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new TokenAlgorithmError();
  if (err instanceof errors.JWSSignatureVerificationFailed) return new TokenInvalidError('signature verification failed');
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return new TokenInvalidError('malformed token');
  if (err instanceof errors.JOSENotSupported) return new TokenInvalidError('unsupported token');
  return new TokenInvalidError('token verification failed');
}

/** The port promises a bounded answer whatever the fetch implementation does with its abort signal. */
async function withDeadline<T>(pending: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KeySetUnavailableError('key set fetch timed out')), ms);
    timer.unref();
  });
  try {
    return await Promise.race([pending, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
  return value;
}

function nonNegative(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be >= 0`);
  return value;
}

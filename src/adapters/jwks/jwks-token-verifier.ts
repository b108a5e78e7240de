import { createLocalJWKSet, createRemoteJWKSet, errors, UnsecuredJWT } from 'jose';
import type {
  CompactJWSHeaderParameters,
  CryptoKey,
  FlattenedJWSInput,
  JSONWebKeySet,
  JWTClaimVerificationOptions,
  JWTPayload,
} from 'jose';
import type { TokenVerifier } from '../../application/ports/token-verifier.port.ts';
import { identityFromClaims } from '../../domain/claims.ts';
import type { Identity } from '../../domain/identity.ts';
import { verifyJwsSignature } from './jws-signature.ts';
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
type KeySet = (header: CompactJWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/** A compact JWS split and its header checked; nothing in it is trusted yet. */
interface CompactJws {
  header: CompactJWSHeaderParameters;
  alg: string;
  /** The three segments as they came; `protected.payload` is what the signature covers. */
  protected: string;
  payload: string;
  signature: string;
  signingInput: string;
}

/** Three base64url segments; the signature may be empty (alg `none`, refused later as an algorithm). */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });
/** base64url('{"alg":"none"}'): the header of the unsecured JWT handed to jose for claim validation. */
const UNSECURED_HEADER = 'eyJhbGciOiJub25lIn0';

/**
 * Beyond jose's own fetch timeout, a remote key resolution gets this much
 * slack before the outer deadline gives up on it; jose's abort normally wins
 * and reports the timeout itself.
 */
const DEADLINE_SLACK_MS = 250;

/**
 * jose fetches, caches and selects keys; the signature itself is checked
 * with a synchronous `crypto.verify`, which costs a fraction of WebCrypto's
 * asynchronous verify on the connection-admission path, and the claims are
 * then validated by jose's own rules.
 */
export class JwksTokenVerifier implements TokenVerifier {
  private readonly keySet: KeySet;
  private readonly remote: boolean;
  private readonly algorithms: ReadonlySet<string>;
  private readonly claimOptions: JWTClaimVerificationOptions;
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

    this.algorithms = new Set(options.algorithms);
    this.claimOptions = { clockTolerance };
    if (options.issuer !== undefined) this.claimOptions.issuer = options.issuer;
    if (options.audience !== undefined) this.claimOptions.audience = options.audience;
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
    const jws = this.parse(token);
    let verified = false;
    try {
      const key = await this.resolveKey(jws);
      verified = verifyJwsSignature(jws.alg, key, jws.signingInput, jws.signature);
    } catch (err) {
      if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
      // Several keys fit (a token without `kid`, or a kid reused during a key
      // rotation): the token is good if any one of them verifies it.
      for await (const key of err) {
        if (verifyJwsSignature(jws.alg, key, jws.signingInput, jws.signature)) {
          verified = true;
          break;
        }
      }
    }
    if (!verified) throw new TokenInvalidError('signature verification failed');
    // Only now, with the signature checked over exactly this payload segment,
    // does jose read the claims: the same segment behind an `alg: none`
    // header, validated by jose's rules for exp, nbf, iss and aud.
    return UnsecuredJWT.decode(`${UNSECURED_HEADER}.${jws.payload}.`, this.claimOptions).payload;
  }

  /**
   * The strict split. Extensions are refused outright: no `crit` (jose
   * would refuse every one but `b64`) and no `b64`, whose unencoded payload
   * a JWT may not use. `jku`, `x5u` and an embedded `jwk` are never looked
   * at: keys come from the configured key set only.
   */
  private parse(token: string): CompactJws {
    if (!COMPACT_JWS.test(token)) throw new TokenInvalidError('malformed token');
    const first = token.indexOf('.');
    const second = token.indexOf('.', first + 1);
    const header = decodeHeader(token.slice(0, first));
    if (Object.hasOwn(header, 'crit')) {
      const crit = header.crit;
      const wellFormed = Array.isArray(crit) && crit.length > 0 && crit.every((name) => typeof name === 'string' && name !== '');
      throw new TokenInvalidError(wellFormed ? 'unsupported token' : 'malformed token');
    }
    if (Object.hasOwn(header, 'b64')) throw new TokenInvalidError('unsupported token');
    const { alg } = header;
    if (typeof alg !== 'string' || alg === '') throw new TokenInvalidError('malformed token');
    if (!this.algorithms.has(alg)) throw new TokenAlgorithmError();
    return {
      header: header as CompactJWSHeaderParameters,
      alg,
      protected: token.slice(0, first),
      payload: token.slice(first + 1, second),
      signature: token.slice(second + 1),
      signingInput: token.slice(0, second),
    };
  }

  /**
   * Key resolution is where the network is touched, so its failures are
   * classified here, while it is still known that they came from the key set
   * and not from the token.
   */
  private async resolveKey(jws: CompactJws): Promise<CryptoKey> {
    const input: FlattenedJWSInput = { protected: jws.protected, payload: jws.payload, signature: jws.signature };
    try {
      const pending = this.keySet(jws.header, input);
      return this.remote ? await withDeadline(pending, this.timeoutMs + DEADLINE_SLACK_MS) : await pending;
    } catch (err) {
      throw keySetError(err);
    }
  }
}

function decodeHeader(segment: string): Record<string, unknown> {
  const bytes = Buffer.from(segment, 'base64url');
  // Buffer accepts non-canonical spellings (stray trailing bits); one spelling per header.
  if (bytes.toString('base64url') !== segment) throw new TokenInvalidError('malformed token');
  let header: unknown;
  try {
    header = JSON.parse(UTF8.decode(bytes));
  } catch {
    throw new TokenInvalidError('malformed token');
  }
  if (!isPlainObject(header)) throw new TokenInvalidError('malformed token');
  return header;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
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

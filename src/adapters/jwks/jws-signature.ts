import { constants, KeyObject, verify as verifySignature } from 'node:crypto';
import type { CryptoKey } from 'jose';
import { TokenAlgorithmError, TokenInvalidError } from '../../domain/errors.ts';

/**
 * What each algorithm demands of its key and signature. jose's key sets
 * already import a key for the token's `alg`; checking again here keeps a
 * key that slipped through (a wrong curve, a short RSA modulus) from ever
 * being used.
 */
interface AlgorithmSpec {
  /** Digest for `crypto.verify`; null for EdDSA, which hashes internally. */
  hash: 'sha256' | 'sha384' | 'sha512' | null;
  keyTypes: readonly string[];
  /** EC only: the OpenSSL curve name. */
  curve?: string;
  /** EC only: the exact length of an r ‖ s (IEEE P1363) signature. */
  signatureBytes?: number;
  minRsaBits?: number;
  /** PS* only: the salt length, equal to the digest length as in RFC 7518. */
  pssSaltLength?: number;
}

const es = (bits: 256 | 384 | 512, curve: string, signatureBytes: number): AlgorithmSpec => ({
  hash: `sha${bits}`,
  keyTypes: ['ec'],
  curve,
  signatureBytes,
});
const rs = (bits: 256 | 384 | 512): AlgorithmSpec => ({ hash: `sha${bits}`, keyTypes: ['rsa'], minRsaBits: 2048 });
const ps = (bits: 256 | 384 | 512): AlgorithmSpec => ({
  hash: `sha${bits}`,
  keyTypes: ['rsa', 'rsa-pss'],
  minRsaBits: 2048,
  pssSaltLength: bits / 8,
});

const ALGORITHM_SPECS: ReadonlyMap<string, AlgorithmSpec> = new Map([
  ['ES256', es(256, 'prime256v1', 64)],
  ['ES384', es(384, 'secp384r1', 96)],
  ['ES512', es(512, 'secp521r1', 132)],
  ['RS256', rs(256)],
  ['RS384', rs(384)],
  ['RS512', rs(512)],
  ['PS256', ps(256)],
  ['PS384', ps(384)],
  ['PS512', ps(512)],
  ['EdDSA', { hash: null, keyTypes: ['ed25519', 'ed448'] }],
]);

/** What `crypto.verify` needs of a resolved key, read once per CryptoKey. */
interface VerificationKey {
  key: KeyObject;
  type: string | undefined;
  curve: string | undefined;
  modulusLength: number | undefined;
}

/** jose caches one CryptoKey per JWK and algorithm, so this converts each key once. */
const verificationKeys = new WeakMap<CryptoKey, VerificationKey>();

function verificationKey(cryptoKey: CryptoKey): VerificationKey {
  let entry = verificationKeys.get(cryptoKey);
  if (entry === undefined) {
    const key = KeyObject.from(cryptoKey as Parameters<typeof KeyObject.from>[0]);
    const details = key.asymmetricKeyDetails;
    entry = { key, type: key.type === 'public' ? key.asymmetricKeyType : undefined, curve: details?.namedCurve, modulusLength: details?.modulusLength };
    verificationKeys.set(cryptoKey, entry);
  }
  return entry;
}

/**
 * Whether `signature` (base64url) is a valid `alg` signature by `cryptoKey`
 * over `signingInput` (ASCII). A key unfit for the algorithm throws instead,
 * with the reason jose's own key checks gave it; so does an unknown `alg`.
 */
export function verifyJwsSignature(alg: string, cryptoKey: CryptoKey, signingInput: string, signature: string): boolean {
  const spec = ALGORITHM_SPECS.get(alg);
  if (spec === undefined) throw new TokenAlgorithmError();
  const { key, type, curve, modulusLength } = verificationKey(cryptoKey);
  const fits =
    type !== undefined &&
    spec.keyTypes.includes(type) &&
    (spec.curve === undefined || curve === spec.curve) &&
    (spec.minRsaBits === undefined || (modulusLength !== undefined && modulusLength >= spec.minRsaBits));
  if (!fits) throw new TokenInvalidError('token verification failed');

  const bytes = Buffer.from(signature, 'base64url');
  // One spelling per signature: Buffer ignores stray trailing bits, which would make tokens malleable.
  if (bytes.toString('base64url') !== signature) throw new TokenInvalidError('malformed token');
  if (spec.signatureBytes !== undefined && bytes.length !== spec.signatureBytes) return false;
  try {
    return verifySignature(
      spec.hash,
      Buffer.from(signingInput, 'latin1'),
      spec.pssSaltLength === undefined
        ? { key, dsaEncoding: 'ieee-p1363' }
        : { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: spec.pssSaltLength },
      bytes,
    );
  } catch {
    // A signature OpenSSL cannot even parse is simply not a valid one.
    return false;
  }
}

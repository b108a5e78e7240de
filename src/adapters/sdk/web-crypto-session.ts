/**
 * The client half of the crypto session for the browser and Node SDKs.
 * It is bundled for browsers, so it uses only `globalThis.crypto.subtle`,
 * `btoa`/`atob` and `TextEncoder`/`TextDecoder`: no node: modules and no
 * Buffer. It must stay byte-compatible with src/domain/crypto-session.ts;
 * both are pinned to the same known-answer vectors.
 */
import { DecryptionError, InvalidPublicKeyError } from '../../domain/errors.ts';

const PUBLIC_KEY_BYTES = 65;
const SCALAR_BYTES = 32;
const SALT_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const UNCOMPRESSED_POINT = 0x04;

const ECDH_P256: EcKeyImportParams = { name: 'ECDH', namedCurve: 'P-256' };

/**
 * PKCS#8 wrapping of a bare P-256 scalar: PrivateKeyInfo { version 0,
 * id-ecPublicKey + prime256v1, ECPrivateKey { version 1, d } } with the
 * optional public key left out, so WebCrypto computes it from d.
 */
const PKCS8_P256_PREFIX = [
  0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
  0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20,
];

const BASE64_ALPHABET = /^[A-Za-z0-9+/]*={0,2}$/;
// String.fromCharCode.apply has an argument-count ceiling; stay well under it.
const CHUNK = 0x8000;

function subtle(): SubtleCrypto {
  return globalThis.crypto.subtle;
}

export function encodeBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += CHUNK) {
    // apply() takes any array-like; the cast only satisfies the number[] signature.
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK) as unknown as number[]);
  }
  return btoa(binary);
}

/**
 * Strict standard base64 with padding. `atob` alone forgives whitespace,
 * missing padding and non-zero trailing bits, so the decoded bytes must
 * also re-encode to exactly the input: one accepted spelling per value.
 */
export function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  if (typeof text !== 'string' || text.length % 4 !== 0 || !BASE64_ALPHABET.test(text)) {
    throw new TypeError('invalid base64');
  }
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  if (encodeBase64(bytes) !== text) throw new TypeError('invalid base64');
  return bytes;
}

function decodeBase64Url(text: string): Uint8Array<ArrayBuffer> {
  const standard = text.replace(/-/g, '+').replace(/_/g, '/');
  return decodeBase64(standard + '='.repeat((4 - (standard.length % 4)) % 4));
}

export interface ClientKeyPair {
  /** Standard base64 of the raw uncompressed 65-byte point. */
  publicKey: string;
  privateKey: CryptoKey;
}

/** A fresh key pair per connection; the private key can never be exported. */
export async function generateClientKeyPair(): Promise<ClientKeyPair> {
  const pair = (await subtle().generateKey(ECDH_P256, false, ['deriveBits'])) as CryptoKeyPair;
  const raw = new Uint8Array(await subtle().exportKey('raw', pair.publicKey));
  return { publicKey: encodeBase64(raw), privateKey: pair.privateKey };
}

/**
 * For fixed test vectors only. WebCrypto cannot import a bare scalar, and a
 * JWK import needs the public coordinates too, so the scalar goes in as
 * PKCS#8 without a public key, the computed point is read back through a
 * JWK export, and the key is re-imported non-extractable.
 */
export async function importClientKeyPair(privateScalar: Uint8Array): Promise<ClientKeyPair> {
  if (privateScalar.length !== SCALAR_BYTES) throw new RangeError(`private scalar must be ${SCALAR_BYTES} bytes`);
  const der = new Uint8Array(PKCS8_P256_PREFIX.length + SCALAR_BYTES);
  der.set(PKCS8_P256_PREFIX);
  der.set(privateScalar, PKCS8_P256_PREFIX.length);
  const transient = await subtle().importKey('pkcs8', der, ECDH_P256, true, ['deriveBits']);
  const jwk = await subtle().exportKey('jwk', transient);
  der.fill(0);
  if (jwk.x === undefined || jwk.y === undefined) throw new TypeError('key export did not include the public point');

  const point = new Uint8Array(PUBLIC_KEY_BYTES);
  point[0] = UNCOMPRESSED_POINT;
  point.set(decodeBase64Url(jwk.x), 1);
  point.set(decodeBase64Url(jwk.y), 1 + SCALAR_BYTES);
  const privateKey = await subtle().importKey('jwk', jwk, ECDH_P256, false, ['deriveBits']);
  return { publicKey: encodeBase64(point), privateKey };
}

async function importServerPublicKey(serverPublicKey: string): Promise<CryptoKey> {
  let point: Uint8Array<ArrayBuffer>;
  try {
    point = decodeBase64(serverPublicKey);
  } catch (cause) {
    throw new InvalidPublicKeyError({ cause });
  }
  if (point.length !== PUBLIC_KEY_BYTES || point[0] !== UNCOMPRESSED_POINT) throw new InvalidPublicKeyError();
  try {
    // The raw import rejects points that are not on the curve.
    return await subtle().importKey('raw', point, ECDH_P256, true, []);
  } catch (cause) {
    throw new InvalidPublicKeyError({ cause });
  }
}

/**
 * ECDH → HKDF-SHA-256 → AES-256-GCM, matching the server's derivation. The
 * session key is non-extractable: the page's scripts can use it but never
 * read it out.
 */
export async function deriveSessionKey(
  privateKey: CryptoKey,
  serverPublicKey: string,
  salt: string,
  info: string,
): Promise<CryptoKey> {
  const serverKey = await importServerPublicKey(serverPublicKey);
  const saltBytes = decodeBase64(salt);
  if (saltBytes.length !== SALT_BYTES) throw new TypeError(`salt must be ${SALT_BYTES} bytes`);

  const shared = new Uint8Array(await subtle().deriveBits({ name: 'ECDH', public: serverKey }, privateKey, 256));
  const ikm = await subtle().importKey('raw', shared, 'HKDF', false, ['deriveKey']);
  shared.fill(0);
  return subtle().deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: saltBytes, info: new TextEncoder().encode(info) },
    ikm,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
}

export async function sealPayloadWeb(
  key: CryptoKey,
  plaintext: string,
  iv?: Uint8Array,
): Promise<{ iv: string; ct: string }> {
  if (iv !== undefined && iv.length !== IV_BYTES) throw new RangeError(`iv must be ${IV_BYTES} bytes`);
  // Copied because WebCrypto refuses views over a SharedArrayBuffer, which a bare Uint8Array may be.
  const nonce = iv === undefined ? globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES)) : new Uint8Array(iv);
  const sealed = await subtle().encrypt(
    { name: 'AES-GCM', iv: nonce, tagLength: TAG_BYTES * 8 },
    key,
    new TextEncoder().encode(plaintext),
  );
  return { iv: encodeBase64(nonce), ct: encodeBase64(new Uint8Array(sealed)) };
}

/**
 * Rejects with one DecryptionError for every failure (shape, base64,
 * lengths, wrong key, forged tag) so callers cannot tell them apart.
 */
export async function openPayloadWeb(key: CryptoKey, data: unknown): Promise<string> {
  try {
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new TypeError('not an object');
    const { iv: ivText, ct: ctText } = data as Record<string, unknown>;
    if (typeof ivText !== 'string' || typeof ctText !== 'string') throw new TypeError('iv and ct must be strings');
    const iv = decodeBase64(ivText);
    const ct = decodeBase64(ctText);
    if (iv.length !== IV_BYTES || ct.length < TAG_BYTES) throw new RangeError('bad iv or ct length');
    const plain = await subtle().decrypt({ name: 'AES-GCM', iv, tagLength: TAG_BYTES * 8 }, key, ct);
    return new TextDecoder().decode(plain);
  } catch (cause) {
    throw new DecryptionError({ cause });
  }
}

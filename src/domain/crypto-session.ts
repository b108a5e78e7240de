/**
 * The server half of the per-connection crypto session (protocol §2.4, §3):
 * an ephemeral ECDH P-256 handshake, HKDF-SHA-256 key derivation and
 * AES-256-GCM frames. Synchronous on purpose: `sealFrame` runs once per
 * delivery, so a broadcast to N clients is N calls on the event loop and
 * must not pay for promises or WebCrypto's async hops.
 *
 * The browser/SDK twin lives in adapters/sdk/web-crypto-session.ts; both
 * are pinned to the same known-answer vectors.
 */
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHmac,
  ECDH,
  randomFillSync,
} from 'node:crypto';
import { DecryptionError, InvalidPublicKeyError } from './errors.ts';

export const PUBLIC_KEY_BYTES = 65;
export const SALT_BYTES = 32;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;
export const KEY_BYTES = 32;
export const DEFAULT_ECDH_INFO = 'ignis-ecdh-p256-aes-256-gcm-v1';

const CURVE = 'prime256v1';
const CIPHER = 'aes-256-gcm';
const UNCOMPRESSED_POINT = 0x04;
const PUBLIC_KEY_BASE64_CHARS = 88;

/**
 * Strict standard base64: `Buffer.from` silently accepts the url alphabet,
 * whitespace, missing padding and non-zero trailing bits, so the decoded
 * bytes must re-encode to exactly the input. That leaves one accepted
 * spelling per byte string.
 */
function decodeStrictBase64(text: string): Buffer | undefined {
  if (text.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/**
 * The encoding half of a client key check: 88 characters of canonical
 * base64 of a 65-byte uncompressed (0x04) point. Whether the point is on
 * the curve is left to the key agreement, which checks it anyway (see
 * acceptClientPoint), so the handshake path does not pay for that twice.
 */
export function decodePublicKeyEncoding(value: unknown): Buffer {
  // Checking the length first keeps a hostile multi-megabyte "key" from being decoded.
  if (typeof value !== 'string' || value.length !== PUBLIC_KEY_BASE64_CHARS) {
    throw new InvalidPublicKeyError();
  }
  const point = decodeStrictBase64(value);
  if (point === undefined || !isUncompressedPoint(point)) throw new InvalidPublicKeyError();
  return point;
}

function isUncompressedPoint(point: Buffer): boolean {
  return point.length === PUBLIC_KEY_BYTES && point[0] === UNCOMPRESSED_POINT;
}

/** OpenSSL rejects a point that is not on the curve (invalid-curve attacks). */
export function isOnCurve(point: Buffer): boolean {
  try {
    ECDH.convertKey(point, CURVE);
    return true;
  } catch {
    return false;
  }
}

/** A client key, fully checked: its encoding and that it is a point of P-256. */
export function decodePublicKey(value: unknown): Buffer {
  const point = decodePublicKeyEncoding(value);
  try {
    ECDH.convertKey(point, CURVE);
  } catch (cause) {
    throw new InvalidPublicKeyError({ cause });
  }
  return point;
}

export interface HandshakeResult {
  key: Buffer;
  serverPublicKey: string;
  salt: string;
}

/** `fixed` exists only for known-answer tests. */
export interface FixedHandshakeInputs {
  serverPrivateKey?: Buffer;
  salt?: Buffer;
}

/** The handshake from the client key as it arrives on the wire. */
export function acceptHandshake(clientPublicKey: unknown, info: string, fixed?: FixedHandshakeInputs): HandshakeResult {
  return acceptClientPoint(decodePublicKeyEncoding(clientPublicKey), info, fixed);
}

/**
 * The server's next ephemeral key pair, drawn ahead of the connection that
 * will use it (see acceptClientPoint). Its public half is disclosed only by
 * that connection's `connected`.
 */
let nextKeyPair: ECDH | undefined;

/**
 * The handshake from a point already through decodePublicKeyEncoding. The
 * key agreement itself refuses a point off the curve, with the same
 * InvalidPublicKeyError as every other bad key.
 *
 * In production every call uses a fresh key pair and salt. Right after the
 * derivation the ECDH object draws the next connection's pair, which
 * replaces the used private key at once (forward secrecy) rather than
 * whenever a collector frees a per-connection object; and no curve group is
 * built per handshake.
 */
export function acceptClientPoint(clientPoint: Buffer, info: string, fixed?: FixedHandshakeInputs): HandshakeResult {
  if (!isUncompressedPoint(clientPoint)) throw new InvalidPublicKeyError();
  const salt = fixed?.salt ?? takeRandom(SALT_BYTES);
  if (salt.length !== SALT_BYTES) throw new RangeError(`salt must be ${SALT_BYTES} bytes`);

  let ecdh: ECDH;
  if (fixed?.serverPrivateKey !== undefined) {
    ecdh = createECDH(CURVE);
    ecdh.setPrivateKey(fixed.serverPrivateKey);
  } else {
    if (nextKeyPair === undefined) {
      nextKeyPair = createECDH(CURVE);
      nextKeyPair.generateKeys();
    }
    ecdh = nextKeyPair;
  }

  let shared: Buffer;
  try {
    shared = ecdh.computeSecret(clientPoint);
  } catch (cause) {
    // Nothing of this pair has been disclosed; the next connection may still use it.
    throw new InvalidPublicKeyError({ cause });
  }
  const serverPublicKey = ecdh.getPublicKey('base64', 'uncompressed');
  if (ecdh === nextKeyPair) {
    // Forgotten first: should drawing the next pair fail, this disclosed one is never handed out again.
    nextKeyPair = undefined;
    ecdh.generateKeys();
    nextKeyPair = ecdh;
  }
  const key = hkdfSha256(shared, salt, info);
  shared.fill(0);

  return { key, serverPublicKey, salt: salt.toString('base64') };
}

const HKDF_FIRST_BLOCK = Buffer.from([1]);

/**
 * HKDF-SHA-256 (RFC 5869) for one output block, which is exactly KEY_BYTES:
 * PRK = HMAC(salt, ikm), OKM = HMAC(PRK, info ‖ 0x01). The same bytes as
 * `hkdfSync` (the known-answer vectors pin them) at under half its cost,
 * most of which goes on argument checks and a key object per call.
 */
function hkdfSha256(ikm: Buffer, salt: Buffer, info: string): Buffer {
  const prk = createHmac('sha256', salt).update(ikm).digest();
  const okm = createHmac('sha256', prk).update(info, 'utf8').update(HKDF_FIRST_BLOCK).digest();
  prk.fill(0);
  return okm;
}

/**
 * IVs and handshake salts come from one pooled block of CSPRNG output
 * instead of a call into OpenSSL per frame or per handshake. Each slice is
 * handed out once and used before its caller returns (it is a view of the
 * pool); the block is refilled only when too little is left, the rest
 * dropped, so no random bytes are ever handed out twice.
 */
const RANDOM_POOL_BYTES = IV_BYTES * 1024;
const randomPool = Buffer.allocUnsafeSlow(RANDOM_POOL_BYTES);
let randomPoolOffset = randomPool.length;

function takeRandom(length: number): Buffer {
  if (randomPool.length - randomPoolOffset < length) {
    randomFillSync(randomPool);
    randomPoolOffset = 0;
  }
  const bytes = randomPool.subarray(randomPoolOffset, randomPoolOffset + length);
  randomPoolOffset += length;
  return bytes;
}

function resolveIv(iv: Buffer | undefined): Buffer {
  if (iv === undefined) return takeRandom(IV_BYTES);
  if (iv.length !== IV_BYTES) throw new RangeError(`iv must be ${IV_BYTES} bytes`);
  return iv;
}

/** base64(ciphertext ‖ tag). */
function encryptToBase64(key: Buffer, plaintext: string, iv: Buffer): string {
  const cipher = createCipheriv(CIPHER, key, iv, { authTagLength: TAG_BYTES });
  const body = cipher.update(plaintext, 'utf8');
  // GCM is a stream mode: final() never yields bytes, it only computes the tag.
  cipher.final();
  const tag = cipher.getAuthTag();

  // Encode without copying the body: its longest prefix whose length is a
  // multiple of 3 encodes without padding, so it concatenates cleanly with
  // the encoding of the short remainder plus the tag.
  const whole = body.length - (body.length % 3);
  const tail = whole === body.length ? tag : Buffer.concat([body.subarray(whole), tag]);
  return whole === 0 ? tail.toString('base64') : body.toString('base64', 0, whole) + tail.toString('base64');
}

export function sealPayload(key: Buffer, plaintext: string, iv?: Buffer): { iv: string; ct: string } {
  const nonce = resolveIv(iv);
  return { iv: nonce.toString('base64'), ct: encryptToBase64(key, plaintext, nonce) };
}

/**
 * The full `encrypted` frame text, built by concatenation: base64 never
 * needs JSON escaping, so this is exactly the wire bytes in the wire key
 * order, with no intermediate object or JSON.stringify.
 */
export function sealFrame(key: Buffer, plaintext: string, iv?: Buffer): string {
  const nonce = resolveIv(iv);
  return (
    '{"event":"encrypted","data":{"iv":"' +
    nonce.toString('base64') +
    '","ct":"' +
    encryptToBase64(key, plaintext, nonce) +
    '"}}'
  );
}

/**
 * Every failure, whether malformed input, a wrong key or a forged tag,
 * surfaces as the same DecryptionError so a peer learns nothing about which
 * check failed. No plaintext is returned before the tag has verified.
 */
export function openPayload(key: Buffer, data: unknown): string {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new DecryptionError();
  const { iv: ivText, ct: ctText } = data as Record<string, unknown>;
  if (typeof ivText !== 'string' || typeof ctText !== 'string') throw new DecryptionError();
  const iv = decodeStrictBase64(ivText);
  const ct = decodeStrictBase64(ctText);
  if (iv === undefined || iv.length !== IV_BYTES || ct === undefined || ct.length < TAG_BYTES) {
    throw new DecryptionError();
  }
  try {
    const decipher = createDecipheriv(CIPHER, key, iv, { authTagLength: TAG_BYTES });
    decipher.setAuthTag(ct.subarray(ct.length - TAG_BYTES));
    const body = decipher.update(ct.subarray(0, ct.length - TAG_BYTES));
    decipher.final();
    return body.toString('utf8');
  } catch (cause) {
    throw new DecryptionError({ cause });
  }
}

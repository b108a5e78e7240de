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
  ECDH,
  hkdfSync,
  randomBytes,
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

export function decodePublicKey(value: unknown): Buffer {
  // Checking the length first keeps a hostile multi-megabyte "key" from being decoded.
  if (typeof value !== 'string' || value.length !== PUBLIC_KEY_BASE64_CHARS) {
    throw new InvalidPublicKeyError();
  }
  const point = decodeStrictBase64(value);
  if (point === undefined || point.length !== PUBLIC_KEY_BYTES || point[0] !== UNCOMPRESSED_POINT) {
    throw new InvalidPublicKeyError();
  }
  try {
    // OpenSSL rejects a point that is not on the curve (invalid-curve attacks).
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

/**
 * `fixed` exists only for known-answer tests. In production every call
 * draws a fresh key pair and salt, and the private key dies with the local
 * ECDH object: forward secrecy depends on nothing keeping a reference to it.
 */
export function acceptHandshake(
  clientPublicKey: unknown,
  info: string,
  fixed?: { serverPrivateKey?: Buffer; salt?: Buffer },
): HandshakeResult {
  const clientPoint = decodePublicKey(clientPublicKey);
  const salt = fixed?.salt ?? randomBytes(SALT_BYTES);
  if (salt.length !== SALT_BYTES) throw new RangeError(`salt must be ${SALT_BYTES} bytes`);

  const ecdh = createECDH(CURVE);
  if (fixed?.serverPrivateKey !== undefined) ecdh.setPrivateKey(fixed.serverPrivateKey);
  else ecdh.generateKeys();

  let shared: Buffer;
  try {
    shared = ecdh.computeSecret(clientPoint);
  } catch (cause) {
    throw new InvalidPublicKeyError({ cause });
  }
  const key = Buffer.from(hkdfSync('sha256', shared, salt, info, KEY_BYTES));
  shared.fill(0);

  return {
    key,
    serverPublicKey: ecdh.getPublicKey('base64', 'uncompressed'),
    salt: salt.toString('base64'),
  };
}

/**
 * IVs come from one pooled block of CSPRNG output instead of a syscall per
 * frame. Each 12-byte slice is handed out once; the block is refilled only
 * after every slice has been used, so no IV bytes are ever reused.
 */
const IV_POOL_IVS = 1024;
const ivPool = Buffer.allocUnsafeSlow(IV_BYTES * IV_POOL_IVS);
let ivPoolOffset = ivPool.length;

function nextIv(): Buffer {
  if (ivPoolOffset === ivPool.length) {
    randomFillSync(ivPool);
    ivPoolOffset = 0;
  }
  const iv = ivPool.subarray(ivPoolOffset, ivPoolOffset + IV_BYTES);
  ivPoolOffset += IV_BYTES;
  return iv;
}

function resolveIv(iv: Buffer | undefined): Buffer {
  if (iv === undefined) return nextIv();
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

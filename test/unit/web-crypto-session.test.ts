import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decodeBase64,
  deriveSessionKey,
  encodeBase64,
  generateClientKeyPair,
  importClientKeyPair,
  openPayloadWeb,
  sealPayloadWeb,
} from '../../src/adapters/sdk/web-crypto-session.ts';
import { acceptHandshake, DEFAULT_ECDH_INFO, openPayload, sealFrame } from '../../src/domain/crypto-session.ts';
import { DecryptionError, InvalidPublicKeyError } from '../../src/domain/errors.ts';
import { b64, cryptoVectors, hex, malformedPublicKeys } from '../fixtures/crypto-vectors.ts';

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

async function expectDecryptionError(promise: Promise<unknown>): Promise<void> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(DecryptionError);
  expect((error as DecryptionError).message).toBe('Decryption failed');
}

/** A session key derived exactly as a browser client would, from the given vector. */
async function vectorSessionKey(index = 0): Promise<CryptoKey> {
  const vector = cryptoVectors[index];
  if (vector === undefined) throw new Error(`no vector ${index}`);
  const client = await importClientKeyPair(hex(vector.clientPrivateScalarHex));
  return deriveSessionKey(client.privateKey, vector.serverPublicKeyBase64, vector.saltBase64, vector.info);
}

function flipBit(bytes: Uint8Array, index: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[index] = (copy[index] ?? 0) ^ 0x01;
  return copy;
}

describe('base64', () => {
  it('round-trips every byte value and agrees with Node', () => {
    for (const length of [0, 1, 2, 3, 4, 65, 256, 100_001]) {
      const bytes = randomBytes(length);
      const text = encodeBase64(bytes);
      expect(text).toBe(bytes.toString('base64'));
      expect(Buffer.from(decodeBase64(text)).equals(bytes)).toBe(true);
    }
  });

  it.each([
    ['missing padding', 'AQ'],
    ['the url alphabet', '-_8='],
    ['whitespace', 'AQI D'],
    ['a newline', 'AQID\nBA=='],
    ['padding in the middle', 'AQ==AQ=='],
    ['three padding chars', 'A==='],
    ['non-zero trailing bits', 'AR=='],
    ['a character outside the alphabet', 'AQ!D'],
  ])('rejects %s', (_label, text) => {
    expect(() => decodeBase64(text)).toThrow(TypeError);
  });
});

describe('importClientKeyPair', () => {
  const indexed = cryptoVectors.map((v, i) => [i, v] as const);

  it.each(indexed)('recovers vector %i public key from the scalar', async (_i, v) => {
    const pair = await importClientKeyPair(hex(v.clientPrivateScalarHex));
    expect(pair.publicKey).toBe(v.clientPublicKeyBase64);
    expect(pair.privateKey.extractable).toBe(false);
  });

  it('refuses a scalar that is not 32 bytes', async () => {
    expect(await rejection(importClientKeyPair(new Uint8Array(31)))).toBeInstanceOf(RangeError);
  });
});

describe.each(cryptoVectors.map((v, i) => [i, v] as const))('known-answer vector %i', (index, vector) => {
  it('derives a non-extractable AES-GCM key that reproduces every expected ciphertext', async () => {
    const key = await vectorSessionKey(index);
    expect(key.extractable).toBe(false);
    expect(key.algorithm).toMatchObject({ name: 'AES-GCM', length: 256 });
    expect([...key.usages].sort()).toEqual(['decrypt', 'encrypt']);
    for (const testCase of vector.cases) {
      // Same IV, plaintext and ciphertext means the same 256-bit key: that is the key check.
      const sealed = await sealPayloadWeb(key, testCase.plaintext, b64(testCase.ivBase64));
      expect(sealed).toEqual({ iv: testCase.ivBase64, ct: testCase.ctBase64 });
      expect(await openPayloadWeb(key, { iv: testCase.ivBase64, ct: testCase.ctBase64 })).toBe(testCase.plaintext);
    }
  });

  it('the vector key itself (imported) reproduces the same ciphertexts', async () => {
    const raw = await crypto.subtle.importKey('raw', new Uint8Array(hex(vector.keyHex)), 'AES-GCM', false, ['encrypt']);
    const testCase = vector.cases[1];
    if (testCase === undefined) throw new Error('vector needs two cases');
    expect((await sealPayloadWeb(raw, testCase.plaintext, b64(testCase.ivBase64))).ct).toBe(testCase.ctBase64);
  });
});

describe('deriveSessionKey', () => {
  const vector = cryptoVectors[0];
  if (vector === undefined) throw new Error('no vectors');

  it('a different info string gives a different key', async () => {
    const client = await importClientKeyPair(hex(vector.clientPrivateScalarHex));
    const other = await deriveSessionKey(client.privateKey, vector.serverPublicKeyBase64, vector.saltBase64, 'other');
    const testCase = vector.cases[0];
    if (testCase === undefined) throw new Error('vector needs a case');
    await expectDecryptionError(openPayloadWeb(other, { iv: testCase.ivBase64, ct: testCase.ctBase64 }));
  });

  it.each(malformedPublicKeys().filter(([, value]) => typeof value === 'string'))(
    'refuses a server key that is %s',
    async (_label, value) => {
      const client = await generateClientKeyPair();
      const error = await rejection(deriveSessionKey(client.privateKey, value as string, vector.saltBase64, 'i'));
      expect(error).toBeInstanceOf(InvalidPublicKeyError);
      expect((error as InvalidPublicKeyError).message).toBe('Encryption handshake failed');
    },
  );

  it.each([
    ['16 bytes', randomBytes(16).toString('base64')],
    ['not base64', '*'.repeat(44)],
  ])('refuses a salt of %s', async (_label, salt) => {
    const client = await generateClientKeyPair();
    const error = await rejection(deriveSessionKey(client.privateKey, vector.serverPublicKeyBase64, salt, 'i'));
    expect(error).toBeInstanceOf(TypeError);
  });
});

describe('generateClientKeyPair', () => {
  it('yields a fresh raw 0x04 point and a non-extractable private key', async () => {
    const first = await generateClientKeyPair();
    const second = await generateClientKeyPair();
    const point = decodeBase64(first.publicKey);
    expect(point).toHaveLength(65);
    expect(point[0]).toBe(0x04);
    expect(first.publicKey).not.toBe(second.publicKey);
    expect(first.privateKey.extractable).toBe(false);
  });
});

describe('cross-implementation session', () => {
  it('a WebCrypto client and the node server agree in both directions', async () => {
    const client = await generateClientKeyPair();
    const server = acceptHandshake(client.publicKey, DEFAULT_ECDH_INFO);
    const key = await deriveSessionKey(client.privateKey, server.serverPublicKey, server.salt, DEFAULT_ECDH_INFO);

    const outbound = '{"event":"notification","data":{"title":"Grüße 👋","n":1}}';
    const frame = JSON.parse(sealFrame(server.key, outbound)) as { event: string; data: unknown };
    expect(frame.event).toBe('encrypted');
    expect(await openPayloadWeb(key, frame.data)).toBe(outbound);

    const inbound = '{"event":"join","data":{"rooms":["ws-default","商店"]},"id":"r1"}';
    expect(openPayload(server.key, await sealPayloadWeb(key, inbound))).toBe(inbound);
    expect(openPayload(server.key, await sealPayloadWeb(key, ''))).toBe('');
  });

  it('a session key for another connection cannot open the frame', async () => {
    const client = await generateClientKeyPair();
    const server = acceptHandshake(client.publicKey, DEFAULT_ECDH_INFO);
    const otherServer = acceptHandshake(client.publicKey, DEFAULT_ECDH_INFO);
    const { serverPublicKey, salt } = otherServer;
    const key = await deriveSessionKey(client.privateKey, serverPublicKey, salt, DEFAULT_ECDH_INFO);
    const frame = JSON.parse(sealFrame(server.key, 'secret')) as { data: unknown };
    await expectDecryptionError(openPayloadWeb(key, frame.data));
  });
});

describe('openPayloadWeb tampering and malformed input', () => {
  const vector = cryptoVectors[0];
  const sample = vector?.cases.find((c) => c.plaintext.length > 10);
  if (sample === undefined) throw new Error('vector 0 needs a non-trivial case');
  const iv = b64(sample.ivBase64);
  const ct = b64(sample.ctBase64);

  it('opens the untouched sample (control)', async () => {
    expect(await openPayloadWeb(await vectorSessionKey(), { iv: sample.ivBase64, ct: sample.ctBase64 })).toBe(
      sample.plaintext,
    );
  });

  it.each([
    ['a flipped bit in the ciphertext', () => ({ iv: sample.ivBase64, ct: encodeBase64(flipBit(ct, 0)) })],
    ['a flipped bit in the tag', () => ({ iv: sample.ivBase64, ct: encodeBase64(flipBit(ct, ct.length - 1)) })],
    ['a flipped bit in the IV', () => ({ iv: encodeBase64(flipBit(iv, 5)), ct: sample.ctBase64 })],
    ['a truncated ciphertext', () => ({ iv: sample.ivBase64, ct: encodeBase64(ct.subarray(0, ct.length - 1)) })],
    ['a ct shorter than a tag', () => ({ iv: sample.ivBase64, ct: encodeBase64(ct.subarray(0, 15)) })],
    ['an 11-byte IV', () => ({ iv: encodeBase64(iv.subarray(0, 11)), ct: sample.ctBase64 })],
    ['base64url ct', () => ({ iv: sample.ivBase64, ct: ct.toString('base64url') })],
    ['a numeric iv', () => ({ iv: 12, ct: sample.ctBase64 })],
    ['a missing ct', () => ({ iv: sample.ivBase64 })],
    ['null', () => null],
    ['an array', () => [sample.ivBase64, sample.ctBase64]],
  ])('rejects %s', async (_label, build) => {
    await expectDecryptionError(openPayloadWeb(await vectorSessionKey(), build()));
  });

  it('rejects the right ciphertext under the wrong key', async () => {
    const wrongKey = await vectorSessionKey(1);
    await expectDecryptionError(openPayloadWeb(wrongKey, { iv: sample.ivBase64, ct: sample.ctBase64 }));
  });
});

describe('sealPayloadWeb', () => {
  it('never repeats an IV', async () => {
    const key = await vectorSessionKey();
    const ivs = new Set<string>();
    for (let i = 0; i < 2000; i += 1) ivs.add((await sealPayloadWeb(key, 'm')).iv);
    expect(ivs.size).toBe(2000);
  });

  it('does not let a caller-supplied IV view leak the rest of its buffer into the nonce', async () => {
    const key = await vectorSessionKey();
    const backing = randomBytes(40);
    const view = backing.subarray(8, 20);
    const sealed = await sealPayloadWeb(key, 'x', view);
    expect(sealed.iv).toBe(Buffer.from(view).toString('base64'));
    expect(await openPayloadWeb(key, sealed)).toBe('x');
  });

  it('rejects an IV of the wrong length', async () => {
    expect(await rejection(sealPayloadWeb(await vectorSessionKey(), 'x', new Uint8Array(16)))).toBeInstanceOf(
      RangeError,
    );
  });
});

import { createCipheriv, createECDH, hkdfSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  acceptClientPoint,
  acceptHandshake,
  decodePublicKey,
  decodePublicKeyEncoding,
  DEFAULT_ECDH_INFO,
  isOnCurve,
  IV_BYTES,
  KEY_BYTES,
  openPayload,
  PUBLIC_KEY_BYTES,
  SALT_BYTES,
  sealFrame,
  sealPayload,
  TAG_BYTES,
} from '../../src/domain/crypto-session.ts';
import { DecryptionError, InvalidPublicKeyError } from '../../src/domain/errors.ts';
import {
  b64,
  cryptoVectors,
  hex,
  isOnP256,
  malformedPublicKeys,
  offCurveSample,
  P256_GENERATOR,
  p256Multiply,
  pointFromBytes,
  pointToBytes,
  referenceHkdfSha256,
} from '../fixtures/crypto-vectors.ts';

function expectDecryptionError(run: () => unknown): void {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(DecryptionError);
  expect((thrown as DecryptionError).message).toBe('Decryption failed');
  expect((thrown as DecryptionError).code).toBe('ERR_DECRYPTION_FAILED');
}

function freshKey(): Buffer {
  const client = createECDH('prime256v1');
  client.generateKeys();
  return acceptHandshake(client.getPublicKey('base64'), DEFAULT_ECDH_INFO).key;
}

function flipBit(bytes: Buffer, index: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[index] = (copy[index] ?? 0) ^ 0x01;
  return copy;
}

describe('constants', () => {
  it('match the protocol', () => {
    expect([PUBLIC_KEY_BYTES, SALT_BYTES, IV_BYTES, TAG_BYTES, KEY_BYTES]).toEqual([65, 32, 12, 16, 32]);
    expect(DEFAULT_ECDH_INFO).toBe('ignis-ecdh-p256-aes-256-gcm-v1');
  });
});

describe('reference HKDF', () => {
  it('reproduces RFC 5869 test case 1 (SHA-256)', () => {
    const okm = referenceHkdfSha256(
      Buffer.alloc(22, 0x0b),
      hex('000102030405060708090a0b0c'),
      hex('f0f1f2f3f4f5f6f7f8f9'),
      42,
    );
    expect(okm.toString('hex')).toBe(
      '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
    );
  });

  it('agrees with node:crypto hkdfSync on random inputs, including empty salt and info', () => {
    for (const [saltLength, infoLength] of [[0, 0], [32, 30], [13, 0], [64, 80]] as const) {
      const ikm = randomBytes(32);
      const salt = randomBytes(saltLength);
      const info = randomBytes(infoLength);
      const expected = Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));
      expect(referenceHkdfSha256(ikm, salt, info, 32).equals(expected)).toBe(true);
    }
  });
});

describe.each(cryptoVectors.map((v, index) => [index, v] as const))('known-answer vector %i', (_index, vector) => {
  it('is internally consistent under independent reference arithmetic', () => {
    const client = b64(vector.clientPublicKeyBase64);
    const server = b64(vector.serverPublicKeyBase64);
    expect(isOnP256(client) && isOnP256(server)).toBe(true);
    expect(pointToBytes(p256Multiply(hex(vector.clientPrivateScalarHex), P256_GENERATOR)).equals(client)).toBe(true);
    expect(pointToBytes(p256Multiply(hex(vector.serverPrivateScalarHex), P256_GENERATOR)).equals(server)).toBe(true);
    const shared = p256Multiply(hex(vector.serverPrivateScalarHex), pointFromBytes(client));
    expect(shared?.[0].toString(16).padStart(64, '0')).toBe(vector.sharedSecretHex);
    const key = referenceHkdfSha256(
      hex(vector.sharedSecretHex),
      b64(vector.saltBase64),
      Buffer.from(vector.info, 'utf8'),
      32,
    );
    expect(key.toString('hex')).toBe(vector.keyHex);
  });

  it('acceptHandshake derives the expected key and echoes the server key and salt', () => {
    const result = acceptHandshake(vector.clientPublicKeyBase64, vector.info, {
      serverPrivateKey: hex(vector.serverPrivateScalarHex),
      salt: b64(vector.saltBase64),
    });
    expect(result.key.toString('hex')).toBe(vector.keyHex);
    expect(result.serverPublicKey).toBe(vector.serverPublicKeyBase64);
    expect(result.salt).toBe(vector.saltBase64);
  });

  it.each(vector.cases.map((c) => [c.plaintext.length, c] as const))(
    'seals and opens the %i-char case',
    (_length, testCase) => {
      const key = hex(vector.keyHex);
      const iv = b64(testCase.ivBase64);
      expect(sealPayload(key, testCase.plaintext, iv)).toEqual({ iv: testCase.ivBase64, ct: testCase.ctBase64 });
      expect(sealFrame(key, testCase.plaintext, iv)).toBe(
        `{"event":"encrypted","data":{"iv":"${testCase.ivBase64}","ct":"${testCase.ctBase64}"}}`,
      );
      expect(openPayload(key, { iv: testCase.ivBase64, ct: testCase.ctBase64 })).toBe(testCase.plaintext);
    },
  );
});

describe('sealFrame', () => {
  it('matches a plain concat-then-encode for every body length mod 3', () => {
    const key = randomBytes(32);
    for (let length = 0; length < 70; length += 1) {
      const plaintext = 'é'.repeat(length % 5) + 'x'.repeat(length);
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const expected = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      const frame = JSON.parse(sealFrame(key, plaintext, iv)) as { event: string; data: { iv: string; ct: string } };
      expect(frame.event).toBe('encrypted');
      expect(frame.data.ct).toBe(expected.toString('base64'));
    }
  });

  it('emits exactly the wire shape, with a 12-byte IV and ct = plaintext length + 16', () => {
    const key = freshKey();
    const plaintext = '{"event":"notification","data":{"title":"Grüße 👋"}}';
    const text = sealFrame(key, plaintext);
    expect(text).toMatch(/^\{"event":"encrypted","data":\{"iv":"[A-Za-z0-9+/]{16}","ct":"[A-Za-z0-9+/]+={0,2}"\}\}$/);
    const frame = JSON.parse(text) as { data: { iv: string; ct: string } };
    expect(Object.keys(frame.data)).toEqual(['iv', 'ct']);
    expect(b64(frame.data.iv)).toHaveLength(IV_BYTES);
    expect(b64(frame.data.ct)).toHaveLength(Buffer.byteLength(plaintext) + TAG_BYTES);
    expect(openPayload(key, frame.data)).toBe(plaintext);
  });

  it('never repeats an IV across many seals, including across pool refills', () => {
    const key = freshKey();
    const seen = new Set<string>();
    const count = 5000;
    for (let i = 0; i < count; i += 1) {
      const { iv } = (JSON.parse(sealFrame(key, 'm')) as { data: { iv: string } }).data;
      seen.add(iv);
      seen.add(sealPayload(key, 'm').iv);
    }
    expect(seen.size).toBe(count * 2);
  });

  it('rejects a caller-supplied IV of the wrong length', () => {
    expect(() => sealFrame(freshKey(), 'x', randomBytes(16))).toThrow(RangeError);
  });
});

describe('round trip', () => {
  it('opens what it sealed, for ASCII, multi-byte UTF-8 and large payloads', () => {
    const key = freshKey();
    for (const plaintext of ['', 'a', '{"event":"x","data":{"k":"✓ 你好 🏳️‍🌈"}}', 'z'.repeat(200_000)]) {
      expect(openPayload(key, sealPayload(key, plaintext))).toBe(plaintext);
    }
  });
});

describe('openPayload tampering and malformed input', () => {
  const key = hex(cryptoVectors[0]?.keyHex ?? '');
  const sample = cryptoVectors[0]?.cases.find((c) => c.plaintext.length > 10);
  if (sample === undefined) throw new Error('vector 0 needs a non-trivial case');
  const iv = b64(sample.ivBase64);
  const ct = b64(sample.ctBase64);

  it('opens the untouched sample (control)', () => {
    expect(openPayload(key, { iv: sample.ivBase64, ct: sample.ctBase64 })).toBe(sample.plaintext);
  });

  it.each([
    ['a flipped bit in the ciphertext', () => ({ iv: sample.ivBase64, ct: flipBit(ct, 0).toString('base64') })],
    ['a flipped bit in the tag', () => ({ iv: sample.ivBase64, ct: flipBit(ct, ct.length - 1).toString('base64') })],
    ['a flipped bit in the IV', () => ({ iv: flipBit(iv, 5).toString('base64'), ct: sample.ctBase64 })],
    ['a truncated ciphertext', () => ({ iv: sample.ivBase64, ct: ct.subarray(0, ct.length - 1).toString('base64') })],
    ['only the tag', () => ({ iv: sample.ivBase64, ct: ct.subarray(ct.length - TAG_BYTES).toString('base64') })],
    ['a ct shorter than a tag', () => ({ iv: sample.ivBase64, ct: ct.subarray(0, TAG_BYTES - 1).toString('base64') })],
    ['an 11-byte IV', () => ({ iv: iv.subarray(0, 11).toString('base64'), ct: sample.ctBase64 })],
    ['a 16-byte IV', () => ({ iv: Buffer.concat([iv, Buffer.alloc(4)]).toString('base64'), ct: sample.ctBase64 })],
    ['base64url ct', () => ({ iv: sample.ivBase64, ct: ct.toString('base64url') })],
    ['ct with whitespace', () => ({ iv: sample.ivBase64, ct: ` ${sample.ctBase64}` })],
    ['a numeric iv', () => ({ iv: 12, ct: sample.ctBase64 })],
    ['a missing ct', () => ({ iv: sample.ivBase64 })],
    ['null', () => null],
    ['a string', () => sample.ctBase64],
    ['an array', () => [sample.ivBase64, sample.ctBase64]],
  ])('rejects %s', (_label, build) => {
    expectDecryptionError(() => openPayload(key, build()));
  });

  it('rejects the right ciphertext under the wrong key', () => {
    expectDecryptionError(() => openPayload(randomBytes(32), { iv: sample.ivBase64, ct: sample.ctBase64 }));
  });

  it('rejects a key of the wrong size', () => {
    expectDecryptionError(() => openPayload(randomBytes(16), { iv: sample.ivBase64, ct: sample.ctBase64 }));
  });
});

describe('decodePublicKey', () => {
  it('returns the 65 raw bytes of a valid key', () => {
    const vector = cryptoVectors[0];
    if (vector === undefined) throw new Error('no vectors');
    const point = decodePublicKey(vector.clientPublicKeyBase64);
    expect(point.equals(b64(vector.clientPublicKeyBase64))).toBe(true);
    expect(point).toHaveLength(PUBLIC_KEY_BYTES);
  });

  it('uses a genuinely off-curve point for the off-curve case', () => {
    const sample = offCurveSample();
    expect(sample).toHaveLength(65);
    expect(sample[0]).toBe(0x04);
    expect(isOnP256(sample)).toBe(false);
  });

  it.each(malformedPublicKeys())('rejects %s with the generic error', (_label, value) => {
    let thrown: unknown;
    try {
      decodePublicKey(value);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidPublicKeyError);
    expect((thrown as InvalidPublicKeyError).message).toBe('Encryption handshake failed');
    expect((thrown as InvalidPublicKeyError).code).toBe('ERR_INVALID_PUBLIC_KEY');
  });

  it.each(malformedPublicKeys())('acceptHandshake refuses %s too', (_label, value) => {
    expect(() => acceptHandshake(value, DEFAULT_ECDH_INFO)).toThrow(InvalidPublicKeyError);
  });
});

describe('decodePublicKeyEncoding and acceptClientPoint: one decode, the curve checked by the key agreement', () => {
  it('decodes the encoding only: an off-curve point passes, and is on no curve by isOnCurve', () => {
    const sample = offCurveSample();
    expect(decodePublicKeyEncoding(sample.toString('base64')).equals(sample)).toBe(true);
    expect(isOnCurve(sample)).toBe(false);
    const client = createECDH('prime256v1');
    client.generateKeys();
    expect(isOnCurve(client.getPublicKey())).toBe(true);
  });

  it.each(malformedPublicKeys().filter(([label]) => label !== 'a 0x04 point not on the curve'))(
    'decodePublicKeyEncoding rejects %s',
    (_label, value) => {
      expect(() => decodePublicKeyEncoding(value)).toThrow(InvalidPublicKeyError);
    },
  );

  it('acceptClientPoint refuses a point off the curve, the point at infinity and other encodings', () => {
    const client = createECDH('prime256v1');
    client.generateKeys();
    for (const point of [
      offCurveSample(),
      Buffer.from([0x00]),
      Buffer.concat([Buffer.from([0x04]), Buffer.alloc(64)]),
      client.getPublicKey(null, 'compressed'),
      client.getPublicKey(null, 'hybrid'),
      client.getPublicKey().subarray(0, 64),
    ]) {
      expect(() => acceptClientPoint(point, DEFAULT_ECDH_INFO)).toThrow(InvalidPublicKeyError);
    }
  });

  it('agrees with acceptHandshake on the known-answer vectors', () => {
    for (const vector of cryptoVectors) {
      const fixed = { serverPrivateKey: hex(vector.serverPrivateScalarHex), salt: b64(vector.saltBase64) };
      const result = acceptClientPoint(decodePublicKeyEncoding(vector.clientPublicKeyBase64), vector.info, fixed);
      expect(result.key.toString('hex')).toBe(vector.keyHex);
      expect(result.serverPublicKey).toBe(vector.serverPublicKeyBase64);
    }
  });

  it('draws a fresh key pair after a refused point and after a known-answer run, never reusing a disclosed one', () => {
    const client = createECDH('prime256v1');
    client.generateKeys();
    const point = client.getPublicKey();
    const seen = new Set<string>();
    for (let round = 0; round < 5; round++) {
      expect(() => acceptClientPoint(offCurveSample(), DEFAULT_ECDH_INFO)).toThrow(InvalidPublicKeyError);
      const vector = cryptoVectors[0];
      if (vector === undefined) throw new Error('no vectors');
      acceptClientPoint(point, vector.info, { serverPrivateKey: hex(vector.serverPrivateScalarHex) });
      const result = acceptClientPoint(point, DEFAULT_ECDH_INFO);
      expect(seen.has(result.serverPublicKey)).toBe(false);
      seen.add(result.serverPublicKey);
      // The key the client derives from what it was sent is the server's key.
      const shared = client.computeSecret(b64(result.serverPublicKey));
      expect(referenceHkdfSha256(shared, b64(result.salt), Buffer.from(DEFAULT_ECDH_INFO), 32).equals(result.key)).toBe(true);
    }
  });
});

describe('acceptHandshake', () => {
  it('draws a fresh server key pair and salt every time', () => {
    const client = createECDH('prime256v1');
    client.generateKeys();
    const first = acceptHandshake(client.getPublicKey('base64'), DEFAULT_ECDH_INFO);
    const second = acceptHandshake(client.getPublicKey('base64'), DEFAULT_ECDH_INFO);
    expect(first.serverPublicKey).not.toBe(second.serverPublicKey);
    expect(first.salt).not.toBe(second.salt);
    expect(first.key.equals(second.key)).toBe(false);
    expect(b64(first.salt)).toHaveLength(SALT_BYTES);
    expect(first.key).toHaveLength(KEY_BYTES);
    expect(decodePublicKey(first.serverPublicKey)).toHaveLength(PUBLIC_KEY_BYTES);
  });

  it('gives the client what it needs to derive the same key', () => {
    const client = createECDH('prime256v1');
    client.generateKeys();
    const info = 'custom-info ✓';
    const result = acceptHandshake(client.getPublicKey('base64'), info);
    const shared = client.computeSecret(b64(result.serverPublicKey));
    const key = referenceHkdfSha256(shared, b64(result.salt), Buffer.from(info, 'utf8'), 32);
    expect(key.equals(result.key)).toBe(true);
  });
});

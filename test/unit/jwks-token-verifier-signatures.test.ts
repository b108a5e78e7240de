import { constants, generateKeyPairSync, KeyObject, sign as nodeSign } from 'node:crypto';
import type { JsonWebKey as NodeJwk } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64url, exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import { JwksTokenVerifier } from '../../src/adapters/jwks/jwks-token-verifier.ts';
import { verifyJwsSignature } from '../../src/adapters/jwks/jws-signature.ts';
import { SignalError, TokenAlgorithmError, TokenInvalidError } from '../../src/domain/errors.ts';
import { startJwksServer } from '../fixtures/jwks-server.ts';
import type { JwksServer } from '../fixtures/jwks-server.ts';

/**
 * The signature check the verifier does itself with node:crypto, and the
 * strict compact-JWS split in front of it: every algorithm of the allow-list,
 * keys that do not fit their algorithm, malformed signatures and headers,
 * extensions, and key rotation under one kid.
 */
interface TestKey {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

async function makeKey(alg: string, kid: string, options: { crv?: string } = {}): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...options });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, publicJwk };
}

const nowSec = (): number => Math.floor(Date.now() / 1000);
const claims = (extra: JWTPayload = {}): JWTPayload => ({ sub: 'user-1', iat: nowSec(), exp: nowSec() + 600, ...extra });

function sign(key: TestKey, extra: JWTPayload = {}, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims(extra))
    .setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid, ...header })
    .sign(key.privateKey);
}

const encodeJson = (value: unknown): string => base64url.encode(JSON.stringify(value));

/** A compact JWS over exactly these segments, signed with node:crypto (ES* in IEEE P1363 form). */
function signSegments(key: TestKey, headerSegment: string, payloadSegment: string): string {
  const input = `${headerSegment}.${payloadSegment}`;
  const privateKey = KeyObject.from(key.privateKey as Parameters<typeof KeyObject.from>[0]);
  const hash = key.alg === 'EdDSA' ? null : `sha${key.alg.slice(2)}`;
  const signature = nodeSign(hash, Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

function handMade(key: TestKey, header: Record<string, unknown>, payload: unknown = claims()): string {
  return signSegments(key, encodeJson({ alg: key.alg, kid: key.kid, ...header }), encodeJson(payload));
}

async function rejection(promise: Promise<unknown>): Promise<SignalError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(SignalError);
    return err as SignalError;
  }
  throw new Error('expected a rejection');
}

async function expectRejected(verifier: JwksTokenVerifier, token: string, code: string, message?: string): Promise<void> {
  const err = await rejection(verifier.verify(token));
  expect(err.code).toBe(code);
  if (message !== undefined) expect(err.message).toBe(message);
}

const ALL = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA'];
let keys: Record<string, TestKey>;
let rogue: TestKey;
let verifier: JwksTokenVerifier;

beforeAll(async () => {
  const made = await Promise.all(ALL.map((alg) => makeKey(alg, `${alg.toLowerCase()}-1`)));
  keys = Object.fromEntries(made.map((key) => [key.alg, key]));
  rogue = await makeKey('ES256', 'es256-1');
  verifier = new JwksTokenVerifier({ localJwks: { keys: made.map((key) => key.publicJwk) }, algorithms: ALL });
});

describe('every allowed algorithm', () => {
  it.each(ALL)('verifies a %s token and refuses it with one flipped signature bit', async (alg) => {
    const token = await sign(keys[alg] as TestKey, { sub: `${alg}-user` });
    expect((await verifier.verify(token)).userId).toBe(`${alg}-user`);

    const dot = token.lastIndexOf('.');
    const signature = Buffer.from(token.slice(dot + 1), 'base64url');
    signature[5] = (signature[5] as number) ^ 0x01;
    const tampered = `${token.slice(0, dot)}.${signature.toString('base64url')}`;
    await expectRejected(verifier, tampered, 'ERR_TOKEN_INVALID', 'signature verification failed');
  });

  it('refuses a token that is fine but not of an algorithm in this verifier\'s list', async () => {
    const narrow = new JwksTokenVerifier({ localJwks: { keys: [keys.ES256!.publicJwk, keys.PS256!.publicJwk] }, algorithms: ['ES256'] });
    await expectRejected(narrow, await sign(keys.PS256!), 'ERR_TOKEN_ALGORITHM');
  });
});

describe('ES signatures', () => {
  it('refuses an ES256 signature of the wrong length, including the DER form', async () => {
    const token = await sign(keys.ES256!);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const raw = Buffer.from(signature, 'base64url');
    const der = nodeSign('sha256', Buffer.from(`${header}.${payload}`), {
      key: KeyObject.from(keys.ES256!.privateKey as Parameters<typeof KeyObject.from>[0]),
      dsaEncoding: 'der',
    });
    for (const bad of [raw.subarray(0, 63), Buffer.concat([raw, Buffer.from([0])]), der, Buffer.alloc(0)]) {
      await expectRejected(verifier, `${header}.${payload}.${bad.toString('base64url')}`, 'ERR_TOKEN_INVALID', 'signature verification failed');
    }
  });

  it('refuses an ES512 signature padded to the ES384 length and the reverse', async () => {
    const es512 = (await sign(keys.ES512!)).split('.') as [string, string, string];
    const es384 = (await sign(keys.ES384!)).split('.') as [string, string, string];
    const cut = Buffer.from(es512[2], 'base64url').subarray(0, 96).toString('base64url');
    const grown = Buffer.concat([Buffer.from(es384[2], 'base64url'), Buffer.alloc(36)]).toString('base64url');
    await expectRejected(verifier, `${es512[0]}.${es512[1]}.${cut}`, 'ERR_TOKEN_INVALID', 'signature verification failed');
    await expectRejected(verifier, `${es384[0]}.${es384[1]}.${grown}`, 'ERR_TOKEN_INVALID', 'signature verification failed');
  });
});

describe('verifyJwsSignature: keys that do not fit the algorithm', () => {
  const input = `${encodeJson({ alg: 'ES256' })}.${encodeJson(claims())}`;

  function expectUnfit(alg: string, key: CryptoKey): void {
    let thrown: unknown;
    try {
      verifyJwsSignature(alg, key, input, 'AAAA');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(TokenInvalidError);
    expect((thrown as TokenInvalidError).message).toBe('token verification failed');
  }

  it('refuses a P-384 or P-521 key for ES256 and a P-256 key for ES384', () => {
    expectUnfit('ES256', keys.ES384!.publicKey);
    expectUnfit('ES256', keys.ES512!.publicKey);
    expectUnfit('ES384', keys.ES256!.publicKey);
    expectUnfit('ES512', keys.ES384!.publicKey);
  });

  it('refuses keys of another type altogether', () => {
    expectUnfit('ES256', keys.RS256!.publicKey);
    expectUnfit('RS256', keys.ES256!.publicKey);
    expectUnfit('PS256', keys.EdDSA!.publicKey);
    expectUnfit('EdDSA', keys.ES256!.publicKey);
  });

  it('refuses a private key where a public one belongs', () => {
    expectUnfit('ES256', keys.ES256!.privateKey);
  });

  it('refuses an RSA key under 2048 bits for RS256 and PS256', async () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = { ...(publicKey.export({ format: 'jwk' }) as JWK), alg: 'RS256' };
    const short = await crypto.subtle.importKey('jwk', jwk as NodeJwk, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['verify']);
    expectUnfit('RS256', short as CryptoKey);
    const pss = await crypto.subtle.importKey('jwk', { ...jwk, alg: 'PS256' } as NodeJwk, { name: 'RSA-PSS', hash: 'SHA-256' }, true, ['verify']);
    expectUnfit('PS256', pss as CryptoKey);
  });

  it('answers an unknown algorithm as an algorithm error', () => {
    expect(() => verifyJwsSignature('HS256', keys.ES256!.publicKey, input, 'AAAA')).toThrow(TokenAlgorithmError);
  });

  it('accepts a PS256 signature made with the PSS salt length of RFC 7518 only', async () => {
    const key = keys.PS256!;
    const signingInput = `${encodeJson({ alg: 'PS256' })}.${encodeJson(claims())}`;
    const privateKey = KeyObject.from(key.privateKey as Parameters<typeof KeyObject.from>[0]);
    const signWith = (saltLength: number): string =>
      nodeSign('sha256', Buffer.from(signingInput), { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }).toString('base64url');
    expect(verifyJwsSignature('PS256', key.publicKey, signingInput, signWith(32))).toBe(true);
    expect(verifyJwsSignature('PS256', key.publicKey, signingInput, signWith(20))).toBe(false);
    // PKCS#1 v1.5 bytes are not a PSS signature, nor the reverse.
    const pkcs1 = nodeSign('sha256', Buffer.from(signingInput), privateKey).toString('base64url');
    expect(verifyJwsSignature('PS256', key.publicKey, signingInput, pkcs1)).toBe(false);
  });
});

describe('the strict split', () => {
  it('refuses the wrong number of segments and characters outside base64url', async () => {
    const token = await sign(keys.ES256!);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    for (const bad of [
      `${header}.${payload}`,
      `${token}.`,
      `${header}.${payload}.${signature}.${signature}`,
      `.${payload}.${signature}`,
      `${header}..${signature}`,
      `${header}.${payload}.${signature}=`,
      `${header}=.${payload}.${signature}`,
      `${header}.${payload}+.${signature}`,
      ` ${token}`,
      `${token}\n`,
    ]) {
      await expectRejected(verifier, bad, 'ERR_TOKEN_INVALID', 'malformed token');
    }
  });

  it('refuses non-canonical base64url in the header and the signature', async () => {
    const token = await sign(keys.ES256!);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    // 64 bytes end in a 2-character group whose last character carries 4 unused bits.
    const lastSig = signature.at(-1) as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sibling = alphabet[alphabet.indexOf(lastSig) ^ 1] as string;
    expect(Buffer.from(signature.slice(0, -1) + sibling, 'base64url').equals(Buffer.from(signature, 'base64url'))).toBe(true);
    await expectRejected(verifier, `${header}.${payload}.${signature.slice(0, -1)}${sibling}`, 'ERR_TOKEN_INVALID', 'malformed token');

    const headerBytes = Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'es256-1', typ: 'JWT' }));
    expect(headerBytes.length % 3).not.toBe(0);
    const canonical = headerBytes.toString('base64url');
    const last = canonical.at(-1) as string;
    const nonCanonical = canonical.slice(0, -1) + (alphabet[alphabet.indexOf(last) ^ 1] as string);
    expect(Buffer.from(nonCanonical, 'base64url').equals(headerBytes)).toBe(true);
    await expectRejected(verifier, signSegments(keys.ES256!, nonCanonical, payload), 'ERR_TOKEN_INVALID', 'malformed token');
    // The same header, canonically encoded and signed, is fine.
    expect((await verifier.verify(signSegments(keys.ES256!, canonical, payload))).userId).toBe('user-1');
  });

  it('refuses a header that is not a JSON object in UTF-8, or has no usable alg', async () => {
    const payload = encodeJson(claims());
    const segments = [
      base64url.encode('["ES256"]'),
      base64url.encode('null'),
      base64url.encode('{"alg":"ES256"'),
      base64url.encode(Buffer.from([0x7b, 0xff, 0x7d])),
      encodeJson({ kid: 'es256-1' }),
      encodeJson({ alg: 256, kid: 'es256-1' }),
      encodeJson({ alg: '', kid: 'es256-1' }),
      encodeJson({ alg: ['ES256'], kid: 'es256-1' }),
    ];
    for (const header of segments) {
      await expectRejected(verifier, signSegments(keys.ES256!, header, payload), 'ERR_TOKEN_INVALID', 'malformed token');
    }
  });

  it('refuses an algorithm outside the allow-list before looking for a key, whatever the signature', async () => {
    for (const alg of ['none', 'HS256', 'ES256K', 'RSA-OAEP', 'Ed25519', '__proto__', 'es256']) {
      const token = `${encodeJson({ alg, kid: 'es256-1' })}.${encodeJson(claims())}.`;
      await expectRejected(verifier, token, 'ERR_TOKEN_ALGORITHM');
    }
  });
});

describe('header extensions and key hints', () => {
  it('refuses any crit header, even one jose would accept', async () => {
    const key = keys.ES256!;
    await expectRejected(verifier, handMade(key, { crit: ['exp'], exp: 1 }), 'ERR_TOKEN_INVALID', 'unsupported token');
    await expectRejected(verifier, handMade(key, { crit: ['b64'], b64: true }), 'ERR_TOKEN_INVALID', 'unsupported token');
    await expectRejected(verifier, handMade(key, { crit: [] }), 'ERR_TOKEN_INVALID', 'malformed token');
    await expectRejected(verifier, handMade(key, { crit: 'b64' }), 'ERR_TOKEN_INVALID', 'malformed token');
  });

  it('refuses a b64 header with or without crit', async () => {
    await expectRejected(verifier, handMade(keys.ES256!, { b64: true }), 'ERR_TOKEN_INVALID', 'unsupported token');
    await expectRejected(verifier, handMade(keys.ES256!, { b64: false }), 'ERR_TOKEN_INVALID', 'unsupported token');
  });

  it('ignores an embedded jwk: a token signed by the key it carries is refused', async () => {
    const token = handMade(rogue, { jwk: rogue.publicJwk });
    await expectRejected(verifier, token, 'ERR_TOKEN_INVALID', 'signature verification failed');
    const noKid = handMade(rogue, { kid: undefined, jwk: rogue.publicJwk });
    await expectRejected(new JwksTokenVerifier({ localJwks: { keys: [keys.ES256!.publicJwk] }, algorithms: ['ES256'] }), noKid, 'ERR_TOKEN_INVALID', 'signature verification failed');
  });

  describe('with a key set server', () => {
    let server: JwksServer;
    beforeAll(async () => {
      server = await startJwksServer({ keys: [rogue.publicJwk] });
    });
    afterAll(async () => {
      await server.close();
    });

    it('never fetches a jku or x5u', async () => {
      const local = new JwksTokenVerifier({ localJwks: { keys: [keys.ES256!.publicJwk] }, algorithms: ['ES256'] });
      const before = server.fetches;
      await expectRejected(local, handMade(rogue, { jku: server.jwksUrl }), 'ERR_TOKEN_INVALID', 'signature verification failed');
      await expectRejected(local, handMade(rogue, { kid: 'other', x5u: server.jwksUrl }), 'ERR_TOKEN_INVALID');
      expect(server.fetches).toBe(before);
    });
  });
});

describe('claims come from the payload segment that was signed', () => {
  it('checks the signature before any claim: an expired forged token is a forgery', async () => {
    const token = await sign(rogue, { exp: nowSec() - 3600 });
    await expectRejected(verifier, token, 'ERR_TOKEN_INVALID', 'signature verification failed');
  });

  it('refuses a signed payload that is not a JSON object', async () => {
    const key = keys.ES256!;
    const header = encodeJson({ alg: 'ES256', kid: key.kid });
    for (const payload of [encodeJson([1]), encodeJson('user'), base64url.encode('{"sub":'), base64url.encode(Buffer.from([0xc3, 0x28]))]) {
      await expectRejected(verifier, signSegments(key, header, payload), 'ERR_TOKEN_INVALID', 'malformed token');
    }
  });

  it('applies exp, nbf, iss and aud by jose\'s rules', async () => {
    const strict = new JwksTokenVerifier({
      localJwks: { keys: [keys.ES256!.publicJwk] },
      algorithms: ['ES256'],
      issuer: 'https://id.example.test',
      audience: 'signal',
      clockToleranceSec: 0,
    });
    const good = { iss: 'https://id.example.test', aud: 'signal' };
    expect((await strict.verify(await sign(keys.ES256!, good))).userId).toBe('user-1');
    await expectRejected(strict, await sign(keys.ES256!, { ...good, exp: nowSec() - 1 }), 'ERR_TOKEN_EXPIRED', 'token expired');
    await expectRejected(strict, await sign(keys.ES256!, { ...good, nbf: nowSec() + 60 }), 'ERR_TOKEN_EXPIRED', 'token not yet valid');
    await expectRejected(strict, await sign(keys.ES256!, { ...good, exp: 'tomorrow' as unknown as number }), 'ERR_TOKEN_INVALID', 'unexpected "exp" claim');
    await expectRejected(strict, await sign(keys.ES256!, { aud: 'signal' }), 'ERR_TOKEN_INVALID', 'unexpected "iss" claim');
    await expectRejected(strict, await sign(keys.ES256!, { ...good, aud: ['other'] }), 'ERR_TOKEN_INVALID', 'unexpected "aud" claim');
  });
});

describe('key rotation under one kid', () => {
  it('accepts tokens from either key sharing a kid and refuses a third', async () => {
    const old = await makeKey('ES256', 'rotating');
    const fresh = await makeKey('ES256', 'rotating');
    const impostor = await makeKey('ES256', 'rotating');
    const rotating = new JwksTokenVerifier({ localJwks: { keys: [old.publicJwk, fresh.publicJwk] }, algorithms: ['ES256'] });
    expect((await rotating.verify(await sign(old, { sub: 'old' }))).userId).toBe('old');
    expect((await rotating.verify(await sign(fresh, { sub: 'fresh' }))).userId).toBe('fresh');
    await expectRejected(rotating, await sign(impostor), 'ERR_TOKEN_INVALID', 'signature verification failed');
  });

  it('checks the claims once the right key is found, not per candidate', async () => {
    const old = await makeKey('RS256', 'rsa-rotating');
    const fresh = await makeKey('RS256', 'rsa-rotating');
    const rotating = new JwksTokenVerifier({ localJwks: { keys: [old.publicJwk, fresh.publicJwk] }, algorithms: ['RS256'] });
    await expectRejected(rotating, await sign(fresh, { exp: nowSec() - 3600 }), 'ERR_TOKEN_EXPIRED', 'token expired');
  });

  it('does the same with a remote key set, one fetch for all', async () => {
    const old = await makeKey('EdDSA', 'ed-rotating');
    const fresh = await makeKey('EdDSA', 'ed-rotating');
    const server = await startJwksServer({ keys: [old.publicJwk, fresh.publicJwk] });
    try {
      const remote = new JwksTokenVerifier({ jwksUrl: server.jwksUrl, algorithms: ['EdDSA'] });
      for (let round = 0; round < 3; round += 1) {
        expect((await remote.verify(await sign(old, { sub: 'old' }))).userId).toBe('old');
        expect((await remote.verify(await sign(fresh, { sub: 'fresh' }))).userId).toBe('fresh');
      }
      expect(server.fetches).toBe(1);
    } finally {
      await server.close();
    }
  });
});

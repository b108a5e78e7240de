import { createHmac, createPublicKey } from 'node:crypto';
import type { JsonWebKey as NodeJwk } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64url, exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import {
  JwksTokenVerifier,
  parseAlgorithmList,
  SUPPORTED_ALGORITHMS,
} from '../../src/adapters/jwks/jwks-token-verifier.ts';
import type { JwksTokenVerifierOptions } from '../../src/adapters/jwks/jwks-token-verifier.ts';
import { SignalError } from '../../src/domain/errors.ts';
import { closedPort, startJwksServer } from '../fixtures/jwks-server.ts';
import type { JwksServer } from '../fixtures/jwks-server.ts';

interface TestKey {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function makeKey(alg: string, kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicJwk };
}

const nowSec = (): number => Math.floor(Date.now() / 1000);

function sign(
  key: TestKey,
  claims: JWTPayload = {},
  header: { kid?: string | null; alg?: string } = {},
): Promise<string> {
  const kid = header.kid === undefined ? key.kid : header.kid;
  const body: JWTPayload = { sub: 'user-1', iat: nowSec(), exp: nowSec() + 600, ...claims };
  return new SignJWT(body)
    .setProtectedHeader({ alg: header.alg ?? key.alg, typ: 'JWT', ...(kid === null ? {} : { kid }) })
    .sign(key.privateKey);
}

function encodeJson(value: unknown): string {
  return base64url.encode(JSON.stringify(value));
}

/** Builds a compact JWS by hand, HMAC-SHA-256 over the signing input with `secret`. */
function hs256(header: object, payload: object, secret: string | Buffer): string {
  const input = `${encodeJson(header)}.${encodeJson(payload)}`;
  const signature = createHmac('sha256', secret).update(input).digest('base64url');
  return `${input}.${signature}`;
}

function publicPem(jwk: JWK): string {
  return createPublicKey({ key: jwk as NodeJwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
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

async function expectCode(verifier: JwksTokenVerifier, token: string, code: string): Promise<SignalError> {
  const err = await rejection(verifier.verify(token));
  expect(err.code).toBe(code);
  // The reason is for logs and peers; it must never echo the credential.
  if (token.length > 0) expect(err.message).not.toContain(token);
  if (token.length > 20) expect(err.message).not.toContain(token.slice(-20));
  return err;
}

let server: JwksServer;
let es: TestKey;
let rs: TestKey;
let ed: TestKey;
let rogue: TestKey;

const ALLOWED = ['ES256', 'RS256', 'EdDSA'];

function verifier(options: Partial<JwksTokenVerifierOptions> = {}): JwksTokenVerifier {
  return new JwksTokenVerifier({ jwksUrl: server.jwksUrl, algorithms: ALLOWED, ...options });
}

beforeAll(async () => {
  [es, rs, ed, rogue] = await Promise.all([
    makeKey('ES256', 'es-1'),
    makeKey('RS256', 'rs-1'),
    makeKey('EdDSA', 'ed-1'),
    makeKey('ES256', 'rogue-1'),
  ]);
  server = await startJwksServer({ keys: [es.publicJwk, rs.publicJwk, ed.publicJwk] });
});

afterAll(async () => {
  await server.close();
});

describe('JwksTokenVerifier: valid tokens', () => {
  it('verifies an ES256 token to the identity in its claims', async () => {
    const exp = nowSec() + 600;
    const token = await sign(es, {
      sub: 'sub-1',
      userId: 'user-42',
      roles: [{ id: 7, identifier: 'ADMIN', priority: 2 }, { id: 'r-8', identifier: 'USER' }, { bogus: true }],
      email: 'a@example.test',
      name: 'Ada',
      exp,
    });
    await expect(verifier().verify(token)).resolves.toEqual({
      userId: 'user-42',
      roles: [
        { id: '7', identifier: 'ADMIN', priority: 2 },
        { id: 'r-8', identifier: 'USER', priority: 0 },
      ],
      email: 'a@example.test',
      name: 'Ada',
      expiresAt: exp * 1000,
    });
  });

  it('verifies RS256 and EdDSA tokens from the same key set', async () => {
    const v = verifier();
    expect((await v.verify(await sign(rs, { sub: 'rs-user' }))).userId).toBe('rs-user');
    expect((await v.verify(await sign(ed, { sub: 'ed-user' }))).userId).toBe('ed-user');
  });

  it('accepts a token expired within the clock tolerance', async () => {
    const token = await sign(es, { exp: nowSec() - 10 });
    expect((await verifier({ clockToleranceSec: 30 }).verify(token)).userId).toBe('user-1');
  });

  it('accepts the configured issuer and audience', async () => {
    const token = await sign(es, { iss: 'https://id.example.test', aud: ['signal', 'other'] });
    const v = verifier({ issuer: 'https://id.example.test', audience: 'signal' });
    expect((await v.verify(token)).userId).toBe('user-1');
  });

  it('finds the key when the token has no kid but several keys could fit', async () => {
    const second = await makeKey('ES256', 'unused');
    const local = new JwksTokenVerifier({
      localJwks: {
        keys: [
          { ...es.publicJwk, kid: undefined },
          { ...second.publicJwk, kid: undefined },
        ],
      },
      algorithms: ['ES256'],
    });
    expect((await local.verify(await sign(second, {}, { kid: null }))).userId).toBe('user-1');
    expect((await local.verify(await sign(es, {}, { kid: null }))).userId).toBe('user-1');
    await expectCode(local, await sign(rogue, {}, { kid: null }), 'ERR_TOKEN_INVALID');
  });

  it('fetches the key set once and serves later verifications from its cache', async () => {
    const v = verifier();
    const before = server.fetches;
    for (let i = 0; i < 3; i += 1) await v.verify(await sign(es));
    expect(server.fetches - before).toBe(1);
  });
});

describe('JwksTokenVerifier: forged and unusable tokens', () => {
  it('rejects a token signed by another key under a known kid', async () => {
    await expectCode(verifier(), await sign(rogue, {}, { kid: 'es-1' }), 'ERR_TOKEN_INVALID');
  });

  it('rejects a token whose kid is not in the key set', async () => {
    const err = await expectCode(verifier(), await sign(rogue), 'ERR_TOKEN_INVALID');
    expect(err.message).toMatch(/key/);
  });

  it('rejects alg "none"', async () => {
    const token = `${encodeJson({ alg: 'none', typ: 'JWT' })}.${encodeJson({ sub: 'admin', exp: nowSec() + 600 })}.`;
    await expectCode(verifier(), token, 'ERR_TOKEN_ALGORITHM');
  });

  it('rejects HS256 signed with the public key (PEM or JWK bytes) as the HMAC secret', async () => {
    const pem = publicPem(es.publicJwk);
    const claims = { sub: 'admin', exp: nowSec() + 600 };
    const header = { alg: 'HS256', typ: 'JWT', kid: 'es-1' };
    const v = verifier();
    await expectCode(v, hs256(header, claims, pem), 'ERR_TOKEN_ALGORITHM');
    await expectCode(v, hs256(header, claims, JSON.stringify(es.publicJwk)), 'ERR_TOKEN_ALGORITHM');
    await expectCode(v, hs256({ ...header, kid: 'rs-1' }, claims, publicPem(rs.publicJwk)), 'ERR_TOKEN_ALGORITHM');
  });

  it('rejects an expired token', async () => {
    const err = await expectCode(verifier(), await sign(es, { exp: nowSec() - 120 }), 'ERR_TOKEN_EXPIRED');
    expect(err.message).toBe('token expired');
  });

  it('rejects a token that is not yet valid (nbf)', async () => {
    const err = await expectCode(verifier(), await sign(es, { nbf: nowSec() + 3600 }), 'ERR_TOKEN_EXPIRED');
    expect(err.message).toBe('token not yet valid');
  });

  it('rejects a wrong issuer when one is configured', async () => {
    const token = await sign(es, { iss: 'https://evil.example.test' });
    await expectCode(verifier({ issuer: 'https://id.example.test' }), token, 'ERR_TOKEN_INVALID');
    await expectCode(verifier({ issuer: 'https://id.example.test' }), await sign(es), 'ERR_TOKEN_INVALID');
  });

  it('rejects a wrong audience when one is configured', async () => {
    const token = await sign(es, { aud: 'someone-else' });
    const err = await expectCode(verifier({ audience: 'signal' }), token, 'ERR_TOKEN_INVALID');
    expect(err.message).toContain('aud');
  });

  it('rejects an algorithm outside the allow-list', async () => {
    await expectCode(verifier({ algorithms: ['ES256'] }), await sign(rs), 'ERR_TOKEN_ALGORITHM');
  });

  it('rejects garbage, empty and oversized input as invalid', async () => {
    const v = verifier({ maxTokenLength: 1024 });
    await expectCode(v, 'not-a-jwt', 'ERR_TOKEN_INVALID');
    await expectCode(v, 'a.b.c', 'ERR_TOKEN_INVALID');
    await expectCode(v, '', 'ERR_TOKEN_INVALID');
    const oversized = await sign(es, { padding: 'x'.repeat(2000) });
    const err = await expectCode(v, oversized, 'ERR_TOKEN_INVALID');
    expect(err.message).toBe('token too long');
    await expectCode(verifier(), 'e'.repeat(8193), 'ERR_TOKEN_INVALID');
  });

  it('rejects a verified token that names no user', async () => {
    const token = await sign(es, { sub: undefined, userId: { nested: 'no' } });
    const err = await expectCode(verifier(), token, 'ERR_TOKEN_INVALID');
    expect(err.message).toBe('token has no user id');
  });
});

describe('JwksTokenVerifier: key set failures', () => {
  it('reports a key set that refuses connections as unavailable, quickly', async () => {
    const v = verifier({ jwksUrl: `http://127.0.0.1:${await closedPort()}/jwks.json` });
    const started = Date.now();
    await expectCode(v, await sign(es), 'ERR_JWKS_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('reports a key set that never answers as unavailable within a bound', async () => {
    const v = verifier({ jwksUrl: server.hangUrl, timeoutMs: 500 });
    const started = Date.now();
    await expectCode(v, await sign(es), 'ERR_JWKS_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('reports a key set whose body stalls after the headers as unavailable within a bound', async () => {
    const v = verifier({ jwksUrl: server.stallUrl, timeoutMs: 500 });
    const started = Date.now();
    const err = await expectCode(v, await sign(es), 'ERR_JWKS_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(4000);
    expect(err.message).toContain('timed out');
  });

  it('reports a key set answering with an error status as unavailable', async () => {
    await expectCode(verifier({ jwksUrl: server.errorUrl }), await sign(es), 'ERR_JWKS_UNAVAILABLE');
  });
});

describe('JwksTokenVerifier: configuration', () => {
  it('refuses HMAC, none and unknown algorithms in its allow-list', () => {
    for (const alg of ['HS256', 'none', 'ES999']) {
      expect(() => verifier({ algorithms: [alg] })).toThrow(alg);
    }
    expect(() => verifier({ algorithms: [] })).toThrow();
  });

  it('needs exactly one of a remote URL and a local key set', () => {
    expect(() => new JwksTokenVerifier({ algorithms: ALLOWED })).toThrow();
    expect(
      () => new JwksTokenVerifier({ algorithms: ALLOWED, jwksUrl: server.jwksUrl, localJwks: { keys: [] } }),
    ).toThrow();
    expect(() => new JwksTokenVerifier({ algorithms: ALLOWED, jwksUrl: 'file:///etc/jwks.json' })).toThrow();
  });
});

describe('parseAlgorithmList', () => {
  it('parses the default list, trimming and de-duplicating', () => {
    expect(parseAlgorithmList('ES256,RS256,EdDSA')).toEqual(['ES256', 'RS256', 'EdDSA']);
    expect(parseAlgorithmList(' ES256 , ES256,PS512 ')).toEqual(['ES256', 'PS512']);
    for (const alg of SUPPORTED_ALGORITHMS) expect(parseAlgorithmList(alg)).toEqual([alg]);
  });

  it('rejects none, HMAC and unknown entries, naming the entry', () => {
    expect(() => parseAlgorithmList('ES256,none')).toThrow(/"none"/);
    expect(() => parseAlgorithmList('NONE')).toThrow(/"NONE"/);
    expect(() => parseAlgorithmList('RS256,HS256')).toThrow(/"HS256"/);
    expect(() => parseAlgorithmList('hs512')).toThrow(/"hs512"/);
    expect(() => parseAlgorithmList('ES256,FOO256')).toThrow(/"FOO256"/);
    expect(() => parseAlgorithmList(' , ')).toThrow(/empty/);
  });
});

import { createHmac, createPrivateKey, createSign, randomBytes } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';

/**
 * The identity service as the attacker sees it: its public key set is
 * public. Every case here is a token the service must refuse; `valid` is the
 * control that must be accepted.
 */
export const ISSUER = 'https://identity.reliability.test';
export const AUDIENCE = 'signal-reliability';
export const KID = 'reliability-key-1';

export interface Issuer {
  publicJwk: JWK;
  /** The public key as PEM (SPKI): what an HMAC confusion attack uses as the secret. */
  publicPem: string;
  /** Signs with the real private key (claims default to a valid set for `userId`). */
  sign(claims?: JWTPayload, header?: Record<string, unknown>): Promise<string>;
  /** Signs any two base64url parts with the real key (jose refuses payloads that are not JSON). */
  signRaw(headerPart: string, payloadPart: string): string;
}

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

export async function createIssuer(): Promise<Issuer> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid: KID, alg: 'ES256', use: 'sig' };
  const nodeKey = createPrivateKey({ key: (await exportJWK(privateKey)) as never, format: 'jwk' });
  return {
    publicJwk,
    publicPem: await exportSPKI(publicKey),
    sign: (claims, header) => signWith(privateKey, claims, header),
    signRaw: (headerPart, payloadPart) => {
      const input = `${headerPart}.${payloadPart}`;
      return `${input}.${createSign('sha256').update(input).sign({ key: nodeKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    },
  };
}

export function validClaims(userId = 'attack-target', overrides: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return { userId, sub: userId, iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 3600, ...overrides };
}

async function signWith(key: SigningKey, claims: JWTPayload = validClaims(), header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: KID, typ: 'JWT', ...header } as never).sign(key);
}

const part = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

function hmacToken(secret: string | Buffer, alg: 'HS256' | 'HS512', claims: JWTPayload): string {
  const unsigned = `${part({ alg, typ: 'JWT', kid: KID })}.${part(claims)}`;
  const mac = createHmac(alg === 'HS256' ? 'sha256' : 'sha512', secret).update(unsigned).digest('base64url');
  return `${unsigned}.${mac}`;
}

export interface ForgedCase {
  name: string;
  make(): Promise<string>;
}

/** Tokens refused for their signature, algorithm, key or claims. */
export async function forgedCases(issuer: Issuer, attackerJwksUrl: string): Promise<ForgedCase[]> {
  const other = await generateKeyPair('ES256', { extractable: true });
  const rsa = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
  const attackerJwk = { ...(await exportJWK(other.publicKey)), alg: 'ES256' };
  const now = Math.floor(Date.now() / 1000);
  const claims = validClaims();
  const valid = await issuer.sign();
  const [validHeader, validPayload, validSignature] = valid.split('.') as [string, string, string];
  return [
    { name: 'alg none, no signature', make: async () => `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.` },
    { name: 'alg "None" with a real signature kept', make: async () => `${part({ alg: 'None', typ: 'JWT', kid: KID })}.${validPayload}.${validSignature}` },
    { name: 'HS256 keyed with the public key (PEM)', make: async () => hmacToken(issuer.publicPem, 'HS256', claims) },
    { name: 'HS512 keyed with the public JWK text', make: async () => hmacToken(JSON.stringify(issuer.publicJwk), 'HS512', claims) },
    { name: 'unknown kid, signed by another key', make: () => signWith(other.privateKey, claims, { kid: `unknown-${randomBytes(4).toString('hex')}` }) },
    { name: 'the right kid, signed by another key', make: () => signWith(other.privateKey, claims) },
    { name: 'no kid, signed by another key', make: () => new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).sign(other.privateKey) },
    { name: 'attacker key embedded in the header (jwk)', make: () => signWith(other.privateKey, claims, { kid: undefined, jwk: attackerJwk }) },
    { name: 'attacker key set linked from the header (jku)', make: () => signWith(other.privateKey, claims, { kid: 'attacker', jku: attackerJwksUrl }) },
    { name: 'RS256 signed by an unknown RSA key under the real kid', make: () => new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: KID }).sign(rsa.privateKey) },
    { name: 'header says ES384 over an ES256 signature', make: async () => `${part({ alg: 'ES384', kid: KID })}.${validPayload}.${validSignature}` },
    { name: 'payload swapped under a valid signature', make: async () => `${validHeader}.${part(validClaims('someone-else'))}.${validSignature}` },
    { name: 'signature stripped', make: async () => `${validHeader}.${validPayload}.` },
    { name: 'expired an hour ago', make: () => issuer.sign(validClaims('attack-target', { exp: now - 3600 })) },
    { name: 'expired two minutes ago (past the clock tolerance)', make: () => issuer.sign(validClaims('attack-target', { exp: now - 120 })) },
    { name: 'not valid before an hour from now (nbf)', make: () => issuer.sign(validClaims('attack-target', { nbf: now + 3600 })) },
    { name: 'wrong issuer', make: () => issuer.sign(validClaims('attack-target', { iss: 'https://evil.test' })) },
    { name: 'no issuer', make: () => issuer.sign(validClaims('attack-target', { iss: undefined })) },
    { name: 'wrong audience', make: () => issuer.sign(validClaims('attack-target', { aud: 'another-service' })) },
    { name: 'no audience', make: () => issuer.sign(validClaims('attack-target', { aud: undefined })) },
    { name: 'audience list without ours', make: () => issuer.sign(validClaims('attack-target', { aud: ['a', 'b'] })) },
    { name: 'no userId and no sub', make: () => issuer.sign(validClaims('attack-target', { userId: undefined, sub: undefined })) },
    { name: 'blank userId and sub', make: () => issuer.sign(validClaims('attack-target', { userId: '  ', sub: ' ' })) },
    { name: 'unknown critical header', make: async () => issuer.signRaw(part({ alg: 'ES256', kid: KID, crit: ['x-unknown'], 'x-unknown': true }), part(claims)) },
    { name: 'payload that is not JSON', make: async () => issuer.signRaw(part({ alg: 'ES256', kid: KID }), part('not json')) },
    { name: 'garbage', make: async () => 'not-a-jwt' },
    { name: 'three empty parts', make: async () => '..' },
    { name: 'the token repeated twice', make: async () => `${valid}.${valid}` },
  ];
}

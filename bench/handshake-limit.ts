import { createECDH, createPublicKey, ECDH, hkdfSync, randomBytes, verify as verifySignature, type KeyObject } from 'node:crypto';
import { createInterface } from 'node:readline';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWK } from 'jose';
import { JwksTokenVerifier } from '../src/adapters/jwks/jwks-token-verifier.ts';
import { acceptHandshake, decodePublicKey } from '../src/domain/crypto-session.ts';
import { reply } from './lib/server-commands.ts';

/**
 * The LIMIT of connection admission: the server-side work no implementation
 * of this protocol can skip, in one process, in a tight loop, with no
 * network: verify the ES256 JWT (signature with node:crypto, synchronously;
 * header, `exp` and `iss` checked), decode and check the client's P-256
 * point, generate the server's ephemeral key pair, derive the shared secret,
 * draw a salt and HKDF-SHA-256 the session key.
 *
 * Commands on stdin, one JSON reply per line on stdout (as the bench servers):
 *   `run <ms>`     the tight loop for that long: `{"bench":"result","result":{count,elapsedMs}}`
 *   `breakdown <ms>` per-operation costs of each step (about <ms> each), and of signal's own code for the same steps
 *   `quit`         exit (stdin closing too)
 *
 * Environment: BENCH_JWKS (the public key set), BENCH_ISSUER, BENCH_TOKENS
 * and BENCH_CLIENT_KEYS (JSON arrays: tokens and base64 client public keys,
 * used round-robin; a client's key generation is the client's work, not
 * the server's), BENCH_ECDH_INFO.
 */
const jwks = JSON.parse(process.env.BENCH_JWKS ?? '{"keys":[]}') as JSONWebKeySet;
const issuer = process.env.BENCH_ISSUER ?? '';
const tokens = JSON.parse(process.env.BENCH_TOKENS ?? '[]') as string[];
const clientKeys = JSON.parse(process.env.BENCH_CLIENT_KEYS ?? '[]') as string[];
const info = process.env.BENCH_ECDH_INFO ?? 'ignis-ecdh-p256-aes-256-gcm-v1';
if (jwks.keys.length !== 1 || tokens.length === 0 || clientKeys.length === 0) throw new Error('handshake-limit: BENCH_JWKS, BENCH_TOKENS and BENCH_CLIENT_KEYS are required');
const jwk = jwks.keys[0] as JWK;
const publicKey: KeyObject = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });

function verifyToken(token: string, nowSec: number): string {
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  if (first <= 0 || second <= first) throw new Error('malformed token');
  const header = JSON.parse(Buffer.from(token.slice(0, first), 'base64url').toString('utf8')) as { alg?: unknown; kid?: unknown };
  if (header.alg !== 'ES256' || header.kid !== jwk.kid) throw new Error('unexpected header');
  const signature = Buffer.from(token.slice(second + 1), 'base64url');
  if (!verifySignature('sha256', Buffer.from(token.slice(0, second), 'latin1'), { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)) {
    throw new Error('bad signature');
  }
  const claims = JSON.parse(Buffer.from(token.slice(first + 1, second), 'base64url').toString('utf8')) as { exp?: unknown; iss?: unknown; userId?: unknown };
  if (typeof claims.exp !== 'number' || claims.exp <= nowSec || claims.iss !== issuer || typeof claims.userId !== 'string') throw new Error('bad claims');
  return claims.userId;
}

function decodeClientKey(text: string): Buffer {
  if (text.length !== 88) throw new Error('bad key length');
  const point = Buffer.from(text, 'base64');
  if (point.length !== 65 || point[0] !== 4 || point.toString('base64') !== text) throw new Error('bad key');
  return point;
}

/** One admission's server-side crypto; returns what goes into `connected` so nothing is optimised away. */
function admit(index: number, nowSec: number): number {
  const userId = verifyToken(tokens[index % tokens.length]!, nowSec);
  const point = decodeClientKey(clientKeys[index % clientKeys.length]!);
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const shared = ecdh.computeSecret(point); // rejects a point off the curve
  const salt = randomBytes(32);
  const key = hkdfSync('sha256', shared, salt, info, 32);
  const serverPublicKey = ecdh.getPublicKey('base64', 'uncompressed');
  return userId.length + key.byteLength + serverPublicKey.length + salt.length;
}

function runLoop(ms: number): { count: number; elapsedMs: number } {
  const started = performance.now();
  const nowSec = Math.floor(Date.now() / 1000);
  let count = 0;
  let sink = 0;
  while (performance.now() - started < ms) {
    for (let batch = 0; batch < 16; batch++) sink += admit(count++, nowSec);
  }
  if (sink === 0) throw new Error('unreachable');
  return { count, elapsedMs: performance.now() - started };
}

/** µs of wall time and of process CPU (all threads) per call, over about `ms`. */
function timeSync(ms: number, fn: (index: number) => unknown): { wallUs: number; cpuUs: number } {
  for (let index = 0; index < 50; index++) fn(index);
  const cpu = process.cpuUsage();
  const started = performance.now();
  let count = 0;
  while (performance.now() - started < ms) for (let batch = 0; batch < 8; batch++) fn(count++);
  const used = process.cpuUsage(cpu);
  return { wallUs: ((performance.now() - started) * 1000) / count, cpuUs: (used.user + used.system) / count };
}

async function timeAsync(ms: number, inFlight: number, fn: (index: number) => Promise<unknown>): Promise<{ wallUs: number; cpuUs: number }> {
  for (let index = 0; index < 50; index++) await fn(index);
  const cpu = process.cpuUsage();
  const started = performance.now();
  let count = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() - started < ms) await fn(count++);
    }),
  );
  const used = process.cpuUsage(cpu);
  return { wallUs: ((performance.now() - started) * 1000) / count, cpuUs: (used.user + used.system) / count };
}

async function breakdown(ms: number): Promise<Record<string, number>> {
  const nowSec = Math.floor(Date.now() / 1000);
  const keySet = createLocalJWKSet(jwks);
  const signalVerifier = new JwksTokenVerifier({ localJwks: jwks, algorithms: ['ES256'], issuer });
  const token = (index: number): string => tokens[index % tokens.length]!;
  const clientKey = (index: number): string => clientKeys[index % clientKeys.length]!;
  const points = clientKeys.map(decodeClientKey);
  const shared = createECDH('prime256v1');
  shared.generateKeys();
  const secret = shared.computeSecret(points[0]!);
  const salt = randomBytes(32);
  const results: Record<string, { wallUs: number; cpuUs: number }> = {
    limitAdmission: timeSync(ms, (index) => admit(index, nowSec)),
    nodeVerifyEs256Sync: timeSync(ms, (index) => verifyToken(token(index), nowSec)),
    joseJwtVerifySequential: await timeAsync(ms, 1, (index) => jwtVerify(token(index), keySet, { algorithms: ['ES256'], issuer })),
    joseJwtVerify16InFlight: await timeAsync(ms, 16, (index) => jwtVerify(token(index), keySet, { algorithms: ['ES256'], issuer })),
    signalVerifierSequential: await timeAsync(ms, 1, (index) => signalVerifier.verify(token(index))),
    signalVerifier16InFlight: await timeAsync(ms, 16, (index) => signalVerifier.verify(token(index))),
    signalDecodePublicKey: timeSync(ms, (index) => decodePublicKey(clientKey(index))),
    signalAcceptHandshake: timeSync(ms, (index) => acceptHandshake(clientKey(index), info)),
    ecdhConvertKey: timeSync(ms, (index) => ECDH.convertKey(points[index % points.length]!, 'prime256v1')),
    ecdhGenerateKeys: timeSync(ms, () => createECDH('prime256v1').generateKeys()),
    ecdhComputeSecret: timeSync(ms, (index) => shared.computeSecret(points[index % points.length]!)),
    hkdfSha256: timeSync(ms, () => hkdfSync('sha256', secret, salt, info, 32)),
    randomSalt: timeSync(ms, () => randomBytes(32)),
  };
  const flat: Record<string, number> = {};
  for (const [name, { wallUs, cpuUs }] of Object.entries(results)) {
    flat[`${name}WallUs`] = Number(wallUs.toPrecision(3));
    flat[`${name}CpuUs`] = Number(cpuUs.toPrecision(3));
  }
  return flat;
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.startsWith('run ')) {
    reply({ bench: 'result', result: runLoop(Number(line.slice(4))) });
  } else if (line.startsWith('breakdown ')) {
    breakdown(Number(line.slice('breakdown '.length))).then(
      (result) => reply({ bench: 'result', result }),
      (error: unknown) => reply({ bench: 'error', message: (error as Error).message }),
    );
  } else if (line === 'quit') {
    process.exit(0);
  } else if (line.length > 0) {
    reply({ bench: 'error', message: `unknown command: ${line.slice(0, 40)}` });
  }
});
lines.on('close', () => process.exit(0));

reply({ bench: 'ready', port: 0 });

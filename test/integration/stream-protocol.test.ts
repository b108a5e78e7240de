import { createECDH, createPublicKey, generateKeyPairSync, createHmac } from 'node:crypto';
import { SignJWT, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InMemoryMembershipDirectory } from '../../src/adapters/memory/in-memory-membership-directory.ts';
import { RawClient } from '../fixtures/raw-client.ts';
import { startTestServer, type TestServer } from '../fixtures/test-server.ts';

/**
 * Every error row of the protocol, sent over a real socket to a real server,
 * checking the exact error frame and close code.
 */
const membership = new InMemoryMembershipDirectory();
membership.grant('member-1', 'merchant', '42');

let server: TestServer;
const open: RawClient[] = [];

async function client(): Promise<RawClient> {
  const next = await RawClient.open(server.url);
  open.push(next);
  return next;
}

async function connected(userId = 'u1'): Promise<RawClient> {
  const next = await client();
  const reply = await next.authenticate(await server.token(userId));
  expect(reply.event).toBe('connected');
  return next;
}

beforeAll(async () => {
  server = await startTestServer({}, { membership, session: { authTimeoutMs: 300, ratePerSecond: 20, rateBurst: 40 } });
});

afterAll(async () => {
  for (const each of open) each.close();
  await server.running.stop();
});

describe('handshake', () => {
  it('sends nothing first, then a plaintext connected frame with the server key and salt', async () => {
    const raw = await client();
    const token = await server.token('u1');
    const reply = await raw.authenticate(token);
    expect(raw.frames).toHaveLength(1);
    expect(reply.event).toBe('connected');
    expect(Object.keys(reply.data)).toEqual(['id', 'userId', 'time', 'serverPublicKey', 'salt']);
    expect(reply.data.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(reply.data.userId).toBe('u1');
    expect(new Date(reply.data.time).toISOString()).toBe(reply.data.time);
    expect(Buffer.from(reply.data.serverPublicKey, 'base64')).toHaveLength(65);
    expect(Buffer.from(reply.data.salt, 'base64')).toHaveLength(32);
    expect(reply.text.startsWith('{"event":"connected","data":{')).toBe(true);
  });

  it('uses a fresh server key and salt for every connection', async () => {
    const first = await client();
    const second = await client();
    const a = await first.authenticate(await server.token('u1'));
    const b = await second.authenticate(await server.token('u1'));
    expect(a.data.serverPublicKey).not.toBe(b.data.serverPublicKey);
    expect(a.data.salt).not.toBe(b.data.salt);
  });

  it('accepts publicKey as an alias of clientPublicKey', async () => {
    const raw = await client();
    const reply = await raw.authenticate(await server.token('u1'), { alias: true });
    expect(reply.event).toBe('connected');
    expect(raw.key).not.toBeNull();
  });

  it('encrypts everything after connected, decrypting to the original frame', async () => {
    const raw = await connected('enc-user');
    await server.running.delivery.toUser('enc-user', 'hello', { n: 1, text: 'xin chào' });
    const frame = await raw.next();
    expect(frame.event).toBe('encrypted');
    expect(Object.keys(frame.data)).toEqual(['iv', 'ct']);
    expect(Buffer.from(frame.data.iv, 'base64')).toHaveLength(12);
    expect(raw.decrypt(frame)).toEqual({ event: 'hello', data: { n: 1, text: 'xin chào' } });
  });
});

describe('error rows', () => {
  it('closes 4001 when no authenticate arrives in time', async () => {
    const raw = await client();
    expect(await raw.closed).toEqual({ code: 4001, reason: 'Authentication timeout' });
  });

  it('answers invalid JSON with "Invalid message format" and stays open', async () => {
    const raw = await client();
    raw.send('{not json');
    expect((await raw.next()).text).toBe('{"event":"error","data":{"message":"Invalid message format"}}');
    raw.send('[1,2]');
    expect((await raw.next()).data).toEqual({ message: 'Invalid message format' });
    expect(raw.isClosed).toBe(false);
  });

  it('treats a binary frame as UTF-8 text', async () => {
    const raw = await client();
    raw.socket.send(Buffer.from('{"event":"join","data":{"rooms":["a"]}}'), { binary: true });
    expect((await raw.next()).data).toEqual({ message: 'Not authenticated' });
  });

  it('answers frames before the handshake with "Not authenticated" and stays open', async () => {
    const raw = await client();
    raw.send({ event: 'join', data: { rooms: ['ws-default'] } });
    expect((await raw.next()).data).toEqual({ message: 'Not authenticated' });
    raw.send({ event: 'heartbeat' });
    raw.send({ event: 'custom' });
    expect((await raw.next()).data).toEqual({ message: 'Not authenticated' });
    expect(raw.frames).toHaveLength(2);
    expect(raw.isClosed).toBe(false);
  });

  it('answers a second authenticate with "Already authenticated" without closing', async () => {
    const raw = await connected();
    raw.send({ event: 'authenticate', data: { type: 'Bearer', token: 'x' } });
    expect((await raw.next((frame) => frame.event === 'error')).data).toEqual({ message: 'Already authenticated' });
    expect(raw.isClosed).toBe(false);
  });

  it('refuses an auth type other than Bearer with 4003', async () => {
    const raw = await client();
    raw.send({ event: 'authenticate', data: { type: 'Basic', token: await server.token('u1'), clientPublicKey: 'x' } });
    expect((await raw.next()).data).toEqual({ message: 'Authentication failed' });
    expect(await raw.closed).toEqual({ code: 4003, reason: 'Authentication failed' });
  });

  describe('forged tokens, each closed 4003 "Authentication failed"', () => {
    const header = (obj: object) => Buffer.from(JSON.stringify(obj)).toString('base64url');
    const cases: Array<[string, () => Promise<string>]> = [
      [
        'signed by another key',
        async () => {
          const { privateKey } = await generateKeyPair('ES256');
          return new SignJWT({ userId: 'u1' }).setProtectedHeader({ alg: 'ES256', kid: server.running.devIssuer?.kid }).setIssuer('signal-dev').setExpirationTime('1h').sign(privateKey);
        },
      ],
      ['alg none', async () => `${header({ alg: 'none', typ: 'JWT' })}.${header({ userId: 'u1', iss: 'signal-dev' })}.`],
      [
        'HS256 signed with the public key',
        async () => {
          const jwk = (server.running.devIssuer?.jwks().keys[0] ?? {}) as Record<string, string>;
          const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
          const unsigned = `${header({ alg: 'HS256', typ: 'JWT', kid: jwk.kid })}.${header({ userId: 'u1', iss: 'signal-dev' })}`;
          return `${unsigned}.${createHmac('sha256', pem).update(unsigned).digest('base64url')}`;
        },
      ],
      ['expired', () => server.signWithIssuerKey({ userId: 'u1', iss: 'signal-dev', exp: Math.floor(Date.now() / 1000) - 3600 })],
      ['from another issuer', () => server.signWithIssuerKey({ userId: 'u1', iss: 'someone-else', exp: Math.floor(Date.now() / 1000) + 3600 })],
      ['garbage', async () => 'not-a-jwt'],
    ];
    it.each(cases)('%s', async (_label, make) => {
      const raw = await client();
      const ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      raw.send({ event: 'authenticate', data: { type: 'Bearer', token: await make(), clientPublicKey: ecdh.getPublicKey('base64') } });
      expect((await raw.next()).text).toBe('{"event":"error","data":{"message":"Authentication failed"}}');
      expect(await raw.closed).toEqual({ code: 4003, reason: 'Authentication failed' });
    });
  });

  it('refuses a missing client key with 4004', async () => {
    const raw = await client();
    const reply = await raw.authenticate(await server.token('u1'), { publicKey: null });
    expect(reply.data).toEqual({ message: 'Encryption handshake failed' });
    expect(await raw.closed).toEqual({ code: 4004, reason: 'Encryption required' });
  });

  it.each([
    ['not base64', '%%%'],
    ['base64url', createECDH('prime256v1').generateKeys('base64url')],
    ['SPKI instead of a raw point', generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64')],
    ['a point not on the curve', Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 7)]).toString('base64')],
  ])('refuses a malformed client key (%s) with 4004', async (_label, key) => {
    const raw = await client();
    const reply = await raw.authenticate(await server.token('u1'), { publicKey: key });
    expect(reply.data).toEqual({ message: 'Encryption handshake failed' });
    expect(await raw.closed).toEqual({ code: 4004, reason: 'Encryption required' });
  });

  it('closes an oversized frame with 1009 "Message too big"', async () => {
    const raw = await connected();
    raw.send({ event: 'custom', data: 'x'.repeat(128 * 1024 + 1) });
    expect(await raw.closed).toEqual({ code: 1009, reason: 'Message too big' });
  });

  it('answers a tampered encrypted frame with "Decryption failed", then closes after repeated failures', async () => {
    const raw = await connected();
    const good = raw.encryptedFrame({ event: 'join', data: { rooms: ['ws-default'] }, id: 'j1' });
    const bytes = Buffer.from(good.data.ct, 'base64');
    bytes[0] = (bytes[0] as number) ^ 1;
    raw.send({ event: 'encrypted', data: { iv: good.data.iv, ct: bytes.toString('base64') } });
    expect((await raw.next()).text).toBe('{"event":"error","data":{"message":"Decryption failed"}}');
    raw.send({ event: 'encrypted', data: { iv: 'short', ct: good.data.ct } });
    raw.send({ event: 'encrypted', data: 'nope' });
    expect(await raw.closed).toEqual({ code: 1008, reason: 'Too many decryption failures' });
  });

  it('handles an encrypted client frame like its plaintext', async () => {
    const raw = await connected();
    raw.send(raw.encryptedFrame({ event: 'join', data: { rooms: ['ws-default'] }, id: 'j2' }));
    expect(await raw.nextMessage()).toEqual({ event: 'joined', data: { id: 'j2', rooms: ['ws-default'], rejected: [] } });
  });

  it('closes 4006 when a client floods frames', async () => {
    const raw = await connected();
    for (let index = 0; index < 200; index++) raw.send({ event: 'heartbeat' });
    expect(await raw.closed).toEqual({ code: 4006, reason: 'Rate limit exceeded' });
  });
});

describe('rooms', () => {
  it('joins allowed rooms and reports rejected ones, only when the frame has an id', async () => {
    const raw = await connected('member-1');
    const other = (await connected('u2')).clientId;
    raw.send({ event: 'join', data: { rooms: ['merchant:42', 'merchant:7', 'ws:x', other, 'user:member-1', 'user:u2', 'lobby'] }, id: 'a' });
    expect(await raw.nextMessage()).toEqual({
      event: 'joined',
      data: { id: 'a', rooms: ['merchant:42', 'user:member-1'], rejected: ['merchant:7', 'ws:x', other, 'user:u2', 'lobby'] },
    });
    raw.send({ event: 'join', data: { rooms: ['merchant:42'] } });
    raw.send({ event: 'join', data: { rooms: [] }, id: 'b' });
    // The id-less join got no reply: the next reply is the one for "b".
    expect((await raw.nextMessage()).data.id).toBe('b');
  });

  it("never delivers another client's direct messages through a room named after it", async () => {
    const victim = await connected('victim');
    const attacker = await connected('attacker');
    attacker.send({ event: 'join', data: { rooms: [victim.clientId] }, id: 'x' });
    expect((await attacker.nextMessage()).data.rejected).toEqual([victim.clientId]);
    await server.running.delivery.toClient(victim.clientId, 'secret', { s: 1 });
    expect(await victim.nextMessage()).toEqual({ event: 'secret', data: { s: 1 } });
    await server.running.delivery.toClient(attacker.clientId, 'marker', {});
    expect((await attacker.nextMessage()).event).toBe('marker');
  });

  it("leaves only rooms it joined itself; its own delivery and the defaults can't be left", async () => {
    const raw = await connected('member-1');
    raw.send({ event: 'join', data: { rooms: ['merchant:42'] }, id: 'j' });
    await raw.nextMessage();
    raw.send({ event: 'leave', data: { rooms: ['merchant:42', 'ws-default', raw.clientId, 'never-joined'] }, id: 'l' });
    expect(await raw.nextMessage()).toEqual({
      event: 'left',
      data: { id: 'l', rooms: ['merchant:42'], rejected: ['ws-default', raw.clientId, 'never-joined'] },
    });
    await server.running.delivery.toClient(raw.clientId, 'still-mine', {});
    expect((await raw.nextMessage()).event).toBe('still-mine');
    await server.running.delivery.toRoom('merchant:42', 'gone', {});
    await server.running.delivery.toRoom('ws-default', 'default-room', {});
    expect((await raw.nextMessage()).event).toBe('default-room');
  });
});

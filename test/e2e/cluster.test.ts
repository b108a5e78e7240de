import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignalEmitter } from '../../src/adapters/emitter/signal-emitter.ts';
import { DevIssuer } from '../../src/adapters/jwks/dev-issuer.ts';
import { SignalClient, type WebSocketConstructor } from '../../src/adapters/sdk/signal-client.ts';
import { REDIS_URL, uniquePrefix } from '../fixtures/env.ts';
import { createFreshDatabase, type FreshDatabase } from '../fixtures/fresh-database.ts';
import { RawClient } from '../fixtures/raw-client.ts';
import { spawnServer, type ServerProcess } from '../fixtures/server-process.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/**
 * Two real server processes sharing one Redis, real SDK clients on both, and
 * a publisher service's emitter: every delivery is counted exactly.
 */
const prefix = uniquePrefix('cluster');
const dataDir = mkdtempSync(join(tmpdir(), 'signal-cluster-'));
const env: Record<string, string> = {
  APP_ENV_WEBSOCKET_REDIS_URL: REDIS_URL,
  APP_ENV_WEBSOCKET_REDIS_CHANNEL_PREFIX: prefix,
  APP_ENV_DATA_DIR: dataDir,
  APP_ENV_WEBSOCKET_ROOM_ALLOW: 'public:.*',
  APP_ENV_LOG_LEVEL: 'info',
};

interface Tracked {
  client: SignalClient;
  id: string;
  received: Array<{ event: string; data: unknown }>;
}

let issuer: DevIssuer;
let database: FreshDatabase;
let a: ServerProcess;
let b: ServerProcess;
let publisher: Redis;
let emitter: SignalEmitter;
const clients: SignalClient[] = [];
const raws: RawClient[] = [];

async function track(server: ServerProcess, userId: string): Promise<Tracked> {
  const client = new SignalClient({
    url: `ws://127.0.0.1:${server.port}/stream`,
    token: await issuer.sign({ userId }),
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    reconnect: false,
  });
  clients.push(client);
  const received: Tracked['received'] = [];
  client.on('message', (message) => received.push({ event: message.event, data: message.data }));
  const info = await client.connect();
  return { client, id: info.clientId, received };
}

beforeAll(async () => {
  // Created before the servers start so that all three share one dev key.
  issuer = await DevIssuer.loadOrCreate(dataDir);
  // Replicas share one PostgreSQL, as in production; both migrate at start.
  database = await createFreshDatabase('cluster');
  env.APP_ENV_DB_URL = database.url;
  [a, b] = await Promise.all([spawnServer(env), spawnServer(env)]);
  publisher = new Redis(REDIS_URL);
  emitter = new SignalEmitter({ publisher, channelPrefix: prefix });
});

afterAll(async () => {
  for (const client of clients) client.close();
  for (const raw of raws) raw.close();
  publisher?.disconnect();
  await Promise.all([a?.kill('SIGKILL'), b?.kill('SIGKILL')]);
  await database?.drop();
});

describe('two instances on one Redis', () => {
  it('delivers user, room, client and broadcast messages exactly once, to exactly the right clients', async () => {
    const a1 = await track(a, 'u1');
    const a2 = await track(a, 'u2');
    const b1 = await track(b, 'u1');
    const b2 = await track(b, 'u3');
    expect((await a1.client.join(['public:lobby'])).rooms).toEqual(['public:lobby']);
    expect((await b2.client.join(['public:lobby'])).rooms).toEqual(['public:lobby']);
    const all = [a1, a2, b1, b2];

    await emitter.toUser('u1', 'to-user', { n: 1 });
    await emitter.toRoom('public:lobby', 'to-room', { n: 2 });
    await emitter.toClient(b2.id, 'to-client', { n: 3 });
    await emitter.broadcast('to-all', { n: 4 }, { exclude: [a2.id] });
    await emitter.toRoom('public:lobby', 'to-room-but-b2', { n: 5 }, { exclude: [b2.id] });
    // Older instances address a remote client as a room named by its id.
    await emitter.toRoom(a2.id, 'room-as-client', { n: 6 });
    await emitter.toUser('nobody', 'lost', { n: 7 });

    const expected: Record<string, string[]> = {
      [a1.id]: ['to-user', 'to-room', 'to-all', 'to-room-but-b2'],
      [a2.id]: ['room-as-client'],
      [b1.id]: ['to-user', 'to-all'],
      [b2.id]: ['to-room', 'to-client', 'to-all'],
    };
    const total = Object.values(expected).reduce((sum, events) => sum + events.length, 0);
    await waitFor(() => all.reduce((sum, each) => sum + each.received.length, 0) >= total, 10_000);
    // Anything extra would show up now: over-delivery fails like loss.
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const each of all) expect(each.received.map((message) => message.event)).toEqual(expected[each.id]);
    expect(a1.received[0]).toEqual({ event: 'to-user', data: { n: 1 } });
  });

  it('sends frames encrypted on the wire, decrypting to what the publisher sent', async () => {
    const raw = await RawClient.open(`ws://127.0.0.1:${b.port}/stream`);
    raws.push(raw);
    await raw.authenticate(await issuer.sign({ userId: 'wire-user' }));
    await emitter.toUser('wire-user', 'order.updated', { orderId: 'o-1', status: 'PAID' });
    const frame = await raw.next();
    expect(frame.event).toBe('encrypted');
    expect(frame.text).not.toContain('o-1');
    expect(raw.decrypt(frame)).toEqual({ event: 'order.updated', data: { orderId: 'o-1', status: 'PAID' } });
  });

  it('shuts down gracefully on SIGTERM: clients get 1001, the process exits 0, the other instance carries on', async () => {
    const c = await spawnServer(env);
    const doomed = await track(c, 'u9');
    const survivor = await track(b, 'u9');
    const closed = new Promise<{ code: number; reason: string }>((resolve) => doomed.client.on('close', resolve));
    const exit = await c.kill('SIGTERM');
    expect(exit.code).toBe(0);
    expect(await closed).toMatchObject({ code: 1001, reason: 'Server shutting down' });
    await emitter.toUser('u9', 'after', {});
    await waitFor(() => survivor.received.length === 1, 5_000);
    expect(survivor.received).toEqual([{ event: 'after', data: {} }]);
  });
});

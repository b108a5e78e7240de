import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevIssuer } from '../../src/adapters/jwks/dev-issuer.ts';
import { hashPassword } from '../../src/domain/password-hash.ts';
import { REDIS_URL, uniquePrefix } from '../fixtures/env.ts';
import { createFreshDatabase, type FreshDatabase } from '../fixtures/fresh-database.ts';
import { RawClient } from '../fixtures/raw-client.ts';
import { spawnServer, type ServerProcess } from '../fixtures/server-process.ts';

/**
 * Operators manage clients of the whole cluster from any instance: two real
 * server processes on one Redis, one of them killed outright.
 */
const PASSWORD = 'operator password for tests';
const dataDir = mkdtempSync(join(tmpdir(), 'signal-ops-'));
const env: Record<string, string> = {
  APP_ENV_WEBSOCKET_REDIS_URL: REDIS_URL,
  APP_ENV_WEBSOCKET_REDIS_CHANNEL_PREFIX: uniquePrefix('ops'),
  APP_ENV_DATA_DIR: dataDir,
  APP_ENV_WEBSOCKET_PRESENCE_TTL_SECONDS: '3',
  APP_ENV_WEBSOCKET_ROOM_ALLOW: 'team-.*',
  APP_ENV_LOG_LEVEL: 'info',
};

let issuer: DevIssuer;
let database: FreshDatabase;
let a: ServerProcess;
let b: ServerProcess;
const raws: RawClient[] = [];
let auth = '';

async function api(server: ServerProcess, method: string, path: string) {
  const response = await fetch(`http://127.0.0.1:${server.port}/v1/api/signal/socket/websocket/clients${path}`, {
    method,
    headers: { authorization: auth },
  });
  return { status: response.status, body: (await response.json()) as any };
}

async function connect(server: ServerProcess, userId: string, rooms: string[] = []): Promise<RawClient> {
  const raw = await RawClient.open(`ws://127.0.0.1:${server.port}/stream`);
  raws.push(raw);
  await raw.authenticate(await issuer.sign({ userId }));
  if (rooms.length > 0) {
    raw.send({ event: 'join', data: { rooms }, id: 'j' });
    await raw.nextMessage();
  }
  return raw;
}

beforeAll(async () => {
  issuer = await DevIssuer.loadOrCreate(dataDir);
  database = await createFreshDatabase('ops');
  env.APP_ENV_DB_URL = database.url;
  env.APP_ENV_BASIC_AUTH_USERS = `ops:${await hashPassword(PASSWORD)}`;
  auth = `Basic ${Buffer.from(`ops:${PASSWORD}`).toString('base64')}`;
  [a, b] = await Promise.all([spawnServer(env), spawnServer(env)]);
});

afterAll(async () => {
  for (const raw of raws) raw.close();
  await Promise.all([a?.kill('SIGKILL'), b?.kill('SIGKILL')]);
  await database?.drop();
});

describe('cluster-wide client management', () => {
  let onA: RawClient;
  let onB: RawClient;
  let alsoOnB: RawClient;

  it('lists the clients of both instances, filtered by user and room, with records that carry no secrets', async () => {
    onA = await connect(a, 'alice', ['team-x']);
    onB = await connect(b, 'bob', ['team-x']);
    alsoOnB = await connect(b, 'alice');
    // Presence follows a connection by one registry write: poll until it shows.
    let listed: any;
    const deadline = Date.now() + 5_000;
    do listed = (await api(a, 'GET', '')).body;
    while (listed.count < 3 && Date.now() < deadline);
    expect(listed.count).toBe(3);
    expect(new Set(listed.items.map((item: { instanceId: string }) => item.instanceId))).toEqual(new Set([a.instanceId, b.instanceId]));
    for (const item of listed.items) {
      expect(Object.keys(item).sort()).toEqual(['connectedAt', 'encrypted', 'id', 'instanceId', 'lastActivity', 'rooms', 'state', 'userId']);
      expect(item.state).toBe('ENCRYPTED');
    }
    const alice = (await api(b, 'GET', '?userId=alice')).body;
    expect(alice.items.map((item: { id: string }) => item.id).sort()).toEqual([onA.clientId, alsoOnB.clientId].sort());
    const team = (await api(b, 'GET', '?room=team-x')).body;
    expect(team.items.map((item: { id: string }) => item.id).sort()).toEqual([onA.clientId, onB.clientId].sort());
    expect(team.items.find((item: { id: string }) => item.id === onA.clientId).rooms.sort()).toEqual(['team-x', 'ws-default', 'ws-notification']);
    const paged = (await api(a, 'GET', '?limit=2&offset=2')).body;
    expect(paged).toMatchObject({ count: 3 });
    expect(paged.items).toHaveLength(1);
  });

  it('finds a client held by the other instance', async () => {
    const found = await api(a, 'GET', `/${onB.clientId}`);
    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({ id: onB.clientId, userId: 'bob', instanceId: b.instanceId, encrypted: true });
    const missing = await api(a, 'GET', '/f47ac10b-58cc-4372-a567-0e02b2c3d479');
    expect(missing.status).toBe(404);
  });

  it('reports both instances in the public status', async () => {
    const status = await fetch(`http://127.0.0.1:${a.port}/v1/api/signal/socket/websocket/clients/status`);
    expect(await status.json()).toMatchObject({ status: 'ok', instanceId: a.instanceId, connections: 1, instances: 2 });
  });

  it('disconnects through instance A a client held by instance B, with 4008', async () => {
    const response = await api(a, 'DELETE', `/${onB.clientId}`);
    expect(response).toEqual({ status: 200, body: { disconnected: true, instanceId: b.instanceId } });
    expect(await onB.closed).toEqual({ code: 4008, reason: 'Disconnected by server' });
    expect((await api(a, 'DELETE', '/f47ac10b-58cc-4372-a567-0e02b2c3d479')).status).toBe(404);
  });

  it("forgets a SIGKILLed instance's clients within the TTL, keeping the survivor's", async () => {
    await b.kill('SIGKILL');
    const started = Date.now();
    let ids: string[] = [];
    while (Date.now() - started < 10_000) {
      ids = (await api(a, 'GET', '')).body.items.map((item: { id: string }) => item.id);
      if (!ids.includes(alsoOnB.clientId)) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(ids).toEqual([onA.clientId]);
    // TTL 3 s: gone well within one TTL plus a heartbeat period and polling slack.
    expect(Date.now() - started).toBeLessThan(6_000);
    const status = await fetch(`http://127.0.0.1:${a.port}/v1/api/signal/socket/websocket/clients/status`);
    expect((await status.json()).instances).toBe(1);
  });
});

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedHubs } from '../../src/bootstrap/adapters.ts';
import { REDIS_URL, uniquePrefix } from '../fixtures/env.ts';
import { RawClient } from '../fixtures/raw-client.ts';
import { startTestServer, type TestServer } from '../fixtures/test-server.ts';
import { settle, waitFor } from '../fixtures/wait-for.ts';

/**
 * Deliveries started by an instance (not by a publisher service) reach the
 * right clients on every instance exactly once; the same suite runs on the
 * in-process hub and on Redis.
 */
interface Engine {
  name: string;
  start(dataDir: string): Promise<TestServer>;
}

const hubs = embeddedHubs();
const prefix = uniquePrefix('multi');
const engines: Engine[] = [
  { name: 'in-memory hub', start: (dataDir) => startTestServer({ APP_ENV_DATA_DIR: dataDir, APP_ENV_WEBSOCKET_ROOM_ALLOW: 'team-.*' }, { hubs }) },
  {
    name: 'Redis',
    start: (dataDir) =>
      startTestServer({
        APP_ENV_DATA_DIR: dataDir,
        APP_ENV_WEBSOCKET_ROOM_ALLOW: 'team-.*',
        APP_ENV_WEBSOCKET_REDIS_URL: REDIS_URL,
        APP_ENV_WEBSOCKET_REDIS_CHANNEL_PREFIX: prefix,
      }),
  },
];

describe.each(engines)('instance-to-instance delivery over the $name', (engine) => {
  let one: TestServer;
  let two: TestServer;
  const raws: RawClient[] = [];
  const inbox = new Map<RawClient, string[]>();

  async function connect(server: TestServer, userId: string, rooms: string[] = []): Promise<RawClient> {
    const raw = await RawClient.open(server.url);
    raws.push(raw);
    await raw.authenticate(await server.token(userId));
    if (rooms.length > 0) {
      raw.send({ event: 'join', data: { rooms }, id: 'j' });
      expect((await raw.nextMessage()).data.rooms).toEqual(rooms);
    }
    const events: string[] = [];
    inbox.set(raw, events);
    raw.socket.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString());
      if (frame.event === 'encrypted') events.push(raw.decrypt({ text: '', ...frame }).event);
    });
    return raw;
  }

  beforeAll(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'signal-multi-'));
    one = await engine.start(dataDir);
    two = await engine.start(dataDir);
  });

  afterAll(async () => {
    for (const raw of raws) raw.close();
    await Promise.all([one.running.stop(), two.running.stop()]);
  });

  it('reaches local and remote clients exactly once and no one else', async () => {
    const x1 = await connect(one, 'x', ['team-a']);
    const y1 = await connect(one, 'y');
    const x2 = await connect(two, 'x');
    const z2 = await connect(two, 'z', ['team-a']);

    const d = one.running.delivery;
    expect(await d.toUser('x', 'user-x', {})).toEqual({ local: 1, published: true });
    expect(await d.toRoom('team-a', 'team', {})).toEqual({ local: 1, published: true });
    expect(await d.toClient(z2.clientId, 'direct-remote', {})).toEqual({ local: 0, published: true });
    expect(await d.toClient(y1.clientId, 'direct-local', {})).toEqual({ local: 1, published: false });
    expect(await d.broadcast('all-but-y-and-z', {}, { exclude: [y1.clientId, z2.clientId] })).toEqual({ local: 1, published: true });
    await two.running.delivery.toRoom('team-a', 'team-from-two', {}, { exclude: [z2.clientId] });

    const expected = new Map<RawClient, string[]>([
      [x1, ['user-x', 'team', 'all-but-y-and-z', 'team-from-two']],
      [y1, ['direct-local']],
      [x2, ['user-x', 'all-but-y-and-z']],
      [z2, ['team', 'direct-remote']],
    ]);
    const total = [...expected.values()].reduce((sum, events) => sum + events.length, 0);
    const count = () => [...expected.keys()].reduce((sum, raw) => sum + (inbox.get(raw)?.length ?? 0), 0);
    await waitFor(() => count() >= total, 5_000, 'all deliveries');
    await settle(200);
    for (const [raw, events] of expected) expect(inbox.get(raw)).toEqual(events);
  });
});

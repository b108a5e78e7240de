import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedHubs } from '../../src/bootstrap/adapters.ts';
import { hashPassword } from '../../src/domain/password-hash.ts';
import { parseExposition, series, total, type Exposition } from '../fixtures/prometheus-text.ts';
import { RawClient } from '../fixtures/raw-client.ts';
import { startTestServer, type TestServer } from '../fixtures/test-server.ts';

/**
 * `GET /metrics` scraped over HTTP from real servers: every counter is read
 * before and after the action that should move it, and must move by exactly
 * the expected amount.
 */
const PASSWORD = 'metrics test password';
const hubs = embeddedHubs();
let server: TestServer;
/** A second instance on the same in-process bus, for cross-instance traffic. */
let peer: TestServer;
let service: string;
const open: RawClient[] = [];

async function scrape(target: TestServer = server): Promise<Exposition> {
  const response = await fetch(`${target.http}/metrics`);
  expect(response.status).toBe(200);
  return parseExposition(await response.text());
}

/** Scrapes until the check passes: the server counts some things just after the client sees them. */
async function eventually(check: (metrics: Exposition) => void, target: TestServer = server, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const metrics = await scrape(target);
    try {
      check(metrics);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function connect(userId: string, target: TestServer = server): Promise<RawClient> {
  const client = await RawClient.open(target.url);
  open.push(client);
  const reply = await client.authenticate(await target.token(userId));
  expect(reply.event).toBe('connected');
  return client;
}

async function post(path: string, body: unknown, target: TestServer = server): Promise<any> {
  const response = await fetch(`${target.http}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: service },
    body: JSON.stringify(body),
  });
  expect(response.status).toBeLessThan(300);
  return response.json();
}

beforeAll(async () => {
  const env = { APP_ENV_BASIC_AUTH_USERS: `svc:${await hashPassword(PASSWORD)}` };
  service = `Basic ${Buffer.from(`svc:${PASSWORD}`).toString('base64')}`;
  server = await startTestServer(env, { hubs, session: { authTimeoutMs: 300 } });
  peer = await startTestServer(env, { hubs });
});

afterAll(async () => {
  for (const client of open) client.close();
  await server?.running.stop();
  await peer?.running.stop();
});

describe('the scrape', () => {
  it('is the Prometheus text format, with the process metrics and every signal_ family typed', async () => {
    const response = await fetch(`${server.http}/metrics`);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(response.headers.get('x-request-id')).toMatch(/\S/);
    const metrics = parseExposition(await response.text());
    expect(metrics.types.get('signal_ws_handshakes_total')).toBe('counter');
    expect(metrics.types.get('signal_ws_connections')).toBe('gauge');
    expect(metrics.types.get('signal_bus_publish_duration_seconds')).toBe('histogram');
    expect(metrics.types.get('signal_http_request_duration_seconds')).toBe('histogram');
    expect(metrics.types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(metrics.types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
    // Series that exist before anything happened, so rate() works from the first scrape.
    expect(series(metrics, 'signal_ws_messages_delivered_total').map((sample) => sample.labels.kind).sort()).toEqual([
      'broadcast',
      'client',
      'room',
      'user',
    ]);
    // No Kafka configured: no Kafka series at all.
    expect(metrics.samples.filter((sample) => sample.name.startsWith('signal_kafka_'))).toEqual([]);
  });

  it('keeps instances in one process apart', async () => {
    const before = [await scrape(server), await scrape(peer)];
    await connect('isolation-user');
    const after = [await scrape(server), await scrape(peer)];
    expect(total(after[0]!, 'signal_ws_connections_opened_total') - total(before[0]!, 'signal_ws_connections_opened_total')).toBe(1);
    expect(total(after[1]!, 'signal_ws_connections_opened_total')).toBe(total(before[1]!, 'signal_ws_connections_opened_total'));
  });
});

describe('connections and handshakes', () => {
  it('counts a successful handshake and the connection in its state', async () => {
    const before = await scrape();
    await connect('conn-user');
    const after = await scrape();
    expect(total(after, 'signal_ws_handshakes_total', { outcome: 'ok' }) - total(before, 'signal_ws_handshakes_total', { outcome: 'ok' })).toBe(1);
    expect(total(after, 'signal_ws_connections', { state: 'encrypted' }) - total(before, 'signal_ws_connections', { state: 'encrypted' })).toBe(1);
    expect(total(after, 'signal_ws_connections_opened_total') - total(before, 'signal_ws_connections_opened_total')).toBe(1);
    expect(total(after, 'signal_ws_handshakes_total') - total(before, 'signal_ws_handshakes_total')).toBe(1);
  });

  it('shows a socket that has not authenticated yet as connecting', async () => {
    const before = await scrape();
    const pending = await RawClient.open(server.url);
    open.push(pending);
    const during = await scrape();
    expect(total(during, 'signal_ws_connections', { state: 'connecting' }) - total(before, 'signal_ws_connections', { state: 'connecting' })).toBe(1);
    // Then the auth timer (300 ms here) closes it 4001: an auth_timeout handshake and a server close.
    expect((await pending.closed).code).toBe(4001);
    await eventually((after) => {
      expect(total(after, 'signal_ws_handshakes_total', { outcome: 'auth_timeout' }) - total(before, 'signal_ws_handshakes_total', { outcome: 'auth_timeout' })).toBe(1);
      expect(total(after, 'signal_ws_closes_total', { code: '4001', initiator: 'server' }) - total(before, 'signal_ws_closes_total', { code: '4001', initiator: 'server' })).toBe(1);
      expect(total(after, 'signal_ws_connections', { state: 'connecting' })).toBe(total(before, 'signal_ws_connections', { state: 'connecting' }));
    });
  });

  const failures: Array<[string, string, number, (client: RawClient) => Promise<void>]> = [
    ['token_invalid', 'a garbage token', 4003, async (client) => void (await client.authenticate('not-a-jwt'))],
    [
      'token_expired',
      'an expired token',
      4003,
      async (client) =>
        void (await client.authenticate(await server.signWithIssuerKey({ userId: 'u', iss: 'signal-dev', exp: Math.floor(Date.now() / 1000) - 3600 }))),
    ],
    [
      'unsupported_auth',
      'an auth type other than Bearer',
      4003,
      async (client) => client.send({ event: 'authenticate', data: { type: 'Basic', token: await server.token('u') } }),
    ],
    ['encryption_required', 'no client key', 4004, async (client) => void (await client.authenticate(await server.token('u'), { publicKey: null }))],
    [
      'invalid_public_key',
      'a point not on the curve',
      4004,
      async (client) =>
        void (await client.authenticate(await server.token('u'), { publicKey: Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 7)]).toString('base64') })),
    ],
  ];

  it.each(failures)('counts a %s handshake failure (%s) and its close %i', async (outcome, _label, code, act) => {
    const before = await scrape();
    const client = await RawClient.open(server.url);
    open.push(client);
    await act(client);
    expect((await client.closed).code).toBe(code);
    await eventually((after) => {
      expect(total(after, 'signal_ws_handshakes_total', { outcome }) - total(before, 'signal_ws_handshakes_total', { outcome })).toBe(1);
      // Exactly one outcome per connection.
      expect(total(after, 'signal_ws_handshakes_total') - total(before, 'signal_ws_handshakes_total')).toBe(1);
      const closes = (metrics: Exposition) => total(metrics, 'signal_ws_closes_total', { code: String(code), initiator: 'server' });
      expect(closes(after) - closes(before)).toBe(1);
    });
  });

  it('counts a client that leaves before authenticating as abandoned, closed by the client', async () => {
    const before = await scrape();
    const client = await RawClient.open(server.url);
    client.close();
    await client.closed;
    await eventually((after) => {
      expect(total(after, 'signal_ws_handshakes_total', { outcome: 'abandoned' }) - total(before, 'signal_ws_handshakes_total', { outcome: 'abandoned' })).toBe(1);
      expect(total(after, 'signal_ws_closes_total', { code: '1005', initiator: 'client' }) - total(before, 'signal_ws_closes_total', { code: '1005', initiator: 'client' })).toBe(1);
    });
  });

  it('counts closes by code and initiator, and the gauge goes back down', async () => {
    const leaving = await connect('closing-user');
    const removed = await connect('closing-user-2');
    const before = await scrape();
    leaving.socket.close(1000, 'bye');
    await leaving.closed;
    const response = await fetch(`${server.http}/socket/websocket/clients/${removed.clientId}`, { method: 'DELETE', headers: { authorization: service } });
    expect(response.status).toBe(200);
    expect((await removed.closed).code).toBe(4008);
    await eventually((after) => {
      const closes = (metrics: Exposition, code: string, initiator: string) => total(metrics, 'signal_ws_closes_total', { code, initiator });
      expect(closes(after, '1000', 'client') - closes(before, '1000', 'client')).toBe(1);
      expect(closes(after, '4008', 'server') - closes(before, '4008', 'server')).toBe(1);
      expect(total(after, 'signal_ws_closes_total') - total(before, 'signal_ws_closes_total')).toBe(2);
      expect(total(before, 'signal_ws_connections', { state: 'encrypted' }) - total(after, 'signal_ws_connections', { state: 'encrypted' })).toBe(2);
    });
  });
});

describe('deliveries and the bus', () => {
  const delivered = (metrics: Exposition, kind: string) => total(metrics, 'signal_ws_messages_delivered_total', { kind });

  it('counts each kind once per recipient connection reached on this instance', async () => {
    const user = `fan-${Date.now()}`;
    const [first] = [await connect(user), await connect(user), await connect(`${user}-other`)];
    const now = await scrape();
    const everyone = total(now, 'signal_ws_connections', { state: 'encrypted' }) + total(now, 'signal_ws_connections', { state: 'authenticated' });

    const before = await scrape();
    expect((await post(`/socket/websocket/clients/users/${user}/send`, { event: 'e', data: 1 })).local).toBe(2);
    expect((await post('/socket/websocket/clients/rooms/ws-default/send', { event: 'e', data: 2, exclude: [first!.clientId] })).local).toBe(everyone - 1);
    expect((await post('/socket/websocket/clients/broadcast', { event: 'e', data: 3 })).local).toBe(everyone);
    expect((await post(`/socket/websocket/clients/${first!.clientId}/send`, { event: 'e', data: 4 })).local).toBe(1);
    const after = await scrape();

    expect(delivered(after, 'user') - delivered(before, 'user')).toBe(2);
    expect(delivered(after, 'room') - delivered(before, 'room')).toBe(everyone - 1);
    expect(delivered(after, 'broadcast') - delivered(before, 'broadcast')).toBe(everyone);
    expect(delivered(after, 'client') - delivered(before, 'client')).toBe(1);
    // A user, room and broadcast send also goes out to the other instances; a local client send does not.
    const published = (metrics: Exposition) => total(metrics, 'signal_bus_published_total', { result: 'ok' });
    expect(published(after) - published(before)).toBe(3);
    expect(
      total(after, 'signal_bus_publish_duration_seconds_count') - total(before, 'signal_bus_publish_duration_seconds_count'),
    ).toBe(3);
  });

  it('counts a message from another instance as received there, and its delivery there', async () => {
    const user = `remote-${Date.now()}`;
    const client = await connect(user, peer);
    const [senderBefore, receiverBefore] = [await scrape(server), await scrape(peer)];
    expect((await post(`/socket/websocket/clients/users/${user}/send`, { event: 'hello', data: 1 }, server)).local).toBe(0);
    expect((await client.nextMessage()).event).toBe('hello');
    const senderAfter = await scrape(server);
    expect(
      total(senderAfter, 'signal_bus_published_total', { type: 'user', result: 'ok' }) -
        total(senderBefore, 'signal_bus_published_total', { type: 'user', result: 'ok' }),
    ).toBe(1);
    await eventually((receiverAfter) => {
      expect(total(receiverAfter, 'signal_bus_received_total', { type: 'user' }) - total(receiverBefore, 'signal_bus_received_total', { type: 'user' })).toBe(1);
      expect(
        total(receiverAfter, 'signal_bus_receive_handling_seconds_count') - total(receiverBefore, 'signal_bus_receive_handling_seconds_count'),
      ).toBe(1);
      expect(delivered(receiverAfter, 'user') - delivered(receiverBefore, 'user')).toBe(1);
    }, peer);
  });

  it('counts the notifications the pipeline stores', async () => {
    const before = await scrape();
    const eventId = `metrics-${Date.now()}`;
    const event = { eventId, type: 'PAYMENT_SUCCESS', actorId: 'actor', scope: 'users', recipientIds: ['n-1', 'n-2'], data: {} };
    const submit = () => fetch(`${server.http}/dev/activity-events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) });
    expect((await submit()).status).toBe(202);
    // The same event again creates nothing.
    expect((await submit()).status).toBe(202);
    const after = await scrape();
    expect(total(after, 'signal_notifications_created_total') - total(before, 'signal_notifications_created_total')).toBe(2);
  });
});

describe('HTTP requests', () => {
  const requests = (metrics: Exposition, labels: Record<string, string>) => total(metrics, 'signal_http_requests_total', labels);

  it('are counted by route template, method and status, never by raw path', async () => {
    const before = await scrape();
    expect((await fetch(`${server.http}/health`)).status).toBe(200);
    expect((await fetch(`${server.http}/notifications/123/mark-read`, { method: 'PATCH' })).status).toBe(401);
    expect((await fetch(`${server.http}/notifications/456/mark-read`, { method: 'PATCH' })).status).toBe(401);
    expect((await fetch(`${server.http}/no/such/route/789`)).status).toBe(404);
    const response = await fetch(`${server.http}/socket/websocket/clients/status`);
    expect(response.status).toBe(200);
    const after = await scrape();

    expect(requests(after, { route: '/health', method: 'GET', status: '200' }) - requests(before, { route: '/health', method: 'GET', status: '200' })).toBe(1);
    const markRead = { route: '/notifications/:id/mark-read', method: 'PATCH', status: '401' };
    expect(requests(after, markRead) - requests(before, markRead)).toBe(2);
    const unmatched = { route: 'unmatched', method: 'GET', status: '404' };
    expect(requests(after, unmatched) - requests(before, unmatched)).toBe(1);
    const status = { route: '/socket/websocket/clients/status', method: 'GET', status: '200' };
    expect(requests(after, status) - requests(before, status)).toBe(1);
    const routes = new Set(series(after, 'signal_http_requests_total').map((sample) => sample.labels.route));
    for (const route of routes) expect(route).not.toMatch(/\d{3}|\/no\/such/);
    const durations = { route: '/notifications/:id/mark-read', method: 'PATCH' };
    expect(
      total(after, 'signal_http_request_duration_seconds_count', durations) - total(before, 'signal_http_request_duration_seconds_count', durations),
    ).toBe(2);
  });

  it('counts bodies refused at the edge (415 not JSON, 413 too large) under the unmatched route', async () => {
    const broadcast = `${server.http}/socket/websocket/clients/broadcast`;
    const before = await scrape();
    expect((await fetch(broadcast, { method: 'POST', headers: { authorization: service }, body: new URLSearchParams({ event: 'e' }) })).status).toBe(415);
    const tooLarge = await fetch(broadcast, { method: 'POST', headers: { authorization: service, 'content-type': 'application/json' }, body: 'x'.repeat(1024 * 1024 + 10) });
    expect(tooLarge.status).toBe(413);
    const after = await scrape();
    for (const status of ['415', '413']) {
      const label = { route: 'unmatched', method: 'POST', status };
      expect(requests(after, label) - requests(before, label), status).toBe(1);
    }
  });

  it('counts the scrape itself under its own route', async () => {
    const before = await scrape();
    const after = await scrape();
    const label = { route: '/metrics', method: 'GET', status: '200' };
    expect(requests(after, label) - requests(before, label)).toBe(1);
  });
});

describe('APP_ENV_METRICS_ENABLED=false', () => {
  it('answers /metrics with 404 and leaves everything else working', async () => {
    const off = await startTestServer({ APP_ENV_METRICS_ENABLED: 'false' });
    try {
      const response = await fetch(`${off.http}/metrics`);
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ code: 'NOT_FOUND', message: 'no such route' });
      expect(off.running.metrics).toBeUndefined();
      const client = await RawClient.open(off.url);
      open.push(client);
      expect((await client.authenticate(await off.token('u'))).event).toBe('connected');
      expect((await fetch(`${off.http}/health`)).status).toBe(200);
    } finally {
      await off.running.stop();
    }
  });
});

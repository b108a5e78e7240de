import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/domain/password-hash.ts';
import { RawClient } from '../fixtures/raw-client.ts';
import { startTestServer, type TestServer } from '../fixtures/test-server.ts';

/** The REST routes that push to live clients: authorization, validation, delivery. */
let server: TestServer;
const SERVICE_PASSWORD = 'correct horse battery staple';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function post(path: string, body: unknown, authorization?: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.http}/socket/websocket/clients${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text.length > 0 ? JSON.parse(text) : null, text };
}

beforeAll(async () => {
  server = await startTestServer({ APP_ENV_BASIC_AUTH_USERS: `svc-sale:${await hashPassword(SERVICE_PASSWORD)}` });
});

afterAll(async () => {
  for (const client of clients) client.close();
  await server.running.stop();
});

const clients: RawClient[] = [];
async function listen(userId: string): Promise<RawClient> {
  const client = await RawClient.open(server.url);
  clients.push(client);
  await client.authenticate(await server.token(userId));
  return client;
}

describe('authorization of the client routes', () => {
  interface Case {
    label: string;
    method: 'GET' | 'POST' | 'DELETE';
    /** Built per call: DELETE needs a client of its own each time it succeeds. */
    path: () => Promise<string>;
    body?: unknown;
  }
  const someClient = async () => (await listen(`target-${Math.random()}`)).clientId;
  const cases: Case[] = [
    { label: 'list', method: 'GET', path: async () => '' },
    { label: 'get', method: 'GET', path: async () => `/${await someClient()}` },
    { label: 'disconnect', method: 'DELETE', path: async () => `/${await someClient()}` },
    { label: 'broadcast', method: 'POST', path: async () => '/broadcast', body: { event: 'e', data: 1 } },
    { label: 'room send', method: 'POST', path: async () => '/rooms/ws-default/send', body: { event: 'e', data: 1 } },
    { label: 'user send', method: 'POST', path: async () => '/users/someone/send', body: { event: 'e', data: 1 } },
    { label: 'client send', method: 'POST', path: async () => '/f47ac10b-58cc-4372-a567-0e02b2c3d479/send', body: { event: 'e', data: 1 } },
  ];
  const call = async (each: Case, authorization?: string) => {
    const response = await fetch(`${server.http}/socket/websocket/clients${await each.path()}`, {
      method: each.method,
      headers: { ...(each.body === undefined ? {} : { 'content-type': 'application/json' }), ...(authorization === undefined ? {} : { authorization }) },
      body: each.body === undefined ? undefined : JSON.stringify(each.body),
    });
    return { status: response.status, headers: response.headers, body: (await response.json()) as any };
  };

  it.each(cases)('$label: 401 without a credential, with WWW-Authenticate', async (each) => {
    const response = await call(each);
    expect(response.status).toBe(401);
    expect(response.body).toEqual({ code: 'ERR_UNAUTHORIZED', message: 'authentication required' });
    expect(response.headers.get('www-authenticate')).toContain('Bearer');
  });

  it.each(cases)('$label: 401 with a wrong Basic password, an unknown user or a forged token', async (each) => {
    expect((await call(each, basic('svc-sale', 'wrong'))).status).toBe(401);
    expect((await call(each, basic('nobody', SERVICE_PASSWORD))).status).toBe(401);
    expect((await call(each, 'Bearer not-a-token')).status).toBe(401);
  });

  it.each(cases)('$label: 403 for a user without the role', async (each) => {
    const response = await call(each, `Bearer ${await server.token('plain-user')}`);
    expect(response.status).toBe(403);
    expect(response.body.code).toBe('ERR_FORBIDDEN');
  });

  it.each(cases)('$label: 200 for ADMIN and SUPER_ADMIN tokens and for the service principal', async (each) => {
    expect((await call(each, `Bearer ${await server.token('admin', ['ADMIN'])}`)).status).toBe(200);
    expect((await call(each, `Bearer ${await server.token('root', ['SUPER_ADMIN'])}`)).status).toBe(200);
    expect((await call(each, basic('svc-sale', SERVICE_PASSWORD))).status).toBe(200);
  });

  afterAll(async () => {
    // Later tests count exact local deliveries: the targets made here must be gone.
    for (const client of clients.splice(0)) {
      client.close();
      await client.closed;
    }
  });

  it('keeps the public routes public', async () => {
    for (const path of ['/health', '/ready', '/socket/websocket/clients/status', '/doc/openapi.json']) {
      expect((await fetch(`${server.http}${path}`)).status).toBe(200);
    }
  });
});

describe('delivery through REST', () => {
  it('broadcasts to connected clients, honouring exclude', async () => {
    const listener = await listen('listener-user');
    const other = await listen('other-user');
    const auth = basic('svc-sale', SERVICE_PASSWORD);
    const first = await post('/broadcast', { event: 'system:announcement', data: { text: 'hello all' }, exclude: [other.clientId] }, auth);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ local: 1, published: true });
    expect(await listener.nextMessage()).toEqual({ event: 'system:announcement', data: { text: 'hello all' } });
    await post(`/${other.clientId}/send`, { event: 'direct', data: { n: 2 } }, auth);
    expect(await other.nextMessage()).toEqual({ event: 'direct', data: { n: 2 } });
    listener.close();
    other.close();
  });

  it('sends to a user and to a room', async () => {
    const listener = await listen('listener-user-2');
    const auth = basic('svc-sale', SERVICE_PASSWORD);
    expect((await post('/users/listener-user-2/send', { event: 'to-user', data: [1] }, auth)).body.local).toBe(1);
    expect(await listener.nextMessage()).toEqual({ event: 'to-user', data: [1] });
    expect((await post('/rooms/ws-notification/send', { event: 'to-room' }, auth)).body.local).toBeGreaterThanOrEqual(1);
    expect(await listener.nextMessage()).toEqual({ event: 'to-room' });
  });
});

describe('bad requests', () => {
  it('names the field that failed validation', async () => {
    const auth = basic('svc-sale', SERVICE_PASSWORD);
    const missing = await post('/broadcast', { data: 1 }, auth);
    expect(missing.status).toBe(400);
    expect(missing.body.code).toBe('VALIDATION_FAILED');
    expect(missing.body.message).toMatch(/^event/);
    const wrongType = await post('/broadcast', { event: 'e', exclude: 'abc' }, auth);
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.message).toMatch(/^exclude/);
    const extra = await post('/users/u/send', { event: 'e', exclude: [] }, auth);
    expect(extra.status).toBe(400);
  });

  it('refuses a body that is not JSON with 400', async () => {
    const response = await post('/broadcast', '{oops', basic('svc-sale', SERVICE_PASSWORD));
    expect(response.status).toBe(400);
    expect(Object.keys(response.body)).toEqual(['code', 'message']);
  });

  it('refuses an oversized body with 413 before reading it', async () => {
    const response = await post('/broadcast', { event: 'e', data: 'x'.repeat(1024 * 1024 + 10) }, basic('svc-sale', SERVICE_PASSWORD));
    expect(response.status).toBe(413);
    expect(response.body.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('answers unknown routes with a JSON 404 and never a stack trace', async () => {
    const response = await fetch(`${server.http}/no/such/route`);
    expect(response.status).toBe(404);
    const body = await response.json();
    expect(Object.keys(body)).toEqual(['code', 'message']);
    expect(JSON.stringify(body)).not.toMatch(/at .*\.ts/);
  });

  it('echoes X-Request-Id when given and makes one otherwise', async () => {
    const given = await post('/broadcast', {}, undefined, { 'x-request-id': 'req-123' });
    expect(given.headers.get('x-request-id')).toBe('req-123');
    const made = await fetch(`${server.http}/health`);
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

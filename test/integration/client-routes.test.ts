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
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f]{16}-[0-9a-z]+$/);
  });
});

describe('request bodies that are not JSON', () => {
  const auth = () => basic('svc-sale', SERVICE_PASSWORD);
  const NOT_JSON = { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'request body must be JSON (Content-Type: application/json)' };

  /** A raw call: the body and its Content-Type (or none) exactly as given. */
  async function send(path: string, init: Init) {
    const response = await fetch(`${server.http}${path}`, { method: 'POST', ...init, headers: { authorization: auth(), ...init.headers } } as RequestInit);
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text.length > 0 ? JSON.parse(text) : null };
  }

  /**
   * What reached a listener since the last call: a JSON broadcast of a
   * fresh marker is sent, and everything received before the marker is
   * returned. Proves a refused request delivered nothing, without sleeping.
   */
  async function receivedBeforeMarker(listener: RawClient): Promise<Array<{ event: string; data?: any }>> {
    const marker = `marker-${Math.random()}`;
    expect((await post('/broadcast', { event: marker }, auth())).status).toBe(200);
    const received: Array<{ event: string; data?: any }> = [];
    for (let message = await listener.nextMessage(); message.event !== marker; message = await listener.nextMessage()) received.push(message);
    return received;
  }

  let listener: RawClient;
  beforeAll(async () => {
    listener = await listen('json-only-listener');
  });

  const refused: Array<[string, () => Init]> = [
    ['form-urlencoded (a browser form)', () => ({ body: new URLSearchParams({ event: 'csrf', data: 'x' }) })],
    ['multipart (a browser form with a file input)', () => ({ body: formData() })],
    ['JSON sent as text/plain', () => ({ body: '{"event":"csrf"}' })],
    ['JSON with no Content-Type at all', () => ({ body: new TextEncoder().encode('{"event":"csrf"}') })],
    ['JSON labelled application/xml', () => ({ body: '{"event":"csrf"}', headers: { 'content-type': 'application/xml' } })],
    ['JSON labelled application/jsonp (not JSON)', () => ({ body: '{"event":"csrf"}', headers: { 'content-type': 'application/jsonp' } })],
    [
      'a text/plain body sent chunked (no Content-Length)',
      () => ({ body: stream('{"event":"csrf"}'), duplex: 'half', headers: { 'content-type': 'text/plain' } }),
    ],
  ];
  it.each(refused)('%s: 415 with {code, message} and X-Request-Id, and nothing is broadcast', async (_, build) => {
    const init = build();
    const response = await send('/socket/websocket/clients/broadcast', { ...init, headers: { 'x-request-id': 'req-415', ...init.headers } });
    expect(response.status).toBe(415);
    expect(response.body).toEqual(NOT_JSON);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('x-request-id')).toBe('req-415');
    expect(await receivedBeforeMarker(listener)).toEqual([]);
  });

  it('refuses a form body on every route that takes one, before authorization', async () => {
    const paths = ['/rooms/ws-default/send', '/users/json-only-listener/send', `/${listener.clientId}/send`].map((path) => `/socket/websocket/clients${path}`);
    for (const path of [...paths, '/dev/token', '/dev/activity-events']) {
      const response = await send(path, { body: new URLSearchParams({ event: 'csrf', userId: 'u' }), headers: { authorization: 'Basic bm9ib2R5Om5vdGhpbmc=' } });
      expect(response.status, path).toBe(415);
      expect(response.body, path).toEqual(NOT_JSON);
    }
    expect(await receivedBeforeMarker(listener)).toEqual([]);
  });

  it.each([
    ['application/json; charset=utf-8'],
    ['Application/JSON'],
    ['application/merge-patch+json'],
    ['application/vnd.signal.broadcast+json; charset=UTF-8'],
  ])('accepts %s as JSON', async (contentType) => {
    const response = await send('/socket/websocket/clients/broadcast', {
      body: JSON.stringify({ event: 'typed', data: { contentType } }),
      headers: { 'content-type': contentType },
    });
    expect(response.status).toBe(200);
    expect(await receivedBeforeMarker(listener)).toEqual([{ event: 'typed', data: { contentType } }]);
  });

  it('accepts a JSON body sent chunked', async () => {
    const response = await send('/socket/websocket/clients/broadcast', {
      body: stream('{"event":"chunked-json"}'),
      duplex: 'half',
      headers: { 'content-type': 'application/json' },
    });
    expect(response.status).toBe(200);
    expect(await receivedBeforeMarker(listener)).toEqual([{ event: 'chunked-json' }]);
  });

  it('leaves requests without a body alone, whatever their Content-Type', async () => {
    const token = `Bearer ${await server.token('json-only-reader')}`;
    const markAll = await send('/notifications/mark-all-read', { method: 'PATCH', headers: { authorization: token } });
    expect(markAll).toMatchObject({ status: 200, body: { updated: 0 } });
    // Content-Length: 0 is no body: the type of nothing is not checked.
    const empty = await send('/notifications/mark-all-read', { method: 'PATCH', body: '', headers: { authorization: token, 'content-type': 'text/plain' } });
    expect(empty).toMatchObject({ status: 200, body: { updated: 0 } });
    const list = await send('/notifications', { method: 'GET', headers: { authorization: token, 'content-type': 'text/plain' } });
    expect(list.status).toBe(200);
  });
});

/** A fetch request's options with plain headers; `duplex` is what a streamed body needs. */
type Init = Omit<RequestInit, 'headers'> & { headers?: Record<string, string>; duplex?: 'half' };

function formData(): FormData {
  const form = new FormData();
  form.set('event', 'csrf');
  form.set('data', new Blob(['x'], { type: 'text/plain' }), 'x.txt');
  return form;
}

function stream(text: string): ReadableStream<Uint8Array> {
  return new ReadableStream({ start: (controller) => (controller.enqueue(new TextEncoder().encode(text)), controller.close()) });
}

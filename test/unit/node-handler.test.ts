import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Elysia, t } from 'elysia';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyLimitListener } from '../../src/adapters/http/body-limit.ts';
import { countRequests, createHttpApp, unscopedPaths } from '../../src/adapters/http/http-app.ts';
import { requestHandlers, type FetchHandler } from '../../src/adapters/http/node-handler.ts';
import { requestScopedLogger } from '../../src/adapters/http/request-scope.ts';
import { noopMetrics, type Metrics } from '../../src/application/ports/metrics.port.ts';
import { PresenceUnavailableError } from '../../src/adapters/redis/redis-presence-registry.ts';
import { ForbiddenError } from '../../src/domain/errors.ts';
import { recordingLogger, type LogLine } from '../fixtures/recording-logger.ts';

/**
 * The edge between node:http and the app, as start() wires it: request ids
 * on every answer, the request scope for log lines, and what the client
 * sees when the app itself fails.
 */
const BASE = '/v1/api/signal';
/** An id of the process's own: its random prefix, then a base-36 sequence number. */
const MADE_ID = /^([0-9a-f]{16})-([0-9a-z]+)$/;
const lines: LogLine[] = [];
const logger = requestScopedLogger(recordingLogger(lines));

async function serve(
  fetch: FetchHandler,
  unscoped: ReadonlySet<string> = new Set(),
  answered?: (request: Request, status: number) => void,
): Promise<{ server: Server; url: string }> {
  const handlers = requestHandlers(fetch, { unscopedPaths: unscoped, answered });
  const server = createServer(bodyLimitListener({ streamed: handlers.node, fetch: handlers.fetch }));
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Logs after an await, the way a use case deep under a route would. */
async function work(tag: string): Promise<{ tag: string }> {
  await sleep(5);
  logger.info({ tag }, 'deep work done');
  return { tag };
}

const loggedFor = (tag: string) => lines.filter((line) => line.fields.tag === tag);

let app: { server: Server; url: string };

beforeAll(async () => {
  const http = createHttpApp({
    basePath: BASE,
    instanceId: 'instance-1',
    logger,
    readiness: () => [],
    connections: () => 0,
    // The status route is served outside a request scope: what it calls logs without an id.
    instances: async () => (await work('status')) && 1,
    plugins: [
      new Elysia({ name: 'test-routes' })
        .get('/work/:tag', ({ params }) => work(params.tag))
        .post('/work', async ({ request }) => work(await request.text()), { parse: 'none' })
        .get('/stream', () => new Response(new ReadableStream({ start: (controller) => (controller.enqueue(new TextEncoder().encode('streamed')), controller.close()) }))),
    ],
  });
  app = await serve(http.fetch, unscopedPaths(http, BASE));
});

afterAll(() => {
  app.server.close();
});

describe('X-Request-Id', () => {
  it("answers with the caller's id, or a new one of its own when it is missing or unusable", async () => {
    const given = await fetch(`${app.url}${BASE}/health`, { headers: { 'x-request-id': 'trace-1.a:b_c' } });
    expect(given.headers.get('x-request-id')).toBe('trace-1.a:b_c');
    const made = await fetch(`${app.url}${BASE}/health`);
    expect(made.headers.get('x-request-id')).toMatch(MADE_ID);
    const unusable = await fetch(`${app.url}${BASE}/health`, { headers: { 'x-request-id': 'has space' } });
    expect(unusable.headers.get('x-request-id')).toMatch(MADE_ID);
  });

  it('makes ids that differ from request to request and share the process prefix', async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, async () => (await fetch(`${app.url}${BASE}/health`)).headers.get('x-request-id')!));
    expect(new Set(ids).size).toBe(ids.length);
    const parts = ids.map((id) => MADE_ID.exec(id)!);
    expect(new Set(parts.map((match) => match[1])).size).toBe(1);
    const numbers = parts.map((match) => parseInt(match[2]!, 36)).sort((a, b) => a - b);
    expect(numbers[0]).toBeGreaterThan(0);
  });

  it('is on a JSON answer sent whole, a 404, a HEAD and a streamed body', async () => {
    const json = await fetch(`${app.url}${BASE}/health`, { headers: { 'x-request-id': 'json-1' } });
    expect(json.headers.get('x-request-id')).toBe('json-1');
    expect(json.headers.get('content-length')).toBe('15');
    expect(await json.json()).toEqual({ status: 'ok' });

    const missing = await fetch(`${app.url}${BASE}/no/such/route`, { headers: { 'x-request-id': 'missing-1' } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-request-id')).toBe('missing-1');
    expect(await missing.json()).toEqual({ code: 'NOT_FOUND', message: 'no such route' });

    const head = await fetch(`${app.url}${BASE}/health`, { method: 'HEAD', headers: { 'x-request-id': 'head-1' } });
    expect(head.status).toBe(200);
    expect(head.headers.get('x-request-id')).toBe('head-1');

    const streamed = await fetch(`${app.url}${BASE}/stream`, { headers: { 'x-request-id': 'stream-1' } });
    expect(streamed.headers.get('x-request-id')).toBe('stream-1');
    expect(await streamed.text()).toBe('streamed');
  });
});

describe('the request scope', () => {
  it('puts the id on lines written after an await while a route runs, keeping concurrent requests apart', async () => {
    const tags = ['scoped-1', 'scoped-2', 'scoped-3'];
    await Promise.all(tags.map((tag) => fetch(`${app.url}${BASE}/work/${tag}`, { headers: { 'x-request-id': `id-${tag}` } })));
    for (const tag of tags) expect(loggedFor(tag).map((line) => line.fields.requestId)).toEqual([`id-${tag}`]);
  });

  it('covers a chunked body, read and counted before the app sees it', async () => {
    const body = new ReadableStream({ start: (controller) => (controller.enqueue(new TextEncoder().encode('chunked-1')), controller.close()) });
    const response = await fetch(`${app.url}${BASE}/work`, {
      method: 'POST',
      body,
      duplex: 'half',
      headers: { 'content-type': 'application/json', 'x-request-id': 'id-chunked' },
    } as RequestInit);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('id-chunked');
    expect(await response.json()).toEqual({ tag: 'chunked-1' });
    expect(loggedFor('chunked-1').map((line) => line.fields.requestId)).toEqual(['id-chunked']);
  });

  it('is not entered for the probes', async () => {
    const response = await fetch(`${app.url}${BASE}/socket/websocket/clients/status`, { headers: { 'x-request-id': 'id-status' } });
    expect(await response.json()).toEqual({ status: 'ok', instanceId: 'instance-1', connections: 0, instances: 1 });
    expect(loggedFor('status').at(-1)?.fields).not.toHaveProperty('requestId');
  });
});

describe('unscopedPaths', () => {
  const build = (basePath: string) =>
    createHttpApp({ basePath, instanceId: 'i', logger, readiness: () => [], connections: () => 0, instances: async () => 1, exposition: { contentType: 'text/plain', render: async () => '' } });

  it('lists the probes and the scrape, with and without a trailing slash, and nothing else', () => {
    expect([...unscopedPaths(build(BASE), BASE)].sort()).toEqual(
      ['/health', '/ready', '/socket/websocket/clients/status', '/metrics'].flatMap((route) => [`${BASE}${route}`, `${BASE}${route}/`]).sort(),
    );
  });
});

describe('the status route', () => {
  const STATUS = `http://localhost${BASE}/socket/websocket/clients/status`;
  let instances: number | Promise<number> = 3;
  const http = createHttpApp({ basePath: BASE, instanceId: 'i-1', logger, readiness: () => [], connections: () => 2, instances: () => instances });

  it('answers in the same turn while the instance count is at hand', async () => {
    instances = 3;
    const answer = http.fetch(new Request(STATUS));
    expect(answer).not.toBeInstanceOf(Promise);
    expect(answer).toBeInstanceOf(Response);
    expect(await (answer as Response).json()).toEqual({ status: 'ok', instanceId: 'i-1', connections: 2, instances: 3 });
  });

  it('waits for a lookup when the count is not at hand', async () => {
    instances = sleep(5).then(() => 4);
    const answer = http.fetch(new Request(STATUS));
    expect(answer).toBeInstanceOf(Promise);
    expect(await (await answer).json()).toEqual({ status: 'ok', instanceId: 'i-1', connections: 2, instances: 4 });
  });

  it('answers a failed lookup as every route answers that error: 503, its code, one error line', async () => {
    const before = lines.length;
    instances = Promise.reject(new PresenceUnavailableError('instances: redis end'));
    const response = await http.fetch(new Request(STATUS));
    expect(response.status).toBe(503);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({ code: 'ERR_PRESENCE_UNAVAILABLE', message: 'presence registry unavailable: instances: redis end' });
    expect(lines.slice(before).map((line) => [line.level, line.message, line.fields.code])).toEqual([['error', 'request failed', 'ERR_PRESENCE_UNAVAILABLE']]);
  });
});

describe('an app that fails outside its own error handling', () => {
  it.each([
    ['throws', (() => {
      throw new Error('boom');
    }) as FetchHandler],
    ['rejects', (async () => {
      throw new Error('boom');
    }) as FetchHandler],
  ])('%s: 500 with the {code, message} body and the request id', async (_, failing) => {
    const broken = await serve(failing);
    try {
      const response = await fetch(`${broken.url}/anything`, { headers: { 'x-request-id': 'broken-1' } });
      expect(response.status).toBe(500);
      expect(response.headers.get('x-request-id')).toBe('broken-1');
      expect(await response.json()).toEqual({ code: 'INTERNAL_ERROR', message: 'internal error' });
    } finally {
      broken.server.close();
    }
  });
});

describe('request counting', () => {
  const counted: Array<{ route: string; method: string; status: number; durationMs: number }> = [];
  const metrics: Metrics = { ...noopMetrics, httpRequest: (route, method, status, durationMs) => void counted.push({ route, method, status, durationMs }) };
  let counting: { server: Server; url: string };

  beforeAll(async () => {
    const http = createHttpApp({
      basePath: BASE,
      instanceId: 'i',
      logger,
      readiness: () => [],
      connections: () => 0,
      instances: async () => 1,
      plugins: [
        new Elysia({ name: 'counted-routes' })
          .get('/items/:id', ({ params }) => ({ id: params.id }), { params: t.Object({ id: t.String({ pattern: '^[0-9]+$' }) }) })
          .get('/forbidden/:id', () => {
            throw new ForbiddenError('no');
          })
          .post('/echo', ({ body }) => body, { body: t.Object({ value: t.String() }) }),
      ],
    });
    counting = await serve(http.fetch, unscopedPaths(http, BASE), countRequests(metrics, BASE));
  });

  afterAll(() => {
    counting.server.close();
  });

  it('counts each answer once by route template, method and the status sent, whatever the outcome', async () => {
    counted.length = 0;
    const chunked = new ReadableStream({ start: (controller) => (controller.enqueue(new TextEncoder().encode('{"value":"v"}')), controller.close()) });
    const statuses = [
      (await fetch(`${counting.url}${BASE}/items/123`)).status,
      (await fetch(`${counting.url}${BASE}/items/abc`)).status,
      (await fetch(`${counting.url}${BASE}/forbidden/7`)).status,
      (await fetch(`${counting.url}${BASE}/no/such/route`)).status,
      (await fetch(`${counting.url}${BASE}/health`)).status,
      (await fetch(`${counting.url}${BASE}/echo`, { method: 'POST', body: '{"value":', headers: { 'content-type': 'application/json' } })).status,
      (await fetch(`${counting.url}${BASE}/echo`, { method: 'POST', body: chunked, duplex: 'half', headers: { 'content-type': 'application/json' } } as RequestInit)).status,
    ];
    expect(statuses).toEqual([200, 400, 403, 404, 200, 400, 200]);
    expect(counted.map(({ route, method, status }) => `${method} ${route} ${status}`)).toEqual([
      'GET /items/:id 200',
      'GET /items/:id 400',
      'GET /forbidden/:id 403',
      'GET unmatched 404',
      'GET /health 200',
      'POST /echo 400',
      'POST /echo 200',
    ]);
    for (const { durationMs } of counted) expect(durationMs).toBeGreaterThanOrEqual(0);
  });
});

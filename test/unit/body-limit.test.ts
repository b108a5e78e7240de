import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyLimitListener, isJsonMediaType } from '../../src/adapters/http/body-limit.ts';

/**
 * The edge's body checks on a bare node:http server: what counts as JSON,
 * and that a refused body never reaches the app, whichever way it is sent.
 */
describe('isJsonMediaType', () => {
  it.each([
    'application/json',
    'application/json; charset=utf-8',
    'application/json;charset=UTF-8',
    'APPLICATION/JSON',
    ' application/json ',
    'application/merge-patch+json',
    'application/problem+json; charset=utf-8',
    'application/vnd.example.v2+json',
  ])('%s is JSON', (type) => {
    expect(isJsonMediaType(type)).toBe(true);
  });

  it.each([
    undefined,
    '',
    'text/plain',
    'text/plain; charset=utf-8',
    'text/json',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=xx',
    'application/octet-stream',
    'application/xml',
    'application/jsonp',
    'application/json-seq',
    'application/+json',
    'application/x+json+xml',
    'application/x json+json',
    'foo/application/json',
  ])('%s is not JSON', (type) => {
    expect(isJsonMediaType(type)).toBe(false);
  });
});

describe('bodyLimitListener', () => {
  let server: Server;
  let url: string;
  const reached: string[] = [];
  const refusals: string[] = [];

  beforeAll(async () => {
    server = createServer(
      bodyLimitListener(
        {
          streamed: (request, response) => {
            reached.push(`streamed ${request.method} ${request.headers['content-type'] ?? '-'}`);
            request.resume();
            request.on('end', () => response.end('{}'));
          },
          fetch: async (request) => {
            reached.push(`fetch ${request.method} ${await request.text()}`);
            return new Response('{}');
          },
          refused: (method, status) => refusals.push(`${method} ${status}`),
        },
        64,
      ),
    );
    await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
  });

  afterAll(async () => {
    await new Promise((resolveClose) => server.close(resolveClose));
  });

  const chunked = (text: string) => new ReadableStream({ start: (controller) => (controller.enqueue(new TextEncoder().encode(text)), controller.close()) });

  it('refuses a body of another type, declared or chunked, before the app sees it, with the request id', async () => {
    reached.length = 0;
    refusals.length = 0;
    const declared = await fetch(url, { method: 'POST', body: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': 'r-1' } });
    const streamed = await fetch(url, { method: 'PUT', body: chunked('{}'), duplex: 'half', headers: { 'content-type': 'text/plain' } } as RequestInit);
    const untyped = await fetch(url, { method: 'PATCH', body: new Uint8Array([123, 125]) });
    for (const response of [declared, streamed, untyped]) {
      expect(response.status).toBe(415);
      expect(await response.json()).toEqual({ code: 'UNSUPPORTED_MEDIA_TYPE', message: 'request body must be JSON (Content-Type: application/json)' });
      expect(response.headers.get('x-request-id')).toBeTruthy();
    }
    expect(declared.headers.get('x-request-id')).toBe('r-1');
    expect(reached).toEqual([]);
    expect(refusals).toEqual(['POST 415', 'PUT 415', 'PATCH 415']);
  });

  it('passes JSON bodies and bodiless requests through, and still bounds JSON ones', async () => {
    reached.length = 0;
    refusals.length = 0;
    expect((await fetch(url)).status).toBe(200);
    expect((await fetch(url, { method: 'POST', body: '', headers: { 'content-type': 'text/plain' } })).status).toBe(200);
    expect((await fetch(url, { method: 'POST', body: '{}', headers: { 'content-type': 'application/merge-patch+json' } })).status).toBe(200);
    expect((await fetch(url, { method: 'POST', body: chunked('{"a":1}'), duplex: 'half', headers: { 'content-type': 'application/json' } } as RequestInit)).status).toBe(200);
    expect((await fetch(url, { method: 'POST', body: 'x'.repeat(100), headers: { 'content-type': 'application/json' } })).status).toBe(413);
    expect(reached).toEqual(['streamed GET -', 'streamed POST text/plain', 'streamed POST application/merge-patch+json', 'fetch POST {"a":1}']);
    expect(refusals).toEqual(['POST 413']);
  });
});

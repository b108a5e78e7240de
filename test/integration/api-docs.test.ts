import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiDocs } from '../../src/adapters/http/api-docs.ts';
import { clientRoutes } from '../../src/adapters/http/client-routes.ts';
import { createHttpApp } from '../../src/adapters/http/http-app.ts';
import { notificationRoutes } from '../../src/adapters/http/notification-routes.ts';
import { silentLogger } from '../../src/application/ports/logger.port.ts';
import { CloseCodes } from '../../src/domain/protocol.ts';
import { startTestServer, type TestServer } from '../fixtures/test-server.ts';

/** The OpenAPI document and the offline documentation UI, on a real server. */
type Json = Record<string, any>;

const BASE = '/v1/api/signal';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
let server: TestServer;
let doc: Json;
let specResponse: Response;

beforeAll(async () => {
  server = await startTestServer();
  specResponse = await fetch(`${server.http}/doc/openapi.json`);
  doc = (await specResponse.json()) as Json;
});

afterAll(async () => {
  await server.running.stop();
});

function operations(document: Json): Array<{ path: string; method: string; operation: Json }> {
  return Object.entries(document.paths as Json).flatMap(([path, item]) =>
    Object.entries(item as Json)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, operation]) => ({ path, method, operation: operation as Json })),
  );
}

/** Follows a local `#/components/...` reference. */
function resolveRef(schema: Json): Json {
  if (typeof schema.$ref !== 'string') return schema;
  const target = (schema.$ref as string)
    .replace(/^#\//, '')
    .split('/')
    .reduce<Json | undefined>((node, key) => node?.[key], doc);
  expect(target, `unresolvable ${schema.$ref}`).toBeDefined();
  return target as Json;
}

function expectErrorBody(response: Json | undefined, where: string): void {
  expect(response, where).toBeDefined();
  expect(typeof response?.description, `${where}: description`).toBe('string');
  const schema = resolveRef(response?.content?.['application/json']?.schema ?? {});
  expect(schema.type, where).toBe('object');
  expect([...(schema.required as string[])].sort(), where).toEqual(['code', 'message']);
  expect(schema.properties.code.type, where).toBe('string');
  expect(schema.properties.message.type, where).toBe('string');
}

describe('the OpenAPI document', () => {
  it('is served as JSON at <base>/doc/openapi.json and is OpenAPI 3.1', () => {
    expect(specResponse.status).toBe(200);
    expect(specResponse.headers.get('content-type')).toMatch(/^application\/json/);
    expect(specResponse.headers.get('x-request-id')).toBeTruthy();
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
  });

  it('validates against the OpenAPI 3.1 schema', async () => {
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(validator.version).toBe('3.1');
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('names the service and summarises the WebSocket protocol and the bus', () => {
    expect(doc.info.title).toBe('signal');
    expect(doc.info.version).toMatch(/^\d+\.\d+\.\d+/);
    const description = doc.info.description as string;
    for (const phrase of ['`/stream`', 'authenticate', 'ECDH', 'HKDF-SHA-256', 'AES-256-GCM', 'encrypted', 'ws:broadcast', 'ws:room:', 'ws:client:', 'ws:user:']) {
      expect(description).toContain(phrase);
    }
    for (const { code, reason } of Object.values(CloseCodes)) expect(description).toContain(`| ${code} | ${reason} |`);
  });

  it('declares bearer JWT and Basic security schemes, the shared error schema and the tags', () => {
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    expect(doc.components.securitySchemes.basicAuth).toMatchObject({ type: 'http', scheme: 'basic' });
    expectErrorBody({ description: 'shared', content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } } }, 'ErrorResponse');
    const declared = (doc.tags as Json[]).map((tag) => tag.name as string);
    expect(declared).toEqual(expect.arrayContaining(['health', 'websocket']));
    // Exactly the tags in use: no empty section for a route group that is not mounted.
    const used = new Set(operations(doc).flatMap(({ operation }) => (operation.tags ?? []) as string[]));
    expect([...declared].sort()).toEqual([...used].sort());
  });

  it('lists the public, send and status routes under the base path', () => {
    const listed = operations(doc).map(({ method, path }) => `${method.toUpperCase()} ${path}`);
    expect(listed).toEqual(
      expect.arrayContaining([
        `GET ${BASE}/health`,
        `GET ${BASE}/ready`,
        `GET ${BASE}/socket/websocket/clients/status`,
        `POST ${BASE}/socket/websocket/clients/broadcast`,
        `POST ${BASE}/socket/websocket/clients/rooms/{room}/send`,
        `POST ${BASE}/socket/websocket/clients/users/{userId}/send`,
        `POST ${BASE}/socket/websocket/clients/{id}/send`,
      ]),
    );
    for (const path of Object.keys(doc.paths)) expect(path.startsWith(`${BASE}/`), path).toBe(true);
  });

  it('leaves out its own pages, assets and the document itself', () => {
    const paths = Object.keys(doc.paths);
    expect(paths.filter((path) => /\/(doc|explorer)(\/|$)/.test(path))).toEqual([]);
  });

  it('lists only routes that exist: none answers with the router 404', async () => {
    for (const { path, method } of operations(doc)) {
      const url = `http://127.0.0.1:${server.running.port}${path.replace(/\{[^}]+\}/g, 'x1')}`;
      const response = await fetch(url, { method: method.toUpperCase() });
      const body = await response.text();
      expect(body, `${method} ${path}`).not.toContain('no such route');
    }
  });

  it('gives every protected operation its security and {code, message} error responses', () => {
    const protectedOps = operations(doc).filter(({ operation }) => (operation.security ?? []).length > 0);
    expect(protectedOps.length).toBeGreaterThanOrEqual(4);
    for (const { path, method, operation } of protectedOps) {
      const where = `${method} ${path}`;
      for (const requirement of operation.security as Json[]) {
        for (const scheme of Object.keys(requirement)) expect(doc.components.securitySchemes[scheme], where).toBeDefined();
      }
      expectErrorBody(operation.responses?.['401'], `${where} 401`);
      // Client routes check a WebSocketClient.* permission; the inbox is the caller's own, so it has no 403.
      if (path.startsWith(`${BASE}/socket/websocket/clients/`)) {
        expect(operation.security).toEqual([{ bearerAuth: [] }, { basicAuth: [] }]);
        expectErrorBody(operation.responses?.['403'], `${where} 403`);
      }
      if ((operation.parameters ?? []).length > 0 || operation.requestBody !== undefined) {
        expectErrorBody(operation.responses?.['400'], `${where} 400`);
      }
    }
  });

  it('offers JSON request bodies only, each with its 415 for any other type', () => {
    const withBody = operations(doc).filter(({ operation }) => operation.requestBody !== undefined);
    expect(withBody.map(({ method, path }) => `${method.toUpperCase()} ${path}`)).toEqual(expect.arrayContaining([`POST ${BASE}/socket/websocket/clients/broadcast`]));
    for (const { path, method, operation } of withBody) {
      const where = `${method} ${path}`;
      // Other types are refused at the edge with 415; a route without `parse: 'json'` would offer Elysia's default form and multipart bodies here.
      expect(Object.keys(operation.requestBody.content), where).toEqual(['application/json']);
      expectErrorBody(operation.responses?.['415'], `${where} 415`);
      expect(operation.responses['415'].description, where).toContain('application/json');
    }
  });

  it('describes every error response with the shared {code, message} schema', () => {
    for (const { path, method, operation } of operations(doc)) {
      for (const [status, response] of Object.entries((operation.responses ?? {}) as Json)) {
        if (Number(status) >= 400) expectErrorBody(response as Json, `${method} ${path} ${status}`);
      }
    }
  });

  it('matches what a protected route really answers without credentials', async () => {
    const response = await fetch(`${server.http}/socket/websocket/clients/broadcast`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'e' }),
    });
    expect(response.status).toBe(401);
    const body = (await response.json()) as Json;
    expect(Object.keys(body).sort()).toEqual(['code', 'message']);
    expect(typeof body.code).toBe('string');
  });
});

describe('completeness against the routes an app really has', () => {
  it('documents every route of a fully mounted app except the documentation itself', async () => {
    // The document is built from route schemas alone; no handler runs here, so their dependencies are never used.
    const unused = {} as never;
    const app = createHttpApp({
      basePath: BASE,
      instanceId: 'docs-test',
      logger: silentLogger,
      readiness: () => [],
      connections: () => 0,
      instances: async () => 1,
      dev: unused,
      plugins: [
        clientRoutes({ access: unused, delivery: unused, directory: unused }),
        notificationRoutes({ access: unused, store: unused, clock: unused }),
        apiDocs({ basePath: BASE, version: '9.9.9', wsPath: '/stream' }),
      ],
    });
    const response = await app.handle(new Request(`http://localhost${BASE}/doc/openapi.json`));
    const full = (await response.json()) as Json;
    const documented = operations(full)
      .map(({ method, path }) => `${method.toUpperCase()} ${path}`)
      .sort();
    const served = app.routes
      .filter((route) => !/^\/v1\/api\/signal\/(doc|explorer)(\/|$)/.test(route.path))
      .map((route) => `${route.method} ${route.path.replace(/:([^/]+)/g, '{$1}').replace(/(.)\/$/, '$1')}`)
      .sort();
    expect(documented).toEqual(served);
    expect((full.tags as Json[]).map((tag) => tag.name)).toEqual(['health', 'websocket', 'notifications', 'dev']);
    expect(documented).toEqual(
      expect.arrayContaining([
        `GET ${BASE}/notifications`,
        `GET ${BASE}/notifications/count`,
        `PATCH ${BASE}/notifications/{id}/mark-read`,
        `PATCH ${BASE}/notifications/mark-all-read`,
        `POST ${BASE}/dev/token`,
      ]),
    );
    expect(full.info.version).toBe('9.9.9');
    const validator = new Validator();
    expect((await validator.validate(full)).valid).toBe(true);
  });
});

describe('the documentation UI', () => {
  async function page(path: string) {
    const response = await fetch(`${server.http}${path}`);
    return { response, html: await response.text() };
  }

  function assetUrls(html: string): string[] {
    const urls = [...html.matchAll(/<(?:script|link)\b[^>]*?\s(?:src|href)="([^"]+)"/g)].map((match) => match[1] as string);
    expect(urls.length).toBeGreaterThanOrEqual(3);
    return urls;
  }

  it.each(['/doc', '/explorer'])('%s serves the UI page with same-origin assets only', async (path) => {
    const { response, html } = await page(path);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(response.headers.get('x-request-id')).toBeTruthy();
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/\/\/[a-z0-9.-]+\//i);
    for (const url of assetUrls(html)) expect(url.startsWith(`${BASE}/doc/assets/`), url).toBe(true);
    expect(html).toContain(`data-spec-url="${BASE}/doc/openapi.json"`);
  });

  it('serves the same page at /doc and /explorer', async () => {
    expect((await page('/explorer')).html).toBe((await page('/doc')).html);
  });

  it('serves every asset the page references with its content type and long-lived caching', async () => {
    const { html } = await page('/doc');
    const types = new Set<string>();
    for (const url of assetUrls(html)) {
      const response = await fetch(`http://127.0.0.1:${server.running.port}${url}`);
      expect(response.status, url).toBe(200);
      const type = response.headers.get('content-type') ?? '';
      expect(type, url).toMatch(/^(text\/javascript|text\/css|image\/png)/);
      types.add(type.split(';')[0] as string);
      expect(response.headers.get('cache-control'), url).toContain('immutable');
      expect(response.headers.get('x-content-type-options'), url).toBe('nosniff');
      const body = new Uint8Array(await response.arrayBuffer());
      expect(body.byteLength, url).toBeGreaterThan(100);

      const etag = response.headers.get('etag');
      expect(etag, url).toBeTruthy();
      const again = await fetch(`http://127.0.0.1:${server.running.port}${url}`, { headers: { 'if-none-match': etag as string } });
      expect(again.status, url).toBe(304);
    }
    expect([...types].sort()).toEqual(['image/png', 'text/css', 'text/javascript']);
  });

  it('answers an unknown asset with a {code, message} 404', async () => {
    const response = await fetch(`${server.http}/doc/assets/nothing.js`);
    expect(response.status).toBe(404);
    expect(Object.keys((await response.json()) as Json).sort()).toEqual(['code', 'message']);
  });
});

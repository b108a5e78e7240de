import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.ts';

/** APP_ENV_BASE_PATH=/ puts every route at the root of the server. */
describe('APP_ENV_BASE_PATH=/', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ APP_ENV_BASE_PATH: '/' });
  });
  afterAll(async () => {
    await server?.running.stop();
  });

  it('serves health, status and JSON 404s at the root', async () => {
    const origin = `http://127.0.0.1:${server.running.port}`;
    const health = await fetch(`${origin}/health`);
    expect(health.status).toBe(200);
    const status = await fetch(`${origin}/socket/websocket/clients/status`);
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({ connections: 0 });
    const missing = await fetch(`${origin}/v1/api/signal/health`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: expect.any(String), message: expect.any(String) });
  });
});

import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { reply, serveCommands } from './lib/server-commands.ts';

/**
 * The LIMIT baseline of the rest-status scenario: a bare `node:http` server
 * (the same HTTP stack signal's Elysia app is served from) answering the
 * status route with the same JSON document signal returns, serialised per
 * request, with `content-type` and `content-length`. No router, request id,
 * metrics, hooks or Fetch API Request/Response objects.
 *
 * Bench-side control is the shared stdin channel (bench/lib/server-commands.ts):
 * `quit` and the profiler commands; it takes no broadcasts.
 */
const STATUS_PATH = `${process.env.APP_ENV_BASE_PATH ?? '/v1/api/signal'}/socket/websocket/clients/status`;
const instanceId = randomUUID();

const server = createServer((request, response) => {
  if (request.method !== 'GET' || request.url !== STATUS_PATH) {
    const body = JSON.stringify({ code: 'NOT_FOUND', message: 'no such route' });
    response.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    response.end(body);
    return;
  }
  const body = JSON.stringify({ status: 'ok', instanceId, connections: 0, instances: 1 });
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  response.end(body);
});

await new Promise<void>((resolveListen) => server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', resolveListen));

serveCommands({
  broadcast() {
    reply({ bench: 'error', message: 'the REST limit takes no broadcasts' });
  },
  stop: async () => {
    server.closeAllConnections();
    await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
  },
});

reply({ bench: 'ready', port: (server.address() as AddressInfo).port });

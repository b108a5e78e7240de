import type { IncomingMessage, ServerResponse } from 'node:http';
import { chooseRequestId } from './request-scope.ts';

/**
 * Request bodies are bounded before the framework reads them. A declared
 * Content-Length over the limit is refused without reading a byte; a
 * chunked body (no length) is read here, counting, and refused the moment it
 * passes the limit, so neither path can make the process buffer more.
 */
export const MAX_BODY_BYTES = 1024 * 1024;

/** What the node listener does with a request whose body is within bounds. */
export interface BodyLimitRoutes {
  /** The streaming path, for requests with no body or a declared length. */
  streamed(request: IncomingMessage, response: ServerResponse): void;
  /**
   * The app's fetch handler, for chunked bodies that were read and counted
   * here; the response is written here, with `requestId` as its X-Request-Id.
   */
  fetch(request: Request, requestId: string): Response | Promise<Response>;
  /** Called for every refusal, for metrics. */
  refused?(method: string): void;
}

export function bodyLimitListener(routes: BodyLimitRoutes, maxBytes = MAX_BODY_BYTES) {
  return (request: IncomingMessage, response: ServerResponse): void => {
    const declared = request.headers['content-length'];
    if (declared !== undefined) {
      if (Number(declared) > maxBytes) return refuse(routes, request, response, maxBytes);
      return routes.streamed(request, response);
    }
    if (request.headers['transfer-encoding'] === undefined) return routes.streamed(request, response);
    void readChunked(routes, request, response, maxBytes);
  };
}

async function readChunked(routes: BodyLimitRoutes, request: IncomingMessage, response: ServerResponse, maxBytes: number): Promise<void> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of request as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) return refuse(routes, request, response, maxBytes);
      chunks.push(chunk);
    }
  } catch {
    response.destroy();
    return;
  }
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || name === 'transfer-encoding') continue;
    for (const each of Array.isArray(value) ? value : [value]) headers.append(name, each);
  }
  const url = new URL(request.url ?? '/', `http://${request.headers.host ?? 'localhost'}`);
  const requestId = chooseRequestId(request.headers['x-request-id']);
  const answer = await routes.fetch(new Request(url, { method: request.method, headers, body: Buffer.concat(chunks) }), requestId);
  const body = Buffer.from(await answer.arrayBuffer());
  const outgoing: Record<string, string> = {};
  answer.headers.forEach((value, name) => {
    outgoing[name] = value;
  });
  outgoing['content-length'] = String(body.length);
  outgoing['x-request-id'] = requestId;
  response.writeHead(answer.status, outgoing);
  response.end(body);
}

function refuse(routes: BodyLimitRoutes, request: IncomingMessage, response: ServerResponse, maxBytes: number): void {
  routes.refused?.(request.method ?? 'POST');
  const body = JSON.stringify({ code: 'PAYLOAD_TOO_LARGE', message: `request body over ${maxBytes} bytes` });
  response.writeHead(413, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': chooseRequestId(request.headers['x-request-id']),
    connection: 'close',
  });
  // The rest of the body is not wanted: close once the answer is out.
  response.end(body, () => request.destroy());
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { chooseRequestId } from './request-scope.ts';

/**
 * Request bodies are checked before the framework reads them, for every
 * route at once.
 *
 * Type: every route that takes a body takes JSON, so a body of any other
 * type (or of none named) is refused with 415 without reading a byte. Form
 * and multipart bodies are what a browser sends cross-site without a CORS
 * preflight: parsed like JSON, they would let any page make a browser that
 * holds Basic credentials for the service broadcast (CSRF).
 *
 * Size: a declared Content-Length over the limit is refused without reading
 * a byte; a chunked body (no length) is read here, counting, and refused the
 * moment it passes the limit, so neither path can make the process buffer
 * more.
 *
 * A request with no body (no Content-Length, or 0, and no Transfer-Encoding:
 * every GET) goes straight through.
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
  /** Called for every refusal (413 or 415), for metrics. */
  refused?(method: string, status: number): void;
}

/**
 * `application/json` or a structured-syntax suffix `application/<name>+json`
 * (RFC 6839: `application/merge-patch+json`), in any case, with any
 * parameters (`; charset=utf-8`).
 */
const JSON_ESSENCE = /^application\/(?:[\w!#$%&'*+.^`|~-]+\+)?json$/;

const NOT_JSON = JSON.stringify({ code: 'UNSUPPORTED_MEDIA_TYPE', message: 'request body must be JSON (Content-Type: application/json)' });

/** Whether a Content-Type header names JSON; a missing one does not. */
export function isJsonMediaType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  if (contentType === 'application/json') return true;
  const end = contentType.indexOf(';');
  return JSON_ESSENCE.test((end === -1 ? contentType : contentType.slice(0, end)).trim().toLowerCase());
}

export function bodyLimitListener(routes: BodyLimitRoutes, maxBytes = MAX_BODY_BYTES) {
  const tooLarge = JSON.stringify({ code: 'PAYLOAD_TOO_LARGE', message: `request body over ${maxBytes} bytes` });
  return (request: IncomingMessage, response: ServerResponse): void => {
    const declared = request.headers['content-length'];
    const chunked = request.headers['transfer-encoding'] !== undefined;
    if (declared === undefined && !chunked) return routes.streamed(request, response);
    const length = declared === undefined ? 0 : Number(declared);
    // The type first: it needs no reading, and a body of the wrong type is refused whatever its size.
    if ((chunked || length > 0) && !isJsonMediaType(request.headers['content-type'])) {
      return refuse(routes, request, response, 415, NOT_JSON);
    }
    if (length > maxBytes) return refuse(routes, request, response, 413, tooLarge);
    if (declared !== undefined) return routes.streamed(request, response);
    void readChunked(routes, request, response, maxBytes, tooLarge);
  };
}

async function readChunked(routes: BodyLimitRoutes, request: IncomingMessage, response: ServerResponse, maxBytes: number, tooLarge: string): Promise<void> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of request as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) return refuse(routes, request, response, 413, tooLarge);
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

/** Answers `{code, message}` without reading the body, then closes: the rest of the body is not wanted. */
function refuse(routes: BodyLimitRoutes, request: IncomingMessage, response: ServerResponse, status: 413 | 415, body: string): void {
  routes.refused?.(request.method ?? 'POST', status);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': chooseRequestId(request.headers['x-request-id']),
    connection: 'close',
  });
  response.end(body, () => request.destroy());
}

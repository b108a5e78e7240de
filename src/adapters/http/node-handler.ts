import type { IncomingMessage, ServerResponse } from 'node:http';
import { FastResponse, NodeRequest, sendNodeResponse } from 'srvx/node';
import { chooseRequestId, inRequestScope, recordRequest } from './request-scope.ts';

export type FetchHandler = (request: Request) => Response | Promise<Response>;

/** How node:http requests reach the app. */
export interface RequestHandlers {
  /** node:http's request listener, for requests whose body (if any) the app reads itself. */
  node(request: IncomingMessage, response: ServerResponse): void;
  /**
   * A Request built beforehand (a chunked body read and counted first), with
   * the id its response will carry; the caller writes that response and
   * its `X-Request-Id`.
   */
  fetch(request: Request, requestId: string): Promise<Response>;
}

export interface RequestHandlerOptions {
  /**
   * Paths (no query string) served outside a request scope: routes that
   * write no log line while they run. Every other path runs in one.
   */
  unscopedPaths?: ReadonlySet<string>;
  /** Called once per request, with the status sent, when its response has been handed to node:http. */
  answered?(request: Request, status: number): void;
}

const INTERNAL_ERROR = JSON.stringify({ code: 'INTERNAL_ERROR', message: 'internal error' });

/**
 * The edge between node:http and the app's Fetch handler, shared by every
 * route (it replaces srvx's toNodeHandler): srvx's lazy NodeRequest in, the
 * app's Response written back (see `send`). It also owns the per-request
 * work that needs no router: choosing the request id (the caller's
 * X-Request-Id, or a new one) and putting it on the response, the record
 * the app's hooks read, the request scope for log lines, and reporting
 * the status sent.
 */
export function requestHandlers(fetch: FetchHandler, options: RequestHandlerOptions = {}): RequestHandlers {
  const unscoped = options.unscopedPaths ?? new Set<string>();
  const answered = options.answered ?? (() => undefined);

  const begin = (request: Request, requestId: string, scoped: boolean): { answer: Response | Promise<Response>; leave?: () => void } => {
    recordRequest(request, requestId);
    if (!scoped) return { answer: fetch(request) };
    const { result, leave } = inRequestScope(requestId, () => fetch(request));
    return { answer: result, leave };
  };

  return {
    node(req, res) {
      const requestId = chooseRequestId(req.headers['x-request-id']);
      const request = new NodeRequest({ req, res });
      let started: ReturnType<typeof begin>;
      try {
        started = begin(request, requestId, !unscoped.has(pathOf(req.url)));
      } catch {
        answered(request, fail(res, requestId));
        return;
      }
      const { answer, leave } = started;
      if (!(answer instanceof Promise)) {
        answered(request, send(res, answer, requestId));
        leave?.();
        return;
      }
      answer.then(
        (response) => {
          answered(request, send(res, response, requestId));
          leave?.();
        },
        () => {
          answered(request, fail(res, requestId));
          leave?.();
        },
      );
    },

    async fetch(request, requestId) {
      const { answer, leave } = begin(request, requestId, true);
      try {
        const response = await answer;
        answered(request, response.status);
        return response;
      } catch (error) {
        answered(request, 500);
        throw error;
      } finally {
        leave?.();
      }
    },
  };
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/**
 * Writes the app's answer with its X-Request-Id. The app's responses are
 * srvx's FastResponse, which hands over status, headers and body without
 * building a Fetch Response; a body already in memory (every JSON answer)
 * goes out in one `end`, with the header added to the list. Streams, and
 * Responses of other kinds, go through srvx's own sender.
 */
function send(res: ServerResponse, response: Response, requestId: string): number {
  if (isFastResponse(response)) {
    const prepared = response._toNodeResponse();
    const { body } = prepared;
    if (body === null || body === undefined || typeof body === 'string' || body instanceof Uint8Array) {
      prepared.headers.push('x-request-id', requestId);
      res.writeHead(prepared.status, prepared.statusText, prepared.headers);
      res.end(body);
      return prepared.status;
    }
    // Taking it apart consumed it: the parts go back to srvx as a new
    // FastResponse (which also takes a node stream as its body).
    response = new FastResponse(body as BodyInit, { status: prepared.status, statusText: prepared.statusText, headers: pairs(prepared.headers) });
  }
  const { status } = response;
  // srvx's writeHead keeps a header set here unless the response names it too.
  res.setHeader('x-request-id', requestId);
  sendNodeResponse(res, response).catch(() => res.destroy());
  return status;
}

function isFastResponse(response: Response): response is FastResponse {
  return typeof (response as Partial<FastResponse>)._toNodeResponse === 'function';
}

function pairs(flat: readonly string[]): [string, string][] {
  const list: [string, string][] = [];
  for (let index = 0; index < flat.length; index += 2) list.push([flat[index]!, flat[index + 1]!]);
  return list;
}

/** The app's handler rejected (its own error hook maps every failure, so this is a bug): answer like the error hook would. */
function fail(res: ServerResponse, requestId: string): number {
  if (res.headersSent) res.destroy();
  else {
    res.writeHead(500, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(INTERNAL_ERROR), 'x-request-id': requestId });
    res.end(INTERNAL_ERROR);
  }
  return 500;
}

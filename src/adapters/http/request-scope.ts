import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../application/ports/logger.port.ts';

/**
 * What the HTTP edge knows about one request while it is handled: the id it
 * answers with (`X-Request-Id`), and for the request metrics when it
 * started and which route template took it.
 */
export interface RequestRecord {
  readonly requestId: string;
  /** `performance.now()` when the request reached the app. */
  readonly startedAt: number;
  /** The router's template, once a route took the request; never the raw path. */
  route: string | undefined;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's `X-Request-Id` when it is a usable one, otherwise a new one (`newRequestId`). */
export function chooseRequestId(given: string | readonly string[] | null | undefined): string {
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : newRequestId();
}

/*
 * The ids this process makes: 16 random hex digits drawn once per process,
 * then the request's sequence number in base 36 (`3f9c0a1be27d4c55-1k2`).
 * Unique across instances and restarts without coordination (64 random
 * bits per process), ordered within one, and cheap: a random UUID per
 * request, serialised digit by digit and flattened when the header was
 * written, cost the status route 0.70 → 0.77 × the bare node:http limit's
 * requests/s in a paired A/B (bench/rest-ab.ts). An id is a correlation
 * handle, not a secret: the sequence number shows how many requests this
 * process has answered, nothing more.
 */
const PROCESS_PREFIX = randomBytes(8).toString('hex');
let sequence = 0;

/** A request id of this process's own. */
export function newRequestId(): string {
  sequence += 1;
  return `${PROCESS_PREFIX}-${sequence.toString(36)}`;
}

/*
 * Carried on the Request under a symbol of ours rather than in a WeakMap
 * keyed by it: with a WeakMap entry per request, --trace-gc on the
 * rest-status bench showed young-generation collections of ~5 ms instead
 * of ~1 ms and an old generation growing with request garbage.
 */
const RECORD = Symbol('signal.requestRecord');

interface Recorded {
  [RECORD]?: RequestRecord;
}

export function recordRequest(request: Request, requestId: string): RequestRecord {
  const record: RequestRecord = { requestId, startedAt: performance.now(), route: undefined };
  (request as Request & Recorded)[RECORD] = record;
  return record;
}

/** Undefined only for a request that did not come through the edge's handlers (tests calling the app directly). */
export function requestRecord(request: Request): RequestRecord | undefined {
  return (request as Request & Recorded)[RECORD];
}

interface RequestScope {
  requestId: string | undefined;
}

/*
 * Why the scope is not entered for every request: on Node 20 an
 * AsyncLocalStorage, once run, turns on promise hooks for the whole process
 * (every promise and tick pays for them; ~20 µs of a ~65 µs request on the
 * rest-status bench). Routes that log nothing while they run are therefore
 * served outside any scope; see `unscopedPaths` in http-app.ts. Any other
 * storage run in the process turns the hooks on just the same: with a
 * database, MikroORM's (transactions, every flush) does.
 */
const requestScope = new AsyncLocalStorage<RequestScope>();

/**
 * Runs `handle` in a scope of its own in which every line a
 * requestScopedLogger writes, wherever in the code (route handlers, the use
 * cases they call), carries `requestId`. Call the returned `leave` once the
 * response is out: work the request left running is no longer "while
 * handling" it and writes no id from then on.
 */
export function inRequestScope<T>(requestId: string, handle: () => T): { result: T; leave: () => void } {
  const scope: RequestScope = { requestId };
  const result = requestScope.run(scope, handle);
  return {
    result,
    leave: () => {
      scope.requestId = undefined;
    },
  };
}

/** Adds the id of the request being handled, if any, to every line. */
export function requestScopedLogger(logger: Logger): Logger {
  return {
    debug: (fields, message) => logger.debug(withRequestId(fields), message),
    info: (fields, message) => logger.info(withRequestId(fields), message),
    warn: (fields, message) => logger.warn(withRequestId(fields), message),
    error: (fields, message) => logger.error(withRequestId(fields), message),
    child: (bindings) => requestScopedLogger(logger.child(bindings)),
  };
}

function withRequestId(fields: Record<string, unknown>): Record<string, unknown> {
  const requestId = requestScope.getStore()?.requestId;
  return requestId === undefined || fields.requestId !== undefined ? fields : { requestId, ...fields };
}

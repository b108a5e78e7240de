import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Elysia, StatusMap, t } from 'elysia';
import { node } from '@elysiajs/node';
import type { DependencyHealth } from '../../application/ports/lifecycle.port.ts';
import type { Logger } from '../../application/ports/logger.port.ts';
import { noopMetrics, type Metrics } from '../../application/ports/metrics.port.ts';
import { SignalError } from '../../domain/errors.ts';
import { routeLabel } from '../metrics/route-label.ts';

export interface DevRoutes {
  jwks(): unknown;
  sign(input: { userId: string; roles?: string[]; expiresInSec?: number }): Promise<string>;
  /** Feeds one activity event to the same pipeline Kafka feeds (embedded mode). */
  submitActivity(text: string): Promise<{ ok: true; created: number; recipients: number } | { ok: false; reason: string }>;
}

export interface HttpAppDeps {
  basePath: string;
  instanceId: string;
  logger: Logger;
  /** Every dependency's state, for /ready. */
  readiness(): DependencyHealth[];
  /** Live connections on this instance. */
  connections(): number;
  /** Live instances of the cluster (1 without a shared registry). */
  instances(): Promise<number>;
  /** Present only while the embedded dev issuer is in use. */
  dev?: DevRoutes;
  /** Feature route groups, mounted under the base path after the shared hooks. */
  plugins?: AnyElysia[];
  /** Counts every request by route template and status. */
  metrics?: Metrics;
  /** Present when `GET /metrics` is served; absent, that route answers 404. */
  exposition?: MetricsExposition;
}

/** The scrape output: Prometheus text format. */
export interface MetricsExposition {
  readonly contentType: string;
  render(): Promise<string>;
}

type AnyElysia = Elysia<any, any, any, any, any, any, any>;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

interface RequestScope {
  requestId?: string;
}

const requestScope = new AsyncLocalStorage<RequestScope>();

/**
 * Runs the handling of one HTTP request in a scope of its own, in which
 * the app records the request id once chosen; every line a
 * requestScopedLogger writes from that work (route handlers, the use cases
 * they call, the error hook) then carries `requestId`.
 */
export function inRequestScope<T>(handle: () => T): T {
  return requestScope.run({}, handle);
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

/** Status of a finished response: a returned Response's own, else what was set (code or reason phrase). */
function responseStatus(set: number | string | undefined, returned: unknown): number {
  if (returned instanceof Response) return returned.status;
  if (typeof set === 'number') return set;
  return set === undefined ? 200 : ((StatusMap as Record<string, number>)[set] ?? 200);
}

/** Maps a failure to the HTTP status and the `{code, message}` body; never a stack. */
export function errorResponse(code: unknown, error: unknown): { status: number; body: { code: string; message: string } } {
  if (code === 'VALIDATION') {
    const detail = error as {
      type?: string;
      customError?: unknown;
      valueError?: { path?: string; message?: string };
      all?: { path?: string; message?: string }[];
    };
    // A schema's own `error` text already names its field.
    if (typeof detail.customError === 'string' && detail.customError.length > 0) {
      return { status: 400, body: { code: 'VALIDATION_FAILED', message: detail.customError } };
    }
    const first = detail.valueError ?? detail.all?.[0];
    const where = detail.type === 'property' || detail.type === undefined ? 'request' : detail.type;
    const field = (first?.path ?? '').replace(/^\//, '').replace(/\//g, '.') || where;
    return { status: 400, body: { code: 'VALIDATION_FAILED', message: `${field}: ${first?.message ?? 'invalid value'}` } };
  }
  // Input nested deeply enough to exhaust the stack while being validated.
  if (error instanceof RangeError && /call stack/i.test(error.message)) {
    return { status: 400, body: { code: 'INVALID_BODY', message: 'request body is nested too deeply' } };
  }
  if (code === 'PARSE') return { status: 400, body: { code: 'INVALID_BODY', message: 'request body is not valid JSON' } };
  if (code === 'NOT_FOUND') return { status: 404, body: { code: 'NOT_FOUND', message: 'no such route' } };
  if (error instanceof SignalError) {
    const status = STATUS_BY_CODE[error.code] ?? 400;
    return { status, body: { code: error.code, message: error.message } };
  }
  const status = (error as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { status, body: { code: 'REQUEST_REJECTED', message: (error as Error).message || 'request rejected' } };
  }
  return { status: 500, body: { code: 'INTERNAL_ERROR', message: 'internal error' } };
}

const STATUS_BY_CODE: Record<string, number> = {
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404,
  ERR_TOKEN_INVALID: 401,
  ERR_TOKEN_EXPIRED: 401,
  ERR_TOKEN_ALGORITHM: 401,
  ERR_JWKS_UNAVAILABLE: 503,
  ERR_PRESENCE_INPUT: 400,
  ERR_DATA_UNSERIALIZABLE: 400,
  ERR_PRESENCE_UNAVAILABLE: 503,
  ERR_CONTROL_UNAVAILABLE: 503,
  ERR_BUS_UNAVAILABLE: 503,
};

/**
 * The REST surface under the base path. Built without listening: bootstrap
 * serves `app.fetch` from its own node:http server, which also carries the
 * WebSocket upgrades.
 */
export function createHttpApp(deps: HttpAppDeps) {
  const metrics = deps.metrics ?? noopMetrics;
  const startedAt = new WeakMap<Request, number>();
  const app = new Elysia({ adapter: node(), prefix: deps.basePath, normalize: false })
    .onRequest(({ request, set }) => {
      startedAt.set(request, performance.now());
      const given = request.headers.get('x-request-id');
      const requestId = given !== null && REQUEST_ID.test(given) ? given : randomUUID();
      set.headers['x-request-id'] = requestId;
      const scope = requestScope.getStore();
      if (scope !== undefined) scope.requestId = requestId;
    })
    .onAfterResponse({ as: 'global' }, ({ request, route, set, responseValue }) => {
      const began = startedAt.get(request);
      const durationMs = began === undefined ? 0 : performance.now() - began;
      metrics.httpRequest(routeLabel(route, deps.basePath), request.method, responseStatus(set.status, responseValue), durationMs);
      // Work the request left running is no longer "while handling" it.
      const scope = requestScope.getStore();
      if (scope !== undefined) scope.requestId = undefined;
    })
    .onError({ as: 'global' }, ({ code, error, set, request }) => {
      const { status, body } = errorResponse(code, error);
      if (status >= 500) {
        deps.logger.error(
          { requestId: set.headers['x-request-id'], method: request.method, code: body.code, err: (error as Error).message },
          'request failed',
        );
      }
      set.status = status;
      set.headers['content-type'] = 'application/json';
      if (status === 401) set.headers['www-authenticate'] = 'Bearer, Basic realm="signal"';
      return body;
    })
    .get('/health', () => ({ status: 'ok' }), { detail: { summary: 'Liveness', tags: ['health'] } })
    .get(
      '/ready',
      ({ set }) => {
        const dependencies = deps.readiness();
        const ready = dependencies.every((dependency) => dependency.ready);
        set.status = ready ? 200 : 503;
        return { status: ready ? 'ready' : 'not-ready', dependencies };
      },
      { detail: { summary: 'Readiness: each dependency and its state', tags: ['health'] } },
    )
    .get(
      '/socket/websocket/clients/status',
      async () => ({
        status: 'ok',
        instanceId: deps.instanceId,
        connections: deps.connections(),
        instances: await deps.instances(),
      }),
      { detail: { summary: 'This instance and the number of live instances', tags: ['websocket'] } },
    );

  if (deps.exposition !== undefined) {
    const exposition = deps.exposition;
    app.get(
      '/metrics',
      // A Response, because a returned string would be labelled plain text.
      async () => new Response(await exposition.render(), { headers: { 'content-type': exposition.contentType } }),
      { detail: { summary: 'Prometheus metrics (text exposition format)', tags: ['health'] } },
    );
  }

  for (const plugin of deps.plugins ?? []) app.use(plugin);

  if (deps.dev !== undefined) {
    const dev = deps.dev;
    app
      .get('/dev/jwks.json', () => dev.jwks(), { detail: { summary: 'Embedded dev issuer key set', tags: ['dev'] } })
      .post(
        '/dev/token',
        async ({ body }) => ({ token: await dev.sign({ userId: body.userId, roles: body.roles, expiresInSec: body.expiresInSec }) }),
        {
          body: t.Object({
            userId: t.String({ minLength: 1, maxLength: 128 }),
            roles: t.Optional(t.Array(t.String({ minLength: 1, maxLength: 64 }), { maxItems: 20 })),
            expiresInSec: t.Optional(t.Integer({ minimum: 10, maximum: 86_400 })),
          }),
          detail: { summary: 'Issue a dev token (embedded mode only)', tags: ['dev'] },
        },
      )
      .post(
        '/dev/activity-events',
        async ({ request, set }) => {
          const result = await dev.submitActivity(await request.text());
          if (!result.ok) {
            set.status = 400;
            return { code: 'INVALID_EVENT', message: result.reason };
          }
          set.status = 202;
          return { created: result.created, recipients: result.recipients };
        },
        {
          parse: 'none',
          detail: {
            summary: 'Submit an activity event as if it came from Kafka (embedded mode only)',
            description: 'The body is the Kafka message value: the activity event JSON.',
            tags: ['dev'],
          },
        },
      );
  }
  return app;
}

export type HttpApp = ReturnType<typeof createHttpApp>;

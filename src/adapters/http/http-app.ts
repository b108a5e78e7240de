import { performance } from 'node:perf_hooks';
import { Elysia, t } from 'elysia';
import { node } from '@elysiajs/node';
import type { DependencyHealth } from '../../application/ports/lifecycle.port.ts';
import type { Logger } from '../../application/ports/logger.port.ts';
import type { Metrics } from '../../application/ports/metrics.port.ts';
import { SignalError } from '../../domain/errors.ts';
import { routeLabel } from '../metrics/route-label.ts';
import { requestRecord } from './request-scope.ts';

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
  /**
   * Live instances of the cluster (1 without a shared registry): a number
   * when a recent count is at hand, otherwise the lookup's promise.
   */
  instances(): number | Promise<number>;
  /** Present only while the embedded dev issuer is in use. */
  dev?: DevRoutes;
  /** Feature route groups, mounted under the base path after the shared hooks. */
  plugins?: AnyElysia[];
  /** Present when `GET /metrics` is served; absent, that route answers 404. */
  exposition?: MetricsExposition;
}

/** The scrape output: Prometheus text format. */
export interface MetricsExposition {
  readonly contentType: string;
  render(): Promise<string>;
}

type AnyElysia = Elysia<any, any, any, any, any, any, any>;

/**
 * Routes (relative to the base path) whose handling writes no log line:
 * the probes and the scrape. They are served outside a request scope, which
 * on Node 20 costs every request of the process (request-scope.ts). A route
 * added here must not call anything that logs.
 */
const UNSCOPED_ROUTES: ReadonlySet<string> = new Set(['/health', '/ready', '/socket/websocket/clients/status', '/metrics']);

/** The request paths (with and without a trailing slash) of the app's UNSCOPED_ROUTES, for requestHandlers. */
export function unscopedPaths(app: AnyElysia, basePath: string): Set<string> {
  const paths = new Set<string>();
  for (const route of app.routes) {
    if (route.method !== 'GET' || !UNSCOPED_ROUTES.has(routeLabel(route.path, basePath))) continue;
    paths.add(route.path);
    paths.add(`${route.path}/`);
  }
  return paths;
}

/**
 * Counts one answered request by route template, method and status, with
 * its duration: what requestHandlers calls once the response is out.
 */
export function countRequests(metrics: Metrics, basePath: string): (request: Request, status: number) => void {
  // Route templates are few and fixed: each label is worked out once.
  const labels = new Map<string | undefined, string>();
  return (request, status) => {
    const record = requestRecord(request);
    if (record === undefined) return;
    let label = labels.get(record.route);
    if (label === undefined) labels.set(record.route, (label = routeLabel(record.route, basePath)));
    metrics.httpRequest(label, request.method, status, performance.now() - record.startedAt);
  };
}

/** Remembers which route took the request, for countRequests. */
function noteRoute(request: Request, route: string | undefined): void {
  const record = requestRecord(request);
  if (record !== undefined && route !== undefined && route.length > 0) record.route = route;
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
 * serves it from its own node:http server through requestHandlers
 * (node-handler.ts), which also gives every request its id and
 * X-Request-Id; the server also carries the WebSocket upgrades.
 */
export function createHttpApp(deps: HttpAppDeps) {
  const logFailure = (request: Request, code: string, error: unknown): void => {
    deps.logger.error({ requestId: requestRecord(request)?.requestId, method: request.method, code, err: (error as Error).message }, 'request failed');
  };
  const statusDocument = (instances: number) => ({ status: 'ok', instanceId: deps.instanceId, connections: deps.connections(), instances });
  // The count had to be looked up: its failure is answered as the error hook
  // would have, since the hook has already been passed by then.
  const lookedUpStatus = (instances: Promise<number>, request: Request) =>
    instances.then(statusDocument, (error: unknown) => {
      const { status, body } = errorResponse(undefined, error);
      if (status >= 500) logFailure(request, body.code, error);
      return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
    });
  // Neither async nor `return f(` in its text, so Elysia composes the route
  // without an await: while the instance count is fresh the whole request is
  // answered in the turn that read it (node-handler.test.ts checks this).
  function clientsStatus({ request }: { request: Request }) {
    const instances = deps.instances();
    const answer = typeof instances === 'number' ? statusDocument(instances) : lookedUpStatus(instances, request);
    return answer;
  }

  const app = new Elysia({ adapter: node(), prefix: deps.basePath, normalize: false })
    // For countRequests. Runs inline in each route's compiled handler:
    // cheaper than an afterResponse hook, which Elysia schedules with
    // setImmediate per request. Failures note their route in the error hook.
    // A block body: Elysia would take `=> expression` for a hook that may answer.
    .onBeforeHandle({ as: 'global' }, function noteRouteTaken({ request, route }) {
      noteRoute(request, route);
    })
    .onError({ as: 'global' }, ({ code, error, set, request, route }) => {
      noteRoute(request, route);
      const { status, body } = errorResponse(code, error);
      if (status >= 500) logFailure(request, body.code, error);
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
    .get('/socket/websocket/clients/status', clientsStatus, {
      detail: {
        summary: 'This instance and the number of live instances',
        description: 'The instance count is at most one second old: polls within a second of a lookup share it.',
        tags: ['websocket'],
      },
    });

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
          // JSON whichever JSON type names it; the edge (body-limit.ts) refuses other types.
          parse: 'json',
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

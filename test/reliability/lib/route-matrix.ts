import { RawClient } from '../../fixtures/raw-client.ts';
import type { Checks } from './checks.ts';
import { basicAuth, rawRequest } from './http.ts';
import type { SignalTarget } from './targets.ts';

/**
 * The REST authorization matrix of test/integration/client-routes.test.ts
 * ("authorization of the client routes"), the same routes and the same
 * credentials, as a function that runs against any target: there it runs
 * in-process, here also against a child process with a real database.
 * Keep the two in step when a client route is added.
 */
interface MatrixRoute {
  label: string;
  method: 'GET' | 'POST' | 'DELETE';
  path: () => Promise<string>;
  body?: unknown;
}

export interface ServiceCredentials {
  user: string;
  password: string;
}

export async function runRouteMatrix(target: SignalTarget, service: ServiceCredentials, checks: Checks): Promise<void> {
  const clients: RawClient[] = [];
  // DELETE and GET by id need a live client each time they succeed.
  const someClient = async (): Promise<string> => {
    const client = await RawClient.open(target.wsUrl);
    clients.push(client);
    await client.authenticate(await target.token(`matrix-target-${clients.length}`));
    return client.clientId;
  };
  const routes: MatrixRoute[] = [
    { label: 'list', method: 'GET', path: async () => '' },
    { label: 'get', method: 'GET', path: async () => `/${await someClient()}` },
    { label: 'disconnect', method: 'DELETE', path: async () => `/${await someClient()}` },
    { label: 'broadcast', method: 'POST', path: async () => '/broadcast', body: { event: 'e', data: 1 } },
    { label: 'room send', method: 'POST', path: async () => '/rooms/ws-default/send', body: { event: 'e', data: 1 } },
    { label: 'user send', method: 'POST', path: async () => '/users/someone/send', body: { event: 'e', data: 1 } },
    { label: 'client send', method: 'POST', path: async () => '/f47ac10b-58cc-4372-a567-0e02b2c3d479/send', body: { event: 'e', data: 1 } },
  ];
  const call = async (route: MatrixRoute, authorization?: string) => {
    const headers: Record<string, string> = {};
    if (route.body !== undefined) headers['content-type'] = 'application/json';
    if (authorization !== undefined) headers.authorization = authorization;
    return rawRequest(`${target.http}/socket/websocket/clients${await route.path()}`, {
      method: route.method,
      headers,
      body: route.body === undefined ? undefined : JSON.stringify(route.body),
    });
  };

  const plain = `Bearer ${await target.token('plain-user')}`;
  const admin = `Bearer ${await target.token('admin', ['ADMIN'])}`;
  const root = `Bearer ${await target.token('root', ['SUPER_ADMIN'])}`;
  const serviceAuth = basicAuth(service.user, service.password);
  try {
    for (const route of routes) {
      const none = await call(route);
      checks.record(
        `matrix ${route.label}: no credential`,
        none.status === 401 &&
          (none.json as { code?: string } | undefined)?.code === 'ERR_UNAUTHORIZED' &&
          String(none.headers['www-authenticate'] ?? '').includes('Bearer'),
        '401 ERR_UNAUTHORIZED with WWW-Authenticate',
        `${none.status} ${none.text.slice(0, 80)}`,
      );
      const refused: Array<[string, string]> = [
        ['wrong Basic password', basicAuth(service.user, 'wrong')],
        ['unknown Basic user', basicAuth('nobody', service.password)],
        ['forged bearer', 'Bearer not-a-token'],
      ];
      for (const [label, authorization] of refused) {
        const response = await call(route, authorization);
        checks.record(`matrix ${route.label}: ${label}`, response.status === 401, '401', `${response.status}`);
      }
      const forbidden = await call(route, plain);
      checks.record(
        `matrix ${route.label}: user without the role`,
        forbidden.status === 403 && (forbidden.json as { code?: string } | undefined)?.code === 'ERR_FORBIDDEN',
        '403 ERR_FORBIDDEN',
        `${forbidden.status} ${forbidden.text.slice(0, 80)}`,
      );
      for (const [label, authorization] of [
        ['ADMIN', admin],
        ['SUPER_ADMIN', root],
        ['service principal', serviceAuth],
      ] as const) {
        const response = await call(route, authorization);
        checks.record(`matrix ${route.label}: ${label}`, response.status === 200, '200', `${response.status} ${response.text.slice(0, 80)}`);
      }
    }
  } finally {
    for (const client of clients) client.close();
  }
}

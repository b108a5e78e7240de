import { Elysia, t } from 'elysia';
import type { Access } from '../../application/access.ts';
import type { ClientDirectory } from '../../application/client-directory.ts';
import type { Delivery } from '../../application/delivery.ts';
import { Permissions } from '../../domain/permissions.ts';

export interface ClientRoutesDeps {
  access: Access;
  delivery: Delivery;
  directory: ClientDirectory;
}

const EVENT = t.String({ minLength: 1, maxLength: 256, description: 'Event name the clients receive' });
const DATA = t.Optional(t.Any({ description: 'Any JSON value, delivered as the frame data' }));
const EXCLUDE = t.Optional(t.Array(t.String({ maxLength: 64 }), { maxItems: 10_000, description: 'Client ids that must not receive it' }));

const SendBody = t.Object({ event: EVENT, data: DATA }, { additionalProperties: false });
const FanOutBody = t.Object({ event: EVENT, data: DATA, exclude: EXCLUDE }, { additionalProperties: false });

const SendResult = t.Object(
  {
    local: t.Integer({ description: 'Connections on the receiving instance the message was handed to' }),
    published: t.Boolean({ description: 'Whether it went out to the other instances through the bus' }),
  },
  { description: 'Accepted for delivery (WebSocket delivery is at-most-once)' },
);

const ClientRecord = t.Object(
  {
    id: t.String({ description: 'Client id (UUID v4)' }),
    userId: t.String(),
    instanceId: t.String({ description: 'The signal instance holding the connection' }),
    state: t.Union([t.Literal('AUTHENTICATED'), t.Literal('ENCRYPTED')]),
    rooms: t.Array(t.String()),
    encrypted: t.Boolean(),
    connectedAt: t.String({ format: 'date-time' }),
    lastActivity: t.String({ format: 'date-time' }),
  },
  { description: 'A live connection; never carries keys or tokens' },
);

const ErrorBody = t.Object({ code: t.String(), message: t.String() });
// 413 and 415 come from the edge (body-limit.ts), before a route runs.
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 413: ErrorBody, 415: ErrorBody, 503: ErrorBody };
const readErrors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 503: ErrorBody };
const ClientId = t.Object({ id: t.String({ minLength: 1, maxLength: 64 }) });
const security: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { basicAuth: [] }];

/**
 * Operator and service routes over live clients, wherever they are
 * connected: list, inspect, message and disconnect. Each needs a JWT with
 * the route's permission, or Basic service credentials.
 *
 * Bodies are parsed as JSON (`parse: 'json'`) whichever JSON type names them
 * (`application/json`, `application/merge-patch+json`, ...): the edge has
 * already refused every other type with 415. Naming the parser also keeps
 * the OpenAPI document from offering Elysia's default form and multipart
 * bodies.
 */
export function clientRoutes(deps: ClientRoutesDeps) {
  const { access, delivery, directory } = deps;
  return new Elysia({ name: 'client-routes', prefix: '/socket/websocket/clients' })
    .get(
      '/',
      async ({ query, headers }) => {
        await access.authorize(headers.authorization, Permissions.find);
        return directory.find({ userId: query.userId, room: query.room, limit: query.limit ?? 50, offset: query.offset ?? 0 });
      },
      {
        query: t.Object({
          userId: t.Optional(t.String({ minLength: 1, maxLength: 256 })),
          room: t.Optional(t.String({ minLength: 1, maxLength: 256 })),
          limit: t.Optional(t.Numeric({ minimum: 1, maximum: 100, multipleOf: 1, error: 'limit: must be a whole number from 1 to 100' })),
          offset: t.Optional(t.Numeric({ minimum: 0, maximum: 9_900, multipleOf: 1, error: 'offset: must be a whole number from 0 to 9900' })),
        }),
        response: { 200: t.Object({ count: t.Integer(), items: t.Array(ClientRecord) }), ...readErrors },
        detail: { summary: 'Live clients of every instance, oldest connection first', tags: ['websocket'], security },
      },
    )
    .get(
      '/:id',
      async ({ params, headers }) => {
        await access.authorize(headers.authorization, Permissions.findById);
        return directory.get(params.id);
      },
      {
        params: ClientId,
        response: { 200: ClientRecord, ...readErrors },
        detail: { summary: 'One live client, on whichever instance holds it', tags: ['websocket'], security },
      },
    )
    .delete(
      '/:id',
      async ({ params, headers }) => {
        const principal = await access.authorize(headers.authorization, Permissions.disconnect);
        const requestedBy = principal.kind === 'user' ? `user:${principal.userId}` : `service:${principal.name}`;
        const { instanceId } = await directory.disconnect(params.id, requestedBy);
        return { disconnected: true, instanceId };
      },
      {
        params: ClientId,
        response: { 200: t.Object({ disconnected: t.Boolean(), instanceId: t.String() }), ...readErrors },
        detail: { summary: 'Close a client with 4008 on whichever instance holds it', tags: ['websocket'], security },
      },
    )
    .post(
      '/broadcast',
      async ({ body, headers }) => {
        await access.authorize(headers.authorization, Permissions.broadcast);
        return await delivery.broadcast(body.event, body.data, { exclude: body.exclude });
      },
      {
        parse: 'json',
        body: FanOutBody,
        response: { 200: SendResult, ...errors },
        detail: { summary: 'Send to every client', tags: ['websocket'], security },
      },
    )
    .post(
      '/rooms/:room/send',
      async ({ body, params, headers }) => {
        await access.authorize(headers.authorization, Permissions.sendToRoom);
        return await delivery.toRoom(params.room, body.event, body.data, { exclude: body.exclude });
      },
      {
        params: t.Object({ room: t.String({ minLength: 1, maxLength: 256 }) }),
        parse: 'json',
        body: FanOutBody,
        response: { 200: SendResult, ...errors },
        detail: { summary: 'Send to every client in a room', tags: ['websocket'], security },
      },
    )
    .post(
      '/users/:userId/send',
      async ({ body, params, headers }) => {
        await access.authorize(headers.authorization, Permissions.sendToUser);
        return await delivery.toUser(params.userId, body.event, body.data);
      },
      {
        params: t.Object({ userId: t.String({ minLength: 1, maxLength: 256 }) }),
        parse: 'json',
        body: SendBody,
        response: { 200: SendResult, ...errors },
        detail: { summary: "Send to all of a user's connections", tags: ['websocket'], security },
      },
    )
    .post(
      '/:id/send',
      async ({ body, params, headers }) => {
        await access.authorize(headers.authorization, Permissions.sendToClient);
        return await delivery.toClient(params.id, body.event, body.data);
      },
      {
        params: t.Object({ id: t.String({ minLength: 1, maxLength: 64 }) }),
        parse: 'json',
        body: SendBody,
        response: { 200: SendResult, ...errors },
        detail: { summary: 'Send to one client', tags: ['websocket'], security },
      },
    );
}

import { Elysia, t } from 'elysia';
import type { Access } from '../../application/access.ts';
import type { Delivery } from '../../application/delivery.ts';
import { Permissions } from '../../domain/permissions.ts';

export interface ClientRoutesDeps {
  access: Access;
  delivery: Delivery;
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

const ErrorBody = t.Object({ code: t.String(), message: t.String() });
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 413: ErrorBody, 503: ErrorBody };
const security: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { basicAuth: [] }];

/**
 * Operator and service routes that push messages to live clients, wherever
 * they are connected. Each needs a JWT with the permission, or Basic service
 * credentials.
 */
export function clientSendRoutes(deps: ClientRoutesDeps) {
  const { access, delivery } = deps;
  return new Elysia({ name: 'client-send-routes', prefix: '/socket/websocket/clients' })
    .post(
      '/broadcast',
      async ({ body, headers }) => {
        await access.authorize(headers.authorization, Permissions.broadcast);
        return await delivery.broadcast(body.event, body.data, { exclude: body.exclude });
      },
      { body: FanOutBody, response: { 200: SendResult, ...errors }, detail: { summary: 'Send to every client', tags: ['websocket'], security } },
    )
    .post(
      '/rooms/:room/send',
      async ({ body, params, headers }) => {
        await access.authorize(headers.authorization, Permissions.sendToRoom);
        return await delivery.toRoom(params.room, body.event, body.data, { exclude: body.exclude });
      },
      {
        params: t.Object({ room: t.String({ minLength: 1, maxLength: 256 }) }),
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
        body: SendBody,
        response: { 200: SendResult, ...errors },
        detail: { summary: 'Send to one client', tags: ['websocket'], security },
      },
    );
}

/**
 * Permission codes of the REST surface and the roles seeded with them. The
 * codes are stored in the `Permission` table and checked on every protected
 * route; the names are part of the contract other teams configure roles with.
 */
export const Permissions = {
  find: 'WebSocketClient.find',
  findById: 'WebSocketClient.findById',
  broadcast: 'WebSocketClient.broadcast',
  sendToRoom: 'WebSocketClient.sendToRoom',
  sendToUser: 'WebSocketClient.sendToUser',
  sendToClient: 'WebSocketClient.sendToClient',
  disconnect: 'WebSocketClient.disconnect',
} as const;

export type Permission = (typeof Permissions)[keyof typeof Permissions];

export const ALL_CLIENT_PERMISSIONS: readonly Permission[] = Object.values(Permissions);

/** Roles that hold every WebSocketClient permission from the first migration on. */
export const SEEDED_ADMIN_ROLES = ['SUPER_ADMIN', 'ADMIN'] as const;

/** Who is calling a protected route, once authenticated. */
export type Principal =
  | { kind: 'user'; userId: string; roles: readonly string[] }
  | { kind: 'service'; name: string };

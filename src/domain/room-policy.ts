import { DEFAULT_ROOMS } from './protocol.ts';

/**
 * Which rooms a client may join (protocol §5). The old service accepted
 * every name, which let anyone listen to anyone; here everything is refused
 * unless a rule admits it.
 */

export type MembershipKind = 'merchant' | 'organizer';

export interface RoomRules {
  /** Rooms everyone may join. */
  openRooms: readonly string[];
  /** `user:<id>` admits only the user `<id>`. */
  userRooms: boolean;
  /** `<kind>:<id>` admits only members of that merchant/organizer. */
  membershipRooms: readonly MembershipKind[];
  /** Extra names admitted to everyone, matched against the whole name. */
  allowPatterns: readonly RegExp[];
}

export const DEFAULT_ROOM_RULES: RoomRules = {
  openRooms: DEFAULT_ROOMS,
  userRooms: true,
  membershipRooms: ['merchant', 'organizer'],
  allowPatterns: [],
};

export const MAX_ROOM_NAME_LENGTH = 256;

export type RoomDecision =
  | { kind: 'allow' }
  | { kind: 'deny'; reason: RoomDenial }
  | { kind: 'needs-membership'; target: MembershipKind; targetId: string };

export type RoomDenial = 'invalid-name' | 'reserved' | 'client-id' | 'other-user' | 'not-allowed';

const CLIENT_ID_FORMAT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Client ids are UUIDs; any name in that format is reserved for direct delivery. */
export function looksLikeClientId(name: string): boolean {
  return name.length === 36 && CLIENT_ID_FORMAT.test(name);
}

export function evaluateRoom(name: unknown, userId: string, rules: RoomRules): RoomDecision {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_ROOM_NAME_LENGTH) {
    return { kind: 'deny', reason: 'invalid-name' };
  }
  if (name.startsWith('ws:')) return { kind: 'deny', reason: 'reserved' };
  // Checked whether or not such a client is connected here: the client may
  // live on another instance, and its direct messages must stay its own.
  if (looksLikeClientId(name)) return { kind: 'deny', reason: 'client-id' };
  if (rules.openRooms.includes(name)) return { kind: 'allow' };

  const colon = name.indexOf(':');
  if (colon > 0) {
    const prefix = name.slice(0, colon);
    const id = name.slice(colon + 1);
    if (prefix === 'user' && rules.userRooms) {
      return id === userId ? { kind: 'allow' } : { kind: 'deny', reason: 'other-user' };
    }
    const kind = rules.membershipRooms.find((candidate) => candidate === prefix);
    if (kind !== undefined && id.length > 0) return { kind: 'needs-membership', target: kind, targetId: id };
  }
  for (const pattern of rules.allowPatterns) {
    pattern.lastIndex = 0;
    const match = pattern.exec(name);
    if (match !== null && match.index === 0 && match[0].length === name.length) return { kind: 'allow' };
  }
  return { kind: 'deny', reason: 'not-allowed' };
}

/**
 * The `rooms` list of a join/leave frame, or null when the frame has none.
 * Entries are returned as sent (non-strings included) so that every one of
 * them is answered as accepted or rejected.
 */
export function roomsFromFrame(data: unknown): unknown[] | null {
  if (typeof data !== 'object' || data === null) return null;
  const rooms = (data as { rooms?: unknown }).rooms;
  return Array.isArray(rooms) ? rooms : null;
}

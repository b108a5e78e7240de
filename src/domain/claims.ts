import type { Identity, RoleClaim } from './identity.ts';

/**
 * Reads an identity out of a verified JWT claims set. The identity service has
 * emitted ids both as strings and as JSON numbers over time, so both are
 * accepted; anything else that is malformed is dropped rather than guessed at.
 * Returns null when no usable user id exists: such a token cannot be routed
 * to a user, so it must not authenticate anyone.
 */
export function identityFromClaims(claims: Record<string, unknown>): Identity | null {
  const userId = idFrom(claims['userId']) ?? idFrom(claims['sub']);
  if (userId === undefined) return null;

  const identity: Identity = { userId, roles: rolesFrom(claims['roles']) };
  const email = claims['email'];
  if (typeof email === 'string' && email !== '') identity.email = email;
  const name = claims['name'];
  if (typeof name === 'string' && name !== '') identity.name = name;
  const exp = claims['exp'];
  if (typeof exp === 'number' && Number.isFinite(exp)) identity.expiresAt = exp * 1000;
  return identity;
}

/**
 * A JSON number id is only trusted while it is a safe integer: past 2^53 the
 * parser has already rounded it, and two different users could collapse onto
 * the same id.
 */
function idFrom(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

function rolesFrom(value: unknown): RoleClaim[] {
  if (!Array.isArray(value)) return [];
  const roles: RoleClaim[] = [];
  for (const entry of value) {
    const role = roleFrom(entry);
    if (role !== undefined) roles.push(role);
  }
  return roles;
}

function roleFrom(entry: unknown): RoleClaim | undefined {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return undefined;
  const record = entry as Record<string, unknown>;
  const id = idFrom(record['id']);
  const identifier = record['identifier'];
  if (id === undefined || typeof identifier !== 'string' || identifier.trim() === '') return undefined;
  const priority = priorityFrom(record['priority']);
  if (priority === undefined) return undefined;
  return { id, identifier, priority };
}

/** Missing means "no particular priority" (0); a value that is present but unreadable voids the entry. */
function priorityFrom(value: unknown): number | undefined {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && value.trim() !== '') {
    const parsed = Number(value);
    return Number.isFinite(parsed) ? parsed : undefined;
  }
  return undefined;
}

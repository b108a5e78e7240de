import { createHash } from 'node:crypto';
import { ForbiddenError, SignalError, UnauthorizedError } from '../domain/errors.ts';
import { verifyPassword } from '../domain/password-hash.ts';
import type { Permission, Principal } from '../domain/permissions.ts';
import type { Clock } from './ports/clock.port.ts';
import type { PermissionDirectory } from './ports/permission-directory.port.ts';
import type { TokenVerifier } from './ports/token-verifier.port.ts';

/** A hash no password matches, checked for unknown users so their timing looks like known ones. */
const DECOY_HASH = 'scrypt$16384$8$1$c2lnbmFsLWRlY295LXNhbHQ=$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
/** scrypt is deliberately slow; a verified credential is remembered this long. */
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX_ENTRIES = 1_000;

/**
 * Who may call the REST surface: a bearer JWT (the same verifier as the
 * edge) whose roles grant the permission, or a service principal with Basic
 * credentials, which holds every permission.
 */
export class Access {
  private readonly verified = new Map<string, number>();

  constructor(
    private readonly verifier: TokenVerifier,
    private readonly permissions: PermissionDirectory,
    /** Service user name → password hash. */
    private readonly serviceUsers: ReadonlyMap<string, string>,
    private readonly clock: Clock,
  ) {}

  /** Any valid credential; throws UnauthorizedError otherwise. */
  async authenticate(authorization: string | null | undefined): Promise<Principal> {
    const header = authorization?.trim() ?? '';
    const space = header.indexOf(' ');
    const scheme = space === -1 ? header.toLowerCase() : header.slice(0, space).toLowerCase();
    const value = space === -1 ? '' : header.slice(space + 1).trim();
    if (scheme === 'bearer' && value.length > 0) return this.bearer(value);
    if (scheme === 'basic' && value.length > 0) return this.basic(value);
    throw new UnauthorizedError(header.length === 0 ? 'authentication required' : 'unsupported authorization scheme');
  }

  /** A valid credential that holds `permission`; 401 or 403 otherwise. */
  async authorize(authorization: string | null | undefined, permission: Permission): Promise<Principal> {
    const principal = await this.authenticate(authorization);
    if (principal.kind === 'service') return principal;
    const granted = await this.permissions.permissionsOf(principal.roles);
    if (!granted.has(permission)) throw new ForbiddenError(permission);
    return principal;
  }

  /** A user (not a service) identified by a bearer token: the inbox is personal. */
  async user(authorization: string | null | undefined): Promise<{ userId: string }> {
    const principal = await this.authenticate(authorization);
    if (principal.kind !== 'user') throw new UnauthorizedError('a user token is required');
    return { userId: principal.userId };
  }

  private async bearer(token: string): Promise<Principal> {
    try {
      const identity = await this.verifier.verify(token);
      return { kind: 'user', userId: identity.userId, roles: identity.roles.map((role) => role.identifier) };
    } catch (error) {
      // A key set that cannot be fetched is our outage, not the caller's fault.
      if (error instanceof SignalError && error.code === 'ERR_JWKS_UNAVAILABLE') throw error;
      throw new UnauthorizedError('invalid token');
    }
  }

  private async basic(encoded: string): Promise<Principal> {
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new UnauthorizedError('malformed basic credentials');
    const name = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const fingerprint = createHash('sha256').update(decoded).digest('base64');
    const now = this.clock.now();
    const until = this.verified.get(fingerprint);
    if (until !== undefined && until > now) return { kind: 'service', name };

    const hash = this.serviceUsers.get(name);
    const ok = await verifyPassword(password, hash ?? DECOY_HASH);
    if (!ok || hash === undefined) throw new UnauthorizedError('invalid credentials');
    if (this.verified.size >= VERIFIED_MAX_ENTRIES) this.verified.clear();
    this.verified.set(fingerprint, now + VERIFIED_TTL_MS);
    return { kind: 'service', name };
  }
}

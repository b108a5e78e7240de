import type { Identity } from '../../domain/identity.ts';

export type { Identity, RoleClaim } from '../../domain/identity.ts';

/**
 * Verifies a bearer JWT. Resolves with the identity, or rejects with a
 * `SignalError` subclass whose `code` says why (ERR_TOKEN_INVALID,
 * ERR_TOKEN_EXPIRED, ERR_TOKEN_ALGORITHM, ERR_JWKS_UNAVAILABLE). Bounded in
 * time: a slow key set ends in ERR_JWKS_UNAVAILABLE, never a hang.
 */
export interface TokenVerifier {
  verify(token: string): Promise<Identity>;
}

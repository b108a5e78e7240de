export interface RoleClaim {
  id: string;
  identifier: string;
  priority: number;
}

/** What a verified token tells about its bearer. Never holds the token itself. */
export interface Identity {
  userId: string;
  roles: RoleClaim[];
  email?: string;
  name?: string;
  /** `exp` in epoch milliseconds, when the token has one. */
  expiresAt?: number;
}

/**
 * Verifies a bearer JWT. Resolves with the identity, or rejects with a
 * `SignalError` subclass whose `code` says why (ERR_TOKEN_INVALID,
 * ERR_TOKEN_EXPIRED, ERR_TOKEN_ALGORITHM, ERR_JWKS_UNAVAILABLE). Bounded in
 * time: a slow key set ends in ERR_JWKS_UNAVAILABLE, never a hang.
 */
export interface TokenVerifier {
  verify(token: string): Promise<Identity>;
}

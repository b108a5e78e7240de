/** A role as the identity service puts it in the token's `roles` claim. */
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

/**
 * One base error with a stable machine-readable `code`; one subclass per
 * failure. Edges map these once: HTTP status + `{code, message}`, or a
 * WebSocket close code. Normal branches (a refused room, a rejected
 * transition) are return values, never these.
 */
export class SignalError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A token that did not verify: bad signature, malformed, wrong issuer/audience, unknown key. */
export class TokenInvalidError extends SignalError {
  constructor(reason = 'token verification failed', options?: { cause?: unknown }) {
    super('ERR_TOKEN_INVALID', reason, options);
  }
}

/** A token whose `exp` has passed (or whose `nbf` has not yet come). */
export class TokenExpiredError extends SignalError {
  constructor(message = 'token expired', options?: { cause?: unknown }) {
    super('ERR_TOKEN_EXPIRED', message, options);
  }
}

/** A token signed with an algorithm outside the allow-list (`none`, HMAC, ...). */
export class TokenAlgorithmError extends SignalError {
  constructor(message = 'token algorithm not allowed', options?: { cause?: unknown }) {
    super('ERR_TOKEN_ALGORITHM', message, options);
  }
}

/** The identity service's key set could not be fetched in time. */
export class KeySetUnavailableError extends SignalError {
  constructor(message = 'key set unavailable', options?: { cause?: unknown }) {
    super('ERR_JWKS_UNAVAILABLE', message, options);
  }
}

/**
 * Crypto failures carry one fixed generic message so that nothing about the
 * key, the point or the tag leaks to a peer or a log reader.
 */
export class InvalidPublicKeyError extends SignalError {
  constructor(options?: { cause?: unknown }) {
    super('ERR_INVALID_PUBLIC_KEY', 'Encryption handshake failed', options);
  }
}

export class DecryptionError extends SignalError {
  constructor(options?: { cause?: unknown }) {
    super('ERR_DECRYPTION_FAILED', 'Decryption failed', options);
  }
}

/** A configuration value that cannot be used; `variable` names the env var. */
export class ConfigError extends SignalError {
  readonly variable: string;

  constructor(variable: string, message: string) {
    super('ERR_CONFIG', `${variable}: ${message}`);
    this.variable = variable;
  }
}

/** No usable credential was presented (HTTP 401). */
export class UnauthorizedError extends SignalError {
  constructor(message = 'authentication required') {
    super('ERR_UNAUTHORIZED', message);
  }
}

/** The caller is known but lacks the permission (HTTP 403). */
export class ForbiddenError extends SignalError {
  constructor(permission: string) {
    super('ERR_FORBIDDEN', `missing permission ${permission}`);
  }
}

/** The thing does not exist, or the caller may not know it does (HTTP 404). */
export class NotFoundError extends SignalError {
  constructor(what: string) {
    super('ERR_NOT_FOUND', `${what} not found`);
  }
}

/** A message whose data cannot be turned into JSON (too deeply nested, cyclic). */
export class UnserializableDataError extends SignalError {
  constructor(options?: { cause?: unknown }) {
    super('ERR_DATA_UNSERIALIZABLE', 'data cannot be serialised as JSON (too deeply nested or cyclic)', options);
  }
}

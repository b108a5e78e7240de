/**
 * What the SDK tells its users when a session ends or a call cannot be
 * served: a name for every close code, and one coded error per failure.
 * Bundled for browsers with the rest of the SDK: no node: modules.
 */
import { SignalError } from '../../domain/errors.ts';
import { CloseCodes } from '../../domain/protocol.ts';

/** A name for every close code of protocol §8; anything unlisted is `abnormal`. */
export type CloseKind =
  | 'normal'
  | 'shutting-down'
  | 'policy-violation'
  | 'message-too-big'
  | 'auth-timeout'
  | 'heartbeat-timeout'
  | 'auth-failed'
  | 'encryption-required'
  | 'slow-consumer'
  | 'rate-limited'
  | 'token-expired'
  | 'disconnected-by-server'
  | 'abnormal';

const CLOSE_KINDS: ReadonlyMap<number, CloseKind> = new Map<number, CloseKind>([
  [1000, 'normal'],
  [CloseCodes.shuttingDown.code, 'shutting-down'],
  [CloseCodes.policyViolation.code, 'policy-violation'],
  [CloseCodes.messageTooBig.code, 'message-too-big'],
  [CloseCodes.authTimeout.code, 'auth-timeout'],
  [CloseCodes.heartbeatTimeout.code, 'heartbeat-timeout'],
  [CloseCodes.authFailed.code, 'auth-failed'],
  [CloseCodes.encryptionRequired.code, 'encryption-required'],
  [CloseCodes.slowConsumer.code, 'slow-consumer'],
  [CloseCodes.rateLimited.code, 'rate-limited'],
  [CloseCodes.tokenExpired.code, 'token-expired'],
  [CloseCodes.disconnectedByServer.code, 'disconnected-by-server'],
]);

export function closeKind(code: number): CloseKind {
  return CLOSE_KINDS.get(code) ?? 'abnormal';
}

/**
 * Closes that would only repeat with the same credentials and keys, or
 * that an operator meant to stick. `token-expired` joins them when the
 * token is a fixed string, since reconnecting would present it again;
 * that case is decided by the client, which knows where its token comes from.
 */
const FINAL_KINDS: ReadonlySet<CloseKind> = new Set<CloseKind>([
  'auth-failed',
  'encryption-required',
  'disconnected-by-server',
]);

export function isFinalKind(kind: CloseKind): boolean {
  return FINAL_KINDS.has(kind);
}

export class ConnectionClosedError extends SignalError {
  readonly closeCode: number;
  readonly reason: string;
  readonly kind: CloseKind;

  constructor(closeCode: number, reason: string, options?: { cause?: unknown }) {
    super('ERR_CONNECTION_CLOSED', `Connection closed: ${closeCode}${reason ? ` ${reason}` : ''}`, options);
    this.closeCode = closeCode;
    this.reason = reason;
    this.kind = closeKind(closeCode);
  }
}

export class NotConnectedError extends SignalError {
  constructor() {
    super('ERR_NOT_CONNECTED', 'Not connected');
  }
}

export class RequestTimeoutError extends SignalError {
  constructor(event: string, timeoutMs: number) {
    super('ERR_REQUEST_TIMEOUT', `No reply to ${event} within ${timeoutMs} ms`);
  }
}

/** The server sent something the protocol does not allow at that point. */
export class ProtocolViolationError extends SignalError {
  constructor(message: string) {
    super('ERR_PROTOCOL', message);
  }
}

import { UnserializableDataError } from './errors.ts';

/**
 * The fixed vocabulary of the /stream wire protocol: frame shape, event
 * names, error strings and close codes. Existing clients match on these
 * byte for byte, so they live in one place.
 */

export interface Frame {
  event: string;
  data?: unknown;
  id?: string;
}

export const Events = {
  authenticate: 'authenticate',
  connected: 'connected',
  error: 'error',
  encrypted: 'encrypted',
  heartbeat: 'heartbeat',
  join: 'join',
  joined: 'joined',
  leave: 'leave',
  left: 'left',
} as const;

export const ErrorMessages = {
  authenticationFailed: 'Authentication failed',
  handshakeFailed: 'Encryption handshake failed',
  alreadyAuthenticated: 'Already authenticated',
  notAuthenticated: 'Not authenticated',
  invalidFormat: 'Invalid message format',
  decryptionFailed: 'Decryption failed',
} as const;

export const DEFAULT_ROOMS = ['ws-default', 'ws-notification'] as const;

/** Every close the server initiates, with the reason string clients see. */
export const CloseCodes = {
  shuttingDown: { code: 1001, reason: 'Server shutting down' },
  policyViolation: { code: 1008, reason: 'Too many decryption failures' },
  messageTooBig: { code: 1009, reason: 'Message too big' },
  authTimeout: { code: 4001, reason: 'Authentication timeout' },
  heartbeatTimeout: { code: 4002, reason: 'Heartbeat timeout' },
  authFailed: { code: 4003, reason: 'Authentication failed' },
  encryptionRequired: { code: 4004, reason: 'Encryption required' },
  slowConsumer: { code: 4005, reason: 'Slow consumer' },
  rateLimited: { code: 4006, reason: 'Rate limit exceeded' },
  tokenExpired: { code: 4007, reason: 'Token expired' },
  disconnectedByServer: { code: 4008, reason: 'Disconnected by server' },
} as const;

export type CloseCode = (typeof CloseCodes)[keyof typeof CloseCodes];

/** Serialises in the wire order: `event`, then `data` (omitted when undefined). */
export function serializeFrame(event: string, data?: unknown): string {
  // JSON.stringify gives undefined for a function or symbol: treat as absent.
  let text: string | undefined;
  try {
    text = data === undefined ? undefined : (JSON.stringify(data) as string | undefined);
  } catch (error) {
    // Deep nesting overflows the stack; a cycle throws TypeError. Either is the caller's input.
    throw new UnserializableDataError({ cause: error });
  }
  if (text === undefined) return `{"event":${JSON.stringify(event)}}`;
  return `{"event":${JSON.stringify(event)},"data":${text}}`;
}

export type ParsedFrame = { ok: true; frame: Frame } | { ok: false };

/**
 * Parses one inbound text frame. Anything that is not a JSON object with a
 * string `event` (and, when present, a string `id`) is not a frame.
 */
export function parseFrame(text: string): ParsedFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false };
  const record = value as Record<string, unknown>;
  if (typeof record.event !== 'string' || record.event.length === 0) return { ok: false };
  if (record.id !== undefined && typeof record.id !== 'string') return { ok: false };
  const frame: Frame = { event: record.event };
  if (record.data !== undefined) frame.data = record.data;
  if (record.id !== undefined) frame.id = record.id as string;
  return { ok: true, frame };
}

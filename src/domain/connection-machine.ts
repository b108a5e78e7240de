import { CloseCodes, ErrorMessages, Events, type CloseCode, type Frame } from './protocol.ts';

/**
 * The lifecycle of one /stream connection as a pure step function. It decides
 * what the protocol demands (replies, closes, timers) and nothing else; the
 * WebSocket adapter executes the effects. No I/O and no clock of its own:
 * `now` comes with every step, so every rule is testable without waiting.
 */

export type Phase = 'CONNECTING' | 'AUTHENTICATED' | 'ENCRYPTED' | 'CLOSED';

export type TimerName = 'auth' | 'handshake' | 'heartbeat' | 'expiry';

export interface MachineSettings {
  requireEncryption: boolean;
  /** From open until `authenticate` arrives. */
  authTimeoutMs: number;
  /** From `authenticate` until the handshake has finished. */
  handshakeTimeoutMs: number;
  /** Silence (no inbound frame, no pong) that ends a connection. */
  heartbeatTimeoutMs: number;
  /** Undecryptable inbound frames tolerated before the connection is closed. */
  maxDecryptFailures: number;
  /** Inbound frames per second, sustained. */
  ratePerSecond: number;
  /** Inbound frames allowed in one burst. */
  rateBurst: number;
}

export const DEFAULT_MACHINE_SETTINGS: MachineSettings = {
  requireEncryption: true,
  authTimeoutMs: 5_000,
  handshakeTimeoutMs: 15_000,
  heartbeatTimeoutMs: 90_000,
  maxDecryptFailures: 3,
  ratePerSecond: 50,
  rateBurst: 100,
};

export interface ConnectionState {
  readonly phase: Phase;
  /** True between an accepted `authenticate` and its outcome. */
  readonly verifying: boolean;
  readonly lastActivity: number;
  readonly decryptFailures: number;
  readonly rateTokens: number;
  readonly rateUpdatedAt: number;
}

export type Effect =
  | { type: 'send-error'; message: string }
  | { type: 'close'; code: number; reason: string }
  | { type: 'arm'; timer: TimerName; at: number }
  | { type: 'disarm'; timer: TimerName }
  /** Verify the token and, when a key was offered, run the ECDH handshake. */
  | { type: 'authenticate'; token: string; clientPublicKey: unknown }
  /** Register the client (default rooms, user index) and send `connected`. */
  | { type: 'connected' }
  /** An application frame (join, leave, custom) for the application to handle. */
  | { type: 'dispatch'; frame: Frame };

export type MachineEvent =
  | { type: 'frame'; frame: Frame }
  | { type: 'invalid-frame' }
  | { type: 'decrypt-failed' }
  | { type: 'pong' }
  | { type: 'auth-succeeded'; encrypted: boolean; expiresAt?: number }
  | { type: 'auth-failed'; stage: 'token' | 'key' }
  | { type: 'timer'; timer: TimerName }
  /** The server decided to end the connection (shutdown, operator, slow consumer). */
  | { type: 'terminate'; close: CloseCode }
  /** The socket is gone, whoever closed it. */
  | { type: 'closed' };

export interface Step {
  state: ConnectionState;
  effects: Effect[];
}

export function initialState(settings: MachineSettings, now: number): Step {
  return {
    state: {
      phase: 'CONNECTING',
      verifying: false,
      lastActivity: now,
      decryptFailures: 0,
      rateTokens: settings.rateBurst,
      rateUpdatedAt: now,
    },
    effects: [{ type: 'arm', timer: 'auth', at: now + settings.authTimeoutMs }],
  };
}

export function isConnected(state: ConnectionState): boolean {
  return state.phase === 'AUTHENTICATED' || state.phase === 'ENCRYPTED';
}

const NONE: Effect[] = [];

function closeWith(state: ConnectionState, close: CloseCode, before: Effect[] = NONE): Step {
  return {
    state: { ...state, phase: 'CLOSED', verifying: false },
    effects: [...before, { type: 'close', code: close.code, reason: close.reason }],
  };
}

function failWith(state: ConnectionState, message: string, close: CloseCode): Step {
  return closeWith(state, close, [{ type: 'send-error', message }]);
}

/** Token bucket refilled continuously; returns null when the frame is over the rate. */
function takeRateToken(state: ConnectionState, settings: MachineSettings, now: number): ConnectionState | null {
  const elapsed = Math.max(0, now - state.rateUpdatedAt);
  const refilled = Math.min(settings.rateBurst, state.rateTokens + (elapsed * settings.ratePerSecond) / 1000);
  if (refilled < 1) return null;
  return { ...state, rateTokens: refilled - 1, rateUpdatedAt: now, lastActivity: now };
}

export function step(state: ConnectionState, event: MachineEvent, now: number, settings: MachineSettings): Step {
  // Close is idempotent: once closed, nothing more happens.
  if (state.phase === 'CLOSED') return { state, effects: NONE };

  switch (event.type) {
    case 'closed':
      return { state: { ...state, phase: 'CLOSED', verifying: false }, effects: NONE };
    case 'terminate':
      return closeWith(state, event.close);
    case 'pong':
      return { state: { ...state, lastActivity: now }, effects: NONE };
    case 'timer':
      return onTimer(state, event.timer, now, settings);
    case 'auth-succeeded':
      return onAuthSucceeded(state, event, now, settings);
    case 'auth-failed':
      if (!state.verifying) return { state, effects: NONE };
      return event.stage === 'token'
        ? failWith(state, ErrorMessages.authenticationFailed, CloseCodes.authFailed)
        : failWith(state, ErrorMessages.handshakeFailed, CloseCodes.encryptionRequired);
    case 'invalid-frame':
    case 'decrypt-failed':
    case 'frame': {
      const counted = takeRateToken(state, settings, now);
      if (counted === null) return closeWith(state, CloseCodes.rateLimited);
      if (event.type === 'invalid-frame') {
        return { state: counted, effects: [{ type: 'send-error', message: ErrorMessages.invalidFormat }] };
      }
      if (event.type === 'decrypt-failed') return onDecryptFailed(counted, settings);
      return onFrame(counted, event.frame, now, settings);
    }
  }
}

function onDecryptFailed(state: ConnectionState, settings: MachineSettings): Step {
  if (!isConnected(state)) {
    return { state, effects: [{ type: 'send-error', message: ErrorMessages.notAuthenticated }] };
  }
  const failures = state.decryptFailures + 1;
  const next = { ...state, decryptFailures: failures };
  if (failures >= settings.maxDecryptFailures) {
    return failWith(next, ErrorMessages.decryptionFailed, CloseCodes.policyViolation);
  }
  return { state: next, effects: [{ type: 'send-error', message: ErrorMessages.decryptionFailed }] };
}

function onFrame(state: ConnectionState, frame: Frame, now: number, settings: MachineSettings): Step {
  if (frame.event === Events.heartbeat) return { state, effects: NONE };

  if (frame.event === Events.authenticate) {
    if (isConnected(state) || state.verifying) {
      return { state, effects: [{ type: 'send-error', message: ErrorMessages.alreadyAuthenticated }] };
    }
    return onAuthenticate(state, frame, now, settings);
  }

  if (!isConnected(state)) {
    return { state, effects: [{ type: 'send-error', message: ErrorMessages.notAuthenticated }] };
  }
  const effects: Effect[] = [{ type: 'dispatch', frame }];
  // A client that proved it holds the key resets the failure streak.
  if (state.decryptFailures > 0) return { state: { ...state, decryptFailures: 0 }, effects };
  return { state, effects };
}

function onAuthenticate(state: ConnectionState, frame: Frame, now: number, settings: MachineSettings): Step {
  const data = (typeof frame.data === 'object' && frame.data !== null ? frame.data : {}) as Record<string, unknown>;
  const type = typeof data.type === 'string' ? data.type : '';
  const token = data.token;
  if (type.toLowerCase() !== 'bearer' || typeof token !== 'string' || token.length === 0) {
    return failWith(state, ErrorMessages.authenticationFailed, CloseCodes.authFailed);
  }
  const clientPublicKey = data.clientPublicKey ?? data.publicKey;
  if (settings.requireEncryption && (clientPublicKey === undefined || clientPublicKey === null || clientPublicKey === '')) {
    return failWith(state, ErrorMessages.handshakeFailed, CloseCodes.encryptionRequired);
  }
  return {
    state: { ...state, verifying: true },
    effects: [
      { type: 'disarm', timer: 'auth' },
      { type: 'arm', timer: 'handshake', at: now + settings.handshakeTimeoutMs },
      { type: 'authenticate', token, clientPublicKey },
    ],
  };
}

function onAuthSucceeded(
  state: ConnectionState,
  event: { encrypted: boolean; expiresAt?: number },
  now: number,
  settings: MachineSettings,
): Step {
  if (!state.verifying) return { state, effects: NONE };
  if (event.expiresAt !== undefined && event.expiresAt <= now) {
    return failWith(state, ErrorMessages.authenticationFailed, CloseCodes.authFailed);
  }
  const effects: Effect[] = [
    { type: 'disarm', timer: 'handshake' },
    { type: 'arm', timer: 'heartbeat', at: now + settings.heartbeatTimeoutMs },
  ];
  if (event.expiresAt !== undefined) effects.push({ type: 'arm', timer: 'expiry', at: event.expiresAt });
  effects.push({ type: 'connected' });
  return {
    state: { ...state, phase: event.encrypted ? 'ENCRYPTED' : 'AUTHENTICATED', verifying: false, lastActivity: now },
    effects,
  };
}

function onTimer(state: ConnectionState, timer: TimerName, now: number, settings: MachineSettings): Step {
  // Timers are re-checked against the state, so a stale timer is harmless.
  switch (timer) {
    case 'auth':
      return state.phase === 'CONNECTING' && !state.verifying ? closeWith(state, CloseCodes.authTimeout) : { state, effects: NONE };
    case 'handshake':
      return state.phase === 'CONNECTING' && state.verifying ? closeWith(state, CloseCodes.authTimeout) : { state, effects: NONE };
    case 'expiry':
      return isConnected(state) ? closeWith(state, CloseCodes.tokenExpired) : { state, effects: NONE };
    case 'heartbeat': {
      if (!isConnected(state)) return { state, effects: NONE };
      const deadline = state.lastActivity + settings.heartbeatTimeoutMs;
      if (now >= deadline) return closeWith(state, CloseCodes.heartbeatTimeout);
      // Re-arm once per period instead of on every frame: activity only moves a number.
      return { state, effects: [{ type: 'arm', timer: 'heartbeat', at: deadline }] };
    }
  }
}

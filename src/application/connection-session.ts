import {
  initialState,
  isConnected,
  step,
  type ConnectionState,
  type Effect,
  type MachineEvent,
  type MachineSettings,
  type TimerName,
} from '../domain/connection-machine.ts';
import { acceptClientPoint, decodePublicKeyEncoding, isOnCurve, openPayload, sealFrame } from '../domain/crypto-session.ts';
import { InvalidPublicKeyError, SignalError } from '../domain/errors.ts';
import { CloseCodes, DEFAULT_ROOMS, ErrorMessages, Events, parseFrame, serializeFrame, type CloseCode, type Frame } from '../domain/protocol.ts';
import { evaluateRoom, roomsFromFrame, type RoomRules } from '../domain/room-policy.ts';
import type { LiveConnection, LocalConnections } from './local-connections.ts';
import type { Cancel, Clock } from './ports/clock.port.ts';
import type { Logger } from './ports/logger.port.ts';
import type { MembershipDirectory } from './ports/membership-directory.port.ts';
import { noopMetrics, type HandshakeOutcome, type Metrics } from './ports/metrics.port.ts';
import type { TokenVerifier } from './ports/token-verifier.port.ts';

/** The socket as the session sees it; the WebSocket adapter implements it. */
export interface Transport {
  send(text: string): void;
  close(code: number, reason: string): void;
  /** Bytes accepted by `send` but not yet written to the network. */
  readonly bufferedAmount: number;
}

/** Called for application events the edge does not handle itself. */
export type MessageHook = (connection: LiveConnection, frame: Frame) => void;

export interface SessionSettings {
  machine: MachineSettings;
  ecdhInfo: string;
  roomRules: RoomRules;
  /** Rooms one client may be in, the default rooms included. */
  maxRoomsPerConnection: number;
  /** Names examined in one join/leave frame; the rest are rejected. */
  maxRoomsPerFrame: number;
  /** Outbound bytes queued for one client before it is closed as a slow consumer. */
  maxBufferedBytes: number;
}

export interface SessionDeps {
  connections: LocalConnections;
  verifier: TokenVerifier;
  membership: MembershipDirectory;
  clock: Clock;
  logger: Logger;
  settings: SessionSettings;
  onMessage?: MessageHook;
  metrics?: Metrics;
}

const CLOSED_STATES_LOGGED_AS_WARN = new Set<number>([
  CloseCodes.authFailed.code,
  CloseCodes.encryptionRequired.code,
  CloseCodes.slowConsumer.code,
  CloseCodes.rateLimited.code,
]);

/**
 * One /stream connection: feeds socket events to the pure state machine and
 * carries out the effects it returns. Holds the only copy of the connection's
 * AES key, dropped when the connection closes.
 */
export class ConnectionSession implements LiveConnection {
  userId = '';
  connectedAt = 0;
  lastActivity: number;
  private state: ConnectionState;
  private key: Buffer | null = null;
  private handshake: { serverPublicKey: string; salt: string } | null = null;
  /** One slot per timer, never deleted, so the record keeps one shape for every connection. */
  private readonly timers: Record<TimerName, Cancel | undefined> = { auth: undefined, handshake: undefined, heartbeat: undefined, expiry: undefined };
  /** The tail of this connection's application frames; null until the first one. */
  private queue: Promise<void> | null = null;
  private readonly metrics: Metrics;
  /** The handshake's outcome is counted once, by whichever step decides it first. */
  private handshakeCounted = false;

  constructor(
    readonly id: string,
    private readonly transport: Transport,
    private readonly deps: SessionDeps,
  ) {
    this.metrics = deps.metrics ?? noopMetrics;
    const now = deps.clock.now();
    this.lastActivity = now;
    const first = initialState(deps.settings.machine, now);
    this.state = first.state;
    this.run(first.effects);
  }

  get phase(): ConnectionState['phase'] {
    return this.state.phase;
  }

  get encrypted(): boolean {
    return this.key !== null;
  }

  /** One inbound text frame (binary frames are decoded as UTF-8 before this). */
  receive(text: string): void {
    const parsed = parseFrame(text);
    if (!parsed.ok) {
      this.apply({ type: 'invalid-frame' });
      return;
    }
    let frame = parsed.frame;
    if (frame.event === Events.encrypted) {
      if (this.key === null) {
        this.apply(isConnected(this.state) ? { type: 'decrypt-failed' } : { type: 'frame', frame });
        return;
      }
      let inner: string;
      try {
        inner = openPayload(this.key, frame.data);
      } catch {
        this.apply({ type: 'decrypt-failed' });
        return;
      }
      const innerParsed = parseFrame(inner);
      // An encrypted frame wrapping another encrypted frame is not a frame.
      if (!innerParsed.ok || innerParsed.frame.event === Events.encrypted) {
        this.apply({ type: 'invalid-frame' });
        return;
      }
      frame = innerParsed.frame;
    }
    this.apply({ type: 'frame', frame });
  }

  pong(): void {
    this.apply({ type: 'pong' });
  }

  /** The socket closed, whoever started it. Idempotent. */
  socketClosed(code: number): void {
    const wasConnected = isConnected(this.state);
    // A close the session sent itself was counted when it was sent.
    if (this.state.phase !== 'CLOSED') this.metrics.closed(code, 'client');
    this.apply({ type: 'closed' });
    for (const name in this.timers) this.disarm(name as TimerName);
    this.key = null;
    this.handshake = null;
    if (wasConnected || this.connectedAt > 0) {
      this.deps.connections.remove(this);
      this.deps.logger.info({ clientId: this.id, userId: this.userId, code }, 'client disconnected');
    }
  }

  deliver(frameText: string): void {
    if (!isConnected(this.state)) return;
    if (this.transport.bufferedAmount > this.deps.settings.maxBufferedBytes) {
      this.metrics.outboundDropped('slow_consumer');
      this.terminate(CloseCodes.slowConsumer);
      return;
    }
    this.transport.send(this.key === null ? frameText : sealFrame(this.key, frameText));
  }

  terminate(close: CloseCode): void {
    this.apply({ type: 'terminate', close });
  }

  private apply(event: MachineEvent): void {
    const now = this.deps.clock.now();
    const result = step(this.state, event, now, this.deps.settings.machine);
    this.state = result.state;
    this.lastActivity = result.state.lastActivity;
    if (!this.handshakeCounted && result.state.phase === 'CLOSED' && this.connectedAt === 0) {
      this.countHandshake(handshakeFailure(event, result.effects));
    }
    if (result.effects.length > 0) this.run(result.effects);
  }

  private countHandshake(outcome: HandshakeOutcome): void {
    if (this.handshakeCounted) return;
    this.handshakeCounted = true;
    this.metrics.handshake(outcome);
  }

  private run(effects: readonly Effect[]): void {
    for (const effect of effects) {
      switch (effect.type) {
        case 'send-error':
          // Errors always go in plaintext so a client without a key can read them.
          this.transport.send(serializeFrame(Events.error, { message: effect.message }));
          break;
        case 'close':
          this.metrics.closed(effect.code, 'server');
          this.logClose(effect.code, effect.reason);
          this.transport.close(effect.code, effect.reason);
          break;
        case 'arm':
          this.disarm(effect.timer);
          this.timers[effect.timer] = this.deps.clock.schedule(effect.at, () => {
            this.timers[effect.timer] = undefined;
            this.apply({ type: 'timer', timer: effect.timer });
          });
          break;
        case 'disarm':
          this.disarm(effect.timer);
          break;
        case 'authenticate':
          void this.authenticate(effect.token, effect.clientPublicKey);
          break;
        case 'connected':
          this.onConnected();
          break;
        case 'dispatch':
          this.enqueue(effect.frame);
          break;
      }
    }
  }

  private disarm(timer: TimerName): void {
    const cancel = this.timers[timer];
    if (cancel !== undefined) {
      cancel();
      this.timers[timer] = undefined;
    }
  }

  private async authenticate(token: string, clientPublicKey: unknown): Promise<void> {
    const offered = clientPublicKey !== undefined && clientPublicKey !== null && clientPublicKey !== '';
    let clientPoint: Buffer | undefined;
    if (offered) {
      // The encoding is checked before the token so that garbage costs no
      // key-set lookup. Whether the point is on the curve is left to the key
      // agreement below, which checks it anyway.
      try {
        clientPoint = decodePublicKeyEncoding(clientPublicKey);
      } catch (error) {
        this.rejectPublicKey(error);
        return;
      }
    }
    let identity;
    try {
      identity = await this.deps.verifier.verify(token);
    } catch (error) {
      // A bad key outranks a bad token, as if the curve had been checked first.
      if (clientPoint !== undefined && !isOnCurve(clientPoint)) {
        this.rejectPublicKey(new InvalidPublicKeyError());
        return;
      }
      this.deps.logger.warn({ clientId: this.id, code: codeOf(error) }, 'handshake rejected: token not accepted');
      this.countHandshake(TOKEN_OUTCOMES[codeOf(error)] ?? 'token_rejected');
      this.apply({ type: 'auth-failed', stage: 'token' });
      return;
    }
    if (this.state.phase === 'CLOSED') return;
    if (clientPoint !== undefined) {
      let result;
      try {
        result = acceptClientPoint(clientPoint, this.deps.settings.ecdhInfo);
      } catch (error) {
        this.rejectPublicKey(error);
        return;
      }
      this.key = result.key;
      this.handshake = { serverPublicKey: result.serverPublicKey, salt: result.salt };
    }
    this.userId = identity.userId;
    this.apply({ type: 'auth-succeeded', encrypted: offered, expiresAt: identity.expiresAt });
  }

  private rejectPublicKey(error: unknown): void {
    this.deps.logger.warn({ clientId: this.id, code: codeOf(error) }, 'handshake rejected: invalid client public key');
    this.countHandshake('invalid_public_key');
    this.apply({ type: 'auth-failed', stage: 'key' });
  }

  private onConnected(): void {
    const now = this.deps.clock.now();
    this.connectedAt = now;
    const data: Record<string, unknown> = { id: this.id, userId: this.userId, time: new Date(now).toISOString() };
    if (this.handshake !== null) {
      data.serverPublicKey = this.handshake.serverPublicKey;
      data.salt = this.handshake.salt;
    }
    this.handshake = null;
    // `connected` goes first and in plaintext; registering afterwards (same
    // tick) guarantees no encrypted frame can overtake it.
    this.transport.send(serializeFrame(Events.connected, data));
    this.countHandshake('ok');
    const { connections } = this.deps;
    connections.add(this);
    for (const room of DEFAULT_ROOMS) connections.join(this, room);
    this.deps.logger.info({ clientId: this.id, userId: this.userId, encrypted: this.key !== null }, 'client connected');
  }

  /** Application frames of one connection are handled in arrival order. */
  private enqueue(frame: Frame): void {
    this.queue = (this.queue ?? Promise.resolve())
      .then(() => this.dispatch(frame))
      .catch((error: unknown) => {
        this.deps.logger.error({ clientId: this.id, event: frame.event, code: codeOf(error) }, 'frame handling failed');
      });
  }

  private async dispatch(frame: Frame): Promise<void> {
    if (frame.event === Events.join) return this.join(frame);
    if (frame.event === Events.leave) return this.leave(frame);
    this.deps.onMessage?.(this, frame);
  }

  private async join(frame: Frame): Promise<void> {
    const requested = roomsFromFrame(frame.data);
    if (requested === null) return this.sendError(ErrorMessages.invalidFormat);
    const { settings, membership, connections } = this.deps;
    const accepted: string[] = [];
    const rejected: Array<string | null> = [];
    let count = connections.roomsOf(this.id).size;
    for (let index = 0; index < requested.length; index++) {
      const name = requested[index];
      if (index >= settings.maxRoomsPerFrame || count >= settings.maxRoomsPerConnection) {
        rejected.push(reportable(name));
        continue;
      }
      const decision = evaluateRoom(name, this.userId, settings.roomRules);
      let allowed = decision.kind === 'allow';
      if (decision.kind === 'needs-membership') {
        try {
          allowed = await membership.isMember(this.userId, decision.target, decision.targetId);
        } catch (error) {
          this.deps.logger.warn({ clientId: this.id, room: name, code: codeOf(error) }, 'membership lookup failed; room refused');
          allowed = false;
        }
      }
      if (!allowed || this.state.phase === 'CLOSED') {
        rejected.push(reportable(name));
        continue;
      }
      if (connections.join(this, name as string)) {
        accepted.push(name as string);
        count++;
      }
    }
    if (frame.id !== undefined) this.deliver(serializeFrame(Events.joined, { id: frame.id, rooms: accepted, rejected }));
  }

  private async leave(frame: Frame): Promise<void> {
    const requested = roomsFromFrame(frame.data);
    if (requested === null) return this.sendError(ErrorMessages.invalidFormat);
    const left: string[] = [];
    const rejected: Array<string | null> = [];
    for (const name of requested) {
      // Only rooms the client joined itself; the defaults stay.
      const own = typeof name === 'string' && !(DEFAULT_ROOMS as readonly string[]).includes(name);
      if (own && this.deps.connections.leave(this, name)) left.push(name);
      else rejected.push(reportable(name));
    }
    if (frame.id !== undefined) this.deliver(serializeFrame(Events.left, { id: frame.id, rooms: left, rejected }));
  }

  private sendError(message: string): void {
    if (this.state.phase !== 'CLOSED') this.transport.send(serializeFrame(Events.error, { message }));
  }

  private logClose(code: number, reason: string): void {
    const fields = { clientId: this.id, userId: this.userId || undefined, code, reason };
    if (CLOSED_STATES_LOGGED_AS_WARN.has(code)) this.deps.logger.warn(fields, 'closing client');
    else this.deps.logger.info(fields, 'closing client');
  }
}

const TOKEN_OUTCOMES: Readonly<Record<string, HandshakeOutcome>> = {
  ERR_TOKEN_INVALID: 'token_invalid',
  ERR_TOKEN_EXPIRED: 'token_expired',
  ERR_TOKEN_ALGORITHM: 'token_algorithm',
  ERR_JWKS_UNAVAILABLE: 'jwks_unavailable',
};

/** Why the machine closed a connection that never finished its handshake. */
function handshakeFailure(event: MachineEvent, effects: readonly Effect[]): HandshakeOutcome {
  const close = effects.find((effect): effect is Extract<Effect, { type: 'close' }> => effect.type === 'close');
  switch (close?.code) {
    case CloseCodes.authTimeout.code:
      return 'auth_timeout';
    case CloseCodes.authFailed.code:
      // Refused after a verified token only when it expired on arrival.
      return event.type === 'auth-succeeded' ? 'token_expired' : 'unsupported_auth';
    case CloseCodes.encryptionRequired.code:
      return 'encryption_required';
    case CloseCodes.rateLimited.code:
      return 'rate_limited';
    default:
      return 'abandoned';
  }
}

function codeOf(error: unknown): string {
  return error instanceof SignalError ? error.code : 'ERR_UNEXPECTED';
}

/** Rejected entries are echoed back; anything but a name is echoed as null, never re-serialised. */
function reportable(entry: unknown): string | null {
  return typeof entry === 'string' ? entry : null;
}

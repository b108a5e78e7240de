/**
 * Client for the /stream protocol (protocol.md §2–§4), for browser pages
 * and Node processes alike. It is bundled for browsers, so it must not
 * import node: modules or use Buffer; crypto goes through
 * web-crypto-session.ts and the socket through any WHATWG-style WebSocket
 * constructor (the global one, or ws's in Node 20).
 *
 * One connection attempt owns one socket, one ephemeral key pair and one
 * session key. Everything that happens asynchronously checks that its
 * attempt is still the current one, so late events from a dead socket can
 * never touch the next session.
 */
import { DecryptionError, SignalError } from '../../domain/errors.ts';
import { CloseCodes, Events, parseFrame, serializeFrame } from '../../domain/protocol.ts';
import type { Frame } from '../../domain/protocol.ts';
import { deriveSessionKey, generateClientKeyPair, openPayloadWeb, sealPayloadWeb } from './web-crypto-session.ts';

export type ConnectionState = 'idle' | 'connecting' | 'authenticated' | 'encrypted' | 'closed';

/** A name for every close code of protocol §6; anything unlisted is `abnormal`. */
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
 * token is a fixed string, since reconnecting would present it again.
 */
const FINAL_KINDS: ReadonlySet<CloseKind> = new Set<CloseKind>([
  'auth-failed',
  'encryption-required',
  'disconnected-by-server',
]);

const USER_CLOSE = { code: 1000, reason: 'Client closed' } as const;
/** What this side sends when it drops a socket itself; the reason says why. */
const CLIENT_CLOSE_CODE = 1000;
const SOCKET_OPEN = 1;

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

/**
 * The part of the WHATWG WebSocket used here. Handlers are declared
 * bivariantly so that both the DOM class and ws's class, whose event types
 * are richer, can be passed as the constructor.
 */
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ReconnectOptions {
  initialDelayMs?: number;
  maxDelayMs?: number;
  factor?: number;
  /** Fraction of each delay that is randomised away, so clients cut off together do not return together. */
  jitter?: number;
  maxAttempts?: number;
}
export type ReconnectPolicy = Required<ReconnectOptions>;

export interface SignalClientOptions {
  url: string;
  /** A function is called before every attempt, so a refreshed token is used after a reconnect. */
  token: string | (() => string | Promise<string>);
  WebSocket?: WebSocketConstructor;
  ecdhInfo?: string;
  heartbeatIntervalMs?: number;
  /** After `connected`, client→server frames go out as `encrypted` frames (heartbeats excepted). */
  encryptOutbound?: boolean;
  reconnect?: boolean | ReconnectOptions;
  requestTimeoutMs?: number;
  /**
   * Socket open + `connected` + key derivation must finish within this. The
   * server allows 5 s for `authenticate` and 15 s more for the handshake.
   */
  connectTimeoutMs?: number;
}

export interface ConnectedInfo {
  clientId: string;
  userId: string;
  time: string;
  serverPublicKey?: string;
  salt?: string;
}

export interface RoomsResult {
  rooms: string[];
  rejected: string[];
}

export interface SignalClientEvents {
  state: { state: ConnectionState; previous: ConnectionState };
  connected: ConnectedInfo;
  /** Every application frame, already decrypted. */
  message: { event: string; data: unknown };
  /** Every end of a connection attempt; `willReconnect` tells whether another one is scheduled. */
  close: { code: number; reason: string; kind: CloseKind; willReconnect: boolean };
  /** `server`: an `error` frame. `client`: a local failure such as a frame that did not decrypt. */
  error: { source: 'server' | 'client'; message: string; error?: unknown };
  reconnecting: { attempt: number; delayMs: number };
  /** The outcome of re-joining the user's rooms after a reconnect. */
  rejoined: RoomsResult;
}

export const DEFAULT_RECONNECT: ReconnectPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 0.5,
  maxAttempts: Number.POSITIVE_INFINITY,
};

/**
 * Delay before reconnect attempt `attempt` (1-based). Jitter only ever
 * shortens the delay, so `maxDelayMs` stays a true ceiling.
 */
export function backoffDelay(attempt: number, policy: ReconnectPolicy, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** (attempt - 1));
  return Math.round(base * (1 - policy.jitter * random()));
}

type Listener = (payload: unknown) => void;
type Timer = ReturnType<typeof setTimeout>;

interface Attempt {
  socket: WebSocketLike | null;
  privateKey: CryptoKey | null;
  key: CryptoKey | null;
  info: ConnectedInfo | null;
  /** Set once the session can carry application frames. */
  ready: boolean;
  /** Inbound frames are handled one after another: decryption is async, order is not negotiable. */
  inbound: Promise<void>;
  outbound: Promise<void>;
  heartbeat?: ReturnType<typeof setInterval>;
  connectTimer?: Timer;
}

interface PendingRequest {
  reply: string;
  resolve: (result: RoomsResult) => void;
  reject: (error: unknown) => void;
  timer: Timer;
}

export class SignalClient {
  private readonly url: string;
  private readonly token: SignalClientOptions['token'];
  private readonly Socket: WebSocketConstructor;
  private readonly ecdhInfo: string;
  private readonly heartbeatIntervalMs: number;
  private readonly encryptOutbound: boolean;
  private readonly reconnectPolicy: ReconnectPolicy | null;
  private readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;

  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly eventListeners = new Map<string, Set<Listener>>();
  private current: ConnectionState = 'idle';
  private attempt: Attempt | null = null;
  private waiters: Array<{ resolve: (info: ConnectedInfo) => void; reject: (error: unknown) => void }> = [];
  private readonly pending = new Map<string, PendingRequest>();
  /** Rooms the user joined and has not left; re-joined after every reconnect. */
  private readonly rooms = new Set<string>();
  /** Reconnecting is for sessions that were lost, not for a first connect that never succeeded. */
  private established = false;
  private reconnectAttempt = 0;
  private reconnectTimer: Timer | undefined;
  private requestSeq = 0;
  /** Bumped by connect() and close(), so a listener calling either stops the caller's own follow-up. */
  private epoch = 0;

  constructor(options: SignalClientOptions) {
    const Socket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (Socket === undefined) {
      throw new SignalError('ERR_NO_WEBSOCKET', 'No global WebSocket here: pass options.WebSocket (ws in Node 20)');
    }
    this.Socket = Socket;
    this.url = options.url;
    this.token = options.token;
    this.ecdhInfo = options.ecdhInfo ?? 'ignis-ecdh-p256-aes-256-gcm-v1';
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 30_000;
    this.encryptOutbound = options.encryptOutbound ?? true;
    const reconnect = options.reconnect ?? true;
    this.reconnectPolicy = reconnect === false ? null : { ...DEFAULT_RECONNECT, ...(reconnect === true ? {} : reconnect) };
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 20_000;
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** The current session's `connected` info, or null between sessions. */
  get info(): ConnectedInfo | null {
    return this.attempt?.ready ? this.attempt.info : null;
  }

  get joinedRooms(): string[] {
    return [...this.rooms];
  }

  on<K extends keyof SignalClientEvents>(event: K, listener: (payload: SignalClientEvents[K]) => void): () => void {
    return addListener(this.listeners, event, listener as Listener);
  }

  /** Listens to one application event by name; `data` is whatever the server sent. */
  onEvent(name: string, listener: (data: unknown) => void): () => void {
    return addListener(this.eventListeners, name, listener);
  }

  /**
   * Resolves once the session is up (key derived), or rejects with the
   * error that ended the first attempt, typically a ConnectionClosedError
   * carrying the close code. A first attempt that fails is not retried;
   * only established sessions are.
   */
  connect(): Promise<ConnectedInfo> {
    const live = this.info;
    if (live !== null) return Promise.resolve(live);
    const result = new Promise<ConnectedInfo>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.current === 'idle' || this.current === 'closed') {
      this.epoch += 1;
      const epoch = this.epoch;
      this.established = false;
      this.reconnectAttempt = 0;
      this.setState('connecting');
      // A `state` listener may already have called close().
      if (epoch === this.epoch) void this.open();
    }
    return result;
  }

  /** Stops everything: socket, timers, pending requests and any scheduled reconnect. */
  close(): void {
    this.epoch += 1;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.rooms.clear();
    const attempt = this.attempt;
    this.attempt = null;
    if (attempt !== null) dispose(attempt, USER_CLOSE.code, USER_CLOSE.reason);
    const error = new ConnectionClosedError(USER_CLOSE.code, USER_CLOSE.reason);
    this.rejectPending(error);
    if (this.current === 'idle' || this.current === 'closed') return;
    this.setState('closed');
    this.rejectWaiters(error);
    this.emit('close', { code: USER_CLOSE.code, reason: USER_CLOSE.reason, kind: 'normal', willReconnect: false });
  }

  join(rooms: string[]): Promise<RoomsResult> {
    return this.request(Events.join, Events.joined, rooms).then((result) => {
      for (const room of result.rooms) this.rooms.add(room);
      return result;
    });
  }

  leave(rooms: string[]): Promise<RoomsResult> {
    // Forgotten at once: whatever the reply, the user no longer wants these back after a reconnect.
    for (const room of rooms) this.rooms.delete(room);
    return this.request(Events.leave, Events.left, rooms);
  }

  /** Sends an application event; resolves once the frame is handed to the socket. */
  send(event: string, data?: unknown): Promise<void> {
    const attempt = this.attempt;
    if (!attempt?.ready) return Promise.reject(new NotConnectedError());
    return this.write(attempt, serializeFrame(event, data));
  }

  private async open(): Promise<void> {
    const attempt: Attempt = {
      socket: null,
      privateKey: null,
      key: null,
      info: null,
      ready: false,
      inbound: Promise.resolve(),
      outbound: Promise.resolve(),
    };
    this.attempt = attempt;
    // The whole budget, including token refresh and key generation, is bounded.
    attempt.connectTimer = setTimeout(() => this.fail(attempt, 1006, 'Connect timeout'), this.connectTimeoutMs);

    let token: string;
    let publicKey: string;
    try {
      // Both before the socket opens, so the server's 5 s authenticate window is not spent on them.
      const [resolved, pair] = await Promise.all([this.resolveToken(), generateClientKeyPair()]);
      token = resolved;
      publicKey = pair.publicKey;
      attempt.privateKey = pair.privateKey;
      if (this.attempt !== attempt) return;
      attempt.socket = new this.Socket(this.url);
    } catch (error) {
      if (this.attempt !== attempt) return;
      this.reportLocal(error);
      this.fail(attempt, 1006, 'Connection failed', error);
      return;
    }

    const socket = attempt.socket;
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => {
      if (this.attempt !== attempt) return;
      socket.send(serializeFrame(Events.authenticate, { type: 'Bearer', token, clientPublicKey: publicKey }));
      // Plaintext is allowed for heartbeats (§4) and keeps them off the ordered, async outbound queue.
      attempt.heartbeat = setInterval(() => {
        if (this.attempt === attempt && socket.readyState === SOCKET_OPEN) socket.send(serializeFrame(Events.heartbeat));
      }, this.heartbeatIntervalMs);
    };
    socket.onmessage = (event) => {
      if (this.attempt !== attempt) return;
      attempt.inbound = attempt.inbound
        .then(() => this.receive(attempt, event.data))
        .catch((error: unknown) => this.reportLocal(error));
    };
    socket.onclose = (event) => {
      // Frames that arrived before the close are handled first: a server's last words (an
      // `error` before 4003, a notice before 4008) may still be decrypting.
      attempt.inbound = attempt.inbound.then(() => this.finish(attempt, event.code, event.reason));
    };
    // A failed socket always closes afterwards; the close carries the outcome. The handler must
    // stay non-null: ws throws on an `error` event that has no listener.
    socket.onerror = () => undefined;
  }

  private async resolveToken(): Promise<string> {
    const token = typeof this.token === 'function' ? await this.token() : this.token;
    if (typeof token !== 'string' || token.length === 0) throw new SignalError('ERR_NO_TOKEN', 'The token provider gave no token');
    return token;
  }

  private async receive(attempt: Attempt, raw: unknown): Promise<void> {
    if (this.attempt !== attempt) return;
    const parsed = parseFrame(await decodeText(raw));
    if (!parsed.ok) return this.reportLocal(new ProtocolViolationError('Invalid message format'));
    const frame = parsed.frame;
    switch (frame.event) {
      case Events.error:
        return this.reportServer(frame.data);
      case Events.connected:
        return this.onConnected(attempt, frame.data);
      case Events.encrypted:
        return this.onEncrypted(attempt, frame.data);
      default:
        // Once a key exists the server encrypts everything but `error`; a plaintext frame then is not from it.
        if (attempt.key !== null) return this.reportLocal(new ProtocolViolationError('Unencrypted frame after the handshake'));
        return this.dispatch(frame);
    }
  }

  private async onConnected(attempt: Attempt, data: unknown): Promise<void> {
    if (attempt.info !== null) return this.reportLocal(new ProtocolViolationError('Duplicate connected frame'));
    const info = parseConnectedInfo(data);
    if (info === null) {
      const error = new ProtocolViolationError('Invalid connected frame');
      this.reportLocal(error);
      return this.fail(attempt, 1006, error.message, error);
    }
    attempt.info = info;
    this.setState('authenticated');
    if (this.attempt !== attempt) return;
    if (info.serverPublicKey !== undefined && info.salt !== undefined && attempt.privateKey !== null) {
      try {
        attempt.key = await deriveSessionKey(attempt.privateKey, info.serverPublicKey, info.salt, this.ecdhInfo);
      } catch (error) {
        if (this.attempt !== attempt) return;
        this.reportLocal(error);
        // The same server keys would fail again, so this ends like the server's own 4004.
        return this.fail(attempt, CloseCodes.encryptionRequired.code, CloseCodes.encryptionRequired.reason, error);
      }
      if (this.attempt !== attempt) return;
      this.setState('encrypted');
      if (this.attempt !== attempt) return;
    }
    // Forward secrecy: nothing keeps the ephemeral private key past the derivation.
    attempt.privateKey = null;
    clearTimeout(attempt.connectTimer);
    attempt.ready = true;
    const reconnected = this.established;
    this.established = true;
    this.reconnectAttempt = 0;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.resolve(info);
    this.emit('connected', info);
    if (reconnected && this.rooms.size > 0) this.rejoin();
  }

  private async onEncrypted(attempt: Attempt, data: unknown): Promise<void> {
    if (attempt.key === null) return this.reportLocal(new ProtocolViolationError('Encrypted frame before the session key'));
    let plaintext: string;
    try {
      plaintext = await openPayloadWeb(attempt.key, data);
    } catch (error) {
      return this.reportLocal(error instanceof SignalError ? error : new DecryptionError({ cause: error }));
    }
    if (this.attempt !== attempt) return;
    const inner = parseFrame(plaintext);
    if (!inner.ok) return this.reportLocal(new ProtocolViolationError('Invalid message format'));
    if (inner.frame.event === Events.error) return this.reportServer(inner.frame.data);
    if (inner.frame.event === Events.connected || inner.frame.event === Events.encrypted) {
      return this.reportLocal(new ProtocolViolationError(`Unexpected ${inner.frame.event} frame`));
    }
    return this.dispatch(inner.frame);
  }

  private dispatch(frame: Frame): void {
    if (frame.event === Events.joined || frame.event === Events.left) {
      const id = replyId(frame);
      const request = id === undefined ? undefined : this.pending.get(id);
      if (id !== undefined && request !== undefined && request.reply === frame.event) {
        this.pending.delete(id);
        clearTimeout(request.timer);
        return request.resolve(parseRoomsResult(frame.data));
      }
    }
    this.emit('message', { event: frame.event, data: frame.data });
    emitTo(this.eventListeners, frame.event, frame.data, (error) => this.reportListenerFailure(error));
  }

  private request(event: string, reply: string, rooms: string[]): Promise<RoomsResult> {
    const attempt = this.attempt;
    if (!attempt?.ready) return Promise.reject(new NotConnectedError());
    this.requestSeq += 1;
    const id = String(this.requestSeq);
    return new Promise<RoomsResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RequestTimeoutError(event, this.requestTimeoutMs));
      }, this.requestTimeoutMs);
      this.pending.set(id, { reply, resolve, reject, timer });
      // `id` after `data`: the server answers only requests that carry one (§4).
      this.write(attempt, JSON.stringify({ event, data: { rooms }, id })).catch((error: unknown) => {
        const request = this.pending.get(id);
        if (request === undefined) return;
        this.pending.delete(id);
        clearTimeout(request.timer);
        request.reject(error);
      });
    });
  }

  private rejoin(): void {
    this.request(Events.join, Events.joined, [...this.rooms]).then(
      (result) => {
        for (const room of result.rejected) this.rooms.delete(room);
        this.emit('rejoined', result);
      },
      (error: unknown) => {
        // A connection lost again re-joins on the next session; only other failures are news.
        if (!(error instanceof ConnectionClosedError || error instanceof NotConnectedError)) this.reportLocal(error);
      },
    );
  }

  /** Frames leave in call order even though sealing is async. */
  private write(attempt: Attempt, text: string): Promise<void> {
    const written = attempt.outbound.then(async () => {
      const key = attempt.key;
      const wire = key !== null && this.encryptOutbound ? serializeFrame(Events.encrypted, await sealPayloadWeb(key, text)) : text;
      if (this.attempt !== attempt || attempt.socket?.readyState !== SOCKET_OPEN) throw new NotConnectedError();
      attempt.socket.send(wire);
    });
    attempt.outbound = written.catch(() => undefined);
    return written;
  }

  /** Ends an attempt from this side (timeout, bad handshake) without waiting for the socket's close. */
  private fail(attempt: Attempt, code: number, reason: string, cause?: unknown): void {
    if (this.attempt !== attempt) return;
    dispose(attempt, CLIENT_CLOSE_CODE, reason);
    this.finish(attempt, code, reason, cause);
  }

  private finish(attempt: Attempt, code: number, reason: string, cause?: unknown): void {
    if (this.attempt !== attempt) return;
    this.attempt = null;
    dispose(attempt);
    const closed = new ConnectionClosedError(code, reason, { cause });
    this.rejectPending(closed);
    const retry = this.shouldReconnect(closed.kind);
    // State first, then the close event, as close() does; a listener calling connect() or
    // close() bumps the epoch and takes over from here.
    const epoch = this.epoch;
    this.setState(retry ? 'connecting' : 'closed');
    if (!retry) this.rejectWaiters(cause ?? closed);
    if (epoch !== this.epoch) return;
    this.emit('close', { code, reason, kind: closed.kind, willReconnect: retry });
    if (retry && epoch === this.epoch) this.scheduleReconnect();
  }

  private shouldReconnect(kind: CloseKind): boolean {
    if (this.reconnectPolicy === null || !this.established || FINAL_KINDS.has(kind)) return false;
    if (kind === 'token-expired' && typeof this.token !== 'function') return false;
    return this.reconnectAttempt < this.reconnectPolicy.maxAttempts;
  }

  private scheduleReconnect(): void {
    const policy = this.reconnectPolicy ?? DEFAULT_RECONNECT;
    this.reconnectAttempt += 1;
    const attempt = this.reconnectAttempt;
    const delayMs = backoffDelay(attempt, policy);
    this.setState('connecting');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.open();
    }, delayMs);
    this.emit('reconnecting', { attempt, delayMs });
  }

  private rejectPending(error: unknown): void {
    for (const request of this.pending.values()) {
      clearTimeout(request.timer);
      request.reject(error);
    }
    this.pending.clear();
  }

  private rejectWaiters(error: unknown): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  private setState(state: ConnectionState): void {
    const previous = this.current;
    if (previous === state) return;
    this.current = state;
    this.emit('state', { state, previous });
  }

  private reportServer(data: unknown): void {
    const message = isRecord(data) && typeof data.message === 'string' ? data.message : 'Unknown server error';
    this.emit('error', { source: 'server', message });
  }

  private reportLocal(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.emit('error', { source: 'client', message, error });
  }

  private reportListenerFailure(error: unknown): void {
    // A throwing `error` listener is dropped rather than reported again, which could loop.
    emitTo(this.listeners, 'error', { source: 'client', message: 'A listener threw', error }, () => undefined);
  }

  private emit<K extends keyof SignalClientEvents>(event: K, payload: SignalClientEvents[K]): void {
    // A listener that throws must not break the socket handling that called it.
    emitTo(this.listeners, event, payload, event === 'error' ? () => undefined : (error) => this.reportListenerFailure(error));
  }
}

function addListener(registry: Map<string, Set<Listener>>, name: string, listener: Listener): () => void {
  let set = registry.get(name);
  if (set === undefined) registry.set(name, (set = new Set()));
  set.add(listener);
  return () => {
    set.delete(listener);
  };
}

function emitTo(registry: Map<string, Set<Listener>>, name: string, payload: unknown, onThrow: (error: unknown) => void): void {
  const set = registry.get(name);
  if (set === undefined) return;
  // A copy: a listener may unsubscribe itself or others while this runs.
  for (const listener of [...set]) {
    try {
      listener(payload);
    } catch (error) {
      onThrow(error);
    }
  }
}

/** Stops the attempt's timers and drops its keys; closes the socket when a code is given. */
function dispose(attempt: Attempt, code?: number, reason?: string): void {
  clearTimeout(attempt.connectTimer);
  clearInterval(attempt.heartbeat);
  attempt.key = null;
  attempt.privateKey = null;
  attempt.ready = false;
  if (code === undefined || attempt.socket === null) return;
  try {
    attempt.socket.close(code, reason);
  } catch {
    // Already closing or never opened: either way the socket is gone.
  }
}

async function decodeText(raw: unknown): Promise<string> {
  if (typeof raw === 'string') return raw;
  // Binary frames are UTF-8 text too (§1).
  if (raw instanceof ArrayBuffer || ArrayBuffer.isView(raw)) return new TextDecoder().decode(raw);
  if (typeof Blob !== 'undefined' && raw instanceof Blob) return raw.text();
  return '';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseConnectedInfo(data: unknown): ConnectedInfo | null {
  if (!isRecord(data) || typeof data.id !== 'string') return null;
  const { serverPublicKey, salt } = data;
  if (serverPublicKey !== undefined && typeof serverPublicKey !== 'string') return null;
  if (salt !== undefined && typeof salt !== 'string') return null;
  const info: ConnectedInfo = {
    clientId: data.id,
    userId: data.userId === undefined || data.userId === null ? '' : String(data.userId),
    time: typeof data.time === 'string' ? data.time : '',
  };
  if (serverPublicKey !== undefined) info.serverPublicKey = serverPublicKey;
  if (salt !== undefined) info.salt = salt;
  return info;
}

/** The server puts the request id in `data.id`; a top-level `id` is accepted too. */
function replyId(frame: Frame): string | undefined {
  if (isRecord(frame.data) && typeof frame.data.id === 'string') return frame.data.id;
  return frame.id;
}

function parseRoomsResult(data: unknown): RoomsResult {
  const strings = (value: unknown): string[] =>
    Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
  return isRecord(data) ? { rooms: strings(data.rooms), rejected: strings(data.rejected) } : { rooms: [], rejected: [] };
}

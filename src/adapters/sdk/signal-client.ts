/**
 * Client for the /stream protocol (protocol.md §2–§8), for browser pages
 * and Node processes alike. It is bundled for browsers, so it must not
 * import node: modules or use Buffer; crypto goes through
 * web-crypto-session.ts and the socket through any WHATWG-style WebSocket
 * constructor (the global one, or ws's in Node 20).
 *
 * One connection attempt owns one socket, one ephemeral key pair and one
 * session key (connection-attempt.ts). Everything that happens
 * asynchronously checks that its attempt is still the current one, so late
 * events from a dead socket can never touch the next session.
 */
import { SignalError } from '../../domain/errors.ts';
import { Events, serializeFrame } from '../../domain/protocol.ts';
import type { Frame } from '../../domain/protocol.ts';
import { ConnectionClosedError, isFinalKind, NotConnectedError, type CloseKind } from './client-errors.ts';
import type {
  ConnectedInfo,
  ConnectionState,
  RoomsResult,
  SignalClientEvents,
  SignalClientOptions,
  WebSocketConstructor,
  WireFrame,
} from './client-types.ts';
import { ConnectionAttempt, type AttemptHost, type AttemptSettings } from './connection-attempt.ts';
import { EventRegistry, type Listener } from './event-registry.ts';
import { parseRoomsResult, replyId, serverErrorMessage } from './inbound-frames.ts';
import { PendingRequests } from './pending-requests.ts';
import { backoffDelay, DEFAULT_RECONNECT, reconnectPolicyFrom, type ReconnectPolicy } from './reconnect-policy.ts';

// The SDK's whole public surface is importable from this entry point.
export {
  closeKind,
  ConnectionClosedError,
  NotConnectedError,
  ProtocolViolationError,
  RequestTimeoutError,
  type CloseKind,
} from './client-errors.ts';
export type {
  ConnectedInfo,
  ConnectionState,
  RoomsResult,
  SignalClientEvents,
  SignalClientOptions,
  WebSocketConstructor,
  WebSocketLike,
  WireFrame,
} from './client-types.ts';
export { backoffDelay, DEFAULT_RECONNECT, type ReconnectOptions, type ReconnectPolicy } from './reconnect-policy.ts';

const USER_CLOSE = { code: 1000, reason: 'Client closed' } as const;
const WIRE = 'frame';

export class SignalClient {
  private readonly token: SignalClientOptions['token'];
  private readonly settings: AttemptSettings;
  private readonly reconnectPolicy: ReconnectPolicy | null;

  private readonly listeners = new EventRegistry();
  private readonly eventListeners = new EventRegistry();
  /** Only the frame hook's listeners; empty unless a debugging tool asked. */
  private readonly wireListeners = new EventRegistry();
  private readonly pending: PendingRequests;
  private current: ConnectionState = 'idle';
  private attempt: ConnectionAttempt | null = null;
  private waiters: Array<{ resolve: (info: ConnectedInfo) => void; reject: (error: unknown) => void }> = [];
  /** Rooms the user joined and has not left; re-joined after every reconnect. */
  private readonly rooms = new Set<string>();
  /** Reconnecting is for sessions that were lost, not for a first connect that never succeeded. */
  private established = false;
  private reconnectAttempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped by connect() and close(), so a listener calling either stops the caller's own follow-up. */
  private epoch = 0;
  /** The attempts' view of this client: private methods, not public API. */
  private readonly host: AttemptHost = {
    isCurrent: (attempt) => this.attempt === attempt,
    setState: (state) => this.setState(state),
    ready: (info) => this.onReady(info),
    dispatch: (frame) => this.dispatch(frame),
    serverError: (data) => this.emit('error', { source: 'server', message: serverErrorMessage(data) }),
    localError: (error) => this.reportLocal(error),
    ended: (attempt, code, reason, cause) => this.finish(attempt, code, reason, cause),
    tracing: () => this.wireListeners.has(WIRE),
    trace: (direction, raw, decrypted) => this.trace(direction, raw, decrypted),
  };

  constructor(options: SignalClientOptions) {
    const Socket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (Socket === undefined) {
      throw new SignalError('ERR_NO_WEBSOCKET', 'No global WebSocket here: pass options.WebSocket (ws in Node 20)');
    }
    this.token = options.token;
    this.settings = {
      url: options.url,
      Socket,
      ecdhInfo: options.ecdhInfo ?? 'ignis-ecdh-p256-aes-256-gcm-v1',
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 30_000,
      encryptOutbound: options.encryptOutbound ?? true,
      connectTimeoutMs: options.connectTimeoutMs ?? 20_000,
      token: () => this.resolveToken(),
    };
    this.reconnectPolicy = reconnectPolicyFrom(options.reconnect);
    this.pending = new PendingRequests(options.requestTimeoutMs ?? 10_000);
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
    return this.listeners.add(event, listener as Listener);
  }

  /** Listens to one application event by name; `data` is whatever the server sent. */
  onEvent(name: string, listener: (data: unknown) => void): () => void {
    return this.eventListeners.add(name, listener);
  }

  /**
   * Debug hook: every text frame this client sends or receives, as on the
   * wire, with the inner frame of encrypted ones (see WireFrame; the raw
   * `authenticate` frame holds the token). Costs nothing while no one listens.
   */
  onFrame(listener: (frame: WireFrame) => void): () => void {
    return this.wireListeners.add(WIRE, listener as Listener);
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
      if (epoch === this.epoch) this.open();
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
    attempt?.dispose(USER_CLOSE.code, USER_CLOSE.reason);
    const error = new ConnectionClosedError(USER_CLOSE.code, USER_CLOSE.reason);
    this.pending.failAll(error);
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
    return attempt.write(serializeFrame(event, data));
  }

  private open(): void {
    const attempt = new ConnectionAttempt(this.settings, this.host);
    this.attempt = attempt;
    void attempt.open();
  }

  private async resolveToken(): Promise<string> {
    const token = typeof this.token === 'function' ? await this.token() : this.token;
    if (typeof token !== 'string' || token.length === 0) throw new SignalError('ERR_NO_TOKEN', 'The token provider gave no token');
    return token;
  }

  private onReady(info: ConnectedInfo): void {
    const reconnected = this.established;
    this.established = true;
    this.reconnectAttempt = 0;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.resolve(info);
    this.emit('connected', info);
    if (reconnected && this.rooms.size > 0) this.rejoin();
  }

  private dispatch(frame: Frame): void {
    if (frame.event === Events.joined || frame.event === Events.left) {
      if (this.pending.answer(replyId(frame), frame.event, parseRoomsResult(frame.data))) return;
    }
    this.emit('message', { event: frame.event, data: frame.data });
    this.eventListeners.emit(frame.event, frame.data, (error) => this.reportListenerFailure(error));
  }

  private request(event: string, reply: string, rooms: string[]): Promise<RoomsResult> {
    const attempt = this.attempt;
    if (!attempt?.ready) return Promise.reject(new NotConnectedError());
    const { id, result } = this.pending.open(event, reply);
    // `id` after `data`: the server answers only requests that carry one (§6).
    attempt.write(JSON.stringify({ event, data: { rooms }, id })).catch((error: unknown) => this.pending.fail(id, error));
    return result;
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

  private finish(attempt: ConnectionAttempt, code: number, reason: string, cause?: unknown): void {
    if (this.attempt !== attempt) return;
    this.attempt = null;
    attempt.dispose();
    const closed = new ConnectionClosedError(code, reason, { cause });
    this.pending.failAll(closed);
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
    if (this.reconnectPolicy === null || !this.established || isFinalKind(kind)) return false;
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
      this.open();
    }, delayMs);
    this.emit('reconnecting', { attempt, delayMs });
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

  private reportLocal(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.emit('error', { source: 'client', message, error });
  }

  private reportListenerFailure(error: unknown): void {
    // A throwing `error` listener is dropped rather than reported again, which could loop.
    this.listeners.emit('error', { source: 'client', message: 'A listener threw', error }, () => undefined);
  }

  private emit<K extends keyof SignalClientEvents>(event: K, payload: SignalClientEvents[K]): void {
    // A listener that throws must not break the socket handling that called it.
    this.listeners.emit(event, payload, event === 'error' ? () => undefined : (error) => this.reportListenerFailure(error));
  }

  private trace(direction: WireFrame['direction'], raw: string, decrypted?: Frame): void {
    if (!this.wireListeners.has(WIRE)) return;
    const frame: WireFrame = decrypted === undefined ? { direction, raw } : { direction, raw, decrypted };
    this.wireListeners.emit(WIRE, frame, (error) => this.reportListenerFailure(error));
  }
}

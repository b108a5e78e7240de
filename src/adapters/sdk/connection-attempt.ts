/**
 * One connection attempt: one socket, one ephemeral key pair, one session
 * key, and the wire work on them (handshake, decryption, sealing, ordered
 * reads and writes). The client replaces its attempt on every (re)connect;
 * after every await an attempt asks its host whether it is still the
 * current one, so a dead attempt never touches the next session.
 */
import { DecryptionError, SignalError } from '../../domain/errors.ts';
import { CloseCodes, Events, parseFrame, serializeFrame } from '../../domain/protocol.ts';
import type { Frame } from '../../domain/protocol.ts';
import { NotConnectedError, ProtocolViolationError } from './client-errors.ts';
import type { ConnectedInfo, ConnectionState, WebSocketConstructor, WebSocketLike, WireFrame } from './client-types.ts';
import { decodeText, parseConnectedInfo } from './inbound-frames.ts';
import { deriveSessionKey, generateClientKeyPair, openPayloadWeb, sealPayloadWeb } from './web-crypto-session.ts';

const SOCKET_OPEN = 1;
/** What this side sends when it drops a socket itself; the reason says why. */
const CLIENT_CLOSE_CODE = 1000;

export interface AttemptSettings {
  url: string;
  Socket: WebSocketConstructor;
  ecdhInfo: string;
  heartbeatIntervalMs: number;
  encryptOutbound: boolean;
  connectTimeoutMs: number;
  token(): Promise<string>;
}

/** What an attempt reports to the client that owns it. */
export interface AttemptHost {
  isCurrent(attempt: ConnectionAttempt): boolean;
  setState(state: ConnectionState): void;
  /** The session can carry application frames. */
  ready(info: ConnectedInfo): void;
  /** An application frame (plaintext or decrypted). */
  dispatch(frame: Frame): void;
  serverError(data: unknown): void;
  localError(error: unknown): void;
  /** The attempt is over; called at most once per current attempt. */
  ended(attempt: ConnectionAttempt, code: number, reason: string, cause?: unknown): void;
  /** Whether the frame hook has listeners, and the hook itself. */
  tracing(): boolean;
  trace(direction: WireFrame['direction'], raw: string, decrypted?: Frame): void;
}

export class ConnectionAttempt {
  info: ConnectedInfo | null = null;
  /** Set once the session can carry application frames. */
  ready = false;
  private socket: WebSocketLike | null = null;
  private privateKey: CryptoKey | null = null;
  private key: CryptoKey | null = null;
  /** Inbound frames are handled one after another: decryption is async, order is not negotiable. */
  private inbound: Promise<void> = Promise.resolve();
  private outbound: Promise<void> = Promise.resolve();
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly settings: AttemptSettings;
  private readonly host: AttemptHost;

  constructor(settings: AttemptSettings, host: AttemptHost) {
    this.settings = settings;
    this.host = host;
  }

  async open(): Promise<void> {
    // The whole budget, including token refresh and key generation, is bounded.
    this.connectTimer = setTimeout(() => this.fail(1006, 'Connect timeout'), this.settings.connectTimeoutMs);
    let token: string;
    let publicKey: string;
    let socket: WebSocketLike;
    try {
      // Both before the socket opens, so the server's 5 s authenticate window is not spent on them.
      const [resolved, pair] = await Promise.all([this.settings.token(), generateClientKeyPair()]);
      token = resolved;
      publicKey = pair.publicKey;
      this.privateKey = pair.privateKey;
      if (!this.host.isCurrent(this)) return;
      socket = this.socket = new this.settings.Socket(this.settings.url);
    } catch (error) {
      if (!this.host.isCurrent(this)) return;
      this.host.localError(error);
      this.fail(1006, 'Connection failed', error);
      return;
    }

    // Plaintext, straight to the socket: allowed for these two (§4) and kept off the ordered, async outbound queue.
    const sendPlain = (text: string): void => {
      socket.send(text);
      this.host.trace('out', text);
    };
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => {
      if (!this.host.isCurrent(this)) return;
      sendPlain(serializeFrame(Events.authenticate, { type: 'Bearer', token, clientPublicKey: publicKey }));
      this.heartbeat = setInterval(() => {
        if (this.host.isCurrent(this) && socket.readyState === SOCKET_OPEN) sendPlain(serializeFrame(Events.heartbeat));
      }, this.settings.heartbeatIntervalMs);
    };
    socket.onmessage = (event) => {
      if (!this.host.isCurrent(this)) return;
      this.inbound = this.inbound.then(() => this.receive(event.data)).catch((error: unknown) => this.host.localError(error));
    };
    socket.onclose = (event) => {
      // Frames that arrived before the close are handled first: a server's last words (an
      // `error` before 4003, a notice before 4008) may still be decrypting.
      this.inbound = this.inbound.then(() => this.host.ended(this, event.code, event.reason));
    };
    // A failed socket always closes afterwards; the close carries the outcome. The handler must
    // stay non-null: ws throws on an `error` event that has no listener.
    socket.onerror = () => undefined;
  }

  /** Frames leave in call order even though sealing is async. */
  write(text: string): Promise<void> {
    const written = this.outbound.then(async () => {
      const key = this.key;
      const sealed = key !== null && this.settings.encryptOutbound;
      const wire = sealed ? serializeFrame(Events.encrypted, await sealPayloadWeb(key, text)) : text;
      if (!this.host.isCurrent(this) || this.socket?.readyState !== SOCKET_OPEN) throw new NotConnectedError();
      this.socket.send(wire);
      if (sealed && this.host.tracing()) this.host.trace('out', wire, JSON.parse(text) as Frame);
      else this.host.trace('out', wire);
    });
    this.outbound = written.catch(() => undefined);
    return written;
  }

  /** Ends the attempt from this side (timeout, bad handshake) without waiting for the socket's close. */
  fail(code: number, reason: string, cause?: unknown): void {
    if (!this.host.isCurrent(this)) return;
    this.dispose(CLIENT_CLOSE_CODE, reason);
    this.host.ended(this, code, reason, cause);
  }

  /** Stops the timers and drops the keys; closes the socket when a code is given. */
  dispose(code?: number, reason?: string): void {
    clearTimeout(this.connectTimer);
    clearInterval(this.heartbeat);
    this.key = null;
    this.privateKey = null;
    this.ready = false;
    if (code === undefined || this.socket === null) return;
    try {
      this.socket.close(code, reason);
    } catch {
      // Already closing or never opened: either way the socket is gone.
    }
  }

  private async receive(raw: unknown): Promise<void> {
    if (!this.host.isCurrent(this)) return;
    const text = await decodeText(raw);
    const parsed = parseFrame(text);
    // An encrypted frame is traced once opened, together with its inner frame.
    if (!parsed.ok || parsed.frame.event !== Events.encrypted) this.host.trace('in', text);
    if (!parsed.ok) return this.host.localError(new ProtocolViolationError('Invalid message format'));
    const frame = parsed.frame;
    switch (frame.event) {
      case Events.error:
        return this.host.serverError(frame.data);
      case Events.connected:
        return this.onConnected(frame.data);
      case Events.encrypted:
        return this.onEncrypted(frame.data, text);
      default:
        // Once a key exists the server encrypts everything but `error`; a plaintext frame then is not from it.
        if (this.key !== null) return this.host.localError(new ProtocolViolationError('Unencrypted frame after the handshake'));
        return this.host.dispatch(frame);
    }
  }

  private async onConnected(data: unknown): Promise<void> {
    if (this.info !== null) return this.host.localError(new ProtocolViolationError('Duplicate connected frame'));
    const info = parseConnectedInfo(data);
    if (info === null) {
      const error = new ProtocolViolationError('Invalid connected frame');
      this.host.localError(error);
      return this.fail(1006, error.message, error);
    }
    this.info = info;
    // Every host call may run listeners that call close() or connect(): check again after each.
    this.host.setState('authenticated');
    if (!this.host.isCurrent(this)) return;
    if (info.serverPublicKey !== undefined && info.salt !== undefined && this.privateKey !== null) {
      try {
        this.key = await deriveSessionKey(this.privateKey, info.serverPublicKey, info.salt, this.settings.ecdhInfo);
      } catch (error) {
        if (!this.host.isCurrent(this)) return;
        this.host.localError(error);
        // The same server keys would fail again, so this ends like the server's own 4004.
        return this.fail(CloseCodes.encryptionRequired.code, CloseCodes.encryptionRequired.reason, error);
      }
      if (!this.host.isCurrent(this)) return;
      this.host.setState('encrypted');
      if (!this.host.isCurrent(this)) return;
    }
    // Forward secrecy: nothing keeps the ephemeral private key past the derivation.
    this.privateKey = null;
    clearTimeout(this.connectTimer);
    this.ready = true;
    this.host.ready(info);
  }

  private async onEncrypted(data: unknown, raw: string): Promise<void> {
    if (this.key === null) {
      this.host.trace('in', raw);
      return this.host.localError(new ProtocolViolationError('Encrypted frame before the session key'));
    }
    let plaintext: string;
    try {
      plaintext = await openPayloadWeb(this.key, data);
    } catch (error) {
      this.host.trace('in', raw);
      return this.host.localError(error instanceof SignalError ? error : new DecryptionError({ cause: error }));
    }
    if (!this.host.isCurrent(this)) return;
    const inner = parseFrame(plaintext);
    this.host.trace('in', raw, inner.ok ? inner.frame : undefined);
    if (!inner.ok) return this.host.localError(new ProtocolViolationError('Invalid message format'));
    if (inner.frame.event === Events.error) return this.host.serverError(inner.frame.data);
    if (inner.frame.event === Events.connected || inner.frame.event === Events.encrypted) {
      return this.host.localError(new ProtocolViolationError(`Unexpected ${inner.frame.event} frame`));
    }
    return this.host.dispatch(inner.frame);
  }
}

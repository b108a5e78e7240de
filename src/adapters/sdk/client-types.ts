/**
 * The SDK's public shapes: options, the socket it drives, and what it
 * reports. Importers take them from signal-client.ts, which re-exports them.
 */
import type { CloseKind } from './client-errors.ts';
import type { ReconnectOptions } from './reconnect-policy.ts';

export type ConnectionState = 'idle' | 'connecting' | 'authenticated' | 'encrypted' | 'closed';

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

/**
 * One text frame as it crossed the socket, for debugging tools (see
 * `SignalClient.onFrame`). `raw` is exactly the wire text, so the outgoing
 * `authenticate` frame carries the token: do not log these where tokens
 * must not go. `decrypted` is the inner frame of an `encrypted` frame that
 * was sealed or opened with the session key; it is absent for plaintext
 * frames and for inbound frames that did not decrypt.
 */
export interface WireFrame {
  direction: 'in' | 'out';
  raw: string;
  decrypted?: { event: string; data?: unknown; id?: string };
}

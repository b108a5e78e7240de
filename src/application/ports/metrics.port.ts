import type { BusMessageType } from '../../domain/bus-payload.ts';

/**
 * How a connection's handshake ended, counted once per connection:
 * - `ok`: registered and sent `connected`;
 * - `invalid_public_key`: the offered ECDH key was not a P-256 point;
 * - `token_invalid`, `token_expired`, `token_algorithm`: the token was
 *   refused (bad signature or claims, expired or not yet valid — clock skew
 *   shows here —, an algorithm outside the allow-list);
 * - `jwks_unavailable`: the key set could not be fetched;
 * - `token_rejected`: refused for any other reason;
 * - `unsupported_auth`: `authenticate` without a Bearer token;
 * - `encryption_required`: no client key while encryption is required;
 * - `auth_timeout`: no `authenticate`, or no verdict, in time;
 * - `rate_limited`: flooded frames before finishing;
 * - `abandoned`: the client (or a shutdown) ended it before any verdict.
 */
export type HandshakeOutcome =
  | 'ok'
  | 'invalid_public_key'
  | 'token_invalid'
  | 'token_expired'
  | 'token_algorithm'
  | 'jwks_unavailable'
  | 'token_rejected'
  | 'unsupported_auth'
  | 'encryption_required'
  | 'auth_timeout'
  | 'rate_limited'
  | 'abandoned';

/** Who sent the close: the server (a close code it chose) or the client / the network. */
export type CloseInitiator = 'server' | 'client';

/** Why a WebSocket upgrade on the stream path was refused (with 403 or 503). */
export type UpgradeRefusal = 'origin' | 'capacity' | 'shutting_down';

/** Why an outbound frame was not written to a socket. */
export type OutboundDropReason = 'slow_consumer';

/**
 * Operational counters the application and its adapters report. Every call
 * is fire-and-forget, must not throw and must be cheap: `delivered` runs
 * once per fan-out (never per recipient), `busPublished` once per publish.
 * Nothing here is read back by the application; gauges that describe
 * current state (connections, Kafka offsets) are read by the metrics
 * adapter itself when it is scraped.
 */
export interface Metrics {
  /** A WebSocket upgrade was accepted (before any handshake). */
  connectionOpened(): void;
  upgradeRefused(reason: UpgradeRefusal): void;
  handshake(outcome: HandshakeOutcome): void;
  /** One per connection, with the code of the close that ended it. */
  closed(code: number, initiator: CloseInitiator): void;
  outboundDropped(reason: OutboundDropReason): void;
  /** `count` connections on this instance were handed one message of this kind. */
  delivered(kind: BusMessageType, count: number): void;
  /** A publish on the bus finished (`ok`) or failed, after `durationMs`. */
  busPublished(type: BusMessageType, ok: boolean, durationMs: number): void;
  /**
   * A message from another instance was handled here. The payload carries
   * no timestamp (the wire format is shared with publisher services), so
   * what is measured is the time spent handling it, not the transit lag.
   */
  busReceived(type: BusMessageType, handlingMs: number): void;
  /** Rows the notification pipeline stored (each one pushed once). */
  notificationsCreated(count: number): void;
  /** `route` is a template (`/notifications/:id/mark-read`), never a raw path. */
  httpRequest(route: string, method: string, status: number, durationMs: number): void;
}

/** Counts nothing: the default wherever no metrics are wired (tests, tools). */
export const noopMetrics: Metrics = {
  connectionOpened() {},
  upgradeRefused() {},
  handshake() {},
  closed() {},
  outboundDropped() {},
  delivered() {},
  busPublished() {},
  busReceived() {},
  notificationsCreated() {},
  httpRequest() {},
};

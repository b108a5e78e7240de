import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Transport } from '../../application/connection-session.ts';
import type { WriteBatch } from '../../application/fan-out.ts';
import type { Logger } from '../../application/ports/logger.port.ts';
import { noopMetrics, type Metrics } from '../../application/ports/metrics.port.ts';
import { CloseCodes } from '../../domain/protocol.ts';
import { forEachInSlices } from './slices.ts';

/** What the gateway needs from a session; the application's ConnectionSession fits. */
export interface SocketSession {
  receive(text: string): void;
  pong(): void;
  socketClosed(code: number): void;
  terminate(close: (typeof CloseCodes)[keyof typeof CloseCodes]): void;
}

export type SessionFactory = (clientId: string, transport: Transport) => SocketSession;

export interface GatewayOptions {
  /** Exact path of the upgrade (query string ignored). */
  path: string;
  maxPayloadBytes: number;
  /** When set, upgrades from any other Origin get 403. */
  allowedOrigins?: readonly string[];
  /** When set, upgrades beyond this many open sockets get 503. */
  maxConnections?: number;
  /** Interval of protocol pings; browsers answer them, which counts as activity. */
  pingIntervalMs: number;
  /** Sockets pinged per macrotask (default 256), so a ping round never holds the event loop. */
  pingSliceSize?: number;
}

/**
 * The socket class the server hands out. ws closes an oversized frame with
 * 1009 and no reason; the protocol promises the reason `Message too big`, so
 * the one place that sends that code fills it in. Being the Transport itself
 * spares an adapter object per connection.
 */
class EdgeSocket extends WebSocket implements Transport {
  session: SocketSession | null = null;
  /** The gateway's set of open sockets, which this one leaves when it closes. */
  openSockets: Set<EdgeSocket> | null = null;
  corked = false;

  /**
   * Frames sent to one socket within a tick leave in one write: the socket
   * is corked on its first send and uncorked once, after the tick. A burst
   * of messages then costs one syscall per socket instead of one per frame.
   */
  override send(data: unknown, optionsOrCallback?: unknown, callback?: unknown): void {
    if (!this.corked && this.readyState === WebSocket.OPEN) {
      const raw = (this as unknown as { _socket?: Duplex })._socket;
      if (raw !== undefined) {
        raw.cork();
        this.corked = true;
        corkedSockets.push(this);
        if (!writesHeld && !uncorkScheduled) {
          uncorkScheduled = true;
          process.nextTick(uncorkAll);
        }
      }
    }
    (super.send as (...args: unknown[]) => void)(data, optionsOrCallback, callback);
    // Coalescing buys nothing past a few frames, and held bytes count
    // toward the slow-consumer bound: a socket with this much corked
    // writes now (it is corked again by its next send).
    if (this.corked) {
      const raw = (this as unknown as { _socket?: Duplex })._socket;
      if (raw !== undefined && raw.writableLength >= FLUSH_AT_BYTES) {
        this.corked = false;
        raw.uncork();
      }
    }
  }

  override close(code?: number, reason?: string | Buffer): void {
    if (code === CloseCodes.messageTooBig.code && (reason === undefined || reason.length === 0)) {
      super.close(code, CloseCodes.messageTooBig.reason);
      return;
    }
    super.close(code, reason);
  }
}

/**
 * Corked bytes past which a socket writes at once, held or not: half the
 * smallest APP_ENV_WEBSOCKET_MAX_BUFFERED_BYTES (16 KiB), so batching never
 * makes a healthy client look slow, and still dozens of small frames per
 * write.
 */
const FLUSH_AT_BYTES = 8 * 1024;
let corkedSockets: EdgeSocket[] = [];
let uncorkScheduled = false;
let writesHeld = false;

function pingIfOpen(ws: EdgeSocket): void {
  if (ws.readyState === WebSocket.OPEN) ws.ping();
}

function uncorkAll(): void {
  uncorkScheduled = false;
  if (writesHeld) return;
  const sockets = corkedSockets;
  corkedSockets = [];
  for (const ws of sockets) {
    ws.corked = false;
    (ws as unknown as { _socket?: Duplex })._socket?.uncork();
  }
}

/**
 * The sockets' write batching, for the fan-out: while held, sockets stay
 * corked past the end of the tick, so frames queued for one socket across
 * several slices of a backlog leave in one write when released. Whoever
 * holds must release (the fan-out does when its queue drains, and within a
 * bounded time).
 */
export const socketWrites: WriteBatch = {
  hold(): void {
    writesHeld = true;
  },
  release(): void {
    writesHeld = false;
    uncorkAll();
  },
  /** Sockets corked since the last release (one that flushed early and corked again counts twice). */
  get waiting(): number {
    return corkedSockets.length;
  },
};

/**
 * The /stream endpoint on a server we do not own: it only listens to the
 * HTTP server's `upgrade` event, so REST and WebSocket share one port.
 */
export class WsGateway {
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<EdgeSocket>();
  private pingTimer: NodeJS.Timeout | null = null;
  private pinging = false;
  private accepting = true;
  /** Made once per gateway: a connection costs no closures of its own (see also onMessage, onClose). */
  private readonly onSocketError = (error: Error): void => this.logger.debug({ code: (error as { code?: string }).code }, 'socket error');
  private readonly acceptSocket = (ws: WebSocket): void => this.onSocket(ws as EdgeSocket);

  constructor(
    private readonly options: GatewayOptions,
    private readonly createSession: SessionFactory,
    private readonly logger: Logger,
    private readonly metrics: Metrics = noopMetrics,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxPayloadBytes,
      perMessageDeflate: false,
      clientTracking: false,
      WebSocket: EdgeSocket,
    });
  }

  get openSockets(): number {
    return this.sockets.size;
  }

  attach(server: Server): void {
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(request, socket, head));
    this.pingTimer = setInterval(() => this.pingAll(), this.options.pingIntervalMs);
    this.pingTimer.unref();
  }

  private onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', destroyOnError);
    const url = request.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    if (path !== this.options.path) return reject(socket, 404, 'Not Found');
    if (!this.accepting) {
      this.metrics.upgradeRefused('shutting_down');
      return reject(socket, 503, 'Service Unavailable');
    }
    const origin = request.headers.origin;
    const allowed = this.options.allowedOrigins;
    if (allowed !== undefined && (origin === undefined || !allowed.includes(origin))) {
      this.logger.warn({ origin }, 'upgrade refused: origin not allowed');
      this.metrics.upgradeRefused('origin');
      return reject(socket, 403, 'Forbidden');
    }
    const cap = this.options.maxConnections;
    if (cap !== undefined && this.sockets.size >= cap) {
      this.logger.warn({ connections: this.sockets.size }, 'upgrade refused: connection cap reached');
      this.metrics.upgradeRefused('capacity');
      return reject(socket, 503, 'Service Unavailable');
    }
    this.wss.handleUpgrade(request, socket, head, this.acceptSocket);
  }

  private onSocket(ws: EdgeSocket): void {
    this.sockets.add(ws);
    ws.openSockets = this.sockets;
    this.metrics.connectionOpened();
    ws.session = this.createSession(randomUUID(), ws);
    ws.on('message', onMessage);
    ws.on('pong', onPong);
    ws.on('error', this.onSocketError);
    ws.on('close', onClose);
  }

  private pingAll(): void {
    if (this.pinging) return;
    this.pinging = true;
    void forEachInSlices([...this.sockets], this.options.pingSliceSize ?? 256, pingIfOpen).finally(() => {
      this.pinging = false;
    });
  }

  /**
   * Stops taking upgrades, closes every client with 1001 and waits (bounded)
   * for the closing handshakes; stragglers are cut off.
   */
  async close(timeoutMs = 3_000): Promise<void> {
    this.accepting = false;
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    for (const ws of this.sockets) ws.session?.terminate(CloseCodes.shuttingDown);
    const deadline = Date.now() + timeoutMs;
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    for (const ws of this.sockets) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

// Shared listeners (not closures per socket): `this` is the socket.
function onMessage(this: WebSocket, data: RawData): void {
  // Binary frames are read as UTF-8 text, like text frames.
  const text = Array.isArray(data)
    ? Buffer.concat(data).toString('utf8')
    : data instanceof ArrayBuffer
      ? Buffer.from(data).toString('utf8')
      : data.toString('utf8');
  (this as EdgeSocket).session?.receive(text);
}

function onPong(this: WebSocket): void {
  (this as EdgeSocket).session?.pong();
}

function onClose(this: WebSocket, code: number): void {
  const ws = this as EdgeSocket;
  ws.openSockets?.delete(ws);
  ws.openSockets = null;
  ws.session?.socketClosed(code);
  ws.session = null;
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

function reject(socket: Duplex, status: number, text: string): void {
  const body = JSON.stringify({ code: status === 503 ? 'SERVICE_UNAVAILABLE' : text.toUpperCase().replace(/ /g, '_'), message: text });
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

import { createDecipheriv, createECDH, hkdfSync } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';

/**
 * How a bench client opens each kind of server, shared by every client
 * worker. Signal's handshake (ECDH P-256 → HKDF-SHA-256 → AES-256-GCM) is
 * written here from docs/protocol.md, not taken from the project's SDK, so
 * that a bug in the SDK cannot hide a bug in the server. The limit hands out
 * its key in a first binary frame; the Socket.IO peer speaks plaintext.
 */
export type Target = 'signal' | 'limit' | 'peer';

const TAG_BYTES = 16;

export interface SignalClient {
  readonly ws: WebSocket;
  readonly key: Buffer;
}

export interface OpenOptions {
  url: string;
  /** Source address on the loopback range, so that more than one address's ports can be used. */
  localAddress?: string;
  /** Called once the connection is usable if it later closes (not for a close during the handshake). */
  onLost?: (why: string) => void;
  /**
   * Every frame after the handshake (signal, limit). Attached in the same
   * tick as the handshake completes, so a frame arriving in the same chunk
   * as `connected` is not missed.
   */
  onFrame?: (raw: Buffer) => void;
}

/** Opens a signal connection and completes the encrypted handshake; resolves on `connected`, with the key derived. */
export function openSignal(options: OpenOptions & { token: string; ecdhInfo: string }): Promise<SignalClient> {
  return new Promise((resolveOpen, rejectOpen) => {
    const ws = new WebSocket(options.url, { perMessageDeflate: false, localAddress: options.localAddress });
    let ecdh: ReturnType<typeof createECDH> | null = null;
    let ready = false;
    let settled = false;
    const settle = (error: Error | null, client?: SignalClient): void => {
      if (settled) return;
      settled = true;
      if (error === null) resolveOpen(client!);
      else {
        ws.terminate();
        rejectOpen(error);
      }
    };
    ws.on('open', () => {
      ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      const clientPublicKey = ecdh.getPublicKey('base64', 'uncompressed');
      ws.send(JSON.stringify({ event: 'authenticate', data: { type: 'Bearer', token: options.token, clientPublicKey } }));
    });
    ws.once('message', (raw: Buffer) => {
      let frame: { event?: string; data?: Record<string, string> };
      try {
        frame = JSON.parse(raw.toString('utf8')) as typeof frame;
      } catch {
        return settle(new Error('handshake: unparseable first frame'));
      }
      const { serverPublicKey, salt } = frame.data ?? {};
      if (frame.event !== 'connected' || ecdh === null || serverPublicKey === undefined || salt === undefined) {
        return settle(new Error(`handshake: got ${String(frame.event)} ${JSON.stringify(frame.data ?? {})}`));
      }
      const shared = ecdh.computeSecret(Buffer.from(serverPublicKey, 'base64'));
      const key = Buffer.from(hkdfSync('sha256', shared, Buffer.from(salt, 'base64'), Buffer.from(options.ecdhInfo), 32));
      ecdh = null;
      ready = true;
      if (options.onFrame !== undefined) ws.on('message', options.onFrame);
      settle(null, { ws, key });
    });
    ws.on('unexpected-response', (_request, response) => settle(new Error(`upgrade refused: HTTP ${response.statusCode}`)));
    ws.on('error', (error) => settle(error));
    ws.on('close', (code: number, reason: Buffer) => {
      settle(new Error(`closed ${code} ${reason.toString('utf8')} during the handshake`));
      if (ready) options.onLost?.(`closed ${code} ${reason.toString('utf8')}`);
    });
  });
}

/** Opens a connection to the limit server, whose first (binary) frame is the 32-byte key. */
export function openLimit(options: OpenOptions): Promise<SignalClient> {
  return new Promise((resolveOpen, rejectOpen) => {
    const ws = new WebSocket(options.url, { perMessageDeflate: false, localAddress: options.localAddress });
    let ready = false;
    let settled = false;
    const settle = (error: Error | null, client?: SignalClient): void => {
      if (settled) return;
      settled = true;
      if (error === null) resolveOpen(client!);
      else {
        ws.terminate();
        rejectOpen(error);
      }
    };
    ws.once('message', (raw: Buffer, isBinary: boolean) => {
      if (!isBinary || raw.length !== 32) return settle(new Error('limit server sent no key'));
      ready = true;
      if (options.onFrame !== undefined) ws.on('message', options.onFrame);
      settle(null, { ws, key: Buffer.from(raw) });
    });
    ws.on('unexpected-response', (_request, response) => settle(new Error(`upgrade refused: HTTP ${response.statusCode}`)));
    ws.on('error', (error) => settle(error));
    ws.on('close', (code: number, reason: Buffer) => {
      settle(new Error(`closed ${code} ${reason.toString('utf8')} during the handshake`));
      if (ready) options.onLost?.(`closed ${code} ${reason.toString('utf8')}`);
    });
  });
}

/**
 * Opens a Socket.IO connection: WebSocket transport only (no long-polling
 * first), its own Manager (no multiplexing of clients over one engine), no
 * reconnection (a drop must fail the round, not heal silently).
 */
export function openPeer(
  options: OpenOptions & { token?: string; on?: Record<string, (...args: never[]) => void> },
): Promise<Socket> {
  return new Promise((resolveOpen, rejectOpen) => {
    const socket = io(options.url, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      timeout: 30_000,
      // Passed through to the ws client by engine.io-client; not in socket.io-client's option type.
      ...({ localAddress: options.localAddress } as object),
      auth: options.token === undefined ? undefined : { token: options.token },
    });
    for (const [event, listener] of Object.entries(options.on ?? {})) socket.on(event, listener as (...args: unknown[]) => void);
    let ready = false;
    socket.once('connect', () => {
      ready = true;
      resolveOpen(socket);
    });
    socket.once('connect_error', (error: Error) => {
      socket.close();
      rejectOpen(new Error(`socket.io connect: ${error.message}`));
    });
    socket.on('disconnect', (reason: string) => {
      if (ready) options.onLost?.(`disconnected: ${reason}`);
    });
  });
}

/** The inner frame text of one `encrypted` frame: base64-decoded, AES-256-GCM-opened (tag checked). */
export function openEncrypted(key: Buffer, raw: Buffer): string {
  const outer = JSON.parse(raw.toString('utf8')) as { event?: unknown; data?: { iv?: unknown; ct?: unknown } };
  if (outer.event !== 'encrypted') throw new Error(`unexpected ${String(outer.event)} frame`);
  const iv = Buffer.from(outer.data?.iv as string, 'base64');
  const sealed = Buffer.from(outer.data?.ct as string, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  const body = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
  decipher.final();
  return body.toString('utf8');
}

/**
 * Loopback source addresses to spread `count` connections over, about
 * `perAddress` each. Each call continues where the previous one stopped
 * (127.0.0.2 upwards, wrapping before .255), so that a new batch of
 * connections never competes for ports with the TIME_WAIT sockets the
 * previous batch left behind.
 */
export function loopbackSources(count: number, perAddress = 10_000): string[] {
  const addresses = Math.max(1, Math.ceil(count / perAddress));
  return Array.from({ length: addresses }, () => {
    const host = 2 + (nextSource++ % 250);
    return `127.0.0.${host}`;
  });
}

let nextSource = 0;

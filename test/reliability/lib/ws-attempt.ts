import { createECDH } from 'node:crypto';
import WebSocket from 'ws';

/**
 * One authentication attempt on /stream, recorded from open to close: the
 * frames the server sent (as text), how it closed and when.
 */
export interface WsAttempt {
  frames: string[];
  close: { code: number; reason: string } | null;
  /** From sending `authenticate` to the close (or to `connected`). */
  ms: number;
  /** Set when the connection could not even be opened. */
  failure?: string;
}

export async function attemptAuthentication(
  wsUrl: string,
  token: unknown,
  options: { stopAtConnected?: boolean; timeoutMs?: number } = {},
): Promise<WsAttempt> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const socket = new WebSocket(wsUrl, { handshakeTimeout: 5_000 });
  socket.on('error', () => undefined);
  const frames: string[] = [];
  let started = 0;
  return new Promise<WsAttempt>((resolve) => {
    let settled = false;
    const finish = (close: WsAttempt['close'], failure?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const ms = started === 0 ? 0 : Math.round(performance.now() - started);
      socket.removeAllListeners('close');
      if (socket.readyState === WebSocket.OPEN) socket.close();
      else socket.terminate();
      resolve({ frames, close, ms, ...(failure === undefined ? {} : { failure }) });
    };
    const timer = setTimeout(() => finish(null, `no close within ${timeoutMs} ms`), timeoutMs);
    socket.once('unexpected-response', (_request, response) => finish(null, `upgrade answered HTTP ${response.statusCode}`));
    socket.on('close', (code: number, reason: Buffer) => finish({ code, reason: reason.toString('utf8') }));
    socket.on('message', (data: Buffer) => {
      const text = data.toString('utf8');
      frames.push(text);
      if (options.stopAtConnected === true && text.startsWith('{"event":"connected"')) finish(null);
    });
    socket.once('open', () => {
      started = performance.now();
      socket.send(
        JSON.stringify({ event: 'authenticate', data: { type: 'Bearer', token, clientPublicKey: ecdh.getPublicKey('base64', 'uncompressed') } }),
      );
    });
  });
}

/** The refusal docs/protocol.md §4 promises for a rejected token. */
export const AUTH_FAILED_FRAME = '{"event":"error","data":{"message":"Authentication failed"}}';

export function isAuthFailure(attempt: WsAttempt): boolean {
  return (
    attempt.frames.length === 1 &&
    attempt.frames[0] === AUTH_FAILED_FRAME &&
    attempt.close?.code === 4003 &&
    attempt.close.reason === 'Authentication failed'
  );
}

export function describeAttempt(attempt: WsAttempt): string {
  const close = attempt.close === null ? 'no close' : `close ${attempt.close.code} "${attempt.close.reason}"`;
  const frames = attempt.frames.map((frame) => frame.slice(0, 70)).join(' ');
  return `${attempt.failure ?? ''}${frames} ${close} after ${attempt.ms} ms`.trim();
}

import { createECDH } from 'node:crypto';
import WebSocket from 'ws';
import type { SignalTarget } from './targets.ts';

/**
 * Is the server still serving? A brand-new client must complete the
 * handshake (`connected` within 5 s) and GET /health must answer 200 within
 * 5 s. Returns null when both hold, otherwise what failed.
 */
export async function checkLiveness(target: SignalTarget, timeoutMs = 5_000): Promise<string | null> {
  const exited = target.health().exited;
  if (exited !== null) return `server ${exited}`;
  const problems: string[] = [];
  const handshake = await freshHandshake(target, timeoutMs);
  if (handshake !== null) problems.push(`handshake: ${handshake}`);
  try {
    const response = await fetch(`${target.http}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    if (response.status !== 200) problems.push(`/health answered ${response.status}`);
    await response.body?.cancel();
  } catch (error) {
    problems.push(`/health: ${(error as Error).message}`);
  }
  return problems.length === 0 ? null : problems.join('; ');
}

async function freshHandshake(target: SignalTarget, timeoutMs: number): Promise<string | null> {
  const token = await target.token('liveness-probe');
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return new Promise((resolve) => {
    const socket = new WebSocket(target.wsUrl, { handshakeTimeout: timeoutMs });
    const finish = (problem: string | null) => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.terminate();
      resolve(problem);
    };
    const timer = setTimeout(() => finish(`no connected within ${timeoutMs} ms`), timeoutMs);
    socket.on('error', (error) => finish(`socket error ${error.message}`));
    socket.on('unexpected-response', (_request, response) => finish(`upgrade answered HTTP ${response.statusCode}`));
    socket.on('close', (code) => finish(`closed ${code} before connected`));
    socket.on('open', () => {
      socket.send(JSON.stringify({ event: 'authenticate', data: { type: 'Bearer', token, clientPublicKey: ecdh.getPublicKey('base64', 'uncompressed') } }));
    });
    socket.on('message', (data: Buffer) => {
      const text = data.toString('utf8');
      finish(text.startsWith('{"event":"connected"') ? null : `first frame was ${text.slice(0, 80)}`);
    });
  });
}

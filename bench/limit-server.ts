import { createCipheriv, randomBytes, randomFillSync } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { BENCH_EVENT, reply, serveCommands } from './lib/server-commands.ts';

/**
 * The LIMIT baseline: the least work any server must do to send one
 * encrypted broadcast frame to every client, with the same libraries signal
 * uses (node:http, ws, node:crypto) and the same wire format, so clients
 * decode both identically. Per broadcast it serialises the frame once; per
 * client it does one AES-256-GCM seal with a fresh random 12-byte IV and one
 * `ws.send`, with every socket corked until the end of the tick so that
 * frames sent in the same tick leave in one write.
 *
 * `BENCH_LIMIT_CORK=0` turns the per-tick corking off, to show how much of
 * the gap to signal is write coalescing (a diagnostic; results are always
 * recorded with corking on).
 *
 * It is a baseline, not a protocol: the key is 32 random bytes sent in the
 * clear as the first (binary) frame. There is no authentication, no state
 * machine, no rooms, no slow-consumer check and no bus.
 */
interface Peer {
  readonly ws: WebSocket;
  readonly socket: Socket;
  readonly key: Buffer;
  corked: boolean;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
// CSPRNG output drawn in blocks rather than one call per frame; each slice is used once.
const ivPool = Buffer.allocUnsafeSlow(IV_BYTES * 1024);
let ivOffset = ivPool.length;

function nextIv(): Buffer {
  if (ivOffset === ivPool.length) {
    randomFillSync(ivPool);
    ivOffset = 0;
  }
  const iv = ivPool.subarray(ivOffset, ivOffset + IV_BYTES);
  ivOffset += IV_BYTES;
  return iv;
}

function seal(key: Buffer, plaintext: string): string {
  const iv = nextIv();
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  const body = cipher.update(plaintext, 'utf8');
  cipher.final();
  const sealed = Buffer.concat([body, cipher.getAuthTag()]);
  return `{"event":"encrypted","data":{"iv":"${iv.toString('base64')}","ct":"${sealed.toString('base64')}"}}`;
}

const CORK = process.env.BENCH_LIMIT_CORK !== '0';
const peers = new Set<Peer>();
const corked: Peer[] = [];

function uncorkAll(): void {
  for (const peer of corked) {
    peer.corked = false;
    peer.socket.uncork();
  }
  corked.length = 0;
}

function broadcast(data: unknown): void {
  const frame = `{"event":${JSON.stringify(BENCH_EVENT)},"data":${JSON.stringify(data)}}`;
  if (corked.length === 0) process.nextTick(uncorkAll);
  for (const peer of peers) {
    if (peer.ws.readyState !== WebSocket.OPEN) continue;
    if (CORK && !peer.corked) {
      peer.corked = true;
      peer.socket.cork();
      corked.push(peer);
    }
    peer.ws.send(seal(peer.key, frame));
  }
}

const server = createServer((_request, response) => {
  response.writeHead(404).end();
});
const wss = new WebSocketServer({ server, perMessageDeflate: false, clientTracking: false, maxPayload: 64 * 1024 });
wss.on('connection', (ws, request) => {
  // `request.socket` is the very socket ws writes to.
  const peer: Peer = { ws, socket: request.socket, key: randomBytes(32), corked: false };
  ws.send(peer.key);
  peers.add(peer);
  ws.on('close', () => peers.delete(peer));
  ws.on('error', () => undefined);
});

await new Promise<void>((resolveListen) => server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', resolveListen));

serveCommands({
  broadcast,
  stop: async () => {
    for (const peer of peers) peer.ws.terminate();
    await new Promise<void>((resolveClose) => wss.close(() => server.close(() => resolveClose())));
  },
});

reply({ bench: 'ready', port: (server.address() as AddressInfo).port });

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
 *
 * With LIMIT_REDIS_URL set (the room fan-out scenario) it is also the least
 * a two-instance room needs: `publish-room` messages go to every local
 * connection (each connection counts as a member) and, as the serialised
 * frame text, once onto one Redis channel (LIMIT_REDIS_CHANNEL); every
 * instance subscribes to it and fans out what the other instances publish.
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
  fanOut(`{"event":${JSON.stringify(BENCH_EVENT)},"data":${JSON.stringify(data)}}`);
}

function fanOut(frame: string): void {
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

// The room path: one publisher and one subscriber connection, frames tagged with this instance's id.
const redisUrl = process.env.LIMIT_REDIS_URL;
let toRoom: ((room: string, data: unknown) => void) | undefined;
const redisClients: Array<{ quit(): Promise<unknown> }> = [];
if (redisUrl !== undefined && redisUrl !== '') {
  const { Redis } = await import('ioredis');
  const channel = process.env.LIMIT_REDIS_CHANNEL ?? 'bench-limit';
  const self = randomBytes(8).toString('hex');
  const publisher = new Redis(redisUrl);
  const subscriber = new Redis(redisUrl);
  redisClients.push(publisher, subscriber);
  await subscriber.subscribe(channel);
  subscriber.on('message', (_channel: string, text: string) => {
    if (!text.startsWith(self)) fanOut(text.slice(self.length));
  });
  toRoom = (_room, data) => {
    const frame = `{"event":${JSON.stringify(BENCH_EVENT)},"data":${JSON.stringify(data)}}`;
    fanOut(frame);
    void publisher.publish(channel, self + frame);
  };
}

serveCommands({
  broadcast,
  toRoom,
  stop: async () => {
    for (const peer of peers) peer.ws.terminate();
    await new Promise<void>((resolveClose) => wss.close(() => server.close(() => resolveClose())));
    await Promise.all(redisClients.map((client) => client.quit().catch(() => undefined)));
  },
});

reply({ bench: 'ready', port: (server.address() as AddressInfo).port });

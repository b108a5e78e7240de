import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { Server, type ServerOptions } from 'socket.io';
import { BENCH_EVENT, reply, serveCommands } from './lib/server-commands.ts';

/**
 * The PEER: a plain Socket.IO 4 server, set up the way its documentation
 * recommends and nothing more, driven by the same stdin commands as signal.
 * Socket.IO has no per-connection encryption, so everything it sends is
 * plaintext (over ws://, like signal's bench clients).
 *
 *   broadcast line      → `io.emit('bench', data)` (one encode, one write per client)
 *   publish-room        → `io.to(room).emit('bench', data)`
 *   client `join`       → `socket.join(room)`, acknowledged
 *
 * Environment:
 *   PEER_REDIS_URL      use @socket.io/redis-adapter (ioredis pub/sub pair) on this Redis
 *   PEER_REDIS_KEY      the adapter's channel prefix (one per bench run)
 *   PEER_JWKS           a JSON key set: every connection must present `auth.token`,
 *                       verified in an `io.use` middleware with jose (ES256, issuer PEER_JWT_ISSUER)
 */
const redisUrl = process.env.PEER_REDIS_URL;
const redisClients: Redis[] = [];
const options: Partial<ServerOptions> = { serveClient: false, perMessageDeflate: false };
if (redisUrl !== undefined && redisUrl !== '') {
  const pub = new Redis(redisUrl, { lazyConnect: true });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  redisClients.push(pub, sub);
  options.adapter = createAdapter(pub, sub, { key: process.env.PEER_REDIS_KEY ?? 'socket.io' });
}

const server = createServer();
const io = new Server(server, options);

const jwksText = process.env.PEER_JWKS;
if (jwksText !== undefined && jwksText !== '') {
  const keySet = createLocalJWKSet(JSON.parse(jwksText) as JSONWebKeySet);
  const issuer = process.env.PEER_JWT_ISSUER;
  io.use((socket, next) => {
    const token = (socket.handshake.auth as { token?: unknown }).token;
    if (typeof token !== 'string') return next(new Error('unauthorized'));
    jwtVerify(token, keySet, { algorithms: ['ES256'], issuer }).then(
      () => next(),
      () => next(new Error('unauthorized')),
    );
  });
}

io.on('connection', (socket) => {
  socket.on('join', (room: unknown, ack: unknown) => {
    if (typeof room === 'string') void socket.join(room);
    if (typeof ack === 'function') (ack as (ok: boolean) => void)(typeof room === 'string');
  });
});

await new Promise<void>((resolveListen) => server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', resolveListen));

serveCommands({
  broadcast(data) {
    io.emit(BENCH_EVENT, data);
  },
  toRoom(room, data) {
    io.to(room).emit(BENCH_EVENT, data);
  },
  stop: async () => {
    io.local.disconnectSockets(true);
    await new Promise<void>((resolveClose) => io.close(() => resolveClose()));
    await Promise.all(redisClients.map((client) => client.quit().catch(() => undefined)));
  },
});

reply({ bench: 'ready', port: (server.address() as AddressInfo).port });

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { silentLogger } from '../../src/application/ports/logger.port.ts';
import { socketWrites, WsGateway, type SocketSession } from '../../src/adapters/ws/ws-gateway.ts';
import type { Transport } from '../../src/application/connection-session.ts';

/** A session that only counts the pongs its socket answered. */
class PongCounter implements SocketSession {
  pongs = 0;
  receive(): void {}
  pong(): void {
    this.pongs++;
  }
  socketClosed(): void {}
  terminate(): void {}
}

describe('WsGateway', () => {
  let server: Server | undefined;
  let gateway: WsGateway | undefined;
  const clients: WebSocket[] = [];

  afterEach(async () => {
    for (const client of clients.splice(0)) client.terminate();
    await gateway?.close(100);
    await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  });

  /** A gateway on a fresh server with one client: the server side's transport and what the client got (as `keep` maps it). */
  async function oneClient(keep: (text: string) => string): Promise<{ transport: Transport; received: string[] }> {
    const transports: Transport[] = [];
    server = createServer();
    gateway = new WsGateway({ path: '/stream', maxPayloadBytes: 1024, pingIntervalMs: 60_000 }, (_, transport) => {
      transports.push(transport);
      return new PongCounter();
    }, silentLogger);
    gateway.attach(server);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const client = new WebSocket(`ws://127.0.0.1:${port}/stream`);
    clients.push(client);
    const received: string[] = [];
    client.on('message', (data) => received.push(keep(String(data))));
    await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
    await waitUntil(() => transports.length > 0);
    return { transport: transports[0]!, received };
  }

  it('pings every open socket each interval, a slice at a time, and hands each pong to its session', async () => {
    const sessions: PongCounter[] = [];
    server = createServer();
    gateway = new WsGateway({ path: '/stream', maxPayloadBytes: 1024, pingIntervalMs: 60, pingSliceSize: 2 }, () => {
      const session = new PongCounter();
      sessions.push(session);
      return session;
    }, silentLogger);
    gateway.attach(server);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const pings = new Map<WebSocket, number>();
    for (let index = 0; index < 7; index++) {
      const client = new WebSocket(`ws://127.0.0.1:${port}/stream`);
      clients.push(client);
      pings.set(client, 0);
      client.on('ping', () => pings.set(client, pings.get(client)! + 1));
      await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
    }
    const deadline = Date.now() + 5_000;
    while ([...pings.values()].some((count) => count < 2) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect([...pings.values()].every((count) => count >= 2)).toBe(true);
    // ws answers pings on its own; every pong reaches the socket's session.
    while (sessions.some((session) => session.pongs < 2) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sessions.map((session) => session.pongs >= 2)).toEqual(Array(7).fill(true));
  });

  it('keeps frames in the socket while writes are held and sends them, in order, on release', async () => {
    const { transport, received } = await oneClient((text) => text);

    transport.send('not held');
    await waitUntil(() => received.length === 1);

    socketWrites.hold();
    try {
      transport.send('one');
      transport.send('two');
      expect(socketWrites.waiting).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 100)); // several ticks: nothing leaves while held
      expect(received).toEqual(['not held']);
      expect(transport.bufferedAmount).toBeGreaterThan(0);
    } finally {
      socketWrites.release();
    }
    expect(socketWrites.waiting).toBe(0);
    await waitUntil(() => received.length === 3);
    expect(received).toEqual(['not held', 'one', 'two']);
  });

  it('writes a held socket at once when its held bytes pass 8 KiB, and holds what follows again', async () => {
    const { transport, received } = await oneClient((text) => text.slice(0, 1));

    socketWrites.hold();
    try {
      transport.send('a'.repeat(3_000));
      transport.send('b'.repeat(3_000));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(received).toEqual([]); // 6 KB held
      transport.send('c'.repeat(3_000)); // 9 KB: written now
      await waitUntil(() => received.length === 3);
      expect(received).toEqual(['a', 'b', 'c']);
      transport.send('d');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(received).toHaveLength(3); // held again
    } finally {
      socketWrites.release();
    }
    await waitUntil(() => received.length === 4);
    expect(received).toEqual(['a', 'b', 'c', 'd']);
  });
});


async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

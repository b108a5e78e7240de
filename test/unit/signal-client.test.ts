import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  backoffDelay,
  closeKind,
  ConnectionClosedError,
  DEFAULT_RECONNECT,
  NotConnectedError,
  RequestTimeoutError,
  SignalClient,
} from '../../src/adapters/sdk/signal-client.ts';
import type { SignalClientEvents, SignalClientOptions } from '../../src/adapters/sdk/signal-client.ts';
import { openPayload, sealFrame } from '../../src/domain/crypto-session.ts';
import { parseFrame, serializeFrame } from '../../src/domain/protocol.ts';
import { FakeStreamServer } from '../fixtures/fake-stream-server.ts';
import type { FakeServerOptions } from '../fixtures/fake-stream-server.ts';
import { settle, waitFor } from '../fixtures/wait-for.ts';

type EventLog = { [K in keyof SignalClientEvents]: Array<SignalClientEvents[K]> };

const servers: FakeStreamServer[] = [];
const clients: SignalClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) await server.close();
});

async function startServer(options?: FakeServerOptions): Promise<FakeStreamServer> {
  const server = await FakeStreamServer.start(options);
  servers.push(server);
  return server;
}

/** A client on the fake server with fast, jitter-free reconnects and every emitted event logged. */
function createClient(server: FakeStreamServer, overrides: Partial<SignalClientOptions> = {}) {
  const client = new SignalClient({
    url: server.url,
    token: 'valid-token',
    WebSocket,
    reconnect: { initialDelayMs: 5, jitter: 0 },
    ...overrides,
  });
  clients.push(client);
  const log: EventLog = { state: [], connected: [], message: [], close: [], error: [], reconnecting: [], rejoined: [] };
  client.on('state', (event) => log.state.push(event));
  client.on('connected', (event) => log.connected.push(event));
  client.on('message', (event) => log.message.push(event));
  client.on('close', (event) => log.close.push(event));
  client.on('error', (event) => log.error.push(event));
  client.on('reconnecting', (event) => log.reconnecting.push(event));
  client.on('rejoined', (event) => log.rejoined.push(event));
  return { client, log };
}

function states(log: EventLog): string[] {
  return log.state.map((change) => change.state);
}

describe('SignalClient against a server doing the real handshake', () => {
  it('authenticates at once and resolves connect with the connected info, ending encrypted', async () => {
    const server = await startServer({ userId: 'user-42' });
    const { client, log } = createClient(server);

    const info = await client.connect();

    const connection = server.connections[0]!;
    expect(info.clientId).toBe(connection.clientId);
    expect(info.userId).toBe('user-42');
    expect(Number.isNaN(Date.parse(info.time))).toBe(false);
    expect(info.serverPublicKey).toMatch(/^B[A-Za-z0-9+/]{86}=$/);
    expect(info.salt).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(states(log)).toEqual(['connecting', 'authenticated', 'encrypted']);
    expect(client.state).toBe('encrypted');
    expect(log.connected).toEqual([info]);

    // The first frame on the wire is the plaintext authenticate, in the documented shape.
    const auth = JSON.parse(connection.raw[0]!) as { event: string; data: Record<string, unknown> };
    expect(auth.event).toBe('authenticate');
    expect(Object.keys(auth.data)).toEqual(['type', 'token', 'clientPublicKey']);
    expect(auth.data.type).toBe('Bearer');
    expect(auth.data.token).toBe('valid-token');
    expect(auth.data.clientPublicKey).toMatch(/^B[A-Za-z0-9+/]{86}=$/);
  });

  it('emits encrypted server frames decrypted, as `message` and by event name, in order', async () => {
    const server = await startServer();
    const { client, log } = createClient(server);
    const updates: unknown[] = [];
    client.onEvent('order.updated', (data) => updates.push(data));
    await client.connect();

    const connection = server.connections[0]!;
    connection.sendEncrypted('order.updated', { orderId: 'o-1', status: 'PAID' });
    connection.sendEncrypted('notification', { title: 'hi' });
    // A binary frame carries UTF-8 text like any other (§1).
    connection.socket.send(Buffer.from(sealFrame(connection.key!, serializeFrame('order.updated', { orderId: 'o-2' }))));
    await waitFor(() => log.message.length === 3, 2_000, 'three messages');

    expect(log.message).toEqual([
      { event: 'order.updated', data: { orderId: 'o-1', status: 'PAID' } },
      { event: 'notification', data: { title: 'hi' } },
      { event: 'order.updated', data: { orderId: 'o-2' } },
    ]);
    expect(updates).toEqual([{ orderId: 'o-1', status: 'PAID' }, { orderId: 'o-2' }]);
    expect(log.error).toEqual([]);
  });

  it('sends application frames encrypted, in call order, decryptable with the session key', async () => {
    const server = await startServer();
    const { client } = createClient(server);
    await client.connect();

    await Promise.all([1, 2, 3].map((n) => client.send('chat', { text: 'secret words', n })));
    const connection = server.connections[0]!;
    await waitFor(() => server.framesOf(0, 'chat').length === 3, 2_000, 'three chat frames');

    const onWire = connection.raw.slice(1);
    expect(onWire).toHaveLength(3);
    const inner = onWire.map((text) => {
      expect(text).not.toContain('secret words');
      const frame = parseFrame(text);
      if (!frame.ok) throw new Error(`not a frame: ${text}`);
      expect(frame.frame.event).toBe('encrypted');
      return openPayload(connection.key!, frame.frame.data);
    });
    expect(inner).toEqual([1, 2, 3].map((n) => `{"event":"chat","data":{"text":"secret words","n":${n}}}`));
  });

  it('sends plaintext frames when encryptOutbound is off', async () => {
    const server = await startServer();
    const { client } = createClient(server, { encryptOutbound: false });
    await client.connect();

    await client.send('chat', { n: 1 });
    await waitFor(() => server.connections[0]!.raw.length === 2, 2_000, 'the chat frame');
    expect(server.connections[0]!.raw[1]).toBe('{"event":"chat","data":{"n":1}}');
  });

  it("resolves join and leave with the server's accepted and rejected lists", async () => {
    const server = await startServer();
    const { client } = createClient(server);
    await client.connect();

    await expect(client.join(['lobby', 'forbidden-room', 'merchant:42'])).resolves.toEqual({
      rooms: ['lobby', 'merchant:42'],
      rejected: ['forbidden-room'],
    });
    expect(client.joinedRooms).toEqual(['lobby', 'merchant:42']);
    const [join] = server.framesOf(0, 'join');
    expect(join?.data).toEqual({ rooms: ['lobby', 'forbidden-room', 'merchant:42'] });
    expect(typeof join?.id).toBe('string');

    await expect(client.leave(['lobby'])).resolves.toEqual({ rooms: ['lobby'], rejected: [] });
    expect(client.joinedRooms).toEqual(['merchant:42']);
    // Every request carries its own id.
    expect(server.framesOf(0, 'leave')[0]?.id).not.toBe(join?.id);
  });

  it('rejects a request that gets no reply in time, and rejects everything when not connected', async () => {
    const server = await startServer({ answerRequests: false });
    const { client } = createClient(server, { requestTimeoutMs: 50 });
    await expect(client.join(['lobby'])).rejects.toBeInstanceOf(NotConnectedError);
    await expect(client.send('chat', {})).rejects.toBeInstanceOf(NotConnectedError);
    await client.connect();

    const error = await client.join(['lobby']).catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect((error as RequestTimeoutError).code).toBe('ERR_REQUEST_TIMEOUT');
    expect(client.joinedRooms).toEqual([]);
  });

  it('rejects connect on 4003 with kind auth-failed, reports the server error and never reconnects', async () => {
    const server = await startServer();
    let tokenCalls = 0;
    const { client, log } = createClient(server, {
      token: () => {
        tokenCalls += 1;
        return 'revoked-token';
      },
      reconnect: { initialDelayMs: 1, jitter: 0 },
    });

    const error = await client.connect().catch((failure: unknown) => failure);

    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({ closeCode: 4003, kind: 'auth-failed', code: 'ERR_CONNECTION_CLOSED' });
    expect(log.error).toEqual([{ source: 'server', message: 'Authentication failed' }]);
    expect(log.close).toEqual([
      { code: 4003, reason: 'Authentication failed', kind: 'auth-failed', willReconnect: false },
    ]);
    expect(client.state).toBe('closed');
    expect(log.reconnecting).toEqual([]);
    await settle(100);
    expect(server.connections).toHaveLength(1);
    expect(tokenCalls).toBe(1);
  });

  it('reconnects after an abrupt server close with a fresh token, and re-joins the rooms', async () => {
    const server = await startServer();
    let tokenCalls = 0;
    const { client, log } = createClient(server, {
      token: () => {
        tokenCalls += 1;
        return Promise.resolve(`valid-${tokenCalls}`);
      },
    });
    const first = await client.connect();
    await client.join(['lobby', 'merchant:42']);

    server.connections[0]!.socket.terminate();
    await waitFor(() => log.connected.length === 2, 3_000, 'the second connected');
    await waitFor(() => log.rejoined.length === 1, 3_000, 'the re-join');

    expect(log.close).toEqual([{ code: 1006, reason: '', kind: 'abnormal', willReconnect: true }]);
    expect(log.reconnecting).toEqual([{ attempt: 1, delayMs: 5 }]);
    expect(states(log)).toEqual(['connecting', 'authenticated', 'encrypted', 'connecting', 'authenticated', 'encrypted']);
    expect(tokenCalls).toBe(2);
    expect(server.connections.map((connection) => connection.token)).toEqual(['valid-1', 'valid-2']);
    expect(log.connected[1]!.clientId).not.toBe(first.clientId);
    expect(server.framesOf(1, 'join').map((frame) => frame.data)).toEqual([{ rooms: ['lobby', 'merchant:42'] }]);
    expect(log.rejoined).toEqual([{ rooms: ['lobby', 'merchant:42'], rejected: [] }]);

    // The new session works end to end, and exactly one reconnect happened.
    server.connections[1]!.sendEncrypted('ping', { n: 1 });
    await waitFor(() => log.message.length === 1, 2_000, 'a message on the new session');
    await settle(50);
    expect(server.connections).toHaveLength(2);
  });

  it('drops a re-joined room the server now rejects', async () => {
    let allowVip = true;
    const server = await startServer({ acceptRoom: (room) => room !== 'vip' || allowVip });
    const { client, log } = createClient(server);
    await client.connect();
    await client.join(['lobby', 'vip']);

    allowVip = false;
    server.connections[0]!.socket.terminate();
    await waitFor(() => log.rejoined.length === 1, 3_000, 'the re-join');

    expect(log.rejoined).toEqual([{ rooms: ['lobby'], rejected: ['vip'] }]);
    expect(client.joinedRooms).toEqual(['lobby']);
  });

  describe('after a server close of an established session', () => {
    it.each([
      [1001, 'Server shutting down', 'shutting-down', true],
      [4002, 'Heartbeat timeout', 'heartbeat-timeout', true],
      [4005, 'Slow consumer', 'slow-consumer', true],
      [4006, 'Rate limit exceeded', 'rate-limited', true],
      [4003, 'Authentication failed', 'auth-failed', false],
      [4004, 'Encryption required', 'encryption-required', false],
      [4008, 'Disconnected by server', 'disconnected-by-server', false],
    ] as const)('%i %s: kind %s, reconnects: %s', async (code, reason, kind, reconnects) => {
      const server = await startServer();
      const { client, log } = createClient(server);
      await client.connect();

      server.connections[0]!.socket.close(code, reason);
      await waitFor(() => log.close.length === 1, 2_000, 'the close event');
      expect(log.close[0]).toEqual({ code, reason, kind, willReconnect: reconnects });

      if (reconnects) {
        await waitFor(() => log.connected.length === 2, 3_000, 'the reconnect');
        expect(client.state).toBe('encrypted');
      } else {
        expect(client.state).toBe('closed');
        expect(log.reconnecting).toEqual([]);
      }
      await settle(50);
      expect(server.connections).toHaveLength(reconnects ? 2 : 1);
    });

    it('4007 reconnects only when the token comes from a function', async () => {
      const server = await startServer();
      const fixed = createClient(server, { token: 'valid-fixed' });
      const refreshed = createClient(server, { token: () => 'valid-refreshed' });
      await fixed.client.connect();
      await refreshed.client.connect();

      for (const connection of server.connections) connection.socket.close(4007, 'Token expired');
      await waitFor(() => refreshed.log.connected.length === 2, 3_000, 'the refreshed reconnect');
      await waitFor(() => fixed.log.close.length === 1, 2_000, 'the fixed-token close');

      expect(fixed.log.close[0]).toMatchObject({ code: 4007, kind: 'token-expired', willReconnect: false });
      expect(fixed.client.state).toBe('closed');
      expect(refreshed.log.close[0]).toMatchObject({ code: 4007, kind: 'token-expired', willReconnect: true });
      await settle(50);
      expect(server.connections.map((connection) => connection.token)).toEqual([
        'valid-fixed',
        'valid-refreshed',
        'valid-refreshed',
      ]);
    });
  });

  it('gives up after maxAttempts failed reconnects', async () => {
    let drop = false;
    const server = await startServer({ dropOnAccept: () => drop });
    const { client, log } = createClient(server, {
      reconnect: { initialDelayMs: 2, factor: 1, jitter: 0, maxAttempts: 2 },
    });
    await client.connect();

    drop = true;
    server.connections[0]!.socket.terminate();
    await waitFor(() => client.state === 'closed', 3_000, 'giving up');

    expect(log.reconnecting).toEqual([
      { attempt: 1, delayMs: 2 },
      { attempt: 2, delayMs: 2 },
    ]);
    expect(log.close.map((close) => close.willReconnect)).toEqual([true, true, false]);
    await settle(50);
    expect(server.connections).toHaveLength(3);
  });

  it('sends heartbeats on the configured interval', async () => {
    const server = await startServer();
    const { client } = createClient(server, { heartbeatIntervalMs: 20 });
    await client.connect();

    const connection = server.connections[0]!;
    await waitFor(
      () => connection.raw.filter((text) => text === '{"event":"heartbeat"}').length >= 2,
      2_000,
      'two heartbeats',
    );
  });

  it('reports a tampered encrypted frame as an error and keeps working', async () => {
    const server = await startServer();
    const { client, log } = createClient(server);
    await client.connect();
    const connection = server.connections[0]!;

    const sealed = JSON.parse(sealFrame(connection.key!, serializeFrame('secret', { n: 1 }))) as {
      data: { iv: string; ct: string };
    };
    const ct = Buffer.from(sealed.data.ct, 'base64');
    ct[0]! ^= 0x01;
    connection.socket.send(serializeFrame('encrypted', { iv: sealed.data.iv, ct: ct.toString('base64') }));
    connection.socket.send(serializeFrame('encrypted', { iv: 'not base64!', ct: 42 }));
    connection.sendEncrypted('after', { n: 2 });
    await waitFor(() => log.message.length === 1, 2_000, 'the frame after the tampered ones');

    expect(log.error.map((error) => [error.source, error.message])).toEqual([
      ['client', 'Decryption failed'],
      ['client', 'Decryption failed'],
    ]);
    expect(log.error[0]!.error).toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
    expect(log.message).toEqual([{ event: 'after', data: { n: 2 } }]);
    expect(client.state).toBe('encrypted');
    await client.send('still', { ok: true });
    await waitFor(() => server.framesOf(0, 'still').length === 1, 2_000, 'an outbound frame');
  });

  it("handles the server's last encrypted frame before its close", async () => {
    const server = await startServer();
    const { client, log } = createClient(server);
    await client.connect();

    const connection = server.connections[0]!;
    connection.sendEncrypted('kicked', { why: 'operator' });
    connection.socket.close(4008, 'Disconnected by server');
    await waitFor(() => log.close.length === 1, 2_000, 'the close');

    expect(log.message).toEqual([{ event: 'kicked', data: { why: 'operator' } }]);
  });

  it('reports an encrypted frame that arrives before the session key, and still connects', async () => {
    const server = await startServer({ beforeConnected: (connection) => connection.sendEncrypted('early', {}) });
    const { client, log } = createClient(server);

    await client.connect();

    expect(log.error).toHaveLength(1);
    expect(log.error[0]).toMatchObject({ source: 'client', message: 'Encrypted frame before the session key' });
    expect(log.message).toEqual([]);
    expect(client.state).toBe('encrypted');
  });

  it('close() ends the session, rejects pending requests and closes with 1000', async () => {
    const server = await startServer({ answerRequests: false });
    const { client, log } = createClient(server);
    await client.connect();
    const pendingJoin = client.join(['lobby']);

    client.close();

    await expect(pendingJoin).rejects.toMatchObject({ closeCode: 1000, kind: 'normal' });
    expect(client.state).toBe('closed');
    expect(log.close).toEqual([{ code: 1000, reason: 'Client closed', kind: 'normal', willReconnect: false }]);
    await waitFor(() => server.connections[0]!.closedWith !== undefined, 2_000, 'the server-side close');
    expect(server.connections[0]!.closedWith).toEqual({ code: 1000, reason: 'Client closed' });
    await expect(client.send('chat', {})).rejects.toBeInstanceOf(NotConnectedError);
  });

  it('close() during the reconnect delay stops reconnecting', async () => {
    const server = await startServer();
    const { client, log } = createClient(server, { reconnect: { initialDelayMs: 20, jitter: 0 } });
    await client.connect();
    // Closing from the listener lands exactly inside the delay, however slow the machine is.
    client.on('reconnecting', () => client.close());

    server.connections[0]!.socket.terminate();
    await waitFor(() => client.state === 'closed', 2_000, 'the close');

    expect(log.reconnecting).toEqual([{ attempt: 1, delayMs: 20 }]);
    expect(log.close.map((close) => close.code)).toEqual([1006, 1000]);
    await settle(100);
    expect(server.connections).toHaveLength(1);
    expect(log.connected).toHaveLength(1);
  });

  it('connects again after close()', async () => {
    const server = await startServer();
    const { client } = createClient(server);
    await client.connect();
    client.close();

    const info = await client.connect();
    expect(info.clientId).toBe(server.connections[1]!.clientId);
    expect(client.state).toBe('encrypted');
  });
});

describe('backoffDelay', () => {
  it('grows by the factor up to the ceiling without jitter', () => {
    const policy = { ...DEFAULT_RECONNECT, jitter: 0 };
    expect([1, 2, 3, 4, 7, 8, 20].map((attempt) => backoffDelay(attempt, policy))).toEqual([
      500, 1000, 2000, 4000, 30_000, 30_000, 30_000,
    ]);
  });

  it('only ever shortens a delay by at most the jitter fraction', () => {
    expect(backoffDelay(2, DEFAULT_RECONNECT, () => 0)).toBe(1000);
    expect(backoffDelay(2, DEFAULT_RECONNECT, () => 0.999_999)).toBe(500);
    expect(backoffDelay(10, DEFAULT_RECONNECT, () => 0)).toBe(30_000);
  });
});

describe('closeKind', () => {
  it('names the protocol close codes and calls everything else abnormal', () => {
    expect([1000, 1001, 1009, 4001, 4003, 4004, 4007, 4008, 1006, 1011].map(closeKind)).toEqual([
      'normal',
      'shutting-down',
      'message-too-big',
      'auth-timeout',
      'auth-failed',
      'encryption-required',
      'token-expired',
      'disconnected-by-server',
      'abnormal',
      'abnormal',
    ]);
  });
});

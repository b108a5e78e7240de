import { openEncrypted, openLimit, openPeer, openSignal } from './client-connect.ts';
import { monotonicUs } from './room-pacer.ts';
import type { FromLatencyWorker, ToLatencyWorker } from './worker-messages.ts';

/**
 * Room members for the fan-out latency scenario: each client joins the
 * room (signal: a `join` frame with an id, answered by an encrypted
 * `joined`; the peer: an acknowledged `join` event; the limit has no rooms,
 * every connection is a member), then decrypts and
 * parses every message and records now − `t`, the message's due time
 * stamped by the publishing server on the same monotonic clock.
 */
interface Member {
  nextSeq: number;
  close(): void;
}

const members: Member[] = [];
let closing = false;

let first = 0;
let count = 0;
let delivered = 0;
let outOfOrder = 0;
let unexpected = 0;
let latencies: number[] = [];
let onDelivered: (() => void) | null = null;

function send(message: FromLatencyWorker): void {
  process.send?.(message);
}

function fail(message: string): void {
  send({ type: 'failed', message });
}

function record(member: Member, data: { seq?: unknown; t?: unknown } | undefined): void {
  const now = monotonicUs();
  const seq = data?.seq;
  const t = data?.t;
  if (typeof seq !== 'number' || typeof t !== 'number') {
    if (unexpected++ === 0) fail('a message without seq and t');
    return;
  }
  if (seq !== member.nextSeq) outOfOrder++;
  member.nextSeq = seq + 1;
  if (seq < first || seq >= first + count) {
    unexpected++;
    return;
  }
  delivered++;
  latencies.push(now - t);
  onDelivered?.();
}

function onLost(why: string): void {
  if (!closing) fail(`a member was closed by the server: ${why}`);
}

async function joinSignal(url: string, token: string, ecdhInfo: string, room: string): Promise<Member> {
  const member: Member = { nextSeq: 0, close: () => undefined };
  let key: Buffer | null = null;
  let joined: (() => void) | null = null;
  const onFrame = (raw: Buffer): void => {
    let inner: { event?: unknown; data?: { seq?: unknown; t?: unknown; rooms?: unknown } };
    try {
      inner = JSON.parse(openEncrypted(key!, raw)) as typeof inner;
    } catch (error) {
      if (unexpected++ === 0) fail(`undecodable frame: ${(error as Error).message}`);
      return;
    }
    if (inner.event === 'bench') return record(member, inner.data);
    if (inner.event === 'joined' && Array.isArray(inner.data?.rooms) && inner.data.rooms.includes(room)) return joined?.();
    if (unexpected++ === 0) fail(`unexpected ${String(inner.event)} ${JSON.stringify(inner.data)}`);
  };
  const client = await openSignal({ url, token, ecdhInfo, onLost, onFrame });
  key = client.key;
  member.close = () => client.ws.terminate();
  await new Promise<void>((resolveJoin) => {
    joined = resolveJoin;
    client.ws.send(JSON.stringify({ event: 'join', data: { rooms: [room] }, id: 'bench-join' }));
  });
  return member;
}

async function joinLimit(url: string): Promise<Member> {
  const member: Member = { nextSeq: 0, close: () => undefined };
  let key: Buffer | null = null;
  const onFrame = (raw: Buffer): void => {
    let inner: { event?: unknown; data?: { seq?: unknown; t?: unknown } };
    try {
      inner = JSON.parse(openEncrypted(key!, raw)) as typeof inner;
    } catch (error) {
      if (unexpected++ === 0) fail(`undecodable frame: ${(error as Error).message}`);
      return;
    }
    record(member, inner.data);
  };
  const client = await openLimit({ url, onLost, onFrame });
  key = client.key;
  member.close = () => client.ws.terminate();
  return member;
}

async function joinPeer(url: string, room: string): Promise<Member> {
  const member: Member = { nextSeq: 0, close: () => undefined };
  const socket = await openPeer({ url, onLost, on: { bench: (data: { seq?: unknown; t?: unknown }) => record(member, data) } });
  member.close = () => socket.close();
  const ok = (await socket.timeout(30_000).emitWithAck('join', room)) as unknown;
  if (ok !== true) throw new Error('the peer refused the join');
  return member;
}

async function connect(message: Extract<ToLatencyWorker, { type: 'connect' }>): Promise<void> {
  const started = performance.now();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < message.clients) {
      const index = next++;
      members.push(
        message.target === 'signal'
          ? await joinSignal(message.url, message.tokens[index] ?? '', message.ecdhInfo, message.room)
          : message.target === 'peer'
            ? await joinPeer(message.url, message.room)
            : await joinLimit(message.url),
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(message.concurrency, message.clients) }, lane));
  send({ type: 'connected', clients: members.length, ms: performance.now() - started });
}

function report(waitMs: number): void {
  const expected = count * members.length;
  const finish = (): void => {
    clearTimeout(timer);
    onDelivered = null;
    send({ type: 'report', delivered, expected, outOfOrder, unexpected, latenciesUs: latencies });
  };
  const timer = setTimeout(finish, waitMs);
  if (delivered >= expected) return finish();
  onDelivered = () => {
    if (delivered >= expected) finish();
  };
}

function closeAll(): void {
  closing = true;
  for (const member of members) member.close();
}

process.on('message', (message: ToLatencyWorker) => {
  switch (message.type) {
    case 'connect':
      connect(message).catch((error: unknown) => fail((error as Error).message));
      break;
    case 'round':
      first = message.first;
      count = message.count;
      delivered = 0;
      outOfOrder = 0;
      unexpected = 0;
      latencies = [];
      for (const member of members) member.nextSeq = first;
      send({ type: 'round-ready' });
      break;
    case 'report':
      report(message.waitMs);
      break;
    case 'close':
      closeAll();
      process.disconnect?.();
      break;
  }
});

process.on('disconnect', () => {
  closeAll();
  setImmediate(() => process.exit(0));
});

import { absoluteNow, type FromWorker, type Target, type ToWorker } from './client-messages.ts';
import { openEncrypted, openLimit, openPeer, openSignal } from './client-connect.ts';

/**
 * A load-generator process: opens its share of the clients, does the real
 * handshake (for signal: ECDH P-256 → HKDF-SHA-256 → AES-256-GCM, see
 * client-connect.ts; for the limit: the key from its first frame; for the
 * Socket.IO peer: its own connect), then decodes EVERY frame it receives
 * (decrypts and JSON-parses signal's and the limit's; Socket.IO's parser
 * JSON-parses the peer's), checks per-client order, and tells the bench when
 * all of its clients have a given broadcast.
 */
interface Client {
  nextSeq: number;
  close(): void;
}

const clients: Client[] = [];
let closing = false;

// The current round.
let first = 0;
let counts = new Uint32Array(0);
let delivered = 0;
let outOfOrder = 0;
let unexpected = 0;
let lost = 0;

function send(message: FromWorker): void {
  process.send?.(message);
}

function fail(message: string): void {
  send({ type: 'failed', message });
}

function undecodable(error: unknown): void {
  if (unexpected++ === 0) fail(`undecodable frame: ${(error as Error).message}`);
}

function count(client: Client, seq: unknown): void {
  if (typeof seq !== 'number') return undecodable(new Error('not a bench frame'));
  if (seq !== client.nextSeq) outOfOrder++;
  client.nextSeq = seq + 1;
  const index = seq - first;
  if (index < 0 || index >= counts.length) {
    unexpected++;
    return;
  }
  delivered++;
  if (++counts[index]! === clients.length) send({ type: 'done', seq, at: absoluteNow() });
}

function onLost(why: string): void {
  if (closing) return;
  lost++;
  fail(`a client was closed by the server: ${why}`);
}

async function openOne(target: Target, url: string, token: string | undefined, ecdhInfo: string, localAddress: string | undefined): Promise<Client> {
  const client: Client = { nextSeq: 0, close: () => undefined };
  if (target === 'peer') {
    const socket = await openPeer({
      url,
      localAddress,
      onLost,
      on: { bench: (data: { seq?: unknown } | null) => count(client, data?.seq) },
    });
    client.close = () => socket.close();
    return client;
  }
  let key: Buffer | null = null;
  const onFrame = (raw: Buffer): void => {
    let seq: unknown;
    try {
      const inner = JSON.parse(openEncrypted(key!, raw)) as { event?: unknown; data?: { seq?: unknown } };
      if (inner.event !== 'bench') throw new Error('not a bench frame');
      seq = inner.data?.seq;
    } catch (error) {
      return undecodable(error);
    }
    count(client, seq);
  };
  const opened =
    target === 'limit'
      ? await openLimit({ url, localAddress, onLost, onFrame })
      : await openSignal({ url, localAddress, onLost, onFrame, token: token ?? '', ecdhInfo });
  key = opened.key;
  client.close = () => opened.ws.terminate();
  return client;
}

async function connect(message: Extract<ToWorker, { type: 'connect' }>): Promise<void> {
  const started = performance.now();
  const sources = message.localAddresses ?? [];
  let nextIndex = 0;
  const lane = async (): Promise<void> => {
    while (nextIndex < message.clients) {
      const index = nextIndex++;
      const source = sources.length === 0 ? undefined : sources[index % sources.length];
      clients.push(await openOne(message.target, message.url, message.tokens[index], message.ecdhInfo, source));
    }
  };
  await Promise.all(Array.from({ length: Math.min(message.concurrency, message.clients) }, lane));
  send({ type: 'connected', clients: clients.length, ms: performance.now() - started });
}

function startRound(firstSeq: number, roundCount: number): void {
  first = firstSeq;
  counts = new Uint32Array(roundCount);
  delivered = 0;
  outOfOrder = 0;
  unexpected = 0;
  for (const client of clients) client.nextSeq = firstSeq;
  send({ type: 'round-ready' });
}

function closeAll(): void {
  closing = true;
  for (const client of clients) client.close();
}

process.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'connect':
      connect(message).catch((error: unknown) => fail((error as Error).message));
      break;
    case 'round':
      startRound(message.first, message.count);
      break;
    case 'report':
      send({ type: 'report', delivered, outOfOrder, unexpected, lost });
      break;
    case 'close':
      closeAll();
      process.disconnect?.();
      break;
  }
});

// The bench went away: nothing left to measure.
process.on('disconnect', () => {
  closeAll();
  setImmediate(() => process.exit(0));
});

import { createDecipheriv, createECDH, hkdfSync } from 'node:crypto';
import WebSocket from 'ws';
import { absoluteNow, type FromWorker, type Target, type ToWorker } from './client-messages.ts';

/**
 * A load-generator process: opens its share of the clients, does the real
 * handshake (for signal: ECDH P-256 → HKDF-SHA-256 → AES-256-GCM, written
 * here from the protocol rather than taken from the project's SDK; for the
 * limit: the key from its first frame), then decrypts and parses EVERY
 * frame it receives, checks per-client order, and tells the bench when all
 * of its clients have a given broadcast.
 */
interface Client {
  readonly ws: WebSocket;
  key: Buffer | null;
  nextSeq: number;
}

const TAG_BYTES = 16;
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

function onFrame(client: Client, raw: Buffer): void {
  let seq: number;
  try {
    const outer = JSON.parse(raw.toString('utf8')) as { event?: unknown; data?: { iv?: unknown; ct?: unknown } };
    if (outer.event !== 'encrypted' || client.key === null) throw new Error(`unexpected ${String(outer.event)} frame`);
    const iv = Buffer.from(outer.data?.iv as string, 'base64');
    const sealed = Buffer.from(outer.data?.ct as string, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', client.key, iv, { authTagLength: TAG_BYTES });
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const body = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
    decipher.final();
    const inner = JSON.parse(body.toString('utf8')) as { event?: unknown; data?: { seq?: unknown } };
    if (inner.event !== 'bench' || typeof inner.data?.seq !== 'number') throw new Error('not a bench frame');
    seq = inner.data.seq;
  } catch (error) {
    if (unexpected++ === 0) fail(`undecodable frame: ${(error as Error).message}`);
    return;
  }
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

function openOne(target: Target, url: string, token: string | undefined, ecdhInfo: string): Promise<Client> {
  return new Promise((resolveOpen, rejectOpen) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const client: Client = { ws, key: null, nextSeq: 0 };
    let settled = false;
    const settle = (error?: Error): void => {
      if (settled) return;
      settled = true;
      if (error === undefined) resolveOpen(client);
      else rejectOpen(error);
    };
    let ecdh: ReturnType<typeof createECDH> | null = null;

    ws.on('open', () => {
      if (target === 'limit') return; // the limit speaks first
      ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      const clientPublicKey = ecdh.getPublicKey('base64', 'uncompressed');
      ws.send(JSON.stringify({ event: 'authenticate', data: { type: 'Bearer', token, clientPublicKey } }));
    });
    ws.on('message', (raw: Buffer, isBinary: boolean) => {
      if (client.key !== null) {
        onFrame(client, raw);
        return;
      }
      if (target === 'limit') {
        if (!isBinary || raw.length !== 32) return settle(new Error('limit server sent no key'));
        client.key = Buffer.from(raw);
        return settle();
      }
      const frame = JSON.parse(raw.toString('utf8')) as { event: string; data?: Record<string, string> };
      if (frame.event !== 'connected' || ecdh === null) {
        return settle(new Error(`handshake: got ${frame.event} ${JSON.stringify(frame.data ?? {})}`));
      }
      const { serverPublicKey, salt } = frame.data ?? {};
      if (serverPublicKey === undefined || salt === undefined) return settle(new Error('handshake: connected without a key'));
      const shared = ecdh.computeSecret(Buffer.from(serverPublicKey, 'base64'));
      client.key = Buffer.from(hkdfSync('sha256', shared, Buffer.from(salt, 'base64'), Buffer.from(ecdhInfo), 32));
      ecdh = null;
      settle();
    });
    ws.on('unexpected-response', (_request, response) => settle(new Error(`upgrade refused: HTTP ${response.statusCode}`)));
    ws.on('error', (error) => settle(error));
    ws.on('close', (code: number, reason: Buffer) => {
      settle(new Error(`closed ${code} ${reason.toString('utf8')} during the handshake`));
      if (!closing && client.key !== null) {
        lost++;
        fail(`a client was closed by the server: ${code} ${reason.toString('utf8')}`);
      }
    });
  });
}

async function connect(message: Extract<ToWorker, { type: 'connect' }>): Promise<void> {
  const started = performance.now();
  let nextIndex = 0;
  const lane = async (): Promise<void> => {
    while (nextIndex < message.clients) {
      const index = nextIndex++;
      clients.push(await openOne(message.target, message.url, message.tokens[index], message.ecdhInfo));
    }
  };
  await Promise.all(Array.from({ length: Math.min(message.concurrency, message.clients) }, lane));
  send({ type: 'connected', clients: clients.length, ms: performance.now() - started });
}

function startRound(firstSeq: number, count: number): void {
  first = firstSeq;
  counts = new Uint32Array(count);
  delivered = 0;
  outOfOrder = 0;
  unexpected = 0;
  for (const client of clients) client.nextSeq = firstSeq;
  send({ type: 'round-ready' });
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
      closing = true;
      for (const client of clients) client.ws.terminate();
      process.disconnect?.();
      break;
  }
});

// The bench went away: nothing left to measure.
process.on('disconnect', () => {
  closing = true;
  for (const client of clients) client.ws.terminate();
  setImmediate(() => process.exit(0));
});

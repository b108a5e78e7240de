import { createDecipheriv, createECDH, hkdfSync } from 'node:crypto';
import WebSocket from 'ws';
import { absoluteNow } from './client-messages.ts';
import type { FromPushWorker, ToPushWorker } from './push-clients.ts';

/**
 * Members of the bench merchant connected to signal over the real encrypted
 * handshake (ECDH P-256 → HKDF-SHA-256 → AES-256-GCM, written here from the
 * protocol), in a process of their own. Every frame is decrypted and parsed;
 * a push counts when it is a notification for this member of an event of
 * the current round, seen for the first time. Anything else fails the round.
 */
const PUSH_EVENT = 'observation/signal/notification/created';
const TAG_BYTES = 16;

interface Member {
  readonly userId: string;
  readonly ws: WebSocket;
  key: Buffer;
  seen: Set<string>;
}

const members: Member[] = [];
let closing = false;
let prefix = '';
let expected = 0;
let complete = 0;
let pushes = 0;

function send(message: FromPushWorker): void {
  process.send?.(message);
}

function fail(message: string): void {
  send({ type: 'failed', message });
}

function onFrame(member: Member, raw: Buffer): void {
  let push: { event?: unknown; data?: { recipientId?: unknown; metadata?: { eventId?: unknown } } };
  try {
    const outer = JSON.parse(raw.toString('utf8')) as { event?: unknown; data?: { iv?: unknown; ct?: unknown } };
    if (outer.event !== 'encrypted') throw new Error(`unencrypted ${String(outer.event)} frame`);
    const iv = Buffer.from(outer.data?.iv as string, 'base64');
    const sealed = Buffer.from(outer.data?.ct as string, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', member.key, iv, { authTagLength: TAG_BYTES });
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const body = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
    push = JSON.parse(body.toString('utf8')) as typeof push;
  } catch (error) {
    return fail(`${member.userId}: undecodable frame: ${(error as Error).message}`);
  }
  if (push.event !== PUSH_EVENT) return fail(`${member.userId}: unexpected ${String(push.event)} message`);
  const id = push.data?.metadata?.eventId;
  if (push.data?.recipientId !== member.userId) return fail(`${member.userId}: a push for ${String(push.data?.recipientId)}`);
  if (typeof id !== 'string' || !id.startsWith(prefix)) return fail(`${member.userId}: a push of ${String(id)} outside the round`);
  if (member.seen.has(id)) return fail(`${member.userId}: ${id} pushed twice`);
  member.seen.add(id);
  pushes++;
  if (member.seen.size === expected && ++complete === members.length) send({ type: 'done', at: absoluteNow() });
}

function connectOne(url: string, userId: string, token: string, ecdhInfo: string): Promise<Member> {
  return new Promise((resolveOpen, rejectOpen) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    let member: Member | undefined;
    ws.on('open', () => {
      ws.send(JSON.stringify({ event: 'authenticate', data: { type: 'Bearer', token, clientPublicKey: ecdh.getPublicKey('base64', 'uncompressed') } }));
    });
    ws.on('message', (raw: Buffer) => {
      if (member !== undefined) return onFrame(member, raw);
      const frame = JSON.parse(raw.toString('utf8')) as { event: string; data?: Record<string, string> };
      const { serverPublicKey, salt } = frame.data ?? {};
      if (frame.event !== 'connected' || serverPublicKey === undefined || salt === undefined) {
        return rejectOpen(new Error(`${userId}: handshake got ${frame.event} ${JSON.stringify(frame.data ?? {})}`));
      }
      const shared = ecdh.computeSecret(Buffer.from(serverPublicKey, 'base64'));
      const key = Buffer.from(hkdfSync('sha256', shared, Buffer.from(salt, 'base64'), Buffer.from(ecdhInfo), 32));
      member = { userId, ws, key, seen: new Set() };
      resolveOpen(member);
    });
    ws.on('unexpected-response', (_request, response) => rejectOpen(new Error(`${userId}: upgrade refused: HTTP ${response.statusCode}`)));
    ws.on('error', (error) => rejectOpen(error));
    ws.on('close', (code: number, reason: Buffer) => {
      rejectOpen(new Error(`${userId}: closed ${code} during the handshake`));
      if (!closing && member !== undefined) fail(`${userId}: closed by the server: ${code} ${reason.toString('utf8')}`);
    });
  });
}

process.on('message', (message: ToPushWorker) => {
  switch (message.type) {
    case 'connect':
      Promise.all(message.members.map(({ userId, token }) => connectOne(message.url, userId, token, message.ecdhInfo))).then(
        (connected) => {
          members.push(...connected);
          send({ type: 'connected', members: members.length });
        },
        (error: unknown) => fail((error as Error).message),
      );
      break;
    case 'round':
      prefix = message.prefix;
      expected = message.count;
      complete = 0;
      pushes = 0;
      for (const member of members) member.seen = new Set();
      send({ type: 'round-ready' });
      break;
    case 'report':
      send({ type: 'report', pushes, complete });
      break;
    case 'close':
      closing = true;
      for (const member of members) member.ws.terminate();
      process.disconnect?.();
      break;
  }
});

process.on('disconnect', () => {
  closing = true;
  for (const member of members) member.ws.terminate();
  setImmediate(() => process.exit(0));
});

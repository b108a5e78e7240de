import { createCipheriv, createDecipheriv, createECDH, hkdfSync, randomBytes, type ECDH } from 'node:crypto';
import WebSocket, { type RawData } from 'ws';
import { FRAME_LIMIT_BYTES, SAMPLE_PUBLIC_KEY, UNDECRYPTABLE, type FuzzFrame, type InnerSpec, type ReplyDemand, type RoomSpec, type SealMutation, type SessionPlan } from './frame-arbitraries.ts';

/**
 * One fuzzing connection: optionally a real handshake, then the planned
 * frames as fast as the socket takes them, then a probe whose answer proves
 * every earlier frame was handled (frames of one connection are handled in
 * order). Every server frame and the close code are checked against the
 * protocol document; anything else is a violation.
 */

export const ECDH_INFO = 'ignis-ecdh-p256-aes-256-gcm-v1';

/** docs/protocol.md §1, §3–5: the only error texts the server may send. */
export const ERROR_MESSAGES: ReadonlySet<string> = new Set([
  'Invalid message format',
  'Not authenticated',
  'Already authenticated',
  'Authentication failed',
  'Encryption handshake failed',
  'Decryption failed',
]);

/** Close codes a fuzzed connection may see, with the reason the protocol gives (1007 is ws's own: no reason promised). */
export const FUZZ_CLOSE_CODES: ReadonlyMap<number, string | null> = new Map([
  [1007, null],
  [1008, 'Too many decryption failures'],
  [1009, 'Message too big'],
  [4001, 'Authentication timeout'],
  [4003, 'Authentication failed'],
  [4004, 'Encryption required'],
  [4006, 'Rate limit exceeded'],
]);

export interface SessionOutcome {
  framesSent: number;
  sentByLabel: Record<string, number>;
  replies: Record<string, number>;
  /** Close code as `server:<code>` or `client` (the fuzzer closed after its probe). */
  close: string;
  violations: string[];
  replaysSent: number;
  /** Replayed frames on connections whose probe was answered (so every reply that would come has come). */
  replaysChecked: number;
  /** Of those, the ones handled again: their reply came once per copy. */
  replaysHandled: number;
  /** Replies the protocol promised (join/leave with an id after `connected`), counted when the probe was answered. */
  promised: number;
  answered: number;
  probe: 'answered' | 'closed' | 'timeout' | 'not-sent';
}

interface Pending {
  label: string;
  count: number;
  sample: string;
  /** What is special about the frame (its nesting), for grouping violations by cause. */
  note: string;
}

const b64 = (bytes: Buffer): string => bytes.toString('base64');

export function deriveKey(ecdh: ECDH, serverPublicKey: string, salt: string, info = ECDH_INFO): Buffer {
  const shared = ecdh.computeSecret(Buffer.from(serverPublicKey, 'base64'));
  return Buffer.from(hkdfSync('sha256', shared, Buffer.from(salt, 'base64'), Buffer.from(info), 32));
}

export function sealText(key: Buffer, plain: Buffer, mutation: SealMutation = 'none', bit = 0): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', mutation === 'wrong-key' ? randomBytes(32) : key, iv);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  const sealed = Buffer.concat([body, cipher.getAuthTag()]);
  let ivText = b64(iv);
  let ctText = b64(sealed);
  switch (mutation) {
    case 'flip-tag':
    case 'flip-ct': {
      const index = mutation === 'flip-ct' && body.length > 0 ? bit % body.length : body.length + (bit % 16);
      sealed[index] = (sealed[index] as number) ^ (1 << (bit % 8));
      ctText = b64(sealed);
      break;
    }
    case 'short-iv':
      ivText = b64(iv.subarray(0, bit % 12));
      break;
    case 'long-iv':
      ivText = b64(Buffer.concat([iv, randomBytes(1 + (bit % 20))]));
      break;
    case 'bad-base64-iv':
      ivText = `${ivText.slice(0, 5)}!${ivText.slice(6)}`;
      break;
    case 'bad-base64-ct':
      ctText = `*${ctText.slice(1)}`;
      break;
    case 'truncated-ct':
      ctText = b64(sealed.subarray(0, bit % 16));
      break;
    case 'swapped':
      [ivText, ctText] = [ctText, ivText];
      break;
    case 'base64url':
      ivText = iv.toString('base64url');
      ctText = sealed.toString('base64url');
      break;
    case 'unpadded':
      ctText = ctText.replace(/=+$/, '');
      break;
    case 'whitespace':
      ctText = `${ctText.slice(0, 8)}\n${ctText.slice(8)}`;
      break;
    case 'none':
    case 'wrong-key':
      break;
  }
  return `{"event":"encrypted","data":{"iv":${JSON.stringify(ivText)},"ct":${JSON.stringify(ctText)}}}`;
}

export function openSealed(key: Buffer, data: { iv?: unknown; ct?: unknown }): string {
  const iv = Buffer.from(String(data.iv), 'base64');
  const sealed = Buffer.from(String(data.ct), 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]).toString('utf8');
}

export function nested(depth: number, shape: 'array' | 'object'): string {
  return shape === 'array' ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

const roomJson = (room: RoomSpec): string => ('json' in room ? room.json : nested(room.deep, room.shape));
const joinText = (leave: boolean, rooms: RoomSpec[], id: string): string =>
  `{"event":"${leave ? 'leave' : 'join'}","data":{"rooms":[${rooms.map(roomJson).join(',')}]},"id":${JSON.stringify(id)}}`;

const HUGE_WRAPPERS: Record<string, [string, string]> = {
  'custom-data': ['{"event":"custom","data":"', '"}'],
  'room-name': ['{"event":"join","data":{"rooms":["', '"]},"id":"#"}'],
  token: [`{"event":"authenticate","data":{"type":"Bearer","clientPublicKey":"${SAMPLE_PUBLIC_KEY}","token":"`, '"}}'],
  raw: ['', ''],
  'sealed-ct': ['{"event":"encrypted","data":{"iv":"AAAAAAAAAAAAAAAA","ct":"', '"}}'],
  id: ['{"event":"join","data":{"rooms":[]},"id":"#', '"}'],
};

interface Outgoing {
  payload: string | Buffer;
  binary: boolean;
  /** Ids of join/leave replies this frame demands, with how firmly. */
  reply?: { id: string; demand: ReplyDemand };
}

/** Turns planned frames into bytes, given what this connection knows (its key, its last valid sealed frame). */
class FrameMaker {
  private counter = 0;
  private replayable: { text: string; id: string } | null = null;

  constructor(
    private readonly key: Buffer | null,
    private readonly connected: boolean,
  ) {}

  private id(demand: ReplyDemand): string {
    this.counter += 1;
    return `${this.connected ? demand : 'pre'}-${this.counter}`;
  }

  private seal(plain: Buffer, mutation: SealMutation, bit: number): string {
    // Before the handshake the server has no key: any key shows the frame is refused for that reason.
    return sealText(this.key ?? randomBytes(32), plain, mutation, bit);
  }

  private demand(demand: ReplyDemand): ReplyDemand {
    return this.connected ? demand : 'may';
  }

  make(frame: FuzzFrame): Outgoing[] {
    switch (frame.kind) {
      case 'text':
        return [{ payload: frame.text, binary: false }];
      case 'binary':
        return [{ payload: Buffer.from(frame.bytes), binary: true }];
      case 'invalid-utf8':
        // A text frame whose bytes are not UTF-8: ws sends them as is.
        return [{ payload: Buffer.from(frame.bytes), binary: false }];
      case 'join': {
        const id = this.id('must');
        const text = joinText(frame.leave, frame.rooms, id);
        const payload = frame.sealed ? this.seal(Buffer.from(text), 'none', 0) : text;
        if (frame.sealed && this.key !== null) this.replayable = { text: payload, id };
        return [{ payload: frame.binary ? Buffer.from(payload) : payload, binary: frame.binary, reply: { id, demand: this.demand('must') } }];
      }
      case 'sealed':
        return [this.sealed(frame.inner, frame.mutation, frame.bit)];
      case 'replay': {
        if (this.replayable === null) {
          const id = this.id('must');
          const text = this.seal(Buffer.from(joinText(false, [{ json: '"ws-default"' }], id)), 'none', 0);
          if (this.key !== null) this.replayable = { text, id };
          const first = { payload: text, binary: false, reply: { id, demand: this.demand('must') } };
          return [first, { ...first }];
        }
        return [{ payload: this.replayable.text, binary: false, reply: { id: this.replayable.id, demand: this.demand('must') } }];
      }
      case 'huge': {
        const [before, after] = HUGE_WRAPPERS[frame.shape] as [string, string];
        const id = this.id(frame.bytes <= FRAME_LIMIT_BYTES && frame.fill !== '"' && frame.fill !== '\\' ? 'must' : 'may');
        const prefix = before.replace('#', id);
        const suffix = after.replace('#', id);
        const room = Buffer.byteLength(frame.fill);
        const count = Math.max(0, Math.floor((frame.bytes - Buffer.byteLength(prefix) - Buffer.byteLength(suffix)) / room));
        const payload = prefix + frame.fill.repeat(count) + suffix;
        const joins = frame.shape === 'room-name' || frame.shape === 'id';
        const fullId = frame.shape === 'id' ? id + frame.fill.repeat(count) : id;
        return [{ payload, binary: false, ...(joins ? { reply: { id: fullId, demand: this.demand(id.startsWith('must') ? 'must' : 'may') } } : {}) }];
      }
      case 'deep': {
        const value = nested(frame.depth, frame.shape);
        return [{ payload: frame.where === 'raw' ? value : `{"event":"custom","data":${value}}`, binary: false }];
      }
    }
  }

  private sealed(inner: InnerSpec, mutation: SealMutation, bit: number): Outgoing {
    if (inner.kind === 'join') {
      const demand: ReplyDemand = mutation === 'none' ? 'must' : UNDECRYPTABLE.has(mutation) ? 'never' : 'may';
      const id = this.id(demand);
      const payload = this.seal(Buffer.from(joinText(inner.leave, inner.rooms, id)), mutation, bit);
      if (mutation === 'none' && this.key !== null) this.replayable = { text: payload, id };
      return { payload, binary: false, reply: { id, demand: this.demand(demand) } };
    }
    const plain =
      inner.kind === 'text'
        ? Buffer.from(inner.text)
        : inner.kind === 'bytes'
          ? Buffer.from(inner.bytes)
          : Buffer.from(this.seal(Buffer.from('{"event":"heartbeat"}'), 'none', 0));
    return { payload: this.seal(plain, mutation, bit), binary: false };
  }
}

export interface SessionTarget {
  wsUrl: string;
  token: string;
}

/** Runs one planned session to its end; never throws (a failure to connect is itself reported). */
export async function runSession(target: SessionTarget, plan: SessionPlan, timeouts = { handshakeMs: 10_000, probeMs: 15_000 }): Promise<SessionOutcome> {
  const outcome: SessionOutcome = { framesSent: 0, sentByLabel: {}, replies: {}, close: 'none', violations: [], replaysSent: 0, replaysChecked: 0, replaysHandled: 0, promised: 0, answered: 0, probe: 'not-sent' };
  const pending = new Map<string, Pending>();
  const replayedIds: string[] = [];
  let key: Buffer | null = null;
  let ecdh: ECDH | null = null;
  let awaitingConnected = false;
  let clientClosing = false;
  let probeAnswered = false;
  let connectedSeen = false;
  const waiters = new Set<() => void>();
  const wake = () => {
    const due = [...waiters];
    waiters.clear();
    for (const waiter of due) waiter();
  };
  const violate = (text: string): void => {
    outcome.violations.push(text);
  };
  const count = (name: string) => {
    outcome.replies[name] = (outcome.replies[name] ?? 0) + 1;
  };

  const socket = new WebSocket(target.wsUrl, { perMessageDeflate: false, handshakeTimeout: 5_000 });
  socket.on('error', () => undefined);
  let closed = false;
  socket.on('close', (code: number, reason: Buffer) => {
    closed = true;
    const text = reason.toString('utf8');
    if (clientClosing) outcome.close = 'client';
    else {
      outcome.close = `server:${code}`;
      const promisedReason = FUZZ_CLOSE_CODES.get(code);
      if (promisedReason === undefined) violate(`close code ${code} is not a protocol close code for these inputs | reason "${text}"`);
      else if (promisedReason !== null && promisedReason !== text) violate(`close ${code} with a reason other than the protocol's | "${text}", protocol says "${promisedReason}"`);
    }
    wake();
  });
  socket.on('message', (data: RawData, isBinary: boolean) => {
    const text = (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer)).toString('utf8');
    if (isBinary) return violate(`binary frame from the server | ${text.slice(0, 80)}`);
    let frame: { event?: unknown; data?: any };
    try {
      frame = JSON.parse(text) as typeof frame;
    } catch {
      return violate(`reply that is not JSON | ${text.slice(0, 120)}`);
    }
    if (frame.event === 'error') {
      const message = frame.data?.message;
      if (typeof message === 'string' && ERROR_MESSAGES.has(message) && Object.keys(frame.data).length === 1) count(`error:${message}`);
      else violate(`error frame outside the protocol | ${text.slice(0, 160)}`);
    } else if (frame.event === 'connected') {
      if (!awaitingConnected) return violate(`connected without a valid authenticate | ${text.slice(0, 120)}`);
      awaitingConnected = false;
      connectedSeen = true;
      count('connected');
      if (ecdh !== null && typeof frame.data?.serverPublicKey === 'string') key = deriveKey(ecdh, frame.data.serverPublicKey, String(frame.data.salt));
    } else if (frame.event === 'encrypted') {
      if (key === null) return violate(`encrypted frame on a connection without a key | ${text.slice(0, 120)}`);
      let inner: { event?: unknown; data?: any };
      try {
        inner = JSON.parse(openSealed(key, frame.data ?? {})) as typeof inner;
      } catch {
        return violate(`encrypted reply that does not open with the session key | ${text.slice(0, 120)}`);
      }
      const data = inner.data;
      const shaped = typeof data === 'object' && data !== null && typeof data.id === 'string' && Array.isArray(data.rooms) && Array.isArray(data.rejected);
      if ((inner.event !== 'joined' && inner.event !== 'left') || !shaped) return violate(`unexpected encrypted ${String(inner.event)} | ${JSON.stringify(inner).slice(0, 160)}`);
      count(String(inner.event));
      const id = data.id as string;
      if (id === 'probe') probeAnswered = true;
      else if (id.startsWith('never-')) violate(`a tampered encrypted frame was handled | reply to ${id}`);
      const entry = pending.get(id);
      if (entry !== undefined && --entry.count === 0) pending.delete(id);
    } else {
      violate(`event outside the protocol | ${text.slice(0, 120)}`);
    }
    wake();
  });

  const until = (condition: () => boolean, ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      const check = () => {
        if (condition()) {
          clearTimeout(timer);
          resolve(true);
        } else waiters.add(check);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        resolve(condition());
      }, ms);
      check();
    });

  const authenticate = () => {
    ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    awaitingConnected = true;
    socket.send(JSON.stringify({ event: 'authenticate', data: { type: 'Bearer', token: target.token, clientPublicKey: ecdh.getPublicKey('base64', 'uncompressed') } }));
  };

  const opened = await new Promise<string | null>((resolve) => {
    socket.once('open', () => resolve(null));
    socket.once('unexpected-response', (_request, response) => resolve(`upgrade refused with HTTP ${response.statusCode}`));
    socket.once('error', (error) => resolve(`connect failed: ${error.message}`));
  });
  if (opened !== null) {
    violate(`could not connect | ${opened}`);
    socket.terminate();
    return outcome;
  }

  if (plan.mode === 'encrypted') {
    authenticate();
    if (!(await until(() => connectedSeen || closed, timeouts.handshakeMs)) || !connectedSeen) {
      violate(`a valid authenticate got no connected | ${closed ? outcome.close : 'timeout'}`);
      socket.terminate();
      return outcome;
    }
  }

  const maker = new FrameMaker(key, plan.mode === 'encrypted');
  for (const frame of plan.frames) {
    for (const out of maker.make(frame)) {
      if (socket.readyState !== WebSocket.OPEN) break;
      socket.send(out.payload, { binary: out.binary });
      outcome.framesSent += 1;
      outcome.sentByLabel[frame.label] = (outcome.sentByLabel[frame.label] ?? 0) + 1;
      if (frame.kind === 'replay') {
        outcome.replaysSent += 1;
        if (out.reply?.demand === 'must') replayedIds.push(out.reply.id);
      }
      if (out.reply?.demand === 'must' && Buffer.byteLength(out.payload) <= FRAME_LIMIT_BYTES) {
        const entry = pending.get(out.reply.id) ?? { label: frame.label, count: 0, sample: describe(out.payload), note: noteOf(frame) };
        entry.count += 1;
        pending.set(out.reply.id, entry);
        outcome.promised += 1;
      }
    }
  }

  if (socket.readyState === WebSocket.OPEN) {
    if (plan.mode === 'encrypted' && key !== null) socket.send(sealText(key, Buffer.from('{"event":"join","data":{"rooms":["ws-default"]},"id":"probe"}')));
    else authenticate();
    const answered = () => (plan.mode === 'encrypted' ? probeAnswered : connectedSeen);
    const done = await until(() => answered() || closed, timeouts.probeMs);
    outcome.probe = answered() ? 'answered' : closed ? 'closed' : 'timeout';
    if (!done) violate(`connection hangs: the probe got no answer and no close | within ${timeouts.probeMs} ms`);
  } else {
    outcome.probe = 'closed';
  }

  if (outcome.probe === 'answered') {
    // Everything before the probe was handled: a promised reply that did not come never will.
    const missing = [...pending.values()].reduce((sum, entry) => sum + entry.count, 0);
    outcome.answered = outcome.promised - missing;
    outcome.replaysChecked = replayedIds.length;
    outcome.replaysHandled = replayedIds.filter((id) => !pending.has(id)).length;
    for (const entry of pending.values()) violate(`no joined/left reply to a join/leave with an id${entry.note} | ${entry.label}: ${entry.sample}`);
  } else {
    outcome.promised = 0;
  }

  if (!closed) {
    clientClosing = true;
    socket.close(1000);
    if (!(await until(() => closed, 3_000))) socket.terminate();
  }
  return outcome;
}

/** Rooms nested 1,000 levels or more are what a missing reply usually comes down to. */
function noteOf(frame: FuzzFrame): string {
  const rooms = frame.kind === 'join' ? frame.rooms : frame.kind === 'sealed' && frame.inner.kind === 'join' ? frame.inner.rooms : [];
  const depth = Math.max(0, ...rooms.map((room) => ('deep' in room ? room.deep : 0)));
  return depth >= 1_000 ? ` (a room entry nested ${depth} levels)` : '';
}

function describe(payload: string | Buffer): string {
  const text = typeof payload === 'string' ? payload : payload.toString('utf8');
  const bytes = Buffer.byteLength(text);
  return bytes <= 140 ? text : `${text.slice(0, 100)}… ${bytes} bytes`;
}

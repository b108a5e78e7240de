import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../fixtures/raw-client.ts';
import { cleanupAll } from './lib/cleanup.ts';
import { FRAME_LIMIT_BYTES, sessionPlan, type FuzzFrame, type SessionPlan } from './lib/frame-arbitraries.ts';
import { runSession, sealText, type SessionOutcome } from './lib/fuzz-session.ts';
import { checkLiveness } from './lib/liveness.ts';
import { startInProcessTarget, type SignalTarget } from './lib/targets.ts';

/**
 * The quick subset of the stream-frame-fuzz scenario: the same generators
 * and session driver against an in-process server, plus the fixed cases
 * the fuzzer relies on, each pinned to its line of docs/protocol.md.
 */
let target: SignalTarget;
let token: string;
const clients: RawClient[] = [];

async function connected(userId = 'fuzz-fixed'): Promise<RawClient> {
  const client = await RawClient.open(target.wsUrl);
  clients.push(client);
  const reply = await client.authenticate(await target.token(userId));
  expect(reply.event).toBe('connected');
  return client;
}

async function opened(): Promise<RawClient> {
  const client = await RawClient.open(target.wsUrl);
  clients.push(client);
  return client;
}

const session = (frames: FuzzFrame[], mode: SessionPlan['mode'] = 'encrypted'): Promise<SessionOutcome> =>
  runSession({ wsUrl: target.wsUrl, token }, { mode, frames });

beforeAll(async () => {
  target = await startInProcessTarget();
  token = await target.token('fuzz-user');
});

afterAll(async () => {
  for (const client of clients) client.close();
  await cleanupAll();
});

describe('fixed cases (docs/protocol.md §1, §5.3, §6)', () => {
  it('closes 1007 on invalid UTF-8 in a text frame, and reads a binary frame leniently', async () => {
    const text = await opened();
    text.socket.send(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), { binary: false });
    expect((await text.closed).code).toBe(1007);
    const binary = await opened();
    binary.socket.send(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), { binary: true });
    expect((await binary.next()).text).toBe('{"event":"error","data":{"message":"Invalid message format"}}');
  });

  it('handles a frame of exactly 128 KiB and closes 1009 one byte over', async () => {
    const exact = await session([{ kind: 'huge', label: 'huge', bytes: FRAME_LIMIT_BYTES, fill: 'x', shape: 'room-name' }]);
    expect(exact.violations).toEqual([]);
    expect(exact.promised).toBe(1);
    expect(exact.answered).toBe(1);
    const over = await session([{ kind: 'huge', label: 'huge', bytes: FRAME_LIMIT_BYTES + 1, fill: 'x', shape: 'custom-data' }]);
    expect(over.close).toBe('server:1009');
    expect(over.violations).toEqual([]);
  });

  it('survives 10,000 and 60,000 levels of nesting before and after the handshake', async () => {
    const frames: FuzzFrame[] = [10_000, 60_000].flatMap((depth) => [
      { kind: 'deep' as const, label: 'deep', depth, shape: 'array' as const, where: 'raw' as const },
      { kind: 'deep' as const, label: 'deep', depth, shape: 'array' as const, where: 'data' as const },
    ]);
    for (const mode of ['pre-auth', 'encrypted'] as const) {
      const outcome = await session(frames, mode);
      expect(outcome.violations).toEqual([]);
      expect(outcome.probe).toBe('answered');
    }
  });

  it('answers a join with an id even when a room entry is nested 10,000 levels (rejected entries are echoed, §6)', async () => {
    const outcome = await session([{ kind: 'join', label: 'deep join', leave: false, rooms: [{ json: '"lobby"' }, { deep: 10_000, shape: 'array' }], sealed: false, binary: false }]);
    expect(outcome.probe).toBe('answered');
    expect(outcome.violations).toEqual([]);
  });

  it('handles a replayed encrypted frame again: replay protection is not part of the protocol', async () => {
    const client = await connected();
    const frame = client.encryptedFrame({ event: 'join', data: { rooms: ['ws-default'] }, id: 'replayed' });
    client.send(frame);
    client.send(frame);
    expect(await client.nextMessage()).toEqual({ event: 'joined', data: { id: 'replayed', rooms: ['ws-default'], rejected: [] } });
    expect(await client.nextMessage()).toEqual({ event: 'joined', data: { id: 'replayed', rooms: ['ws-default'], rejected: [] } });
  });

  it('refuses tampered frames without handling them, then closes 1008 on the third', async () => {
    const client = await connected();
    const key = client.key as Buffer;
    const join = Buffer.from('{"event":"join","data":{"rooms":["ws-default"]},"id":"tampered"}');
    client.send(sealText(key, join, 'flip-tag', 3));
    client.send(sealText(key, join, 'short-iv', 7));
    client.send(sealText(key, join, 'bad-base64-ct'));
    expect(await client.closed).toEqual({ code: 1008, reason: 'Too many decryption failures' });
    expect(client.frames.slice(1).map((frame) => frame.text)).toEqual(Array(3).fill('{"event":"error","data":{"message":"Decryption failed"}}'));
  });

  it('treats an encrypted frame inside an encrypted frame as an invalid message', async () => {
    const client = await connected();
    const key = client.key as Buffer;
    client.send(sealText(key, Buffer.from(sealText(key, Buffer.from('{"event":"heartbeat"}')))));
    expect((await client.next((frame) => frame.event === 'error')).data).toEqual({ message: 'Invalid message format' });
  });
});

describe('generated sessions', () => {
  it('break no protocol rule (fast-check, 120 sessions, a few thousand frames)', async () => {
    // Every session runs even after a violation, so that one failure lists every kind of violation found.
    const plans = fc.sample(sessionPlan, { numRuns: 120, seed: 20_261_121 });
    const kinds = new Map<string, { seen: number; example: string }>();
    let frames = 0;
    for (const plan of plans) {
      const outcome = await runSession({ wsUrl: target.wsUrl, token }, plan);
      frames += outcome.framesSent;
      for (const violation of outcome.violations) {
        const kind = violation.split(' | ')[0] as string;
        const entry = kinds.get(kind) ?? { seen: 0, example: violation.slice(0, 300) };
        entry.seen += 1;
        kinds.set(kind, entry);
      }
    }
    expect(frames).toBeGreaterThan(1_500);
    expect(Object.fromEntries(kinds)).toEqual({});
  }, 120_000);

  it('leave the server serving, with no unhandled error and no polluted prototype', async () => {
    expect(await checkLiveness(target)).toBeNull();
    expect(target.health().crashLines).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

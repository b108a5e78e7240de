import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MACHINE_SETTINGS,
  initialState,
  step,
  type ConnectionState,
  type Effect,
  type MachineEvent,
  type MachineSettings,
} from '../../src/domain/connection-machine.ts';
import { CloseCodes } from '../../src/domain/protocol.ts';

const T0 = 1_000_000;
const settings: MachineSettings = { ...DEFAULT_MACHINE_SETTINGS };

/** Runs events in order, returning the final state and every effect produced. */
function run(events: Array<[MachineEvent, number]>, custom: MachineSettings = settings) {
  const first = initialState(custom, T0);
  let state: ConnectionState = first.state;
  const effects: Effect[] = [...first.effects];
  for (const [event, at] of events) {
    const result = step(state, event, at, custom);
    state = result.state;
    effects.push(...result.effects);
  }
  return { state, effects };
}

const auth = (data: unknown): MachineEvent => ({ type: 'frame', frame: { event: 'authenticate', data } });
const good = auth({ type: 'Bearer', token: 'jwt', clientPublicKey: 'key' });
const closes = (effects: Effect[]) => effects.filter((effect) => effect.type === 'close');
const errors = (effects: Effect[]) => effects.filter((effect) => effect.type === 'send-error').map((effect) => (effect as { message: string }).message);

describe('connection state machine', () => {
  it('starts CONNECTING with the 5 s authentication timer armed', () => {
    const { state, effects } = run([]);
    expect(state.phase).toBe('CONNECTING');
    expect(effects).toEqual([{ type: 'arm', timer: 'auth', at: T0 + 5_000 }]);
  });

  it('closes 4001 when no authenticate arrives in time', () => {
    const { state, effects } = run([[{ type: 'timer', timer: 'auth' }, T0 + 5_000]]);
    expect(state.phase).toBe('CLOSED');
    expect(closes(effects)).toEqual([{ type: 'close', ...CloseCodes.authTimeout }]);
  });

  it('hands a well-formed authenticate to verification and arms the 15 s handshake timer', () => {
    const { state, effects } = run([[good, T0 + 100]]);
    expect(state.verifying).toBe(true);
    expect(effects).toContainEqual({ type: 'disarm', timer: 'auth' });
    expect(effects).toContainEqual({ type: 'arm', timer: 'handshake', at: T0 + 15_100 });
    expect(effects).toContainEqual({ type: 'authenticate', token: 'jwt', clientPublicKey: 'key' });
  });

  it('accepts publicKey as an alias of clientPublicKey and Bearer in any case', () => {
    const { effects } = run([[auth({ type: 'bEaReR', token: 'jwt', publicKey: 'alias' }), T0]]);
    expect(effects).toContainEqual({ type: 'authenticate', token: 'jwt', clientPublicKey: 'alias' });
  });

  it('closes 4001 when verification and handshake do not finish in 15 s', () => {
    const { state, effects } = run([
      [good, T0 + 100],
      [{ type: 'timer', timer: 'auth' }, T0 + 5_000],
      [{ type: 'timer', timer: 'handshake' }, T0 + 15_100],
    ]);
    expect(state.phase).toBe('CLOSED');
    expect(closes(effects)).toEqual([{ type: 'close', ...CloseCodes.authTimeout }]);
  });

  it.each([
    ['a type other than Bearer', { type: 'Basic', token: 'jwt', clientPublicKey: 'k' }],
    ['no token', { type: 'Bearer', clientPublicKey: 'k' }],
    ['an empty token', { type: 'Bearer', token: '', clientPublicKey: 'k' }],
    ['no data at all', undefined],
  ])('answers %s with "Authentication failed" and 4003', (_label, data) => {
    const { state, effects } = run([[auth(data), T0]]);
    expect(errors(effects)).toEqual(['Authentication failed']);
    expect(closes(effects)).toEqual([{ type: 'close', ...CloseCodes.authFailed }]);
    expect(state.phase).toBe('CLOSED');
  });

  it('requires a client key when encryption is required (4004)', () => {
    const { effects } = run([[auth({ type: 'Bearer', token: 'jwt' }), T0]]);
    expect(errors(effects)).toEqual(['Encryption handshake failed']);
    expect(closes(effects)).toEqual([{ type: 'close', ...CloseCodes.encryptionRequired }]);
  });

  it('lets a client without a key in when encryption is optional, as AUTHENTICATED', () => {
    const optional = { ...settings, requireEncryption: false };
    const { state, effects } = run(
      [
        [auth({ type: 'Bearer', token: 'jwt' }), T0],
        [{ type: 'auth-succeeded', encrypted: false }, T0 + 10],
      ],
      optional,
    );
    expect(state.phase).toBe('AUTHENTICATED');
    expect(effects).toContainEqual({ type: 'connected' });
  });

  it('reaches ENCRYPTED on success, arming heartbeat and token expiry', () => {
    const { state, effects } = run([
      [good, T0],
      [{ type: 'auth-succeeded', encrypted: true, expiresAt: T0 + 60_000 }, T0 + 20],
    ]);
    expect(state.phase).toBe('ENCRYPTED');
    expect(effects).toContainEqual({ type: 'disarm', timer: 'handshake' });
    expect(effects).toContainEqual({ type: 'arm', timer: 'heartbeat', at: T0 + 20 + 90_000 });
    expect(effects).toContainEqual({ type: 'arm', timer: 'expiry', at: T0 + 60_000 });
    expect(effects.at(-1)).toEqual({ type: 'connected' });
  });

  it('maps a failed token to 4003 and a failed key to 4004', () => {
    const token = run([[good, T0], [{ type: 'auth-failed', stage: 'token' }, T0 + 1]]);
    expect(closes(token.effects)).toEqual([{ type: 'close', ...CloseCodes.authFailed }]);
    const key = run([[good, T0], [{ type: 'auth-failed', stage: 'key' }, T0 + 1]]);
    expect(errors(key.effects)).toEqual(['Encryption handshake failed']);
    expect(closes(key.effects)).toEqual([{ type: 'close', ...CloseCodes.encryptionRequired }]);
  });

  it('refuses everything but authenticate and heartbeat before the handshake, without closing', () => {
    const { state, effects } = run([
      [{ type: 'frame', frame: { event: 'join', data: { rooms: ['a'] } } }, T0],
      [{ type: 'frame', frame: { event: 'heartbeat' } }, T0 + 1],
      [good, T0 + 2],
      [{ type: 'frame', frame: { event: 'custom' } }, T0 + 3],
    ]);
    expect(errors(effects)).toEqual(['Not authenticated', 'Not authenticated']);
    expect(effects.some((effect) => effect.type === 'dispatch')).toBe(false);
    expect(state.phase).toBe('CONNECTING');
  });

  it('answers a second authenticate with "Already authenticated" and stays open', () => {
    const whileVerifying = run([[good, T0], [good, T0 + 1]]);
    expect(errors(whileVerifying.effects)).toEqual(['Already authenticated']);
    const afterwards = run([[good, T0], [{ type: 'auth-succeeded', encrypted: true }, T0 + 1], [good, T0 + 2]]);
    expect(errors(afterwards.effects)).toEqual(['Already authenticated']);
    expect(afterwards.state.phase).toBe('ENCRYPTED');
  });

  it('dispatches application frames once connected', () => {
    const frame = { event: 'join', data: { rooms: ['x'] }, id: '1' };
    const { effects } = run([[good, T0], [{ type: 'auth-succeeded', encrypted: true }, T0 + 1], [{ type: 'frame', frame }, T0 + 2]]);
    expect(effects).toContainEqual({ type: 'dispatch', frame });
  });

  it('answers invalid JSON with "Invalid message format" at any time, without closing', () => {
    const { state, effects } = run([[{ type: 'invalid-frame' }, T0]]);
    expect(errors(effects)).toEqual(['Invalid message format']);
    expect(state.phase).toBe('CONNECTING');
  });

  it('closes 4002 after 90 s of silence, and re-arms while the client is active', () => {
    const connected: Array<[MachineEvent, number]> = [[good, T0], [{ type: 'auth-succeeded', encrypted: true }, T0]];
    const active = run([...connected, [{ type: 'frame', frame: { event: 'heartbeat' } }, T0 + 60_000], [{ type: 'timer', timer: 'heartbeat' }, T0 + 90_000]]);
    expect(active.state.phase).toBe('ENCRYPTED');
    expect(active.effects.at(-1)).toEqual({ type: 'arm', timer: 'heartbeat', at: T0 + 150_000 });
    const pong = run([...connected, [{ type: 'pong' }, T0 + 80_000], [{ type: 'timer', timer: 'heartbeat' }, T0 + 90_000]]);
    expect(pong.state.phase).toBe('ENCRYPTED');
    const silent = run([...connected, [{ type: 'timer', timer: 'heartbeat' }, T0 + 90_000]]);
    expect(closes(silent.effects)).toEqual([{ type: 'close', ...CloseCodes.heartbeatTimeout }]);
  });

  it('closes 4007 when the token expires on a live connection', () => {
    const { effects } = run([[good, T0], [{ type: 'auth-succeeded', encrypted: true, expiresAt: T0 + 1_000 }, T0], [{ type: 'timer', timer: 'expiry' }, T0 + 1_000]]);
    expect(closes(effects)).toEqual([{ type: 'close', ...CloseCodes.tokenExpired }]);
  });

  it('refuses a token that expired during verification', () => {
    const { effects } = run([[good, T0], [{ type: 'auth-succeeded', encrypted: true, expiresAt: T0 + 5 }, T0 + 10]]);
    expect(closes(effects)).toEqual([{ type: 'close', ...CloseCodes.authFailed }]);
  });

  it('closes 4006 when inbound frames exceed the rate', () => {
    const tight = { ...settings, rateBurst: 3, ratePerSecond: 1 };
    const events: Array<[MachineEvent, number]> = [];
    for (let index = 0; index < 4; index++) events.push([{ type: 'frame', frame: { event: 'heartbeat' } }, T0]);
    const { state, effects } = run(events, tight);
    expect(closes(effects)).toEqual([{ type: 'close', ...CloseCodes.rateLimited }]);
    expect(state.phase).toBe('CLOSED');
  });

  it('refills the rate budget over time', () => {
    const tight = { ...settings, rateBurst: 2, ratePerSecond: 10 };
    const events: Array<[MachineEvent, number]> = [];
    for (let index = 0; index < 10; index++) events.push([{ type: 'frame', frame: { event: 'heartbeat' } }, T0 + index * 200]);
    expect(closes(run(events, tight).effects)).toEqual([]);
  });

  it('closes after repeated decryption failures, telling the client each time', () => {
    const connected: Array<[MachineEvent, number]> = [[good, T0], [{ type: 'auth-succeeded', encrypted: true }, T0]];
    const { state, effects } = run([...connected, [{ type: 'decrypt-failed' }, T0 + 1], [{ type: 'decrypt-failed' }, T0 + 2], [{ type: 'decrypt-failed' }, T0 + 3]]);
    expect(errors(effects)).toEqual(['Decryption failed', 'Decryption failed', 'Decryption failed']);
    expect(closes(effects)).toEqual([{ type: 'close', ...CloseCodes.policyViolation }]);
    expect(state.phase).toBe('CLOSED');
  });

  it('is idempotent once closed', () => {
    const { state } = run([[{ type: 'terminate', close: CloseCodes.shuttingDown }, T0]]);
    for (const event of [good, { type: 'timer', timer: 'auth' }, { type: 'terminate', close: CloseCodes.slowConsumer }] as MachineEvent[]) {
      expect(step(state, event, T0 + 1, settings)).toEqual({ state, effects: [] });
    }
  });

  it('ignores stale timers', () => {
    const { state, effects } = run([[good, T0], [{ type: 'auth-succeeded', encrypted: true }, T0], [{ type: 'timer', timer: 'auth' }, T0 + 5_000], [{ type: 'timer', timer: 'handshake' }, T0 + 15_000]]);
    expect(state.phase).toBe('ENCRYPTED');
    expect(closes(effects)).toEqual([]);
  });
});

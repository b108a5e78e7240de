import { createECDH } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InMemoryMembershipDirectory } from '../../src/adapters/memory/in-memory-membership-directory.ts';
import { PrometheusMetrics } from '../../src/adapters/metrics/prometheus-metrics.ts';
import { ConnectionSession, type SessionSettings, type Transport } from '../../src/application/connection-session.ts';
import { LocalConnections } from '../../src/application/local-connections.ts';
import { silentLogger } from '../../src/application/ports/logger.port.ts';
import type { Identity } from '../../src/application/ports/token-verifier.port.ts';
import { ManualClock } from '../../src/adapters/system/system-clock.ts';
import { DEFAULT_MACHINE_SETTINGS } from '../../src/domain/connection-machine.ts';
import { openPayload } from '../../src/domain/crypto-session.ts';
import { TokenInvalidError } from '../../src/domain/errors.ts';
import { DEFAULT_ROOM_RULES } from '../../src/domain/room-policy.ts';
import { malformedPublicKeys, offCurveSample, referenceHkdfSha256 } from '../fixtures/crypto-vectors.ts';
import { parseExposition, total } from '../fixtures/prometheus-text.ts';

/**
 * The client key on a hand-built session: its encoding is checked before
 * the token, whether it is on the curve only by the key agreement, yet a bad
 * key is always reported as a bad key, whatever the token.
 */
class FakeTransport implements Transport {
  bufferedAmount = 0;
  readonly sent: string[] = [];
  closedWith: number | null = null;
  send(text: string): void {
    this.sent.push(text);
  }
  close(code: number): void {
    this.closedWith = code;
  }
}

const settings: SessionSettings = {
  machine: { ...DEFAULT_MACHINE_SETTINGS },
  ecdhInfo: 'session-test-info',
  roomRules: DEFAULT_ROOM_RULES,
  maxRoomsPerConnection: 10,
  maxRoomsPerFrame: 10,
  maxBufferedBytes: 1 << 20,
};

type Verify = (token: string) => Promise<Identity>;
const accept: Verify = async (token) => ({ userId: `user-of-${token}`, roles: [] });
const refuse: Verify = async () => {
  throw new TokenInvalidError('signature verification failed');
};
const never: Verify = () => new Promise<Identity>(() => undefined);

function open(verify: Verify) {
  const metrics = new PrometheusMetrics({ processMetrics: false });
  const transport = new FakeTransport();
  const deps = {
    connections: new LocalConnections(),
    verifier: { verify },
    membership: new InMemoryMembershipDirectory(),
    clock: new ManualClock(),
    logger: silentLogger,
    settings,
    metrics,
  };
  const session = new ConnectionSession('c-1', transport, deps);
  const authenticate = (clientPublicKey: unknown): void =>
    session.receive(JSON.stringify({ event: 'authenticate', data: { type: 'Bearer', token: 't', clientPublicKey } }));
  const outcomes = async () => parseExposition(await metrics.render());
  return { session, transport, authenticate, outcomes };
}

const settled = () => new Promise((resolve) => setImmediate(resolve));
const HANDSHAKE_FAILED = '{"event":"error","data":{"message":"Encryption handshake failed"}}';
const AUTH_FAILED = '{"event":"error","data":{"message":"Authentication failed"}}';

function clientKey() {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return ecdh;
}

describe('ConnectionSession: the client key', () => {
  it('completes the handshake with a good key: both sides derive the same key', async () => {
    const { session, transport, authenticate, outcomes } = open(accept);
    const client = clientKey();
    authenticate(client.getPublicKey('base64'));
    await settled();
    expect(session.phase).toBe('ENCRYPTED');
    const connected = JSON.parse(transport.sent[0] as string) as { event: string; data: { userId: string; serverPublicKey: string; salt: string } };
    expect(connected.event).toBe('connected');
    expect(connected.data.userId).toBe('user-of-t');
    const shared = client.computeSecret(Buffer.from(connected.data.serverPublicKey, 'base64'));
    const key = referenceHkdfSha256(shared, Buffer.from(connected.data.salt, 'base64'), Buffer.from(settings.ecdhInfo), 32);
    session.deliver('{"event":"hello"}');
    const sealed = JSON.parse(transport.sent[1] as string) as { event: string; data: unknown };
    expect(sealed.event).toBe('encrypted');
    expect(openPayload(key, sealed.data)).toBe('{"event":"hello"}');
    expect(total(await outcomes(), 'signal_ws_handshakes_total', { outcome: 'ok' })).toBe(1);
  });

  it('gives every connection its own server key pair', async () => {
    const serverKeys = new Set<string>();
    for (let index = 0; index < 4; index++) {
      const { transport, authenticate } = open(accept);
      authenticate(clientKey().getPublicKey('base64'));
      await settled();
      serverKeys.add((JSON.parse(transport.sent[0] as string) as { data: { serverPublicKey: string } }).data.serverPublicKey);
    }
    expect(serverKeys.size).toBe(4);
  });

  it('refuses a badly encoded key at once, without waiting for the token', async () => {
    for (const [label, key] of malformedPublicKeys()) {
      if (label === 'a 0x04 point not on the curve') continue;
      if (key === undefined || key === null || key === '') continue; // not offered: a different path
      const { transport, authenticate } = open(never);
      authenticate(key);
      expect([label, transport.sent]).toEqual([label, [HANDSHAKE_FAILED]]);
      expect(transport.closedWith).toBe(4004);
    }
  });

  it('refuses a point off the curve as a bad key when the token is good', async () => {
    const { transport, authenticate, outcomes } = open(accept);
    authenticate(offCurveSample().toString('base64'));
    await settled();
    expect(transport.sent).toEqual([HANDSHAKE_FAILED]);
    expect(transport.closedWith).toBe(4004);
    expect(total(await outcomes(), 'signal_ws_handshakes_total', { outcome: 'invalid_public_key' })).toBe(1);
  });

  it('refuses a point off the curve as a bad key when the token is bad too', async () => {
    const { transport, authenticate, outcomes } = open(refuse);
    authenticate(offCurveSample().toString('base64'));
    await settled();
    expect(transport.sent).toEqual([HANDSHAKE_FAILED]);
    expect(transport.closedWith).toBe(4004);
    const scraped = await outcomes();
    expect(total(scraped, 'signal_ws_handshakes_total', { outcome: 'invalid_public_key' })).toBe(1);
    expect(total(scraped, 'signal_ws_handshakes_total')).toBe(1);
  });

  it('still reports a bad token with a good key as a bad token', async () => {
    const { transport, authenticate, outcomes } = open(refuse);
    authenticate(clientKey().getPublicKey('base64'));
    await settled();
    expect(transport.sent).toEqual([AUTH_FAILED]);
    expect(transport.closedWith).toBe(4003);
    expect(total(await outcomes(), 'signal_ws_handshakes_total', { outcome: 'token_invalid' })).toBe(1);
  });
});

import { describe, expect, it } from 'vitest';
import { InMemoryMembershipDirectory } from '../../src/adapters/memory/in-memory-membership-directory.ts';
import { PrometheusMetrics } from '../../src/adapters/metrics/prometheus-metrics.ts';
import { ConnectionSession, type SessionSettings, type Transport } from '../../src/application/connection-session.ts';
import { LocalConnections } from '../../src/application/local-connections.ts';
import type { Cancel, Clock } from '../../src/application/ports/clock.port.ts';
import { silentLogger } from '../../src/application/ports/logger.port.ts';
import type { Identity, TokenVerifier } from '../../src/application/ports/token-verifier.port.ts';
import { DEFAULT_MACHINE_SETTINGS } from '../../src/domain/connection-machine.ts';
import { KeySetUnavailableError } from '../../src/domain/errors.ts';
import { DEFAULT_ROOM_RULES } from '../../src/domain/room-policy.ts';
import { parseExposition, total, type Exposition } from '../fixtures/prometheus-text.ts';

/**
 * What a hand-built session reports through the Metrics port, read back
 * from a real PrometheusMetrics: the handshake outcomes no socket test can
 * produce cheaply, and the slow-consumer drop.
 */
class ManualClock implements Clock {
  private timers: Array<{ at: number; fn: () => void }> = [];
  constructor(private time = 1_000_000) {}
  now(): number {
    return this.time;
  }
  schedule(at: number, fn: () => void): Cancel {
    const timer = { at, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((each) => each !== timer);
    };
  }
  advance(ms: number): void {
    this.time += ms;
    const due = this.timers.filter((timer) => timer.at <= this.time);
    this.timers = this.timers.filter((timer) => timer.at > this.time);
    for (const timer of due) timer.fn();
  }
}

/** Closing it reports the close back to the session, as the gateway does once the socket is gone. */
class FakeTransport implements Transport {
  bufferedAmount = 0;
  readonly sent: string[] = [];
  closedWith: number | null = null;
  session: ConnectionSession | null = null;
  send(text: string): void {
    this.sent.push(text);
  }
  close(code: number): void {
    this.closedWith = code;
    queueMicrotask(() => this.session?.socketClosed(code));
  }
}

const settings: SessionSettings = {
  machine: { ...DEFAULT_MACHINE_SETTINGS, requireEncryption: false, rateBurst: 3, ratePerSecond: 1 },
  ecdhInfo: 'test-info',
  roomRules: DEFAULT_ROOM_RULES,
  maxRoomsPerConnection: 10,
  maxRoomsPerFrame: 10,
  maxBufferedBytes: 1024,
};

function setup(verify: (token: string) => Promise<Identity>) {
  const metrics = new PrometheusMetrics({ processMetrics: false });
  const clock = new ManualClock();
  const verifier: TokenVerifier = { verify };
  const deps = { connections: new LocalConnections(), verifier, membership: new InMemoryMembershipDirectory(), clock, logger: silentLogger, settings, metrics };
  const open = () => {
    const transport = new FakeTransport();
    const session = new ConnectionSession(`c-${Math.random()}`, transport, deps);
    transport.session = session;
    return { transport, session };
  };
  const scrape = async (): Promise<Exposition> => parseExposition(await metrics.render());
  return { open, clock, scrape };
}

const settled = () => new Promise((resolve) => setImmediate(resolve));
const authenticate = (session: ConnectionSession) => session.receive(JSON.stringify({ event: 'authenticate', data: { type: 'Bearer', token: 't' } }));

describe('connection metrics', () => {
  it('counts a key-set outage as jwks_unavailable', async () => {
    const { open, scrape } = setup(async () => {
      throw new KeySetUnavailableError();
    });
    const { session, transport } = open();
    authenticate(session);
    await settled();
    expect(transport.closedWith).toBe(4003);
    const scraped = await scrape();
    expect(total(scraped, 'signal_ws_handshakes_total', { outcome: 'jwks_unavailable' })).toBe(1);
    expect(total(scraped, 'signal_ws_handshakes_total')).toBe(1);
    expect(total(scraped, 'signal_ws_closes_total', { code: '4003', initiator: 'server' })).toBe(1);
    // The socket's own close event after the server's close is not a second close.
    expect(total(scraped, 'signal_ws_closes_total')).toBe(1);
  });

  it('counts a token that verified but expired before it arrived as token_expired', async () => {
    const { open, clock, scrape } = setup(async () => ({ userId: 'u', roles: [], expiresAt: clock.now() - 1 }));
    const { session, transport } = open();
    authenticate(session);
    await settled();
    expect(transport.closedWith).toBe(4003);
    expect(total(await scrape(), 'signal_ws_handshakes_total', { outcome: 'token_expired' })).toBe(1);
  });

  it('counts a flood before authenticating as rate_limited', async () => {
    const { open, scrape } = setup(async () => ({ userId: 'u', roles: [] }));
    const { session, transport } = open();
    for (let index = 0; index < 5; index++) session.receive('{"event":"heartbeat"}');
    expect(transport.closedWith).toBe(4006);
    await settled();
    expect(total(await scrape(), 'signal_ws_handshakes_total', { outcome: 'rate_limited' })).toBe(1);
  });

  it('counts a verification that outlives the handshake timer as auth_timeout, once', async () => {
    let finish: (identity: Identity) => void = () => undefined;
    const { open, clock, scrape } = setup(() => new Promise<Identity>((resolve) => (finish = resolve)));
    const { session, transport } = open();
    authenticate(session);
    clock.advance(settings.machine.handshakeTimeoutMs);
    expect(transport.closedWith).toBe(4001);
    finish({ userId: 'u', roles: [] });
    await settled();
    const scraped = await scrape();
    expect(total(scraped, 'signal_ws_handshakes_total', { outcome: 'auth_timeout' })).toBe(1);
    expect(total(scraped, 'signal_ws_handshakes_total')).toBe(1);
  });

  it('drops a frame for a slow consumer and closes it 4005, counted once', async () => {
    const { open, scrape } = setup(async () => ({ userId: 'u', roles: [] }));
    const { session, transport } = open();
    authenticate(session);
    await settled();
    expect(session.phase).toBe('AUTHENTICATED');
    session.deliver('{"event":"first"}');
    transport.bufferedAmount = settings.maxBufferedBytes + 1;
    session.deliver('{"event":"dropped"}');
    session.deliver('{"event":"after close"}');
    await settled();
    expect(transport.closedWith).toBe(4005);
    expect(transport.sent.filter((text) => text.includes('dropped') || text.includes('after close'))).toEqual([]);
    const scraped = await scrape();
    expect(total(scraped, 'signal_ws_handshakes_total', { outcome: 'ok' })).toBe(1);
    expect(total(scraped, 'signal_ws_outbound_dropped_total', { reason: 'slow_consumer' })).toBe(1);
    expect(total(scraped, 'signal_ws_closes_total', { code: '4005', initiator: 'server' })).toBe(1);
    expect(total(scraped, 'signal_ws_closes_total')).toBe(1);
  });
});

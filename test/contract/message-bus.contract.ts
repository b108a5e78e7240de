import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Closeable } from '../../src/application/ports/lifecycle.port.ts';
import type { BusMessage, MessageBus } from '../../src/application/ports/message-bus.port.ts';
import { settle, waitFor } from '../fixtures/wait-for.ts';

export interface RawFrame {
  /** Channel name as the protocol spells it, without any isolation prefix. */
  channel: string;
  text: string;
}

/** A live record of everything published in the harness's cluster. */
export interface RawTap {
  readonly frames: readonly RawFrame[];
}

/**
 * One isolated cluster: buses made by one harness see each other and
 * nothing published through another harness.
 */
export interface MessageBusHarness {
  /** A new bus in this cluster, not yet subscribed. Cleanup closes it. */
  makeBus(serverId: string): Promise<MessageBus & Closeable>;
  /** Publishes text on a channel the way a publisher service does (channel without prefix). */
  publishRaw(channel: string, text: string): Promise<void>;
  /** Starts recording raw traffic; resolves once the recording is live. */
  tap(): Promise<RawTap>;
  cleanup(): Promise<void>;
}

/** Exact payloads captured from the publishers' emitter (protocol §7). */
export const CAPTURED = {
  room: {
    channel: 'ws:room:merchant:42',
    text: '{"serverId":"emitter","type":"room","target":"merchant:42","event":"order.updated","data":{"orderId":"o-1","status":"PAID"}}',
  },
  user: {
    channel: 'ws:user:user-7',
    text: '{"serverId":"emitter","type":"user","target":"user-7","event":"notification","data":{"title":"user msg"}}',
  },
  broadcast: {
    channel: 'ws:broadcast',
    text: '{"serverId":"emitter","type":"broadcast","event":"system:announcement","data":{"text":"hello all","n":1}}',
  },
} as const;

const CLIENT_ID = '3f0c2a9e-8d7b-4c1a-9e2f-5b6d7c8e9f01';
/** Long enough for a stray second delivery to show up, short enough to keep suites quick. */
const SETTLE_MS = 150;
const WAIT_MS = 5_000;

interface Receiver {
  bus: MessageBus & Closeable;
  received: BusMessage[];
}

export function messageBusContract(name: string, makeHarness: () => Promise<MessageBusHarness>): void {
  describe(`MessageBus contract: ${name}`, () => {
    let harness: MessageBusHarness;

    beforeEach(async () => {
      harness = await makeHarness();
    });

    afterEach(async () => {
      await harness.cleanup();
    });

    async function receiver(serverId: string): Promise<Receiver> {
      const bus = await harness.makeBus(serverId);
      const received: BusMessage[] = [];
      await bus.subscribe((message) => received.push(message));
      return { bus, received };
    }

    async function receivedExactly(target: Receiver, count: number): Promise<void> {
      await waitFor(() => target.received.length >= count, WAIT_MS, `${target.bus.serverId} to receive ${count}`);
      await settle(SETTLE_MS);
      expect(target.received).toHaveLength(count);
    }

    it('delivers a message from A to B and C exactly once each and never back to A', async () => {
      const [a, b, c] = await Promise.all([receiver('server-a'), receiver('server-b'), receiver('server-c')]);
      const message: BusMessage = { serverId: 'server-a', type: 'room', target: 'ws-default', event: 'ping', data: { n: 1 } };

      await a.bus.publish(message);

      await waitFor(() => b.received.length >= 1 && c.received.length >= 1, WAIT_MS, 'B and C to receive');
      await settle(SETTLE_MS);
      expect(b.received).toEqual([message]);
      expect(c.received).toEqual([message]);
      expect(a.received).toEqual([]);
    });

    it('publishes each type on its channel with the exact bytes publishers write', async () => {
      const tap = await harness.tap();
      const emitter = await harness.makeBus('emitter');
      const b = await receiver('server-b');
      const messages: BusMessage[] = [
        { serverId: 'emitter', type: 'room', target: 'merchant:42', event: 'order.updated', data: { orderId: 'o-1', status: 'PAID' } },
        { serverId: 'emitter', type: 'user', target: 'user-7', event: 'notification', data: { title: 'user msg' } },
        { serverId: 'emitter', type: 'broadcast', event: 'system:announcement', data: { text: 'hello all', n: 1 } },
        { serverId: 'emitter', type: 'client', target: CLIENT_ID, event: 'direct', data: { ok: true } },
      ];

      for (const message of messages) await emitter.publish(message);

      await waitFor(() => tap.frames.length >= 4, WAIT_MS, 'four raw frames');
      await receivedExactly(b, 4);
      expect(tap.frames).toEqual([
        CAPTURED.room,
        CAPTURED.user,
        CAPTURED.broadcast,
        {
          channel: `ws:client:${CLIENT_ID}`,
          text: `{"serverId":"emitter","type":"client","target":"${CLIENT_ID}","event":"direct","data":{"ok":true}}`,
        },
      ]);
      expect(b.received).toEqual(messages);
    });

    it('stamps its own serverId on what it publishes', async () => {
      const tap = await harness.tap();
      const a = await harness.makeBus('server-a');
      const b = await receiver('server-b');

      await a.publish({ serverId: 'someone-else', type: 'user', target: 'user-1', event: 'e', data: null });

      await receivedExactly(b, 1);
      expect(b.received[0]?.serverId).toBe('server-a');
      await waitFor(() => tap.frames.length >= 1, WAIT_MS, 'raw frame');
      expect(tap.frames[0]).toEqual({
        channel: 'ws:user:user-1',
        text: '{"serverId":"server-a","type":"user","target":"user-1","event":"e","data":null}',
      });
    });

    it('receives raw payloads from a publisher service', async () => {
      const b = await receiver('server-b');

      for (const frame of Object.values(CAPTURED)) await harness.publishRaw(frame.channel, frame.text);

      await receivedExactly(b, 3);
      expect(b.received).toEqual([
        { serverId: 'emitter', type: 'room', target: 'merchant:42', event: 'order.updated', data: { orderId: 'o-1', status: 'PAID' } },
        { serverId: 'emitter', type: 'user', target: 'user-7', event: 'notification', data: { title: 'user msg' } },
        { serverId: 'emitter', type: 'broadcast', event: 'system:announcement', data: { text: 'hello all', n: 1 } },
      ]);
    });

    it('routes by the payload, not by the channel it arrived on', async () => {
      const b = await receiver('server-b');

      await harness.publishRaw('ws:room:merchant:42', CAPTURED.user.text);

      await receivedExactly(b, 1);
      expect(b.received[0]).toMatchObject({ type: 'user', target: 'user-7', event: 'notification' });
    });

    it('drops a raw payload carrying its own serverId and delivers it to the others', async () => {
      const [b, c] = await Promise.all([receiver('server-b'), receiver('server-c')]);

      await harness.publishRaw('ws:user:user-7', CAPTURED.user.text.replace('"emitter"', '"server-b"'));
      // The same, with serverId not the first key (another publisher's key order).
      await harness.publishRaw('ws:user:user-7', '{"type":"user","target":"user-7","serverId":"server-b","event":"notification","data":{}}');

      await receivedExactly(c, 2);
      expect(b.received).toEqual([]);
    });

    it('drops invalid payloads and still delivers the valid ones after them', async () => {
      const b = await receiver('server-b');
      const invalid = [
        'not json',
        '{"serverId":"emitter","type":"room"',
        '[{"serverId":"emitter","type":"room","target":"r","event":"e","data":1}]',
        'null',
        '"text"',
        '{"type":"room","target":"r","event":"e","data":1}',
        '{"serverId":"emitter","type":"room","target":"r","event":7,"data":1}',
        '{"serverId":"emitter","type":"shout","target":"r","event":"e","data":1}',
        '{"serverId":"emitter","type":"room","event":"e","data":1}',
        '{"serverId":"emitter","type":"room","target":"r","event":"e","data":1,"exclude":[1]}',
      ];

      for (const text of invalid) await harness.publishRaw('ws:room:r', text);
      await harness.publishRaw(CAPTURED.room.channel, CAPTURED.room.text);

      await receivedExactly(b, 1);
      expect(b.received[0]).toMatchObject({ serverId: 'emitter', event: 'order.updated' });
    });

    it('preserves the order of 200 messages from one publisher', async () => {
      const a = await harness.makeBus('server-a');
      const b = await receiver('server-b');
      const sequence = Array.from({ length: 200 }, (_, index) => index);

      // Issued without waiting for each other: order must hold even when the
      // publishes are in flight together.
      await Promise.all(sequence.map((n) => a.publish({ serverId: 'server-a', type: 'room', target: `room-${n % 7}`, event: 'seq', data: n })));

      await receivedExactly(b, 200);
      expect(b.received.map((message) => message.data)).toEqual(sequence);
    });

    it('carries exclude lists through the round trip', async () => {
      const a = await harness.makeBus('server-a');
      const b = await receiver('server-b');
      const room: BusMessage = { serverId: 'server-a', type: 'room', target: 'ws-default', event: 'e', data: { x: 1 }, exclude: [CLIENT_ID, 'c-2'] };
      const broadcast: BusMessage = { serverId: 'server-a', type: 'broadcast', event: 'e', data: 'all', exclude: [] };

      await a.publish(room);
      await a.publish(broadcast);

      await receivedExactly(b, 2);
      expect(b.received).toEqual([room, broadcast]);
    });

    it('takes room names with glob and unicode characters literally', async () => {
      const tap = await harness.tap();
      const a = await harness.makeBus('server-a');
      const b = await receiver('server-b');
      const message: BusMessage = { serverId: 'server-a', type: 'room', target: 'odd room*?[x]\\é', event: 'é ✓', data: { text: 'line\nbreak ✓' } };

      await a.publish(message);

      await receivedExactly(b, 1);
      expect(b.received).toEqual([message]);
      expect(tap.frames.map((frame) => frame.channel)).toEqual(['ws:room:odd room*?[x]\\é']);
    });

    it('resolves subscribe only once a message published right after it is received', async () => {
      const a = await harness.makeBus('server-a');
      for (let attempt = 0; attempt < 5; attempt += 1) {
        const fresh = await harness.makeBus(`fresh-${attempt}`);
        const received: BusMessage[] = [];
        await fresh.subscribe((message) => received.push(message));
        // Both a bus and a raw publisher, immediately, with no wait between.
        await a.publish({ serverId: 'server-a', type: 'user', target: 'u', event: 'first', data: attempt });
        await harness.publishRaw('ws:broadcast', CAPTURED.broadcast.text);
        await waitFor(() => received.length >= 2, WAIT_MS, `fresh bus ${attempt} to receive both`);
        expect(received.map((message) => message.event)).toEqual(['first', 'system:announcement']);
        await fresh.close();
      }
    });

    it('refuses a second handler, stops delivering once closed and closes idempotently', async () => {
      const a = await harness.makeBus('server-a');
      const [b, c] = await Promise.all([receiver('server-b'), receiver('server-c')]);

      await expect(b.bus.subscribe(() => {})).rejects.toMatchObject({ code: 'ERR_BUS_ALREADY_SUBSCRIBED' });
      await b.bus.close();
      await b.bus.close();
      await a.publish({ serverId: 'server-a', type: 'broadcast', event: 'after-close', data: null });

      // C getting it proves the message went out while B was closed.
      await receivedExactly(c, 1);
      expect(b.received).toEqual([]);
      await expect(b.bus.publish({ serverId: 'server-b', type: 'broadcast', event: 'e', data: null })).rejects.toMatchObject({
        code: 'ERR_BUS_CLOSED',
      });
    });
  });
}

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ControlChannel, ControlCommand } from '../../src/application/ports/control-channel.port.ts';
import type { Closeable } from '../../src/application/ports/lifecycle.port.ts';
import type { BusMessage, MessageBus } from '../../src/application/ports/message-bus.port.ts';
import { settle, waitFor } from '../fixtures/wait-for.ts';
import type { RawTap } from './message-bus.contract.ts';

/**
 * One isolated cluster: control channels and buses made by one harness
 * share a transport and see nothing sent through another harness.
 */
export interface ControlChannelHarness {
  /** A new control channel in this cluster, not yet subscribed. Cleanup closes it. */
  makeChannel(): Promise<ControlChannel & Closeable>;
  /** A message bus on the same transport, to show the two never mix. */
  makeBus(serverId: string): Promise<MessageBus & Closeable>;
  /** Publishes text as any process on the transport could (channel without prefix). */
  publishRaw(channel: string, text: string): Promise<void>;
  /** Starts recording raw traffic; resolves once the recording is live. */
  tap(): Promise<RawTap>;
  cleanup(): Promise<void>;
}

/** Long enough for a stray second delivery to show up, short enough to keep suites quick. */
const SETTLE_MS = 150;
const WAIT_MS = 5_000;

interface Listener {
  channel: ControlChannel & Closeable;
  instanceId: string;
  received: ControlCommand[];
}

export function controlChannelContract(name: string, makeHarness: () => Promise<ControlChannelHarness>): void {
  describe(`ControlChannel contract: ${name}`, () => {
    let harness: ControlChannelHarness;

    beforeEach(async () => {
      harness = await makeHarness();
    });

    afterEach(async () => {
      await harness.cleanup();
    });

    async function listener(instanceId: string, onCommand?: (command: ControlCommand) => void): Promise<Listener> {
      const channel = await harness.makeChannel();
      const received: ControlCommand[] = [];
      await channel.subscribe(instanceId, (command) => {
        received.push(command);
        onCommand?.(command);
      });
      return { channel, instanceId, received };
    }

    async function receivedExactly(target: Listener, count: number): Promise<void> {
      await waitFor(() => target.received.length >= count, WAIT_MS, `${target.instanceId} to receive ${count}`);
      await settle(SETTLE_MS);
      expect(target.received).toHaveLength(count);
    }

    it('delivers a command to the named instance exactly once and to no other', async () => {
      const [a, b, c] = await Promise.all([listener('node-a'), listener('node-b'), listener('node-c')]);

      await a.channel.send('node-b', { type: 'disconnect', clientId: 'client-1' });
      await c.channel.send('node-a', { type: 'disconnect', clientId: 'client-2', requestedBy: 'admin-7' });

      await receivedExactly(b, 1);
      await receivedExactly(a, 1);
      expect(b.received).toEqual([{ type: 'disconnect', clientId: 'client-1' }]);
      expect(a.received).toEqual([{ type: 'disconnect', clientId: 'client-2', requestedBy: 'admin-7' }]);
      expect(c.received).toEqual([]);
    });

    it('puts the exact bytes on ws:control:<instanceId>', async () => {
      const tap = await harness.tap();
      const sender = await harness.makeChannel();

      await sender.send('node-b', { type: 'disconnect', clientId: 'client-1', requestedBy: 'admin' });
      await sender.send('node-c', { requestedBy: undefined, clientId: 'client-2', type: 'disconnect' });

      await waitFor(() => tap.frames.length >= 2, WAIT_MS, 'two raw frames');
      await settle(SETTLE_MS);
      expect(tap.frames).toEqual([
        { channel: 'ws:control:node-b', text: '{"type":"disconnect","clientId":"client-1","requestedBy":"admin"}' },
        { channel: 'ws:control:node-c', text: '{"type":"disconnect","clientId":"client-2"}' },
      ]);
    });

    it('drops malformed payloads, passes on only known fields, and still delivers what follows', async () => {
      const b = await listener('node-b');
      const invalid = [
        'not json',
        '{"type":"disconnect"',
        'null',
        '"disconnect"',
        '[{"type":"disconnect","clientId":"c"}]',
        '{"clientId":"c"}',
        '{"type":"kick","clientId":"c"}',
        '{"type":"disconnect"}',
        '{"type":"disconnect","clientId":""}',
        '{"type":"disconnect","clientId":7}',
        '{"type":"disconnect","clientId":"c","requestedBy":["x"]}',
      ];

      for (const text of invalid) await harness.publishRaw('ws:control:node-b', text);
      await harness.publishRaw('ws:control:node-b', '{"type":"disconnect","clientId":"c-9","reason":"newer sender","requestedBy":"ops"}');

      await receivedExactly(b, 1);
      expect(b.received).toEqual([{ type: 'disconnect', clientId: 'c-9', requestedBy: 'ops' }]);
    });

    it('takes instance ids literally, glob characters and separators included', async () => {
      const [star, plain, colon] = await Promise.all([listener('node*'), listener('node-1'), listener('node:1')]);
      const sender = await harness.makeChannel();

      await sender.send('node-1', { type: 'disconnect', clientId: 'to-plain' });
      await sender.send('node*', { type: 'disconnect', clientId: 'to-star' });
      await sender.send('node:1', { type: 'disconnect', clientId: 'to-colon' });

      await receivedExactly(plain, 1);
      await receivedExactly(star, 1);
      await receivedExactly(colon, 1);
      expect(plain.received[0]?.clientId).toBe('to-plain');
      expect(star.received[0]?.clientId).toBe('to-star');
      expect(colon.received[0]?.clientId).toBe('to-colon');
    });

    it('never mixes with the message bus on the same transport', async () => {
      const control = await listener('server-b');
      const busB = await harness.makeBus('server-b');
      const busA = await harness.makeBus('server-a');
      const onBus: BusMessage[] = [];
      await busB.subscribe((message) => onBus.push(message));

      await control.channel.send('server-b', { type: 'disconnect', clientId: 'client-1' });
      await busA.publish({ serverId: 'server-a', type: 'client', target: 'client-1', event: 'bus-event', data: null });
      await busA.publish({ serverId: 'server-a', type: 'broadcast', event: 'bus-broadcast', data: null });

      await receivedExactly(control, 1);
      await waitFor(() => onBus.length >= 2, WAIT_MS, 'bus messages');
      await settle(SETTLE_MS);
      expect(onBus.map((message) => message.event)).toEqual(['bus-event', 'bus-broadcast']);
      expect(control.received).toEqual([{ type: 'disconnect', clientId: 'client-1' }]);
    });

    it('resolves subscribe only once a command sent right after it is received', async () => {
      const sender = await harness.makeChannel();
      for (let attempt = 0; attempt < 5; attempt += 1) {
        const fresh = await listener(`fresh-${attempt}`);
        await sender.send(`fresh-${attempt}`, { type: 'disconnect', clientId: `c-${attempt}` });
        await harness.publishRaw(`ws:control:fresh-${attempt}`, '{"type":"disconnect","clientId":"raw"}');
        await waitFor(() => fresh.received.length >= 2, WAIT_MS, `fresh channel ${attempt} to receive both`);
        expect(fresh.received.map((command) => command.clientId)).toEqual([`c-${attempt}`, 'raw']);
        await fresh.channel.close();
      }
    });

    it('loses a command sent while nobody listens instead of queueing it', async () => {
      const sender = await harness.makeChannel();

      await sender.send('node-late', { type: 'disconnect', clientId: 'early' });
      const late = await listener('node-late');
      await sender.send('node-late', { type: 'disconnect', clientId: 'after-subscribe' });

      await receivedExactly(late, 1);
      expect(late.received[0]?.clientId).toBe('after-subscribe');
    });

    it('delivers commands an instance sends to itself, in the order sent', async () => {
      const self = await listener('node-a');
      const ids = Array.from({ length: 50 }, (_, index) => `c-${index}`);

      // In flight together: order must hold all the same.
      await Promise.all(ids.map((clientId) => self.channel.send('node-a', { type: 'disconnect', clientId })));

      await receivedExactly(self, 50);
      expect(self.received.map((command) => command.clientId)).toEqual(ids);
    });

    it('keeps delivering after a handler throws', async () => {
      const b = await listener('node-b', (command) => {
        if (command.clientId === 'boom') throw new Error('handler bug');
      });
      const sender = await harness.makeChannel();

      await sender.send('node-b', { type: 'disconnect', clientId: 'boom' });
      await sender.send('node-b', { type: 'disconnect', clientId: 'after' });

      await receivedExactly(b, 2);
      expect(b.received.map((command) => command.clientId)).toEqual(['boom', 'after']);
    });

    it('refuses malformed commands before sending anything', async () => {
      const tap = await harness.tap();
      const b = await listener('node-b');
      const refused = { code: 'ERR_CONTROL_INPUT' };

      await expect(b.channel.send('node-b', { type: 'kick', clientId: 'c' } as unknown as ControlCommand)).rejects.toMatchObject(refused);
      await expect(b.channel.send('node-b', { type: 'disconnect', clientId: '' })).rejects.toMatchObject(refused);
      await expect(b.channel.send('', { type: 'disconnect', clientId: 'c' })).rejects.toMatchObject(refused);
      await expect((await harness.makeChannel()).subscribe('', () => {})).rejects.toMatchObject(refused);
      await b.channel.send('node-b', { type: 'disconnect', clientId: 'valid' });

      await receivedExactly(b, 1);
      expect(tap.frames).toHaveLength(1);
    });

    it('refuses a second handler, stops delivering once closed and closes idempotently', async () => {
      const sender = await harness.makeChannel();
      const [b, c] = await Promise.all([listener('node-b'), listener('node-c')]);

      await expect(b.channel.subscribe('node-x', () => {})).rejects.toMatchObject({ code: 'ERR_CONTROL_ALREADY_SUBSCRIBED' });
      await b.channel.close();
      await b.channel.close();
      await sender.send('node-b', { type: 'disconnect', clientId: 'after-close' });
      await sender.send('node-c', { type: 'disconnect', clientId: 'witness' });

      // C getting its command proves B's went out while B was closed.
      await receivedExactly(c, 1);
      expect(b.received).toEqual([]);
      await expect(b.channel.send('node-c', { type: 'disconnect', clientId: 'x' })).rejects.toMatchObject({ code: 'ERR_CONTROL_CLOSED' });
      await expect(b.channel.subscribe('node-b', () => {})).rejects.toMatchObject({ code: 'ERR_CONTROL_CLOSED' });
    });
  });
}

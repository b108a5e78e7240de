import { describe, expect, it } from 'vitest';
import { InMemoryBusHub } from '../../src/adapters/memory/in-memory-message-bus.ts';
import { memoryBusHarness } from '../fixtures/bus-harnesses.ts';
import { settle, waitFor } from '../fixtures/wait-for.ts';
import { messageBusContract } from './message-bus.contract.ts';

// One hub per harness is one isolated cluster.
messageBusContract('InMemoryMessageBus', async () => memoryBusHarness());

describe('InMemoryBusHub', () => {
  it('delivers after the publishing call returns, never inside it', async () => {
    const hub = new InMemoryBusHub();
    const seen: string[] = [];
    hub.subscribe(['ws:broadcast'], [], (_channel, text) => seen.push(text));

    expect(hub.publishRaw('ws:broadcast', 'one')).toBe(1);
    expect(seen).toEqual([]);

    await waitFor(() => seen.length >= 1, 1_000, 'delivery');
    expect(seen).toEqual(['one']);
  });

  it('keeps global publish order when a listener publishes while being delivered to', async () => {
    const hub = new InMemoryBusHub();
    const seen: string[] = [];
    hub.subscribe([], ['ws:room:*'], (channel, text) => {
      seen.push(text);
      if (text === 'first') hub.publishRaw(channel, 'from-listener');
    });

    hub.publishRaw('ws:room:r', 'first');
    hub.publishRaw('ws:room:r', 'second');

    await waitFor(() => seen.length >= 3, 1_000, 'three deliveries');
    await settle(50);
    expect(seen).toEqual(['first', 'second', 'from-listener']);
  });

  it('matches Redis glob patterns, with escapes taken literally', () => {
    const hub = new InMemoryBusHub();
    const noop = (): void => {};
    hub.subscribe([], ['p\\*:ws:room:*'], noop);
    hub.subscribe([], ['ws:user:[ab]?'], noop);

    expect(hub.publishRaw('p*:ws:room:x', 't')).toBe(1);
    expect(hub.publishRaw('pX:ws:room:x', 't')).toBe(0);
    expect(hub.publishRaw('ws:user:a1', 't')).toBe(1);
    expect(hub.publishRaw('ws:user:c1', 't')).toBe(0);
    expect(hub.publishRaw('ws:user:a12', 't')).toBe(0);
  });

  it('does not deliver to a subscriber that left before delivery', async () => {
    const hub = new InMemoryBusHub();
    const left: string[] = [];
    const stayed: string[] = [];
    const leave = hub.subscribe(['ws:broadcast'], [], (_channel, text) => left.push(text));
    hub.subscribe(['ws:broadcast'], [], (_channel, text) => stayed.push(text));

    hub.publishRaw('ws:broadcast', 'x');
    leave();

    await waitFor(() => stayed.length >= 1, 1_000, 'delivery to the one that stayed');
    expect(left).toEqual([]);
  });
});

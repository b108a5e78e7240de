import { describe, expect, it } from 'vitest';
import { SignalEmitter } from '../../src/adapters/emitter/signal-emitter.ts';
import type { BusPublisher } from '../../src/adapters/emitter/signal-emitter.ts';

/** Keeps what was published, in order, exactly as the transport would receive it. */
class RecordingPublisher implements BusPublisher {
  readonly published: Array<{ channel: string; message: string }> = [];

  publish(channel: string, message: string): Promise<number> {
    this.published.push({ channel, message });
    return Promise.resolve(1);
  }
}

function setup(options: { channelPrefix?: string; serverId?: string } = {}) {
  const publisher = new RecordingPublisher();
  return { publisher, emitter: new SignalEmitter({ publisher, ...options }) };
}

describe('SignalEmitter', () => {
  describe('reproduces the payloads captured from the publishers (protocol §7) byte for byte', () => {
    it('room', async () => {
      const { publisher, emitter } = setup();
      await emitter.toRoom('merchant:42', 'order.updated', { orderId: 'o-1', status: 'PAID' });
      expect(publisher.published).toEqual([
        {
          channel: 'ws:room:merchant:42',
          message:
            '{"serverId":"emitter","type":"room","target":"merchant:42","event":"order.updated","data":{"orderId":"o-1","status":"PAID"}}',
        },
      ]);
    });

    it('user', async () => {
      const { publisher, emitter } = setup();
      await emitter.toUser('user-7', 'notification', { title: 'user msg' });
      expect(publisher.published).toEqual([
        {
          channel: 'ws:user:user-7',
          message: '{"serverId":"emitter","type":"user","target":"user-7","event":"notification","data":{"title":"user msg"}}',
        },
      ]);
    });

    it('broadcast', async () => {
      const { publisher, emitter } = setup();
      await emitter.broadcast('system:announcement', { text: 'hello all', n: 1 });
      expect(publisher.published).toEqual([
        {
          channel: 'ws:broadcast',
          message: '{"serverId":"emitter","type":"broadcast","event":"system:announcement","data":{"text":"hello all","n":1}}',
        },
      ]);
    });
  });

  it('addresses one client on its own channel', async () => {
    const { publisher, emitter } = setup();
    const clientId = '6f1c2d4e-8a9b-4c3d-9e2f-1a2b3c4d5e6f';
    await emitter.toClient(clientId, 'order.updated', { orderId: 'o-2' });
    expect(publisher.published).toEqual([
      {
        channel: `ws:client:${clientId}`,
        message: `{"serverId":"emitter","type":"client","target":"${clientId}","event":"order.updated","data":{"orderId":"o-2"}}`,
      },
    ]);
  });

  it('prefixes every channel but leaves the payload untouched', async () => {
    const { publisher, emitter } = setup({ channelPrefix: 'staging:' });
    await emitter.toClient('c-1', 'e', 1);
    await emitter.toUser('u-1', 'e', 1);
    await emitter.toRoom('r-1', 'e', 1);
    await emitter.broadcast('e', 1);
    expect(publisher.published.map((entry) => entry.channel)).toEqual([
      'staging:ws:client:c-1',
      'staging:ws:user:u-1',
      'staging:ws:room:r-1',
      'staging:ws:broadcast',
    ]);
    expect(publisher.published[3]?.message).toBe('{"serverId":"emitter","type":"broadcast","event":"e","data":1}');
  });

  it('stamps a configured serverId', async () => {
    const { publisher, emitter } = setup({ serverId: 'payment-service' });
    await emitter.toUser('u-1', 'paid', null);
    expect(publisher.published[0]?.message).toBe(
      '{"serverId":"payment-service","type":"user","target":"u-1","event":"paid","data":null}',
    );
  });

  it('writes exclude last, and only when one is given', async () => {
    const { publisher, emitter } = setup();
    await emitter.toRoom('lobby', 'moved', { x: 1 }, { exclude: ['c-1', 'c-2'] });
    await emitter.broadcast('tick', { n: 2 }, { exclude: ['c-3'] });
    await emitter.toRoom('lobby', 'moved', { x: 3 }, {});
    await emitter.broadcast('tick', { n: 4 });
    expect(publisher.published.map((entry) => entry.message)).toEqual([
      '{"serverId":"emitter","type":"room","target":"lobby","event":"moved","data":{"x":1},"exclude":["c-1","c-2"]}',
      '{"serverId":"emitter","type":"broadcast","event":"tick","data":{"n":2},"exclude":["c-3"]}',
      '{"serverId":"emitter","type":"room","target":"lobby","event":"moved","data":{"x":3}}',
      '{"serverId":"emitter","type":"broadcast","event":"tick","data":{"n":4}}',
    ]);
  });

  it("returns the publisher's promise, so a failed publish reaches the caller", async () => {
    const failure = new Error('connection lost');
    const emitter = new SignalEmitter({ publisher: { publish: () => Promise.reject(failure) } });
    await expect(emitter.toUser('u-1', 'e', {})).rejects.toBe(failure);
    const counting = new SignalEmitter({ publisher: { publish: () => Promise.resolve(3) } });
    await expect(counting.broadcast('e', {})).resolves.toBe(3);
  });
});

import { InMemoryControlChannel } from '../../src/adapters/memory/in-memory-control-channel.ts';
import { InMemoryBusHub, InMemoryMessageBus } from '../../src/adapters/memory/in-memory-message-bus.ts';
import type { Closeable } from '../../src/application/ports/lifecycle.port.ts';
import { controlChannelContract } from './control-channel.contract.ts';
import type { RawFrame } from './message-bus.contract.ts';

controlChannelContract('InMemoryControlChannel', async () => {
  // One hub per harness is one isolated cluster, carrying bus and control traffic alike.
  const hub = new InMemoryBusHub();
  const owned: Closeable[] = [];
  const untaps: Array<() => void> = [];
  return {
    async makeChannel() {
      const channel = new InMemoryControlChannel(hub);
      owned.push(channel);
      return channel;
    },
    async makeBus(serverId) {
      const bus = new InMemoryMessageBus(hub, { serverId });
      owned.push(bus);
      return bus;
    },
    async publishRaw(channel, text) {
      hub.publishRaw(channel, text);
    },
    async tap() {
      const frames: RawFrame[] = [];
      untaps.push(hub.tap((channel, text) => frames.push({ channel, text })));
      return { frames };
    },
    async cleanup() {
      for (const untap of untaps) untap();
      await Promise.all(owned.map((item) => item.close()));
    },
  };
});

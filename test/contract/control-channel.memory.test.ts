import { InMemoryControlChannel } from '../../src/adapters/memory/in-memory-control-channel.ts';
import { InMemoryBusHub } from '../../src/adapters/memory/in-memory-message-bus.ts';
import { memoryBusHarness } from '../fixtures/bus-harnesses.ts';
import { controlChannelContract } from './control-channel.contract.ts';

controlChannelContract('InMemoryControlChannel', async () => {
  // One hub per harness is one isolated cluster, carrying bus and control traffic alike.
  const hub = new InMemoryBusHub();
  const bus = memoryBusHarness(hub);
  const channels: InMemoryControlChannel[] = [];
  return {
    ...bus,
    async makeChannel() {
      const channel = new InMemoryControlChannel(hub);
      channels.push(channel);
      return channel;
    },
    async cleanup() {
      await Promise.all(channels.map((channel) => channel.close()));
      await bus.cleanup();
    },
  };
});

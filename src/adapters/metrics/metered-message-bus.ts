import { performance } from 'node:perf_hooks';
import type { BusHandler, BusMessage, MessageBus } from '../../application/ports/message-bus.port.ts';
import type { Metrics } from '../../application/ports/metrics.port.ts';

/**
 * Any MessageBus, counted: each publish (result and duration) and each
 * received message (type and handling time). It changes nothing on the
 * wire and adds no behaviour; health and close stay with the wrapped bus,
 * which its owner keeps a reference to.
 */
export class MeteredMessageBus implements MessageBus {
  readonly serverId: string;

  constructor(
    private readonly inner: MessageBus,
    private readonly metrics: Metrics,
  ) {
    this.serverId = inner.serverId;
  }

  async publish(message: BusMessage): Promise<void> {
    const startedAt = performance.now();
    try {
      await this.inner.publish(message);
    } catch (error) {
      this.metrics.busPublished(message.type, false, performance.now() - startedAt);
      throw error;
    }
    this.metrics.busPublished(message.type, true, performance.now() - startedAt);
  }

  subscribe(handler: BusHandler): Promise<void> {
    const metrics = this.metrics;
    return this.inner.subscribe((message) => {
      const startedAt = performance.now();
      try {
        handler(message);
      } finally {
        metrics.busReceived(message.type, performance.now() - startedAt);
      }
    });
  }
}
